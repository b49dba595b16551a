"""Cosimulation regression of ``binconv``: RTL in Verilator against the golden model, bit for bit.

Each configuration runs twice: once with the input always valid and the output always ready, where
the measured cycles and latency must equal the cost model exactly, and once under random input
stalls and output back-pressure, where only the values are checked. The golden model itself is
checked against PyTorch's conv2d in test_golden_binconv.py.
"""

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict

UNIT = registry.get("binconv")

CONFIGS = UNIT.regression

FRAMES = 2


def _case(name, seed):
    cfg = config_from_dict(UNIT.config, CONFIGS[name])
    rng = np.random.default_rng(seed)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    x = UNIT.random_inputs(cfg, rng, FRAMES)
    return cfg, params, x, UNIT.golden(cfg, params, x)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bit_exact_and_cycles(name):
    cfg, params, x, expected = _case(name, seed=1)
    run = flow.rtlsim(UNIT, cfg, params, x)
    assert flow.first_mismatch(UNIT, run, expected) is None, \
        flow.first_mismatch(UNIT, run, expected)
    model = UNIT.cost_model(cfg, FRAMES)
    assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
    assert run.latency == model.latency


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("stall", [0.3, 0.7])
def test_bit_exact_under_stalls(name, stall):
    cfg, params, x, expected = _case(name, seed=2)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=stall, stall_out=stall, seed=7)
    assert flow.first_mismatch(UNIT, run, expected) is None, \
        flow.first_mismatch(UNIT, run, expected)
    assert run.cycles >= UNIT.cost_model(cfg, FRAMES).expected


def test_mismatch_names_the_position():
    cfg, params, x, expected = _case("2d_k3_same_thr_pe2_simd3", seed=3)
    got = expected.copy()
    got[1, 3, 2, 1] ^= 1
    message = flow.first_mismatch(UNIT, got, expected)
    assert "frame 1, row 3, column 2, channel 1" in message
    assert f"expected {expected[1, 3, 2, 1]}, got {got[1, 3, 2, 1]}" in message


def test_regression_detects_a_wrong_weight():
    """The comparison is not vacuous: RTL built with one flipped weight bit mismatches.

    In popcount mode a flipped weight moves every dot product of its channel by +-2.
    """
    cfg, params, x, expected = _case("2d_k1_same_pop_simd1", seed=4)
    bad = dict(params, weights=params["weights"].copy())
    bad["weights"][2, 3, 0, 0] ^= 1
    run = flow.rtlsim(UNIT, cfg, bad, x)
    message = flow.first_mismatch(UNIT, run, expected)
    assert message is not None and "channel 2" in message


def test_mismatch_names_the_transfer_its_cycle_the_seed_and_the_rerun_command():
    """A regression failure says which output transfer carried the first wrong value (found
    from the run's words, whatever the unit's packing), its cycle, the seed, and how to rerun
    just this test; one line, no array reprs."""
    cfg, params, x, expected = _case("2d_k1_same_pop_simd1", seed=4)
    bad = dict(params, weights=params["weights"].copy())
    bad["weights"][2, 3, 0, 0] ^= 1
    run = flow.rtlsim(UNIT, cfg, bad, x, stall_in=0.3, stall_out=0.3, seed=11)
    message = flow.first_mismatch(UNIT, run, expected)
    frame, row, col, _ = (int(i) for i in np.argwhere(run.outputs != expected)[0])
    # binconv sends one word per output pixel, in raster order, frame after frame.
    index = (frame * cfg.out_height + row) * cfg.out_width + col
    total = FRAMES * cfg.out_height * cfg.out_width
    assert (f"output transfer {index} of {total} on stream o, at cycle "
            f"{run.sim.out_times['o'][index]} after reset") in message
    assert "seed 11, stalls in/out 0.3/0.3" in message
    assert ("rerun: .venv/bin/python -m pytest 'tests/test_binconv_cosim.py::"
            "test_mismatch_names_the_transfer_its_cycle_the_seed_and_the_rerun_command'") in message
    assert "\n" not in message and len(message) < 600
