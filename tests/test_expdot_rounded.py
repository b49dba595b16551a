"""``expdot`` with ``accumulator='rounded'``: a conventional float accumulator.

Each fold's products are summed exactly with the running sum, and that sum is rounded to the
activation format after every fold (docs/expmul.md). Checked here:

* the golden model against an oracle written here from the documented rules alone: products in
  float64 (exact for these formats) with DAZ, underflow flush and overflow applied, the running
  sum in Python Fractions rounded to the nearest value by checking its neighbours, IEEE-style
  special values through Python floats; random vectors with cancellation and ties, uniform bit
  patterns with every special class, and hand-written cases with their expected values;
* with one lane per fold, against NumPy float32 / float16 sequential accumulation (IEEE
  addition, round to nearest even) on normal-range data;
* the widths, the configuration errors and the manifest / ``--explain`` text;
* the RTL bit-exact with and without random stalls, cycles and latency equal to the cost model
  (compact and deep pipelines; the regression configs ``*_rounded_*`` also run in
  tests/test_expmul_cosim.py and the lint test).
"""

import io
import contextlib
from fractions import Fraction

import numpy as np
import pytest

from config_errors import assert_config_error
from float_oracle import FORMATS, NATIVE, limits, nearest, to_float64
from qhw import cli, flow, registry
from qhw.golden import expmul as g

UNIT = registry.get("expdot")


def _bits(value, fmt_name):
    """Bit pattern of a value the format represents exactly (or +-inf); NaN: canonical."""
    ebits, mbits = FORMATS[fmt_name]
    if value != value:
        return (((1 << ebits) - 1) << mbits) | (1 << (mbits - 1))
    if fmt_name == "bf16":
        return int(np.array(value, np.float32).view(np.uint32)) >> 16
    native, uint = NATIVE[fmt_name]
    assert float(native(value)) == value
    return int(np.array(value, native).view(uint))


def _oracle_products(cfg, x, w):
    """The products as float64: x * w exactly, x subnormal -> zero of its sign (DAZ), a
    product below the smallest normal -> a zero of its sign, one above the largest finite
    value -> infinity or the largest finite value; NaN and infinities as IEEE."""
    tiny, big = limits(cfg.act_format)
    xv = to_float64(x, cfg.act_format)
    xv = np.where(np.abs(xv) < float(tiny), np.copysign(0.0, xv), xv)
    e = cfg.weight_exp_bits
    f = w & ((1 << e) - 1)
    wv = np.where(f == 0, 0.0, np.ldexp(1.0, (f - cfg.weight_bias).astype(int)))
    wv = np.where((w >> e) & 1, -wv, wv)
    with np.errstate(invalid="ignore"):
        p = xv * wv[None, :]
    finite = np.isfinite(p)
    p = np.where(finite & (np.abs(p) < float(tiny)), np.copysign(0.0, p), p)
    over = finite & (np.abs(p) > float(big))
    return np.where(over, np.copysign(np.inf if cfg.overflow == "inf" else float(big), p), p)


