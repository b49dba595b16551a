"""Published figures that qhw's results can be read against, with the conditions that differ.

Each claim names its source (the paper, or FINN's code) and what it measures. :func:`rows`
matches a report's records with the claims they speak to and says, in one row per claim, what
the claim is, what qhw measured here that comes closest, and how the conditions differ, so that
nobody mistakes a like-for-unlike comparison for a reproduction.
"""

from __future__ import annotations

import math

from .render import fmt, md_escape, ratio, value

__all__ = ["CLAIMS", "HLS4ML_JET_TAGGER", "finn_r_mvau_luts", "rows"]

#: hls4ml's published resource figures: Table 1 of F. Fahim et al., "hls4ml: an open-source
#: codesign workflow to empower scientific low-power machine learning devices", TinyML Research
#: Symposium 2021 (arXiv 2103.05579). The network is the paper's jet classifier (section 3: 16
#: inputs, three hidden layers of 64, 32 and 32 ReLU nodes, 5 classes); the caption gives the part,
#: clock and tools. Each row: (model, bit width, accuracy %, latency ns, DSP, LUT, FF), the
#: absolute counts the table quotes in parentheses. Table 1 states no reuse factor and no pruning
#: for these rows, so neither is claimed here.
HLS4ML_JET_TAGGER = {
    "source": "Fahim et al., arXiv 2103.05579, Table 1",
    "layers": (16, 64, 32, 32, 5),
    "part": "Xilinx Virtex UltraScale+ VU9P",
    "clock_mhz": 200,
    "tools": "hls4ml v0.5.0 and Vivado HLS 2019.2",
    "rows": (("16-bit PTQ", 16, 76.4, 50, 1852, 89209, 11266),
             ("14-bit PTQ", 14, 75.8, 50, 1132, 90019, 9262),
             ("6-bit QAT", 6, 76.2, 45, 38, 63251, 4394)),
}


def _hls4ml_weights(layers):
    """Weights (multiplications per inference) of a fully-connected network of these widths."""
    return sum(a * b for a, b in zip(layers, layers[1:]))


def _hls4ml_claim(t=HLS4ML_JET_TAGGER):
    widths = "-".join(str(n) for n in t["layers"])
    rows = "; ".join(f"{name}: {fmt(lut)} LUT, {fmt(ff)} FF, {fmt(dsp)} DSP, {fmt(lat)} ns, "
                     f"{acc} % accuracy"
                     for name, _, acc, lat, dsp, lut, ff in t["rows"])
    return (f"hls4ml ({t['source']}): the {widths} fully-connected jet classifier "
            f"({fmt(_hls4ml_weights(t['layers']))} weights) on a {t['part']} at "
            f"{t['clock_mhz']} MHz, {t['tools']}: {rows}.")


#: The seeds' claims and FINN's and hls4ml's published figures (docs/references.md lists the
#: sources).
CLAIMS = {
    "bam": ("Binary activation maps (arXiv 2407.04578): 25x less memory at inference than the "
            "float DNSMOS-like model, at matching quality; dot products become sums."),
    "gru": ("Mixed-precision integer GRU (arXiv 2402.12263): per-operator bit widths found by "
            "NSGA-II give 25-55 % smaller models at the accuracy of homogeneous 8-bit."),
    "seofp": ("SEOFP-NET (arXiv 2111.04436): sign-exponent-only weights give up to 81.2 % "
              "smaller models and 1.21x faster inference."),
    "finn_r": ("FINN-R (arXiv 1809.04570): LUT estimate of a matrix-vector-activation unit, "
               "300 + 1.1·PE·(multipliers + adder tree + accumulator + thresholds), "
               "as FINN's code computes it (`lut_estimation`)."),
    "finn": ("FINN (arXiv 1612.07119): binarized MNIST at 12.3 M frames/s and 0.31 µs latency, "
             "CIFAR-10 at 21,906 frames/s and 283 µs, on a ZC706 under 25 W."),
    "hls4ml": _hls4ml_claim(),
}


def finn_r_mvau_luts(weight_bits, act_bits, pe, simd, mw, mh, out_bits=None, signed=False):
    """FINN-R's LUT estimate of one MVAU (FINN's ``MVAU.lut_estimation``, c0=300, c1=1.1).

    ``signed`` is whether the input (activation) type is signed, as FINN's ``idt.signed()``.

    ``out_bits`` is the thresholded output's width (None: no activation, no threshold logic);
    thresholds are taken as distributed RAM, FINN's LUT-counting case."""
    w, a, p, q = weight_bits, act_bits, pe, simd
    mult = q * (2 * math.ceil((w + a) / 6) - 1) * (w + a)
    adder = (w + a) * (2 * q - 1)
    alpha = math.log2(mw) + w + a - 1 - int(signed)
    acc = math.ceil(alpha + math.log2(1 + 2 ** -alpha) + 1)
    thr = comp = 0
    if out_bits:
        tmem = mh // pe  # threshold memory depth; FINN counts LUT-RAM per 64 entries
        thr = (2 ** out_bits - 1) * acc * int(tmem / 64)
        comp = (2 ** out_bits - 1) * acc
    return int(300 + 1.1 * p * (mult + adder + acc + thr + comp))


