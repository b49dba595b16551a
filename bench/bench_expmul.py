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

5. ``--seofp-only`` (issue 15, alone): the deep-pipelined ``expdot`` (fp32, fp16) with each
   accumulator (bounded, rounded per fold, full-range exact; fp16 bounded also with the compact
   pipeline and with the deep one's cuts that 100 MHz needs, :data:`EXPDOT_FP16_CUTS`), the exact 16-bit and 8-bit fixed-point shift-and-add ``expdot`` (deep and
   compact), ``fpdot`` as before and pipelined (``pipeline: "deep"``; fp16 with the fewest
   cuts that still make 100 MHz on ECP5, :data:`FPDOT_FP16_CUTS`, and with every cut), and MAC
   dot products (``macconv`` 1x1) of the same lanes with 8 x 8 and 16 x 8 bits, with Fmax (the fp32
   full-range rows only with ``--dot-fmax``), and the accuracy of the full-range, bounded,
   calibrated and per-fold-rounded accumulators and ``fpdot`` (both orders of additions)
   against the exact sum, on synthetic data and on activations recorded from DNSMOS P.808 (the inputs of its
   conv2 on the offline eSpeak clips; :func:`speech_vectors`) (``expmul_seofp.json/.md``).
6. ``--fpdot-cuts`` (alone): the pipelined fp16 and bf16 ``fpdot`` with each cut placement of
   :data:`FPDOT_CUT_TRIALS`: transistors, ECP5 figures and Fmax (``expmul_fpdot_cuts.json/.md``).
7. ``--expdot-cuts`` (alone): the bounded ``expdot`` (fp16 (-14, 4), fp32 (-24, 8)) with the deep
   pipeline's cut subsets of :data:`EXPDOT_CUT_TRIALS`: transistors, ECP5 figures, Fmax and the
   critical path's end registers (``expmul_expdot_cuts.json/.md``).

