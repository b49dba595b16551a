"""A sign-exponent-only network layer against its float and int8 counterparts at equal throughput.

One dense layer, ``--inputs`` features to ``--outputs`` (default 64 -> 16: the size of the
small dense layers of speech models, e.g. a 64-unit bottleneck into 16 features; a 64x64 layer
such as DNSMOS's dense1 is ``--outputs 64``), built as a one-layer network (``qhw.units.network``)
four ways, every one with all outputs in parallel and ``--simd`` lanes per output per cycle, so
that each takes inputs/simd cycles per frame (checked here and by
tests/test_bench_seofp_layer.py, from the cost models, which equal the RTL):

* ``expdot`` fp16: exponent-adder products, a bounded exact accumulator (``exp_range``
  :data:`FP16_RANGE`), one rounding per output, ``pipeline: "deep"`` (docs/benchmarks_expmul.md,
  issue 15);
* ``expdot`` fp16 with the lean deep pipeline: the same with only the cuts that 100 MHz needs
  (:data:`EXPDOT_CUTS`, bench_expmul's ``EXPDOT_FP16_CUTS``);
* ``fpdot`` fp16: IEEE multipliers, a rounding adder tree and a rounding accumulator (the
  conventional float layer, the same folding), as the unit is by default (``pipeline: "none"``);
* ``fpdot`` fp16 pipelined: ``pipeline: "deep"`` with the fewest cuts that reach 100 MHz on
  ECP5 (:data:`FPDOT_CUTS`, bench_expmul's ``FPDOT_FP16_CUTS``; fp32: every cut), the strongest
  float baseline: both float layers then run near 100 MHz, so equal cycles per frame is also
  about equal frames per second; the fold sums go through a pairwise adder tree instead of the
  accumulator loop (another order of additions: its accuracy is measured too);
* int8 ``dense`` (``arith: "mac"``: macconv, PE = outputs, the same SIMD): 8-bit signed
  activations times 8-bit weights, exact sums;
* ``expdot`` 8-bit fixed point: the exact shift-and-add dot product (``product: "exact"``).

Weights: one matrix of w = +-2^k, k uniform in 0..6, given to every design as its own format
holds it (expdot fp16: E = 5 codes, bias 15; fpdot: fp16 bit patterns; int8: the integers
+-1..+-64; expdot fixed: E = 3 codes, bias 1), so the four layers compute with the same
weights. ``--fp32`` adds the fp32 expdot and fpdot rows (slow to place: fpdot fp32 needs four
MULT18X18D per multiplier).

Per design: cycles per frame and per single frame (cost model), transistors (generic CMOS flow:
gates, flip-flops at 20, memory bits at 6, each column kept apart), ECP5 LUT4 / CCU2C / FF /
DP16KD / MULT18X18D and Fmax (nextpnr-ecp5, speed 6; the part picked by size), xc7 LUT / CARRY4 /
FF / BRAM / DSP, the operation-count energy per frame (Horowitz 45 nm, ``synth/energy.py``), and
the accuracy against the exact dot products (Python fractions) on ``--vectors`` random frames
(x ~ N(0, 1) in the float format; the integer layers' x uniform in -128..127, where both are
exact and must agree bit for bit), and the frames per second at each design's own Fmax
(Fmax / cycles per frame: at equal cycles per frame, the throughput comparison).

Run: ``.venv/bin/python bench/bench_seofp_layer.py [--simd 4] [--quick] [--fp32]``; writes
``build/bench/seofp_layer.json`` and ``.md``; docs/benchmarks_expmul.md records its runs.
``--quick``: no place and route (no Fmax); ``--synth PART[,PART...]``: synthesize only the rows
whose label contains one of the parts (the others: cycles, energy and accuracy only).
Synthesis is cached (``~/.cache/qhw/synth``).
"""

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from qhw import flow, registry, synth_flow
from qhw.config import config_from_dict
from qhw.explore.render import ratio_phrase
from qhw.golden import expmul as g
from qhw.hdl.network import steady_cycles
from qhw.synth import energy

