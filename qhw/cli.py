"""The ``qhw`` command line.

Every subcommand takes a unit name and finds the unit through the registry. Bad input ends with
one line ``qhw: error: <field>: <what is allowed>`` and exit status 2, before any file is written.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import flow, registry
from .errors import QhwInputError, QhwToolError

SYNTH_TARGETS = ("generic", "ecp5", "xc7", "ice40")


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 0.95], got {text!r}") from None
    if not 0.0 <= value <= 0.95:
        raise argparse.ArgumentTypeError(f"must be in [0, 0.95], got {value}")
    return value


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _parser():
    p = argparse.ArgumentParser(
        prog="qhw", description="Verified, synthesizable hardware for compressed speech networks.")
    p.add_argument("--version", action=_Version, nargs=0,
                   help="print qhw's version and the versions of its tools, and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def unit_command(name, help_text):
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("unit", help="unit name (see 'qhw units')")
        sp.add_argument("--config", type=Path,
                        help="unit config (JSON, or TOML for .toml files); default: the unit's "
                             "default configuration ('qhw config UNIT' prints it)")
        return sp

    sp = unit_command("generate", "write Verilog, the weight file and manifest.json")
    sp.add_argument("--weights", type=Path, help="weight file (.npz); random weights if omitted")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    sp.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    sp.add_argument("--axis", action="store_true",
                    help="AXI4-Stream ports (aclk, aresetn, s_axis_<stream>_t*, "
                         "m_axis_<stream>_t*, tdata padded to bytes, tlast at frame ends; "
                         "docs/axis.md)")
    sp.add_argument("--name", help="top module name (default: the unit's name and a hash of "
                                   "its config and weights, e.g. binconv_1a2b3c4d); every "
                                   "submodule's name starts with it, so cores coexist in one "
                                   "design")

    for name, text in (("rtlsim", "run the RTL in Verilator on the given inputs"),
                       ("golden", "run the bit-exact reference on the given inputs")):
        sp = unit_command(name, text)
        sp.add_argument("--weights", type=Path,
                        help="weight file (.npz); may be omitted for units without weights")
        sp.add_argument("--inputs", required=True, type=Path, help="input array (.npy)")
        sp.add_argument("-o", "--output", required=True, type=Path, help="output array (.npy)")
        if name == "rtlsim":
            sp.add_argument("--stall-in", type=_probability, default=0.0,
                            help="probability of an idle input cycle (default 0)")
            sp.add_argument("--stall-out", type=_probability, default=0.0,
                            help="probability of output back-pressure in a cycle (default 0)")
            sp.add_argument("--seed", type=int, default=0, help="seed of the random stalls")
            sp.add_argument("--waves", type=Path, help="write an FST waveform here")
            sp.add_argument("--fast", action="store_true",
                            help="no stalls, in a C++ harness instead of cocotb (about 50x "
                                 "faster; for long runs such as a whole DNSMOS window)")
            sp.add_argument("--check", action="store_true",
                            help="compare with the golden model; on a mismatch say where it "
                                 "starts (a network names its first differing layer), exit 1")

    sp = unit_command("synth", "synthesize and report area (and Fmax on ECP5)")
    sp.add_argument("--weights", type=Path, help="weight file (.npz); random weights if omitted")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--target", required=True, choices=SYNTH_TARGETS)
    sp.add_argument("--json", required=True, type=Path, help="result file (JSON)")
    sp.add_argument("--no-fmax", action="store_true", help="skip place and route (ECP5, iCE40)")

    sp = sub.add_parser("sweep", help="run a design-space sweep (TOML) into a results folder",
                        description="Generate, cosimulate, synthesize and estimate the energy of "
                                    "every point of a sweep file, in parallel on Dask (an "
                                    "embedded cluster, or --scheduler); points already in the "
                                    "results folder are not redone (docs/sweeps.md).")
    sp.add_argument("sweep", type=Path, help="sweep file (TOML)")
    sp.add_argument("-o", "--output", required=True, type=Path, help="results folder")
    sp.add_argument("-j", "--jobs", type=_positive, default=None,
                    help="worker processes of the embedded Dask cluster, one point each at a "
                         "time (default: the number of cores)")
    sp.add_argument("--scheduler", metavar="ADDR", default=None,
                    help="run the points on an existing Dask cluster, tcp://HOST:PORT (default: "
                         "$QHW_SCHEDULER, else an embedded cluster; docs/sweeps.md)")
    sp.add_argument("--report", type=Path, help="also write the report into this folder")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")

    sp = sub.add_parser("search", help="NSGA-II search of the GRU's per-operator formats (TOML)",
                        description="Search the 21 format widths of the GRU for validation error "
                                    "and area (NSGA-II, fitted area model; docs/search.md); "
                                    "candidates are cached, so a rerun resumes.")
    sp.add_argument("search", type=Path, help="search file (TOML)")
    sp.add_argument("-o", "--output", required=True, type=Path,
                    help="folder for search.json, front.json, front.csv, candidates.csv")
    sp.add_argument("--report", type=Path, help="also write report.md and pareto.png here")
    sp.add_argument("--export-network", metavar="NAME",
                    help="also export the chosen configuration (least area within 1 point of "
                         "homogeneous 8-bit) as a network: NAME.toml, NAME.npz, "
                         "NAME.inputs.npy, NAME.json in the output folder")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")

    sp = sub.add_parser("report", help="write a Markdown and HTML report with plots from results",
                        description="Read one or more sweep results folders and write "
                                    "report.md, report.html (self-contained) and figures/.")
    sp.add_argument("results", nargs="+", type=Path, help="results folders of 'qhw sweep'")
    sp.add_argument("-o", "--output", required=True, type=Path, help="report folder")
    sp.add_argument("--title", help="report title")

    sp = sub.add_parser("demo", help="the main job: DNSMOS P.808 with binary activations, from "
                                     "speech clips to a verified accelerator and its report "
                                     "(build/demo/)",
                        description="Score speech clips with the float DNSMOS P.808 and its "
                                    "binary-activation student, generate the accelerator, "
                                    "cosimulate one window bit-exact, synthesize for ECP5 and "
                                    "iCE40 and write report.md / report.html (docs/dnsmos.md). "
                                    "--units runs the unit sweep instead.")
    sp.add_argument("-o", "--output", type=Path, default=None,
                    help="output folder (default build/demo, with --units build/demo-units)")
    sp.add_argument("-j", "--jobs", type=_positive, default=None)
    sp.add_argument("--quick", action="store_true",
                    help="a few minutes at most: cosimulate a slice of the window and skip "
                         "synthesis (with --units: skip place and route and energy)")
    sp.add_argument("--units", action="store_true",
                    help="the unit sweep (explore/sweeps/demo.toml plus every unit's default)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")

    sp = sub.add_parser("score", help="score WAV clips with the float DNSMOS P.808 and its binary "
                                      "student (the accelerator's arithmetic)",
                        description="Every clip is checked first (16 kHz unless --resample, "
                                    "samples in [-1, 1], not silent, at least 321 samples; "
                                    "shorter than 9.01 s is repeated, as DNSMOS does); then "
                                    "each is scored, the mean over its 9.01 s windows.")
    sp.add_argument("clips", nargs="+", type=Path, help="WAV files")
    sp.add_argument("--resample", action="store_true",
                    help="resample other sample rates to 16 kHz instead of refusing them")
    sp.add_argument("--json", type=Path, help="also write the scores here (JSON)")

    sub.add_parser("units", help="list the registered units")

    sp = sub.add_parser("config", help="print a unit's default configuration (JSON or TOML), "
                                       "or every key explained",
                        description="Print the default configuration of UNIT as JSON (--toml: "
                                    "TOML), ready to edit and pass as --config; --explain lists "
                                    "every key with its meaning, type, default and allowed "
                                    "values, taken from the config class and its validation.")
    sp.add_argument("unit", help="unit name (see 'qhw units')")
    how = sp.add_mutually_exclusive_group()
    how.add_argument("--toml", action="store_true", help="TOML instead of JSON")
    how.add_argument("--explain", action="store_true", help="every key explained")
    return p


class _Version(argparse.Action):
    """``--version`` without argparse's line wrapping (one line per tool)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version_text())
        parser.exit()


