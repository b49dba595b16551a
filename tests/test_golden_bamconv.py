"""The ``bamconv`` / ``macconv`` golden models against oracles written outside this project.

The arithmetic oracle is ``torch.nn.functional.conv2d`` in float64 on integer-valued tensors (exact:
every sum here stays far below 2**53). It shares no code with :func:`qhw.golden.bamconv.reference`
(no window extraction, no window order, no matmul). 'same' padding is applied with ``F.pad``
explicitly, (k-1)//2 before and the rest after, which is PyTorch's own split (checked against
``conv2d(padding='same')`` below). Gating is applied in the oracle from the gates' meaning.
The hardware layouts are decoded here bit by bit from their docstrings.
"""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qhw.errors import QhwInputError
from qhw.golden import bamconv as bm
from qhw.golden.bamconv import BamConvConfig, MacConvConfig

N_RANDOM_CONFIGS = 150


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny convolutions on a shared 2-core machine: intra-op threads only slow them down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_geometry(rng):
    """c_in, c_out, height, width, kernel, padding: even/odd kernels, 1 x k kernels, 1-D maps."""
    while True:
        c_in, c_out = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        if rng.random() < 0.25:
            kernel, height = (1, int(rng.integers(1, 5))), int(rng.integers(1, 3))
        else:
            kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
            height = int(rng.integers(1, 9))
        width = int(rng.integers(1, 9))
        padding = str(rng.choice(["valid", "same"]))
        if padding == "valid" and (kernel[0] > height or kernel[1] > width):
            continue
        k = c_in * kernel[0] * kernel[1]
        return dict(c_in=c_in, c_out=c_out, height=height, width=width, kernel=kernel,
                     padding=padding, pe=int(rng.choice(divisors(c_out))),
                     simd=int(rng.choice(divisors(k))))


def random_bam_config(rng, output=None, gating=None):
    return BamConvConfig(**random_geometry(rng), weight_bits=int(rng.integers(2, 9)),
                         output=output or str(rng.choice(["sum", "threshold"])),
                         gating=gating or str(rng.choice(["none", "mask", "count"])))


def random_mac_config(rng):
    return MacConvConfig(**random_geometry(rng), act_bits=int(rng.integers(2, 13)),
                         weight_bits=int(rng.integers(2, 13)))


def int_range(bits, signed=True):
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def our_params(cfg, rng):
    """Random parameters drawn here (not with bm.random_params): weights over the whole signed
    range, biases over the whole accumulator-width range, thresholds around reachable sums."""
    kh, kw = cfg.kernel
    wlo, whi = int_range(cfg.weight_bits)
    lo, hi = bm.acc_range(cfg)
    blo, bhi = int_range(bm.acc_bits(cfg))
    w = rng.integers(wlo, whi + 1, size=(cfg.c_out, cfg.c_in, kh, kw))
    # Extreme weights sometimes, so that the accumulator's edges are visited.
    if rng.random() < 0.2:
        w[:] = rng.choice([wlo, whi])
    p = {"weights": w, "bias": rng.integers(blo, bhi + 1, size=cfg.c_out)}
    if cfg.output == "threshold":
        t = rng.integers(lo + blo - 2, hi + bhi + 3, size=cfg.c_out)
        near = rng.random(cfg.c_out) < 0.7  # around the typical sum: both outputs occur
        typical = w.reshape(cfg.c_out, -1).sum(axis=1) // 2 + p["bias"]
        t[near] = typical[near] + rng.integers(-3, 4, size=int(near.sum()))
        p["thresholds"] = t
        p["directions"] = rng.choice([-1, 1], size=cfg.c_out)
    return {k: np.asarray(v, dtype=np.int64) for k, v in p.items()}


def our_inputs(cfg, rng, frames):
    alo, ahi = bm.act_range(cfg)
    x = rng.integers(alo, ahi + 1, size=(frames, cfg.height, cfg.width, cfg.c_in))
    inputs = {"activations": x}
    shape = (frames, cfg.out_height, cfg.out_width)
    if cfg.gating == "mask":
        inputs["gates"] = (rng.random(shape + (cfg.c_out,)) < rng.random()).astype(np.int64)
    elif cfg.gating == "count":
        inputs["gates"] = rng.integers(0, cfg.c_out + 1, size=shape)
    return inputs


