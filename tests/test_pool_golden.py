"""The ``maxpool`` / ``globalpool`` golden models against PyTorch, an oracle written outside this
project: ``torch.nn.functional.max_pool2d`` (stride = kernel, floor mode, float64 on
integer-valued NCHW tensors: exact, every value is below 2**53) and ``torch.amax``,
``torch.sum`` and ``torch.div(..., rounding_mode='floor')`` on int64. Also: the hardware's
division by a constant, the widths, config and input validation, and the stream layouts decoded
bit by bit from the docstrings.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qhw.errors import QhwInputError
from qhw.golden import pool as gp
from qhw.golden.pool import GlobalPoolConfig, MaxPoolConfig

N_RANDOM_CONFIGS = 100


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def int_range(bits, signed):
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def random_elements(rng):
    bits = int(rng.choice([1, 1, 2, 3, 4, 5, 8, 8, 12, 16, 31, 32]))
    return bits, bool(bits > 1 and rng.random() < 0.6)


def our_inputs(rng, shape, bits, signed):
    """Values drawn here: uniform, all one extreme, or only the two extremes."""
    lo, hi = int_range(bits, signed)
    kind = rng.random()
    if kind < 0.1:
        return np.full(shape, lo if rng.random() < 0.5 else hi, dtype=np.int64)
    if kind < 0.3:
        return rng.choice(np.array([lo, hi], dtype=np.int64), size=shape)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def random_maxpool(rng):
    bits, signed = random_elements(rng)
    if rng.random() < 0.25:  # 1-D: height 1, kernel (1, k)
        height, kernel = 1, (1, int(rng.integers(1, 5)))
        width = int(rng.integers(kernel[1], 13))
    else:
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        height, width = int(rng.integers(kernel[0], 10)), int(rng.integers(kernel[1], 10))
    return MaxPoolConfig(c_in=int(rng.integers(1, 6)), height=height, width=width, kernel=kernel,
                         element_bits=bits, signed=signed)


def random_globalpool(rng):
    bits, signed = random_elements(rng)
    return GlobalPoolConfig(c_in=int(rng.integers(1, 6)), height=int(rng.integers(1, 8)),
                            width=int(rng.integers(1, 10)), element_bits=bits, signed=signed,
                            mode=str(rng.choice(["max", "sum", "avg"])))


def oracle_maxpool(cfg, x):
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)
    y = F.max_pool2d(xt, kernel_size=cfg.kernel, stride=cfg.kernel, padding=0, ceil_mode=False)
    return y.permute(0, 2, 3, 1).numpy().astype(np.int64)


def oracle_globalpool(cfg, x):
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # int64 NCHW
    if cfg.mode == "max":
        y = torch.amax(xt, dim=(2, 3), keepdim=True)
    else:
        y = torch.sum(xt, dim=(2, 3), keepdim=True)
        if cfg.mode == "avg":
            y = torch.div(y, cfg.height * cfg.width, rounding_mode="floor")
    return y.permute(0, 2, 3, 1).numpy()


def test_maxpool_matches_torch_random_configs():
    rng = np.random.default_rng(20251202)
    seen = set()
    for _ in range(N_RANDOM_CONFIGS):
        cfg = random_maxpool(rng)
        frames = int(rng.integers(1, 3))
        x = our_inputs(rng, cfg.input_shape(frames), cfg.element_bits, cfg.signed)
        got = gp.reference(cfg, {}, x)
        want = oracle_maxpool(cfg, x)
        assert got.dtype == np.int64 and got.shape == cfg.output_shape(frames) == want.shape, cfg
        assert np.array_equal(got, want), cfg
        seen.add((cfg.element_bits == 1, cfg.signed, cfg.height % cfg.kernel[0] != 0,
                  cfg.width % cfg.kernel[1] != 0))
        seen.add(("1d", cfg.height == 1))
    assert len(seen) >= 10  # 1-bit, unsigned, signed; floored and exact rows and columns; 1-D


def test_globalpool_matches_torch_random_configs():
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(N_RANDOM_CONFIGS):
        cfg = random_globalpool(rng)
        frames = int(rng.integers(1, 4))
        x = our_inputs(rng, cfg.input_shape(frames), cfg.element_bits, cfg.signed)
        got = gp.reference(cfg, {}, x)
        want = oracle_globalpool(cfg, x)
        assert got.dtype == np.int64 and got.shape == (frames, 1, 1, cfg.c_in) == want.shape
        assert np.array_equal(got, want), cfg
        lo, hi = int_range(gp.out_element_bits(cfg), gp.out_signed(cfg))
        assert lo <= got.min() and got.max() <= hi, cfg
        seen.add((cfg.mode, cfg.element_bits == 1, cfg.signed))
    assert len(seen) >= 8


def test_one_bit_maps_are_or_and_count():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(3, 6, 4, 5))
    x[0] = 0
    mp = MaxPoolConfig(c_in=5, height=6, width=4, kernel=(3, 2))
    win = x.reshape(3, 2, 3, 2, 2, 5)
    assert np.array_equal(gp.reference(mp, {}, x), np.any(win, axis=(2, 4)).astype(np.int64))
    g_or = GlobalPoolConfig(c_in=5, height=6, width=4, mode="max")
    assert np.array_equal(gp.reference(g_or, {}, x)[:, 0, 0], x.any(axis=(1, 2)))
    g_count = GlobalPoolConfig(c_in=5, height=6, width=4, mode="sum")
    assert np.array_equal(gp.reference(g_count, {}, x)[:, 0, 0], x.sum(axis=(1, 2)))
    assert gp.out_element_bits(g_count) == 1 + 5  # 24 positions: ceil(log2 24) = 5


def test_signed_extremes_and_floor_of_negative_averages():
    lo, hi = int_range(8, True)
    cfg = GlobalPoolConfig(c_in=3, height=2, width=2, element_bits=8, signed=True, mode="avg")
    x = np.array([[lo, hi, -1], [lo, hi, -1], [lo, hi, -1], [lo, hi, -2]]).reshape(2, 2, 3)
    assert gp.reference(cfg, {}, x).ravel().tolist() == [lo, hi, -2]  # -5/4 -> -2, not -1
    s = GlobalPoolConfig(c_in=3, height=2, width=2, element_bits=8, signed=True, mode="sum")
    assert gp.reference(s, {}, x).ravel().tolist() == [4 * lo, 4 * hi, -5]
    assert gp.out_element_bits(s) == 10  # -512 needs exactly 10 bits
    m = MaxPoolConfig(c_in=3, height=2, width=2, element_bits=8, signed=True)
    assert gp.reference(m, {}, x).ravel().tolist() == [lo, hi, -1]


def test_dnsmos_pool_floors_225_rows_to_112():
    cfg = MaxPoolConfig(c_in=2, height=225, width=9, kernel=(2, 2))
    assert (cfg.out_height, cfg.out_width) == (112, 4)
    x = np.zeros(cfg.input_shape(1), np.int64)
    x[0, 224, :, :] = 1  # the dropped last row
    x[0, :, 8, :] = 1    # the dropped last column
    assert gp.reference(cfg, {}, x).sum() == 0


# Widths and the hardware's division ----------------------------------------------------------

@pytest.mark.parametrize("bits, signed, hw", [(1, False, 1), (1, False, 16), (1, False, 17),
                                              (8, True, 15), (8, True, 16), (8, False, 16),
                                              (32, True, 4096), (32, False, 1)])
def test_sum_width_holds_the_extreme_sums(bits, signed, hw):
    cfg = GlobalPoolConfig(c_in=1, height=1, width=hw, element_bits=bits, signed=signed,
                           mode="sum")
    c = (hw - 1).bit_length()
    assert gp.out_element_bits(cfg) == bits + c and gp.out_signed(cfg) == signed
    lo, hi = int_range(bits, signed)
    olo, ohi = int_range(bits + c, signed)
    assert olo <= lo * hw and hi * hw <= ohi
    if hw & (hw - 1) == 0 and hw > 1:  # a power of two: one bit fewer would overflow
        nlo, nhi = int_range(bits + c - 1, signed)
        assert lo * hw < nlo or hi * hw > nhi


def _avg_configs():
    rng = np.random.default_rng(11)
    cfgs = [GlobalPoolConfig(c_in=1, height=int(rng.integers(1, 12)),
                             width=int(rng.integers(1, 12)), element_bits=int(b), signed=False,
                             mode="avg") for b in rng.integers(1, 9, size=40)]
    cfgs += [GlobalPoolConfig(c_in=1, height=h, width=w, element_bits=32, mode="avg")
             for h, w in [(225, 1), (7, 13), (64, 64), (1, 3)]]
    return cfgs


def test_reciprocal_division_is_exact_over_the_sum_range():
    rng = np.random.default_rng(5)
    for cfg in _avg_configs():
        mult, shift = gp.avg_reciprocal(cfg)
        d, top = cfg.positions, 1 << gp.sum_bits(cfg)
        if top <= 1 << 16:
            us = range(top)
        else:  # the ends, multiples of d and their neighbours, random values
            q = [int(v) for v in rng.integers(0, top // d, size=2000)]
            us = sorted({0, 1, top - 1, top - 2} | {v * d + o for v in q for o in (-1, 0, d - 1)
                                                    if 0 <= v * d + o < top}
                        | {int(v) for v in rng.integers(0, top, size=2000)})
        for u in us:
            assert (u * mult) >> shift == u // d, (cfg, u)


def test_signed_average_through_the_offset_binary_sum():
    """The hardware's signed avg: flip sign bits, average unsigned, flip the result's sign bit."""
    rng = np.random.default_rng(6)
    for bits, hw in [(2, 3), (4, 5), (8, 15), (8, 16), (16, 7)]:
        cfg = GlobalPoolConfig(c_in=1, height=1, width=hw, element_bits=bits, signed=True,
                               mode="avg")
        mult, shift = gp.avg_reciprocal(cfg)
        lo, hi = int_range(bits, True)
        for _ in range(300):
            x = our_inputs(rng, (hw,), bits, True)
            u = int(sum((int(v) & ((1 << bits) - 1)) ^ (1 << (bits - 1)) for v in x))
            q = ((u * mult) >> shift) ^ (1 << (bits - 1))
            q = q - (1 << bits) if q >> (bits - 1) else q
            assert q == int(torch.div(torch.tensor(int(x.sum())), hw, rounding_mode="floor"))


# The interface the network composer uses ---------------------------------------------------

def test_shapes_and_widths_interface():
    m = MaxPoolConfig(c_in=3, height=5, width=7, kernel=(2, 2), element_bits=8, signed=True)
    assert m.input_shape() == (5, 7, 3) and m.input_shape(4) == (4, 5, 7, 3)
    assert m.output_shape() == (2, 3, 3) and m.output_shape(2) == (2, 2, 3, 3)
    assert (m.out_height, m.out_width, m.c_out) == (2, 3, 3)
    assert gp.out_element_bits(m) == 8 and gp.out_signed(m) is True
    assert MaxPoolConfig(c_in=1, height=2, width=2).kernel == (2, 2)
    g = GlobalPoolConfig(c_in=4, height=3, width=5, element_bits=6, signed=True, mode="avg")
    assert g.output_shape() == (1, 1, 4) and g.output_shape(3) == (3, 1, 1, 4)
    assert (g.out_height, g.out_width, g.c_out) == (1, 1, 4)
    assert gp.out_element_bits(g) == 6 and gp.out_signed(g) is True
    assert gp.out_element_bits(GlobalPoolConfig(c_in=4, height=3, width=5, element_bits=6,
                                                mode="sum")) == 10


# Validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    (dict(kernel=(6, 2)), ["kernel", "6x2", "5x7"]),
    (dict(kernel=(2, 8)), ["kernel", "2x8", "5x7"]),
    (dict(kernel=(0, 2)), ["kernel"]),
    (dict(kernel=(2,)), ["kernel"]),
    (dict(signed=True), ["signed", "element_bits is 1"]),
    (dict(signed=1, element_bits=4), ["signed", "true or false"]),
    (dict(element_bits=0), ["element_bits", "1..32"]),
    (dict(element_bits=33), ["element_bits", "1..32"]),
    (dict(c_in=0), ["c_in"]),
    (dict(height=0), ["height"]),
])
def test_bad_maxpool_configs(kwargs, words):
    with pytest.raises(QhwInputError) as e:
        MaxPoolConfig(**{**dict(c_in=2, height=5, width=7), **kwargs})
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("kwargs, field", [
    (dict(mode="mean"), "mode"), (dict(signed=True), "signed"), (dict(element_bits=40),
                                                                 "element_bits"),
    (dict(width=0), "width"), (dict(height=1 << 16, width=1 << 16, element_bits=32), "height"),
])
def test_bad_globalpool_configs(kwargs, field):
    with pytest.raises(QhwInputError, match=field):
        GlobalPoolConfig(**{**dict(c_in=2, height=3, width=3), **kwargs})


@pytest.mark.parametrize("cfg", [MaxPoolConfig(c_in=2, height=2, width=2),
                                 GlobalPoolConfig(c_in=2, height=2, width=2)])
def test_no_weights(cfg):
    assert gp.check_params(cfg, {}) == {} and gp.random_params(cfg, None) == {}
    with pytest.raises(QhwInputError, match="'weights'.*no weights"):
        gp.check_params(cfg, {"weights": np.zeros(2)})
    with pytest.raises(QhwInputError, match="no weights"):
        gp.reference(cfg, {"bias": np.zeros(2)}, np.zeros((2, 2, 2), np.int64))


S8 = MaxPoolConfig(c_in=2, height=4, width=4, element_bits=8, signed=True)


@pytest.mark.parametrize("x, words", [
    (np.full((4, 4, 2), 128), ["activations", "[-128, 127]"]),
    (np.full((4, 4, 2), -129), ["activations", "[-128, 127]"]),
    (np.zeros((4, 4, 2), np.float32), ["activations", "dtype"]),
    (np.zeros((4, 4, 3), np.int64), ["activations", "shape"]),
    (np.zeros((0, 4, 4, 2), np.int64), ["activations", "shape"]),
    ({"activations": np.zeros((4, 4, 2), np.int64), "gates": np.zeros(1)}, ["gates"]),
    ({"x": np.zeros((4, 4, 2), np.int64)}, ["x"]),
])
def test_bad_inputs(x, words):
    with pytest.raises(QhwInputError) as e:
        gp.reference(S8, {}, x)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_unsigned_and_bit_ranges():
    u = MaxPoolConfig(c_in=1, height=2, width=2, element_bits=4)
    gp.check_inputs(u, np.full((2, 2, 1), 15))
    for v in (-1, 16):
        with pytest.raises(QhwInputError, match=r"\[0, 15\]"):
            gp.check_inputs(u, np.full((2, 2, 1), v))
    b = MaxPoolConfig(c_in=1, height=2, width=2)
    assert gp.check_inputs(b, np.ones((2, 2, 1), bool)).dtype == np.int64
    with pytest.raises(QhwInputError, match="bits"):
        gp.check_inputs(b, np.full((2, 2, 1), 2))
    assert gp.check_inputs(b, {"activations": np.ones((2, 2, 1), np.int64)}).shape == (1, 2, 2, 1)


# Stream layouts ---------------------------------------------------------------------------------

def field(word, index, bits, signed):
    v = (word >> (index * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


@pytest.mark.parametrize("cfg", [S8, MaxPoolConfig(c_in=5, height=3, width=4, kernel=(1, 2)),
                                 GlobalPoolConfig(c_in=3, height=2, width=3, element_bits=5,
                                                  signed=True, mode="sum"),
                                 GlobalPoolConfig(c_in=2, height=2, width=2, element_bits=32,
                                                  mode="avg")],
                         ids=["maxpool_s8", "maxpool_bits", "global_sum_s5", "global_avg_u32"])
def test_pack_and_unpack_layouts(cfg):
    rng = np.random.default_rng(8)
    x = gp.random_inputs(cfg, rng, 2)
    words = gp.pack_inputs(cfg, x)["i"]
    e = cfg.element_bits
    assert len(words) == 2 * cfg.height * cfg.width
    for i, (n, h, w) in enumerate(np.ndindex(x.shape[:3])):
        assert 0 <= words[i] < 1 << (cfg.c_in * e)
        for c in range(cfg.c_in):
            assert field(words[i], c, e, cfg.signed) == x[n, h, w, c]
    y = gp.reference(cfg, {}, x)
    b = gp.out_element_bits(cfg)
    out = [sum((int(v) & ((1 << b) - 1)) << (c * b) for c, v in enumerate(row))
           for row in y.reshape(-1, cfg.c_out)]
    assert gp.output_words(cfg, 2) == {"o": len(out)}
    got = gp.unpack_outputs(cfg, {"o": out}, 2)
    assert got.dtype == np.int64 and np.array_equal(got, y)
    with pytest.raises(ValueError):
        gp.unpack_outputs(cfg, {"o": out[:-1]}, 2)


def test_random_inputs_are_valid_and_reach_the_extremes():
    cfg = GlobalPoolConfig(c_in=4, height=4, width=4, element_bits=8, signed=True)
    x = gp.random_inputs(cfg, np.random.default_rng(1), 3)
    assert gp.check_inputs(cfg, x).shape == (3, 4, 4, 4)
    assert x.min() == -128 and x.max() == 127