def _version_text():
    """``qhw --version``: qhw's version and the pinned tools' (None: not installed)."""
    from .toolchain import versions
    v = versions()
    return "\n".join([f"qhw {v.get('qhw')}"] + [f"  {k} {v[k]}" for k in v if k != "qhw"])


# The output options of each command: (attribute, option, a folder?), checked before any work.
_OUTPUTS = {"generate": [("output", "--output", True)],
            "rtlsim": [("output", "--output", False)],
            "golden": [("output", "--output", False)],
            "synth": [("json", "--json", False)],
            "sweep": [("output", "--output", True), ("report", "--report", True)],
            "search": [("output", "--output", True), ("report", "--report", True)],
            "report": [("output", "--output", True)],
            "demo": [("output", "--output", True)],
            "score": [("json", "--json", False)]}


def _run(args):
    for attr, option, folder in _OUTPUTS.get(args.command, []):
        if getattr(args, attr, None) is not None:
            flow.check_output(option, getattr(args, attr), folder=folder)
    if getattr(args, "name", None) is not None:
        flow.check_module_name(args.name)
    if args.command == "search":
        return _search(args)
    if args.command == "units":
        for name in registry.names():
            print(f"{name:12s} {registry.get(name).summary}")
        return 0
    if args.command == "config":
        from . import config_help
        unit = registry.get(args.unit)
        sys.stdout.write(config_help.explain_text(unit) if args.explain
                         else config_help.default_text(unit, toml=args.toml))
        return 0
    if args.command == "demo":
        from . import demo
        output = args.output or Path("build/demo-units" if args.units else "build/demo")
        return demo.run(output, jobs=args.jobs, quick=args.quick, units=args.units,
                        progress=not args.no_progress)
    if args.command == "score":
        from .dnsmos import demo
        rows = demo.score_files(args.clips, resample=args.resample)
        width = max(len(r["clip"]) for r in rows)
        print(f"{'clip':{width}s}  windows  P.808 (float)  binary student")
        for r in rows:
            print(f"{r['clip']:{width}s}  {r['windows']:7d}  {r['teacher_mos']:13.3f}  "
                  f"{r['student_mos']:14.3f}")
        if args.json is not None:
            flow.write_json(args.json, rows)
        return 0
    if args.command == "sweep":
        from .explore import progress, report, sweep
        spec = sweep.load_sweep(args.sweep)  # all checks before any file is written
        summary = sweep.run_sweep(spec, args.output, jobs=args.jobs, scheduler=args.scheduler,
                                  progress=not args.no_progress)
        print(f"{summary.total} points: {summary.computed} computed, {summary.cached} from the "
              f"cache, {summary.failed} failed; results in {args.output}/results.csv and "
              f"results.json")
        if summary.interrupted:
            print("interrupted: run the same command again to finish the sweep", file=sys.stderr)
            return 130
        if summary.stopped:
            print(f"qhw: error: {summary.stopped}: {summary.total - len(summary.records)} points "
                  f"not done; run the same command again to finish the sweep", file=sys.stderr)
            return 1
        if args.report is not None:
            progress.print_ending(report.write_report([args.output], args.report))
        return 1 if summary.failed else 0
    if args.command == "report":
        from .explore import progress, report
        progress.print_ending(report.write_report(args.results, args.output, title=args.title))
        return 0

    unit = registry.get(args.unit)
    if args.config is None:
        from .config import config_from_dict
        cfg = config_from_dict(unit.config, unit.default_config)
        print(f"qhw: no --config given: using the default configuration of {unit.name} "
              f"('qhw config {unit.name}' prints it)", file=sys.stderr)
    else:
        cfg = flow.read_config(unit, args.config)

    if args.command == "generate":
        params = flow.read_params(unit, cfg, args.weights, args.seed)
        gen = flow.write_generated(unit, cfg, params, args.output, name=args.name,
                                   axis=args.axis)
        print(f"wrote {args.output}/{gen.top}.v, {gen.top}.core, lint_waivers.vlt, weights.npz, "
              f"config.json, manifest.json "
              f"(latency {gen.manifest['latency']} cycles, "
              f"{gen.manifest['cycles']['expected']} cycles per frame expected)")
        return 0

    if args.command in ("rtlsim", "golden"):
        params = (flow.read_params(unit, cfg, args.weights) if args.weights is not None
                  else unit.check_params(cfg, {}))
        x = flow.read_inputs(unit, cfg, args.inputs)
        mismatch = None
        if args.command == "golden":
            y = unit.golden(cfg, params, x)
        else:
            if args.fast and (args.stall_in or args.stall_out or args.waves):
                raise QhwInputError("--fast: runs without stalls and waveforms; drop "
                                    "--stall-in, --stall-out and --waves")
            stalls = dict(stall_in=args.stall_in, stall_out=args.stall_out, seed=args.seed,
                          waves=args.waves, fast=args.fast)
            if args.check:
                run, mismatch = flow.check_rtl(unit, cfg, params, x, **stalls)
            else:
                run, mismatch = flow.rtlsim(unit, cfg, params, x, **stalls), None
            y = run.outputs
            model = unit.cost_model(cfg, flow.frames_of(unit, cfg, x), x)
            print(f"cycles {run.cycles} (model {model.expected} with no stalls; "
                  f"formula {model.formula}), latency {run.latency}")
            if run.steady_cycles is not None:
                frames = flow.frames_of(unit, cfg, x)
                before = unit.cost_model(cfg, frames - 1, None).expected
                after = unit.cost_model(cfg, frames, None).expected
                print(f"steady state: {run.steady_cycles} cycles per frame, the last frame's "
                      f"(model {after - before} without data-dependent cycles)")
            if args.check:
                print("bit-exact against the golden model" if mismatch is None
                      else f"MISMATCH: {mismatch}")
        with flow.atomic_file(args.output) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, y)
        print(f"wrote {args.output} {y.dtype} {tuple(y.shape)}")
        return 1 if args.command == "rtlsim" and mismatch is not None else 0

    if args.command == "synth":
        from . import synth_flow
        params = flow.read_params(unit, cfg, args.weights, args.seed)
        result = synth_flow.synthesize_unit(unit, cfg, params, args.target, fmax=not args.no_fmax)
        flow.write_json(args.json, result)
        print(json.dumps(result["figures"]))
        for part in result.get("parts", []):
            print(f"  {part['name']} ({part['unit']}): {json.dumps(part['figures'])}")
        if "parts_remainder" in result:
            print(f"  the rest (FIFOs, glue; what synthesis shares across parts): "
                  f"{json.dumps(result['parts_remainder'])}")
        return 0
    raise AssertionError(args.command)


def _search(args):
    from .search import search as S
    spec = S.load_spec(args.search)  # every check before any work
    if args.export_network is not None:
        S.check_export(spec, args.export_network)
    result = S.run_search(spec, progress=not args.no_progress,
                          log=lambda t: print(f"[qhw search] {t}", file=sys.stderr))
    S.write_outputs(result, args.output)
    print(f"{len(result['candidates'])} candidates ({result['evaluated']} evaluated, "
          f"{result['cached']} cached), front of {len(result['front'])}, {result['seconds']} s; "
          f"wrote {args.output}")
    if args.report is not None:
        S.write_report(result, args.report)
        print(f"wrote {args.report / 'report.md'}")
    if args.export_network is not None:
        from .search import export
        info = export.export_chosen(result, args.output, args.export_network)
        print(export.summary_text(info))
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except QhwInputError as e:
        print(f"qhw: error: {e}", file=sys.stderr)
        return 2
    except QhwToolError as e:
        print(f"qhw: tool error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
