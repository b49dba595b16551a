"""Binary-activation convolution (``bamconv``) and its int MAC baseline (``macconv``).

The single definition of both units' arithmetic (arXiv 2407.04578):

``bamconv``
    Activations are bits {0, 1} (a Heaviside map), weights signed k-bit (k = 2..8), a bias per
    output channel. A product is a conditional add, so the dot product is the sum of the weights
    whose activation is 1: ``s = sum_k x_k*w_k + bias``. Output: ``s`` itself, or one bit per
    channel from a threshold and direction (out = s >= t for +1, s <= t for -1), which is the next
    layer's binary map. Padding holds 0.
``macconv``
    The same convolution with signed a-bit activations and signed w-bit weights multiplied and
    accumulated conventionally (default 8 x 8), plus bias; output ``s``. The area baseline.

Dynamic channel gating (``bamconv`` only, arXiv 2412.17121 and 2507.04879): with
``gating = "mask"`` every output position comes with a C_out-bit mask; with ``gating = "count"``
with a count n of active channels, the first n (slimming with a utilisation factor UF:
n = ceil(UF*C_out), :func:`uf_count`). Gated-off channels output 0, and the unit spends no cycles
and reads no weights for neuron folds whose channels are all off.

Widths: the accumulator holds every reachable sum: [K*w_min, K*w_max] for ``bamconv``,
K*[min product, max product] for ``macconv`` (:func:`acc_range`). The bias has the accumulator's
width; the output sum one bit more, so nothing can overflow.
"""

import dataclasses
import math

import numpy as np

from ..config import check_choice, check_int
from ..errors import QhwInputError
from .conv import (ConvGeometry, check_int_array, pack_fields, signed_bits, sliding_windows,
                   threshold_rewrite, unpack_fields, window_order)


@dataclasses.dataclass(frozen=True)
class BamConvConfig(ConvGeometry):
    """Configuration of a binary-activation convolution layer.

    Parameters
    ----------
    c_in, c_out, height, width, kernel, padding, pe, simd, weights
        As for ``binconv`` (docs/binconv.md); padding holds activation 0.
    weight_bits : int
        Signed weight width k, 2..8.
    output : 'sum' or 'threshold'
        The integer sum (with bias), or one bit per channel.
    gating : 'none', 'mask' or 'count'
        Dynamic channel gating: a C_out-bit mask, or a count of active leading channels, per
        output position.
    """

    weight_bits: int = 8
    output: str = "sum"
    gating: str = "none"

    act_bits = 1
    act_signed = False

    def __post_init__(self):
        self.check_geometry()
        check_int("weight_bits", self.weight_bits, low=2, high=8)
        check_choice("output", self.output, ("sum", "threshold"))
        check_choice("gating", self.gating, ("none", "mask", "count"))


@dataclasses.dataclass(frozen=True)
class MacConvConfig(ConvGeometry):
    """Configuration of the conventional multiply-accumulate convolution (the baseline).

    Parameters
    ----------
    c_in, c_out, height, width, kernel, padding, pe, simd, weights
        As for ``bamconv``; padding holds 0.
    act_bits, weight_bits : int
        Activation and signed weight widths, 2..16 (default 8 x 8).
    act_signed : bool
        Two's-complement activations (default); false: unsigned codes [0, 2**act_bits - 1], the
        activations of a quantized network after a ReLU (docs/requant.md).
    output : 'sum', 'threshold' or 'requant'
        The integer sum (with bias); one bit per channel from a threshold and direction, as
        for ``bamconv``: a first layer on a multi-bit feature map (a quantized log-mel
        spectrogram) that produces the binary map of a binary-activation network; or the sum
        requantized in the unit to unsigned ``out_bits`` codes, ``clamp(floor((s * M_c +
        2**(shift-1)) / 2**shift), 0, 2**out_bits - 1)`` with a ``mult_bits`` multiplier per
        channel (the ``requant`` unit's arithmetic, docs/requant.md, fused at the PE outputs
        as FINN fuses its thresholds into the MVAU): the layers of an 8-bit-activation network.
    out_bits, mult_bits, shift : int
        With ``output = 'requant'``: code width 1..16 (8), multiplier width 1..24 (16), binary
        point 0..62 (16); sum_bits + mult_bits + 1 <= 62.
    """

    act_bits: int = 8
    weight_bits: int = 8
    output: str = "sum"
    act_signed: bool = True
    out_bits: int = 8
    mult_bits: int = 16
    shift: int = 16

    gating = "none"

    def __post_init__(self):
        self.check_geometry()
        check_int("act_bits", self.act_bits, low=2, high=16)
        if not isinstance(self.act_signed, bool):
            raise QhwInputError(f"act_signed: must be true or false, got {self.act_signed!r}")
        check_int("weight_bits", self.weight_bits, low=2, high=16)
        check_choice("output", self.output, ("sum", "threshold", "requant"))
        check_int("out_bits", self.out_bits, low=1, high=16)
        check_int("mult_bits", self.mult_bits, low=1, high=24)
        check_int("shift", self.shift, low=0, high=62)
        if self.output == "requant" and sum_bits(self) + self.mult_bits + 1 > 62:
            raise QhwInputError(
                f"mult_bits: sum_bits + mult_bits + 1 = {sum_bits(self) + self.mult_bits + 1} "
                f"bits exceed 62 (narrow the multipliers, weights or activations)")


