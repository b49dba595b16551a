"""Benchmarks of ``gru``: area (generic transistors, ECP5, Xilinx 7-series) and ECP5 Fmax of
homogeneous 8-bit, homogeneous 4-bit and mixed-precision configurations at the same size and
folding, and cycles per step measured in Verilator against the cost model.

Run: ``.venv/bin/python bench/bench_gru.py [--no-fmax] [--skip synth|cycles]``. Writes
``build/bench/gru.json`` and ``build/bench/gru.md``; docs/gru.md records a run. Synthesis results
are cached (qhw.synth_flow), so a second run only re-reads them.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from qhw import flow, registry, synth_flow
from qhw.config import config_from_dict
from qhw.cosim import runner
from qhw.golden import gru as g
from qhw.units.gru import MIXED_A, MIXED_B

from _report import table, write_results

SIZE = {"input_size": 8, "hidden_size": 16, "macs": 4}
STEPS = (2, 6)  # sequences, steps for the cycle measurement

#: Mixed C: 4-bit weights and matrix products, 5-6-bit gates, 8-bit state and final add.
MIXED_C = {"input": [6, 3], "weight": [4, 2], "bias": [6, 3], "state": [8, 7],
           "mm_ir": [5, 1], "mm_hr": [5, 1], "mm_iz": [5, 1], "mm_hz": [5, 1], "mm_in": [5, 1],
           "mm_hn": [5, 1], "add_r": [5, 1], "add_z": [5, 1], "add_n": [5, 1],
           "sig_r": [5, 4], "sig_z": [6, 5], "tanh_n": [6, 5], "mul_rn": [5, 1],
           "sub_z": [6, 5], "mul_n": [6, 5], "mul_zh": [7, 6], "add_h": [8, 7]}

CONFIGS = {
    "homogeneous_8": dict(SIZE, bits=8, lut_bits=8),
    "homogeneous_4": dict(SIZE, bits=4, lut_bits=5),
    "mixed_a": dict(SIZE, formats=MIXED_A, lut_bits=6),
    "mixed_b": dict(SIZE, formats=MIXED_B, lut_bits=7),
    "mixed_c": dict(SIZE, formats=MIXED_C, lut_bits=6),
}
TARGETS = ("generic", "ecp5", "xc7")


def synth_rows(fmax):
    unit = registry.get("gru")
    rows = {}
    for name, cfg_dict in CONFIGS.items():
        cfg = config_from_dict(unit.config, cfg_dict)
        params = flow.read_params(unit, cfg, None, seed=0)
        row = {}
        for target in TARGETS:
            print(f"  {name} {target} ...", flush=True)
            r = synth_flow.synthesize_unit(unit, cfg, params, target, fmax=fmax)
            row[target] = r["figures"]
        rows[name] = row
    return rows


def cycle_rows():
    unit = registry.get("gru")
    rows = {}
    for name, cfg_dict in CONFIGS.items():
        cfg = config_from_dict(unit.config, cfg_dict)
        rng = np.random.default_rng(0)
        params = unit.check_params(cfg, unit.random_params(cfg, rng))
        x = unit.random_inputs(cfg, rng, STEPS)
        gen = flow.generate(unit, cfg, params, frames=STEPS)
        model = unit.cost_model(cfg, STEPS)
        sim = runner.simulate(gen.verilog, gen.top, unit.testbench, unit.pack_inputs(cfg, x),
                              unit.output_words(cfg, STEPS), timeout_cycles=4 * model.expected)
        got = unit.unpack_outputs(cfg, sim.outputs, STEPS)
        out = sim.out_times["o"]
        per_step = [b - a for a, b in zip(out, out[1:])]
        one = unit.cost_model(cfg, (1, 2)).expected - unit.cost_model(cfg, (1, 1)).expected
        rows[name] = {"measured": sim.cycles, "model": model.expected,
                      "measured_per_step": sorted(set(per_step)), "model_per_step": one,
                      "formula_per_step": 3 * cfg.hidden_size * (cfg.chunks_i + cfg.chunks_h),
                      "3H(I+H)/MACS": cfg.macs_per_step / cfg.macs,
                      "bit_exact": bool((got == unit.golden(cfg, params, x)).all())}
        print(f"  {name}: {sim.cycles} cycles (model {model.expected})", flush=True)
    return rows


def _fmt_summary(cfg_dict):
    cfg = config_from_dict(g.GruConfig, cfg_dict)
    totals = [cfg.fmt(n).total for n in g.FORMAT_NAMES]
    return (f"w{cfg.fmt('weight').total} x{cfg.fmt('input').total} h{cfg.fmt('state').total}, "
            f"operators {min(totals)}-{max(totals)} bits (mean {np.mean(totals):.1f})")


def markdown(res):
    out = [f"### Area and Fmax, I = {SIZE['input_size']}, H = {SIZE['hidden_size']}, "
           f"MACS = {SIZE['macs']}", ""]
    base = res["synth"]["homogeneous_8"]["generic"]["transistors"] if "synth" in res else None
    rows = []
    for name, row in res.get("synth", {}).items():
        gen, e, x = row["generic"], row["ecp5"], row["xc7"]
        rows.append([name, _fmt_summary(CONFIGS[name]), gen["transistors"],
                     f"{gen['transistors'] / base:.2f}", gen["transistors_comb"],
                     gen["transistors_seq"], gen["transistors_mem"], e["LUT4"], e["CCU2C"], e["FF"],
                     e["DP16KD"], e["LUTRAM"], e["MULT18X18D"],
                     f"{e.get('fmax_mhz', float('nan')):.1f}",
                     x["LUT"], x["FF"], x["CARRY4"], x["BRAM"], x["DSP"]])
    # The generic total and its parts: gates, flip-flops (20 each), memory bits (6 each).
    out += table(["config", "formats", "transistors (generic)", "vs 8-bit", "comb", "flip-flops",
                  "memory bits", "ECP5 LUT4", "CCU2C",
                  "FF", "DP16KD", "LUTRAM", "MULT18X18D", "ECP5 Fmax MHz", "xc7 LUT", "xc7 FF",
                  "CARRY4", "BRAM", "DSP48E1"], rows)
    if res.get("cycles"):
        out += ["", f"### Cycles, {STEPS[0]} sequences x {STEPS[1]} steps, no stalls", ""]
        out += table(
            ["config", "measured", "model", "measured per step", "model per step",
             "3H(ceil(I/M)+ceil(H/M))", "3H(I+H)/M", "bit-exact"],
            ([name, r["measured"], r["model"], r["measured_per_step"], r["model_per_step"],
              r["formula_per_step"], f"{r['3H(I+H)/MACS']:g}", r["bit_exact"]]
             for name, r in res["cycles"].items()))
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-fmax", action="store_true", help="skip place and route on ECP5")
    p.add_argument("--skip", nargs="*", default=[], choices=["synth", "cycles"])
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    res = {"configs": CONFIGS}
    if "cycles" not in args.skip:
        print("cycles:", flush=True)
        res["cycles"] = cycle_rows()
    if "synth" not in args.skip:
        print("synthesis:", flush=True)
        res["synth"] = synth_rows(fmax=not args.no_fmax)
    write_results(args.output, "gru", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
