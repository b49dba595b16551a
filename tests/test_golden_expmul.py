"""The sign-exponent-only golden models against oracles written outside this project.

Oracles: NumPy's own float32 / float16 multiplication (exact for a power-of-two weight whenever
the exact product is a normal number), PyTorch's bfloat16 multiplication, float64 arithmetic and
Python's exact integers / fractions. Each float format gets at least one million random products
(vectorised: a few seconds in all) and every combination of special values with every weight code.
"""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
import torch

from float_oracle import NATIVE, nearest, to_float64
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import expmul as g
from qhw.golden import expmul_torch as gt

N_RANDOM = 1_000_000


def numpy_product_bits(x_bits, w_values, fmt_name):
    """x * w in the format's own NumPy arithmetic (bf16: float32, whose result is exact here)."""
    with np.errstate(all="ignore"):
        if fmt_name == "bf16":
            xf = (np.asarray(x_bits, np.int64) << 16).astype(np.uint32).view(np.float32)
            p = xf * w_values.astype(np.float32)
            return (p.view(np.uint32) >> 16).astype(np.int64), p.astype(np.float64)
        native, uint = NATIVE[fmt_name]
        xf = np.asarray(x_bits, np.int64).astype(uint).view(native)
        p = xf * w_values.astype(native)
        return p.view(uint).astype(np.int64), p.astype(np.float64)


def _limits(fmt_name):
    fi = np.finfo({"fp32": np.float32, "fp16": np.float16, "bf16": np.float32}[fmt_name])
    return float(fi.tiny), float(fi.max) if fmt_name != "bf16" else float(
        to_float64(g.max_finite(g.FLOAT_FORMATS["bf16"]), "bf16"))


FLOAT_CASES = [("fp32", 5, 20), ("fp32", 8, 127), ("fp16", 5, 15), ("fp16", 3, 2),
               ("bf16", 5, 20), ("bf16", 8, 127)]


@pytest.mark.parametrize("fmt_name, e_bits, bias", FLOAT_CASES)
@pytest.mark.parametrize("overflow", ["inf", "saturate"])
def test_expmul_float_against_numpy(fmt_name, e_bits, bias, overflow):
    cfg = g.ExpMulConfig(act_format=fmt_name, weight_exp_bits=e_bits, weight_bias=bias,
                         overflow=overflow)
    rng = np.random.default_rng(hash((fmt_name, e_bits, bias)) % 2**32)
    x = rng.integers(0, 1 << cfg.x_bits, size=N_RANDOM, dtype=np.int64)
    w = rng.integers(0, 1 << cfg.w_bits, size=N_RANDOM, dtype=np.int64)
    got = g.expmul_ref(cfg, x, w)
    wv = g.decode_weights(cfg, w)
    xv = to_float64(x, fmt_name)
    tiny, big = _limits(fmt_name)
    with np.errstate(all="ignore"):
        exact = xv * wv  # exact in float64: a power of two times a <= 24-bit significand
    # The weight must be representable in the format's NumPy type for its multiplication to be
    # the oracle (fp16 cannot hold 2^16 or 2^-25).
    with np.errstate(all="ignore"):
        w_ok = wv.astype({"fp16": np.float16}.get(fmt_name, np.float32)).astype(np.float64) == wv
    x_normal = np.isfinite(xv) & (np.abs(xv) >= tiny)
    oracle_bits, oracle = numpy_product_bits(x, wv, fmt_name)
    normal = x_normal & w_ok & (wv != 0) & (np.abs(exact) >= tiny) & (np.abs(exact) <= big)
    assert normal.sum() > N_RANDOM // 4
    np.testing.assert_array_equal(got[normal], oracle_bits[normal])
    # Overflow: NumPy gives infinity; the unit gives infinity or the largest finite value.
    ovf = x_normal & w_ok & (wv != 0) & (np.abs(exact) > big)
    assert ovf.any()
    fmt = cfg.fmt
    sign = (got[ovf] >> (fmt.width - 1)) & 1
    if overflow == "inf":
        np.testing.assert_array_equal(got[ovf], oracle_bits[ovf])
        assert np.isinf(oracle[ovf]).all()
    else:
        np.testing.assert_array_equal(got[ovf], [g.max_finite(fmt, s) for s in sign])
    np.testing.assert_array_equal(sign, np.signbit(exact[ovf]))
    # Underflow (exact product below the smallest normal) flushes to a zero of the right sign.
    unf = x_normal & (wv != 0) & (np.abs(exact) < tiny)
    assert unf.any()
    np.testing.assert_array_equal(got[unf], np.signbit(exact[unf]).astype(np.int64)
                                  << (fmt.width - 1))


