"""Cosimulation regression of ``maxpool`` and ``globalpool``: the RTL in Verilator against the
golden model bit for bit, to the cycle against the cost model with no stalls, bit-exact under
30% input stalls and output back-pressure; and checks that these comparisons can fail."""

import dataclasses
import types

import numpy as np
import pytest
from amaranth import Mux
from amaranth.lib import memory

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.hdl import pool as pool_hdl

FRAMES = 2
CASES = [(unit, name) for unit in ("maxpool", "globalpool")
         for name in sorted(registry.get(unit).regression)]


def _case(unit_name, name, seed):
    unit = registry.get(unit_name)
    cfg = config_from_dict(unit.config, unit.regression[name])
    params = unit.check_params(cfg, unit.random_params(cfg, np.random.default_rng(seed)))
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, np.random.default_rng(seed), FRAMES))
    return unit, cfg, params, x, unit.golden(cfg, params, x)


def _check(unit, cfg, run, expected, frames, x, *, timing):
    """The regression's assertions: outputs bit-exact, and (no stalls) cycles and latency."""
    mismatch = flow.first_mismatch(unit, run, expected, cfg)
    assert mismatch is None, mismatch
    if timing:
        model = unit.cost_model(cfg, frames, x)
        assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
        assert run.latency == model.latency, \
            f"measured latency {run.latency}, model {model.latency}"


@pytest.mark.parametrize("unit_name, name", CASES)
def test_bit_exact_and_cycles(unit_name, name):
    unit, cfg, params, x, expected = _case(unit_name, name, seed=1)
    run = flow.rtlsim(unit, cfg, params, x)
    _check(unit, cfg, run, expected, FRAMES, x, timing=True)
    # No bubbles: one input pixel per cycle from the first to the last.
    in_times = run.sim.in_times["i"]
    assert in_times == list(range(in_times[0], in_times[0] + len(in_times)))


@pytest.mark.parametrize("unit_name, name", CASES)
def test_bit_exact_under_stalls(unit_name, name):
    unit, cfg, params, x, expected = _case(unit_name, name, seed=2)
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=3)
    _check(unit, cfg, run, expected, FRAMES, x, timing=False)


def test_heavy_back_pressure_loses_nothing():
    """Output ready 10% of the time: the input stalls on every pixel that completes an output."""
    unit, cfg, params, x, expected = _case("maxpool", "1d_u4_k13_w10_floor", seed=4)
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.0, stall_out=0.9, seed=5)
    _check(unit, cfg, run, expected, FRAMES, x, timing=False)
    assert run.cycles > 2 * unit.cost_model(cfg, FRAMES).expected


def test_wrong_expectations_fail():
    """The checks above must reject a wrong value, a wrong cycle count and a wrong latency."""
    unit, cfg, params, x, expected = _case("globalpool", "avg_s8_3x5", seed=1)
    run = flow.rtlsim(unit, cfg, params, x)
    _check(unit, cfg, run, expected, FRAMES, x, timing=True)
    wrong = expected.copy()
    wrong[1, 0, 0, 2] += 1
    with pytest.raises(AssertionError, match="frame 1, row 0, column 0, channel 2"):
        _check(unit, cfg, run, wrong, FRAMES, x, timing=False)
    for field, delta in (("expected", 1), ("latency", -1)):
        model = unit.cost_model(cfg, FRAMES, x)
        bad = dataclasses.replace(model, **{field: getattr(model, field) + delta})
        off = dataclasses.replace(unit, cost_model=lambda *a, bad=bad: bad)
        with pytest.raises(AssertionError, match="measured"):
            _check(off, cfg, run, expected, FRAMES, x, timing=True)


def test_a_wrong_design_fails(monkeypatch):
    """A mutant whose signed max compares unsigned must be caught on the extreme values."""
    def unsigned_max(a, b, bits, is_signed):
        return a | b if bits == 1 else Mux(a > b, a, b)
    monkeypatch.setattr(pool_hdl, "_max", unsigned_max)
    unit, cfg, params, x, expected = _case("maxpool", "s8_k2_5x7_floor", seed=1)
    run = flow.rtlsim(unit, cfg, params, x)
    assert flow.first_mismatch(unit, run, expected, cfg) is not None


def test_row_buffer_needs_the_transparent_read(monkeypatch):
    """With a read port that is not transparent for the write, W_out = 1 with k_w = 1 reads the
    partial maximum of the previous window row one cycle too early: the regression catches it."""
    class OpaqueMemory(memory.Memory):
        def read_port(self, *, domain="sync", transparent_for=()):
            return super().read_port(domain=domain, transparent_for=())

    monkeypatch.setattr(pool_hdl, "memory", types.SimpleNamespace(Memory=OpaqueMemory))
    unit, cfg, params, x, expected = _case("maxpool", "s32_k21_5x1_wout1", seed=1)
    run = flow.rtlsim(unit, cfg, params, x)
    assert flow.first_mismatch(unit, run, expected, cfg) is not None
