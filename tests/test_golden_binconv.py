"""The ``binconv`` golden model against oracles written outside this project.

The arithmetic oracle is ``torch.nn.functional.conv2d`` on +-1 float64 tensors: it shares no code
with :func:`qhw.golden.binconv.reference` (no windowing, no XNOR, no popcount). The hardware
layouts are re-derived here from their docstrings, bit by bit, rather than by calling the packing
helpers' own building blocks.
"""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qhw.errors import QhwInputError
from qhw.golden import binconv as bc
from qhw.golden.binconv import BinConvConfig

N_RANDOM_CONFIGS = 200


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run torch single-threaded: these convolutions are tiny, and on a loaded 2-core machine
    intra-op threads made them 10-30x slower. Restored afterwards for other tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_config(rng, output=None):
    """A random valid config: small sizes, even and odd kernels, 1-D (height 1) shapes."""
    while True:
        c_in, c_out = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        if rng.random() < 0.25:
            # 1-D convolution along the width (a 1 x k kernel over a height-1 map).
            kernel, height = (1, int(rng.integers(1, 5))), 1
        else:
            kernel, height = (int(rng.integers(1, 5)), int(rng.integers(1, 5))), int(rng.integers(1, 11))
        width = int(rng.integers(1, 11))
        padding = str(rng.choice(["valid", "same"]))
        if padding == "valid" and (kernel[0] > height or kernel[1] > width):
            continue
        k = c_in * kernel[0] * kernel[1]
        return BinConvConfig(
            c_in=c_in, c_out=c_out, height=height, width=width, kernel=kernel, padding=padding,
            pad_bit=int(rng.integers(0, 2)), pe=int(rng.choice(divisors(c_out))),
            simd=int(rng.choice(divisors(k))),
            output=output or str(rng.choice(["popcount", "threshold"])),
            counter=str(rng.choice(["fa", "gpc63"])))


def oracle_pads(kernel):
    """PyTorch's 'same' split, (left, right, top, bottom) as F.pad takes it: (k-1)//2 before."""
    kh, kw = kernel
    return ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2, kh - 1 - (kh - 1) // 2)


def torch_dot(cfg, weights, x):
    """Oracle dot products (N, H_out, W_out, C_out) from F.conv2d on +-1 float64 tensors.

    The padding is applied with F.pad(value=+-1) because conv2d itself can only pad with zeros;
    the split (k-1)//2 before, the rest after, is PyTorch's own rule for padding='same'
    (checked against conv2d(padding='same') in a test below).
    """
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64) * 2 - 1).permute(0, 3, 1, 2)
    wt = torch.from_numpy(np.asarray(weights, dtype=np.float64) * 2 - 1)
    if cfg.padding == "same":
        xt = F.pad(xt, oracle_pads(cfg.kernel), value=2.0 * cfg.pad_bit - 1)
    d = F.conv2d(xt, wt).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(d, np.rint(d))
    return d.astype(np.int64)


def threshold_oracle(d, thresholds, directions):
    """Float/int oracle of threshold mode: d >= t (direction +1) or d <= t (direction -1)."""
    t = np.asarray(thresholds)[None, None, None, :]
    up = np.asarray(directions)[None, None, None, :] > 0
    return np.where(up, d >= t, d <= t).astype(np.uint8)


