"""Benchmarks of the sign-exponent-only units against conventional arithmetic.

1. ``expmul`` (fp32, bf16, fp16 and int8 fixed-point activations, E = 5 weights) against the
   ``mulbase`` fp32, bf16 and int8 x int8 multipliers: transistors (generic CMOS flow), ECP5
   LUT4/CCU2C/FF/MULT18X18D and Fmax (nextpnr-ecp5), xc7 LUT/CARRY4/FF/DSP48E1. Every design is the
   registered unit itself (stream wrapper, input and output registers, latency 2), so the same
   registers surround every multiplier.
2. ``expdot`` (N lanes, SIMD per cycle, fp32) against the conventional fp32 dot product of the
   same lanes and folding, ``fpdot``: fp32 multipliers (RNE), a rounding fp32 adder tree and a
   rounding fp32 accumulator. A third row keeps ``expdot``'s pipeline and exact accumulator with
   fp32 x fp32 multipliers in place of the exponent adders (what the multipliers alone cost), and
   the fp16 pair (placed and routed: they are small) shows the designs when ``expdot``'s exact
   accumulator is narrow.
3. Accuracy (golden models, no synthesis): the same fp32 activations and power-of-two weights
   through ``expdot`` (exact sum, one rounding) and ``fpdot`` (a rounding per operation),
   error against the exact sum in units of the fp32 ulp of the exact sum.
4. Fmax of the two fp32 dot products at a smaller size (``--fmax-lanes``, ``--fmax-simd``;
   default N = 4, SIMD = 2), because placing the 16-lane fp32 ``expdot`` takes nextpnr well over
   ten minutes on two cores (the 4-lane one about 20 minutes on a loaded machine).

5. ``--seofp-only`` (issue 15, alone): the bounded, deep-pipelined ``expdot`` (fp32, fp16), the
   exact 16-bit fixed-point shift-and-add ``expdot``, ``fpdot`` and an int8 MAC dot product
   (``macconv`` 1x1) of the same lanes, with Fmax, and the accuracy of the full-range, bounded
   and calibrated accumulators and ``fpdot`` against the exact sum (``expmul_seofp.json/.md``).

Run: ``.venv/bin/python bench/bench_expmul.py [--quick] [--lanes 16 --simd 4]``. Writes
``build/bench/expmul.json`` and ``build/bench/expmul.md``; docs/benchmarks_expmul.md records a run.
``--quick`` skips place and route (no Fmax); the full-size dot products are placed and routed only
with ``--dot-fmax``.
"""

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from qhw import registry, synth_flow
from qhw.config import config_from_dict
from qhw.golden import expmul as g
from qhw.golden import fpdot as gf
from qhw.hdl.common import to_verilog
from qhw.hdl.expdot import ExpDot
from qhw.hdl.mulbase import fp_mul_logic

from _report import table, write_results

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


def _unit_verilog(unit_name, cfg_dict, seed=0):
    """Verilog of a registered unit with its random weights (seeded), and its config."""
    unit = registry.get(unit_name)
    cfg = config_from_dict(unit.config, cfg_dict)
    params = unit.check_params(cfg, unit.random_params(cfg, np.random.default_rng(seed)))
    return to_verilog(unit.generator(cfg, params), unit.name), cfg


class Fp32MulDot(ExpDot):
    """``expdot``'s pipeline with fp32 weights and fp32 x fp32 multipliers (RNE, flush to zero) in
    place of the exponent adders, then the same alignment, exact accumulator and final rounding:
    what the multipliers alone cost. (The conventional dot product is the ``fpdot`` unit.)"""

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
           # the total's parts: gates, flip-flops, memory bits (synth.flows.generic_figures)
           **{k: gen[k] for k in ("transistors_comb", "transistors_seq", "transistors_mem",
                                  "flip_flops", "memory_bits")},
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


def _expdot_dict(fmt, lanes, simd):
    return {"lanes": lanes, "simd": simd, "act_format": fmt, "weight_exp_bits": 5,
            "weight_bias": 15 if fmt == "fp16" else 31}