from _report import table, write_results
from bench_expmul import EXPDOT_FP16_CUTS, FPDOT_FP16_CUTS
from bench_expmul import _ulp_error_fmt as ulp_error

NETWORK = registry.get("network")

#: Weight exponents k of w = +-2^k: 0..6, so that the int8 layer holds every weight exactly.
K_MAX = 6
#: exp_range of the bounded fp16 / fp32 accumulators: fp16's lowest product exponent (-14; fp32:
#: -24) up to 2 above the largest the data reach (|x| < 2^2 for N(0, 1) draws, times 2^6);
#: the bench also reports the range calibrated on its vectors.
FP16_RANGE = (-14, 9)
FP32_RANGE = (-24, 9)
FLOAT_BIAS = {"fp16": 15, "fp32": 15}   # E = 5 codes: w = +-2^(f - 15), f = k + 15 in 15..21
FIXED_E, FIXED_BIAS = 3, 1              # E = 3 codes: f = k + 1 in 1..7
NATIVE = {"fp16": (np.float16, np.uint16), "fp32": (np.float32, np.uint32)}
#: Cuts of the pipelined ``fpdot`` rows, by format: fp16 the fewest that reach 100 MHz (run E of
#: docs/benchmarks_expmul.md's issue-15 section); fp32 needs every cut (the unit's default).
FPDOT_CUTS = {"fp16": FPDOT_FP16_CUTS, "fp32": {}}
#: Cuts of the lean deep-pipelined bounded ``expdot`` rows, by format: the fp16 subset with the
#: fewest transistors at >= 100 MHz of those bench_expmul's ``--expdot-cuts`` tried (N = 16,
#: SIMD 4); fp32 has no such row (every cut, the deep row, is what it needs).
EXPDOT_CUTS = {"fp16": EXPDOT_FP16_CUTS}


def designs(inputs=64, outputs=16, simd=1, fp32=False, fpdot_pipeline=None, compact=False):
    """(label, kind, network description) of the compared layers; kind is 'float' (x in a
    float format, 'fp16' or 'fp32' in the description's input) or 'int' (8-bit signed x).
    Per float format: the bounded expdot (deep pipeline; fp16 also with :data:`EXPDOT_CUTS`),
    fpdot as the unit is by default, and fpdot with the deep pipeline and :data:`FPDOT_CUTS`.
    ``fpdot_pipeline``: also an fpdot row with that ``pipeline`` option of the unit;
    ``compact``: also the bounded expdot with the compact pipeline (what the deep one costs)."""
    def net(name, input_spec, layer):
        return {"name": name, "input": {"height": 1, "width": 1, "channels": inputs,
                                        **input_spec},
                "layers": [{"name": "dense", "outputs": outputs, "simd": simd, **layer}]}

    out = []
    for fmt in ("fp16",) + (("fp32",) if fp32 else ()):
        rng = FP16_RANGE if fmt == "fp16" else FP32_RANGE
        out.append((f"expdot {fmt}, bounded {rng}, deep pipeline", "float", net(
            f"seofp_{fmt}", {"format": fmt},
            {"kind": "expdot", "weight_exp_bits": 5, "weight_bias": FLOAT_BIAS[fmt],
             "accumulator": "bounded", "exp_range": list(rng), "pipeline": "deep"})))
        if fmt in EXPDOT_CUTS:
            deep = {"weight_exp_bits": 5, "weight_bias": FLOAT_BIAS[fmt],
                    "accumulator": "bounded", "exp_range": list(rng), "pipeline": "deep"}
            # the chosen cuts this layer has (no "tree" below SIMD 3, no "sum" at SIMD 1)
            have = config_from_dict(registry.get("expdot").config, dict(
                deep, lanes=inputs, simd=simd, act_format=fmt)).available_cuts
            cuts = [c for c in EXPDOT_CUTS[fmt] if c in have]
            out.append((f"expdot {fmt}, bounded {rng}, deep pipeline, cuts: " + "/".join(cuts),
                        "float", net(f"seofp_{fmt}_cuts", {"format": fmt},
                                     {"kind": "expdot", **deep, "cuts": cuts})))
        if compact:
            out.append((f"expdot {fmt}, bounded {rng}, compact pipeline", "float", net(
                f"seofp_{fmt}_compact", {"format": fmt},
                {"kind": "expdot", "weight_exp_bits": 5, "weight_bias": FLOAT_BIAS[fmt],
                 "accumulator": "bounded", "exp_range": list(rng)})))
        out.append((f"fpdot {fmt}", "float", net(f"fpdot_{fmt}", {"format": fmt},
                                                 {"kind": "fpdot"})))
        cuts = FPDOT_CUTS[fmt]
        out.append((f"fpdot {fmt}, deep pipeline, "
                    + ("cuts: mul " + "/".join(cuts["mul_cuts"]) + ", add "
                       + "/".join(cuts["add_cuts"]) if cuts else "every cut"), "float", net(
            f"fpdot_{fmt}_deep", {"format": fmt}, {"kind": "fpdot", "pipeline": "deep", **cuts})))
        if fpdot_pipeline is not None and not (fpdot_pipeline == "deep" and not cuts):
            out.append((f"fpdot {fmt}, {fpdot_pipeline} pipeline"
                        + (", every cut" if fpdot_pipeline == "deep" else ""), "float", net(
                f"fpdot_{fmt}_{fpdot_pipeline}", {"format": fmt},
                {"kind": "fpdot", "pipeline": fpdot_pipeline})))
    out.append(("int8 dense (macconv, PE = outputs)", "int", net(
        "int8_dense", {"bits": 8, "signed": True},
        {"kind": "dense", "arith": "mac", "pe": outputs, "weight_bits": 8, "output": "sum"})))
    out.append(("expdot 8-bit fixed, exact shift-and-add, deep pipeline", "int", net(
        "seofp_fixed8", {"bits": 8, "signed": True},
        {"kind": "expdot", "weight_exp_bits": FIXED_E, "weight_bias": FIXED_BIAS,
         "product": "exact", "pipeline": "deep"})))
    return out


