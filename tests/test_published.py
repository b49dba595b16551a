"""hls4ml's published resource figures in the reports (issue 16): the figures are the paper's, the
row appears beside the qhw points it speaks to and only then.

The published numbers below are typed from the paper, not from qhw's code: F. Fahim et al.,
"hls4ml: an open-source codesign workflow to empower scientific low-power machine learning
devices", TinyML Research Symposium 2021, arXiv 2103.05579, Table 1 ("Model accuracy, latency and
resource utilization for 16-, 14-, and 6-bit models ... for a Xilinx Virtex UltraScale+ VU9P FPGA
with a clock frequency of 200 MHz using hls4ml v0.5.0 and Vivado HLS 2019.2"), the absolute
counts in its parentheses; the network from its section 3 (16 features, hidden layers of 64, 32
and 32 nodes, five classes). The qhw records are made up; their expected figures are worked out
here by hand.
"""

import json

from qhw import registry
from qhw.config import config_from_dict, config_to_dict
from qhw.explore import published, report

# Table 1 of arXiv 2103.05579: model, bits, accuracy %, latency ns, DSP, LUT, FF.
PAPER_TABLE_1 = [("16-bit PTQ", 16, 76.4, 50, 1852, 89209, 11266),
                 ("14-bit PTQ", 14, 75.8, 50, 1132, 90019, 9262),
                 ("6-bit QAT", 6, 76.2, 45, 38, 63251, 4394)]


# The same table's percentages of the part (Table 1 quotes each count as a percentage of the
# VU9P's resources): DSP, LUT, FF per model.
PAPER_TABLE_1_PERCENT = [(27, 7.5, 0.5), (17, 7.6, 0.4), (0.6, 5.4, 0.2)]
# The VU9P's totals (AMD UltraScale+ FPGAs product selection guide / data sheet DS890): 6,840
# DSP48E2 slices, 1,182,240 CLB LUTs, 2,364,480 CLB flip-flops.
VU9P = {"DSP": 6840, "LUT": 1182240, "FF": 2364480}


def test_the_transcribed_counts_agree_with_the_tables_percentages():
    """The counts and the percentages were read from the paper separately: each count over the
    part's total rounds to the percentage printed beside it, so no digit was misread."""
    for (_, _, _, _, dsp, lut, ff), pct in zip(PAPER_TABLE_1, PAPER_TABLE_1_PERCENT):
        for count, total, printed in ((dsp, VU9P["DSP"], pct[0]), (lut, VU9P["LUT"], pct[1]),
                                      (ff, VU9P["FF"], pct[2])):
            digits = 0 if printed >= 10 else 1
            assert round(100 * count / total, digits) == printed, (count, total, printed)


def _record(unit_name, config, key, status="ok", **figures):
    unit = registry.get(unit_name)
    cfg = config_to_dict(config_from_dict(unit.config, config))
    rec = {"unit": unit_name, "config": cfg, "key": key, "status": status,
           "settings": {"targets": ["generic", "xc7"]}, "tools": {"qhw": "test"},
           "bit_exact": status == "ok", "bit_exact_under_stalls": status == "ok"}
    rec.update(figures)
    return rec


def _gru(key, i, h, bits, lut, ff, dsp, cycles, **extra):
    return _record("gru", {"input_size": i, "hidden_size": h, "bits": bits, "macs": 4}, key,
                   xc7={"LUT": lut, "FF": ff, "DSP": dsp}, generic={"transistors": 10 * lut},
                   cycles_per_inference=cycles, cycles_measured=2 * cycles,
                   cycles_model=2 * cycles, latency_measured=cycles, **extra)


def _label(r):
    return r["key"]


def _hls4ml_rows(records):
    return [row for row in published.rows(records, [], _label) if row[0].startswith("hls4ml")]


def test_the_stored_figures_are_the_papers():
    t = published.HLS4ML_JET_TAGGER
    assert [tuple(r) for r in t["rows"]] == PAPER_TABLE_1
    assert t["layers"] == (16, 64, 32, 32, 5)
    assert t["part"] == "Xilinx Virtex UltraScale+ VU9P" and t["clock_mhz"] == 200
    assert t["tools"] == "hls4ml v0.5.0 and Vivado HLS 2019.2"