def dot_designs(lanes, simd, formats=("fp32", "fp16")):
    """(label, accumulator, unit, config, Verilog, top, format) of the dot products compared."""
    out = []
    for fmt in formats:
        v, cfg = _unit_verilog("expdot", _expdot_dict(fmt, lanes, simd))
        out.append((f"expdot {fmt} (E=5): exponent adders, exact accumulator, one rounding",
                    f"exact, {cfg.acc_bits} bits", "expdot", _expdot_dict(fmt, lanes, simd), v,
                    "expdot", fmt))
        fp = {"lanes": lanes, "simd": simd, "act_format": fmt}
        v, _ = _unit_verilog("fpdot", fp)
        out.append((f"fpdot {fmt}: {fmt} multipliers, rounding adder tree and accumulator",
                    f"{fmt}, rounds every add", "fpdot", fp, v, "fpdot", fmt))
        if fmt == "fp32":
            # expdot's own pipeline with fp32 x fp32 multipliers: what the multipliers alone cost
            ecfg = config_from_dict(g.ExpDotConfig, _expdot_dict(fmt, lanes, simd))
            rng = np.random.default_rng(0)
            base = Fp32MulDot(ecfg, {"weights_fp32": rng.standard_normal(lanes).astype(np.float32)})
            out.append(("fp32 x fp32 multipliers into expdot's exact accumulator",
                        f"exact, {ecfg.acc_bits} bits", None, None,
                        to_verilog(base, "fp32dot"), "fp32dot", fmt))
    return out


def dot_rows(lanes, simd, fmax_fp32, fmax_fp16):
    """The dot-product table; Fmax of the fp32 rows only with ``fmax_fp32`` (slow to place)."""
    rows = []
    for label, acc, unit_name, cfg_dict, v, top, fmt in dot_designs(lanes, simd):
        fmax = fmax_fp32 if fmt == "fp32" else fmax_fp16
        row = {"design": label, "accumulator": acc, "unit": unit_name, "config": cfg_dict,
               "lanes": lanes, "simd": simd, **figures(v, top, fmax)}
        rows.append(row)
        print(f"  {label}: {row['transistors']} transistors, xc7 {row['xc7']}, "
              f"ecp5 {row['ecp5']}", flush=True)
    return rows


def _ulp_error(bits, exact):
    """|value - exact| in units of the fp32 ulp at the exact sum's magnitude (Fractions)."""
    value = Fraction(float(np.array([bits], np.uint32).view(np.float32)[0]))
    return _ulp_error_fmt(value, exact, 23)


def accuracy(lanes, simd, vectors=10000, seed=0):
    """expdot and fpdot on the same data against the exact dot product (Fractions).

    Activations: fp32 N(0, 1). Weights: +-2^-k, k uniform in 0..6 (what a quantized layer
    holds), given to expdot as codes and to fpdot as the same fp32 values, so both compute the
    same mathematical dot product.
    """
    rng = np.random.default_rng(seed)
    ecfg = config_from_dict(g.ExpDotConfig, _expdot_dict("fp32", lanes, simd))
    fcfg = gf.FpDotConfig(lanes=lanes, simd=simd, act_format="fp32")
    k = rng.integers(0, 7, lanes)
    sign = rng.integers(0, 2, lanes)
    codes = (sign << ecfg.weight_exp_bits) | (ecfg.weight_bias - k)
    wf = g.decode_weights(ecfg, codes).astype(np.float32)
    x = rng.standard_normal((vectors, lanes)).astype(np.float32)
    xb = x.view(np.uint32).astype(np.int64)
    ye = g.expdot_ref(ecfg, xb, codes)
    yf = gf.fpdot_ref(fcfg, xb, wf.view(np.uint32).astype(np.int64))
    errs = {"expdot": [], "fpdot": []}
    for v in range(vectors):
        exact = sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(x[v], wf)),
                    Fraction(0))
        errs["expdot"].append(_ulp_error(ye[v], exact))
        errs["fpdot"].append(_ulp_error(yf[v], exact))
    out = {"lanes": lanes, "simd": simd, "vectors": vectors,
           "data": "x ~ N(0, 1) fp32; w = +-2^-k, k uniform in 0..6"}
    for name, e in errs.items():
        e = np.array(e)
        out[name] = {"correctly_rounded": float(np.mean(e <= 0.5)),
                     "mean_ulp": float(np.mean(e)), "p99_ulp": float(np.quantile(e, 0.99)),
                     "max_ulp": float(np.max(e))}
    print(f"  accuracy: {out}", flush=True)
    return out


def dot_fmax_rows(lanes, simd):
    """ECP5 area and Fmax of expdot and fpdot (fp32) at a size that nextpnr can place in
    minutes rather than hours."""
    rows = []
    for label, acc, unit_name, cfg_dict, v, top, _ in dot_designs(lanes, simd, formats=("fp32",)):
        if unit_name is None:
            continue
        ecp5 = synth_flow.synthesize_verilog(v, top, "ecp5", fmax=True)["figures"]
        row = {"design": label, "accumulator": acc, "unit": unit_name, "config": cfg_dict,
               "lanes": lanes, "simd": simd,
               "ecp5": {k: ecp5[k] for k in ("LUT4", "CCU2C", "FF", "MULT18X18D", "fmax_mhz")
                        if k in ecp5}}
        rows.append(row)
        print(f"  {label} N={lanes} SIMD={simd}: ecp5 {row['ecp5']}", flush=True)
    return rows


