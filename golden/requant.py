"""Requantization (``requant``): wide integer sums to narrow activation codes, per channel.

The single definition of the unit's arithmetic (docs/requant.md). Between two integer layers of a
quantized network the accumulator sums (20-30 bits) are scaled back to the next layer's
activation codes. With the real scale ``r_c = s_w[c] * s_in / s_out`` of channel c written as a
fixed-point multiplier ``r_c ~ M_c / 2**shift`` (gemmlowp's and TFLite's integer requantization;
Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018), every value x of channel c becomes::

    y = clamp(floor((x * M_c + 2**(shift-1)) / 2**shift), lo, hi)      (shift >= 1)
    y = clamp(x * M_c, lo, hi)                                           (shift = 0)

that is x * r_c rounded to the nearest integer, halves rounded up (toward +infinity), then
saturated to the output range: [0, 2**B - 1] for unsigned codes (the clamp at 0 is the ReLU) or
[-2**(B-1), 2**(B-1) - 1] for signed ones. The bias belongs to the layer before (its accumulator
adds it exactly), so this unit has only the multipliers.

Widths: x is signed ``in_bits``; M_c unsigned ``mult_bits`` (0 <= M_c < 2**mult_bits); the product
and the rounding term need ``in_bits + mult_bits + 1`` signed bits (:func:`product_bits`), at
most 62, so nothing can overflow (the golden model computes in Python integers through int64 with
that bound checked).

The stream formats are the convolution units' pixel format: one pixel per transfer, channel c at
bits [c*E, (c+1)*E), two's complement for signed values.
"""

import dataclasses

import numpy as np

from ..config import check_divides, check_int
from ..errors import QhwInputError
from .conv import check_int_array, pack_fields, unpack_fields

__all__ = ["RequantConfig", "product_bits", "out_range", "check_params", "random_params",
           "check_inputs", "random_inputs", "reference", "pack_inputs", "unpack_outputs",
           "output_words", "frames", "multipliers_for", "scale_codes"]

MAX_PRODUCT_BITS = 62


def _check_bool(field, value):
    if not isinstance(value, bool):
        raise QhwInputError(f"{field}: must be true or false, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RequantConfig:
    """Configuration of a requantization layer.

    Parameters
    ----------
    c_in : int
        Channels (each with its own multiplier; c_out = c_in).
    height, width : int
        Feature-map size (the unit works pixel by pixel; the size fixes the frame).
    in_bits : int
        Signed input width, 2..48 (a convolution's sum width).
    out_bits : int
        Output code width, 1..16.
    out_signed : bool
        Signed output codes (clamp to [-2**(B-1), 2**(B-1)-1]); default unsigned ([0, 2**B-1],
        the clamp at 0 being the ReLU).
    mult_bits : int
        Unsigned multiplier width, 1..24.
    shift : int
        The multipliers' binary point: y = x * M / 2**shift, rounded; 0..62.
    pe : int
        Channels scaled per cycle (multipliers); must divide c_in. A pixel takes c_in / pe
        cycles.
    """

    c_in: int
    height: int
    width: int
    in_bits: int = 24
    out_bits: int = 8
    out_signed: bool = False
    mult_bits: int = 16
    shift: int = 16
    pe: int = 1

    def __post_init__(self):
        for name in ("c_in", "height", "width"):
            check_int(name, getattr(self, name), low=1, high=1 << 16)
        check_int("in_bits", self.in_bits, low=2, high=48)
        check_int("out_bits", self.out_bits, low=1, high=16)
        _check_bool("out_signed", self.out_signed)
        if self.out_signed and self.out_bits < 2:
            raise QhwInputError("out_bits: must be >= 2 when out_signed is true")
        check_int("mult_bits", self.mult_bits, low=1, high=24)
        check_int("shift", self.shift, low=0, high=MAX_PRODUCT_BITS)
        check_int("pe", self.pe)
        check_divides("pe", self.pe, self.c_in, "c_in")
        if product_bits(self) > MAX_PRODUCT_BITS:
            raise QhwInputError(
                f"mult_bits: in_bits + mult_bits + 1 = {product_bits(self)} bits exceed "
                f"{MAX_PRODUCT_BITS} (narrow the multipliers or the input)")

    @property
    def c_out(self):
        return self.c_in

    @property
    def fold(self):
        """Cycles per pixel: c_in / pe."""
        return self.c_in // self.pe

    @property
    def positions(self):
        return self.height * self.width

    def input_shape(self, frames=None):
        shape = (self.height, self.width, self.c_in)
        return shape if frames is None else (frames,) + shape

    def output_shape(self, frames=None):
        return self.input_shape(frames)


def product_bits(cfg):
    """Signed width of x * M + 2**(shift-1): the input's, the multiplier's and one for the
    rounding term's carry."""
    return cfg.in_bits + cfg.mult_bits + 1


def in_range(cfg):
    return -(1 << (cfg.in_bits - 1)), (1 << (cfg.in_bits - 1)) - 1


def out_range(cfg):
    b = cfg.out_bits
    return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if cfg.out_signed else (0, (1 << b) - 1)


def multipliers_for(scales, mult_bits=16):
    """(multipliers, shift): the largest shift for which every ``scales[c] * 2**shift`` rounds to
    an integer below ``2**mult_bits``, and those integers. The relative error of each channel's
    scale is then at most 2**-mult_bits / (its scale / the largest scale). Scales must be >= 0
    and not all 0."""
    s = np.asarray(scales, dtype=np.float64)
    if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0) or not np.any(s > 0):
        raise QhwInputError("scales: must be finite, >= 0 and not all 0")
    shift = MAX_PRODUCT_BITS
    while shift > 0 and np.round(s.max() * 2.0 ** shift) >= 1 << mult_bits:
        shift -= 1
    mult = np.round(s * 2.0 ** shift).astype(np.int64)
    if mult.max() >= 1 << mult_bits:
        raise QhwInputError(f"scales: the largest, {s.max():g}, needs more than {mult_bits} "
                            f"integer bits")
    return mult, shift