def shared_weights(outputs, inputs, seed=0):
    """Signs and exponents of the shared weights w = (-1)^s 2^k: two (outputs, inputs) arrays."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, size=(outputs, inputs)),
            rng.integers(0, K_MAX + 1, size=(outputs, inputs)))


def layer_weights(cfg, signs, ks):
    """The network weight mapping of a one-layer design for the shared weights, in its format."""
    layer = cfg.resolved[0]
    c = layer.config
    values = np.where(signs == 1, -1, 1) * (1 << ks)
    if layer.kind == "expdot":
        w = (signs << c.weight_exp_bits) | (ks + c.weight_bias)
        assert np.array_equal(decoded_weights(c, w), values)   # the same values
        return {"dense.weights": w}
    if layer.kind == "fpdot":
        native, uint = NATIVE[c.act_format]
        return {"dense.weights": values.astype(native).view(uint).astype(np.int64)}
    return {"dense.weights": values, "dense.bias": np.zeros(values.shape[0], dtype=np.int64)}


def decoded_weights(c, codes):
    """Values of expdot weight codes (float64)."""
    f = codes & ((1 << c.weight_exp_bits) - 1)
    sign = np.where((codes >> c.weight_exp_bits) & 1, -1.0, 1.0)
    return np.where(f == 0, 0.0, sign * np.exp2(f - c.weight_bias))


def build(label, spec, signs, ks):
    cfg = config_from_dict(NETWORK.config, spec)
    params = NETWORK.check_params(cfg, layer_weights(cfg, signs, ks))
    return cfg, params


def cycles(cfg):
    layer = cfg.resolved[0]
    one = NETWORK.cost_model(cfg, 1)
    return {"cycles_per_frame": steady_cycles(layer), "cycles_one_frame": one.expected,
            "latency": one.latency}


# Accuracy ------------------------------------------------------------------------------------------

def exact_sums(x, w):
    """Exact (V, M) dot products (Fractions) of (V, N) float64 activations and (M, N) weights."""
    xs = [[Fraction(float(a)) for a in row] for row in x]
    ws = [[Fraction(float(b)) for b in row] for row in w]
    return [[sum((a * b for a, b in zip(xr, wr)), Fraction(0)) for wr in ws] for xr in xs]


def float_accuracy(got_bits, exact, fmt):
    native, uint = NATIVE[fmt]
    mbits = g.FLOAT_FORMATS[fmt].mbits
    vals = np.asarray(got_bits).astype(uint).view(native).astype(np.float64)
    err = np.array([ulp_error(Fraction(float(v)), e, mbits)
                    for v, e in zip(vals.ravel(), [e for row in exact for e in row])])
    return {"results": int(err.size), "correctly_rounded": float(np.mean(err <= 0.5)),
            "mean_ulp": float(np.mean(err)), "max_ulp": float(np.max(err))}


def accuracy(built, signs, ks, vectors, seed=1):
    """Each design's outputs on ``vectors`` random frames against the exact dot products."""
    rng = np.random.default_rng(seed)
    w = np.where(signs == 1, -1.0, 1.0) * np.exp2(ks)
    n = signs.shape[1]
    out, exact_by_fmt, int_outputs = {}, {}, {}
    xi = rng.integers(-128, 128, size=(vectors, n))
    exact_int = xi @ (np.where(signs == 1, -1, 1) * (1 << ks)).T   # int64: exact
    for label, kind, cfg, params in built:
        fmt = cfg.input_format.kind
        if kind == "float":
            native, uint = NATIVE[fmt]
            x = np.random.default_rng(seed).standard_normal((vectors, n)).astype(native)
            if fmt not in exact_by_fmt:
                exact_by_fmt[fmt] = exact_sums(x.astype(np.float64), w)
            y = NETWORK.golden(cfg, params, {"activations": x.view(uint).astype(np.int64)
                                             .reshape(vectors, 1, 1, n)})
            out[label] = float_accuracy(y.reshape(vectors, -1), exact_by_fmt[fmt], fmt)
            layer = cfg.resolved[0]
            if layer.kind == "expdot":  # the products' exponents on these vectors
                c = layer.config
                codes = (signs << c.weight_exp_bits) | (ks + c.weight_bias)
                ranges = [g.calibrate_exp_range(c, x, codes[m]) for m in range(len(codes))]
                out[label]["calibrated_exp_range"] = [min(r[0] for r in ranges),
                                                      max(r[1] for r in ranges)]
        else:
            y = NETWORK.golden(cfg, params, {"activations": xi.reshape(vectors, 1, 1, n)})
            y = np.asarray(y).reshape(vectors, -1).astype(np.int64)
            int_outputs[label] = y
            out[label] = {"results": int(y.size), "exact": bool(np.array_equal(y, exact_int))}
    labels = list(int_outputs)
    if len(labels) == 2:
        same = np.array_equal(*int_outputs.values())
        for label in labels:
            out[label]["equal_to_other_int_layer"] = bool(same)
    return out