# Issue 15: the sized, pipelined SEOFP dot products ------------------------------------------------

#: exp_range of the bounded accumulators, with margin around what the accuracy data reach
#: (N(0, 1) activations times 2^0..2^-6 weights; calibrated on 500 vectors: fp32 [-17, 1], fp16
#: [-14, 1], where -14 is fp16's smallest normal exponent).
SEOFP_RANGES = {"fp32": (-24, 8), "fp16": (-14, 4)}


def seofp_designs(lanes, simd):
    """(label, unit, config) of the issue-15 comparison, all at the same lanes and SIMD."""
    out = []
    for fmt in ("fp32", "fp16"):
        d = dict(_expdot_dict(fmt, lanes, simd), accumulator="bounded",
                 exp_range=list(SEOFP_RANGES[fmt]), pipeline="deep")
        out.append((f"expdot {fmt}, bounded {SEOFP_RANGES[fmt]}, deep pipeline", "expdot", d))
        out.append((f"fpdot {fmt} (not pipelined further)", "fpdot",
                    {"lanes": lanes, "simd": simd, "act_format": fmt}))
    out.append(("expdot 16-bit fixed, exact shift-and-add (E=3), deep pipeline", "expdot",
                {"lanes": lanes, "simd": simd, "act_format": "fixed", "act_bits": 16,
                 "weight_exp_bits": 3, "weight_bias": 4, "product": "exact",
                 "pipeline": "deep"}))
    out.append(("int8 MAC dot product (macconv 1x1, c_in = N, pe 1)", "macconv",
                {"c_in": lanes, "c_out": 1, "height": 1, "width": 1, "kernel": [1, 1],
                 "padding": "valid", "pe": 1, "simd": simd, "act_bits": 8, "weight_bits": 8,
                 "output": "sum"}))
    return out


def seofp_rows(lanes, simd, fmax):
    rows = []
    for label, unit_name, cfg_dict in seofp_designs(lanes, simd):
        v, cfg = _unit_verilog(unit_name, cfg_dict)
        row = {"design": label, "unit": unit_name, "config": cfg_dict,
               "acc_bits": getattr(cfg, "acc_bits", None), **figures(v, unit_name, fmax)}
        rows.append(row)
        print(f"  {label}: {row['transistors']} transistors, xc7 {row['xc7']}, "
              f"ecp5 {row['ecp5']}", flush=True)
    return rows


def _ulp_error_fmt(value, exact, mbits):
    """|value - exact| in ulps of a format with ``mbits`` fraction bits at the exact sum's
    magnitude (Fractions)."""
    mag = abs(exact)
    if mag == 0:
        return 0.0 if value == 0 else float("inf")
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    while Fraction(2) ** e > mag:
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    return float(abs(value - exact) / Fraction(2) ** (e - mbits))


