"""The research report (issue 16): headline generation, ratio wording, plotted point counts,
Markdown rendered in the HTML page, anchors, readable config cells, time and rate.

The records here are made up (figures chosen by the test), so every expectation is computed in
the test from those figures, independently of the report code.
"""

import html.parser
import json
import re

import pytest
from hypothesis import given, strategies as st

from qhw import registry
from qhw.config import config_from_dict, config_to_dict
from qhw.explore import published, render, report


# Ratio wording ----------------------------------------------------------------------------------

def test_ratios_read_right_in_both_directions():
    assert render.ratio_phrase(82.0, 1.0) == "82.0x more"       # never "0.0122x fewer"
    assert render.ratio_phrase(1.0, 3.1) == "3.10x fewer"
    assert render.ratio_phrase(100, 100.2) == "the same"
    assert render.ratio_phrase(10, 2500, "less", "more") == "250x less"
    assert render.ratio_phrase(None, 3) is None and render.ratio_phrase(0, 3) is None


@given(st.floats(1e-3, 1e6), st.floats(1e-3, 1e6))
def test_a_ratio_phrase_never_has_a_factor_below_one(design, baseline):
    phrase = render.ratio_phrase(design, baseline)
    if phrase == "the same":
        assert abs(baseline / design - 1) < 0.005
        return
    factor = float(phrase.split("x ")[0].replace(",", ""))
    assert factor >= 1.0
    assert phrase.endswith("fewer") == (baseline > design)
    # the stated factor is the larger over the smaller, to its printed precision
    assert factor == pytest.approx(max(design, baseline) / min(design, baseline), rel=0.01)


# Rendering --------------------------------------------------------------------------------------

class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.ids, self.links, self.tables_in_scroll, self.tables = [], set(), [], 0, 0
        self._stack = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "table":
            self.tables += 1
            self.tables_in_scroll += bool(self._stack and self._stack[-1] == "scroll")
        self._stack.append(attrs.get("class") or tag)

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(page):
    p = _Text()
    p.feed(page)
    return p


def test_html_renders_markdown_and_links_to_headings(tmp_path):
    blocks = [render.Heading("Against the baselines"),
              render.Para("A **bold** claim with `code` and a [link](#against-the-baselines)."),
              render.Table(["a", "b"], [["**win**", 3], ["x | y", None]])]
    page = render.to_html(blocks, "t")
    parsed = _parse(page)
    text = "".join(parsed.text)
    assert "**" not in text and "`" not in text
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert parsed.links == ["against-the-baselines"] and "against-the-baselines" in parsed.ids
    assert parsed.tables == parsed.tables_in_scroll == 1     # every table scrolls in its box
    assert "x | y" in text and "–" in text
    # a pipe md_escape already escaped stays one cell, as does a raw one
    row = render.to_markdown([render.Table(["a"], [[render.md_escape("p|q")], ["r|s"]])], "t")
    assert "| p\\|q |" in row and "| r\\|s |" in row
    assert "@media print" in page


def test_slugs_are_githubs():
    assert render.slug("Against the baselines") == "against-the-baselines"
    assert render.slug("Time and rate") == "time-and-rate"
    assert render.slug("Network dnsmos_like (ECP5)") == "network-dnsmos_like-ecp5"


def test_plain_text_drops_markup_but_keeps_escaped_characters():
    assert render.plain_text("**3.1x fewer** than `x` ([table](#t)); a\\*b") == \
        "3.1x fewer than x (table); a*b"


def test_gru_formats_are_a_compact_table_not_json():
    fmts = {"input": [8, 5, "nearest_even"], "weight": [6, 4, "nearest_even"],
            "mm_ir": [8, 4, "nearest_even"], "mm_hr": [8, 4, "nearest_even"],
            "add_r": [8, 4, "truncate"]}
    text = report.config_text(fmts)
    assert "{" not in text and "[" not in text
    assert "8.4: mm_*" in text and "6.4: weight" in text and "8.4 truncate: add_r" in text


# Made-up sweep results --------------------------------------------------------------------------

def _record(unit_name, config, key, **figures):
    unit = registry.get(unit_name)
    cfg = config_to_dict(config_from_dict(unit.config, config))
    rec = {"unit": unit_name, "config": cfg, "key": key, "status": "ok", "settings":
           {"targets": ["generic", "ecp5"]}, "tools": {"qhw": "test"}, "bit_exact": True,
           "bit_exact_under_stalls": True}
    rec.update(figures)
    return rec


def _bam(weight_bits, pe, transistors, lut, ops, cycles, fmax):
    cfg = {"c_in": 4, "c_out": 8, "height": 6, "width": 6, "kernel": [3, 3], "padding": "same",
           "simd": 6, "output": "sum", "weight_bits": weight_bits, "pe": pe}
    return cfg, {"generic": {"transistors": transistors}, "ecp5": {"LUT4": lut,
                                                                   "fmax_mhz": fmax},
                 "energy_ops": {"pj_per_inference": ops}, "cycles_per_inference": cycles,
                 "cycles_measured": 2 * cycles, "cycles_model": 2 * cycles,
                 "latency_measured": 40}