def _classify(bits, fmt):
    e = (bits >> fmt.mbits) & fmt.emask
    m = bits & fmt.mmask
    return np.where((e == fmt.emask) & (m != 0), "nan",
                    np.where(e == fmt.emask, "inf", np.where(e == 0, "zero", "normal")))


@pytest.mark.parametrize("fmt_name", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("overflow", ["inf", "saturate"])
def test_expmul_every_special_value_combination(fmt_name, overflow):
    """Every special activation (zeros, subnormals, extremes, inf, NaNs) with every weight code."""
    cfg = g.ExpMulConfig(act_format=fmt_name, weight_exp_bits=4, weight_bias=7,
                         overflow=overflow)
    fmt = cfg.fmt
    xs = g.special_values(fmt)
    codes = np.arange(1 << cfg.w_bits)
    x, w = np.meshgrid(xs, codes, indexing="ij")
    x, w = x.ravel(), w.ravel()
    got = g.expmul_ref(cfg, x, w)
    xv, wv = to_float64(x, fmt_name), g.decode_weights(cfg, w)
    with np.errstate(all="ignore"):
        exact = xv * wv
    tiny = _limits(fmt_name)[0]
    with np.errstate(all="ignore"):
        flushed_x = np.where(np.abs(xv) < tiny, np.copysign(0.0, xv), xv)  # DAZ, keeps the sign
        exact_daz = np.where(np.abs(xv) < tiny, np.copysign(0.0, xv) * wv, exact)
    cls = _classify(got, fmt)
    # NaN exactly where IEEE gives NaN (NaN input, or inf x 0), and always the canonical one.
    assert ((cls == "nan") == np.isnan(exact_daz)).all()
    assert (got[cls == "nan"] == g.qnan(fmt)).all()
    # Infinity exactly for inf x non-zero, and in 'inf' mode for overflow.
    inf_in = np.isinf(xv) & (wv != 0)
    ovf = np.isfinite(flushed_x) & (np.abs(exact_daz) > _limits(fmt_name)[1])
    assert ((cls == "inf") == (inf_in | (ovf & (overflow == "inf")))).all()
    # Zeros (and subnormal activations, flushed) give zeros; the sign is always the XOR.
    zero_in = np.isfinite(xv) & ((np.abs(xv) < tiny) | (wv == 0))
    assert (cls[zero_in] == "zero").all()
    not_nan = cls != "nan"
    sign = (got >> (fmt.width - 1)) & 1
    assert (sign[not_nan] == (np.signbit(xv) ^ np.signbit(wv))[not_nan]).all()
    # Finite normal results equal NumPy's product.
    ok = (cls == "normal") & (np.abs(exact) >= tiny) & ~ovf
    np.testing.assert_array_equal(to_float64(got[ok], fmt_name), exact[ok])


@pytest.mark.parametrize("fmt_name", ["fp16", "bf16"])
def test_expmul_exhaustive_16bit_against_numpy(fmt_name):
    """All 2^16 activations x all 2^6 codes (E = 5): the golden model against NumPy's product."""
    cfg = g.ExpMulConfig(act_format=fmt_name, weight_exp_bits=5, weight_bias=15, overflow="inf")
    x, w = np.meshgrid(np.arange(1 << 16), np.arange(1 << 6), indexing="ij")
    x, w = x.ravel(), w.ravel()
    got = g.expmul_ref(cfg, x, w)
    wv = g.decode_weights(cfg, w)
    oracle_bits, oracle = numpy_product_bits(x, wv, fmt_name)
    xv = to_float64(x, fmt_name)
    tiny, big = _limits(fmt_name)
    with np.errstate(all="ignore"):
        exact = xv * wv
        w_ok = wv.astype(np.float16 if fmt_name == "fp16" else np.float32).astype(
            np.float64) == wv
    comparable = w_ok & np.isfinite(xv) & (np.abs(xv) >= tiny) & (wv != 0) & (
        np.abs(exact) >= tiny)  # includes overflow to infinity
    np.testing.assert_array_equal(got[comparable], oracle_bits[comparable])
    nan = np.isnan(xv) | (np.isinf(xv) & (wv == 0))
    assert (got[nan] == g.qnan(cfg.fmt)).all()


@pytest.mark.parametrize("bits, e_bits, bias", [(8, 4, 8), (2, 3, 3), (16, 5, 15), (32, 6, 20),
                                                (12, 2, -1)])
def test_expmul_fixed_against_float64(bits, e_bits, bias):
    """Fixed point: floor(x * 2^d) saturated, computed in float64 (exact here) by NumPy."""
    cfg = g.ExpMulConfig(act_format="fixed", act_bits=bits, weight_exp_bits=e_bits,
                         weight_bias=bias)
    rng = np.random.default_rng(bits)
    x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=N_RANDOM, dtype=np.int64)
    x[:4] = [-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 0, -1]
    w = rng.integers(0, 1 << cfg.w_bits, size=N_RANDOM, dtype=np.int64)
    got = g.expmul_ref(cfg, x, w)
    oracle = np.clip(np.floor(x.astype(np.float64) * g.decode_weights(cfg, w)),
                     -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    np.testing.assert_array_equal(got, oracle.astype(np.int64))


# Baselines -----------------------------------------------------------------------------------------

def test_mulbase_fp32_against_numpy():
    cfg = g.MulBaseConfig("fp32")
    rng = np.random.default_rng(11)
    a = rng.integers(0, 1 << 32, size=N_RANDOM, dtype=np.int64)
    b = rng.integers(0, 1 << 32, size=N_RANDOM, dtype=np.int64)
    # Bring a quarter of the exponents close together so that rounding and overflow both occur.
    got = g.mulbase_ref(cfg, a, b)
    af, bf = a.astype(np.uint32).view(np.float32), b.astype(np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        oracle = (af * bf).view(np.uint32).astype(np.int64)
        exact = af.astype(np.float64) * bf.astype(np.float64)
    tiny = float(np.finfo(np.float32).tiny)
    ok = (np.isfinite(af) & np.isfinite(bf) & (np.abs(af) >= tiny) & (np.abs(bf) >= tiny)
          & (np.abs(exact) >= tiny))
    assert ok.sum() > N_RANDOM // 2
    np.testing.assert_array_equal(got[ok], oracle[ok])
    nan = np.isnan(af) | np.isnan(bf) | (np.isinf(af) & (bf == 0)) | (np.isinf(bf) & (af == 0))
    assert (got[nan] == g.qnan(cfg.fmt)).all()


def test_mulbase_bf16_against_torch():
    cfg = g.MulBaseConfig("bf16")
    rng = np.random.default_rng(12)
    a = rng.integers(0, 1 << 16, size=N_RANDOM, dtype=np.int64)
    b = rng.integers(0, 1 << 16, size=N_RANDOM, dtype=np.int64)
    got = g.mulbase_ref(cfg, a, b)
    at = torch.from_numpy((a << 16).astype(np.uint32).view(np.float32)).to(torch.bfloat16)
    bt = torch.from_numpy((b << 16).astype(np.uint32).view(np.float32)).to(torch.bfloat16)
    oracle = ((at * bt).float().numpy().view(np.uint32) >> 16).astype(np.int64)
    af, bf = at.double().numpy(), bt.double().numpy()
    tiny = float(np.finfo(np.float32).tiny)
    ok = (np.isfinite(af) & np.isfinite(bf) & (np.abs(af) >= tiny) & (np.abs(bf) >= tiny)
          & (np.abs(af * bf) >= tiny))
    np.testing.assert_array_equal(got[ok], oracle[ok])


def test_mulbase_int8_exhaustive():
    cfg = g.MulBaseConfig("int8")
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    x = np.stack([a.ravel(), b.ravel()], axis=1)
    got = g.mulbase_reference(cfg, {}, x)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, (a * b).ravel())


# expdot -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt_name", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("overflow", ["inf", "saturate"])
def test_expdot_rounds_the_exact_sum_once(fmt_name, overflow):
    cfg = g.ExpDotConfig(lanes=7, simd=7, act_format=fmt_name, weight_exp_bits=4,
                         weight_bias=8, overflow=overflow)
    fmt = cfg.fmt
    rng = np.random.default_rng(5)
    vectors = []
    for _ in range(300):
        # Activations of nearby magnitudes (so that cancellation, rounding and ties happen)
        e0 = int(rng.integers(1, fmt.emask))
        e = np.clip(e0 + rng.integers(-3, 4, size=cfg.lanes), 1, fmt.emask - 1)
        m = rng.integers(0, 1 << fmt.mbits, size=cfg.lanes)
        m[rng.random(cfg.lanes) < 0.3] = 0
        s = rng.integers(0, 2, size=cfg.lanes)
        vectors.append((s << (fmt.width - 1)) | (e << fmt.mbits) | m)
    x = np.array(vectors, dtype=np.int64)
    for w in (g.random_codes(cfg, rng, cfg.lanes, zero=0.1), np.full(cfg.lanes, 8)):
        got = g.expdot_ref(cfg, x, w)
        products = g.expmul_ref(cfg, x, w[None, :])
        for v in range(len(x)):
            pv = to_float64(products[v], fmt_name)
            if not np.isfinite(pv).all():
                continue
            total = sum((Fraction(float(p)) for p in pv), Fraction(0))
            want = nearest(total, fmt_name, overflow)
            have = float(to_float64(got[v], fmt_name))
            assert have == want, (v, float(total), have, want)


def test_expdot_accumulator_width_is_tight_and_sufficient():
    for fmt_name in ("fp32", "fp16", "bf16", "fixed"):
        for lanes in (1, 2, 3, 16, 1024):
            cfg = g.ExpDotConfig(lanes=lanes, simd=1, act_format=fmt_name, act_bits=8,
                                 weight_exp_bits=8, weight_bias=0)
            if cfg.is_float:
                largest = g.float_bits_to_fixed(g.max_finite(cfg.fmt), cfg.fmt)
                most_negative = -largest
            else:
                largest, most_negative = (1 << 7) - 1, -(1 << 7)
            assert largest < 1 << cfg.product_mag_bits <= 2 * largest + 2
            lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
            assert lo <= lanes * most_negative and lanes * largest <= hi
            if lanes > 1 and lanes & (lanes - 1) == 0:  # one bit less would overflow
                assert lanes * largest > (1 << (cfg.acc_bits - 2)) - 1


def test_expdot_special_values():
    cfg = g.ExpDotConfig(lanes=3, simd=1, act_format="fp16", weight_exp_bits=3, weight_bias=3,
                         overflow="saturate")
    fmt = cfg.fmt
    one, inf = fmt.bias << fmt.mbits, fmt.emask << fmt.mbits
    neg = 1 << 15
    w = np.array([3, 3, 3])  # all weights 1.0
    x = np.array([[inf, one, one], [inf, inf | neg, one], [g.qnan(fmt), one, one],
                  [one, one | neg, 0], [g.max_finite(fmt)] * 3, [1, 2, 3]])
    got = g.expdot_ref(cfg, x, w)
    assert list(got) == [inf, g.qnan(fmt), g.qnan(fmt), 0, g.max_finite(fmt), 0]
    cfg_inf = dataclasses.replace(cfg, overflow="inf")
    assert g.expdot_ref(cfg_inf, x[4:5], w)[0] == inf


# Torch quantizer -----------------------------------------------------------------------------------

def test_quantizer_rounds_in_log_domain_and_is_straight_through():
    cfg = g.ExpDotConfig(lanes=4, simd=1, weight_exp_bits=3, weight_bias=5)  # d in -4..2
    w = torch.tensor([0.3, 0.36, -0.0, 1e-6, -100.0, 0.75, 2.0 ** -5 * 1.01, 2.0 ** -5 * 0.99,
                      0.0, -3.0], requires_grad=True)
    q = gt.seofp_quantize(w, cfg)
    # round(log2 0.3 = -1.74) = -2; log2 0.36 = -1.47 -> -1; 0.75 -> 2^0 (log domain, not 0.5);
    # below 2^-5 -> 0; beyond 2^2 -> 4; -3 -> log2 3 = 1.58 -> -4.
    assert q.tolist() == [0.25, 0.5, -0.0, 0.0, -4.0, 1.0, 2.0 ** -4, 0.0, 0.0, -4.0]
    assert torch.signbit(q[2])
    (gt.seofp_ste(w, cfg) * torch.arange(10.0)).sum().backward()
    assert w.grad.tolist() == list(range(10))
    codes = gt.export_codes(w, cfg)
    np.testing.assert_array_equal(g.decode_weights(cfg, codes), q.detach().double().numpy())


def test_linear_layer_trains_and_exports_to_expdot():
    torch.manual_seed(0)
    cfg = g.ExpDotConfig(lanes=8, simd=2, act_format="fp32", weight_exp_bits=4, weight_bias=10)
    layer = gt.SEOFPLinear.from_config(cfg, out_features=3)
    target = torch.randn(8, 3) * 0.3
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    xs = torch.randn(256, 8)
    before = None
    for _ in range(60):
        loss = ((layer(xs) - xs @ target) ** 2).mean()
        before = before if before is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < before
    # The exported rows run through the expdot reference give the layer's output, rounded once:
    # with these magnitudes the float64 sums are exact, so float32(float64 sum) is the oracle.
    x = torch.randn(20, 8).to(torch.float32)
    with torch.no_grad():
        want = (x.double() @ layer.quantized_weight().double().t()).float().numpy()
    for row in range(3):
        params = layer.export_row(row)
        got = g.expdot_reference(cfg, params, x.numpy())
        np.testing.assert_array_equal(got.view(np.float32), want[:, row])


# Config and input checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls, change, words", [
    (g.ExpMulConfig, {"act_format": "fp8"}, ["act_format", "'fp32'", "'fixed'"]),
    (g.ExpMulConfig, {"weight_exp_bits": 9}, ["weight_exp_bits", "2..8", "got 9"]),
    (g.ExpMulConfig, {"weight_bias": 600}, ["weight_bias", "-512..512"]),
    (g.ExpMulConfig, {"act_bits": 1}, ["act_bits", "2..32"]),
    (g.ExpMulConfig, {"overflow": "wrap"}, ["overflow", "'inf'", "'saturate'"]),
    (g.ExpMulConfig, {"act_format": "fixed", "overflow": "inf"}, ["overflow", "fixed"]),
    (g.ExpDotConfig, {"lanes": 6, "simd": 4}, ["simd", "must divide lanes = 6"]),
    (g.ExpDotConfig, {"lanes": 0}, ["lanes", "1..1024"]),
    (g.MulBaseConfig, {"kind": "fp64"}, ["kind", "'bf16'"]),
])
def test_config_errors_name_the_field(cls, change, words):
    with pytest.raises(QhwInputError) as info:
        config_from_dict(cls, change)
    for word in words:
        assert word in str(info.value)