def seofp_accuracy(lanes, simd, vectors=5000, seed=0):
    """Full-range expdot, bounded expdot (the benchmark's exp_range and one calibrated on the
    first 500 vectors) and fpdot against the exact dot product (Fractions), fp32 and fp16;
    activations N(0, 1), weights +-2^-k, k uniform in 0..6."""
    out = {"lanes": lanes, "simd": simd, "vectors": vectors,
           "data": "x ~ N(0, 1); w = +-2^-k, k uniform in 0..6"}
    for fmt in ("fp32", "fp16"):
        rng = np.random.default_rng(seed)
        full = config_from_dict(g.ExpDotConfig, _expdot_dict(fmt, lanes, simd))
        k = rng.integers(0, 7, lanes)
        sign = rng.integers(0, 2, lanes)
        codes = (sign << full.weight_exp_bits) | (full.weight_bias - k)
        native, uint = {"fp32": (np.float32, np.uint32), "fp16": (np.float16, np.uint16)}[fmt]
        x = rng.standard_normal((vectors, lanes)).astype(native)
        xb = x.view(uint).astype(np.int64)
        calibrated = g.calibrate_exp_range(full, x[:500], codes)
        designs = {"expdot exact (full range)": full}
        for name, rr in (("bench", SEOFP_RANGES[fmt]), ("calibrated", calibrated)):
            designs[f"expdot bounded {tuple(rr)} ({name})"] = config_from_dict(
                g.ExpDotConfig, dict(_expdot_dict(fmt, lanes, simd), accumulator="bounded",
                                     exp_range=list(rr)))
        ys = {name: g.expdot_ref(c, xb, codes) for name, c in designs.items()}
        fcfg = gf.FpDotConfig(lanes=lanes, simd=simd, act_format=fmt)
        wf = g.decode_weights(full, codes).astype(native)
        ys["fpdot"] = gf.fpdot_ref(fcfg, xb, wf.view(uint).astype(np.int64))
        res = {"calibrated_exp_range": list(calibrated)}
        for name, y in ys.items():
            vals = y.astype(uint).view(native).astype(np.float64)
            errs = []
            for v in range(vectors):
                exact = sum((Fraction(float(a)) * Fraction(float(b)) for a, b in
                             zip(x[v], wf)), Fraction(0))
                errs.append(_ulp_error_fmt(Fraction(float(vals[v])), exact, full.fmt.mbits))
            e = np.array(errs)
            res[name] = {"correctly_rounded": float(np.mean(e <= 0.5)),
                         "mean_ulp": float(np.mean(e)), "max_ulp": float(np.max(e))}
        out[fmt] = res
        print(f"  accuracy {fmt}: {res}", flush=True)
    return out


def seofp_markdown(res):
    rows = res["seofp"]
    by = {r["design"]: r for r in rows}
    out = [f"### Sized and pipelined SEOFP dot products (N = {res['lanes']}, SIMD = "
           f"{res['simd']})", ""]
    out += table(["design", "acc bits", "transistors"] + GENERIC_HEADER + AREA_HEADER,
                 ([r["design"], r["acc_bits"] or "-", r["transistors"], *_parts(r),
                   *_cells(r, ECP5_CELLS + XC7_CELLS)] for r in rows))
    out += [""]
    for a, b in (("expdot fp32", "fpdot fp32"), ("expdot fp16", "fpdot fp16"),
                 ("expdot 16-bit fixed", "int8 MAC")):
        ra = next(r for n, r in by.items() if n.startswith(a))
        rb = next(r for n, r in by.items() if n.startswith(b))
        ratio = rb["transistors"] / ra["transistors"]
        wording = (f"{ratio:.2f}x fewer" if ratio >= 1 else f"{1 / ratio:.2f}x more")
        out.append(f"- {a} vs {b}: {wording} transistors (flip-flops and memory bits counted), "
                   f"ECP5 LUT4 {ra['ecp5'].get('LUT4')} vs {rb['ecp5'].get('LUT4')}, "
                   f"MULT18X18D {ra['ecp5'].get('MULT18X18D', 0)} vs "
                   f"{rb['ecp5'].get('MULT18X18D', 0)}, "
                   f"Fmax {_cell(ra, 'ecp5', 'fmax_mhz')} vs {_cell(rb, 'ecp5', 'fmax_mhz')} MHz")
    acc = res["accuracy"]
    for fmt in ("fp32", "fp16"):
        out += ["", f"Accuracy, {fmt} ({acc['vectors']} vectors; {acc['data']}; calibrated "
                    f"exp_range {tuple(acc[fmt]['calibrated_exp_range'])} from the first 500):",
                ""]
        out += table(["design", "correctly rounded", "mean error (ulp)", "max (ulp)"],
                     ([name, f"{100 * v['correctly_rounded']:.2f}%", f"{v['mean_ulp']:.3f}",
                       f"{v['max_ulp']:.2f}"] for name, v in acc[fmt].items()
                      if isinstance(v, dict)))
    return "\n".join(out) + "\n"


def _cell(r, target, key):
    value = r[target].get(key)
    return "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))


#: (target, figure) of the area/Fmax columns, in table order, and their headings.
ECP5_CELLS = [("ecp5", k) for k in ("LUT4", "CCU2C", "FF", "MULT18X18D", "fmax_mhz")]
XC7_CELLS = [("xc7", k) for k in ("LUT", "CARRY4", "FF", "DSP")]
AREA_HEADER = ["ECP5 LUT4", "CCU2C", "FF", "MULT18X18D", "Fmax MHz", "xc7 LUT", "CARRY4", "FF",
               "DSP"]


def _cells(r, columns):
    return [_cell(r, target, key) for target, key in columns]


#: The generic total's parts (gates, flip-flops at 20, memory bits at 6) and their headings.
GENERIC_PARTS = ("transistors_comb", "transistors_seq", "transistors_mem")
GENERIC_HEADER = ["comb", "flip-flops", "memory bits"]


