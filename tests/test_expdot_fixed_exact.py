"""``expdot`` with ``product='exact'``: fixed-point activations times +-2^d weights as barrel shifts
into an integer adder tree, exact (no saturation, no rounding).

The output is sum_k x_k * w_k / 2^d_min exactly: checked against Python integers and against
float64 / Fraction arithmetic of the decoded weights, at the extremes of the accumulator (every
lane at the most negative activation times the most negative weight), and the RTL bit-exact with
and without stalls, cycles equal to the cost model.
"""

from fractions import Fraction

import numpy as np
import pytest

from config_errors import assert_config_error
from qhw import flow, registry
from qhw.golden import expmul as g


def _cfg(bits, e, bias, lanes=16, simd=4):
    return g.ExpDotConfig(lanes=lanes, simd=simd, act_format="fixed", act_bits=bits,
                          weight_exp_bits=e, weight_bias=bias, product="exact")


@pytest.mark.parametrize("bits, e, bias", [(16, 3, 4), (8, 3, 7), (12, 4, 8), (2, 2, 0),
                                           (32, 4, 0)])
def test_exact_against_fractions(bits, e, bias):
    cfg = _cfg(bits, e, bias)
    rng = np.random.default_rng(bits * 10 + e)
    x = g.random_acts(cfg, rng, (400, cfg.lanes), special=0.2)
    w = g.random_codes(cfg, rng, cfg.lanes, zero=0.1)
    got = g.expdot_ref(cfg, x, w)
    wv = g.decode_weights(cfg, w)
    d_min = cfg.d_range[0]
    for v in range(len(x)):
        total = sum((Fraction(int(a)) * Fraction(float(b)) for a, b in zip(x[v], wv)),
                    Fraction(0))
        assert Fraction(int(got[v])) * Fraction(2) ** d_min == total
    # float64 holds these sums exactly when they fit in 53 bits
    if cfg.acc_bits <= 53:
        np.testing.assert_array_equal(got * 2.0 ** d_min, x.astype(np.float64) @ wv)
    assert -(1 << (cfg.acc_bits - 1)) <= got.min() and got.max() < 1 << (cfg.acc_bits - 1)


def test_accumulator_extremes_are_tight():
    cfg = _cfg(16, 3, 4)
    assert cfg.acc_bits == 16 + 6 + 4 + 1 and cfg.product_bits == 16 + 1 + 6
    lo = -(1 << 15)
    neg_max = (1 << 3) | 7    # -2^(7 - 4)
    pos_max = 7
    x = np.array([[lo] * 16, [lo] * 16, [(1 << 15) - 1] * 16], dtype=np.int64)
    got = g.expdot_ref(cfg, x[:1], np.full(16, neg_max))
    assert int(got[0]) == 16 * (1 << 15) * (1 << 6) == 1 << 25
    assert int(got[0]) < 1 << (cfg.acc_bits - 1)      # fits: the largest possible sum
    assert int(got[0]) >= 1 << (cfg.acc_bits - 2)     # and one bit less would not hold it
    unit = registry.get("expdot")
    for wcode in (neg_max, pos_max):
        params = {"weights": np.full(16, wcode, dtype=np.int64)}
        run = flow.rtlsim(unit, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=1)
        message = flow.first_mismatch(unit, run, unit.golden(cfg, params, x))
        assert message is None, message


@pytest.mark.parametrize("bits, e, bias, lanes, simd", [(16, 3, 4, 16, 4), (8, 4, 8, 6, 3),
                                                        (12, 2, 1, 5, 1)])
def test_rtl_bit_exact_stalls_and_cycles(bits, e, bias, lanes, simd):
    unit = registry.get("expdot")
    cfg = _cfg(bits, e, bias, lanes, simd)
    rng = np.random.default_rng(bits + lanes)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = g.random_acts(cfg, rng, (20, lanes), special=0.2)
    expected = unit.golden(cfg, params, x)
    run = flow.rtlsim(unit, cfg, params, x)
    assert flow.first_mismatch(unit, run, expected) is None
    model = unit.cost_model(cfg, x.shape[0])
    assert run.cycles == model.expected and run.latency == model.latency
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.4, stall_out=0.5, seed=3)
    message = flow.first_mismatch(unit, run, expected)
    assert message is None, message


@pytest.mark.parametrize("data, words", [
    ({"product": "exact"}, ["product", "'fixed'"]),
    ({"product": "exact", "act_format": "fixed", "act_bits": 32, "weight_exp_bits": 5},
     ["acc_bits", "<= 64", "got 67"]),
    ({"product": "wide"}, ["product", "'exact'"]),
])
def test_bad_configs(data, words):
    assert_config_error(g.ExpDotConfig, data, words)
