"""The ``gru`` golden model: exact arithmetic against outside oracles, PyTorch's GRU, the
fake-quantized training module, the accumulator bound, and config/array validation.

Oracles: Python's ``fractions.Fraction`` with ``round`` (half to even) and ``math.floor`` for
every narrowing; ``math.exp``/``math.tanh`` for the tables; ``torch.nn.GRU`` for the network.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from qhw import registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import gru as g
from qhw.golden.gru_torch import QuantGRU

UNIT = registry.get("gru")

#: Tolerance of homogeneous 16-bit against torch.nn.GRU (I=8, H=16, 40 steps, N(0,1) inputs,
#: PyTorch's default init): mean absolute error of the state and its maximum.
TOL16_MEAN, TOL16_MAX = 2e-4, 1e-3


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reg_cfg(name):
    return config_from_dict(UNIT.config, UNIT.regression[name])


# Narrowing -----------------------------------------------------------------------------------------

def oracle_narrow(v, frac, fmt):
    total, f, rounding = fmt
    exact = Fraction(v, 1) * Fraction(2) ** (f - frac)
    q = round(exact) if rounding == "nearest_even" else math.floor(exact)
    return max(-(1 << (total - 1)), min((1 << (total - 1)) - 1, q))


@pytest.mark.parametrize("rounding", g.ROUNDINGS)
def test_narrow_matches_fraction_oracle(rounding):
    rng = np.random.default_rng(1)
    for _ in range(300):
        total = int(rng.integers(1, 17))
        f = int(rng.integers(-4, total + 1))
        frac = int(rng.integers(-6, 20))
        v = rng.integers(-(1 << 20), 1 << 20, size=64)
        v[:4] = [0, 1, -1, (1 << max(0, frac - f - 1)) * 3]  # ties included
        fmt = (total, f, rounding)
        want = [oracle_narrow(int(a), frac, fmt) for a in v]
        assert list(g.narrow(v, frac, fmt)) == want
        assert list(g.narrow(v.astype(object), frac, fmt)) == want  # wide (object) path


# Accumulator bound ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["all8_lut_m1", "all4_lut_m2", "mixed_b_pwl_last", "all16_pwl_m8"])
def test_accumulator_width_holds_every_extreme_and_is_tight(name):
    cfg = reg_cfg(name)
    w, b = cfg.fmt("weight"), cfg.fmt("bias")
    for side in ("i", "h"):
        k = cfg.input_size if side == "i" else cfg.hidden_size
        v = cfg.fmt("input" if side == "i" else "state")
        bits = g.acc_bits(cfg, side)
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        extremes = []
        for wv in (w.lo, w.hi):
            for vv in (v.lo, v.hi):
                for bv in (b.lo, b.hi):
                    value, _ = g.mm_exact(cfg, side, k * wv * vv, bv)
                    extremes.append(value)
                    assert lo <= value <= hi
        # one bit less would overflow for some extreme
        assert min(extremes) < -(1 << (bits - 2)) or max(extremes) > (1 << (bits - 2)) - 1
        s = g.sum_bits(cfg, side)
        assert all(-(1 << (s - 1)) <= k * a * c < (1 << (s - 1)) for a in (w.lo, w.hi)
                   for c in (v.lo, v.hi))


# Activation tables ----------------------------------------------------------------------------------

def _real(kind, x):
    return 1 / (1 + math.exp(-x)) if kind == "sig" else math.tanh(x)


@pytest.mark.parametrize("kind", ["sig", "tanh"])
@pytest.mark.parametrize("in_fmt, out_fmt", [((8, 4), (8, 7, "nearest_even")),
                                             ((6, 4), (4, 2, "floor")),
                                             ((5, 1), (6, 5, "nearest_even"))])
def test_lut_is_the_quantized_function(kind, in_fmt, out_fmt):
    table = g.activation_table(kind, in_fmt, out_fmt)
    n = 1 << in_fmt[0]
    for addr in range(n):
        code = addr - n if addr >= n // 2 else addr
        y = Fraction(_real(kind, code / 2 ** in_fmt[1])) * 2 ** out_fmt[1]
        q = round(y) if out_fmt[2] == "nearest_even" else math.floor(y)
        q = max(-(1 << (out_fmt[0] - 1)), min((1 << (out_fmt[0] - 1)) - 1, q))
        assert table[addr] == q


@pytest.mark.parametrize("kind", ["sig", "tanh"])
def test_pwl_hits_the_table_at_breakpoints_and_is_monotone(kind):
    in_fmt, out_fmt, segments = g.Format(8, 4), g.Format(10, 8), 16
    lut = g.activation_table(kind, in_fmt, out_fmt)
    a, b = g.pwl_table(kind, in_fmt, out_fmt, segments)
    codes = np.arange(-128, 128)
    y = g.pwl_eval(codes, in_fmt, out_fmt, segments, a, b)
    breaks = codes[codes % 16 == 0]
    assert (y[np.isin(codes, breaks)] == lut[breaks & 255]).all()
    assert (np.diff(y) >= 0).all()
    assert np.abs(y - lut[codes & 255]).max() <= (8 if kind == "sig" else 40)


# Against torch.nn.GRU ------------------------------------------------------------------------------

def _torch_case():
    torch.manual_seed(0)
    ref = torch.nn.GRU(8, 16, batch_first=True).double()
    x = np.random.default_rng(0).normal(0, 1, size=(8, 40, 8))
    with torch.no_grad():
        y = ref(torch.as_tensor(x))[0].numpy()
    return ref, x, y


def _integer_gru_error(ref, x, y, bits):
    cfg = g.GruConfig(input_size=8, hidden_size=16, bits=bits, lut_bits=min(bits, 14))
    q = QuantGRU.from_torch(cfg, ref)
    codes = g.reference(cfg, q.export(), q.quantize_inputs(x))
    return np.abs(g.dequantize(cfg, "state", codes) - y)


def test_integer_gru_approaches_torch_gru_as_widths_grow():
    ref, x, y = _torch_case()
    errors = [_integer_gru_error(ref, x, y, bits).mean() for bits in (6, 8, 10, 12, 16)]
    assert all(a > 2 * b for a, b in zip(errors, errors[1:])), errors


def test_homogeneous_16_bit_within_tolerance_of_torch_gru():
    ref, x, y = _torch_case()
    err = _integer_gru_error(ref, x, y, 16)
    assert err.mean() < TOL16_MEAN and err.max() < TOL16_MAX, (err.mean(), err.max())


def test_gate_order_and_biases_follow_pytorch():
    """Non-zero biases, one gate at a time: swapping r and z rows changes the result, and the
    16-bit integer GRU follows torch.nn.GRU for each."""
    torch.manual_seed(1)
    ref = torch.nn.GRU(3, 4, batch_first=True).double()
    with torch.no_grad():
        ref.bias_ih_l0.copy_(torch.linspace(-1, 1, 12))
        ref.bias_hh_l0.copy_(torch.linspace(1, -1, 12))
    x = np.random.default_rng(2).normal(0, 1, size=(2, 10, 3))
    with torch.no_grad():
        y = ref(torch.as_tensor(x))[0].numpy()
    cfg = g.GruConfig(input_size=3, hidden_size=4, bits=16, lut_bits=14)
    q = QuantGRU.from_torch(cfg, ref)
    p = q.export()
    got = g.dequantize(cfg, "state", g.reference(cfg, p, q.quantize_inputs(x)))
    assert np.abs(got - y).max() < TOL16_MAX
    swapped = dict(p, weight_ih=np.concatenate([p["weight_ih"][4:8], p["weight_ih"][:4], p["weight_ih"][8:]]))
    other = g.dequantize(cfg, "state", g.reference(cfg, swapped, q.quantize_inputs(x)))
    assert np.abs(other - y).max() > 10 * TOL16_MAX


# The fake-quantized training module ----------------------------------------------------------------

EXPORT_CASES = ["all8_lut_m1", "all4_lut_m2", "mixed_a_lut_m3", "mixed_b_pwl_last",
                "saturate_lut_m4", "all6_pwl_m5"]


def trained_module(cfg, steps=15, seed=0):
    """A QuantGRU trained a few Adam steps (in float64) to follow a random target sequence."""
    torch.manual_seed(seed)
    q = QuantGRU(cfg).double()
    x = torch.randn(4, 12, cfg.input_size, dtype=torch.float64)
    target = torch.tanh(torch.randn(4, 12, cfg.hidden_size, dtype=torch.float64))
    opt = torch.optim.Adam(q.parameters(), lr=0.02)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((q(x)[0] - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return q, losses


@pytest.mark.parametrize("name", EXPORT_CASES)
def test_trained_module_export_is_bit_exact_with_the_reference(name):
    cfg = reg_cfg(name)
    q, losses = trained_module(cfg)
    assert all(np.isfinite(losses))
    x = np.random.default_rng(3).normal(0, 2, size=(3, 9, cfg.input_size))
    with torch.no_grad():
        states, last = q(torch.as_tensor(x))
    codes = (states.numpy() * 2.0 ** cfg.fmt("state").frac)
    assert (codes == np.round(codes)).all()
    ref = g.reference(cfg, q.export(), q.quantize_inputs(x))
    want = codes.astype(np.int64) if cfg.output == "sequence" else codes[:, -1].astype(np.int64)
    assert (ref == want).all()


def test_training_through_the_straight_through_estimators_lowers_the_loss():
    q, losses = trained_module(reg_cfg("all8_lut_m1"), steps=40)
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in q.parameters())


# Saturation coverage of the directed cases ----------------------------------------------------------

def test_directed_cases_saturate_every_operator():
    hit = {}
    for name in ("saturate_lut_m4", "saturate_add_h_pwl_m1"):
        cfg = reg_cfg(name)
        params, x = g.extreme_case(cfg, np.random.default_rng(11), (3, 10))
        trace = []
        g.reference(cfg, params, x, trace=trace)
        for step in trace:
            for op, count in step["saturated"].items():
                hit[op] = hit.get(op, 0) + count
    missing = [op for op in g.OPERATORS + ("state",) if not hit.get(op)]
    assert not missing, missing


# Streams --------------------------------------------------------------------------------------------

def test_pack_and_flags():
    cfg = g.GruConfig(input_size=2, hidden_size=1, formats={"input": [3, 0]})
    words = g.pack_inputs(cfg, np.array([[[1, -1], [-4, 3]], [[0, 0], [2, -2]]]))
    # x0 | x1 << 3 | reset << 6 | last << 7
    assert words == [1 | 7 << 3 | 1 << 6, 4 | 3 << 3 | 1 << 7, 1 << 6, 2 | 6 << 3 | 1 << 7]
    y = g.unpack_outputs(g.GruConfig(input_size=1, hidden_size=2, formats={"state": [4, 3]}),
                         [0x9F, 0x01], (1, 2))
    assert y.tolist() == [[[-1, -7], [1, 0]]]


# Validation -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, words", [
    ({"formats": {"mm_ir": [8, 9]}}, ["formats.mm_ir", "frac_bits", "<= total_bits (8)", "got 9"]),
    ({"formats": {"state": [0, 0]}}, ["formats.state", "total_bits", "1..32", "got 0"]),
    ({"formats": {"sig_r": [33, 4]}}, ["formats.sig_r", "total_bits", "1..32", "got 33"]),
    ({"formats": {"add_h": [8, 4, "up"]}}, ["formats.add_h", "rounding", "'nearest_even'", "'floor'"]),
    ({"formats": {"mul_x": [8, 4]}}, ["formats", "unknown name 'mul_x'", "mul_zh"]),
    ({"formats": {"bias": [8]}}, ["formats.bias", "[total_bits, frac_bits]"]),
    ({"formats": {"bias": [8, 1.5]}}, ["formats.bias", "frac_bits", "integer"]),
    ({"formats": [8, 4]}, ["formats", "object"]),
    ({"bits": 0}, ["bits", "1..32"]),
    ({"input_size": 0}, ["input_size"]),
    ({"macs": 9}, ["macs", "1..8"]),
    ({"activation": "cordic"}, ["activation", "'lut'", "'pwl'"]),
    ({"sigmoid_range": 6}, ["sigmoid_range", "power of two"]),
    ({"activation": "pwl", "lut_bits": 3, "pwl_segments": 16}, ["pwl_segments", "2..8"]),
    ({"output": "all"}, ["output", "'sequence'", "'last'"]),
])
def test_bad_config_names_the_field(change, words):
    base = {"input_size": 4, "hidden_size": 8}
    with pytest.raises(QhwInputError) as e:
        config_from_dict(g.GruConfig, {**base, **change})
    for w in words:
        assert w in str(e.value), str(e.value)


def test_partial_formats_fill_from_bits():
    cfg = g.GruConfig(input_size=2, hidden_size=3, bits=6, formats={"state": [10, 9, "floor"]})
    assert cfg.fmt("state") == (10, 9, "floor")
    assert cfg.fmt("mm_hn") == (6, 2, "nearest_even")
    assert set(cfg.formats) == set(g.FORMAT_NAMES)
    again = config_from_dict(g.GruConfig, {"input_size": 2, "hidden_size": 3,
                                           "formats": cfg.formats})
    assert again.formats == cfg.formats


def test_bad_params_and_inputs():
    cfg = g.GruConfig(input_size=3, hidden_size=2, bits=4)
    p = g.random_params(cfg, np.random.default_rng(0))
    with pytest.raises(QhwInputError, match=r"weight_hh: shape must be \(6, 2\)"):
        g.check_params(cfg, {**p, "weight_hh": p["weight_hh"][:, :1]})
    with pytest.raises(QhwInputError, match=r"bias_ih: values must be in \[-8, 7\]"):
        g.check_params(cfg, {**p, "bias_ih": p["bias_ih"] + 20})
    with pytest.raises(QhwInputError, match="missing array 'bias_hh'"):
        g.check_params(cfg, {k: v for k, v in p.items() if k != "bias_hh"})
    with pytest.raises(QhwInputError, match="weight_ih: dtype"):
        g.check_params(cfg, {**p, "weight_ih": p["weight_ih"].astype(float)})
    with pytest.raises(QhwInputError, match=r"inputs: shape must be \(T, 3\)"):
        g.check_inputs(cfg, np.zeros((2, 5, 4), dtype=np.int64))
    with pytest.raises(QhwInputError, match=r"inputs: values must be in \[-8, 7\]"):
        g.check_inputs(cfg, np.full((5, 3), 8))
    assert g.check_inputs(cfg, np.zeros((5, 3), dtype=np.int8)).shape == (1, 5, 3)


def test_wide_formats_use_exact_python_integers():
    """32-bit formats overflow int64 in the accumulators: the reference switches to Python
    integers and still agrees with a Fraction evaluation of one matrix product."""
    cfg = g.GruConfig(input_size=3, hidden_size=2, bits=32)
    assert g._exact_dtype(cfg) is object
    rng = np.random.default_rng(5)
    p = g.random_params(cfg, rng)
    x = g.random_inputs(cfg, rng, (1, 2))
    trace = []
    g.reference(cfg, p, x, trace=trace)
    w, xf, b = cfg.fmt("weight"), cfg.fmt("input"), cfg.fmt("bias")
    exact = sum(Fraction(int(p["weight_ih"][0, j])) / 2 ** w.frac * Fraction(int(x[0, 0, j])) /
                2 ** xf.frac for j in range(3)) + Fraction(int(p["bias_ih"][0])) / 2 ** b.frac
    scaled = exact * 2 ** cfg.fmt("mm_ir").frac
    assert trace[0]["mm_ir"][0, 0] == max(-(1 << 31), min((1 << 31) - 1, round(scaled)))
