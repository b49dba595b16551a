"""``qhw demo``: the main job on built-in defaults.

For every registered unit, with its default configuration and seeded random weights: generate the
Verilog and manifest, cosimulate in Verilator against the golden model (once with no stalls for
the cycle count, once under random stalls and back-pressure), synthesize for the generic,
ECP5 and Xilinx 7-series targets, and write ``report.md`` and ``report.json``.
"""

import json
import time

import numpy as np

from . import flow, registry, synth_flow, toolchain
from .config import config_from_dict, config_to_dict

FRAMES = 2
STALL = 0.3
TARGETS = ("generic", "ecp5", "xc7")
#: Above this many LUT4s the demo skips ECP5 place and route (it would dominate the run time).
FMAX_LUT_LIMIT = 4000


def _say(text):
    print(f"[qhw demo] {text}", flush=True)


def run_unit(unit, outdir, *, fmax=True):
    """Generate, cosimulate and synthesize one unit with its default config; returns its record."""
    cfg = config_from_dict(unit.config, unit.default_config, where=f"{unit.name} default config")
    rng = np.random.default_rng(0)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = unit.random_inputs(cfg, rng, FRAMES)
    expected = unit.golden(cfg, params, x)

    _say(f"{unit.name}: generating Verilog and manifest")
    gen = flow.write_generated(unit, cfg, params, outdir / unit.name)
    np.save(outdir / unit.name / "inputs.npy", x)
    np.save(outdir / unit.name / "expected.npy", expected)

    _say(f"{unit.name}: cosimulating in Verilator ({FRAMES} frames, no stalls)")
    clean = flow.rtlsim(unit, cfg, params, x)
    _say(f"{unit.name}: cosimulating with {STALL:.0%} input stalls and output back-pressure")
    stalled = flow.rtlsim(unit, cfg, params, x, stall_in=STALL, stall_out=STALL, seed=1)
    model = unit.cost_model(cfg, flow.frames_of(unit, cfg, x), x)
    cosim = {
        "frames": FRAMES,
        "bit_exact": flow.first_mismatch(unit, clean.outputs, expected, cfg) is None,
        "bit_exact_under_stalls": flow.first_mismatch(unit, stalled.outputs, expected, cfg) is None,
        "mismatch": (flow.first_mismatch(unit, clean.outputs, expected, cfg)
                     or flow.first_mismatch(unit, stalled.outputs, expected, cfg)),
        "cycles_measured": clean.cycles,
        "cycles_model": model.expected,
        "cycles_formula": model.formula,
        "latency_measured": clean.latency,
        "latency_model": model.latency,
        "cycles_under_stalls": stalled.cycles,
        "notes": model.notes,
    }

    synth = {}
    for target in TARGETS:
        _say(f"{unit.name}: synthesizing for {target}")
        started = time.monotonic()
        result = synth_flow.synthesize_verilog(gen.verilog, gen.top, target, fmax=False)
        notes = list(result.get("notes", []))
        if target == "ecp5" and fmax:
            luts = result["figures"]["LUT4"]
            if luts <= FMAX_LUT_LIMIT:
                _say(f"{unit.name}: place and route on ECP5 for Fmax ({luts} LUT4)")
                result = synth_flow.synthesize_verilog(gen.verilog, gen.top, target, fmax=True)
                notes = list(result.get("notes", []))
            else:
                notes.append(f"Fmax skipped in the demo: {luts} LUT4 > {FMAX_LUT_LIMIT} (place "
                             f"and route takes many minutes); run 'qhw synth {unit.name} "
                             f"--target ecp5' for it")
        synth[target] = {"figures": result["figures"], "tools": result["tools"],
                         "notes": notes, "seconds": round(time.monotonic() - started, 1)}
    return {"unit": unit.name, "summary": unit.summary, "config": config_to_dict(cfg),
            "manifest": f"{unit.name}/manifest.json", "cosim": cosim, "synth": synth}


def _markdown(records, versions):
    lines = ["# qhw demo report", "",
             "Each unit with its default configuration and seeded random weights: cosimulated in "
             "Verilator against the golden model, and synthesized with Yosys (and nextpnr-ecp5 "
             "for Fmax).", "",
             "Tools: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v), ""]
    for rec in records:
        c = rec["cosim"]
        lines += [f"## {rec['unit']}: {rec['summary']}", "",
                  "Config: `" + json.dumps(rec["config"]) + "`", "",
                  "| check | result |", "|---|---|",
                  f"| bit-exact, no stalls | {'PASS' if c['bit_exact'] else 'FAIL'} |",
                  f"| bit-exact, {STALL:.0%} stalls and back-pressure | "
                  f"{'PASS' if c['bit_exact_under_stalls'] else 'FAIL'} |",
                  f"| cycles for {c['frames']} frames (measured / model / FINN formula) | "
                  f"{c['cycles_measured']} / {c['cycles_model']} / {c['cycles_formula']} |",
                  f"| latency (measured / model) | {c['latency_measured']} / {c['latency_model']} |",
                  f"| cycles under stalls | {c['cycles_under_stalls']} |", ""]
        if c["mismatch"]:
            lines += [f"Mismatch: {c['mismatch']}", ""]
        lines += [f"Cycle model: {c['notes']}", ""]
        for target, s in rec["synth"].items():
            figures = ", ".join(f"{k} {v}" for k, v in s["figures"].items() if v not in (0, None))
            lines += [f"- **{target}**: {figures}"]
            lines += [f"  - {note}" for note in s["notes"] if note.startswith("Fmax skipped")]
        lines += ["", f"Generated files and manifest: `{rec['manifest']}`.", ""]
    return "\n".join(lines) + "\n"


def run(outdir, *, fmax=True):
    """Run the demo into ``outdir``; exit status 0 when every unit is bit-exact."""
    records = []
    with flow.atomic_dir(outdir) as tmp:
        for name in registry.names():
            records.append(run_unit(registry.get(name), tmp, fmax=fmax))
        versions = toolchain.versions()
        (tmp / "report.json").write_text(
            json.dumps({"tools": versions, "units": records}, indent=2) + "\n")
        (tmp / "report.md").write_text(_markdown(records, versions))
    _say(f"wrote {outdir}/report.md and report.json")
    ok = all(r["cosim"]["bit_exact"] and r["cosim"]["bit_exact_under_stalls"] for r in records)
    print((outdir / "report.md").read_text())
    return 0 if ok else 1