Run: ``.venv/bin/python bench/bench_expmul.py [--quick] [--lanes 16 --simd 4]``. Writes
``build/bench/expmul.json`` and ``build/bench/expmul.md``; docs/benchmarks_expmul.md records a run.
``--quick`` skips place and route (no Fmax); the full-size dot products are placed and routed only
with ``--dot-fmax``.
"""

import argparse
import dataclasses
import hashlib
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from qhw import registry, synth_flow
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import expmul as g
from qhw.golden import fpdot as gf
from qhw.hdl.common import to_verilog
from qhw.hdl.expdot import ExpDot
from qhw.hdl.expdot import stages as expdot_stages
from qhw.hdl.fpdot import stages as fpdot_stages
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

#: The pipelined fp16 ``fpdot`` baseline's cuts: the cheapest placement tried that still reaches
#: 100 MHz on ECP5 (106 MHz; docs/benchmarks_expmul.md, "Cut placements of the pipelined fp16
#: fpdot"); every cut (fp32's placement, the row "(pipelined, every cut)") gives 131 MHz for 1.19x
#: the transistors. Two multiplier cuts and three adder cuts of five.
FPDOT_FP16_CUTS = {"mul_cuts": ["product", "round"], "add_cuts": ["compare", "align", "lead"]}


def seofp_designs(lanes, simd):
    """(label, unit, config) of the issue-15 comparison, all at the same lanes and SIMD."""
    out = []
    for fmt in ("fp32", "fp16"):
        d = dict(_expdot_dict(fmt, lanes, simd), accumulator="bounded",
                 exp_range=list(SEOFP_RANGES[fmt]), pipeline="deep")
        out.append((f"expdot {fmt}, bounded {SEOFP_RANGES[fmt]}, deep pipeline", "expdot", d))
        out.append((f"expdot {fmt}, rounded per fold, deep pipeline", "expdot",
                    dict(_expdot_dict(fmt, lanes, simd), accumulator="rounded",
                         pipeline="deep")))
        out.append((f"expdot {fmt}, exact (full range), deep pipeline", "expdot",
                    dict(_expdot_dict(fmt, lanes, simd), pipeline="deep")))
        if fmt == "fp16":   # fewer flip-flops: the smaller design at the fp16 clock goal?
            out.append((f"expdot {fmt}, bounded {SEOFP_RANGES[fmt]}, compact pipeline", "expdot",
                        dict(d, pipeline="compact")))
            # the deep pipeline with only the cuts 100 MHz needs (--expdot-cuts)
            out.append((f"expdot {fmt}, bounded {SEOFP_RANGES[fmt]}, lean pipeline", "expdot",
                        dict(d, cuts=list(EXPDOT_FP16_CUTS))))
        out.append((f"fpdot {fmt} (not pipelined further)", "fpdot",
                    {"lanes": lanes, "simd": simd, "act_format": fmt}))
        deep = {"lanes": lanes, "simd": simd, "act_format": fmt, "pipeline": "deep"}
        if fmt == "fp16":   # the strongest baseline: the fewest cuts that make 100 MHz
            out.append((f"fpdot {fmt} (pipelined)", "fpdot", dict(deep, **FPDOT_FP16_CUTS)))
            out.append((f"fpdot {fmt} (pipelined, every cut)", "fpdot", deep))
        else:
            out.append((f"fpdot {fmt} (pipelined)", "fpdot", deep))
    for bits in (16, 8):
        for pipeline in ("deep", "compact"):
            out.append((f"expdot {bits}-bit fixed, exact shift-and-add (E=3), {pipeline} "
                        f"pipeline", "expdot",
                        {"lanes": lanes, "simd": simd, "act_format": "fixed", "act_bits": bits,
                         "weight_exp_bits": 3, "weight_bias": 4, "product": "exact",
                         "pipeline": pipeline}))
    mac = {"c_in": lanes, "c_out": 1, "height": 1, "width": 1, "kernel": [1, 1],
           "padding": "valid", "pe": 1, "simd": simd, "weight_bits": 8, "output": "sum"}
    out.append(("int8 MAC dot product (macconv 1x1, c_in = N, pe 1)", "macconv",
                dict(mac, act_bits=8)))
    out.append(("16 x 8 MAC dot product (macconv 1x1, 16-bit activations, c_in = N, pe 1)",
                "macconv", dict(mac, act_bits=16)))
    return out


#: Cut placements tried for the pipelined fp16 (and bf16) ``fpdot`` (``--fpdot-cuts``): (format,
#: mul_cuts, add_cuts), None for every cut; the adder's cuts are after the magnitude compare,
#: alignment, add, leading-one detection, normalising shift (:data:`qhw.golden.fpdot.ADD_CUT_NAMES`).
FPDOT_CUT_TRIALS = [
    ("fp16", None, None),
    ("fp16", ["product", "round"], ["compare", "align", "lead", "normalise"]),
    ("fp16", ["product", "round"], ["compare", "add", "lead", "normalise"]),
    ("fp16", ["product", "round"], ["compare", "align", "add", "lead"]),
    ("fp16", ["product", "round"], ["align", "add", "normalise"]),
    ("fp16", ["product", "round"], ["compare", "add", "lead"]),
    ("fp16", ["product", "round"], ["compare", "align", "lead"]),
    ("fp16", ["product", "round"], ["compare", "lead"]),
    ("fp16", ["product", "round"], ["align", "lead"]),
    ("fp16", ["product"], None),
    ("fp16", ["product"], ["compare", "add", "lead", "normalise"]),
    ("fp16", ["product"], ["compare", "align", "add", "lead"]),
    ("fp16", ["product"], ["compare", "add", "lead"]),
    ("fp16", ["product"], ["compare", "align", "lead"]),
    ("fp16", ["product"], ["align", "normalise"]),
    ("fp16", ["product"], ["align", "lead"]),
    ("fp16", ["product"], ["add"]),
    ("bf16", None, None),
    ("bf16", ["product", "round"], ["compare", "align", "lead"]),
    ("bf16", ["product", "round"], ["align", "lead"]),
    ("bf16", ["product"], ["compare", "align", "lead"]),
]


def fpdot_cut_rows(lanes, simd):
    """Transistors (generic flow) and ECP5 figures with Fmax of :data:`FPDOT_CUT_TRIALS`."""
    rows = []
    for fmt, mul, add in FPDOT_CUT_TRIALS:
        d = {"lanes": lanes, "simd": simd, "act_format": fmt, "pipeline": "deep"}
        d.update({k: v for k, v in (("mul_cuts", mul), ("add_cuts", add)) if v is not None})
        v, cfg = _unit_verilog("fpdot", d)
        gen = synth_flow.synthesize_verilog(v, "fpdot", "generic")["figures"]
        ecp5 = synth_flow.synthesize_verilog(v, "fpdot", "ecp5", fmax=True)["figures"]
        row = {"format": fmt, "mul_cuts": list(cfg.mul_cut_names),
               "add_cuts": list(cfg.add_cut_names), "latency": fpdot_stages(cfg),
               "transistors": gen["transistors"], "flip_flops": gen["flip_flops"],
               "ecp5": {k: ecp5[k] for k in ("LUT4", "CCU2C", "FF", "MULT18X18D", "fmax_mhz")
                        if k in ecp5}}
        rows.append(row)
        print(f"  {fmt} {row['mul_cuts']} {row['add_cuts']}: {row['transistors']} transistors, "
              f"ecp5 {row['ecp5']}", flush=True)
    return rows


def fpdot_cuts_markdown(rows, lanes, simd):
    out = [f"### Cut placements of the pipelined fpdot (N = {lanes}, SIMD = {simd})", ""]
    out += table(["format", "multiplier cuts", "adder cuts", "latency", "transistors",
                  "flip-flops", "ECP5 LUT4", "FF", "Fmax MHz"],
                 ([r["format"], ", ".join(r["mul_cuts"]), ", ".join(r["add_cuts"]),
                   r["latency"], r["transistors"], r["flip_flops"], r["ecp5"].get("LUT4"),
                   r["ecp5"].get("FF"), _cell(r, "ecp5", "fmax_mhz")] for r in rows))
    return "\n".join(out) + "\n"


#: Cut subsets tried for the deep-pipelined bounded ``expdot`` (``--expdot-cuts``): (format, cuts),
#: None for every cut (:data:`qhw.golden.expmul.EXPDOT_CUT_NAMES`: product; the float alignment's
#: exponent (shift amounts), shift (magnitudes), align (signed lane values); the lane-sum tree's
#: first level, its last (sum); the rounding's abs, lead (leading one), normalise).
#: The fp16 subset with the fewest transistors at >= 100 MHz of those tried
#: (docs/benchmarks_expmul.md, run F): every cut but the alignment's shift amounts ("exponent"), the signed lane values
#: ("align"), the lane sum ("sum") and |sum| ("abs").
EXPDOT_FP16_CUTS = ["product", "shift", "tree", "lead", "normalise"]

EXPDOT_CUT_TRIALS = [
    ("fp16", None),
    ("fp16", ["product", "exponent", "shift", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "align", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "align", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["exponent", "shift", "align", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "shift", "align", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "shift", "align", "tree", "abs", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "shift", "align", "tree", "sum", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "shift", "align", "tree", "sum", "abs", "normalise"]),
    ("fp16", ["product", "exponent", "shift", "align", "tree", "sum", "abs", "lead"]),
    ("fp16", ["product", "exponent", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["exponent", "shift", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "tree", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "tree", "sum", "lead", "normalise"]),
    ("fp16", ["product", "shift", "tree", "sum", "abs", "normalise"]),
    ("fp16", ["product", "align", "tree", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "sum", "lead", "normalise"]),
    ("fp16", ["product", "shift", "tree", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "shift", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "align", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "align", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "align", "sum", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "abs", "lead", "normalise"]),
    ("fp16", ["product", "shift", "tree", "normalise"]),
    ("fp16", ["product", "shift", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "align", "lead", "normalise"]),
    ("fp16", ["shift", "tree", "lead", "normalise"]),
    ("fp16", ["product", "exponent", "align", "tree", "lead", "normalise"]),
    ("fp16", ["product", "align", "tree", "lead", "normalise"]),
    ("fp16", ["product", "align", "lead", "normalise"]),
    ("fp32", None),
    ("fp32", EXPDOT_FP16_CUTS),
    ("fp32", ["product", "shift", "tree", "sum", "abs", "lead", "normalise"]),
]


def _critical_ends(result):
    """The first and last register of nextpnr's critical path (the clock's), as the design's
    signal names (the wrapper's prefix and the FF cell suffix dropped)."""
    report = json.loads(Path(result["logs"]["nextpnr_report"]).read_text())
    path = next(c["path"] for c in report["critical_paths"] if c["from"] == c["to"])

    def name(cell):
        return cell.removeprefix("qhw_dut.").split("_TRELLIS_FF")[0]
    return f"{name(path[0]['from']['cell'])} -> {name(path[-1]['to']['cell'])}"


def expdot_cut_rows(lanes, simd, trials=None):
    """Transistors (generic flow), ECP5 figures with Fmax and the critical path's ends of the
    bounded ``expdot`` with each cut subset of ``trials`` (default :data:`EXPDOT_CUT_TRIALS`)."""
    rows = []
    for fmt, cuts in trials or EXPDOT_CUT_TRIALS:
        d = dict(_expdot_dict(fmt, lanes, simd), accumulator="bounded",
                 exp_range=list(SEOFP_RANGES[fmt]), pipeline="deep")
        if cuts is not None:
            d["cuts"] = list(cuts)
        v, cfg = _unit_verilog("expdot", d)
        gen = synth_flow.synthesize_verilog(v, "expdot", "generic")["figures"]
        ecp5_res = synth_flow.synthesize_verilog(v, "expdot", "ecp5", fmax=True)
        ecp5 = ecp5_res["figures"]
        row = {"format": fmt, "exp_range": list(SEOFP_RANGES[fmt]),
               "every_cut": cuts is None, "cuts": list(cfg.cut_names),
               "left_out": [c for c in cfg.available_cuts if c not in cfg.cut_names],
               "latency": expdot_stages(cfg),
               "transistors": gen["transistors"], "flip_flops": gen["flip_flops"],
               "ecp5": {k: ecp5[k] for k in ("LUT4", "CCU2C", "FF", "MULT18X18D", "fmax_mhz")
                        if k in ecp5},
               "critical_path": _critical_ends(ecp5_res)}
        rows.append(row)
        print(f"  {fmt} without {row['left_out']}: {row['transistors']} transistors, "
              f"ecp5 {row['ecp5']}, {row['critical_path']}", flush=True)
    return rows


def expdot_cuts_markdown(rows, lanes, simd):
    out = [f"### Cut subsets of the deep-pipelined bounded expdot (N = {lanes}, SIMD = {simd})",
           ""]
    out += table(["format", "cuts left out", "latency", "transistors", "flip-flops",
                  "ECP5 LUT4", "FF", "Fmax MHz", "critical path (registers)"],
                 ([r["format"], ", ".join(r["left_out"]) or "none (every cut)", r["latency"],
                   r["transistors"], r["flip_flops"], r["ecp5"].get("LUT4"),
                   r["ecp5"].get("FF"), _cell(r, "ecp5", "fmax_mhz"), r["critical_path"]]
                  for r in rows))
    return "\n".join(out) + "\n"


def _full_range_fp32(unit_name, cfg):
    """Whether a design is an fp32 expdot with a full-range grid (exact or rounded): large,
    and slow to place (tens of minutes)."""
    return (unit_name == "expdot" and cfg.act_format == "fp32"
            and cfg.accumulator in ("exact", "rounded"))


def seofp_rows(lanes, simd, fmax, fmax_full=False, only=None):
    """Synthesis figures of :func:`seofp_designs`; Fmax (``fmax``) of the fp32 full-range
    ``expdot`` rows only with ``fmax_full``; with ``only`` (substrings), just the designs whose
    label contains one of them."""
    rows = []
    for label, unit_name, cfg_dict in seofp_designs(lanes, simd):
        if only and not any(part in label for part in only):
            continue
        v, cfg = _unit_verilog(unit_name, cfg_dict)
        place = fmax and (fmax_full or not _full_range_fp32(unit_name, cfg))
        row = {"design": label, "unit": unit_name, "config": cfg_dict,
               "acc_bits": getattr(cfg, "acc_bits", None),
               "acc_register_bits": getattr(cfg, "acc_register_bits", None),
               **figures(v, unit_name, place)}
        rows.append(row)
        print(f"  {label}: {row['transistors']} transistors, xc7 {row['xc7']}, "
              f"ecp5 {row['ecp5']}", flush=True)
    return rows


#: The accuracy tables' name of the pipelined fpdot (its own order of additions)
FPDOT_DEEP = "fpdot pipelined (pairwise tree over the fold sums)"

#: NumPy type and same-width unsigned integer of the formats the accuracy runs use
NATIVE = {"fp32": (np.float32, np.uint32), "fp16": (np.float16, np.uint16)}


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


def _exact_dots(x, w):
    """Exact dot products (Fractions) of float activations (V, N) and weight values (N,) or
    (V, N)."""
    w = np.broadcast_to(np.asarray(w, dtype=np.float64), np.shape(x))
    return [sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(xv, wv)), Fraction(0))
            for xv, wv in zip(x, w)]