# Ranges and widths --------------------------------------------------------------------------------

def act_range(cfg):
    if cfg.act_signed:
        return -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    return 0, (1 << cfg.act_bits) - 1


def weight_range(cfg):
    return -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1


def acc_range(cfg):
    """Every reachable accumulator value: K times the extreme products."""
    alo, ahi = act_range(cfg)
    wlo, whi = weight_range(cfg)
    products = [alo * wlo, alo * whi, ahi * wlo, ahi * whi]
    return cfg.k * min(products), cfg.k * max(products)


def acc_bits(cfg):
    return signed_bits(*acc_range(cfg))


def sum_bits(cfg):
    """Width of acc + bias (bias has acc_bits): one bit more, so the sum cannot overflow."""
    return acc_bits(cfg) + 1


def out_element_bits(cfg):
    if cfg.output == "requant":
        return cfg.out_bits
    return sum_bits(cfg) if cfg.output == "sum" else 1


def requant_product_bits(cfg):
    """Signed width of s * M + 2**(shift-1) with s = acc + bias (``output = 'requant'``)."""
    return sum_bits(cfg) + cfg.mult_bits + 1


def uf_count(uf, c_out):
    """Active channels for a utilisation factor UF in (0, 1]: ceil(UF*C_out)."""
    if not 0 < uf <= 1:
        raise QhwInputError(f"uf: must be in (0, 1], got {uf}")
    return math.ceil(uf * c_out)


# Parameters ---------------------------------------------------------------------------------------

def param_shapes(cfg):
    kh, kw = cfg.kernel
    blo, bhi = -(1 << (acc_bits(cfg) - 1)), (1 << (acc_bits(cfg) - 1)) - 1
    shapes = {"weights": ((cfg.c_out, cfg.c_in, kh, kw), weight_range(cfg),
                          f"signed {cfg.weight_bits}-bit, PyTorch order (out, in, kh, kw)"),
              "bias": ((cfg.c_out,), (blo, bhi), f"signed {acc_bits(cfg)}-bit integers")}
    if cfg.output == "requant":
        shapes["multipliers"] = ((cfg.c_out,), (0, (1 << cfg.mult_bits) - 1),
                                 f"unsigned {cfg.mult_bits}-bit integers (M_c, scale M_c / "
                                 f"2**{cfg.shift})")
    if cfg.output == "threshold":
        shapes["thresholds"] = ((cfg.c_out,), (-(1 << 62), 1 << 62), "integers on s = acc + bias")
        shapes["directions"] = ((cfg.c_out,), (-1, 1), "+1 (s >= t) or -1 (s <= t)")
    return shapes


def check_params(cfg, params):
    shapes = param_shapes(cfg)
    unknown = sorted(set(params) - set(shapes))
    if unknown:
        raise QhwInputError(f"weights file: unknown array {unknown[0]!r}; expected: {', '.join(shapes)}")
    out = {}
    for name, (shape, (lo, hi), meaning) in shapes.items():
        if name not in params:
            raise QhwInputError(f"weights file: missing array {name!r} (shape {shape}, {meaning})")
        out[name] = check_int_array(name, params[name], shape, lo, hi, meaning)
    if "directions" in out and not np.isin(out["directions"], (-1, 1)).all():
        raise QhwInputError("directions: values must be +1 or -1, found 0")
    return out


