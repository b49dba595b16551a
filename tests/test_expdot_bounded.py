"""``expdot`` with ``accumulator='bounded'``: an exact accumulator sized to a stated exponent range.

* Inside the range the output is the exact sum rounded once: against a Fraction oracle of the
  exact sum (nearest value, ties to even) and equal to the full-range ``'exact'`` accumulator.
* Outside it, exactly as documented (docs/expmul.md): a product above the range saturates to the
  largest in-range magnitude ('saturate') or makes the output the canonical NaN ('flag'); a
  product below it flushes to zero (both modes).
* The accumulator is far narrower (fp32, 16 lanes: 282 bits full range).
* RTL bit-exact with and without stalls, cycles equal the cost model (the regression configs
  ``*_bounded_*`` also run in tests/test_expmul_cosim.py and the lint test).
* The calibration helper on synthetic recordings.
"""

from fractions import Fraction

import numpy as np
import pytest

from config_errors import assert_config_error
from float_oracle import NATIVE, nearest, to_float64
from qhw import flow, registry
from qhw.errors import QhwInputError
from qhw.golden import expmul as g

def _cfg(fmt_name, lo, hi, lanes=8, simd=2, out_of_range="saturate", overflow="saturate"):
    return g.ExpDotConfig(lanes=lanes, simd=simd, act_format=fmt_name, weight_exp_bits=3,
                          weight_bias=3, overflow=overflow, accumulator="bounded",
                          exp_range=(lo, hi), out_of_range=out_of_range)


def _in_range_vectors(cfg, w, rng, count, spread=None):
    """Activations whose every non-zero product has an exponent in cfg.exp_range (so that the
    bounded accumulator must be exact), with cancellation, ties and zeros."""
    fmt, (lo, hi) = cfg.fmt, cfg.exp_range
    d = (w & ((1 << cfg.weight_exp_bits) - 1)) - cfg.weight_bias
    rows = []
    for _ in range(count):
        width = hi - lo if spread is None else min(spread, hi - lo)
        base = int(rng.integers(lo, hi - width + 1))
        big_e = base + rng.integers(0, width + 1, size=cfg.lanes)   # product exponents
        e_field = np.clip(big_e - d + fmt.bias, 1, fmt.emask - 1)
        m = rng.integers(0, 1 << fmt.mbits, size=cfg.lanes)
        m[rng.random(cfg.lanes) < 0.3] = 0
        s = rng.integers(0, 2, size=cfg.lanes)
        x = (s << (fmt.width - 1)) | (e_field << fmt.mbits) | m
        x[rng.random(cfg.lanes) < 0.1] = 0
        rows.append(x)
    x = np.array(rows, dtype=np.int64)
    p = g.expmul_ref(cfg, x, w[None, :])
    pe = ((p >> fmt.mbits) & fmt.emask) - fmt.bias
    nz = ((p >> fmt.mbits) & fmt.emask) != 0
    assert ((pe[nz] >= lo) & (pe[nz] <= hi)).all()
    return x


WEIGHTS = np.array([1, 3 | 8, 7, 4, 2 | 8, 0, 5, 6 | 8], dtype=np.int64)  # 2^-2 .. 2^4, a zero


@pytest.mark.parametrize("fmt_name, lo, hi", [("fp32", -20, 12), ("fp16", -10, 12),
                                              ("bf16", -30, 30), ("fp16", 3, 3)])
def test_exact_inside_the_range(fmt_name, lo, hi):
    cfg = _cfg(fmt_name, lo, hi)
    full = g.ExpDotConfig(lanes=8, simd=2, act_format=fmt_name, weight_exp_bits=3,
                          weight_bias=3)
    rng = np.random.default_rng(abs(lo) * 100 + hi)
    x = np.concatenate([_in_range_vectors(cfg, WEIGHTS, rng, 150, spread=3),
                        _in_range_vectors(cfg, WEIGHTS, rng, 150)])
    got = g.expdot_ref(cfg, x, WEIGHTS)
    np.testing.assert_array_equal(got, g.expdot_ref(full, x, WEIGHTS))
    products = to_float64(g.expmul_ref(cfg, x, WEIGHTS[None, :]), fmt_name)
    for v in range(len(x)):
        total = sum((Fraction(float(p)) for p in products[v]), Fraction(0))
        want = nearest(total, fmt_name, cfg.overflow)
        have = float(to_float64(got[v], fmt_name))
        assert have == want, (v, float(total), have, want)


