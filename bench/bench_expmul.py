"""Benchmarks of the sign-exponent-only units against conventional arithmetic.

1. ``expmul`` (fp32, bf16, fp16 and int8 fixed-point activations, E = 5 weights) against the
   ``mulbase`` fp32, bf16 and int8 x int8 multipliers: transistors (generic CMOS flow), ECP5
   LUT4/CCU2C/FF/MULT18X18D and Fmax (nextpnr-ecp5), xc7 LUT/CARRY4/FF/DSP48E1. Every design is the
   registered unit itself (stream wrapper, input and output registers, latency 2), so the same
   registers surround every multiplier.
2. ``expdot`` (N lanes, fp32) against a conventional fp32 dot product of the same lanes: the same
   pipeline and the same exact accumulator with fp32 x fp32 multipliers (RNE) in place of the
   exponent adders and fp32 weights in the weight memory. This isolates what the multipliers
   cost; a float adder tree (a rounding per addition) is not built (docs/expmul.md).

Run: ``.venv/bin/python bench/bench_expmul.py [--quick] [--lanes 16 --simd 4]``. Writes
``build/bench/expmul.json`` and ``build/bench/expmul.md``; docs/benchmarks_expmul.md records a run.
``--quick`` skips place and route (no Fmax); the dot products are placed and routed only with
``--dot-fmax`` (nextpnr takes well over ten minutes on them).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from qhw import registry, synth_flow
from qhw.config import config_from_dict
from qhw.golden import expmul as g
from qhw.hdl.common import to_verilog
from qhw.hdl.expdot import ExpDot
from qhw.hdl.mulbase import fp_mul_logic

MULTIPLIERS = [
    ("expmul fp32 (E=5)", "expmul", {"act_format": "fp32", "weight_exp_bits": 5,
                                     "weight_bias": 31}),
    ("expmul bf16 (E=5)", "expmul", {"act_format": "bf16", "weight_exp_bits": 5,
                                     "weight_bias": 31}),
    ("expmul fp16 (E=5)", "expmul", {"act_format": "fp16", "weight_exp_bits": 5,
                                     "weight_bias": 15}),
    ("expmul int8 fixed (E=3)", "expmul", {"act_format": "fixed", "act_bits": 8,
                                           "weight_exp_bits": 3, "weight_bias": 7}),
    ("fp32 multiplier (RNE)", "mulbase", {"kind": "fp32"}),
    ("bf16 multiplier (RNE)", "mulbase", {"kind": "bf16"}),
    ("int8 x int8 multiplier", "mulbase", {"kind": "int8"}),
]


class Fp32MulDot(ExpDot):
    """The conventional baseline of ``expdot``: fp32 weights and fp32 x fp32 multipliers (RNE,
    flush to zero), then the same alignment, exact accumulator and final rounding."""

    def weight_bits(self):
        return 32

    def weight_memory(self, cfg, params):
        w = np.asarray(params["weights_fp32"], dtype=np.float32).view(np.uint32)
        w = w.reshape(cfg.fold, cfg.simd)
        return [sum(int(v) << (32 * s) for s, v in enumerate(row)) for row in w]

    def product(self, m, x, w, name):
        return fp_mul_logic(m, self.cfg.fmt, x, w, name=name)


def figures(verilog, top, fmax):
    gen = synth_flow.synthesize_verilog(verilog, top, "generic")["figures"]
    ecp5 = synth_flow.synthesize_verilog(verilog, top, "ecp5", fmax=fmax)["figures"]
    xc7 = synth_flow.synthesize_verilog(verilog, top, "xc7")["figures"]
    row = {"transistors": gen["transistors"], "generic_cells": gen["cells"],
           "ecp5": {k: ecp5[k] for k in ("LUT4", "CCU2C", "FF", "MULT18X18D") if k in ecp5},
           "xc7": {k: xc7[k] for k in ("LUT", "CARRY4", "FF", "DSP") if k in xc7}}
    if "fmax_mhz" in ecp5:
        row["ecp5"]["fmax_mhz"] = ecp5["fmax_mhz"]
    return row


def multiplier_rows(fmax):
    rows = []
    for label, unit_name, cfg_dict in MULTIPLIERS:
        unit = registry.get(unit_name)
        cfg = config_from_dict(unit.config, cfg_dict)
        gen_v = to_verilog(unit.generator(cfg, {}), unit.name)
        row = {"design": label, "unit": unit_name, "config": cfg_dict,
               **figures(gen_v, unit.name, fmax)}
        rows.append(row)
        print(f"  {label}: {row['transistors']} transistors, xc7 {row['xc7']}, "
              f"ecp5 {row['ecp5']}", flush=True)
    return rows


def dot_rows(lanes, simd, fmax):
    cfg = g.ExpDotConfig(lanes=lanes, simd=simd, act_format="fp32", weight_exp_bits=5,
                         weight_bias=31)
    rng = np.random.default_rng(0)
    params = g.expdot_random_params(cfg, rng)
    rows = []
    v = to_verilog(ExpDot(cfg, params), "expdot")
    rows.append({"design": f"expdot fp32 N={lanes} SIMD={simd} (E=5)",
                 "acc_bits": cfg.acc_bits, **figures(v, "expdot", fmax)})
    base = Fp32MulDot(cfg, {"weights_fp32": rng.standard_normal(lanes).astype(np.float32)})
    v = to_verilog(base, "fp32dot")
    rows.append({"design": f"fp32 x fp32 dot N={lanes} SIMD={simd} (same accumulator)",
                 "acc_bits": cfg.acc_bits, **figures(v, "fp32dot", fmax)})
    for r in rows:
        print(f"  {r['design']}: {r['transistors']} transistors, xc7 {r['xc7']}", flush=True)
    return rows


def _cell(r, target, key):
    value = r[target].get(key)
    return "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))


def markdown(res):
    out = ["### Multipliers (registered unit: input and output registers, latency 2)", "",
           "| design | transistors | vs fp32 mul | ECP5 LUT4 | CCU2C | FF | MULT18X18D | "
           "Fmax MHz | xc7 LUT | CARRY4 | FF | DSP |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fp32 = next(r for r in res["multipliers"] if r["design"].startswith("fp32 multiplier"))
    for r in res["multipliers"]:
        out.append(
            f"| {r['design']} | {r['transistors']} | {fp32['transistors'] / r['transistors']:.1f}x "
            f"fewer | {_cell(r, 'ecp5', 'LUT4')} | {_cell(r, 'ecp5', 'CCU2C')} | "
            f"{_cell(r, 'ecp5', 'FF')} | {_cell(r, 'ecp5', 'MULT18X18D')} | "
            f"{_cell(r, 'ecp5', 'fmax_mhz')} | {_cell(r, 'xc7', 'LUT')} | "
            f"{_cell(r, 'xc7', 'CARRY4')} | {_cell(r, 'xc7', 'FF')} | {_cell(r, 'xc7', 'DSP')} |")
    out += ["", "### Dot products", "",
            "| design | accumulator bits | transistors | ECP5 LUT4 | CCU2C | FF | MULT18X18D | "
            "Fmax MHz | xc7 LUT | CARRY4 | FF | DSP |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["dot"]:
        out.append(
            f"| {r['design']} | {r['acc_bits']} | {r['transistors']} | "
            f"{_cell(r, 'ecp5', 'LUT4')} | {_cell(r, 'ecp5', 'CCU2C')} | {_cell(r, 'ecp5', 'FF')} | "
            f"{_cell(r, 'ecp5', 'MULT18X18D')} | {_cell(r, 'ecp5', 'fmax_mhz')} | "
            f"{_cell(r, 'xc7', 'LUT')} | {_cell(r, 'xc7', 'CARRY4')} | {_cell(r, 'xc7', 'FF')} | "
            f"{_cell(r, 'xc7', 'DSP')} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="no place and route (no Fmax)")
    p.add_argument("--dot-fmax", action="store_true",
                   help="also place and route the dot products (tens of minutes: they are large)")
    p.add_argument("--lanes", type=int, default=16)
    p.add_argument("--simd", type=int, default=4)
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    print("multipliers:", flush=True)
    res = {"multipliers": multiplier_rows(not args.quick)}
    print("dot products:", flush=True)
    res["dot"] = dot_rows(args.lanes, args.simd, args.dot_fmax and not args.quick)
    fp32 = next(r for r in res["multipliers"] if r["design"].startswith("fp32 multiplier"))
    em = res["multipliers"][0]
    res["fp32_transistor_ratio"] = fp32["transistors"] / em["transistors"]
    res["target_10x_met"] = res["fp32_transistor_ratio"] >= 10
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "expmul.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (args.output / "expmul.md").write_text(md)
    print(md)
    print(f"fp32 multiplier / expmul fp32 transistors: {res['fp32_transistor_ratio']:.1f}x "
          f"(target >= 10x: {'met' if res['target_10x_met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
