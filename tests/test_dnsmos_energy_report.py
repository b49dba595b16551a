"""The demo report's energy section (qhw/dnsmos/report.py): both estimates side by side, per
layer, which to cite, and the largest contributor to their gap, from hand-made results."""

import pytest

from qhw.dnsmos import report
from qhw.explore.render import to_markdown

OPS = {"pj_per_inference": 600e6, "breakdown": {"sram_read": 560e6, "add": 30e6, "mul": 10e6},
       "model": "horowitz45", "per_layer": {"conv1": 100e6, "conv2": 500e6}}


def _measured(clock, reads, data=100e6, idle_clock=0.0, idle_reads=0.0):
    layer = {"name": "conv1", "unit": "macconv", "slice": {"start_row": 4, "rows": 4,
                                                           "of_rows": 12},
             "scale": 3.0, "busy_cycles": 10, "pj": data + clock + reads,
             "breakdown": {"combinational": data, "register_outputs": 0.0,
                           "input_ports": 0.0, "clock": clock, "memory_reads": reads,
                           "memory_writes": 0.0},
             "idle": {"cycles": 5, "clock": idle_clock, "memory_reads": idle_reads},
             "flipflops": 7, "memory_bits": 64, "slice_cycles": 10, "seconds": 1.0}
    return {"pj_per_inference": data + clock + reads,
            "breakdown": {**layer["breakdown"], "fifos": 0.0},
            "idle": {"clock": idle_clock, "memory_reads": idle_reads}, "fifos": [],
            "cycles": 1000, "rows": 4, "cycle_budget": 1000, "model": "m", "notes": [],
            "layers": [layer]}


def test_gap_names_the_largest_difference():
    # Clock 900 against nothing; reads 600 against 560: the clock makes the gap.
    text = report.energy_gap(OPS, _measured(clock=900e6, reads=600e6, idle_clock=300e6))
    assert "the clock of every flip-flop" in text
    assert "900.0 µJ measured against 0.000 µJ" in text
    assert "of which 300.0 µJ (33%) while layers wait" in text
    # Reads 2000 against 560 (difference 1440) beat a clock of 900.
    text = report.energy_gap(OPS, _measured(clock=900e6, reads=2000e6))
    assert "memory accesses: 2,000.0 µJ measured against 560.0 µJ" in text
    assert "while layers wait" not in text
    assert report.energy_gap(OPS, {"skipped": "quick"}) is None


def test_energy_section_shows_both_estimates_per_layer():
    results = {"energy": OPS, "energy_measured": _measured(clock=900e6, reads=600e6)}
    md = to_markdown(report.energy_blocks(results, 1000), "t")
    assert "| estimated: operation count" in md and "600.0 µJ" in md
    assert "1,600.0 µJ" in md  # the measured total
    assert "| conv1 | 4 of 12 | 100.0 µJ | 1,600.0 µJ |" in md
    assert "**Which to cite.**" in md and "**Why they differ:**" in md


@pytest.mark.parametrize("measured, reason", [({"skipped": "--quick skips it"}, "--quick"),
                                              ({"error": "boom"}, "boom")])
def test_energy_section_without_the_measured_figure(measured, reason):
    md = to_markdown(report.energy_blocks({"energy": OPS, "energy_measured": measured}, 1000),
                     "t")
    assert f"not run: {reason}" in md
    assert "The operation count is the estimate to cite here" in md