def test_accumulator_is_sized_to_the_range():
    full = g.ExpDotConfig(lanes=16, simd=4, act_format="fp32")
    bounded = g.ExpDotConfig(lanes=16, simd=4, act_format="fp32", accumulator="bounded",
                             exp_range=(-24, 8))
    assert full.acc_bits == 282
    assert bounded.acc_bits == 23 + 1 + 32 + 4 + 1 == 61
    assert g.ExpDotConfig(lanes=16, simd=4, act_format="fp16", accumulator="bounded",
                          exp_range=(-8, 8)).acc_bits == 10 + 1 + 16 + 5
    # the narrowest range still leaves the rounding its guard and sticky bits
    assert g.ExpDotConfig(lanes=1, simd=1, act_format="fp16", accumulator="bounded",
                          exp_range=(0, 0)).acc_bits == 13
    # the sum of N largest in-range (or saturated) products of one sign fits, one bit less not
    for lanes in (1, 3, 16):
        c = g.ExpDotConfig(lanes=lanes, simd=1, act_format="fp16", accumulator="bounded",
                           exp_range=(-5, 9))
        largest = ((1 << 11) - 1) << 14
        assert -(1 << (c.acc_bits - 1)) <= -lanes * largest
        assert lanes * largest < 1 << (c.acc_bits - 1)


def _bits(fmt, value):
    native = {"fp32": np.float32, "fp16": np.float16}[fmt.name]
    return int(np.array(value, dtype=native).view(NATIVE[fmt.name][1]))


@pytest.mark.parametrize("fmt_name", ["fp32", "fp16"])
def test_outside_the_range(fmt_name):
    """Above: saturate to (2 - 2^-m) * 2^hi of the product's sign, or NaN ('flag'); below:
    flushed in both modes; infinities and NaN keep their precedence."""
    fmt = g.FLOAT_FORMATS[fmt_name]
    lo, hi = -4, 6
    sat, flag = (_cfg(fmt_name, lo, hi, lanes=4, simd=2, out_of_range=r)
                 for r in ("saturate", "flag"))
    w = np.array([3, 3, 3, 3], dtype=np.int64)  # weights 1: the product is the activation
    b = lambda v: _bits(fmt, v)  # noqa: E731
    top = (2 - 2.0 ** -fmt.mbits) * 2.0 ** hi
    rows = [
        [b(1.5), b(2.0 ** 7), 0, 0],            # above: 1.5 + top
        [b(1.5), b(-3 * 2.0 ** 9), 0, 0],        # above, negative: 1.5 - top
        [b(2.0 ** hi * 1.25), b(2.0 ** lo), 0, 0],   # both edges in range: exact
        [b(2.0 ** (lo - 1) * 1.75), b(1.0), 0, 0],   # below: flushed -> 1.0
        [b(2.0 ** (lo - 1)), b(-(2.0 ** (lo - 1))), b(2.0 ** lo), 0],  # below ones flush
        [b(2.0 ** (lo - 1)), 0, 0, 0],           # only a below-range product: +0
        [b(2.0 ** 7), b(float("inf")), 0, 0],    # an infinity wins over the flag
        [b(2.0 ** 7), g.qnan(fmt), 0, 0],        # NaN
        [0, 0, 0, 0],
    ]
    x = np.array(rows, dtype=np.int64)
    got_sat = to_float64(g.expdot_ref(sat, x, w), fmt_name)
    got_flag = g.expdot_ref(flag, x, w)
    native = NATIVE[fmt_name][0]
    want = np.array([1.5 + top, 1.5 - top, 2.0 ** hi * 1.25 + 2.0 ** lo, 1.0, 2.0 ** lo, 0.0])
    np.testing.assert_array_equal(got_sat[:6], want.astype(native).astype(np.float64))
    assert got_sat[6] == np.inf and np.isnan(got_sat[7]) and got_sat[8] == 0
    assert [int(v) for v in got_flag[:2]] == [g.qnan(fmt)] * 2
    np.testing.assert_array_equal(got_flag[2:6], g.expdot_ref(sat, x, w)[2:6])
    assert to_float64(got_flag[6], fmt_name) == np.inf and int(got_flag[7]) == g.qnan(fmt)
    unit = registry.get("expdot")
    params = {"weights": w}
    for cfg in (sat, flag):
        run = flow.rtlsim(unit, cfg, params, x, stall_in=0.3, stall_out=0.4, seed=4)
        message = flow.first_mismatch(unit, run, unit.golden(cfg, params, x))
        assert message is None, message


