"""Pooling units ``maxpool`` and ``globalpool``: configuration, data formats and the reference.

The single definition of both units' arithmetic (docs/pool.md). Neither has weights.

``maxpool``
    k_h x k_w max pooling with the stride equal to the kernel and no padding. Sizes that the
    kernel does not divide are floored, as ``torch.nn.functional.max_pool2d`` does by default:
    H_out = H // k_h, W_out = W // k_w, and the last H % k_h rows and W % k_w columns are taken
    from the stream and dropped (DNSMOS pools 225 rows to 112). On 1-bit maps the max is an OR;
    on integers a max, unsigned or signed (two's complement).
``globalpool``
    One value per channel over all H x W positions: 'max' (an OR on 1-bit maps), 'sum' (on
    1-bit maps a count) or 'avg' = floor(sum / (H*W)), rounding toward minus infinity also for
    negative sums (``torch.div(..., rounding_mode='floor')``).

Widths (:func:`out_element_bits`, :func:`out_signed`): max and avg keep the input's width and
signedness (an average lies between the smallest and largest input); the sum has
``element_bits + ceil(log2(H*W))`` bits, signed as the input, so it cannot overflow.

The stream formats are the convolution units' pixel format, so a pool can sit between two
convolutions: one pixel per transfer, row-major, channel c at bits [c*E, (c+1)*E) (two's
complement when signed).
"""

import dataclasses
import math

import numpy as np

from ..config import check_choice, check_int, check_pair
from ..errors import QhwInputError
from .conv import check_int_array, pack_fields, unpack_fields

__all__ = ["MaxPoolConfig", "GlobalPoolConfig", "out_element_bits", "out_signed",
           "element_range", "avg_reciprocal", "check_params", "random_params", "check_inputs",
           "random_inputs", "pack_inputs", "unpack_outputs", "output_words", "reference"]

MAX_SIZE = 1 << 16


def _check_bool(field, value):
    if not isinstance(value, bool):
        raise QhwInputError(f"{field}: must be true or false, got {value!r}")


def _check_elements(cfg):
    for name in ("c_in", "height", "width"):
        check_int(name, getattr(cfg, name), low=1, high=MAX_SIZE)
    check_int("element_bits", cfg.element_bits, low=1, high=32)
    _check_bool("signed", cfg.signed)
    if cfg.signed and cfg.element_bits == 1:
        raise QhwInputError("signed: must be false when element_bits is 1 (a 1-bit map holds "
                            "{0, 1}; its max is an OR)")


class _PoolShapes:
    """Shapes shared by the pool configs (``out_height``, ``out_width`` from the subclass)."""

    @property
    def c_out(self):
        """Output channels: the input's, one pooled value per channel."""
        return self.c_in

    def input_shape(self, frames=None):
        shape = (self.height, self.width, self.c_in)
        return shape if frames is None else (frames,) + shape

    def output_shape(self, frames=None):
        shape = (self.out_height, self.out_width, self.c_out)
        return shape if frames is None else (frames,) + shape


@dataclasses.dataclass(frozen=True)
class MaxPoolConfig(_PoolShapes):
    """Configuration of a max-pooling layer (stride = kernel, no padding, floor).

    Parameters
    ----------
    c_in : int
        Channels (pooled independently; c_out = c_in).
    height, width : int
        Input feature-map size.
    kernel : (int, int)
        Pooling window (k_h, k_w), also the stride; at most the input size.
    element_bits : int
        Bits per channel value, 1..32 (1: a binary map, max is an OR).
    signed : bool
        Two's-complement values (only with element_bits >= 2).
    """

    c_in: int
    height: int
    width: int
    kernel: tuple = (2, 2)
    element_bits: int = 1
    signed: bool = False

    def __post_init__(self):
        _check_elements(self)
        check_pair("kernel", self.kernel)
        kh, kw = self.kernel
        if kh > self.height or kw > self.width:
            raise QhwInputError(
                f"kernel: {kh}x{kw} is larger than the {self.height}x{self.width} input "
                f"(kernel must be <= input size)")

    @property
    def out_height(self):
        return self.height // self.kernel[0]

    @property
    def out_width(self):
        return self.width // self.kernel[1]


@dataclasses.dataclass(frozen=True)
class GlobalPoolConfig(_PoolShapes):
    """Configuration of a global pooling layer: one value per channel over all H x W positions.

    Parameters
    ----------
    c_in : int
        Channels (pooled independently; c_out = c_in).
    height, width : int
        Input feature-map size.
    element_bits : int
        Bits per channel value, 1..32.
    signed : bool
        Two's-complement values (only with element_bits >= 2).
    mode : 'max', 'sum' or 'avg'
        The maximum (OR on 1-bit maps), the exact sum (a count on 1-bit maps), or
        floor(sum / (H*W)).
    """

    c_in: int
    height: int
    width: int
    element_bits: int = 1
    signed: bool = False
    mode: str = "max"

    out_height = 1
    out_width = 1

    def __post_init__(self):
        _check_elements(self)
        check_choice("mode", self.mode, ("max", "sum", "avg"))
        bits = self.element_bits + _log2_ceil(self.positions)
        if bits > 63:
            raise QhwInputError(
                f"height: height*width = {self.positions} with element_bits "
                f"{self.element_bits} needs a {bits}-bit sum; at most 63 bits are supported")

    @property
    def positions(self):
        """H*W, the values pooled into each output."""
        return self.height * self.width


