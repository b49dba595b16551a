"""The ``fpdot`` golden model against IEEE arithmetic written outside this project.

Oracle: NumPy float32 / float16 and PyTorch bfloat16 arithmetic (IEEE round to nearest even)
performing the same multiplications and additions in the same order as the unit, with the unit's
subnormal policy applied around it (subnormal operands become signed zeros before each operation,
subnormal results after it). Where an operation's IEEE result is subnormal, flushing it after IEEE
rounding and the unit's rounding-then-flushing can differ by one rounding step at the bottom of
the normal range, so those vectors are left out (and counted); on normal-range data none occur.
"""

import numpy as np
import pytest
import torch

from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import expmul as gexp
from qhw.golden import fpdot as g


# The oracle ---------------------------------------------------------------------------------------

class Native:
    """The format's own arithmetic: NumPy float32/float16, PyTorch bfloat16."""

    def __init__(self, name):
        self.name, self.fmt = name, gexp.FLOAT_FORMATS[name]

    def from_bits(self, bits):
        bits = np.asarray(bits, dtype=np.int64)
        if self.name == "fp32":
            return bits.astype(np.uint32).view(np.float32)
        if self.name == "fp16":
            return bits.astype(np.uint16).view(np.float16)
        return torch.from_numpy(bits.astype(np.uint16).view(np.int16).copy()).view(torch.bfloat16)

    def to_bits(self, v):
        if self.name == "bf16":
            return v.view(torch.int16).numpy().astype(np.int64) & 0xFFFF
        return v.view(np.uint32 if self.name == "fp32" else np.uint16).astype(np.int64)

    def flush(self, bits):
        """Subnormals -> signed zero; also returns where that happened."""
        fmt = self.fmt
        sub = (((bits >> fmt.mbits) & fmt.emask) == 0) & ((bits & fmt.mmask) != 0)
        return np.where(sub, bits & (1 << (fmt.width - 1)), bits), sub

    def op(self, f, a_bits, b_bits, product=False):
        """IEEE f(a, b) with DAZ on the operands; returns (FTZ result bits, flagged).

        Flagged: the IEEE result is subnormal, or for a product also the smallest normal
        magnitude. A product just below the smallest normal that IEEE rounds on the subnormal
        grid up to the smallest normal has, rounded to the full precision as the unit rounds it,
        an exponent below the normal range, so the unit flushes it.
        """
        a = self.from_bits(self.flush(a_bits)[0])
        b = self.from_bits(self.flush(b_bits)[0])
        with np.errstate(all="ignore"):
            bits, sub = self.flush(self.to_bits(f(a, b)))
        if product:
            sub = sub | ((bits & ((1 << (self.fmt.width - 1)) - 1)) == 1 << self.fmt.mbits)
        return bits, sub


def oracle(cfg, x, w):
    """The dot products by the format's own arithmetic, in the unit's order: (bits, flagged)."""
    nat, fmt = Native(cfg.act_format), cfg.fmt
    x = np.asarray(x, dtype=np.int64)
    flagged = np.zeros(x.shape[0], dtype=bool)
    p, sub = nat.op(lambda a, b: a * b, x, np.broadcast_to(w, x.shape), product=True)
    flagged |= sub.any(axis=1)
    level = [p[:, k] for k in range(cfg.lanes)]
    # folds of simd lanes; a pairwise tree per fold
    roots = []
    for f in range(cfg.fold):
        vals = level[f * cfg.simd:(f + 1) * cfg.simd]
        while len(vals) > 1:
            nxt = []
            for i in range(0, len(vals) - 1, 2):
                s, sub = nat.op(lambda a, b: a + b, vals[i], vals[i + 1])
                flagged |= sub
                nxt.append(s)
            if len(vals) % 2:
                nxt.append(vals[-1])
            vals = nxt
        roots.append(vals[0])
    acc = roots[0]
    for t in roots[1:]:
        acc, sub = nat.op(lambda a, b: a + b, acc, t)
        flagged |= sub
    nan = ((acc >> fmt.mbits) & fmt.emask == fmt.emask) & ((acc & fmt.mmask) != 0)
    return np.where(nan, gexp.qnan(fmt), acc), flagged