def test_the_row_prints_the_published_numbers_beside_the_largest_mac_point():
    records = [_gru("g_small", 8, 8, 6, lut=900, ff=700, dsp=4, cycles=300),
               _gru("g_big", 16, 32, 8, lut=5000, ff=3100, dsp=4, cycles=2000),
               _record("macconv", {"c_in": 4, "c_out": 8, "height": 6, "width": 6,
                                   "kernel": [3, 3], "pe": 1, "simd": 6}, "m",
                       xc7={"LUT": 6000, "FF": 400, "DSP": 1})]
    (row,) = _hls4ml_rows(records)
    claim, measured, conditions = row
    for name, _, acc, lat, dsp, lut, ff in PAPER_TABLE_1:
        assert (f"{name}: {lut:,} LUT, {ff:,} FF, {dsp:,} DSP, {lat} ns, {acc} % accuracy"
                in claim)
    assert "arXiv 2103.05579" in claim and "VU9P" in claim and "200 MHz" in claim
    weights = 16 * 64 + 64 * 32 + 32 * 32 + 32 * 5         # 4,256
    assert f"({weights:,} weights)" in claim
    # By hand: GRU weights are 3H(I + H): g_big 3*32*48 = 4,608, g_small 3*8*16 = 384; the MAC
    # convolution 4*3*3*8 = 288. The largest is g_big (8-bit weights and inputs), although the
    # convolution has more LUTs: size is weights, not area.
    assert measured.startswith("3 fixed-point MAC points (gru, macconv) on xc7")
    assert "g_big: 4,608 weights of 8 bits (activations 8 bits), 5,000 LUT, 3,100 FF, 4 DSP48E1, " \
           "2,000 cycles per inference" in measured
    assert "LUT over all from 900 to 6,000" in measured
    # the conditions: not a reproduction, the tools and parts of both sides, 45-50 ns = 9-10
    # cycles at 200 MHz
    assert conditions.startswith("Not a reproduction")
    assert "Vivado HLS 2019.2" in conditions and "Yosys" in conditions
    assert "45 to 50 ns" in conditions and "9 to 10 clock cycles" in conditions


def test_the_gru_weight_format_counts_not_the_preset():
    """A GRU whose weights are narrower than its other operators: the row gives the weights'."""
    rec = _gru("g", 4, 4, 8, lut=300, ff=200, dsp=2, cycles=100)
    rec["config"]["formats"]["weight"] = [4, 2, "nearest_even"]
    (row,) = _hls4ml_rows([rec])
    assert "g: 96 weights of 4 bits (activations 8 bits)" in row[1]     # 3*4*(4+4) = 96
    assert row[1].startswith("1 fixed-point MAC point (gru) on xc7") and "over all" not in row[1]


def test_no_row_without_a_matching_point():
    bam = _record("bamconv", {"c_in": 4, "c_out": 8, "height": 6, "width": 6, "kernel": [3, 3],
                              "pe": 1, "simd": 6}, "b", xc7={"LUT": 100, "FF": 50, "DSP": 0})
    no_xc7 = _gru("g", 8, 8, 8, lut=900, ff=700, dsp=4, cycles=300)
    del no_xc7["xc7"]
    failed = _gru("f", 8, 8, 8, lut=900, ff=700, dsp=4, cycles=300)
    failed["status"] = "failed"
    assert _hls4ml_rows([bam, no_xc7, failed]) == []
    assert _hls4ml_rows([]) == []


def test_the_sweep_report_shows_the_row(tmp_path):
    records = [_gru("k4", 16, 16, 4, lut=2500, ff=1800, dsp=4, cycles=900, origin=None),
               _gru("k8", 16, 16, 8, lut=3600, ff=2400, dsp=4, cycles=900, origin="baseline")]
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(
        {"sweep": "gru_xc7", "axes": {"gru": ["bits"]}, "points": records, "pending": []}))
    md = report.write_report([folder], tmp_path / "rep").read_text()
    section = md.split("## Against published figures")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| hls4ml")]
    assert len(rows) == 1
    assert "63,251 LUT, 4,394 FF, 38 DSP, 45 ns" in rows[0]          # the 6-bit QAT row
    assert "1,536 weights of" in rows[0]                              # 3*16*(16+16)
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "89,209 LUT" in html and "Not a reproduction" in html