def wide_thresholds(rng, cfg):
    """Thresholds over [-K-3, K+3]: both parities, the clamp region beyond +-K, and the exact
    edges -K-1, -K, K, K+1 forced into the mix when there are enough channels."""
    k = cfg.k
    t = rng.integers(-k - 3, k + 4, size=cfg.c_out)
    edges = np.array([-k - 1, -k, k, k + 1])
    m = min(cfg.c_out // 2, len(edges))
    t[:m] = rng.permutation(edges)[:m]
    return rng.permutation(t).astype(np.int64)


# Arithmetic against conv2d --------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_same_padding_split_matches_torch():
    # The oracle pads explicitly (conv2d cannot pad with +-1); its split must be PyTorch's own
    # 'same' rule, where even kernels put the extra row/column after. conv2d(padding='same')
    # only zero-pads, so compare the split on real-valued data with zero padding.
    rng = np.random.default_rng(1)
    for kh, kw in [(1, 1), (2, 2), (3, 4), (4, 1), (1, 4), (4, 3)]:
        x = torch.from_numpy(rng.standard_normal((1, 2, 6, 7)))
        w = torch.from_numpy(rng.standard_normal((3, 2, kh, kw)))
        ours = F.conv2d(F.pad(x, oracle_pads((kh, kw))), w)
        theirs = F.conv2d(x, w, padding="same")
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
        cfg = BinConvConfig(c_in=2, c_out=3, height=6, width=7, kernel=(kh, kw), padding="same")
        top, bottom, left, right = cfg.pads
        assert (left, right, top, bottom) == oracle_pads((kh, kw))


def test_reference_popcount_matches_conv2d_random_configs():
    rng = np.random.default_rng(20240611)
    seen = set()
    for _ in range(N_RANDOM_CONFIGS):
        cfg = dataclasses.replace(random_config(rng), output="popcount")
        params = bc.random_params(cfg, rng)
        x = bc.random_inputs(cfg, rng, frames=int(rng.integers(1, 4)))
        got = bc.reference(cfg, params, x)
        want = torch_dot(cfg, params["weights"], x)
        assert got.dtype == np.int32
        assert got.shape == cfg.output_shape(x.shape[0]) == want.shape, cfg
        assert np.array_equal(got, want), cfg
        assert np.abs(got).max() <= cfg.k
        seen.add((cfg.padding, cfg.pad_bit, cfg.kernel[0] % 2, cfg.kernel[1] % 2, cfg.height == 1))
    # The random draw really covered both paddings, both pad bits, even/odd kernels and 1-D.
    assert len(seen) >= 20


def test_reference_threshold_matches_oracle_random_configs():
    rng = np.random.default_rng(777)
    for _ in range(N_RANDOM_CONFIGS):
        cfg = random_config(rng, output="threshold")
        params = bc.random_params(cfg, rng)
        params["thresholds"] = wide_thresholds(rng, cfg)
        x = bc.random_inputs(cfg, rng, frames=int(rng.integers(1, 3)))
        got = bc.reference(cfg, params, x)
        d = torch_dot(cfg, params["weights"], x)
        assert got.dtype == np.uint8
        assert np.array_equal(got, threshold_oracle(d, params["thresholds"], params["directions"])), cfg


def test_reference_single_frame_and_bool_inputs():
    rng = np.random.default_rng(5)
    cfg = BinConvConfig(c_in=3, c_out=4, height=5, width=6, kernel=(2, 3), padding="same", pad_bit=1)
    params = bc.random_params(cfg, rng)
    x = bc.random_inputs(cfg, rng, frames=1)
    ref = bc.reference(cfg, params, x)
    assert np.array_equal(bc.reference(cfg, params, x[0]), ref)
    assert np.array_equal(bc.reference(cfg, params, x.astype(bool)), ref)
    params_bool = dict(params, weights=params["weights"].astype(bool))
    assert np.array_equal(bc.reference(cfg, params_bool, x), ref)


def test_pad_bit_matters_only_at_the_border():
    # All-ones inputs and weights: interior outputs are K; a border output loses 2 per padded
    # position with pad_bit 0 and nothing with pad_bit 1.
    for pad_bit in (0, 1):
        cfg = BinConvConfig(c_in=2, c_out=1, height=4, width=5, kernel=(3, 3), padding="same",
                            pad_bit=pad_bit)
        params = {"weights": np.ones((1, 2, 3, 3), np.uint8)}
        d = bc.reference(cfg, params, np.ones(cfg.input_shape(), np.uint8))[0, :, :, 0]
        assert d[1:-1, 1:-1].tolist() == [[18] * 3] * 2
        corner = 18 if pad_bit else 18 - 2 * 2 * 5  # 5 of 9 window positions padded, 2 channels
        assert d[0, 0] == corner


# popcount_thresholds: exhaustive for small K -----------------------------------------------------

@pytest.mark.parametrize("k", range(1, 13))
def test_popcount_thresholds_exhaustive(k):
    cfg = BinConvConfig(c_in=k, c_out=1, height=1, width=1, kernel=(1, 1), output="threshold")
    for direction in (1, -1):
        for t in range(-k - 4, k + 5):
            params = {"thresholds": np.array([t]), "directions": np.array([direction])}
            tp, ge = bc.popcount_thresholds(cfg, params)
            tp, ge = int(tp[0]), int(ge[0])
            assert 0 <= tp <= k + 1 and tp < 1 << cfg.threshold_bits
            assert ge == (1 if direction > 0 else 0)
            for p in range(k + 1):
                d = 2 * p - k
                want = d >= t if direction > 0 else d <= t
                assert ((p >= tp) == bool(ge)) == want, (k, t, direction, p)


@pytest.mark.parametrize("thresholds", [
    np.array([np.iinfo(np.int64).max, 0]),
    np.array([2**63, 0], dtype=np.uint64),
], ids=["int64-max", "uint64-2^63"])
def test_huge_thresholds_clamp(thresholds):
    # d = 2 everywhere; "d >= huge" must be 0 however large the threshold.
    cfg = BinConvConfig(c_in=2, c_out=2, height=1, width=1, kernel=(1, 1), output="threshold")
    params = {"weights": np.ones((2, 2, 1, 1), np.uint8), "thresholds": thresholds,
              "directions": np.array([1, 1])}
    assert bc.reference(cfg, params, np.ones((1, 1, 2), np.uint8)).ravel().tolist() == [0, 1]


# Validation ------------------------------------------------------------------------------------

THR_CFG = BinConvConfig(c_in=2, c_out=3, height=4, width=4, kernel=(2, 2), output="threshold")


def good_params(cfg=THR_CFG):
    return bc.random_params(cfg, np.random.default_rng(0))


def _replace(field, value):
    p = good_params()
    p[field] = value
    return p


@pytest.mark.parametrize("params, field", [
    (_replace("weights", np.zeros((3, 2, 2), np.uint8)), "weights"),
    (_replace("weights", np.zeros((3, 2, 2, 3), np.uint8)), "weights"),
    (_replace("weights", np.full((3, 2, 2, 2), 2, np.uint8)), "weights"),
    (_replace("weights", -np.ones((3, 2, 2, 2), np.int8)), "weights"),
    (_replace("weights", np.ones((3, 2, 2, 2), np.float32)), "weights"),
    (_replace("thresholds", np.zeros(4, np.int64)), "thresholds"),
    (_replace("thresholds", np.zeros((3, 1), np.int64)), "thresholds"),
    (_replace("thresholds", np.zeros(3, np.float64)), "thresholds"),
    (_replace("directions", np.array([1, 0, -1])), "directions"),
    (_replace("directions", np.array([1, 2, -1])), "directions"),
    (_replace("directions", np.array([1.0, 1.0, -1.0])), "directions"),
    (_replace("directions", np.ones(2, np.int64)), "directions"),
    (dict(good_params(), bias=np.zeros(3)), "bias"),
    ({k: v for k, v in good_params().items() if k != "thresholds"}, "thresholds"),
    ({k: v for k, v in good_params().items() if k != "directions"}, "directions"),
    ({k: v for k, v in good_params().items() if k != "weights"}, "weights"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_check_params_rejects(params, field):
    with pytest.raises(QhwInputError) as err:
        bc.check_params(THR_CFG, params)
    assert field in str(err.value)


def test_check_params_popcount_rejects_threshold_arrays():
    cfg = dataclasses.replace(THR_CFG, output="popcount")
    # Both extra arrays are unknown; the message names the first in sorted order.
    with pytest.raises(QhwInputError, match="unknown array 'directions'"):
        bc.check_params(cfg, good_params())


def test_check_params_normalises():
    p = good_params()
    p["weights"] = p["weights"].astype(bool)
    p["thresholds"] = p["thresholds"].astype(np.int16)
    out = bc.check_params(THR_CFG, p)
    assert out["weights"].dtype == np.uint8 and out["thresholds"].dtype == np.int64


@pytest.mark.parametrize("x", [
    np.zeros((4, 4), np.uint8),
    np.zeros((4, 4, 3), np.uint8),
    np.zeros((4, 5, 2), np.uint8),
    np.zeros((0, 4, 4, 2), np.uint8),
    np.zeros((1, 1, 4, 4, 2), np.uint8),
    np.full((4, 4, 2), 2, np.uint8),
    -np.ones((4, 4, 2), np.int64),
    np.zeros((4, 4, 2), np.float64),
], ids=["2d", "channels", "width", "no-frames", "5d", "two", "minus-one", "float"])
def test_check_inputs_rejects(x):
    with pytest.raises(QhwInputError, match="^inputs"):
        bc.check_inputs(THR_CFG, x)


BASE = dict(c_in=2, c_out=4, height=5, width=6, kernel=(3, 3))


@pytest.mark.parametrize("change, field", [
    (dict(pe=3), "pe"),
    (dict(pe=0), "pe"),
    (dict(simd=4), "simd"),  # K = 18
    (dict(simd=0), "simd"),
    (dict(c_in=0), "c_in"),
    (dict(c_out=0), "c_out"),
    (dict(height=0), "height"),
    (dict(width=-1), "width"),
    (dict(c_in=2.0), "c_in"),
    (dict(kernel=(0, 3)), "kernel"),
    (dict(kernel=(3,)), "kernel"),
    (dict(kernel=[3, 3]), "kernel"),
    (dict(padding="full"), "padding"),
    (dict(pad_bit=2), "pad_bit"),
    (dict(output="relu"), "output"),
    (dict(counter="wallace"), "counter"),
    (dict(kernel=(6, 3)), "kernel"),  # taller than the input with 'valid' padding
    (dict(kernel=(3, 7)), "kernel"),  # wider than the input
], ids=lambda v: v if isinstance(v, str) else None)
def test_config_rejects(change, field):
    with pytest.raises(QhwInputError) as err:
        BinConvConfig(**dict(BASE, **change))
    assert str(err.value).startswith(field + ":"), str(err.value)


def test_config_accepts_large_kernel_with_same_padding():
    cfg = BinConvConfig(**dict(BASE, kernel=(7, 8), padding="same"))
    assert (cfg.out_height, cfg.out_width) == (5, 6)
    assert cfg.pads == (3, 3, 3, 4)


def test_config_sizes():
    cfg = BinConvConfig(**dict(BASE, pe=2, simd=6))
    assert cfg.k == 18 and cfg.neuron_fold == 2 and cfg.synapse_fold == 3
    assert (cfg.out_height, cfg.out_width) == (3, 4)
    # dot products in [-18, 18] need a signed 6-bit field; popcounts 0..18 five bits.
    assert cfg.dot_bits == 6 and cfg.popcount_bits == 5 and cfg.threshold_bits == 5


# Hardware layouts, re-derived from the docstrings ------------------------------------------------

def window_index(cfg, j):
    """Window position j -> (ci, ky, kx), from the documented order j = (ky*kw + kx)*C_in + ci."""
    kw = cfg.kernel[1]
    ci, rest = j % cfg.c_in, j // cfg.c_in
    return ci, rest // kw, rest % kw


def layout_configs():
    rng = np.random.default_rng(99)
    return [(i, random_config(rng, output="threshold")) for i in range(30)]


@pytest.mark.parametrize("seed, cfg", layout_configs())
def test_weight_memory_layout(seed, cfg):
    rng = np.random.default_rng(seed)
    params = bc.random_params(cfg, rng)
    w = params["weights"]
    words = bc.weight_memory(cfg, params)
    sf_count = cfg.k // cfg.simd
    assert len(words) == (cfg.c_out // cfg.pe) * sf_count
    for i, word in enumerate(words):
        assert 0 <= word < 1 << (cfg.pe * cfg.simd)
        nf, sf = divmod(i, sf_count)
        for bit in range(cfg.pe * cfg.simd):
            p, s = divmod(bit, cfg.simd)
            ci, ky, kx = window_index(cfg, sf * cfg.simd + s)
            assert (word >> bit) & 1 == w[nf * cfg.pe + p, ci, ky, kx]


def test_window_order_matches_reference():
    # One-hot weights pick single window positions: with the documented window order, output
    # channel j must read input pixel (y+ky, x+kx) channel ci.
    rng = np.random.default_rng(3)
    cfg = BinConvConfig(c_in=2, c_out=12, height=4, width=5, kernel=(2, 3), output="popcount")
    x = bc.random_inputs(cfg, rng, frames=2)
    w = np.zeros((12, 2, 2, 3), np.uint8)
    for j in range(12):
        ci, ky, kx = window_index(cfg, j)
        w[j, ci, ky, kx] = 1
    d = bc.reference(cfg, {"weights": w}, x)
    for j in range(12):
        ci, ky, kx = window_index(cfg, j)
        picked = x[:, ky:ky + cfg.out_height, kx:kx + cfg.out_width, ci].astype(np.int64)
        # All weights -1 except one: d = sum over K of -x + 2*x_picked (in +-1 terms).
        xs = 2 * x.astype(np.int64) - 1
        total = np.lib.stride_tricks.sliding_window_view(xs, (2, 3), axis=(1, 2)).sum(axis=(3, 4, 5))
        assert np.array_equal(d[..., j], -total + 2 * (2 * picked - 1))


@pytest.mark.parametrize("seed, cfg", layout_configs())
def test_threshold_memory_layout(seed, cfg):
    rng = np.random.default_rng(seed)
    params = bc.random_params(cfg, rng)
    params["thresholds"] = wide_thresholds(rng, cfg)
    words = bc.threshold_memory(cfg, params)
    tb = cfg.threshold_bits
    lane = tb + 1
    assert len(words) == cfg.c_out // cfg.pe
    for nf, word in enumerate(words):
        assert 0 <= word < 1 << (cfg.pe * lane)
        for p in range(cfg.pe):
            c = nf * cfg.pe + p
            field = word >> (p * lane)
            tp, ge = field & ((1 << tb) - 1), (field >> tb) & 1
            # The decoded (T, ge) must implement the channel's dot-product rule for every P.
            t, up = params["thresholds"][c], params["directions"][c] > 0
            for pc in range(cfg.k + 1):
                d = 2 * pc - cfg.k
                assert ((pc >= tp) == bool(ge)) == (d >= t if up else d <= t)


@pytest.mark.parametrize("seed, cfg", layout_configs()[:10])
def test_pack_inputs_layout(seed, cfg):
    rng = np.random.default_rng(seed)
    x = bc.random_inputs(cfg, rng, frames=2)
    words = bc.pack_inputs(cfg, x)
    assert len(words) == 2 * cfg.height * cfg.width
    for i, word in enumerate(words):
        n, rest = divmod(i, cfg.height * cfg.width)
        h, w = divmod(rest, cfg.width)
        assert 0 <= word < 1 << cfg.c_in
        assert [(word >> c) & 1 for c in range(cfg.c_in)] == x[n, h, w].tolist()
    assert bc.pack_inputs(cfg, x[0]) == words[:cfg.height * cfg.width]


@pytest.mark.parametrize("output", ["popcount", "threshold"])
def test_unpack_outputs_layout(output):
    rng = np.random.default_rng(11)
    for _ in range(20):
        cfg = random_config(rng, output=output)
        frames = int(rng.integers(1, 3))
        shape = cfg.output_shape(frames)
        if output == "popcount":
            vals = rng.integers(-cfg.k, cfg.k + 1, size=shape)
            vals.flat[:2] = [-cfg.k, cfg.k][:vals.size]  # the extremes of the field
            n = cfg.dot_bits
        else:
            vals = rng.integers(0, 2, size=shape)
            n = 1
        # Encode independently: one word per output pixel, row-major, channel c in bits
        # [c*n, (c+1)*n) as an n-bit two's-complement field.
        words = []
        for pix in vals.reshape(-1, cfg.c_out):
            word = 0
            for c, v in enumerate(pix):
                word |= (int(v) % (1 << n)) << (c * n)
            words.append(word)
        got = bc.unpack_outputs(cfg, words, frames)
        assert got.shape == shape
        assert got.dtype == (np.int32 if output == "popcount" else np.uint8)
        assert np.array_equal(got, vals)