# Parameters ---------------------------------------------------------------------------------------

def check_params(cfg, params):
    """'multipliers': (C,) unsigned mult_bits-bit integers."""
    unknown = sorted(set(params) - {"multipliers"})
    if unknown:
        raise QhwInputError(f"weights file: unknown array {unknown[0]!r}; expected: multipliers")
    if "multipliers" not in params:
        raise QhwInputError(f"weights file: missing array 'multipliers' (shape ({cfg.c_in},), "
                            f"unsigned {cfg.mult_bits}-bit integers)")
    return {"multipliers": check_int_array(
        "multipliers", params["multipliers"], (cfg.c_in,), 0, (1 << cfg.mult_bits) - 1,
        f"unsigned {cfg.mult_bits}-bit integers")}


def random_params(cfg, rng):
    """Multipliers over the whole range, the extremes (0 and the largest) over-represented."""
    hi = (1 << cfg.mult_bits) - 1
    m = rng.integers(0, hi + 1, size=cfg.c_in, dtype=np.int64)
    extreme = rng.random(cfg.c_in) < 0.2
    m[extreme] = rng.choice(np.array([0, 1, hi], dtype=np.int64), size=int(extreme.sum()))
    return {"multipliers": m}


# Inputs -------------------------------------------------------------------------------------------

def check_inputs(cfg, inputs):
    """Validate activations (H, W, C) or (N, H, W, C), or a mapping with only 'activations';
    return (N, H, W, C) int64."""
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - {"activations"})
        if unknown:
            raise QhwInputError(f"inputs: unknown array {unknown[0]!r}; expected: activations")
        if "activations" not in inputs:
            raise QhwInputError("inputs: missing array 'activations'")
        inputs = inputs["activations"]
    x = np.asarray(inputs)
    if x.shape == cfg.input_shape():
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != cfg.input_shape() or x.shape[0] < 1:
        raise QhwInputError(
            f"activations: shape must be {cfg.input_shape()} or "
            f"(N, {', '.join(map(str, cfg.input_shape()))}), got {x.shape}")
    lo, hi = in_range(cfg)
    return check_int_array("activations", x, x.shape, lo, hi, f"signed {cfg.in_bits}-bit")


def random_inputs(cfg, rng, frames=1):
    """Inputs that reach every branch: half of them small enough that a typical multiplier
    (2**(mult_bits-1)) scales them into the output range (rounded, not saturated, ties
    included), the rest over the whole input range and its extremes (saturated both ways)."""
    lo, hi = in_range(cfg)
    shape = cfg.input_shape(frames)
    x = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    small_hi = int(min(hi, max(1, ((1 << cfg.out_bits) << cfg.shift) >> (cfg.mult_bits - 1))))
    small = rng.random(shape) < 0.5
    x[small] = rng.integers(-small_hi, small_hi + 1, size=int(small.sum()))
    extreme = rng.random(shape) < 0.1
    x[extreme] = rng.choice(np.array([lo, hi, 0, -1], dtype=np.int64), size=int(extreme.sum()))
    return x


# Reference ----------------------------------------------------------------------------------------

def scale_codes(x, mult, shift, lo, hi):
    """clamp(floor((x * M + 2**(shift-1)) / 2**shift), lo, hi) (shift 0: clamp(x * M)),
    int64, the multipliers broadcast over the last axis. The caller keeps |x * M| below
    2**61 (``product_bits`` <= 62), so int64 is exact."""
    p = np.asarray(x, dtype=np.int64) * np.asarray(mult, dtype=np.int64)
    if shift:
        p = (p + (1 << (shift - 1))) >> shift  # arithmetic shift: floor
    return np.clip(p, lo, hi).astype(np.int64)


def reference(cfg, params, inputs):
    """Bit-exact output codes (N, H, W, C) int64."""
    mult = check_params(cfg, params)["multipliers"]
    x = check_inputs(cfg, inputs)
    lo, hi = out_range(cfg)
    return scale_codes(x, mult, cfg.shift, lo, hi)


# Hardware formats ---------------------------------------------------------------------------------

def pack_inputs(cfg, inputs):
    """Stream words: 'i' one pixel per word, row-major; channel c at bits [c*E, (c+1)*E)."""
    x = check_inputs(cfg, inputs)
    return {"i": pack_fields(x.reshape(-1, cfg.c_in), cfg.in_bits)}


def output_words(cfg, frames):
    return {"o": _frames(frames) * cfg.positions}


def unpack_outputs(cfg, words, frames):
    """Output words 'o' (one per pixel, C fields of out_bits) -> int64 array (N, H, W, C)."""
    words = words["o"]
    n = _frames(frames)
    if len(words) != n * cfg.positions:
        raise ValueError(f"output stream: expected {n * cfg.positions} words, got {len(words)}")
    values = unpack_fields(words, cfg.c_in, cfg.out_bits, signed=cfg.out_signed)
    return values.reshape(cfg.output_shape(n)).astype(np.int64)


def _frames(frames):
    return int(frames[0]) if isinstance(frames, (tuple, list)) else int(frames)


def frames(cfg, inputs):
    """N of an input array (the cost model's ``frames``)."""
    return check_inputs(cfg, inputs).shape[0]
