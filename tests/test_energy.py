"""Tests of the energy estimates (qhw.synth.energy, docs/energy.md).

The toggle counts are checked on a hand-written counter whose transitions are known in closed
form; the energy arithmetic on a hand-made netlist; the measured figure on two small units (the
gate-level outputs must equal the golden model's, and all-zero data must cost less than random
data); the operation counts against PyTorch's convolution output shape.
"""

import dataclasses
import json

import numpy as np
import pytest
import torch

from qhw import registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.synth import energy

# An 8-bit counter behind stream ports: after c rising edges with rst low it holds c, so bit k has
# made floor(c / 2^k) transitions (it starts from 0 and never wraps in these runs).
COUNTER = """\
module counter(input clk, input rst, input i__valid, output i__ready, input [3:0] i__payload,
               output o__valid, input o__ready, output [7:0] o__payload);
  reg [7:0] cnt = 0;
  always @(posedge clk) if (rst) cnt <= 0; else cnt <= cnt + 1;
  assign i__ready = 1;
  assign o__valid = 1;
  assign o__payload = cnt;
endmodule
"""
TB = "qhw.cosim.tb_binconv"  # any unit's testbench: each only runs the generic stream job


def _json_ready(result):
    assert json.loads(json.dumps(result)) == result


def test_counter_toggles_are_exact():
    netlist = energy.gate_netlist(COUNTER, "counter")
    assert set(netlist.cells) <= {"$_NAND_", "$_NOR_", "$_NOT_", "$_SDFF_PP0_"}
    sim, idle, toggles = energy.measure_toggles(netlist, TB, {"i": [1, 2, 3]}, {"o": 40})
    n, m = sim.cycles_run, idle.cycles_run  # edges with rst low in the data and the idle run
    assert n > 40 and m > 0
    for k in range(8):
        assert toggles[("o__payload", k)] == n // 2 ** k - m // 2 ** k, k
    loads = energy.netlist_loads(netlist.json, "counter")
    assert loads.flipflops == 8
    figures = energy.toggle_energy_of_netlist(loads, toggles, cycles=sim.cycles)
    assert figures["unmapped"] == []
    clock = 8 * sim.cycles * energy.CELL_MODEL.clock_fj_per_ff_cycle() / 1000
    assert figures["breakdown"]["clock"] == pytest.approx(clock)
    assert figures["toggles"] >= sum(n // 2 ** k - m // 2 ** k for k in range(8))


def test_energy_arithmetic_on_a_hand_made_netlist(tmp_path):
    # a -> NOT -> y; y drives one NAND input and the output port. A transition of y switches the
    # inverter's output, the NAND's A pin, the port's load and two wires.
    netlist = {"modules": {"t": {
        "ports": {"clk": {"direction": "input", "bits": [2]},
                  "a": {"direction": "input", "bits": [3]},
                  "y": {"direction": "output", "bits": [4]},
                  "z": {"direction": "output", "bits": [5]}},
        "cells": {"inv": {"type": "$_NOT_", "port_directions": {"A": "input", "Y": "output"},
                          "connections": {"A": [3], "Y": [4]}},
                  "nand": {"type": "$_NAND_",
                           "port_directions": {"A": "input", "B": "input", "Y": "output"},
                           "connections": {"A": [4], "B": [3], "Y": [5]}}},
        "netnames": {"clk": {"bits": [2]}, "a": {"bits": [3]}, "y": {"bits": [4]},
                     "z": {"bits": [5]}, "alias_of_y": {"bits": [4]}}}}}
    loads = energy.netlist_loads(netlist, "t")
    m = energy.CELL_MODEL
    assert m.vdd == 0.9 and m.wire == 0.5
    c_y = 1.0 + (1.60 + 0.5) + (1.70 + 0.5)          # fF: INV drive, NAND A + wire, port + wire
    assert loads.cap_ff[4] == pytest.approx(c_y)
    # The alias names the same net: its transitions count once.
    figures = energy.toggle_energy_of_netlist(
        loads, {("y", None): 10, ("alias_of_y", None): 10, ("clk", None): 99}, cycles=5)
    assert figures["toggles"] == 10
    assert figures["pj"] == pytest.approx(10 * c_y * 0.5 * 0.9 ** 2 / 1000)  # no flip-flops
    assert figures["breakdown"]["combinational"] == pytest.approx(figures["pj"])
    # Verilator's coverage file: names escaped (__05F is '_'), one point per direction.
    cov = tmp_path / "coverage.dat"
    lines = ["# SystemC::Coverage-3\n"]
    for obj, count in (("o___05Fpayload[3]:0->1", 4), ("o___05Fpayload[3]:1->0", 3),
                       ("qn7:0->1", 2), ("qn7:1->0", 2)):
        lines.append(f"C '\x01t\x02toggle\x01page\x02v_toggle/t\x01o\x02{obj}\x01h\x02t' {count}\n")
    lines.append("C '\x01t\x02line\x01o\x02if\x01h\x02t' 12\n")
    cov.write_text("".join(lines))
    assert energy.parse_coverage(cov) == {("o__payload", 3): 7, ("qn7", None): 4}


def _unit(name, config):
    unit = registry.get(name)
    return unit, config_from_dict(unit.config, config)


def test_expmul_zero_data_costs_less_than_random_data():
    unit, cfg = _unit("expmul", dict(act_format="fixed", act_bits=8, weight_exp_bits=4,
                                     weight_bias=8))
    rng = np.random.default_rng(3)
    x = unit.random_inputs(cfg, rng, 96)
    random = energy.toggle_energy(unit, cfg, {}, x)     # checks the outputs against the golden
    zeros = energy.toggle_energy(unit, cfg, {}, np.zeros_like(x))
    for r in (random, zeros):
        _json_ready(r)
        assert r["inferences"] == 96 and r["model"] == energy.TOGGLE_MODEL
        assert r["pj_total"] == pytest.approx(sum(r["breakdown"].values()))
        assert r["pj_per_inference"] == pytest.approx(r["pj_total"] / 96)
    assert random["cycles"] == zeros["cycles"]
    assert zeros["breakdown"]["clock"] == pytest.approx(random["breakdown"]["clock"])
    assert zeros["toggles"] < 0.1 * random["toggles"]
    assert zeros["pj_total"] < random["pj_total"]
    assert random["toggle_rate"] > 0.05
    # A golden model that disagrees with the netlist is reported, naming the output.
    wrong = dataclasses.replace(unit, golden=lambda c, p, xs: unit.golden(c, p, xs) + 1)
    with pytest.raises(energy.GateLevelMismatch, match="mismatch at product 0"):
        energy.toggle_energy(wrong, cfg, {}, x)


def test_bamconv_gate_level_equals_golden():
    unit, cfg = _unit("bamconv", dict(c_in=3, c_out=4, height=3, width=3, kernel=[1, 1],
                                      padding="same", pe=2, simd=3, weight_bits=4,
                                      gating="mask"))
    rng = np.random.default_rng(5)
    params = unit.random_params(cfg, rng)
    x = unit.random_inputs(cfg, rng, 2, density=0.5)
    r = energy.toggle_energy(unit, cfg, params, x)
    _json_ready(r)
    assert r["inferences"] == 2 and r["pj_per_inference"] > 0
    assert r["breakdown"]["clock"] > 0 and r["breakdown"]["combinational"] > 0
    assert r["flipflops"] == sum(n for t, n in r["cells"].items() if energy._is_ff(t))


def test_conv_operation_counts_match_torch():
    geometry = dict(c_in=3, c_out=4, height=5, width=6, kernel=[3, 3], pe=2, simd=3)
    y = torch.nn.Conv2d(3, 4, 3)(torch.zeros(2, 3, 5, 6))   # valid padding: (2, 4, 3, 4)
    outputs = y.numel()
    macs = outputs * 3 * 3 * 3                                # C_out*K*H_out*W_out per frame
    unit, cfg = _unit("macconv", geometry)
    r = energy.operation_energy(unit, cfg, 2)
    _json_ready(r)
    by = {(o["op"], json.dumps(o["bits"])): o["count"] for o in r["operations"]}
    assert by[("mul", "[8, 8]")] == macs
    assert sum(o["count"] for o in r["operations"] if o["op"] == "add") == macs  # K-1 + bias
    assert r["inferences"] == 2 and r["pj_per_inference"] == pytest.approx(r["pj_total"] / 2)
    assert r["pj_total"] == pytest.approx(sum(o["pj"] for o in r["operations"]))
    # binconv: one XNOR per MAC
    unit, cfg = _unit("binconv", geometry)
    ops = energy.operation_energy(unit, cfg, 2)["operations"]
    assert [o["count"] for o in ops if o["op"] == "bitop"] == [macs]
    # gated bamconv with data: only the enabled channel outputs count
    unit, cfg = _unit("bamconv", {**geometry, "gating": "mask"})
    x = unit.random_inputs(cfg, np.random.default_rng(1), 2, density=0.3)
    enabled = int(x["gates"].sum())
    assert 0 < enabled < outputs
    gated = energy.operation_energy(unit, cfg, 2, x)
    weights = [o for o in gated["operations"] if o["what"] == "weights of one output channel"]
    assert weights[0]["count"] == enabled and weights[0]["bits"] == 27 * cfg.weight_bits
    full = energy.operation_energy(unit, cfg, 2)
    assert gated["pj_total"] == pytest.approx(full["pj_total"] * enabled / outputs)


def test_horowitz_anchors():
    assert energy.op_energy_pj("add", 8) == pytest.approx(0.03)
    assert energy.op_energy_pj("add", 32) == pytest.approx(0.1)
    assert energy.op_energy_pj("mul", [8, 8]) == pytest.approx(0.2)
    assert energy.op_energy_pj("mul", [32, 32]) == pytest.approx(3.1)
    assert energy.op_energy_pj("fadd", 16) == pytest.approx(0.4)
    assert energy.op_energy_pj("fmul", 32) == pytest.approx(3.7)
    assert energy.op_energy_pj("sram_read", 64) == pytest.approx(10.0)
    with pytest.raises(QhwInputError, match="unknown operation"):
        energy.op_energy_pj("divide", 8)


@pytest.mark.parametrize("name", sorted(registry.names()))
def test_every_unit_has_operation_counts(name):
    unit = registry.get(name)
    cfg = config_from_dict(unit.config, unit.default_config)
    r = energy.operation_energy(unit, cfg, 3)
    _json_ready(r)
    assert r["pj_per_inference"] > 0 and r["inference"]


def test_unit_without_operations_is_a_clear_error():
    unit = dataclasses.replace(registry.get("expmul"), operations=None)
    cfg = config_from_dict(unit.config, unit.default_config)
    with pytest.raises(QhwInputError, match="'expmul' has no operation-count model"):
        energy.operation_energy(unit, cfg, 1)


def test_assumptions_name_both_models():
    text = energy.ASSUMPTIONS
    for phrase in ("Horowitz", "NanGate", "0.9 V", "abc -g cmos2", "inference is", "8 KB"):
        assert phrase in text