def oracle_pads(kernel):
    """PyTorch's 'same' split as F.pad takes it, (left, right, top, bottom): (k-1)//2 before."""
    kh, kw = kernel
    return ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2, kh - 1 - (kh - 1) // 2)


def oracle_sums(cfg, params, x):
    """(N, H_out, W_out, C_out) int64 s = conv(x, w) + bias from float64 F.conv2d."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64)).permute(0, 3, 1, 2)
    wt = torch.from_numpy(np.asarray(params["weights"], dtype=np.float64))
    bt = torch.from_numpy(np.asarray(params["bias"], dtype=np.float64))
    if cfg.padding == "same":
        xt = F.pad(xt, oracle_pads(cfg.kernel), value=0.0)
    s = F.conv2d(xt, wt, bt).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(s, np.rint(s)) and np.abs(s).max(initial=0) < 2.0 ** 52
    return s.astype(np.int64)


def oracle_output(cfg, params, inputs):
    s = oracle_sums(cfg, params, inputs["activations"])
    if cfg.output == "threshold":
        t, up = params["thresholds"], params["directions"] > 0
        out = np.where(up, s >= t, s <= t).astype(np.int64)
    else:
        out = s
    if cfg.gating == "mask":
        out = out * inputs["gates"]
    elif cfg.gating == "count":
        out = out * (np.arange(cfg.c_out)[None, None, None, :] < inputs["gates"][..., None])
    return out


# Arithmetic against conv2d -------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_same_padding_split_matches_torch():
    rng = np.random.default_rng(1)
    for kh, kw in [(1, 1), (2, 2), (3, 4), (4, 1), (1, 4), (4, 3)]:
        x = torch.from_numpy(rng.standard_normal((1, 2, 6, 7)))
        w = torch.from_numpy(rng.standard_normal((3, 2, kh, kw)))
        ours = F.conv2d(F.pad(x, oracle_pads((kh, kw))), w)
        theirs = F.conv2d(x, w, padding="same")
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
        cfg = BamConvConfig(c_in=2, c_out=3, height=6, width=7, kernel=(kh, kw), padding="same")
        top, bottom, left, right = cfg.pads
        assert (left, right, top, bottom) == oracle_pads((kh, kw))
        assert (cfg.out_height, cfg.out_width) == (6, 7)


def test_bamconv_reference_matches_conv2d_random_configs():
    rng = np.random.default_rng(20240704)
    seen = set()
    for _ in range(N_RANDOM_CONFIGS):
        cfg = random_bam_config(rng)
        params = our_params(cfg, rng)
        inputs = our_inputs(cfg, rng, frames=int(rng.integers(1, 3)))
        got = bm.reference(cfg, params, inputs)
        want = oracle_output(cfg, params, inputs)
        assert got.shape == cfg.output_shape(inputs["activations"].shape[0]) == want.shape, cfg
        assert got.dtype == (np.int64 if cfg.output == "sum" else np.uint8)
        assert np.array_equal(got, want), cfg
        if cfg.output == "sum":
            # Every sum (gated zeros included) fits the declared output width.
            lo, hi = int_range(bm.sum_bits(cfg))
            assert lo <= got.min() and got.max() <= hi
        seen.add((cfg.padding, cfg.output, cfg.gating, cfg.kernel[0] % 2, cfg.kernel[1] % 2,
                  cfg.kernel[0] == 1))
        seen.add(("bits", cfg.weight_bits))
    assert {("bits", k) for k in range(2, 9)} <= seen
    assert len(seen) >= 40


def test_macconv_reference_matches_conv2d_random_configs():
    rng = np.random.default_rng(99)
    bits = set()
    for _ in range(N_RANDOM_CONFIGS // 2):
        cfg = random_mac_config(rng)
        params = our_params(cfg, rng)
        inputs = our_inputs(cfg, rng, frames=int(rng.integers(1, 3)))
        got = bm.reference(cfg, params, inputs["activations"])
        assert got.dtype == np.int64
        assert np.array_equal(got, oracle_output(cfg, params, inputs)), cfg
        lo, hi = int_range(bm.sum_bits(cfg))
        assert lo <= got.min() and got.max() <= hi
        bits.update((cfg.act_bits, cfg.weight_bits))
    assert bits == set(range(2, 13))


def test_macconv_unsigned_and_requant_match_conv2d_random_configs():
    """Unsigned activations and the fused requantization: the oracle is conv2d in float64 plus
    floor(s * M / 2**shift + 0.5), clamped to the codes (exact: |s * M| < 2**53 here)."""
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(N_RANDOM_CONFIGS // 2):
        geo = random_geometry(rng)
        act_signed, requant = bool(rng.random() < 0.5), bool(rng.random() < 0.7)
        act_bits, weight_bits = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        mult_bits, out_bits = int(rng.integers(1, 17)), int(rng.integers(1, 9))
        probe = MacConvConfig(**geo, act_bits=act_bits, weight_bits=weight_bits,
                              act_signed=act_signed)
        # A binary point that maps a typical sum into the code range.
        shift = max(0, bm.sum_bits(probe) - 2 + mult_bits - out_bits - int(rng.integers(0, 4)))
        cfg = MacConvConfig(**geo, act_bits=act_bits, weight_bits=weight_bits,
                            act_signed=act_signed, output="requant" if requant else "sum",
                            out_bits=out_bits, mult_bits=mult_bits, shift=shift)
        params = our_params(cfg, rng)
        if requant:
            params["multipliers"] = rng.integers(0, 1 << mult_bits, size=cfg.c_out)
        inputs = our_inputs(cfg, rng, frames=int(rng.integers(1, 3)))
        assert inputs["activations"].min() >= (-(1 << (act_bits - 1)) if act_signed else 0)
        got = bm.reference(cfg, params, inputs["activations"])
        s = oracle_sums(cfg, params, inputs["activations"]).astype(np.float64)
        if requant:
            v = s * params["multipliers"].astype(np.float64) / 2.0 ** shift
            want = np.clip(np.floor(v + 0.5) if shift else v, 0, (1 << out_bits) - 1)
            seen.update({("low", bool((got == 0).any())), ("high", bool(
                (got == (1 << out_bits) - 1).any())), ("mid", bool(
                    ((got > 0) & (got < (1 << out_bits) - 1)).any()))})
        else:
            want = s
        assert got.dtype == np.int64
        assert np.array_equal(got, want.astype(np.int64)), cfg
        seen.add(("signed", act_signed))
    assert {("signed", True), ("signed", False), ("low", True), ("high", True),
            ("mid", True)} <= seen


def test_single_frame_and_bool_activations():
    rng = np.random.default_rng(3)
    cfg = BamConvConfig(c_in=3, c_out=4, height=5, width=6, kernel=(2, 3), padding="same",
                        weight_bits=4)
    params = our_params(cfg, rng)
    x = our_inputs(cfg, rng, 1)["activations"]
    ref = bm.reference(cfg, params, x)
    assert np.array_equal(bm.reference(cfg, params, x[0]), ref)
    assert np.array_equal(bm.reference(cfg, params, x.astype(bool)), ref)
    assert np.array_equal(bm.reference(cfg, params, {"activations": x}), ref)


def test_gated_off_channels_are_zero_and_count_edges():
    rng = np.random.default_rng(4)
    base = dict(c_in=2, c_out=5, height=4, width=4, kernel=(3, 3), padding="same", weight_bits=5)
    for output in ("sum", "threshold"):
        cfg = BamConvConfig(**base, output=output, gating="count")
        params = our_params(cfg, rng)
        x = our_inputs(cfg, rng, 2)["activations"]
        full = bm.reference(BamConvConfig(**base, output=output), params, x)
        for n in range(cfg.c_out + 1):
            gates = np.full((2, 4, 4), n)
            got = bm.reference(cfg, params, {"activations": x, "gates": gates})
            assert np.array_equal(got[..., :n], full[..., :n])
            assert not got[..., n:].any()
        cfg = BamConvConfig(**base, output=output, gating="mask")
        ones = np.ones((2, 4, 4, 5), np.int64)
        assert np.array_equal(bm.reference(cfg, params, {"activations": x, "gates": ones}), full)
        assert not bm.reference(cfg, params, {"activations": x, "gates": 0 * ones}).any()
        # bool masks are accepted
        assert np.array_equal(
            bm.reference(cfg, params, {"activations": x, "gates": ones.astype(bool)}), full)


def test_uf_count():
    assert [bm.uf_count(uf, 8) for uf in (0.125, 0.25, 0.3, 0.5, 1.0)] == [1, 2, 3, 4, 8]
    assert bm.uf_count(0.01, 64) == 1
    for bad in (0, -0.5, 1.01):
        with pytest.raises(QhwInputError, match="uf"):
            bm.uf_count(bad, 8)


# Accumulator range and widths ----------------------------------------------------------------

def extreme_sum(cfg, act, weight):
    """Sum with every activation = act and every weight = weight, bias 0, one valid window."""
    one = dataclasses.replace(cfg, height=cfg.kernel[0], width=cfg.kernel[1], padding="valid",
                              pe=1, simd=1, c_out=1)
    params = {"weights": np.full((1, cfg.c_in) + tuple(cfg.kernel), weight),
              "bias": np.zeros(1, np.int64)}
    x = np.full(one.input_shape(1), act)
    got = bm.reference(one, params, x)
    assert got.shape == (1, 1, 1, 1)
    assert int(got[0, 0, 0, 0]) == int(oracle_sums(one, params, x)[0, 0, 0, 0])
    return int(got[0, 0, 0, 0])


def fits(v, bits):
    return -(1 << (bits - 1)) <= v <= (1 << (bits - 1)) - 1


def check_acc_range(cfg):
    a_lo, a_hi = int_range(cfg.act_bits, cfg.act_signed)
    w_lo, w_hi = int_range(cfg.weight_bits)
    # Every (activation, weight) pair of extreme values, all positions alike.
    sums = [extreme_sum(cfg, a, w) for a in (a_lo, a_hi) for w in (w_lo, w_hi)]
    lo, hi = bm.acc_range(cfg)
    assert (min(sums), max(sums)) == (lo, hi), cfg
    # Nothing in between reaches further: the product table's extremes (brute force, small bits).
    if cfg.act_bits <= 8 and cfg.weight_bits <= 8:
        prods = np.outer(np.arange(a_lo, a_hi + 1), np.arange(w_lo, w_hi + 1))
        assert (cfg.k * prods.min(), cfg.k * prods.max()) == (lo, hi)
    bits = bm.acc_bits(cfg)
    assert fits(lo, bits) and fits(hi, bits)
    assert not (fits(lo, bits - 1) and fits(hi, bits - 1)), cfg
    # s = acc + bias with the bias at its extremes fits sum_bits and not one bit less.
    b_lo, b_hi = int_range(bits)
    s_bits = bm.sum_bits(cfg)
    assert fits(lo + b_lo, s_bits) and fits(hi + b_hi, s_bits)
    assert not (fits(lo + b_lo, s_bits - 1) and fits(hi + b_hi, s_bits - 1))


@pytest.mark.parametrize("weight_bits", range(2, 9))
@pytest.mark.parametrize("c_in, kernel", [(1, (1, 1)), (3, (2, 2)), (2, (1, 4)), (7, (3, 3))])
def test_bamconv_acc_range_reached_exactly(weight_bits, c_in, kernel):
    cfg = BamConvConfig(c_in=c_in, c_out=2, height=4, width=5, kernel=kernel, padding="same",
                        weight_bits=weight_bits)
    check_acc_range(cfg)
    assert bm.acc_range(cfg) == (cfg.k * -(1 << (weight_bits - 1)),
                                 cfg.k * ((1 << (weight_bits - 1)) - 1))


@pytest.mark.parametrize("act_bits, weight_bits", [(2, 2), (2, 8), (8, 2), (3, 7), (8, 8),
                                                   (12, 5), (12, 12), (16, 16)])
@pytest.mark.parametrize("c_in, kernel", [(1, (1, 1)), (3, (3, 3))])
def test_macconv_acc_range_reached_exactly(act_bits, weight_bits, c_in, kernel):
    cfg = MacConvConfig(c_in=c_in, c_out=1, height=3, width=3, kernel=kernel,
                        act_bits=act_bits, weight_bits=weight_bits)
    check_acc_range(cfg)
    # The largest product is (-2^(a-1)) * (-2^(w-1)).
    assert bm.acc_range(cfg)[1] == cfg.k << (act_bits + weight_bits - 2)


def test_extreme_sums_round_trip_through_output_words():
    # The widest sums (acc extremes plus bias extremes) survive the sum_bits output fields.
    for wb in (2, 5, 8):
        cfg = BamConvConfig(c_in=2, c_out=2, height=2, width=2, kernel=(2, 2), weight_bits=wb)
        lo, hi = bm.acc_range(cfg)
        b_lo, b_hi = int_range(bm.acc_bits(cfg))
        w_lo, w_hi = int_range(wb)
        params = {"weights": np.stack([np.full((2, 2, 2), w_lo), np.full((2, 2, 2), w_hi)]),
                  "bias": np.array([b_lo, b_hi])}
        out = bm.reference(cfg, params, np.ones((1, 2, 2, 2), np.int64))
        assert out.ravel().tolist() == [lo + b_lo, hi + b_hi]
        words = encode_outputs(cfg, out)
        assert np.array_equal(bm.unpack_outputs(cfg, {"o": words}, 1), out)


# Threshold semantics ---------------------------------------------------------------------------

THR = BamConvConfig(c_in=2, c_out=6, height=1, width=1, kernel=(1, 1), output="threshold",
                    weight_bits=4)


def thr_outputs(thresholds, directions, bias=0, x=(1, 1)):
    # weights 3 and -2 on both channels' inputs: acc = 3*x0 - 2*x1; s = acc + bias.
    params = {"weights": np.tile(np.array([3, -2]).reshape(1, 2, 1, 1), (6, 1, 1, 1)),
              "bias": np.full(6, bias), "thresholds": np.asarray(thresholds),
              "directions": np.asarray(directions)}
    return bm.reference(THR, params, np.array(x).reshape(1, 1, 1, 2)).ravel().tolist()


def test_threshold_exact_ties():
    for bias in (0, -7, 5):
        for x in ((0, 0), (1, 0), (0, 1), (1, 1)):
            s = 3 * x[0] - 2 * x[1] + bias
            got = thr_outputs([s, s, s + 1, s + 1, s - 1, s - 1], [1, -1, 1, -1, 1, -1], bias, x)
            # s >= s, s <= s, s >= s+1, s <= s+1, s >= s-1, s <= s-1
            assert got == [1, 1, 0, 1, 1, 0], (bias, x)


def test_threshold_beyond_reach():
    big = 1 << 62
    lo, hi = bm.acc_range(THR)
    b_lo, b_hi = int_range(bm.acc_bits(THR))
    for bias in (b_lo, 0, b_hi):
        for x in ((0, 0), (1, 0), (0, 1), (1, 1)):
            got = thr_outputs([big, big, -big, -big, hi + b_hi + 1, lo + b_lo - 1],
                              [1, -1, 1, -1, 1, -1], bias, x)
            assert got == [0, 1, 1, 0, 0, 0], (bias, x)


def test_threshold_beyond_the_file_limit_is_rejected():
    with pytest.raises(QhwInputError, match="thresholds"):
        thr_outputs([(1 << 62) + 1, 0, 0, 0, 0, 0], [1] * 6)
    with pytest.raises(QhwInputError, match="thresholds"):
        thr_outputs(np.array([2**63, 0, 0, 0, 0, 0], dtype=np.uint64), [1] * 6)


# Rejections -----------------------------------------------------------------------------------

BAM = BamConvConfig(c_in=2, c_out=4, height=4, width=4, kernel=(3, 3), padding="same",
                    weight_bits=3, output="threshold", gating="mask", pe=2)


def bam_params():
    return our_params(BAM, np.random.default_rng(0))


def bam_inputs():
    return our_inputs(BAM, np.random.default_rng(1), 2)


def with_(d, key, value):
    d = dict(d)
    d[key] = value
    return d


@pytest.mark.parametrize("params, field", [
    (with_(bam_params(), "weights", np.full((4, 2, 3, 3), 4)), "weights"),
    (with_(bam_params(), "weights", np.full((4, 2, 3, 3), -5)), "weights"),
    (with_(bam_params(), "weights", np.zeros((4, 2, 3, 3), np.float64)), "weights"),
    (with_(bam_params(), "weights", np.zeros((4, 2, 3), np.int64)), "weights"),
    (with_(bam_params(), "bias", np.zeros(5, np.int64)), "bias"),
    (with_(bam_params(), "bias", np.full(4, 1 << 20)), "bias"),
    (with_(bam_params(), "thresholds", np.zeros(3, np.int64)), "thresholds"),
    (with_(bam_params(), "directions", np.array([1, 0, -1, 1])), "directions"),
    (with_(bam_params(), "extra", np.zeros(4, np.int64)), "extra"),
    ({k: v for k, v in bam_params().items() if k != "bias"}, "bias"),
    ({k: v for k, v in bam_params().items() if k != "thresholds"}, "thresholds"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_params_rejected(params, field):
    with pytest.raises(QhwInputError, match=field):
        bm.reference(BAM, params, bam_inputs())


def test_weight_range_edges_accepted():
    for wb in range(2, 9):
        cfg = dataclasses.replace(BAM, weight_bits=wb)
        lo, hi = int_range(wb)
        base = our_params(cfg, np.random.default_rng(wb))
        for v in (lo, hi):
            bm.check_params(cfg, with_(base, "weights", np.full((4, 2, 3, 3), v)))
        for v in (lo - 1, hi + 1):
            with pytest.raises(QhwInputError, match="weights"):
                bm.check_params(cfg, with_(base, "weights", np.full((4, 2, 3, 3), v)))


@pytest.mark.parametrize("inputs, field", [
    (with_(bam_inputs(), "activations", np.full((2, 4, 4, 2), 2)), "activations"),
    (with_(bam_inputs(), "activations", -np.ones((2, 4, 4, 2), np.int64)), "activations"),
    (with_(bam_inputs(), "activations", np.ones((2, 4, 4, 2), np.float32)), "activations"),
    (with_(bam_inputs(), "activations", np.ones((2, 4, 4, 3), np.int64)), "activations"),
    (with_(bam_inputs(), "gates", np.ones((2, 4, 4, 3), np.int64)), "gates"),   # width 3 != 4
    (with_(bam_inputs(), "gates", np.ones((2, 4, 4, 5), np.int64)), "gates"),   # width 5
    (with_(bam_inputs(), "gates", np.ones((2, 4, 4), np.int64)), "gates"),      # a count shape
    (with_(bam_inputs(), "gates", np.ones((1, 4, 4, 4), np.int64)), "gates"),   # frames
    (with_(bam_inputs(), "gates", np.full((2, 4, 4, 4), 2)), "gates"),          # not bits
    ({"activations": bam_inputs()["activations"]}, "gates"),                    # missing
    (bam_inputs()["activations"], "gates"),                                     # bare array
    ({"gates": bam_inputs()["gates"]}, "activations"),
    (with_(bam_inputs(), "extra", np.zeros(1)), "extra"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_rejected(inputs, field):
    with pytest.raises(QhwInputError, match=field):
        bm.reference(BAM, bam_params(), inputs)


def test_count_gates_rejected():
    cfg = dataclasses.replace(BAM, gating="count")
    x = bam_inputs()["activations"]
    bm.reference(cfg, bam_params(), {"activations": x, "gates": np.full((2, 4, 4), 4)})
    for gates in (np.full((2, 4, 4), 5), np.full((2, 4, 4), -1), np.full((2, 4, 4, 4), 1),
                  np.full((2, 4, 4), 1.0)):
        with pytest.raises(QhwInputError, match="gates"):
            bm.reference(cfg, bam_params(), {"activations": x, "gates": gates})
    with pytest.raises(QhwInputError, match="gates"):
        bm.reference(cfg, bam_params(), x)


def test_gates_without_gating_rejected():
    cfg = dataclasses.replace(BAM, gating="none")
    with pytest.raises(QhwInputError, match="gates"):
        bm.reference(cfg, bam_params(), bam_inputs())


def test_macconv_activation_range():
    cfg = MacConvConfig(c_in=1, c_out=1, height=2, width=2, kernel=(1, 1), act_bits=4,
                        weight_bits=3)
    params = {"weights": np.ones((1, 1, 1, 1), np.int64), "bias": np.zeros(1, np.int64)}
    assert bm.reference(cfg, params, np.array([-8, 7, 0, -1]).reshape(2, 2, 1)).ravel().tolist() \
        == [-8, 7, 0, -1]
    for v in (-9, 8):
        with pytest.raises(QhwInputError, match="activations"):
            bm.reference(cfg, params, np.full((2, 2, 1), v))


@pytest.mark.parametrize("kwargs, field", [
    (dict(weight_bits=1), "weight_bits"),
    (dict(weight_bits=9), "weight_bits"),
    (dict(gating="sometimes"), "gating"),
    (dict(output="relu"), "output"),
    (dict(padding="full"), "padding"),
    (dict(kernel=(5, 1)), "kernel"),
    (dict(kernel=(0, 1)), "kernel"),
    (dict(pe=3), "pe"),
    (dict(simd=5), "simd"),
    (dict(c_in=0), "c_in"),
])
def test_bad_bamconv_configs_rejected(kwargs, field):
    base = dict(c_in=2, c_out=4, height=4, width=4, kernel=(2, 2))
    with pytest.raises(QhwInputError, match=field):
        BamConvConfig(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs, field", [
    (dict(act_bits=1), "act_bits"), (dict(act_bits=17), "act_bits"),
    (dict(weight_bits=1), "weight_bits"), (dict(weight_bits=17), "weight_bits"),
])
def test_bad_macconv_configs_rejected(kwargs, field):
    with pytest.raises(QhwInputError, match=field):
        MacConvConfig(c_in=2, c_out=4, height=4, width=4, kernel=(2, 2), **kwargs)


def test_random_params_are_valid():
    """bm.random_params must produce arrays its own check_params accepts, for every config."""
    rng = np.random.default_rng(11)
    for cfg in [BamConvConfig(c_in=c, c_out=2, height=3, width=3, kernel=(1, 1), weight_bits=wb,
                              output=out)
                for c in (1, 2, 3, 4) for wb in (2, 5, 8) for out in ("sum", "threshold")]:
        for _ in range(20):
            bm.check_params(cfg, bm.random_params(cfg, rng))


# Hardware layouts ------------------------------------------------------------------------------

def field(word, index, bits, signed=True):
    v = (word >> (index * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def layout_configs():
    rng = np.random.default_rng(2024)
    cfgs = [random_bam_config(rng) for _ in range(12)] + [random_mac_config(rng) for _ in range(6)]
    cfgs.append(BamConvConfig(c_in=3, c_out=6, height=3, width=5, kernel=(2, 3), padding="same",
                              pe=3, simd=6, weight_bits=8, output="threshold", gating="count"))
    return cfgs


@pytest.mark.parametrize("cfg", layout_configs(), ids=lambda c: f"{type(c).__name__}")
def test_weight_memory_layout(cfg):
    params = our_params(cfg, np.random.default_rng(5))
    w = params["weights"]
    words = bm.weight_memory(cfg, params)
    kh, kw = cfg.kernel
    sf_count, nf_count = cfg.k // cfg.simd, cfg.c_out // cfg.pe
    assert len(words) == nf_count * sf_count
    k = cfg.weight_bits
    for nf in range(nf_count):
        for sf in range(sf_count):
            word = words[nf * sf_count + sf]
            assert 0 <= word < 1 << (cfg.pe * cfg.simd * k)
            for p in range(cfg.pe):
                for s in range(cfg.simd):
                    e = sf * cfg.simd + s  # window order: (ky*kw + kx)*C_in + ci
                    ky, kx, ci = e // (kw * cfg.c_in), (e // cfg.c_in) % kw, e % cfg.c_in
                    assert field(word, p * cfg.simd + s, k) == w[nf * cfg.pe + p, ci, ky, kx]


def test_window_order_is_the_sum_order():
    # One nonzero weight at (co, ci, ky, kx) on a one-hot input: the oracle agrees on which
    # input position it reads (catches a transposed kernel in window_order).
    cfg = BamConvConfig(c_in=2, c_out=1, height=3, width=4, kernel=(3, 4), weight_bits=8)
    for idx in np.ndindex(1, 2, 3, 4):
        w = np.zeros((1, 2, 3, 4), np.int64)
        w[idx] = 7
        x = np.zeros((1, 3, 4, 2), np.int64)
        x[0, idx[2], idx[3], idx[1]] = 1
        p = {"weights": w, "bias": np.zeros(1, np.int64)}
        assert bm.reference(cfg, p, x).ravel().tolist() == [7]


@pytest.mark.parametrize("cfg", layout_configs(), ids=lambda c: f"{type(c).__name__}")
def test_aux_memory_layout(cfg):
    rng = np.random.default_rng(6)
    params = our_params(cfg, rng)
    words = bm.aux_memory(cfg, params)
    nf_count = cfg.c_out // cfg.pe
    assert len(words) == nf_count
    if cfg.output == "sum":
        bits = bm.acc_bits(cfg)
        for nf in range(nf_count):
            assert 0 <= words[nf] < 1 << (cfg.pe * bits)
            for p in range(cfg.pe):
                assert field(words[nf], p, bits) == params["bias"][nf * cfg.pe + p]
        return
    # Threshold lanes: T (two's complement, tbits) then the ge bit; out = (acc >= T) == ge
    # must equal the threshold on s = acc + bias for every reachable accumulator value.
    tbits = bm.threshold_bits(cfg)
    lo, hi = bm.acc_range(cfg)
    acc = np.arange(lo, hi + 1)
    for nf in range(nf_count):
        assert 0 <= words[nf] < 1 << (cfg.pe * (tbits + 1))
        for p in range(cfg.pe):
            c = nf * cfg.pe + p
            lane = field(words[nf], p, tbits + 1, signed=False)
            t_acc, ge = field(lane, 0, tbits), lane >> tbits
            s = acc + params["bias"][c]
            want = s >= params["thresholds"][c] if params["directions"][c] > 0 \
                else s <= params["thresholds"][c]
            assert np.array_equal((acc >= t_acc) == bool(ge), want), (cfg, c)


def test_aux_memory_extreme_thresholds():
    cfg = BamConvConfig(c_in=2, c_out=4, height=1, width=1, kernel=(1, 1), weight_bits=3,
                        output="threshold", pe=4)
    lo, hi = bm.acc_range(cfg)
    b_lo, b_hi = int_range(bm.acc_bits(cfg))
    big = 1 << 62
    for bias in (b_lo, 0, b_hi):
        params = {"weights": np.zeros((4, 2, 1, 1), np.int64), "bias": np.full(4, bias),
                  "thresholds": np.array([big, big, -big, -big]),
                  "directions": np.array([1, -1, 1, -1])}
        tbits = bm.threshold_bits(cfg)
        word = bm.aux_memory(cfg, params)[0]
        for c, want in enumerate([0, 1, 1, 0]):
            lane = field(word, c, tbits + 1, signed=False)
            t_acc, ge = field(lane, 0, tbits), lane >> tbits
            assert all(((a >= t_acc) == bool(ge)) == bool(want) for a in range(lo, hi + 1))


@pytest.mark.parametrize("cfg", layout_configs(), ids=lambda c: f"{type(c).__name__}")
def test_pack_inputs_layout(cfg):
    inputs = our_inputs(cfg, np.random.default_rng(7), 2)
    words = bm.pack_inputs(cfg, inputs)
    x = inputs["activations"]
    a = cfg.act_bits
    assert len(words["i"]) == x.shape[0] * cfg.height * cfg.width
    for i, (n, h, w) in enumerate(np.ndindex(x.shape[:3])):
        word = words["i"][i]
        assert 0 <= word < 1 << (cfg.c_in * a)
        for c in range(cfg.c_in):
            assert field(word, c, a, signed=cfg.act_signed) == x[n, h, w, c]
    if cfg.gating == "none":
        assert set(words) == {"i"}
        return
    g = inputs["gates"]
    positions = list(np.ndindex(g.shape[:3]))
    assert len(words["g"]) == len(positions)
    for i, pos in enumerate(positions):
        if cfg.gating == "mask":
            assert 0 <= words["g"][i] < 1 << cfg.c_out
            assert [(words["g"][i] >> c) & 1 for c in range(cfg.c_out)] == g[pos].tolist()
        else:
            assert words["g"][i] == g[pos]


def encode_outputs(cfg, out):
    """Words of the 'o' stream built from the docstring: channel c at bits [c*B, (c+1)*B)."""
    bits = bm.out_element_bits(cfg)
    words = []
    for row in np.asarray(out).reshape(-1, cfg.c_out):
        word = 0
        for c, v in enumerate(row):
            word |= (int(v) & ((1 << bits) - 1)) << (c * bits)
        words.append(word)
    return words


@pytest.mark.parametrize("cfg", layout_configs(), ids=lambda c: f"{type(c).__name__}")
def test_unpack_outputs_layout(cfg):
    rng = np.random.default_rng(8)
    params = our_params(cfg, rng)
    inputs = our_inputs(cfg, rng, 2)
    out = bm.reference(cfg, params, inputs)
    words = encode_outputs(cfg, out)
    got = bm.unpack_outputs(cfg, {"o": words}, 2)
    assert got.dtype == out.dtype and np.array_equal(got, out)
    with pytest.raises(ValueError):
        bm.unpack_outputs(cfg, {"o": words[:-1]}, 2)
