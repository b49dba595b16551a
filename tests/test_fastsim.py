"""The stall-free C++ harness (qhw.cosim.fastsim) against the cocotb testbench it stands in for:
the same outputs, the same cycle of every input and output transfer, on units with one and
several input streams, payloads wider than 64 bits, and multi-cycle steps."""

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.cosim import fastsim, runner
from qhw.errors import QhwInputError

CASES = [
    ("fpdot", "fp32_n8_simd4"),                  # 128-bit input payload (VlWide)
    ("network", "gated"),                        # three input streams, an 84-bit output
    ("gru", "all8_lut_m1"),                      # many cycles per word
]


def _case(unit_name, reg, frames=3):
    unit = registry.get(unit_name)
    cfg = config_from_dict(unit.config, unit.regression[reg])
    rng = np.random.default_rng(7)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, frames))
    return unit, cfg, params, x


@pytest.mark.parametrize("unit_name,reg", CASES)
def test_fast_harness_matches_the_cocotb_testbench(unit_name, reg):
    unit, cfg, params, x = _case(unit_name, reg)
    gen = flow.generate(unit, cfg, params, frames=flow.frames_of(unit, cfg, x), inputs=x)
    inputs = unit.pack_inputs(cfg, x)
    words = unit.output_words(cfg, flow.frames_of(unit, cfg, x))
    slow = runner.simulate(gen.verilog, gen.top, unit.testbench, inputs, words,
                           timeout_cycles=200000)
    fast = fastsim.simulate(gen.verilog, gen.top, gen.manifest["ports"], inputs, words,
                            timeout_cycles=200000)
    assert slow.ok and fast.ok
    assert fast.outputs == slow.outputs
    assert fast.in_times == slow.in_times
    assert fast.out_times == slow.out_times
    assert fast.cycles == slow.cycles
    # and the outputs are the golden model's
    run, mismatch = flow.check_rtl(unit, cfg, params, x, fast=True)
    assert mismatch is None, mismatch
    assert run.cycles == unit.cost_model(cfg, flow.frames_of(unit, cfg, x), x).expected


def test_fast_harness_reports_a_timeout_and_wrong_streams():
    unit, cfg, params, x = _case("binconv", "2d_k3_same_thr_pe2_simd3", frames=1)
    gen = flow.generate(unit, cfg, params)
    inputs, words = unit.pack_inputs(cfg, x), unit.output_words(cfg, 1)
    short = fastsim.simulate(gen.verilog, gen.top, gen.manifest["ports"], inputs, words,
                             timeout_cycles=5)
    assert short.timed_out and short.cycles_run == 5
    with pytest.raises(runner.CosimError, match="inputs: streams"):
        fastsim.simulate(gen.verilog, gen.top, gen.manifest["ports"], {"x": [1]}, words)
    with pytest.raises(QhwInputError, match="fast"):
        flow.rtlsim(unit, cfg, params, x, stall_in=0.2, fast=True)