# Synthesis -------------------------------------------------------------------------------------------

def figures(cfg, params, fmax):
    gen = flow.generate(NETWORK, cfg, params)
    generic = synth_flow.synthesize_verilog(gen.verilog, gen.top, "generic")["figures"]
    placed = synth_flow.synthesize_verilog(gen.verilog, gen.top, "ecp5", fmax=fmax)
    ecp5 = dict(placed["figures"])
    if placed.get("fmax"):  # the part nextpnr placed it on (picked by size)
        ecp5["device"] = placed["fmax"]["device"]
    xc7 = synth_flow.synthesize_verilog(gen.verilog, gen.top, "xc7")["figures"]
    row = {"transistors": generic["transistors"],
           **{k: generic[k] for k in ("transistors_comb", "transistors_seq", "transistors_mem",
                                      "flip_flops", "memory_bits")},
           "ecp5": {k: ecp5[k] for k in ("LUT4", "CCU2C", "FF", "DP16KD", "MULT18X18D",
                                         "fmax_mhz", "device") if k in ecp5},
           "xc7": {k: xc7[k] for k in ("LUT", "CARRY4", "FF", "BRAM", "DSP") if k in xc7}}
    return row


def operation_energy(cfg):
    e = energy.operation_energy(NETWORK, cfg, 1)
    return {"pj_per_frame": e["pj_per_inference"],
            "breakdown_pj": {k: round(v, 2) for k, v in e["breakdown"].items()}}


