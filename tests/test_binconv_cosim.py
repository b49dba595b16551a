"""Cosimulation regression of ``binconv``: RTL in Verilator against the golden model, bit for bit.

Each configuration runs twice: once with the input always valid and the output always ready, where
the measured cycles and latency must equal the cost model exactly, and once under random input
stalls and output back-pressure, where only the values are checked. The golden model itself is
checked against PyTorch's conv2d in test_golden_binconv.py.
"""

import numpy as np
import pytest

from qhw import flow, registry

UNIT = registry.get("binconv")

# Covers: 1-D and 2-D; kernels 1, 2x3 and 3; PE = 1 and PE = C_out; SIMD = 1 and SIMD = K; both
# paddings and pad bits; both output modes; both counter trees; odd sizes; a kernel larger than
# the image ('same'); a DNSMOS-like slice (../shared/REFERENCE.md, 3).
CONFIGS = {
    "2d_k3_same_thr_pe2_simd3": dict(c_in=3, c_out=4, height=5, width=7, kernel=(3, 3),
                                     padding="same", pe=2, simd=3, output="threshold"),
    "2d_k3_valid_pop_unfolded": dict(c_in=2, c_out=3, height=5, width=6, kernel=(3, 3),
                                     padding="valid", pe=3, simd=18, output="popcount"),
    "1d_k3_same_pad1_pop_pe1_simd1": dict(c_in=4, c_out=2, height=1, width=11, kernel=(1, 3),
                                          padding="same", pad_bit=1, pe=1, simd=1),
    "1d_k1_valid_thr_full": dict(c_in=5, c_out=3, height=1, width=7, kernel=(1, 1),
                                 pe=3, simd=5, output="threshold"),
    "2d_k1_same_pop_simd1": dict(c_in=7, c_out=5, height=3, width=5, kernel=(1, 1),
                                 padding="same", pe=5, simd=1),
    "2d_k3_valid_thr_fa_pe1_simd1": dict(c_in=2, c_out=2, height=4, width=4, kernel=(3, 3),
                                         pe=1, simd=1, output="threshold", counter="fa"),
    "2d_k2x3_same_pad1_pop": dict(c_in=3, c_out=6, height=4, width=5, kernel=(2, 3),
                                  padding="same", pad_bit=1, pe=3, simd=9),
    "2d_k3_same_pop_wide_simd_k": dict(c_in=16, c_out=8, height=3, width=5, kernel=(3, 3),
                                       padding="same", pe=8, simd=144, counter="fa"),
    "2d_k3_same_thr_kernel_over_image": dict(c_in=1, c_out=2, height=2, width=2, kernel=(3, 3),
                                             padding="same", pe=1, simd=9, output="threshold"),
    "2d_k3_same_thr_dnsmos_slice": dict(c_in=32, c_out=32, height=3, width=10, kernel=(3, 3),
                                        padding="same", pe=8, simd=32, output="threshold"),
}

FRAMES = 2


def _case(name, seed):
    cfg = UNIT.config(**CONFIGS[name])
    rng = np.random.default_rng(seed)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    x = UNIT.random_inputs(cfg, rng, FRAMES)
    return cfg, params, x, UNIT.golden(cfg, params, x)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bit_exact_and_cycles(name):
    cfg, params, x, expected = _case(name, seed=1)
    run = flow.rtlsim(UNIT, cfg, params, x)
    assert flow.first_mismatch(UNIT, run.outputs, expected) is None, \
        flow.first_mismatch(UNIT, run.outputs, expected)
    model = UNIT.cost_model(cfg, FRAMES)
    assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
    assert run.latency == model.latency


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("stall", [0.3, 0.7])
def test_bit_exact_under_stalls(name, stall):
    cfg, params, x, expected = _case(name, seed=2)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=stall, stall_out=stall, seed=7)
    assert flow.first_mismatch(UNIT, run.outputs, expected) is None, \
        flow.first_mismatch(UNIT, run.outputs, expected)
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
    message = flow.first_mismatch(UNIT, run.outputs, expected)
    assert message is not None and "channel 2" in message