@pytest.mark.parametrize("fmt_name, lo, hi, out_of_range", [
    ("fp32", -24, 8, "saturate"), ("fp16", -6, 5, "flag"), ("bf16", -3, 3, "saturate")])
def test_rtl_bit_exact_stalls_and_cycles(fmt_name, lo, hi, out_of_range):
    unit = registry.get("expdot")
    cfg = _cfg(fmt_name, lo, hi, lanes=8, simd=4, out_of_range=out_of_range)
    rng = np.random.default_rng(7)
    params = unit.check_params(cfg, {"weights": g.random_codes(cfg, rng, cfg.lanes)})
    # half in range, half random (above, below, special values)
    x = np.concatenate([_in_range_vectors(cfg, params["weights"], rng, 10),
                        unit.random_inputs(cfg, rng, 10)])
    expected = unit.golden(cfg, params, x)
    run = flow.rtlsim(unit, cfg, params, x)
    assert flow.first_mismatch(unit, run, expected) is None
    model = unit.cost_model(cfg, x.shape[0])
    assert run.cycles == model.expected and run.latency == model.latency
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.4, stall_out=0.5, seed=2)
    message = flow.first_mismatch(unit, run, expected)
    assert message is None, message


@pytest.mark.parametrize("data, words", [
    ({"accumulator": "bounded"}, ["exp_range", "-126 <= lo <= hi <= 127"]),
    ({"accumulator": "bounded", "exp_range": [5, 4]}, ["exp_range", "(5, 4)"]),
    ({"accumulator": "bounded", "exp_range": [-127, 0]}, ["exp_range"]),
    ({"accumulator": "bounded", "exp_range": [0, 128]}, ["exp_range"]),
    ({"exp_range": [0, 1]}, ["exp_range", "only with accumulator 'bounded'"]),
    ({"accumulator": "kulisch"}, ["accumulator", "'bounded'"]),
    ({"accumulator": "bounded", "exp_range": [0, 1], "out_of_range": "wrap"}, ["out_of_range"]),
    ({"accumulator": "bounded", "exp_range": [0, 1], "act_format": "fixed"}, ["'fixed'"]),
])
def test_bad_configs(data, words):
    assert_config_error(g.ExpDotConfig, data, words)


def test_calibration_on_synthetic_recording():
    cfg = g.ExpDotConfig(lanes=8, simd=2, act_format="fp16", weight_exp_bits=3, weight_bias=3)
    rng = np.random.default_rng(3)
    acts = (rng.normal(size=(2000, 8)) * 4.0).astype(np.float32)  # |x| mostly below 2^4
    acts[:, 5] = 0.0
    lo, hi = g.calibrate_exp_range(cfg, acts, WEIGHTS)
    p = to_float64(g.expmul_ref(cfg, g.to_format_bits(cfg, acts), WEIGHTS[None, :]),
                   "fp16")
    nz = p[p != 0]
    # the range is exactly that of the recording's products
    assert hi == int(np.floor(np.log2(np.abs(nz).max())))
    assert lo == int(np.floor(np.log2(np.abs(nz).min())))
    bounded = g.ExpDotConfig(lanes=8, simd=2, act_format="fp16", weight_exp_bits=3,
                             weight_bias=3, accumulator="bounded", exp_range=(lo, hi),
                             out_of_range="flag")
    x = g.to_format_bits(cfg, acts[:300])
    got = g.expdot_ref(bounded, x, WEIGHTS)
    np.testing.assert_array_equal(got, g.expdot_ref(cfg, x, WEIGHTS))  # exact, never flagged
    # coverage < 1 drops the smallest products' exponents: a narrower accumulator
    lo99, hi99 = g.calibrate_exp_range(cfg, acts, WEIGHTS, coverage=0.99, headroom=1)
    assert lo99 > lo and hi99 == hi + 1
    share = (np.floor(np.log2(np.abs(nz))) < lo99).mean()
    assert share <= 0.01
    with pytest.raises(QhwInputError, match="no finite non-zero product"):
        g.calibrate_exp_range(cfg, np.zeros((3, 8)), WEIGHTS)