@pytest.fixture
def made_up(tmp_path):
    """Three bamconv points and their macconv 8x8 baselines (one per PE), one baseline larger
    and one smaller than its design, written as a results folder."""
    bamconv = registry.get("bamconv")
    records, axes = [], {"bamconv": ["weight_bits", "pe"]}
    designs = [(2, 1, 1000, 100, 50.0, 400, 120.0), (4, 1, 1500, 150, 80.0, 400, 110.0),
               (4, 2, 9000, 300, 900.0, 200, 90.0)]
    bases = {1: 4000, 2: 3000}      # pe -> the baseline's transistors
    for i, (wb, pe, t, lut, ops, cyc, fmax) in enumerate(designs):
        cfg, fig = _bam(wb, pe, t, lut, ops, cyc, fmax)
        records.append(_record("bamconv", cfg, f"d{i}", **fig))
    for pe, t in bases.items():
        name, bcfg = bamconv.baseline(config_from_dict(bamconv.config, records[0 if pe == 1 else 2]
                                                       ["config"]))
        records.append(_record(name, bcfg, f"b{pe}", origin="baseline",
                               generic={"transistors": t}, ecp5={"LUT4": 400},
                               energy_ops={"pj_per_inference": 2000.0},
                               cycles_per_inference=200 * (3 - pe), cycles_measured=1,
                               cycles_model=1, latency_measured=40))
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(
        {"sweep": "made_up", "axes": axes, "points": records, "pending": []}))
    return folder, records, designs, bases


def test_headline_names_the_largest_saving_and_loss_with_links(made_up, tmp_path):
    folder, records, designs, bases = made_up
    path = report.write_report([folder], tmp_path / "rep")
    md = path.read_text()
    lines = (tmp_path / "rep" / "headline.txt").read_text().splitlines()
    assert 3 <= len(lines) <= 5
    # By hand: designs 0 and 1 have the PE-1 baseline (4,000), design 2 the PE-2 one (3,000).
    saving = 4000 / 1000                     # design 0
    loss = 9000 / 3000                       # design 2 is 3x larger than its baseline
    assert any(l.startswith("Largest saving:") and f"{saving:.2f}x fewer" in l
               and "weight_bits=2, pe=1" in l for l in lines), lines
    assert any(l.startswith("Largest loss:") and f"{loss:.2f}x more" in l
               and "weight_bits=4, pe=2" in l for l in lines), lines
    assert any(l.startswith("Verification: 5 of 5 points") for l in lines)
    # The fastest at its Fmax: design 2, 90e6 / 200 = 450,000 frames/s (design 0: 300,000).
    assert any(l.startswith("Fastest:") and "450 k frames/s" in l and "pe=2" in l
               for l in lines), lines
    # The terminal's lines are the report's headline, as plain text.
    section = md.split("## Headline")[1].split("\n## ")[0]
    assert section.count("\n1. ") == 1 and len(re.findall(r"^\d\. ", section, re.M)) == len(lines)
    # Every link of the report points at a heading of the report.
    anchors = {render.slug(h) for h in re.findall(r"^#+ (.*)$", md, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", md)
    assert links and set(links) <= anchors
    assert "0.333x" not in md and "0.25x" not in md


def test_every_point_is_plotted_baselines_included(made_up, tmp_path):
    folder, records, designs, bases = made_up
    results = report.read([folder])
    blocks, _ = report.build_blocks(results, tmp_path)
    figures = {b.path.name: b for b in blocks if isinstance(b, render.Figure)}
    n_all = len(designs) + len(bases)
    assert figures["pareto_area_cycles.png"].points == n_all
    # area against weight_bits: the three bamconv points (the baselines are macconv points)
    assert figures["area_vs_weight_bits_bamconv.png"].points == len(designs)
    assert figures["cycles_measured_vs_model.png"].points == n_all
    assert figures["energy_per_inference.png"].points == n_all
    # against the baselines: one bar per (pair, quantity with both figures): transistors, LUT4,
    # op energy and cycles for each of the three pairs
    assert figures["against_baselines.png"].points == 3 * 4


def test_time_and_rate_at_fmax_and_at_the_common_clock():
    rec = {"cycles_per_inference": 500, "latency_measured": 250, "ecp5": {"fmax_mhz": 50.0}}
    t = report.time_and_rate(rec)
    assert t["latency_us_fmax"] == pytest.approx(5.0) and t["rate_fmax"] == pytest.approx(1e5)
    assert t["latency_us_common"] == pytest.approx(250 / report.COMMON_CLOCK_MHZ)
    assert t["rate_common"] == pytest.approx(report.COMMON_CLOCK_MHZ * 1e6 / 500)
    assert report.time_and_rate({"cycles_per_inference": 5})["rate_fmax"] is None


def test_finn_r_lut_estimate_matches_the_published_example():
    # FINN's own example (REFERENCE: W = A = 1, PE = SIMD = 32, MW = 576 -> 7,410 LUT), no
    # thresholds, as FINN's estimate of a binary MVAU without activation.
    assert published.finn_r_mvau_luts(1, 1, 32, 32, 576, 64, None) == 7410


def test_headline_says_so_when_no_design_saves(made_up, tmp_path):
    """Every design larger than its baseline: no "Largest saving" of a loss, no "every design
    needs fewer" claim."""
    folder, records, designs, bases = made_up
    data = json.loads((folder / "results.json").read_text())
    for r in data["points"]:
        if r["unit"] == "bamconv":
            r["generic"]["transistors"] = 50_000      # all above both baselines (4,000, 3,000)
    (folder / "results.json").write_text(json.dumps(data))
    lines = [f.plain for f in report.headline(report.read([folder]))]
    assert not any(l.startswith("Largest saving") or l.startswith("Every one") for l in lines)
    closest = next(l for l in lines if l.startswith("No design needs fewer transistors"))
    assert f"{50_000 / 4000:.1f}x more" in closest        # the PE-1 designs, 12.5x
    loss = next(l for l in lines if l.startswith("Largest loss"))
    assert f"{50_000 / 3000:.1f}x more" in loss            # the PE-2 design, 16.7x