def oracle(cfg, x, w):
    """Bit patterns of the rounded accumulator's outputs, from the documented rules."""
    fmt_name = cfg.act_format
    products = _oracle_products(cfg, x, w)
    out = []
    for row in products:
        acc = Fraction(0)       # the running sum's value, or a float inf / nan once special
        result = 0.0
        for f in range(cfg.lanes // cfg.simd):
            fold = row[f * cfg.simd:(f + 1) * cfg.simd]
            if isinstance(acc, float) or not np.isfinite(fold).all():
                acc = (acc if isinstance(acc, float) else 0.0) + sum(
                    float(p) for p in fold if not np.isfinite(p))
                result = acc
                continue
            result = nearest(acc + sum((Fraction(float(p)) for p in fold), Fraction(0)),
                              fmt_name, cfg.overflow)
            acc = result if np.isinf(result) else Fraction(result)
        out.append(_bits(result, fmt_name))
    return np.array(out, dtype=np.int64)


def _nearby_vectors(cfg, rng, count):
    """Activations of nearby magnitudes: cancellation, rounding and ties in most vectors."""
    ebits, mbits = FORMATS[cfg.act_format]
    emask = (1 << ebits) - 1
    rows = []
    for _ in range(count):
        e0 = int(rng.integers(1, emask))
        e = np.clip(e0 + rng.integers(-3, 4, size=cfg.lanes), 1, emask - 1)
        m = rng.integers(0, 1 << mbits, size=cfg.lanes)
        m[rng.random(cfg.lanes) < 0.4] = 0
        s = rng.integers(0, 2, size=cfg.lanes)
        rows.append((s << (ebits + mbits)) | (e << mbits) | m)
    return np.array(rows, dtype=np.int64)


def _cfg(fmt_name, lanes, simd, overflow="saturate", **kw):
    return g.ExpDotConfig(lanes=lanes, simd=simd, act_format=fmt_name, weight_exp_bits=4,
                          weight_bias=8, overflow=overflow, accumulator="rounded", **kw)


ONES = 8  # weight code of +1.0 with weight_exp_bits 4, weight_bias 8


@pytest.mark.parametrize("fmt_name, lanes, simd, overflow", [
    ("fp32", 8, 2, "saturate"), ("fp32", 9, 3, "inf"), ("fp16", 8, 2, "inf"),
    ("fp16", 6, 1, "saturate"), ("bf16", 8, 4, "inf"), ("bf16", 6, 2, "saturate")])
def test_golden_against_the_oracle(fmt_name, lanes, simd, overflow):
    cfg = _cfg(fmt_name, lanes, simd, overflow)
    rng = np.random.default_rng(lanes * 10 + simd)
    x = np.concatenate([_nearby_vectors(cfg, rng, 250),
                        g.random_acts(cfg, rng, (150, lanes), special=0.15)])
    for w in (g.random_codes(cfg, rng, lanes, zero=0.1), np.full(lanes, ONES)):
        got = g.expdot_ref(cfg, x, w)
        want = oracle(cfg, x, w)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (f"vector {bad[0]}: got {int(got[bad[0]]):#x}, oracle "
                               f"{int(want[bad[0]]):#x}, x {[hex(int(v)) for v in x[bad[0]]]}")
    # the roundings matter: on the nearby data the exact accumulator differs
    exact = g.ExpDotConfig(lanes=lanes, simd=simd, act_format=fmt_name, weight_exp_bits=4,
                           weight_bias=8, overflow=overflow)
    w = np.full(lanes, ONES)
    assert (g.expdot_ref(cfg, x[:250], w) != g.expdot_ref(exact, x[:250], w)).sum() > 10


@pytest.mark.parametrize("fmt_name", ["fp32", "fp16"])
def test_one_lane_per_fold_is_numpy_sequential_accumulation(fmt_name):
    """With simd = 1 every fold is one product, so the accumulator is IEEE addition in order."""
    native, uint = NATIVE[fmt_name]
    cfg = g.ExpDotConfig(lanes=16, simd=1, act_format=fmt_name, accumulator="rounded",
                         weight_bias=31 if fmt_name == "fp32" else 20)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2000, 16)).astype(native)
    k = rng.integers(0, 5, 16)
    codes = (rng.integers(0, 2, 16) << 5) | (cfg.weight_bias - k)
    wv = (np.where(codes >> 5, -1.0, 1.0) * np.ldexp(1.0, -k)).astype(native)
    p = x * wv[None, :]                        # exact where the product is normal
    tiny = np.finfo(native).tiny
    # vectors whose products and partial sums all stay normal (or zero): no flush applies
    normal = ((p == 0) | (np.abs(p) >= tiny)).all(axis=1)
    normal &= ((x == 0) | (np.abs(x) >= tiny)).all(axis=1)
    acc = np.zeros(len(x), native)
    for lane in range(16):
        acc = (acc + p[:, lane]).astype(native)
        normal &= (acc == 0) | (np.abs(acc) >= tiny)
    assert normal.mean() > 0.99
    got = g.expdot_ref(cfg, x.view(uint).astype(np.int64), codes)
    np.testing.assert_array_equal(got[normal], acc.view(uint).astype(np.int64)[normal])