def _parts(r):
    return [r.get(k, "-") for k in GENERIC_PARTS]


def markdown(res):
    fp32 = next(r for r in res["multipliers"] if r["design"].startswith("fp32 multiplier"))
    out = ["### Multipliers (registered unit: input and output registers, latency 2)", ""]
    out += table(["design", "transistors", "vs fp32 mul"] + GENERIC_HEADER + ["comb vs fp32 mul"]
                 + AREA_HEADER,
                 ([r["design"], r["transistors"],
                   f"{fp32['transistors'] / r['transistors']:.1f}x fewer", *_parts(r),
                   f"{fp32['transistors_comb'] / r['transistors_comb']:.1f}x fewer",
                   *_cells(r, ECP5_CELLS + XC7_CELLS)] for r in res["multipliers"]))
    dot = res["dot"]
    out += ["", f"### Dot products (N = {dot[0]['lanes']}, SIMD = {dot[0]['simd']})", ""]
    out += table(["design", "accumulator", "transistors"] + GENERIC_HEADER + AREA_HEADER,
                 ([r["design"], r["accumulator"], r["transistors"], *_parts(r),
                   *_cells(r, ECP5_CELLS + XC7_CELLS)] for r in dot))
    acc = res["accuracy"]
    out += ["", f"### Accuracy (fp32, N = {acc['lanes']}, SIMD = {acc['simd']}, "
                f"{acc['vectors']} vectors; {acc['data']})", ""]
    out += table(["design", "correctly rounded", "mean error (ulp)", "99th percentile", "max"],
                 ([name, f"{100 * acc[name]['correctly_rounded']:.1f}%",
                   f"{acc[name]['mean_ulp']:.3f}", f"{acc[name]['p99_ulp']:.2f}",
                   f"{acc[name]['max_ulp']:.2f}"] for name in ("expdot", "fpdot")))
    if res.get("dot_fmax"):
        small = res["dot_fmax"]
        out += ["", f"### Dot products, Fmax (fp32, N = {small[0]['lanes']}, "
                    f"SIMD = {small[0]['simd']})", ""]
        out += table(["design", "accumulator"] + AREA_HEADER[:5],
                     ([r["design"], r["accumulator"], *_cells(r, ECP5_CELLS)] for r in small))
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="no place and route (no Fmax)")
    p.add_argument("--dot-fmax", action="store_true",
                   help="also place and route the fp32 dot products at full size (tens of "
                        "minutes: they are large)")
    p.add_argument("--lanes", type=int, default=16)
    p.add_argument("--simd", type=int, default=4)
    p.add_argument("--fmax-lanes", type=int, default=4,
                   help="N of the dot products whose Fmax is measured (default 4)")
    p.add_argument("--fmax-simd", type=int, default=2, help="their SIMD (default 2)")
    p.add_argument("--seofp-only", action="store_true",
                   help="only the issue-15 table: bounded, deep-pipelined expdot (fp32, fp16), "
                        "exact 16-bit fixed shift-and-add, fpdot and an int8 MAC dot product")
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    if args.seofp_only:
        res = {"lanes": args.lanes, "simd": args.simd,
               "seofp": seofp_rows(args.lanes, args.simd, not args.quick),
               "accuracy": seofp_accuracy(args.lanes, args.simd)}
        write_results(args.output, "expmul_seofp", res, seofp_markdown(res))
        return 0
    print("multipliers:", flush=True)
    res = {"multipliers": multiplier_rows(not args.quick)}
    print("dot products:", flush=True)
    res["dot"] = dot_rows(args.lanes, args.simd, args.dot_fmax and not args.quick,
                          not args.quick)
    print("accuracy:", flush=True)
    res["accuracy"] = accuracy(args.lanes, args.simd)
    if not args.quick:
        print("dot products, Fmax:", flush=True)
        res["dot_fmax"] = dot_fmax_rows(args.fmax_lanes, args.fmax_simd)
    fp32 = next(r for r in res["multipliers"] if r["design"].startswith("fp32 multiplier"))
    em = res["multipliers"][0]
    res["fp32_transistor_ratio"] = fp32["transistors"] / em["transistors"]
    res["target_10x_met"] = res["fp32_transistor_ratio"] >= 10
    write_results(args.output, "expmul", res, markdown(res))
    print(f"fp32 multiplier / expmul fp32 transistors: {res['fp32_transistor_ratio']:.1f}x "
          f"(target >= 10x: {'met' if res['target_10x_met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