def _log2_ceil(n):
    return (n - 1).bit_length()


# Widths -------------------------------------------------------------------------------------------

def sum_bits(cfg):
    """Width of the exact sum over H*W values: element_bits + ceil(log2(H*W))."""
    return cfg.element_bits + _log2_ceil(cfg.positions)


def out_element_bits(cfg):
    """Bits per output channel value: the input's, or :func:`sum_bits` for a global sum."""
    if isinstance(cfg, GlobalPoolConfig) and cfg.mode == "sum":
        return sum_bits(cfg)
    return cfg.element_bits


def out_signed(cfg):
    """Output values are two's complement exactly when the inputs are."""
    return bool(cfg.signed)


def element_range(cfg):
    """[lo, hi] of an input value."""
    e = cfg.element_bits
    return (-(1 << (e - 1)), (1 << (e - 1)) - 1) if cfg.signed else (0, (1 << e) - 1)


def out_range(cfg):
    """[lo, hi] of an output value (what :func:`out_element_bits` must hold)."""
    lo, hi = element_range(cfg)
    if isinstance(cfg, GlobalPoolConfig) and cfg.mode == "sum":
        return lo * cfg.positions, hi * cfg.positions
    return lo, hi


def avg_reciprocal(cfg):
    """(m, shift) with floor(u / (H*W)) == (u * m) >> shift for every u in [0, 2**sum_bits).

    The hardware's division by the constant d = H*W. With N = sum_bits and shift =
    N + ceil(log2 d), m = ceil(2**shift / d), e = m*d - 2**shift lies in [0, d), and
    u*m / 2**shift = u/d + u*e / (d * 2**shift) with u*e < 2**shift, so the error term is below
    1/d and never reaches the next integer. Signed averages use u = sum + d * 2**(E-1), the sum of
    the offset-binary inputs (sign bit flipped), and flip the result's sign bit back:
    floor((s + d*2**(E-1)) / d) = floor(s/d) + 2**(E-1).
    """
    d = cfg.positions
    shift = sum_bits(cfg) + _log2_ceil(d)
    m = -(-(1 << shift) // d)
    return m, shift


# Parameters (none) --------------------------------------------------------------------------------

def check_params(cfg, params):
    """Pools have no weights: only an empty mapping is accepted."""
    if params:
        name = sorted(params)[0]
        raise QhwInputError(f"weights file: unknown array {name!r}; this unit has no weights "
                            f"(give no weight file)")
    return {}


def random_params(cfg, rng):
    return {}


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
    lo, hi = element_range(cfg)
    meaning = ("bits {0,1}" if cfg.element_bits == 1 else
               f"{'signed' if cfg.signed else 'unsigned'} {cfg.element_bits}-bit")
    return check_int_array("activations", x, x.shape, lo, hi, meaning)


def random_inputs(cfg, rng, frames=1):
    """Random activations over the whole range, with the range's extremes over-represented."""
    lo, hi = element_range(cfg)
    x = rng.integers(lo, hi + 1, size=cfg.input_shape(frames), dtype=np.int64)
    if cfg.element_bits > 1:
        extreme = rng.random(x.shape) < 0.2
        x[extreme] = rng.choice(np.array([lo, hi], dtype=np.int64), size=int(extreme.sum()))
    return x


# Reference ----------------------------------------------------------------------------------------

def reference(cfg, params, inputs):
    """Bit-exact output, int64: (N, H_out, W_out, C) for maxpool, (N, 1, 1, C) for globalpool."""
    check_params(cfg, params)
    x = check_inputs(cfg, inputs)
    n = x.shape[0]
    if isinstance(cfg, MaxPoolConfig):
        kh, kw = cfg.kernel
        ho, wo = cfg.out_height, cfg.out_width
        win = x[:, :ho * kh, :wo * kw, :].reshape(n, ho, kh, wo, kw, cfg.c_in)
        return win.max(axis=(2, 4)).astype(np.int64)
    flat = x.reshape(n, cfg.positions, cfg.c_in)
    if cfg.mode == "max":
        out = flat.max(axis=1)
    else:
        out = flat.sum(axis=1)
        if cfg.mode == "avg":
            out = np.floor_divide(out, cfg.positions)
    return out.reshape(n, 1, 1, cfg.c_in).astype(np.int64)


# Hardware formats ---------------------------------------------------------------------------------

def pack_inputs(cfg, inputs):
    """Stream words: 'i' one pixel per word, row-major; channel c at bits [c*E, (c+1)*E)."""
    x = check_inputs(cfg, inputs)
    return {"i": pack_fields(x.reshape(-1, cfg.c_in), cfg.element_bits)}


def output_words(cfg, frames):
    return {"o": frames * cfg.out_height * cfg.out_width}


def unpack_outputs(cfg, words, frames):
    """Output words 'o' (one per output pixel, C fields of out_element_bits) -> int64 array."""
    words = words["o"]
    expected = frames * cfg.out_height * cfg.out_width
    if len(words) != expected:
        raise ValueError(f"output stream: expected {expected} words, got {len(words)}")
    values = unpack_fields(words, cfg.c_out, out_element_bits(cfg), signed=out_signed(cfg))
    return values.reshape(cfg.output_shape(frames)).astype(np.int64)


def frames(cfg, inputs):
    """N of an input array (the cost model's ``frames``)."""
    return check_inputs(cfg, inputs).shape[0]