def _conv_bits(r):
    """(weight bits, activation bits, output bits or None) of a conv record, FINN's view."""
    cfg = r["config"]
    unit = r["unit"]
    if unit == "binconv":
        w = a = 1
    elif unit == "bamconv":
        w, a = cfg.get("weight_bits"), 1
    else:
        w, a = cfg.get("weight_bits"), cfg.get("act_bits")
    out = 1 if cfg.get("output") == "threshold" else None
    return w, a, out


def _finn_r_row(records, label):
    pts = []
    for r in records:
        if r["unit"] not in ("binconv", "bamconv", "macconv") or r["status"] != "ok":
            continue
        cfg = r["config"]
        lut = (r.get("xc7") or {}).get("LUT")
        if not lut or not all(k in cfg for k in ("c_in", "c_out", "kernel", "pe", "simd")):
            continue
        w, a, out = _conv_bits(r)
        mw = cfg["c_in"] * cfg["kernel"][0] * cfg["kernel"][1]
        est = finn_r_mvau_luts(w, a, cfg["pe"], cfg["simd"], mw, cfg["c_out"], out,
                               signed=bool(cfg.get("act_signed", False)))
        pts.append((r, est, lut))
    if not pts:
        return None
    ratios = [lut / est for _, est, lut in pts]
    lo = min(pts, key=lambda p: p[2] / p[1])
    hi = max(pts, key=lambda p: p[2] / p[1])
    return [CLAIMS["finn_r"],
            f"{len(pts)} conv points: measured xc7 LUT / FINN-R estimate from "
            f"{min(ratios):.2f} ({md_escape(label(lo[0]))}: {fmt(lo[2])} against {fmt(lo[1])}) "
            f"to {max(ratios):.2f} ({md_escape(label(hi[0]))}: {fmt(hi[2])} against "
            f"{fmt(hi[1])})",
            "FINN-R estimates an HLS MVAU alone in Vivado; qhw's figure is Yosys `synth_xilinx` of "
            "the whole unit, its sliding-window generator and line buffer included, weights as "
            "constants in logic, and multipliers in DSP48E1 blocks where Yosys maps them (FINN-R "
            "counts LUT multipliers). A ratio above 1 is qhw's unit using more LUTs than FINN-R's "
            "MVAU model, below 1 fewer."]


def _mac_weights(r):
    """(weights, weight bits, activation bits) of a fixed-point multiply-accumulate point (a GRU
    or a MAC convolution), or None for any other unit."""
    cfg = r["config"]
    if r["unit"] == "gru":
        i, h = cfg["input_size"], cfg["hidden_size"]
        fmts = cfg.get("formats") or {}
        w = (fmts.get("weight") or [cfg.get("bits")])[0]
        a = (fmts.get("input") or [cfg.get("bits")])[0]
        return 3 * h * (i + h), w, a  # W_ih (3H x I) and W_hh (3H x H)
    if r["unit"] == "macconv":
        kh, kw = cfg["kernel"]
        return cfg["c_in"] * kh * kw * cfg["c_out"], cfg.get("weight_bits"), cfg.get("act_bits")
    return None


