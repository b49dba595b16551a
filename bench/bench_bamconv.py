"""Benchmarks of ``bamconv`` against its int MAC baseline ``macconv``: area at equal PE, SIMD and
throughput; cycles against gate density (dynamic channel pruning); memory of a DNSMOS P.808-sized
layer stack in binary-activation form against fp32.

Run: ``.venv/bin/python bench/bench_bamconv.py [--skip area cycles memory]``; writes
``build/bench/bamconv.{json,md}``. docs/benchmarks_bamconv.md records a run.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from qhw import flow, registry, synth_flow
from qhw.config import config_from_dict

from _report import table, write_results

# Three sizes at equal folding for both units (8-bit weights; macconv 8 x 8).
SIZES = {
    "tiny (C 4->4, PE 1, SIMD 4)": dict(c_in=4, c_out=4, height=8, width=8, kernel=[3, 3],
                                        padding="same", pe=1, simd=4),
    "small (C 8->8, PE 2, SIMD 8)": dict(c_in=8, c_out=8, height=8, width=8, kernel=[3, 3],
                                         padding="same", pe=2, simd=8),
    "demo-sized (C 8->8, PE 2, SIMD 24)": dict(c_in=8, c_out=8, height=8, width=8,
                                               kernel=[3, 3], padding="same", pe=2, simd=24),
}
DENSITIES = (0.1, 0.25, 0.5, 0.75, 1.0)
# DNSMOS P.808 convolutions (read from model_v8.onnx of the PyPI package speechmos 0.0.1.1;
# Reddy et al., "DNSMOS", ICASSP 2021): (C_in, C_out, H, W), 3x3, pad 1.
DNSMOS_P808 = [(1, 32, 900, 120), (32, 32, 450, 60), (32, 32, 225, 30), (32, 32, 225, 30),
               (32, 64, 112, 15)]


def area_rows():
    rows = []
    for label, geometry in SIZES.items():
        row = {"size": label}
        for unit_name, extra in (("bamconv", {"weight_bits": 8}),
                                 ("macconv", {"act_bits": 8, "weight_bits": 8})):
            unit = registry.get(unit_name)
            cfg = config_from_dict(unit.config, {**geometry, **extra})
            params = flow.read_params(unit, cfg, None, seed=0)
            figures = {}
            for target in ("generic", "xc7", "ecp5"):
                r = synth_flow.synthesize_unit(unit, cfg, params, target, fmax=False)
                figures[target] = r["figures"]
            row[unit_name] = figures
            print(f"  {label} {unit_name}: {figures['generic']['transistors']} transistors",
                  flush=True)
        rows.append(row)
    return rows


def cycle_rows():
    unit = registry.get("bamconv")
    cfg = config_from_dict(unit.config, dict(c_in=8, c_out=16, height=6, width=8,
                                             kernel=[3, 3], padding="same", pe=2, simd=24,
                                             weight_bits=8, gating="mask"))
    params = flow.read_params(unit, cfg, None, seed=0)
    full = unit.cost_model(cfg, 1)
    rows = []
    for density in DENSITIES:
        rng = np.random.default_rng(1)
        inputs = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, 1, density))
        run = flow.rtlsim(unit, cfg, params, inputs)
        model = unit.cost_model(cfg, 1, inputs)
        exact = flow.first_mismatch(unit, run.outputs, unit.golden(cfg, params, inputs)) is None
        active = float(np.mean(inputs["gates"]))
        rows.append({"density": density, "active_channels": active, "measured": run.cycles,
                     "model": model.expected, "ungated": full.expected,
                     "saving": 1 - run.cycles / full.expected, "bit_exact": exact})
        print(f"  density {density}: {run.cycles} cycles (model {model.expected}, ungated "
              f"{full.expected})", flush=True)
    return {"config": cfg.__dict__, "rows": rows}


def memory_rows():
    rows = []
    for c_in, c_out, h, w in DNSMOS_P808:
        weights = c_out * c_in * 9
        # Line buffer: (kh-1) rows of W pixels of C_in values (+ the window's 3x3 pixels).
        linebuf = 2 * w * c_in
        fmap = c_in * h * w  # the whole input feature map, as a layer-by-layer engine keeps it
        rows.append({"layer": f"{c_in}->{c_out} @{h}x{w}", "weights": weights,
                     "bias": c_out, "linebuf_values": linebuf, "fmap_values": fmap,
                     "bam_bits": weights * 8 + c_out * 32 + linebuf * 1,
                     "fp32_bits": (weights + c_out) * 32 + linebuf * 32,
                     "bam_fmap_bits": weights * 8 + c_out * 32 + fmap * 1,
                     "fp32_fmap_bits": (weights + c_out + fmap) * 32})
    total = {k: sum(r[k] for r in rows)
             for k in ("bam_bits", "fp32_bits", "bam_fmap_bits", "fp32_fmap_bits")}
    return {"rows": rows, "total_bam_bits": total["bam_bits"],
            "total_fp32_bits": total["fp32_bits"], "ratio": total["fp32_bits"] / total["bam_bits"],
            "total_bam_fmap_bits": total["bam_fmap_bits"],
            "total_fp32_fmap_bits": total["fp32_fmap_bits"],
            "ratio_fmap": total["fp32_fmap_bits"] / total["bam_fmap_bits"]}


def _slash(figures, *keys):
    """``a/b/c`` of the figures at ``keys``."""
    return "/".join(str(figures[k]) for k in keys)


def markdown(res):
    out = []
    if "area" in res:
        rows = []
        for r in res["area"]:
            b, m = r["bamconv"], r["macconv"]
            rows.append([r["size"], b["generic"]["transistors"], m["generic"]["transistors"],
                         f"{m['generic']['transistors'] / b['generic']['transistors']:.2f}x",
                         _slash(b["xc7"], "LUT", "FF", "DSP"), _slash(m["xc7"], "LUT", "FF", "DSP"),
                         _slash(b["ecp5"], "LUT4", "FF"),
                         _slash(m["ecp5"], "LUT4", "FF", "MULT18X18D")])
        out += ["### Area, bamconv (8-bit weights) against macconv (8 x 8), equal PE/SIMD", ""]
        out += table(["size", "bamconv transistors", "macconv transistors", "ratio",
                      "bamconv xc7 LUT/FF/DSP", "macconv xc7 LUT/FF/DSP", "bamconv ECP5 LUT4/FF",
                      "macconv ECP5 LUT4/FF/MULT18"], rows)
        # The generic total's parts (synth.flows.generic_figures): gates, flip-flops at 20,
        # memory bits (memories with a write port) at 6.
        parts = ("transistors_comb", "transistors_seq", "transistors_mem")
        rows = []
        for r in res["area"]:
            for unit_name in ("bamconv", "macconv"):
                g = r[unit_name]["generic"]
                rows.append([r["size"], unit_name, *(g[k] for k in parts), g["transistors"],
                             g["flip_flops"], g["memory_bits"]])
        ratios = [[r["size"], *(f"{r['macconv']['generic'][k] / r['bamconv']['generic'][k]:.2f}x"
                                for k in (*parts, "transistors"))] for r in res["area"]]
        out += ["", "### Transistors by kind: combinational, flip-flops, memory bits", ""]
        out += table(["size", "unit", "combinational", "flip-flops", "memory bits (6T)", "total",
                      "flip-flops", "memory bits"], rows)
        out += ["", "macconv / bamconv by kind:", ""]
        out += table(["size", "combinational", "flip-flops", "memory bits", "total"], ratios)
    if "cycles" in res:
        out += ["", "### Cycles against gate density (mask gating, one frame, no stalls)", "",
                f"Config: `{json.dumps(res['cycles']['config'], default=list)}`", ""]
        out += table(
            ["density", "active channels", "measured", "model", "ungated", "saving", "bit-exact"],
            ([r["density"], f"{r['active_channels']:.3f}", r["measured"], r["model"],
              r["ungated"], f"{r['saving']:.1%}", r["bit_exact"]] for r in res["cycles"]["rows"]))
    if "memory" in res:
        mem = res["memory"]
        out += ["", "### Memory of the DNSMOS P.808 convolution stack: BAM form against fp32", "",
                "Streaming (line buffers only) and layer-by-layer (whole input feature maps "
                "stored); weights 8-bit vs 32-bit, bias 32-bit, activations 1-bit vs 32-bit.", ""]
        keys = ("layer", "weights", "linebuf_values", "fmap_values", "bam_bits", "fp32_bits",
                "bam_fmap_bits", "fp32_fmap_bits")
        out += table(
            ["layer", "weights", "line-buffer values", "feature-map values",
             "BAM bits, streaming", "fp32 bits, streaming", "BAM bits, feature maps",
             "fp32 bits, feature maps"],
            ([r[k] for k in keys] for r in mem["rows"]))
        out.append(f"| total | | | | {mem['total_bam_bits']} | {mem['total_fp32_bits']} "
                   f"(**{mem['ratio']:.1f}x**) | {mem['total_bam_fmap_bits']} | "
                   f"{mem['total_fp32_fmap_bits']} (**{mem['ratio_fmap']:.1f}x**) |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip", nargs="*", default=[], choices=["area", "cycles", "memory"])
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    res = {}
    if "memory" not in args.skip:
        res["memory"] = memory_rows()
    if "cycles" not in args.skip:
        print("cycles against gate density:", flush=True)
        res["cycles"] = cycle_rows()
    if "area" not in args.skip:
        print("area:", flush=True)
        res["area"] = area_rows()
    write_results(args.output, "bamconv", res, markdown(res), json_default=list)
    return 0


if __name__ == "__main__":
    sys.exit(main())