def to_float64(bits, name):
    """Exact float64 values of bit patterns (bf16: the top half of a float32)."""
    bits = np.asarray(bits, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        if name == "bf16":
            return (bits << 16).astype(np.uint32).view(np.float32).astype(np.float64)
        native = {"fp32": (np.uint32, np.float32), "fp16": (np.uint16, np.float16)}[name]
        return bits.astype(native[0]).view(native[1]).astype(np.float64)


def normal_range(fmt, rng, shape, band):
    """Normal numbers within 2^+-band of 1, a third of them with 3-bit mantissas (exact sums,
    ties and cancellation are then frequent)."""
    s = rng.integers(0, 2, size=shape, dtype=np.int64)
    e = fmt.bias + rng.integers(-band, band + 1, size=shape, dtype=np.int64)
    m = rng.integers(0, 1 << fmt.mbits, size=shape, dtype=np.int64)
    short = rng.random(shape) < 0.35
    m = np.where(short, m & ~((1 << (fmt.mbits - 3)) - 1), m)
    return (s << (fmt.width - 1)) | (e << fmt.mbits) | m


def close_pairs(fmt, rng, n):
    """Operand pairs that stress an adder: exponents 0..mbits+6 apart (sometimes far more),
    mantissas equal or a few ulps apart (cancellation, carries, ties) or random, both signs."""
    a = normal_range(fmt, rng, n, band=min(20, fmt.bias // 2))
    ea = (a >> fmt.mbits) & fmt.emask
    d = np.where(rng.random(n) < 0.9, rng.integers(0, fmt.mbits + 7, n), rng.integers(0, 60, n))
    eb = np.clip(ea - d, 1, fmt.emask - 1)
    ma = a & fmt.mmask
    kind = rng.integers(0, 4, n)
    mb = np.select([kind == 0, kind == 1, kind == 2],
                   [ma, (ma + rng.integers(-3, 4, n)) & fmt.mmask,
                    rng.integers(0, 1 << fmt.mbits, n) & ~((1 << max(fmt.mbits - 4, 0)) - 1)],
                   rng.integers(0, 1 << fmt.mbits, n))
    b = (rng.integers(0, 2, n) << (fmt.width - 1)) | (eb << fmt.mbits) | mb
    swap = rng.random(n) < 0.5
    return np.where(swap, b, a), np.where(swap, a, b)


# Single operations ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fp32", "fp16", "bf16"])
def test_adder_against_native_arithmetic(name):
    nat, fmt = Native(name), gexp.FLOAT_FORMATS[name]
    rng = np.random.default_rng(11)
    n = 1_000_000
    a1, b1 = close_pairs(fmt, rng, n)
    a2 = rng.integers(0, 1 << fmt.width, n, dtype=np.int64)        # any bit patterns, specials
    b2 = rng.integers(0, 1 << fmt.width, n, dtype=np.int64)
    sv = gexp.special_values(fmt)
    a3, b3 = np.meshgrid(sv, sv)                                    # every pair of specials
    a = np.concatenate([a1, a2, a3.ravel()])
    b = np.concatenate([b1, b2, b3.ravel()])
    got = g.fp_add_ref(fmt, a, b)
    want, sub = nat.op(lambda u, v: u + v, a, b)
    nan = ((want >> fmt.mbits) & fmt.emask == fmt.emask) & ((want & fmt.mmask) != 0)
    want = np.where(nan, gexp.qnan(fmt), want)
    # Sums of normal numbers are exact below the smallest normal: flushing after IEEE is the
    # unit's flush, so nothing is left out here.
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} mismatches; first a={a[bad[0]]:#x} b={b[bad[0]]:#x} "
                           f"got {got[bad[0]]:#x} want {want[bad[0]]:#x}")
    assert sub.sum() > 0  # the flush was exercised


@pytest.mark.parametrize("name", ["fp32", "fp16", "bf16"])
def test_multiplier_against_native_arithmetic(name):
    nat, fmt = Native(name), gexp.FLOAT_FORMATS[name]
    rng = np.random.default_rng(12)
    n = 500_000
    band = min(30, fmt.bias // 2)
    a = np.concatenate([normal_range(fmt, rng, n, band), rng.integers(0, 1 << fmt.width, n)])
    b = np.concatenate([normal_range(fmt, rng, n, band), rng.integers(0, 1 << fmt.width, n)])
    got = g.fp_mul_ref(fmt, a, b)
    want, sub = nat.op(lambda u, v: u * v, a, b, product=True)
    nan = ((want >> fmt.mbits) & fmt.emask == fmt.emask) & ((want & fmt.mmask) != 0)
    want = np.where(nan, gexp.qnan(fmt), want)
    keep = ~sub  # IEEE subnormal results: see the module docstring
    bad = np.flatnonzero((got != want) & keep)
    assert bad.size == 0, f"a={a[bad[0]]:#x} b={b[bad[0]]:#x} got {got[bad[0]]:#x}"
    assert sub.mean() < 0.1


FP32 = gexp.FLOAT_FORMATS["fp32"]
ONE, NEG = 0x3F800000, 1 << 31
INF, MAX = 0x7F800000, 0x7F7FFFFF
QNAN = 0x7FC00000


@pytest.mark.parametrize("a, b, want", [
    (ONE, ONE | NEG, 0),                       # x + (-x) = +0
    (NEG, NEG, NEG),                           # (-0) + (-0) = -0
    (0, NEG, 0),                               # (+0) + (-0) = +0
    (0x3F800001, NEG | 0x3F800001, 0),
    (ONE, 0x33800000, ONE),                    # 1 + 2^-24: tie, to even (down)
    (0x3F800001, 0x33800000, 0x3F800002),      # (1 + 2^-23) + 2^-24: tie, to even (up)
    (ONE, 0x33800001, 0x3F800001),             # just above the tie: up
    (ONE, NEG | 0x33000000, ONE),              # 1 - 2^-25: tie between 1 - 2^-24 (odd) and 1
    (ONE, NEG | 0x33800000, 0x3F7FFFFF),       # 1 - 2^-24 is exact
    (MAX, MAX, INF),                           # overflow to infinity
    (MAX | NEG, MAX | NEG, INF | NEG),
    (MAX, 0x73000000, INF),                    # max + half an ulp (2^103): tie, max is odd: inf
    (MAX, 0x72FFFFFF, MAX),                    # just below half an ulp: max
    (INF, INF | NEG, QNAN),                    # inf - inf
    (INF, MAX | NEG, INF),                     # inf + finite
    (INF | NEG, ONE, INF | NEG),
    (0x7F800001, ONE, QNAN),                   # a signalling NaN in: the canonical NaN out
    (0xFFC00123, INF, QNAN),                   # NaN payloads are not propagated
    (0x00C00000, NEG | 0x00800000, 0),         # 1.5 * 2^-126 - 2^-126 = 2^-127: flushed
    (NEG | 0x00C00000, 0x00800000, NEG),       # ... keeps the sign of the result
    (0x00000001, NEG | 0x00000001, 0),         # subnormal operands are zeros: +0 + -0
    (NEG | 0x00000001, NEG, NEG),
    (0x00000001, ONE, ONE),
])
def test_adder_directed_cases(a, b, want):
    assert int(g.fp_add_ref(FP32, np.array([a]), np.array([b]))[0]) == want
    assert int(g.fp_add_ref(FP32, np.array([b]), np.array([a]))[0]) == want  # commutative


def test_adder_directed_cases_agree_with_numpy():
    """The hand-written expectations above are IEEE's, where IEEE has no subnormal."""
    pairs = [(ONE, 0x33800000), (0x3F800001, 0x33800000), (ONE, NEG | 0x33000000),
             (MAX, 0x73000000), (MAX, 0x72FFFFFF), (MAX, MAX), (ONE, ONE | NEG), (NEG, NEG)]
    for a, b in pairs:
        with np.errstate(over="ignore"):
            s = np.array([a], np.uint32).view(np.float32) + np.array([b], np.uint32).view(np.float32)
        assert int(s.view(np.uint32)[0]) == int(g.fp_add_ref(FP32, np.array([a]), np.array([b]))[0])


# Dot products ---------------------------------------------------------------------------------------

DOT_CASES = [("fp32", 16, 4), ("fp32", 12, 3), ("fp32", 5, 1), ("fp32", 8, 8),
             ("fp16", 6, 3), ("fp16", 16, 2), ("bf16", 10, 5), ("bf16", 4, 4)]


@pytest.mark.parametrize("name, lanes, simd", DOT_CASES)
def test_dot_normal_range_equals_native_sequence(name, lanes, simd):
    """Normal-range data: no subnormal anywhere, so bit for bit IEEE."""
    cfg = g.FpDotConfig(lanes=lanes, simd=simd, act_format=name)
    rng = np.random.default_rng(lanes * 10 + simd)
    # fp16: within 2^+-2, so products are multiples of 2^-14 (the smallest normal) and no
    # cancellation can leave a subnormal
    band = 2 if name == "fp16" else 12
    x = normal_range(cfg.fmt, rng, (20_000, lanes), band)
    w = normal_range(cfg.fmt, rng, lanes, band)
    got = g.fpdot_ref(cfg, x, w)
    want, flagged = oracle(cfg, x, w)
    assert not flagged.any()
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} mismatches; vector {bad[0]}: {got[bad[0]]:#x} {want[bad[0]]:#x}"
    # not vacuous: the intermediate roundings matter (the exact sum rounded once differs)
    once = g.encode_values(cfg, to_float64(x, name) @ to_float64(w, name))
    assert (once != got).mean() > 0.01


@pytest.mark.parametrize("name, lanes, simd", DOT_CASES)
def test_dot_any_bit_patterns(name, lanes, simd):
    """Uniform bit patterns and specials (inf, NaN, overflow, flushes), same oracle."""
    cfg = g.FpDotConfig(lanes=lanes, simd=simd, act_format=name)
    rng = np.random.default_rng(100 + lanes * 10 + simd)
    x = g.random_values(cfg, rng, (20_000, lanes), special=0.05, wild=0.3)
    w = g.random_values(cfg, rng, lanes, special=0.0, wild=0.0)
    got = g.fpdot_ref(cfg, x, w)
    want, flagged = oracle(cfg, x, w)
    bad = np.flatnonzero((got != want) & ~flagged)
    assert bad.size == 0, f"vector {bad[0]}: {got[bad[0]]:#x} {want[bad[0]]:#x}"
    assert flagged.mean() < 0.25  # most vectors are compared
    fmt = cfg.fmt
    e = (got >> fmt.mbits) & fmt.emask
    assert (got == gexp.qnan(fmt)).any() and ((e == fmt.emask) & (got != gexp.qnan(fmt))).any()


def test_order_of_additions_is_the_documented_one():
    """(a + b) + (c + d) per fold, then folds in order: values where the orders differ."""
    big, one = 0x4B800000, ONE                     # 2^24, 1
    x = np.array([[big, one, one, big | NEG]])
    w = np.full(4, ONE)
    # tree: (2^24 + 1) -> 2^24 (tie to even), (1 - 2^24) exact; 2^24 + (1 - 2^24) = 1
    assert int(g.fpdot_ref(g.FpDotConfig(4, 4), x, w)[0]) == ONE
    # simd 2: folds (2^24 + 1) -> 2^24 and (1 - 2^24); acc: 2^24 + (1 - 2^24) = 1
    assert int(g.fpdot_ref(g.FpDotConfig(4, 2), x, w)[0]) == ONE
    # simd 1: ((2^24 + 1) + 1) - 2^24 = (2^24 + 1) - 2^24 ... each step rounds: 2^24, 2^24, 0
    assert int(g.fpdot_ref(g.FpDotConfig(4, 1), x, w)[0]) == 0


def test_dot_directed_special_values():
    cfg = g.FpDotConfig(lanes=4, simd=2)
    w = np.array([ONE, ONE, ONE, ONE])
    x = np.array([
        [INF, ONE, ONE, ONE],                  # inf + finite
        [INF, ONE, INF | NEG, ONE],            # inf - inf across folds
        [INF, INF | NEG, ONE, ONE],            # inf - inf inside the tree
        [QNAN | NEG, ONE, ONE, ONE],           # NaN
        [MAX, MAX, MAX | NEG, MAX | NEG],      # first fold overflows to +inf, second to -inf
        [MAX, MAX | NEG, MAX, 0],              # no overflow: MAX
        [NEG, NEG, NEG, NEG],                  # -0 throughout: -0
        [0, NEG, NEG, NEG],                    # +0 + -0 = +0 in the tree, then +0 + -0
        [ONE, 0x33800000, 0x33800000, 0],      # (1 + 2^-24) -> 1, then 1 + 2^-24 -> 1
    ])
    assert [int(v) for v in g.fpdot_ref(cfg, x, w)] == [
        INF, QNAN, QNAN, QNAN, QNAN, MAX, NEG, 0, ONE]
    assert int(g.fpdot_ref(cfg, x[:1], np.array([0, ONE, ONE, ONE]))[0]) == QNAN  # inf * 0


# Configuration and inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("change, words", [
    ({"lanes": 0}, ["lanes", "1..1024"]),
    ({"lanes": 6, "simd": 4}, ["simd", "must divide lanes = 6"]),
    ({"act_format": "fixed"}, ["act_format", "'fp32'"]),
    ({"simd": True}, ["simd", "integer"]),
    ({"overflow": "inf"}, ["unknown key 'overflow'"]),
])
def test_config_errors_name_the_field(change, words):
    with pytest.raises(QhwInputError) as e:
        config_from_dict(g.FpDotConfig, {"lanes": 8, "simd": 2, **change})
    for word in words:
        assert word in str(e.value)


def test_input_and_weight_checks():
    cfg = g.FpDotConfig(lanes=4, simd=2, act_format="fp16")
    with pytest.raises(QhwInputError, match="shape"):
        g.fpdot_check_inputs(cfg, np.zeros((2, 3), np.uint16))
    with pytest.raises(QhwInputError, match="fp16 bit patterns"):
        g.fpdot_check_inputs(cfg, np.array([0, 1, 2, 1 << 16]))
    with pytest.raises(QhwInputError, match="missing array 'weights'"):
        g.fpdot_check_params(cfg, {})
    with pytest.raises(QhwInputError, match="shape"):
        g.fpdot_check_params(cfg, {"weights": np.zeros(3, np.uint16)})
    # native float arrays are read as their bit patterns
    x = np.array([1.5, -2.0, 0.25, 3.0], dtype=np.float16)
    assert (g.fpdot_check_inputs(cfg, x)[0] == x.view(np.uint16)).all()
    w = g.fpdot_check_params(cfg, {"weights": np.ones(4, np.float16)})["weights"]
    assert (w == 0x3C00).all()
