"""The report of ``qhw demo`` (the DNSMOS flagship): Markdown and one self-contained HTML page.

Built from the demo's results dictionary only (``results.json``), as blocks of
:mod:`qhw.explore.report` (headings, paragraphs, tables, figures), so that both files say the
same. The headline is generated from the figures, each sentence with its baseline.
"""

from __future__ import annotations

from pathlib import Path

from ..synth import flows
from ..explore.render import (Bullets, Figure, Finding, Heading, Para, Table, fmt,
                              ratio_phrase, to_html, to_markdown)

__all__ = ["write_report", "build_blocks", "COMMON_CLOCK_MHZ"]

#: The clock at which both design points' time and rate are also given (as in sweep reports).
COMMON_CLOCK_MHZ = 100

WINDOW_SECONDS = 9.01
GOAL_PCC, GOAL_RMSE = 0.95, 0.15

BRAM_KEY = {"ecp5": "DP16KD", "ice40": "EBR"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _sum_parts(parts, key):
    return sum(p["figures"].get(key, 0) * p.get("copies", 1) for p in parts)


def _realtime(cycles, mhz):
    return WINDOW_SECONDS * mhz * 1e6 / cycles if cycles and mhz else None


# Figures ------------------------------------------------------------------------------------

def _scatter(results, path):
    plt = _plt()
    rows = results["clips"]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    conditions = sorted({r["condition"] for r in rows}, key=[r["condition"] for r in rows].index)
    markers = "osD^v<>Px"
    for i, cond in enumerate(conditions):
        pts = [r for r in rows if r["condition"] == cond]
        ax.scatter([r["teacher_mos"] for r in pts], [r["student_mos"] for r in pts],
                   marker=markers[i % len(markers)], label=cond, s=36)
    lo = min(min(r["teacher_mos"] for r in rows), min(r["student_mos"] for r in rows)) - 0.1
    hi = max(max(r["teacher_mos"] for r in rows), max(r["student_mos"] for r in rows)) + 0.1
    ax.plot([lo, hi], [lo, hi], color="#888", lw=1, ls="--", label="student = teacher")
    ax.set_xlim(lo, hi), ax.set_ylim(lo, hi)
    ax.set_xlabel("float DNSMOS P.808 (onnxruntime), MOS")
    ax.set_ylabel("binary student (qhw golden = RTL), MOS")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _layers(results, path):
    """Per layer: cycles per window (cost model) and ECP5 LUT4 / FF (each layer synthesized
    alone), side by side."""
    plt = _plt()
    point = results["design_points"]["dnsmos_ecp5"]
    layers = point["manifest"]["layers"]
    names = [l["name"] for l in layers]
    cycles = [l.get("cycles_per_frame") or 0 for l in layers]
    parts = {p["name"]: p["figures"] for p in results["synthesis"].get("ECP5 layers", {})
             .get("parts", [])}
    ncols = 2 if parts else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.8), squeeze=False)
    ax = axes[0, 0]
    ax.barh(names[::-1], cycles[::-1], color="#4C72B0")
    ax.set_xscale("log")
    ax.set_xlabel("cycles per 9.01 s window (log)")
    ax.set_title("cycles per layer (cost model = RTL)", fontsize=9)
    slowest = max(cycles)
    ax.axvline(slowest, color="#C44E52", lw=1, ls="--")
    if parts:
        ax = axes[0, 1]
        lut = [parts.get(n, {}).get("LUT4", 0) for n in names][::-1]
        ff = [parts.get(n, {}).get("FF", 0) for n in names][::-1]
        y = range(len(names))
        ax.barh([i + 0.2 for i in y], lut, height=0.4, label="LUT4", color="#55A868")
        ax.barh([i - 0.2 for i in y], ff, height=0.4, label="FF", color="#8172B2")
        ax.set_yticks(list(y), names[::-1])
        ax.set_xlabel("ECP5 cells, each layer synthesized alone")
        ax.set_title("area per layer (Yosys synth_ecp5)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _memory(results, path):
    plt = _plt()
    mem = results["design_points"]["dnsmos_ecp5"]["memory_bits"]
    kinds = ["binary", "int8", "fp32"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    parts = [("weights", "#4C72B0"), ("line_buffers", "#55A868"), ("fifos", "#C44E52"),
             ("frame_buffer", "#8172B2")]
    for ax, (title, keys) in zip(axes, (
            ("streaming accelerator (this design)", ["weights", "line_buffers", "fifos"]),
            ("frame-buffered (one layer at a time, as the paper counts)",
             ["weights", "frame_buffer"]))):
        bottom = [0.0] * len(kinds)
        for key, color in parts:
            if key not in keys:
                continue
            vals = [mem[k][key] / 1e6 for k in kinds]
            ax.bar(kinds, vals, bottom=bottom, label=key.replace("_", " "), color=color)
            bottom = [b + v for b, v in zip(bottom, vals)]
        for i, b in enumerate(bottom):
            ax.text(i, b, f"{b:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("Mbit")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# Blocks -------------------------------------------------------------------------------------

def _ice40_logic(synth, cap):
    """How far the iCE40 layers (synthesized alone) are from the part, as a clause."""
    parts = synth.get("iCE40 layers", {}).get("parts")
    if not parts:
        return ""
    lut, ff, ebr = (_sum_parts(parts, k) for k in ("LUT4", "FF", "EBR"))
    return (f"; its layers alone (FIFOs not included) take {lut:,} LUT4 ({lut / cap['LUT4']:.1f}x "
            f"the part's {cap['LUT4']:,}), {ff:,} flip-flops ({ff / cap['FF']:.1f}x: the iCE40 "
            f"has no LUT-RAM, so the line buffers are flip-flops) and {ebr:,} EBR "
            f"({ebr / cap['EBR']:.1f}x)")


def _timing(point, synth_key, synth):
    """Cycles, Fmax and time per window of a design point: at its Fmax, at its target clock and
    at the common clock."""
    cyc = point["manifest"]["cycles"]["expected"]
    f = (synth.get(f"{synth_key} synthesis") or {}).get("figures") or {}
    fmax = f.get("fmax_mhz")
    out = {"cycles": cyc, "fmax": fmax, "target_mhz": point["spec"]["clock_mhz"]}
    for key, mhz in (("fmax", fmax), ("target", out["target_mhz"]),
                     ("common", COMMON_CLOCK_MHZ)):
        out[f"ms_{key}"] = cyc / mhz / 1e3 if mhz else None
        out[f"rt_{key}"] = _realtime(cyc, mhz)
    return out


def _multipliers(figures):
    n = figures.get("MULT18X18D", 0) or 0
    return (f"{n:,} hard multiplier{'' if n == 1 else 's'}"
            + (" (conv1's 8-bit products; the binary layers have none)" if n else ""))


# Energy -------------------------------------------------------------------------------------

_DATA = ("combinational", "register_outputs", "input_ports")


def _acc(v):
    """An accuracy figure (PCC, RMSE in MOS) to three decimals, so 0.160 does not print as
    0.16 beside 0.153; "–" when missing."""
    return "–" if v is None else f"{v:.3f}"


def _uj(pj):
    return f"{pj / 1e6:,.1f} µJ" if pj >= 1e5 else f"{pj / 1e6:,.3f} µJ"


def energy_gap(ops, measured):
    """The largest contributor to the gap between the two estimates of a window, as a phrase;
    None where either is missing. Each side is split into what both count in some form (memory
    accesses; arithmetic and logic) and what only the gate model counts (the clock)."""
    if not ops or not measured or "pj_per_inference" not in measured:
        return None
    ob, mb = ops["breakdown"], measured["breakdown"]
    idle = measured.get("idle") or {}
    sides = {
        "the clock of every flip-flop": (mb.get("clock", 0.0), 0.0,
                                         idle.get("clock", 0.0)),
        "memory accesses": (mb.get("memory_reads", 0.0) + mb.get("memory_writes", 0.0)
                            + mb.get("fifos", 0.0), ob.get("sram_read", 0.0),
                            idle.get("memory_reads", 0.0)),
        "arithmetic and logic": (sum(mb.get(k, 0.0) for k in _DATA),
                                 sum(v for k, v in ob.items() if k != "sram_read"), 0.0),
    }
    name = max(sides, key=lambda k: abs(sides[k][0] - sides[k][1]))
    got, est, wait = sides[name]
    t, o = measured["pj_per_inference"], ops["pj_per_inference"]
    text = (f"measured {ratio_phrase(t, o, 'less', 'more')} than the operation count; the "
            f"largest part of the difference is {name}: {_uj(got)} measured against "
            f"{_uj(est)} in the operation count")
    if wait:
        text += (f", of which {_uj(wait)} ({wait / max(got, 1e-12):.0%}) while layers wait "
                 f"for the slowest one (every cycle's clock and reads of memories whose read "
                 f"enable is tied high)")
    return text


def energy_blocks(results, cycles):
    """The energy section: both estimates per window and per layer, which to cite, the gap."""
    en = results.get("energy")
    if not en:
        return []
    me = results.get("energy_measured") or {}
    have = "pj_per_inference" in me
    total = en["pj_per_inference"]
    share = {k: v / total for k, v in en["breakdown"].items()}
    top = max(share, key=share.get)
    out = [Heading("Energy")]
    if have:
        mb = me["breakdown"]
        mt = me["pj_per_inference"]
        biggest = max(mb, key=mb.get)
        measured_cell = _uj(mt)
        measured_top = f"{biggest.replace('_', ' ')}, {mb[biggest] / mt:.0%}"
    else:
        measured_cell = "not run: " + (me.get("skipped") or me.get("error") or "no result")
        measured_top = "–"
    out.append(Table(
        ["estimate", "per 9.01 s window", "largest part", "what it counts", "cite it for"],
        [["estimated: operation count (Horowitz 45 nm, 0.9 V)", _uj(total),
          f"{top.replace('_', ' ')}s, {share[top]:.0%} (adds {share.get('add', 0):.0%}, "
          f"conv1's multiplies {share.get('mul', 0):.0%})",
          "every add, multiply and weight / threshold read (10 pJ per 64 bits from an 8 KB "
          "SRAM), for every output position; not registers, line buffers, FIFOs, control, clock",
          "comparing with papers that price operations with Horowitz's figures"],
         ["measured: gate-level toggles, sampled per layer (45 nm cell model, 0.9 V)",
          measured_cell, measured_top,
          "every net's switching in each layer's generic gate netlist (measured on a slice of "
          "its real input, scaled to the window), the clock of every flip-flop for all "
          f"{cycles:,} cycles, every memory access (weights, thresholds, line buffers, FIFOs) "
          "at the same SRAM price",
          "the energy of this RTL as built, and what would cut it"]]))
    if not have:
        out.append(Para(
            "The operation count is the estimate to cite here (docs/energy.md); `qhw demo` "
            "without `--quick` measures the other."))
        return out
    ops_layer = en.get("per_layer") or {}
    rows = []
    for L in me["layers"]:
        b = L["breakdown"]
        sl = L["slice"]
        rows.append([
            L["name"], f"{sl['rows']} of {sl['of_rows']}",
            _uj(ops_layer.get(L["name"], 0.0)), _uj(L["pj"]),
            _uj(sum(b[k] for k in _DATA)), _uj(b["clock"]),
            _uj(b["memory_reads"] + b["memory_writes"]),
            f"{(L['idle']['clock'] + L['idle']['memory_reads']) / max(L['pj'], 1e-12):.0%}"])
    fifo = me["breakdown"].get("fifos", 0.0)
    rows.append(["FIFOs between layers", "analytic", "–", _uj(fifo), "–", "–", _uj(fifo), "–"])
    mb = me["breakdown"]
    idle = me["idle"]
    rows.append(["**window**", "", _uj(total), _uj(me["pj_per_inference"]),
                 _uj(sum(mb[k] for k in _DATA)), _uj(mb["clock"]),
                 _uj(mb["memory_reads"] + mb["memory_writes"] + fifo),
                 f"{(idle['clock'] + idle['memory_reads']) / me['pj_per_inference']:.0%}"])
    out.append(Table(
        ["layer", "input rows measured", "operation count", "measured", "of it: switching",
         "clock", "memory accesses", "while waiting"], rows))
    gap = energy_gap(en, me)
    out.append(Para(
        f"**Which to cite.** For a comparison with papers that price operations with Horowitz's "
        f"45 nm figures, cite the operation count ({_uj(total)} per window): it is like for "
        f"like with them and independent of this implementation. For the energy of this "
        f"accelerator as built (its control, registers, clock, line buffers, FIFOs and the "
        f"cycles in which layers wait for conv2), cite the measured figure ({_uj(mt)} "
        f"per window); it is the one that shows what a change to the hardware would save. "
        f"**Why they differ:** {gap}."))
    out.append(Para(
        f"How the measured figure is made (docs/energy.md): each layer alone, as its unit with "
        f"its folding and weights, is synthesized to the gate netlist with its memories kept as "
        f"memories and run in Verilator on at most {me['rows']} rows of its real input from the "
        f"middle of this window (at most {me['cycle_budget']:,} cycles), checked against the "
        f"golden model; its switching is scaled by its input rows in the window over those "
        f"measured, the clock of its {sum(L['flipflops'] for L in me['layers']):,} flip-flops "
        f"(all layers) counted for all {me['cycles']:,} cycles of the window, and every memory "
        f"access priced at the SRAM read of the operation count. The 'while waiting' column "
        f"is the clock and the every-cycle memory reads of cycles in which a layer has no work "
        f"({_uj(idle['clock'] + idle['memory_reads'])} of {_uj(mt)}): clock gating and read "
        f"enables tied to the stream's valid would remove most of it. Not counted: glitches, "
        f"clock-tree buffers, leakage, the FIFOs' control logic."))
    return out


def headline(results):
    """The report's findings (each a sentence with its figure, its baseline and a link to the
    section behind it), generated from the demo's results."""
    agree, train = results["agreement"], results["training"]
    ecp5 = results["design_points"]["dnsmos_ecp5"]
    synth = results["synthesis"]
    wf = (synth.get("ECP5 synthesis") or {}).get("figures") or {}
    cosim = results["cosimulation"]
    mem = ecp5["memory_bits"]
    oracle = all(r.get("oracle_checked", True) for r in results["clips"])
    t = _timing(ecp5, "ECP5", synth)
    findings = []
    test = train.get("test", {})
    met = test.get("pcc", 0) >= GOAL_PCC and test.get("rmse", 9) <= GOAL_RMSE
    findings.append(Finding(
        f"Accuracy: the binary student follows the float DNSMOS P.808 with PCC "
        f"{_acc(agree['pcc'])} and RMSE {_acc(agree['rmse'])} MOS on the {agree['clips']} demo "
        f"clips, and PCC {_acc(test.get('pcc'))} / RMSE {_acc(test.get('rmse'))} MOS on the "
        f"{test.get('clips', '?')} held-out corpus clips (goal PCC >= {GOAL_PCC}, RMSE <= "
        f"{GOAL_RMSE}: {'met' if met else 'not met yet'}) ([scores](#scores))."))
    if "error" not in cosim:
        findings.append(Finding(
            f"Verification: the accelerator's RTL (Verilator) gives "
            f"{'exactly' if cosim['bit_exact'] else 'NOT'} the golden model's output on "
            f"{'a whole 9.01 s window' if cosim['frames'] == 900 else str(cosim['frames']) + ' frames'}"
            f" of clip 1, in {cosim['cycles_measured']:,} cycles (cost model: "
            f"{cosim['cycles_model']:,})"
            + ("; the golden model equals the PyTorch integer oracle on every demo window"
               if oracle else "") + " ([verification](#verification))."))
    else:
        findings.append(Finding(f"Verification: the cosimulation FAILED: {cosim['error'][:200]} "
                                f"([verification](#verification))."))
    if t["fmax"]:
        findings.append(Finding(
            f"Real time on ECP5-25F: {fmt(t['rt_fmax'])}x real time at its {fmt(t['fmax'])} "
            f"MHz Fmax ({fmt(t['ms_fmax'])} ms per 9.01 s window; goal "
            f"{ecp5['spec']['realtime_factor']}x) in {fmt(wf.get('LUT4'))} LUT4, "
            f"{fmt(wf.get('FF'))} FF, {fmt(wf.get('DP16KD'))} DP16KD and {_multipliers(wf)} "
            f"([time and rate](#time-and-rate))."))
    else:
        findings.append(Finding(
            f"Real time (cost model; no synthesis in this run): {t['cycles']:,} cycles per 9.01 s "
            f"window, {fmt(t['rt_target'])}x real time at the ECP5 design point's "
            f"{t['target_mhz']} MHz target clock ({fmt(t['ms_target'])} ms per window) "
            f"([time and rate](#time-and-rate))."))
    en, me = results.get("energy"), results.get("energy_measured") or {}
    if en and "pj_per_inference" in me:
        findings.append(Finding(
            f"Energy per 9.01 s window (45 nm, 0.9 V): {_uj(en['pj_per_inference'])} by the "
            f"operation count (Horowitz), {_uj(me['pj_per_inference'])} measured from gate-level "
            f"switching of every layer (sampled); {energy_gap(en, me)} ([energy](#energy))."))
    fb = mem["binary"]["frame_buffered_total"]
    findings.append(Finding(
        f"Memory: frame-buffered, binary activations need "
        f"{ratio_phrase(fb, mem['fp32']['frame_buffered_total'], 'less', 'more')} memory than fp32 "
        f"(the paper claims 25x) and {ratio_phrase(fb, mem['int8']['frame_buffered_total'], 'less', 'more')} "
        f"than 8-bit activations; the streaming accelerator holds "
        f"{mem['binary']['streaming_total'] / 1e3:,.0f} kbit on chip ([memory](#memory))."))
    return findings


def build_blocks(results, figdir):
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    blocks = []
    agree, train = results["agreement"], results["training"]
    ecp5 = results["design_points"]["dnsmos_ecp5"]
    ice40 = results["design_points"]["dnsmos_ice40"]
    synth = results["synthesis"]
    whole = synth.get("ECP5 synthesis", {})
    wf = whole.get("figures") or {}
    cosim = results["cosimulation"]
    cycles = ecp5["manifest"]["cycles"]["expected"]
    target_mhz = ecp5["spec"]["clock_mhz"]
    mem = ecp5["memory_bits"]
    # The demo checks the golden model against the PyTorch oracle when PyTorch is installed.
    oracle = all(r.get("oracle_checked", True) for r in results["clips"])

    test = train.get("test", {})
    findings = headline(results)
    blocks += [Heading("Headline"), Bullets([f.text for f in findings], ordered=True)]

    # Scores -----------------------------------------------------------------------------
    blocks.append(Heading("Scores"))
    blocks.append(Para(
        "Each clip is synthesized offline by eSpeak NG (voices the student never saw in "
        "training, sentences of the corpus's test split) and degraded; its score is the mean "
        "over its 9.01 s windows, as DNSMOS scores a clip. Teacher: the float DNSMOS P.808 "
        "(speechmos's model_v8.onnx in onnxruntime). Student: the binary-activation network "
        "with 8-bit weights, computed by qhw's golden model (what the accelerator computes, "
        "bit for bit), MOS = dense3's integer sum x mos_scale."))
    blocks.append(Table(["clip", "condition", "float P.808", "binary student", "difference"],
                        [[r["clip"], r["condition"], f"{r['teacher_mos']:.3f}",
                          f"{r['student_mos']:.3f}",
                          f"{r['student_mos'] - r['teacher_mos']:+.3f}"]
                         for r in results["clips"]]))
    _scatter(results, figdir / "scores.png")
    blocks.append(Figure(figdir / "scores.png",
                         "Binary student against the float DNSMOS P.808 on the demo clips."))
    if train:
        v = train.get("validation", {})
        blocks.append(Para(
            f"Training record of the shipped weights ({train.get('student')} student, "
            f"{train.get('minutes')} min of CPU training, `python -m qhw.dnsmos.train`): test "
            f"PCC {_acc(test.get('pcc'))}, RMSE {_acc(test.get('rmse'))} MOS on "
            f"{test.get('clips')} clips; "
            + ("validation (trained on: `--train-on-val` adds the validation windows to the "
               "training set, so only the test clips are unseen) " if train.get("train_on_val")
               else "validation ")
            + f"PCC {_acc(v.get('pcc'))}, RMSE {_acc(v.get('rmse'))}."))

    # Verification -----------------------------------------------------------------------
    blocks.append(Heading("Verification"))
    if "error" in cosim:
        blocks.append(Para(f"The cosimulation failed: {cosim['error']}"))
    else:
        blocks.append(Table(
            ["input", "RTL output", "golden", "bit-exact", "cycles (RTL)", "cycles (model)",
             "simulation"],
            [[f"clip 1, {cosim['frames']} x 120 features", cosim["output"], cosim["golden"],
              cosim["bit_exact"], f"{cosim['cycles_measured']:,}", f"{cosim['cycles_model']:,}",
              f"{cosim['seconds']} s ({cosim['cycles_per_s']:,} cycles/s)"]]))
        blocks.append(Para(
            "The RTL runs in Verilator without stalls (qhw's C++ harness, the same timing as "
            "the cocotb testbench, which the regression uses with random stalls and "
            "back-pressure). "
            + ("The golden model is checked against an outside oracle, PyTorch's conv2d / "
               "max_pool2d / matmul on the exported integers, on every demo window." if oracle
               else "PyTorch was not installed, so the golden model was not checked against "
                    "its outside oracle (PyTorch's conv2d / max_pool2d / matmul on the "
                    "exported integers) in this run; the tests check it.")))

    # Accelerator ------------------------------------------------------------------------
    blocks.append(Heading("Accelerator"))
    perf = ecp5["manifest"]["estimate_network_performance"]
    layer_rows = []
    parts = {p["name"]: p["figures"] for p in synth.get("ECP5 layers", {}).get("parts", [])}
    for l in ecp5["manifest"]["layers"]:
        fold = l.get("folding") or {}
        pf = parts.get(l["name"], {})
        layer_rows.append([l["name"], l["kind"], "x".join(str(s) for s in l["input"]["shape"]),
                           l["input"]["format"],
                           f"PE {fold['PE']} SIMD {fold['SIMD']}" if fold else "–",
                           f"{l.get('cycles_per_frame', 0):,}",
                           fmt(pf.get("LUT4")), fmt(pf.get("FF")), fmt(pf.get("DP16KD")),
                           fmt(pf.get("MULT18X18D"))])
    blocks.append(Para(
        f"The ECP5 design point (`examples/networks/dnsmos_ecp5.toml`): folding chosen by FINN's "
        f"SetFolding rule for {ecp5['spec']['realtime_factor']}x real time at "
        f"{target_mhz} MHz; slowest layer {perf['max_cycles_node_name']} "
        f"({perf['max_cycles']:,} cycles per window). Per-layer area: each layer synthesized "
        f"alone (Yosys synth_ecp5){'' if parts else ' - not run in --quick mode'}."))
    blocks.append(Table(["layer", "kind", "input", "input format", "folding", "cycles/window",
                         "LUT4", "FF", "DP16KD", "MULT18X18D"], layer_rows))
    _layers(results, figdir / "layers.png")
    blocks.append(Figure(figdir / "layers.png",
                         "Cycles and area per layer of the ECP5 design point (dashed: the slowest "
                         "layer, which sets the throughput)."))
    # Time and rate ----------------------------------------------------------------------
    points = (("Lattice ECP5-25F", "ECP5", ecp5), ("Lattice iCE40 UP5K", "iCE40", ice40))
    blocks.append(Heading("Time and rate"))
    blocks.append(Para(
        f"Per 9.01 s window (one inference): cycles from the network's cost model (the "
        f"cosimulation equals it to the cycle), and the time and real-time factor at each "
        f"part's Fmax from place and route, at its design target clock and at a common "
        f"{COMMON_CLOCK_MHZ} MHz. The accelerator streams: a window's score comes out at the "
        f"end of its window, so its latency is its time per window."))
    rows = []
    for label, key, point in points:
        t = _timing(point, key, synth)
        rows.append([label, f"{t['cycles']:,}", fmt(t["fmax"]), fmt(t["ms_fmax"]),
                     fmt(t["rt_fmax"]), f"{t['target_mhz']}", fmt(t["ms_target"]),
                     fmt(t["rt_target"]), fmt(t["ms_common"]), fmt(t["rt_common"]),
                     point["spec"]["realtime_factor"]])
    blocks.append(Table(["part", "cycles per window", "Fmax (MHz)", "ms per window at Fmax",
                         "x real time at Fmax", "target clock (MHz)", "ms at target",
                         "x real time at target", f"ms at {COMMON_CLOCK_MHZ} MHz",
                         f"x real time at {COMMON_CLOCK_MHZ} MHz", "goal (x real time)"], rows))

    # Area -------------------------------------------------------------------------------
    blocks.append(Heading("Area"))
    blocks.append(Para(
        "Each part's resources, with what they count: LUT4 are the logic; flip-flops are the "
        "registers, pipeline stages and (on the iCE40, which has no LUT-RAM) the line buffers; "
        "block RAM holds weights, thresholds and FIFOs, and its bits used are the memory bits of "
        "the Memory section. Hard multipliers: the goal is none in the binary network (only "
        "conv1's 8-bit products could use them). Xilinx 7-series: the ECP5 design point's "
        "network synthesized with Yosys `synth_xilinx` (LUT6, no place and route, so no Fmax); "
        "block RAM in RAMB36 units (a RAMB18 counts half), and LUT-RAM holds the small "
        "memories."))
    rows = []
    for label, key, point in points:
        target = point["target"]
        res = synth.get(f"{key} synthesis", {})
        f = res.get("figures") or {}
        layers = synth.get(f"{key} layers", {}).get("parts")
        if not f and layers:
            f = {k: _sum_parts(layers, k) for k in ("LUT4", "FF", BRAM_KEY[target])}
            basis = "sum of the layers alone (FIFOs not included)"
        elif f:
            basis = "whole accelerator"
        else:
            basis = "not synthesized in this run"
        mb = point["memory_bits"]["binary"]
        rows.append([label, basis, f"{fmt(f.get('LUT4'))} LUT4", fmt(f.get("FF")),
                     f"{fmt(f.get(BRAM_KEY[target]))} {BRAM_KEY[target]}",
                     f"{mb['streaming_total'] / 1e3:,.1f}",
                     fmt(f.get("MULT18X18D", f.get("DSP")))])
    x = (synth.get("xc7 synthesis") or {}).get("figures")
    if x:
        mb = ecp5["memory_bits"]["binary"]
        rows.append(["Xilinx 7-series (the ECP5 design point)", "whole accelerator",
                     f"{fmt(x.get('LUT'))} LUT6 ({fmt(x.get('LUTRAM'))} as LUT-RAM)",
                     fmt(x.get("FF")), f"{fmt(x.get('BRAM'))} BRAM",
                     f"{mb['streaming_total'] / 1e3:,.1f}", fmt(x.get("DSP"))])
    blocks.append(Table(["part", "figures of", "logic (LUTs)", "flip-flops", "block RAM",
                         "memory bits (kbit: weights, line buffers, FIFOs)",
                         "hard multipliers"], rows))
    for key in ("ECP5 layers", "iCE40 layers"):
        for error in synth.get(key, {}).get("failed", []):
            blocks.append(Para(f"{key}: a layer's synthesis failed and is left out of the sums: "
                               f"{error}"))
    ice = ice40["memory_bits"]["binary"]
    cap = {**flows.ICE40_UP5K, "FF": flows.ICE40_UP5K["LUT4"]}   # one FF per logic cell
    ebr_bits = cap["EBR"] * flows.ICE40_EBR_KBIT * 1024
    blocks.append(Para(
        f"iCE40 UP5K (the moonshot): the binary accelerator needs "
        f"{ice['weights'] / 1e3:,.0f} kbit of weights, {ice['line_buffers'] / 1e3:,.0f} kbit of "
        f"line buffers and {ice['fifos'] / 1e3:,.0f} kbit of FIFOs; the part has "
        f"{ebr_bits / 1e3:,.0f} kbit of EBR and {cap['SPRAM'] * flows.ICE40_SPRAM_KBIT:,} kbit of SPRAM. The "
        f"weights alone are {ice['weights'] / ebr_bits:.1f}x the EBR, so the design does not fit "
        f"as generated (weights in read-only block RAM){_ice40_logic(synth, cap)}. What could "
        f"make it fit (neither is built "
        f"yet): the weights in SPRAM (1 Mbit, 16 bits wide, single port: read in fold order) "
        f"and the FIFO in front of the slowest layer sized for throughput rather than for a "
        f"whole frame arriving at once."))

    # Energy -----------------------------------------------------------------------------
    blocks += energy_blocks(results, cycles)

    # Memory -----------------------------------------------------------------------------
    blocks.append(Heading("Memory"))
    blocks.append(Para(
        "On-chip memory bits of the same network with binary, 8-bit and fp32 activations (weights "
        "8-bit in the first two, fp32 in the third). Streaming: what this accelerator holds "
        "(weights, the convolutions' line buffers, the inter-layer FIFOs). Frame-buffered: "
        "weights plus the largest pair of one layer's input and output maps, which is what a "
        "layer-at-a-time accelerator must store and what the binary-activation-map paper "
        "(arXiv 2407.04578) counts in its 25x claim."))
    kinds = ("binary", "int8", "fp32")
    keys = ("weights", "line_buffers", "fifos", "streaming_total", "frame_buffer",
            "frame_buffered_total")
    blocks.append(Table(["activations"] + [k.replace("_", " ") + " (kbit)" for k in keys],
                        [[k] + [f"{mem[k][key] / 1e3:,.1f}" for key in keys] for k in kinds]))
    blocks.append(Table(["ratio", "streaming", "frame-buffered"], [
        [f"{k} / binary", f"{mem[k]['streaming_total'] / mem['binary']['streaming_total']:.2f}x more",
         f"{mem[k]['frame_buffered_total'] / mem['binary']['frame_buffered_total']:.2f}x more"]
        for k in ("int8", "fp32")]))
    _memory(results, figdir / "memory.png")
    blocks.append(Figure(figdir / "memory.png", "Memory bits by activation format."))
    ops = results.get("front_end_operations", {})
    if ops:
        blocks.append(Para(
            "Not in hardware: the feature front end (framing, FFT, mel filterbank, logarithm) "
            "stays in software; per window it takes " + ", ".join(
                f"{v:,} {k.replace('_', ' ')}" for k, v in ops.items() if k != "frames") + "."))

    # Published --------------------------------------------------------------------------
    blocks.append(Heading("Against published figures"))
    fb = {k: mem[k]["frame_buffered_total"] for k in kinds}
    st = {k: mem[k]["streaming_total"] for k in kinds}
    wf_mult = wf.get("MULT18X18D")
    blocks.append(Table(["published", "measured here", "conditions that differ"], [
        ["Binary activation maps (arXiv 2407.04578): 25x less memory at inference than the "
         "float model, at matching quality",
         f"fp32 / binary memory bits: {fb['fp32'] / fb['binary']:.1f}x frame-buffered, "
         f"{st['fp32'] / st['binary']:.1f}x streaming; PCC {_acc(agree['pcc'])} against the "
         f"float model on the demo clips",
         "The paper's exact accounting is not stated (fp32 weights and activations against 8-bit "
         "weights and binary activations fits 25x); here: weights, thresholds and activation "
         "storage in hardware memory bits, for DNSMOS P.808's topology."],
        ["The same paper: with binary activations, dot products become sums",
         f"ECP5 multipliers of the whole accelerator: {fmt(wf_mult) if wf else 'not synthesized in this run'}"
         " (only conv1 multiplies: its input is the 8-bit feature map)",
         "The paper counts operations; here they are the hard multipliers synthesis infers."],
    ]))

    # Reproduce --------------------------------------------------------------------------
    blocks.append(Heading("Reproduce"))
    blocks.append(Para(
        "Every figure above, from the repository root (the venv of `make demo`): "
        "`qhw demo` (this report); "
        "`qhw generate network --config examples/networks/dnsmos_ecp5.toml --weights "
        "examples/networks/dnsmos_bam.npz -o build/dnsmos`; "
        "`qhw rtlsim network --config examples/networks/dnsmos_ecp5.toml --weights "
        "examples/networks/dnsmos_bam.npz --inputs build/demo/accelerator/window.npy -o out.npy "
        "--fast --check`; "
        "`qhw synth network --config examples/networks/dnsmos_ecp5.toml --weights "
        "examples/networks/dnsmos_bam.npz --target ecp5 --json ecp5.json`; "
        "`python -m qhw.dnsmos.train --student binary --minutes 45` (the shipped weights); "
        "`python bench/bench_dnsmos.py --whole` (the same network with 8-bit activations, same "
        "flow and folding, side by side: docs/dnsmos.md)."))
    blocks.append(Para(f"This run took {results.get('seconds') or 0:.0f} s"
                       f"{' (--quick)' if results.get('quick') else ''}."))
    return blocks


def write_report(results, outdir):
    """Write ``report.md``, ``report.html``, ``headline.txt`` (the headline's findings as plain
    text, one a line, for the terminal) and ``figures/`` into ``outdir``; returns the path of
    report.md."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    title = "qhw demo: DNSMOS P.808 with binary activation maps, in hardware"
    blocks = build_blocks(results, outdir / "figures")
    (outdir / "report.md").write_text(to_markdown(blocks, title))
    (outdir / "report.html").write_text(to_html(blocks, title))
    (outdir / "headline.txt").write_text("".join(f.plain + "\n" for f in headline(results)))
    return outdir / "report.md"