def random_params(cfg, rng):
    kh, kw = cfg.kernel
    wlo, whi = weight_range(cfg)
    blo, bhi = param_shapes(cfg)["bias"][1]  # small K narrows the bias range
    params = {"weights": rng.integers(wlo, whi + 1, size=(cfg.c_out, cfg.c_in, kh, kw)),
              "bias": rng.integers(max(blo, -4 * whi), min(bhi, 4 * whi) + 1, size=cfg.c_out)}
    if cfg.output == "threshold":
        # Around the typical sum (binary maps: half the activations on; signed activations:
        # zero), some beyond reach (constant outputs).
        alo, ahi = act_range(cfg)
        if cfg.act_signed:
            typical = params["bias"].copy()
        else:  # unsigned activations: half of the largest code, on average
            typical = (params["weights"].reshape(cfg.c_out, -1).sum(axis=1) * ahi // 2
                       + params["bias"])
        spread = max(1, max(abs(alo), ahi) * whi * int(math.sqrt(cfg.k)) // (2 if cfg.act_signed else 1))
        t = typical + rng.integers(-spread, spread + 1, size=cfg.c_out)
        lo, hi = acc_range(cfg)
        extreme = rng.random(cfg.c_out) < 0.1
        t[extreme] = rng.choice([2 * lo - 5, 2 * hi + 5], size=int(extreme.sum()))
        params["thresholds"] = t
        params["directions"] = rng.choice(np.array([-1, 1]), size=cfg.c_out)
    if cfg.output == "requant":
        hi = (1 << cfg.mult_bits) - 1
        m = rng.integers(0, hi + 1, size=cfg.c_out)
        m[rng.random(cfg.c_out) < 0.15] = hi
        params["multipliers"] = m
    return {k: np.asarray(v, dtype=np.int64) for k, v in params.items()}


# Inputs -------------------------------------------------------------------------------------------

def _activations(cfg, x):
    x = np.asarray(x)
    if x.shape == cfg.input_shape():
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != cfg.input_shape() or x.shape[0] < 1:
        raise QhwInputError(
            f"activations: shape must be {cfg.input_shape()} or "
            f"(N, {', '.join(map(str, cfg.input_shape()))}), got {x.shape}")
    lo, hi = act_range(cfg)
    meaning = ("bits {0,1}" if cfg.act_bits == 1 else
               f"{'signed' if cfg.act_signed else 'unsigned'} {cfg.act_bits}-bit")
    return check_int_array("activations", x, x.shape, lo, hi, meaning)


def check_inputs(cfg, inputs):
    """Validate inputs: an activation array, or a mapping with 'activations' (and 'gates').

    Returns a dict with 'activations' (N, H, W, C_in) and, with gating, 'gates': (N, H_out,
    W_out, C_out) bits ('mask') or (N, H_out, W_out) counts in [0, C_out] ('count').
    """
    if isinstance(inputs, dict):
        allowed = {"activations", "gates"} if cfg.gating != "none" else {"activations"}
        unknown = sorted(set(inputs) - allowed)
        if unknown:
            raise QhwInputError(f"inputs: unknown array {unknown[0]!r}; expected: {', '.join(sorted(allowed))}")
        if "activations" not in inputs:
            raise QhwInputError("inputs: missing array 'activations'")
        x = _activations(cfg, inputs["activations"])
        gates = inputs.get("gates")
    else:
        x = _activations(cfg, inputs)
        gates = None
    out = {"activations": x}
    if cfg.gating != "none":
        if gates is None:
            raise QhwInputError(f"inputs: gating '{cfg.gating}' needs an array 'gates' "
                                f"(give an .npz with 'activations' and 'gates')")
        n = x.shape[0]
        if cfg.gating == "mask":
            out["gates"] = check_int_array(
                "gates", gates, (n, cfg.out_height, cfg.out_width, cfg.c_out), 0, 1,
                f"a {cfg.c_out}-bit channel mask per output position")
        else:
            out["gates"] = check_int_array(
                "gates", gates, (n, cfg.out_height, cfg.out_width), 0, cfg.c_out,
                "active leading channels per output position")
    return out


def random_inputs(cfg, rng, frames=1, density=None):
    """Random activations (and gates with the given channel density, random if None)."""
    lo, hi = act_range(cfg)
    inputs = {"activations": rng.integers(lo, hi + 1, size=cfg.input_shape(frames))}
    if cfg.gating != "none":
        shape = (frames, cfg.out_height, cfg.out_width)
        d = rng.random() if density is None else density
        if cfg.gating == "mask":
            inputs["gates"] = (rng.random(shape + (cfg.c_out,)) < d).astype(np.int64)
        else:
            inputs["gates"] = rng.binomial(cfg.c_out, d, size=shape).astype(np.int64)
    return inputs


def channel_mask(cfg, inputs):
    """(N, H_out, W_out, C_out) 0/1: which channels each output position computes."""
    x = inputs["activations"]
    shape = (x.shape[0], cfg.out_height, cfg.out_width, cfg.c_out)
    if cfg.gating == "none":
        return np.ones(shape, dtype=np.int64)
    if cfg.gating == "mask":
        return inputs["gates"]
    return (np.arange(cfg.c_out) < inputs["gates"][..., None]).astype(np.int64)


# Reference ----------------------------------------------------------------------------------------

def sums(cfg, params, x):
    """s = sum of activation*weight over the window + bias, (N, H_out, W_out, C_out) int64."""
    win = sliding_windows(cfg, x, 0).astype(np.int64)
    w = window_order(cfg, params["weights"]).astype(np.int64)
    return win @ w.T + params["bias"]


def reference(cfg, params, inputs):
    """Bit-exact output: sums (int64, 'sum') or bits (uint8, 'threshold'); gated channels 0."""
    inputs = check_inputs(cfg, inputs)
    params = check_params(cfg, params)
    s = sums(cfg, params, inputs["activations"])
    if cfg.output == "sum":
        out = s
    elif cfg.output == "requant":
        from .requant import scale_codes
        out = scale_codes(s, params["multipliers"], cfg.shift, 0, (1 << cfg.out_bits) - 1)
    else:
        t, d = params["thresholds"], params["directions"]
        out = np.where(d > 0, s >= t, s <= t).astype(np.int64)
    out = out * channel_mask(cfg, inputs)
    return out.astype(np.uint8 if cfg.output == "threshold" else np.int64)


# Hardware formats ---------------------------------------------------------------------------------

def weight_memory(cfg, params):
    """Word nf*SF + sf; at bits (p*SIMD + s)*k the weight of channel nf*PE + p, element sf*SIMD + s."""
    w = window_order(cfg, params["weights"]).reshape(cfg.neuron_fold, cfg.pe, cfg.synapse_fold,
                                                    cfg.simd)
    rows = [w[nf, :, sf, :].reshape(-1) for nf in range(cfg.neuron_fold)
            for sf in range(cfg.synapse_fold)]
    return pack_fields(rows, cfg.weight_bits)


def aux_memory(cfg, params):
    """Per neuron fold, per PE lane: the bias (sum mode) or the threshold T and ge bit on acc."""
    if cfg.output == "sum":
        rows = np.asarray(params["bias"]).reshape(cfg.neuron_fold, cfg.pe)
        return pack_fields(rows, acc_bits(cfg))
    if cfg.output == "requant":  # the bias, then the multiplier above it
        a = acc_bits(cfg)
        lanes = [(int(b) & ((1 << a) - 1)) | (int(mv) << a)
                 for b, mv in zip(params["bias"], params["multipliers"])]
        return pack_fields(np.asarray(lanes, dtype=object).reshape(cfg.neuron_fold, cfg.pe),
                           a + cfg.mult_bits)
    lo, hi = acc_range(cfg)
    t, ge = threshold_rewrite(params["thresholds"], params["directions"], params["bias"], lo, hi)
    tbits = signed_bits(lo, hi + 1)
    lanes = [(int(tv) & ((1 << tbits) - 1)) | (int(g) << tbits) for tv, g in zip(t, ge)]
    return pack_fields(np.asarray(lanes, dtype=object).reshape(cfg.neuron_fold, cfg.pe), tbits + 1)


def load_words(cfg, params):
    """The weight-load stream of ``weights = 'port'``: every weight word, then every auxiliary
    (bias / threshold / multiplier) word, in memory order (:func:`weight_memory`,
    :func:`aux_memory`)."""
    return weight_memory(cfg, params) + aux_memory(cfg, params)


def threshold_bits(cfg):
    lo, hi = acc_range(cfg)
    return signed_bits(lo, hi + 1)


def pack_inputs(cfg, inputs):
    """Stream words: 'i' one pixel per word (channel c at bits [c*A, (c+1)*A)); 'g' gates."""
    inputs = check_inputs(cfg, inputs)
    x = inputs["activations"]
    words = {"i": pack_fields(x.reshape(-1, cfg.c_in), cfg.act_bits)}
    if cfg.gating == "mask":
        words["g"] = pack_fields(inputs["gates"].reshape(-1, cfg.c_out), 1)
    elif cfg.gating == "count":
        words["g"] = [int(v) for v in inputs["gates"].reshape(-1)]
    return words


def unpack_outputs(cfg, words, frames):
    words = words["o"]
    expected = frames * cfg.out_height * cfg.out_width
    if len(words) != expected:
        raise ValueError(f"output stream: expected {expected} words, got {len(words)}")
    values = unpack_fields(words, cfg.c_out, out_element_bits(cfg), signed=cfg.output == "sum")
    values = values.reshape(cfg.output_shape(frames))
    return values.astype(np.uint8 if cfg.output == "threshold" else np.int64)