def test_input_and_weight_checks():
    cfg = g.ExpMulConfig(act_format="fp16", weight_exp_bits=3, weight_bias=3)
    with pytest.raises(QhwInputError, match="shape"):
        g.expmul_check_inputs(cfg, np.zeros((4, 3), np.int64))
    with pytest.raises(QhwInputError, match="dtype"):
        g.expmul_check_inputs(cfg, np.zeros((4, 2), np.float32))
    with pytest.raises(QhwInputError, match=r"0\.\.65535"):
        g.expmul_check_inputs(cfg, np.array([[70000, 1]]))
    with pytest.raises(QhwInputError, match=r"weight codes.*0\.\.15"):
        g.expmul_check_inputs(cfg, np.array([[1, 16]]))
    with pytest.raises(QhwInputError, match="no arrays"):
        g.expmul_check_params(cfg, {"weights": np.zeros(3)})
    dcfg = g.ExpDotConfig(lanes=4, simd=2, act_format="fixed", act_bits=4, weight_exp_bits=3,
                          weight_bias=3)
    with pytest.raises(QhwInputError, match=r"-8\.\.7"):
        g.expdot_check_inputs(dcfg, np.array([1, 2, 3, 8]))
    with pytest.raises(QhwInputError, match=r"shape must be \(4,\)"):
        g.expdot_check_params(dcfg, {"weights": np.zeros(5, np.int64)})
    with pytest.raises(QhwInputError, match="missing array 'weights'"):
        g.expdot_check_params(dcfg, {})
    with pytest.raises(QhwInputError, match="0 or \\+-2\\^d"):
        g.encode_weights(dcfg, [0.3])
    # float32 arrays are accepted for fp32 activations (their bit patterns)
    f = g.ExpDotConfig(lanes=2, simd=1)
    assert g.expdot_check_inputs(f, np.array([1.0, -2.0], np.float32)).tolist() == [
        [0x3F800000, 0xC0000000]]
