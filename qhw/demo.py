"""``qhw demo``: the main job on built-in defaults, ending in a research report.

By default the DNSMOS P.808 flagship (:mod:`qhw.dnsmos.demo`). ``qhw demo --units`` runs the
unit sweep described below instead.

The demo sweep (``explore/sweeps/demo.toml``: weight widths of the binary-activation convolution,
every activation format of the exponent-adder multiplier, GRU bit widths) plus the default
configuration of every registered unit, each with its baseline design. Every point is generated,
cosimulated against its golden model with and without stalls, synthesized (generic gates, ECP5
with Fmax, Xilinx 7-series) and given both energy estimates; then the report is written:

    OUTPUT/sweep/    results (results.csv, results.json, points/: the cache)
    OUTPUT/report/   report.md, report.html, figures/

A second run reuses every finished point.
"""

from pathlib import Path

from . import registry
from .explore import report, sweep
from .explore.progress import print_ending

DEMO_SWEEP = Path(sweep.__file__).with_name("sweeps") / "demo.toml"


def demo_sweep(*, quick=False):
    """The demo sweep: the packaged file plus each registered unit's default configuration."""
    text = DEMO_SWEEP.read_text()
    text += "\n# Added by qhw demo: the default configuration of every registered unit.\n"
    text += "".join(f'[[sweep]]\nunit = "{name}"\nfrom_default = true\n\n'
                    for name in registry.names())
    overrides = {"fmax": False, "energy": False} if quick else {}
    return sweep.parse_sweep(text, name="demo", overrides=overrides)


def _say(text):
    print(f"[qhw demo] {text}", flush=True)


def run(outdir, *, jobs=None, quick=False, units=False, progress=True):
    """Run the demo into ``outdir``: the DNSMOS flagship, or with ``units`` the unit sweep;
    exit status 0 when every check passed."""
    if not units:
        from .dnsmos import demo
        return demo.run(outdir, quick=quick, jobs=jobs, progress=progress)
    return run_units(outdir, jobs=jobs, quick=quick, progress=progress)


def run_units(outdir, *, jobs=None, quick=False, progress=True):
    """The unit sweep into ``outdir``; exit status 0 when every point passed every check."""
    outdir = Path(outdir)
    spec = demo_sweep(quick=quick)
    _say(f"{len(spec.points)} design points over {len({p.unit for p in spec.points})} unit kinds "
         f"(each: Verilog, cosimulation with and without stalls, synthesis"
         f"{'' if quick else ', Fmax, energy'}); results in {outdir / 'sweep'}")
    summary = sweep.run_sweep(spec, outdir / "sweep", jobs=jobs, progress=progress)
    _say(f"{summary.computed} points computed, {summary.cached} from the cache, "
         f"{summary.failed} failed")
    if summary.interrupted:
        _say("interrupted: run 'qhw demo' again to finish (finished points are kept)")
        return 130
    if summary.stopped:
        _say(f"{summary.stopped}: run 'qhw demo' again to finish (finished points are kept)")
        return 1
    path = report.write_report([outdir / "sweep"], outdir / "report", title="qhw demo report")
    for record in summary.records:
        if record["status"] != "ok":
            _say(f"FAILED {record['unit']} {record['config']}: {record['error_kind']}: "
                 f"{(record.get('error') or '').strip().splitlines()[0][:200]}")
    print_ending(path)  # the headline findings and where the report is, last
    return 1 if summary.failed else 0