def test_hand_written_cases():
    """fp16, weights 1.0, three folds of two lanes; expected values worked out by hand."""
    rows = [  # (lanes, rounded 'inf', rounded 'saturate', the exact accumulator 'saturate')
        # ties: 1 + 2^-11 is halfway, to even: 1.0, twice; exactly 1 + 2^-10 in one rounding
        ([1.0, 0, 2.0 ** -11, 0, 2.0 ** -11, 0], 1.0, 1.0, 1.0 + 2.0 ** -10),
        # tie to even upwards: 1 + 2^-10 + 2^-11 -> 1 + 2^-9
        ([1.0 + 2.0 ** -10, 0, 2.0 ** -11, 0, 0, 0], 1 + 2.0 ** -9, 1 + 2.0 ** -9,
         1 + 2.0 ** -9),
        # 1024 + 0.5 + 0.5 one fold at a time stays 1024 (ulp 1); exact: 1025
        ([1024.0, 0, 0.25, 0.25, 0.25, 0.25], 1024.0, 1024.0, 1025.0),
        # 65504 + 16 ties up to 65536: overflow (inf, then inf + finite = inf; or saturation,
        # then 65504 - 131008 = -65504); exact: -65488, a tie, to even -65472
        ([65504.0, 0, 16.0, 0, -65504.0, -65504.0], np.inf, -65504.0, -65472.0),
        # overflow to +inf, then a -inf product: NaN; saturated, the -inf product wins
        ([65504.0, 65504.0, -np.inf, 0, 0, 0], np.nan, -np.inf, -np.inf),
        # a -inf product first: the running sum is -inf, so the finite sum's later overflow
        # to +inf does not happen (no NaN)
        ([-np.inf, 0, 65504.0, 65504.0, 0, 0], -np.inf, -np.inf, -np.inf),
        # an intermediate sum below the smallest normal flushes: -2^-15 -> -0, + 2^-14;
        # exact: 2^-15 flushes to +0
        ([2.0 ** -14, -1.5 * 2.0 ** -14, 2.0 ** -14, 0, 0, 0], 2.0 ** -14, 2.0 ** -14, 0.0),
        # cancellation to an exact zero mid-vector, then a small sum
        ([3.0, -3.0, 2.0 ** -10, 0, 0, 2.0 ** -10], 2.0 ** -9, 2.0 ** -9, 2.0 ** -9),
        # negative zeros only: an exact zero is +0
        ([-0.0] * 6, 0.0, 0.0, 0.0),
        # a subnormal activation is a zero (DAZ)
        ([2.0 ** -24, 1.0, 0, 0, 0, 0], 1.0, 1.0, 1.0),
        # a NaN activation in the last fold
        ([1.0, 2.0, 3.0, 4.0, np.nan, 5.0], np.nan, np.nan, np.nan),
        # beyond the format in the first fold: infinity stays; saturation loses 65504, so the
        # sum ends at -65504 + 1, rounded to -65504; the exact accumulator: 1
        ([65504.0, 65504.0, -65504.0, -65504.0, 1.0, 0], np.inf, -65504.0, 1.0),
    ]
    x = np.array([[_bits(v, "fp16") for v in r[0]] for r in rows], dtype=np.int64)
    w = np.full(6, ONES)
    expected = {}
    for overflow, col in (("inf", 1), ("saturate", 2)):
        cfg = _cfg("fp16", 6, 2, overflow)
        expected[overflow] = np.array([_bits(r[col], "fp16") for r in rows])
        np.testing.assert_array_equal(g.expdot_ref(cfg, x, w), expected[overflow])
        np.testing.assert_array_equal(oracle(cfg, x, w), expected[overflow])
    exact = g.ExpDotConfig(lanes=6, simd=2, act_format="fp16", weight_exp_bits=4, weight_bias=8)
    np.testing.assert_array_equal(g.expdot_ref(exact, x, w),
                                  [_bits(r[3], "fp16") for r in rows])
    # the RTL: the same cases, with stalls (the deep pipeline in front of the loop)
    for overflow, pipeline in (("inf", "compact"), ("saturate", "deep")):
        cfg = _cfg("fp16", 6, 2, overflow, pipeline=pipeline)
        run = flow.rtlsim(UNIT, cfg, {"weights": w}, x, stall_in=0.3, stall_out=0.4, seed=5)
        message = flow.first_mismatch(UNIT, run, expected[overflow])
        assert message is None, message


def test_one_fold_equals_the_exact_accumulator():
    """simd = lanes: one rounding, as the exact accumulator."""
    for fmt_name in ("fp32", "fp16", "bf16"):
        cfg = _cfg(fmt_name, 4, 4, "inf")
        exact = g.ExpDotConfig(lanes=4, simd=4, act_format=fmt_name, weight_exp_bits=4,
                               weight_bias=8, overflow="inf")
        rng = np.random.default_rng(2)
        x = np.concatenate([_nearby_vectors(cfg, rng, 200), g.random_acts(cfg, rng, (200, 4))])
        w = g.random_codes(cfg, rng, 4)
        np.testing.assert_array_equal(g.expdot_ref(cfg, x, w), g.expdot_ref(exact, x, w))