def _error_summary(bits, exact, fmt):
    """Share of correctly rounded outputs, mean and max error in ulps of ``fmt`` at the exact
    sum's magnitude, for output bit patterns ``bits`` against the Fraction sums ``exact``."""
    native, uint = NATIVE[fmt]
    mbits = g.FLOAT_FORMATS[fmt].mbits
    vals = np.asarray(bits).astype(uint).view(native).astype(np.float64)
    e = np.array([_ulp_error_fmt(Fraction(float(v)), x, mbits) for v, x in zip(vals, exact)])
    return {"correctly_rounded": float(np.mean(e <= 0.5)), "mean_ulp": float(np.mean(e)),
            "max_ulp": float(np.max(e))}


def seofp_accuracy(lanes, simd, vectors=5000, seed=0):
    """Full-range expdot, bounded expdot (the benchmark's exp_range and one calibrated on the
    first 500 vectors), expdot rounded per fold and fpdot against the exact dot product
    (Fractions), fp32 and fp16; activations N(0, 1), weights +-2^-k, k uniform in 0..6."""
    out = {"lanes": lanes, "simd": simd, "vectors": vectors,
           "data": "x ~ N(0, 1); w = +-2^-k, k uniform in 0..6"}
    for fmt in ("fp32", "fp16"):
        rng = np.random.default_rng(seed)
        full = config_from_dict(g.ExpDotConfig, _expdot_dict(fmt, lanes, simd))
        k = rng.integers(0, 7, lanes)
        sign = rng.integers(0, 2, lanes)
        codes = (sign << full.weight_exp_bits) | (full.weight_bias - k)
        native, uint = NATIVE[fmt]
        x = rng.standard_normal((vectors, lanes)).astype(native)
        xb = x.view(uint).astype(np.int64)
        calibrated = g.calibrate_exp_range(full, x[:500], codes)
        designs = {"expdot exact (full range)": full}
        for name, rr in (("bench", SEOFP_RANGES[fmt]), ("calibrated", calibrated)):
            designs[f"expdot bounded {tuple(rr)} ({name})"] = config_from_dict(
                g.ExpDotConfig, dict(_expdot_dict(fmt, lanes, simd), accumulator="bounded",
                                     exp_range=list(rr)))
        designs[f"expdot rounded per fold ({lanes // simd} roundings)"] = config_from_dict(
            g.ExpDotConfig, dict(_expdot_dict(fmt, lanes, simd), accumulator="rounded"))
        ys = {name: g.expdot_ref(c, xb, codes) for name, c in designs.items()}
        fcfg = gf.FpDotConfig(lanes=lanes, simd=simd, act_format=fmt)
        wf = g.decode_weights(full, codes).astype(native)
        ys["fpdot"] = gf.fpdot_ref(fcfg, xb, wf.view(uint).astype(np.int64))
        ys[FPDOT_DEEP] = gf.fpdot_ref(dataclasses.replace(fcfg, pipeline="deep"), xb,
                                      wf.view(uint).astype(np.int64))
        res = {"calibrated_exp_range": list(calibrated)}
        exact = _exact_dots(x, wf)
        for name, y in ys.items():
            res[name] = _error_summary(y, exact, fmt)
        out[fmt] = res
        print(f"  accuracy {fmt}: {res}", flush=True)
    return out