def _hls4ml_row(records, label):
    """hls4ml's jet classifier beside qhw's fixed-point MAC points (GRU, MAC convolution) that
    have xc7 figures: the largest of them (most weights, the nearest in size) in full, and the
    LUT span of all."""
    pts = []
    for r in records:
        if r["status"] != "ok" or not (r.get("xc7") or {}).get("LUT"):
            continue
        sizes = _mac_weights(r)
        if sizes and sizes[0]:
            pts.append((r, *sizes))
    if not pts:
        return None
    t = HLS4ML_JET_TAGGER
    big, n, wb, ab = max(pts, key=lambda p: (p[1], p[0]["xc7"]["LUT"]))
    x = big["xc7"]
    luts = [p[0]["xc7"]["LUT"] for p in pts]
    units = sorted({p[0]["unit"] for p in pts})
    cycles = big.get("cycles_per_inference")
    measured = (f"{len(pts)} fixed-point MAC point{'s' if len(pts) > 1 else ''} "
                f"({', '.join(units)}) on xc7; the largest, {md_escape(label(big))}: "
                f"{fmt(n)} weights of {fmt(wb)} bits (activations {fmt(ab)} bits), "
                f"{fmt(x.get('LUT'))} LUT, {fmt(x.get('FF'))} FF, {fmt(x.get('DSP'))} DSP48E1"
                + (f", {fmt(cycles)} cycles per inference" if cycles else ""))
    if len(pts) > 1:
        measured += f"; LUT over all from {fmt(min(luts))} to {fmt(max(luts))}"
    lat = sorted({row[3] for row in t["rows"]})
    cyc = [ns * t["clock_mhz"] // 1000 for ns in lat]
    return [CLAIMS["hls4ml"], measured,
            f"Not a reproduction: another network and another function. hls4ml's figures are "
            f"a {fmt(_hls4ml_weights(t['layers']))}-weight fully-connected network through "
            f"{t['tools']} on an UltraScale+ part, with trained weights (the 6-bit "
            f"model quantization-aware) and its accuracy; {lat[0]} to {lat[-1]} ns at "
            f"{t['clock_mhz']} MHz is {cyc[0]} to {cyc[-1]} clock cycles for the whole network. "
            f"qhw's are one folded unit with random weights (a GRU walks its weights `macs` "
            f"multipliers at a time over many cycles, its cycles counted per sequence; a "
            f"convolution adds its window generator), synthesized by Yosys `synth_xilinx` for "
            f"7-series (DSP48E1). The published row gives the scale of an hls4ml network, not "
            f"a baseline of the same computation."]


def _baseline_span(pairs, units, path):
    """(smallest, largest) baseline/design ratio of ``path`` over pairs of the given units."""
    rs = []
    for design, base in pairs:
        if design["unit"] not in units:
            continue
        r = ratio(value(design, path), value(base, path))
        if r is not None:
            rs.append((r, design))
    return (min(rs, key=lambda t: t[0]), max(rs, key=lambda t: t[0])) if rs else None


def _span_text(span, what, label):
    (lo, lo_rec), (hi, hi_rec) = span
    return (f"{what}: from {lo:.2f}x ({md_escape(label(lo_rec))}) to {hi:.2f}x "
            f"({md_escape(label(hi_rec))}) the baseline's (above 1: the design is smaller)")


def rows(records, pairs, label):
    """Table rows [claim, qhw's closest figure here, conditions that differ] for the claims the
    records speak to. ``pairs`` are (design, baseline) records; ``label(record)`` names a point."""
    out = []
    bam = _baseline_span(pairs, ("bamconv", "binconv"), "generic.transistors")
    if bam:
        out.append([CLAIMS["bam"],
                    _span_text(bam, "binary-activation conv transistors against the 8 x 8 MAC "
                                    "convolution of the same geometry and folding", label),
                    "The paper's 25x is memory of a whole network with fp32 activations and "
                    "weights as the baseline; here each point is one convolution's logic "
                    "(weights are constants), against an 8-bit MAC. The whole-network memory "
                    "figure is in `qhw demo`'s report."])
    gru = _baseline_span(pairs, ("gru",), "generic.transistors")
    if gru:
        out.append([CLAIMS["gru"],
                    _span_text(gru, "GRU datapath transistors against homogeneous 8-bit", label),
                    "The paper counts model size (weight bits) and reports accuracy; here it is "
                    "the area of the GRU datapath in gates, flip-flops and memory bits, with no "
                    "accuracy (a sweep uses random weights): `qhw search` puts both together."])
    seofp = _baseline_span(pairs, ("expmul", "expdot"), "generic.transistors")
    if seofp:
        fm = _baseline_span(pairs, ("expmul", "expdot"), "ecp5.fmax_mhz")
        speed = ""
        if fm:  # Fmax: larger is better, so the baseline/design ratio is inverted
            (lo, _), (hi, _) = fm
            speed = f"; ECP5 Fmax {1 / hi:.2f}x to {1 / lo:.2f}x the baseline's"
        out.append([CLAIMS["seofp"],
                    _span_text(seofp, "exponent-adder transistors against the IEEE multiplier "
                                      "or float dot product", label) + speed,
                    "The paper's speed-up is software inference time of a whole model; here it is "
                    "the clock and area of one multiplier or dot product in hardware."])
    finn = _finn_r_row(records, label)
    if finn:
        out.append(finn)
    hls4ml = _hls4ml_row(records, label)
    if hls4ml:
        out.append(hls4ml)
    nets = [r for r in records if r["unit"] == "network" and r["status"] == "ok"]
    if nets:
        fps = []
        for r in nets:
            mhz = value(r, "ecp5.fmax_mhz")
            cyc = r.get("cycles_per_inference")
            if mhz and cyc:
                fps.append((mhz * 1e6 / cyc, r))
        if fps:
            best, rec = max(fps, key=lambda t: t[0])
            out.append([CLAIMS["finn"],
                        f"{md_escape(label(rec))}: {fmt(best)} frames/s at its ECP5 Fmax",
                        "FINN's figures are whole image classifiers on a Zynq ZC706 (Vivado, "
                        "hundreds of thousands of LUTs); qhw's are its own test networks on a "
                        "Lattice ECP5 through Yosys and nextpnr, batch of a few frames, fill "
                        "included."])
    return out