def test_widths():
    cfg = g.ExpDotConfig(lanes=16, simd=4, accumulator="rounded")
    # the loop adds 4 products (each below 2^277 grid units of 2^-149) and the running sum (a
    # finite fp32 value, below 2^128 = 2^277 units too): below 5 * 2^277 < 2^280, so 280 + 1
    # signed bits (the exact accumulator at 16 lanes: 282)
    assert cfg.product_mag_bits == 277 and cfg.acc_bits == 281
    assert cfg.acc_register_bits == 32
    assert g.ExpDotConfig(lanes=16, simd=1, act_format="fp16",
                          accumulator="rounded").acc_bits == 40 + 1 + 1
    for simd in (1, 2, 3, 4, 7, 8):
        c = g.ExpDotConfig(lanes=simd * 2, simd=simd, act_format="fp16", accumulator="rounded")
        largest = ((1 << 11) - 1) << 29          # the largest finite fp16 value in grid units
        assert (simd + 1) * largest < 1 << (c.acc_bits - 1)
        assert (simd + 1) * largest >= 1 << (c.acc_bits - 2)   # not a bit wider than needed


@pytest.mark.parametrize("data, words", [
    ({"accumulator": "rounded", "act_format": "fixed"}, ["accumulator", "'rounded'", "float"]),
    ({"accumulator": "rounded", "exp_range": [0, 1]}, ["exp_range", "only with accumulator"]),
    ({"accumulator": "round"}, ["accumulator", "'rounded'"]),
])
def test_bad_configs(data, words):
    assert_config_error(g.ExpDotConfig, data, words)


def test_manifest_and_explain():
    cfg = _cfg("fp16", 8, 2)
    d = UNIT.describe(cfg)
    assert d["derived"]["accumulator_register_bits"] == 16
    assert "after every fold of 2 lanes (4 roundings" in d["streams"]["o"]["layout"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["config", "expdot", "--explain"]) in (0, None)
    text = out.getvalue()
    assert "'rounded'" in text and "after every fold" in text.replace("\n", " ").replace("  ", " ")


@pytest.mark.parametrize("fmt_name, overflow, pipeline", [("fp32", "saturate", "compact"),
                                                          ("fp16", "inf", "deep")])
def test_rtl_bit_exact_stalls_and_cycles(fmt_name, overflow, pipeline):
    cfg = _cfg(fmt_name, 8, 2, overflow, pipeline=pipeline)
    rng = np.random.default_rng(3)
    params = UNIT.check_params(cfg, {"weights": g.random_codes(cfg, rng, cfg.lanes)})
    x = np.concatenate([_nearby_vectors(cfg, rng, 12), UNIT.random_inputs(cfg, rng, 12)])
    expected = UNIT.golden(cfg, params, x)
    run = flow.rtlsim(UNIT, cfg, params, x)
    assert flow.first_mismatch(UNIT, run, expected) is None
    model = UNIT.cost_model(cfg, x.shape[0])
    assert run.cycles == model.expected and run.latency == model.latency
    assert model.latency == (5 if pipeline == "compact" else 8)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.4, stall_out=0.5, seed=2)
    message = flow.first_mismatch(UNIT, run, expected)
    assert message is None, message


def test_operation_counts():
    """Per vector at N = 16, SIMD = 4: 12 lane additions, 3 additions (and alignments) of the
    running sum, 4 roundings; the exact accumulator: 15 additions, one rounding."""
    def ops(cfg):
        return {o["what"]: o["count"] for o in UNIT.operations(cfg, 1)["ops"]}
    rounded = ops(g.ExpDotConfig(lanes=16, simd=4, accumulator="rounded"))
    assert rounded["exact sum of each fold's lanes"] == 12
    assert rounded["running sum + fold sum"] == rounded["alignment of the running sum"] == 3
    assert rounded["normalisation of the sum"] == rounded["rounding to the output format"] == 4
    exact = ops(g.ExpDotConfig(lanes=16, simd=4))
    assert exact["exact accumulation"] == 15 and exact["rounding to the output format"] == 1
