"""Cosimulation regression of ``gru``: RTL in Verilator against the integer reference, bit for bit.

Each configuration runs with the input always valid and the output always ready, where measured
cycles and latency must equal the cost model exactly, and under random input stalls and output
back-pressure, where only the values are checked. Directed cases saturate every operator
(test_golden_gru.py checks that they do); trained weights come from the fake-quantized PyTorch
module. Long sequences and the larger configurations are marked slow.

Runs go through ``qhw.flow.rtlsim``, which takes (sequences, steps) from ``Unit.frames`` and
sizes its timeout from the cost model (docs/gru.md, "Flow hooks").
"""

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.golden import gru as g

UNIT = registry.get("gru")
CONFIGS = UNIT.regression

DEFAULT = ["all8_lut_m1", "all4_lut_m2", "mixed_a_lut_m3", "mixed_b_pwl_last",
           "saturate_lut_m4", "saturate_add_h_pwl_m1"]
SLOW = sorted(set(CONFIGS) - set(DEFAULT))
DIRECTED = {"saturate_lut_m4", "saturate_add_h_pwl_m1"}


def rtlsim(cfg, params, x, *, stall_in=0.0, stall_out=0.0, seed=0):
    """Run the RTL on batched inputs (N, T, I); returns (run, cycles, latency, model)."""
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=stall_in, stall_out=stall_out, seed=seed)
    return run, run.cycles, run.latency, UNIT.cost_model(cfg, flow.frames_of(UNIT, cfg, x))


def case(name, seed, frames=(2, 6)):
    cfg = config_from_dict(UNIT.config, CONFIGS[name])
    rng = np.random.default_rng(seed)
    if name in DIRECTED:
        params, x = g.extreme_case(cfg, rng, frames)
    else:
        params = UNIT.random_params(cfg, rng)
        x = UNIT.random_inputs(cfg, rng, frames)
    params = UNIT.check_params(cfg, params)
    return cfg, params, x, UNIT.golden(cfg, params, x)


def check(cfg, params, x, expected, **stalls):
    run, cycles, latency, model = rtlsim(cfg, params, x, **stalls)
    message = flow.first_mismatch(UNIT, run, expected, cfg)
    assert message is None, message
    if not stalls:
        assert cycles == model.expected, f"measured {cycles} cycles, model {model.expected}"
        assert latency == model.latency, f"measured latency {latency}, model {model.latency}"
    else:
        assert cycles >= model.expected
    return cycles


def _bit_exact_cycles_and_stalls(name):
    cfg, params, x, expected = case(name, seed=1)
    check(cfg, params, x, expected)
    cfg, params, x, expected = case(name, seed=2, frames=(3, 4))
    check(cfg, params, x, expected, stall_in=0.5, stall_out=0.5, seed=7)


@pytest.mark.parametrize("name", DEFAULT)
def test_bit_exact_cycles_and_stalls(name):
    _bit_exact_cycles_and_stalls(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_bit_exact_cycles_and_stalls_slow(name):
    _bit_exact_cycles_and_stalls(name)


def test_cycles_per_step_follow_3h_i_plus_h_over_macs():
    """Per step: 3H(ceil(I/M)+ceil(H/M)) issue cycles plus a constant overhead."""
    from qhw.hdl import gru as hdl
    cfg = config_from_dict(UNIT.config, CONFIGS["mixed_a_lut_m3"])
    one, many = UNIT.cost_model(cfg, (1, 1)), UNIT.cost_model(cfg, (1, 9))
    per_step = (many.expected - one.expected) // 8
    assert per_step == 3 * 6 * (2 + 2) + hdl.step_overhead(cfg)


def test_trained_weights():
    """Weights exported from the fake-quantized module after a few training steps."""
    from test_golden_gru import trained_module
    cfg = config_from_dict(UNIT.config, CONFIGS["mixed_a_lut_m3"])
    q, _ = trained_module(cfg)
    params = UNIT.check_params(cfg, q.export())
    x = q.quantize_inputs(np.random.default_rng(4).normal(0, 1.5, size=(2, 8, cfg.input_size)))
    check(cfg, params, x, UNIT.golden(cfg, params, x), stall_in=0.2, stall_out=0.3, seed=3)


def test_regression_detects_a_wrong_weight():
    cfg, params, x, expected = case("all8_lut_m1", seed=4)
    bad = dict(params, weight_hh=params["weight_hh"].copy())
    bad["weight_hh"][2 * 4 + 1, 0] ^= 0x10  # W_hn, hidden unit 1
    got, *_ = rtlsim(cfg, bad, x)
    assert flow.first_mismatch(UNIT, got, expected, cfg) is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mixed_b_pwl_last", "all8_lut_m1"])
def test_long_sequences(name):
    cfg, params, x, expected = case(name, seed=5, frames=(2, 150))
    check(cfg, params, x, expected)
    check(cfg, params, x, expected, stall_in=0.3, stall_out=0.6, seed=9)