# Report ------------------------------------------------------------------------------------------------

def frames_per_second(row):
    """Frames per second at the design's own ECP5 Fmax (steady state, one frame every
    cycles_per_frame cycles), or None without an Fmax."""
    fmax = row.get("ecp5", {}).get("fmax_mhz")
    return None if fmax is None else fmax * 1e6 / row["cycles_per_frame"]


def _fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _mega(v):
    return None if v is None else v / 1e6


def markdown(res):
    a = res["args"]
    lines = [f"One dense layer, {a['inputs']} -> {a['outputs']}, all outputs in parallel, SIMD "
             f"{a['simd']} (every design {res['rows'][0]['cycles_per_frame']} cycles per "
             f"frame); weights +-2^k, k in 0..{K_MAX}, the same values in every design.", ""]
    header = ["design", "cycles/frame", "cycles, 1 frame", "transistors", "comb", "flip-flops",
              "memory bits", "ECP5 LUT4", "CCU2C", "FF", "DP16KD", "MULT18X18D", "Fmax MHz",
              "M frames/s at Fmax", "xc7 LUT", "CARRY4", "FF", "BRAM", "DSP",
              "energy pJ/frame (op count)"]
    rows = []
    for r in res["rows"]:
        e, x = r.get("ecp5", {}), r.get("xc7", {})
        rows.append([r["design"], r["cycles_per_frame"], r["cycles_one_frame"],
                     r.get("transistors", "-"), r.get("transistors_comb", "-"),
                     r.get("transistors_seq", "-"), r.get("transistors_mem", "-"),
                     e.get("LUT4", "-"), e.get("CCU2C", "-"), e.get("FF", "-"),
                     e.get("DP16KD", "-"), e.get("MULT18X18D", "-"),
                     _fmt(e.get("fmax_mhz")), _fmt(_mega(frames_per_second(r)), 2),
                     x.get("LUT", "-"), x.get("CARRY4", "-"),
                     x.get("FF", "-"), x.get("BRAM", "-"), x.get("DSP", "-"),
                     _fmt(r["energy"]["pj_per_frame"], 0)])
    lines += table(header, rows)
    parts = {r["design"]: r["ecp5"]["device"] for r in res["rows"]
             if "device" in r.get("ecp5", {})}
    lines += ["", "Transistors: the generic CMOS flow's gates (comb), flip-flops at 20 each and "
              "memory bits at 6 each (the columns add up to the total). Frames/s: Fmax / cycles "
              "per frame. ECP5 part: " + ("; ".join(f"{d}: {p}" for d, p in parts.items())
                                          if len(set(parts.values())) > 1
                                          else ", ".join(set(parts.values())) or "-") + ".", ""]
    by = {r["design"]: r for r in res["rows"]}
    for a_label, b_label in res["pairs"]:
        ra, rb = by.get(a_label), by.get(b_label)
        if not ra or not rb or "transistors" not in ra or "transistors" not in rb:
            continue
        fa, fb = ra["ecp5"].get("fmax_mhz"), rb["ecp5"].get("fmax_mhz")
        lines.append(f"- {a_label} vs {b_label}: "
                     f"{ratio_phrase(ra['transistors'], rb['transistors'])} transistors")
        lines[-1] += (f"; ECP5 LUT4 {ra['ecp5'].get('LUT4')} vs {rb['ecp5'].get('LUT4')}, "
                      f"MULT18X18D {ra['ecp5'].get('MULT18X18D', 0)} vs "
                      f"{rb['ecp5'].get('MULT18X18D', 0)}, Fmax {_fmt(fa)} vs {_fmt(fb)} MHz")
        pa, pb = frames_per_second(ra), frames_per_second(rb)
        if pa and pb:
            # transistors per frame/s: the area-time product of one frame, what equal
            # throughput would cost if either layer were scaled (in SIMD or copies) to the other's
            # (throughput is larger-is-better: the baseline's frames/s is the "design" side)
            lines[-1] += (f" ({_mega(pa):.2f} vs {_mega(pb):.2f} M frames/s: "
                          f"{ratio_phrase(pb, pa, 'higher', 'lower')} throughput; transistors "
                          f"per frame/s "
                          f"{ratio_phrase(ra['transistors'] / pa, rb['transistors'] / pb)})")
        lines[-1] += (f"; energy {ra['energy']['pj_per_frame']:.0f} vs "
                      f"{rb['energy']['pj_per_frame']:.0f} pJ/frame")
    acc = res["accuracy"]
    lines += ["", f"Accuracy against the exact dot products (Python fractions), {a['vectors']} "
              f"random frames x {a['outputs']} outputs; float layers: x ~ N(0, 1) in the "
              f"format, error in ulps of the format at the exact sum; integer layers: x "
              f"uniform in -128..127:", ""]
    rows = []
    for label, r in acc.items():
        if "correctly_rounded" in r:
            rows.append([label, r["results"], f"{100 * r['correctly_rounded']:.2f}%",
                         f"{r['mean_ulp']:.3f}", f"{r['max_ulp']:.2f}",
                         str(tuple(r["calibrated_exp_range"])) if "calibrated_exp_range" in r
                         else "-"])
        else:
            rows.append([label, r["results"], "exact" if r["exact"] else "NOT exact", "0" if
                         r["exact"] else "-", "0" if r["exact"] else "-",
                         "equal to the other integer layer" if r.get("equal_to_other_int_layer")
                         else "-"])
    lines += table(["design", "results", "correctly rounded", "mean error (ulp)", "max (ulp)",
                    "note"], rows)
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=64)
    ap.add_argument("--outputs", type=int, default=16)
    ap.add_argument("--simd", type=int, default=1)
    ap.add_argument("--vectors", type=int, default=300)
    ap.add_argument("--fp32", action="store_true", help="also the fp32 expdot and fpdot rows")
    ap.add_argument("--fpdot-pipeline", default=None,
                    help="also fpdot rows with this value of the unit's pipeline option")
    ap.add_argument("--compact", action="store_true",
                    help="also the bounded expdot rows with the compact pipeline")
    ap.add_argument("--quick", action="store_true", help="no place and route (no Fmax)")
    ap.add_argument("--synth", default=None, metavar="PART[,PART...]",
                    help="synthesize only the rows whose label contains one of these parts "
                         "(the others: cycles, energy and accuracy only)")
    ap.add_argument("--no-synth", action="store_true", help="cycles, energy and accuracy only")
    ap.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = ap.parse_args(argv)

    signs, ks = shared_weights(args.outputs, args.inputs)
    built = []
    for label, kind, spec in designs(args.inputs, args.outputs, args.simd, args.fp32,
                                     args.fpdot_pipeline, args.compact):
        cfg, params = build(label, spec, signs, ks)
        built.append((label, kind, cfg, params))
    per_frame = {label: cycles(cfg)["cycles_per_frame"] for label, _, cfg, _ in built}
    if len(set(per_frame.values())) != 1:
        sys.exit(f"designs differ in cycles per frame: {per_frame}")

    print("accuracy ...", flush=True)
    acc = accuracy(built, signs, ks, args.vectors)
    rows = []
    for label, kind, cfg, params in built:
        t0 = time.time()
        row = {"design": label, "config": cfg.layers[0], **cycles(cfg),
               "energy": operation_energy(cfg)}
        if not args.no_synth and (args.synth is None or any(
                part in label for part in args.synth.split(","))):
            print(f"synthesizing {label} ...", flush=True)
            row.update(figures(cfg, params, fmax=not args.quick))
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        print(f"  {label}: {row}", flush=True)
    labels = [label for label, _, _, _ in built]
    pairs = [(a, b) for a in labels for b in labels if a.startswith("expdot fp")
             and b.startswith("fpdot " + a.split()[1].rstrip(","))]
    pairs.append((labels[-1], labels[-2]))  # expdot fixed vs int8 dense
    res = {"args": vars(args) | {"output": str(args.output)}, "rows": rows, "pairs": pairs,
           "accuracy": acc}
    write_results(args.output, "seofp_layer", res, markdown(res))


if __name__ == "__main__":
    main()