# Accuracy on activations recorded from a real speech model ---------------------------------------

#: The weight format of the recorded-activation runs: E = 5, w = +-2^(f - 30), so 2^-29 .. 2^1
#: (P.808's conv2 weights reach |w| = 2.31, which rounds to 2^1 in the log domain).
SPEECH_WEIGHTS = {"weight_exp_bits": 5, "weight_bias": 30}


def conv1_pool_maps(feats):
    """DNSMOS P.808's conv1 (3x3, padding 1, + bias), ReLU and 2x2 max pool (stride 2, floor) on
    features (n, T, F): conv2's inputs, (n, 32, T // 2, F // 2) float32. NumPy on the float32
    weights of speechmos's ONNX file (:func:`qhw.dnsmos.teacher.teacher_weights`); the products
    are summed in another order than onnxruntime's, so values may differ in the last bits."""
    from qhw.dnsmos import teacher
    w = teacher.teacher_weights()
    kernel, bias = w["conv1.weight"][:, 0], w["conv1.bias"]           # (32, 3, 3), (32,)
    out = []
    for x in np.asarray(feats, dtype=np.float32):
        win = np.lib.stride_tricks.sliding_window_view(np.pad(x, 1), (3, 3))  # (T, F, 3, 3)
        y = np.einsum("tfij,cij->ctf", win, kernel, optimize=True) + bias[:, None, None]
        y = np.maximum(y, 0)
        c, t, f = y.shape
        y = y[:, :t // 2 * 2, :f // 2 * 2].reshape(c, t // 2, 2, f // 2, 2).max(axis=(2, 4))
        out.append(y.astype(np.float32))
    return np.stack(out)


def seofp_codes(cfg, w):
    """Sign-exponent-only codes of float weights, rounded in the log domain as
    :func:`qhw.golden.expmul_torch.seofp_quantize` does (here in NumPy): d = round(log2 |w|),
    ties to even, clamped to the format's exponents; |w| < 2^(d_min - 1) becomes a zero (it is
    nearer to 0 than to 2^d_min); the sign is kept."""
    d_min, d_max = cfg.d_range
    w = np.asarray(w, dtype=np.float64)
    mag = np.abs(w)
    d = np.clip(np.round(np.log2(np.where(mag > 0, mag, 1.0))), d_min, d_max)
    q = np.where((mag > 0) & (mag >= 2.0 ** (d_min - 1)), np.exp2(d), 0.0)
    return g.encode_weights(cfg, np.copysign(q, w))


def im2col_vectors(maps, weight, lanes, picks):
    """Dot-product vectors of a 3x3, padding-1 convolution split into ``lanes``-channel pieces.

    ``maps`` (n, C, T, F): the layer's inputs; ``weight`` (O, C, 3, 3). A row r = ((o * (C //
    lanes) + h) * 3 + ky) * 3 + kx is output channel o's weights at tap (ky, kx) on input
    channels h * lanes .. (h + 1) * lanes - 1; ``picks`` (V, 4): (row, window, t, f) of each
    vector. Returns (activations (V, lanes), the rows' weights (O * C / lanes * 9, lanes))."""
    o_n, c_n = weight.shape[:2]
    rows = weight.reshape(o_n, c_n // lanes, lanes, 3, 3).transpose(0, 1, 3, 4, 2)
    rows = rows.reshape(-1, lanes)
    padded = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)))
    r, n, t, f = (np.asarray(picks)[:, k] for k in range(4))
    tap = r % 9
    h = (r // 9) % (c_n // lanes)
    channels = h[:, None] * lanes + np.arange(lanes)[None, :]
    acts = padded[n[:, None], channels, (t + tap // 3)[:, None], (f + tap % 3)[:, None]]
    return acts, rows


def _picks(rng, count, n_rows, shape):
    """``count`` random (row, window, t, f) of maps of ``shape`` (n, C, T, F)."""
    n, _, t, f = shape
    return np.stack([rng.integers(0, n_rows, count), rng.integers(0, n, count),
                     rng.integers(0, t, count), rng.integers(0, f, count)], axis=1)


def speech_vectors(cache_dir, lanes=16, measured=4000, per_row=64, seed=0, clips=None):
    """Recorded conv2 dot-product vectors of DNSMOS P.808 and their sign-exponent-only weights.

    The offline eSpeak clips of ``qhw demo --quick`` (:func:`qhw.dnsmos.demo.demo_clips`: two
    unseen voices, each clean, with white noise at 5 dB, babble at 10 dB and reverberation;
    one 9.01 s window each) through P.808's features, conv1, ReLU and pooling
    (:func:`conv1_pool_maps`); the vectors are conv2's im2col windows in pieces of ``lanes``
    input channels (:func:`im2col_vectors`), the weights conv2's rounded to codes
    (:func:`seofp_codes`, :data:`SPEECH_WEIGHTS`). Calibration: ``per_row`` random windows of
    every row from the first voice's clips; measurement: ``measured`` random (row, position)
    pairs from the second voice's clips, leaving out vectors whose activations are all zero
    (every design is exact on them). ``clips`` (for tests): [(voice, audio)] in place of the
    demo clips. Cached in ``cache_dir`` (an .npz keyed by these settings and the clips' audio).

    Returns a dict: ``calibration`` (Vc, lanes) float32 and ``calibration_rows`` (Vc,),
    ``measured`` (V, lanes) float32 and ``rows`` (V,), ``codes`` (rows, lanes) weight codes,
    ``zero_share`` (the share of all-zero vectors among the measured draws), ``clips``.
    """
    from qhw.dnsmos import demo, features, teacher
    if clips is None:
        clips = [(c["voice"], c["audio"]) for c in demo.demo_clips(quick=True, progress=False)]
    voices = list(dict.fromkeys(v for v, _ in clips))
    digest = hashlib.sha256()
    for voice, audio in clips:
        digest.update(voice.encode() + np.asarray(audio, dtype=np.float64).tobytes())
    digest.update(json.dumps([lanes, measured, per_row, seed, SPEECH_WEIGHTS]).encode())
    digest.update(teacher.teacher_weights()["conv2.weight"].tobytes())
    path = Path(cache_dir) / f"expmul_speech_{digest.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    cfg = config_from_dict(g.ExpDotConfig, dict(lanes=lanes, simd=lanes, **SPEECH_WEIGHTS))
    weight = teacher.teacher_weights()["conv2.weight"]
    rng = np.random.default_rng(seed)
    maps = {v: conv1_pool_maps(np.concatenate([features.clip_features(a) for voice, a in clips
                                               if voice == v])) for v in voices[:2]}
    n_rows = weight.shape[0] * weight.shape[1] // lanes * 9
    calib_picks = np.repeat(np.arange(n_rows), per_row)[:, None]
    calib_picks = np.concatenate([calib_picks, _picks(rng, len(calib_picks), n_rows,
                                                      maps[voices[0]].shape)[:, 1:]], axis=1)
    calib, rows_w = im2col_vectors(maps[voices[0]], weight, lanes, calib_picks)
    draws = _picks(rng, measured * 4, n_rows, maps[voices[-1]].shape)
    acts, _ = im2col_vectors(maps[voices[-1]], weight, lanes, draws)
    nonzero = (acts != 0).any(axis=1)
    keep = np.flatnonzero(nonzero)[:measured]
    order = np.argsort(draws[keep, 0], kind="stable")       # grouped by row
    out = {"calibration": calib.astype(np.float32), "calibration_rows": calib_picks[:, 0],
           "measured": acts[keep][order].astype(np.float32), "rows": draws[keep][order, 0],
           "codes": seofp_codes(cfg, rows_w), "zero_share": np.float64(1 - nonzero.mean()),
           "clips": np.array([len(clips), len(voices)])}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(path)
    return out


def _by_row(fn, x, rows, codes):
    """``fn(x_of_row, codes[row])`` for each row present, reassembled in the order of ``x``."""
    out = np.zeros(len(x), dtype=np.int64)
    for r in np.unique(rows):
        idx = np.flatnonzero(rows == r)
        out[idx] = fn(x[idx], codes[r])
    return out


def speech_accuracy(data, lanes=16, simd=4):
    """expdot (full-range exact, bounded with a range calibrated on the calibration vectors,
    rounded per fold) and fpdot against the exact dot product on recorded vectors
    (:func:`speech_vectors`), fp32 and fp16 (the activations converted to fp16, round to
    nearest even). The bounded range is one for the whole layer: the union of
    :func:`qhw.golden.expmul.calibrate_exp_range` over its rows (coverage 1), with headroom 0
    and 1 binade."""
    x32, rows, codes = data["measured"], data["rows"], data["codes"]
    out = {"vectors": int(len(x32)), "calibration_vectors": int(len(data["calibration"])),
           "weight_rows": int(len(codes)), "zero_share": float(data["zero_share"]),
           "zero_weights": float(np.mean(_exponent_field(codes) == 0)),
           "weight_exponents": [int(v) for v in _code_exponent_span(codes)]}
    for fmt in ("fp32", "fp16"):
        native, uint = NATIVE[fmt]
        base = dict(lanes=lanes, simd=simd, act_format=fmt, **SPEECH_WEIGHTS)
        full = config_from_dict(g.ExpDotConfig, base)
        x = x32.astype(native)
        xb = x.view(uint).astype(np.int64)
        calib = data["calibration"].astype(native)
        ranges = []
        for r in range(len(codes)):
            try:
                ranges.append(g.calibrate_exp_range(
                    full, calib[data["calibration_rows"] == r], codes[r]))
            except QhwInputError:   # no finite non-zero product in this row's windows
                pass
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        e_hi = full.fmt.emask - 1 - full.fmt.bias
        designs = {"expdot exact (full range)": full,
                   f"expdot bounded {SEOFP_RANGES[fmt]} (the synthesized range)": config_from_dict(
                       g.ExpDotConfig, dict(base, accumulator="bounded",
                                            exp_range=list(SEOFP_RANGES[fmt])))}
        for headroom in (0, 1):
            rr = (lo, min(hi + headroom, e_hi))
            designs[f"expdot bounded {rr} (calibrated, headroom {headroom})"] = config_from_dict(
                g.ExpDotConfig, dict(base, accumulator="bounded", exp_range=list(rr)))
        designs[f"expdot rounded per fold ({lanes // simd} roundings)"] = config_from_dict(
            g.ExpDotConfig, dict(base, accumulator="rounded"))
        ys = {name: _by_row(lambda xs, w, c=c: g.expdot_ref(c, xs, w), xb, rows, codes)
              for name, c in designs.items()}
        fcfg = gf.FpDotConfig(lanes=lanes, simd=simd, act_format=fmt)
        wv = g.decode_weights(full, codes)                     # (rows, lanes) float64
        wbits = wv.astype(native).view(uint).astype(np.int64)
        ys["fpdot"] = _by_row(lambda xs, r: gf.fpdot_ref(fcfg, xs, r), xb, rows, wbits)
        dcfg = dataclasses.replace(fcfg, pipeline="deep")
        ys[FPDOT_DEEP] = _by_row(lambda xs, r: gf.fpdot_ref(dcfg, xs, r), xb, rows, wbits)
        exact = _exact_dots(x, wv[rows])
        products = x.astype(np.float64) * wv[rows]
        tiny = 2.0 ** (1 - full.fmt.bias)
        res = {"calibrated_exp_range": [lo, hi],
               "acc_bits": {name: c.acc_bits for name, c in designs.items()},
               # products every design flushes: below the format's smallest normal (the
               # activation itself may be subnormal, which the designs read as zero)
               "vectors_with_flushed_products": float(
                   ((products != 0) & (np.abs(products) < tiny)).any(axis=1).mean())}
        for name, y in ys.items():
            res[name] = _error_summary(y, exact, fmt)
        out[fmt] = res
        print(f"  speech accuracy {fmt}: {res}", flush=True)
    return out


def _exponent_field(codes):
    """The biased exponent field of sign-exponent weight codes in :data:`SPEECH_WEIGHTS`
    (0: a zero weight)."""
    return codes & ((1 << SPEECH_WEIGHTS["weight_exp_bits"]) - 1)


def _code_exponent_span(codes):
    """(smallest, largest) exponent d of the non-zero weights, in :data:`SPEECH_WEIGHTS`."""
    f = _exponent_field(codes)
    d = f[f != 0] - SPEECH_WEIGHTS["weight_bias"]
    return d.min(), d.max()


def seofp_markdown(res):
    rows = res["seofp"]
    by = {r["design"]: r for r in rows}
    out = [f"### Sized and pipelined SEOFP dot products (N = {res['lanes']}, SIMD = "
           f"{res['simd']})", ""]
    out += table(["design", "acc bits", "acc register bits", "transistors"] + GENERIC_HEADER
                 + AREA_HEADER,
                 ([r["design"], r["acc_bits"] or "-",
                   r.get("acc_register_bits") or r["acc_bits"] or "-", r["transistors"],
                   *_parts(r), *_cells(r, ECP5_CELLS + XC7_CELLS)] for r in rows))
    out += [""]
    pairs = [("expdot fp32, bounded", "fpdot fp32 (not pipelined further)"),
             ("expdot fp32, rounded", "fpdot fp32 (not pipelined further)"),
             ("expdot fp32, rounded", "expdot fp32, exact"),
             ("expdot fp16, bounded (-14, 4), deep pipeline", "fpdot fp16 (not pipelined further)"),
             ("expdot fp16, rounded", "fpdot fp16 (not pipelined further)"),
             ("expdot fp16, rounded", "expdot fp16, exact"),
             ("expdot 16-bit fixed, exact shift-and-add (E=3), deep pipeline", "int8 MAC"),
             # the pipelined baseline and the fair fixed-point pairs
             ("expdot fp32, bounded", "fpdot fp32 (pipelined)"),
             ("fpdot fp32 (pipelined)", "fpdot fp32 (not pipelined further)"),
             ("expdot fp16, bounded (-14, 4), deep pipeline", "fpdot fp16 (pipelined)"),
             ("expdot fp16, bounded (-14, 4), compact pipeline", "fpdot fp16 (pipelined)"),
             ("expdot fp16, bounded (-14, 4), lean pipeline", "fpdot fp16 (pipelined)"),
             ("expdot fp16, bounded (-14, 4), lean pipeline",
              "expdot fp16, bounded (-14, 4), deep pipeline"),
             ("expdot fp16, bounded (-14, 4), compact pipeline",
              "fpdot fp16 (not pipelined further)"),
             ("fpdot fp16 (pipelined)", "fpdot fp16 (not pipelined further)"),
             ("fpdot fp16 (pipelined)", "fpdot fp16 (pipelined, every cut)"),
             ("expdot 8-bit fixed, exact shift-and-add (E=3), deep pipeline", "int8 MAC"),
             ("expdot 8-bit fixed, exact shift-and-add (E=3), compact pipeline", "int8 MAC"),
             ("expdot 16-bit fixed, exact shift-and-add (E=3), deep pipeline", "16 x 8 MAC"),
             ("expdot 16-bit fixed, exact shift-and-add (E=3), compact pipeline", "16 x 8 MAC")]
    for a, b in pairs:
        ra = next((r for n, r in by.items() if n.startswith(a)), None)
        rb = next((r for n, r in by.items() if n.startswith(b)), None)
        if ra is None or rb is None:   # a run of some designs only (--designs)
            continue
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
    sp = res.get("speech_accuracy")
    if sp:
        for fmt in ("fp32", "fp16"):
            out += ["", f"Accuracy on recorded speech activations, {fmt} ({sp['vectors']} "
                        f"vectors of DNSMOS P.808's conv2; calibrated on "
                        f"{sp['calibration_vectors']} others: exp_range "
                        f"{tuple(sp[fmt]['calibrated_exp_range'])}):", ""]
            out += table(["design", "acc bits", "correctly rounded", "mean error (ulp)",
                          "max (ulp)"],
                         ([name, sp[fmt]["acc_bits"].get(name, "-"),
                           f"{100 * v['correctly_rounded']:.2f}%", f"{v['mean_ulp']:.3f}",
                           f"{v['max_ulp']:.2f}"] for name, v in sp[fmt].items()
                          if isinstance(v, dict) and "mean_ulp" in v))
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
    p.add_argument("--designs", default=None, metavar="PART[,PART...]",
                   help="--seofp-only: synthesize only the designs whose label contains one of "
                        "these comma-separated parts (e.g. 'rounded per fold')")
    p.add_argument("--fpdot-cuts", action="store_true",
                   help="only the pipelined fp16/bf16 fpdot with each cut placement tried "
                        "(transistors, ECP5 with Fmax)")
    p.add_argument("--expdot-cuts", action="store_true",
                   help="only the deep-pipelined bounded expdot with each cut subset tried "
                        "(transistors, ECP5 with Fmax, critical path)")
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    if args.expdot_cuts:
        rows = expdot_cut_rows(args.lanes, args.simd)
        write_results(args.output, "expmul_expdot_cuts", {"rows": rows},
                      expdot_cuts_markdown(rows, args.lanes, args.simd))
        return 0
    if args.fpdot_cuts:
        rows = fpdot_cut_rows(args.lanes, args.simd)
        write_results(args.output, "expmul_fpdot_cuts", {"rows": rows},
                      fpdot_cuts_markdown(rows, args.lanes, args.simd))
        return 0
    if args.seofp_only:
        only = [part for part in args.designs.split(",") if part] if args.designs else None
        res = {"lanes": args.lanes, "simd": args.simd,
               "seofp": seofp_rows(args.lanes, args.simd, not args.quick, args.dot_fmax, only),
               "accuracy": seofp_accuracy(args.lanes, args.simd),
               "speech_accuracy": speech_accuracy(speech_vectors(args.output), args.lanes,
                                                  args.simd)}
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
