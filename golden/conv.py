"""Geometry, data formats and integer arithmetic shared by the convolution units' golden models."""

import dataclasses

import numpy as np

from ..config import check_choice, check_divides, check_int, check_pair
from ..errors import QhwInputError


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """Base of the convolution configs: the geometry and folding fields every conv unit has.

    Provides the derived sizes and the shared validation (call :meth:`check_geometry` from
    ``__post_init__``). Subclasses add their own fields, all with defaults.
    """

    c_in: int
    c_out: int
    height: int
    width: int
    kernel: tuple = (3, 3)
    padding: str = "valid"
    pe: int = 1
    simd: int = 1
    weights: str = "baked"

    def geometry(self):
        """The geometry and folding fields (and the weight mode) as a JSON-ready dict (for a
        baseline of the same shape)."""
        return {f.name: list(v) if isinstance(v, tuple) else v
                for f in dataclasses.fields(ConvGeometry) for v in [getattr(self, f.name)]}

    def check_geometry(self):
        for name in ("c_in", "c_out", "height", "width"):
            check_int(name, getattr(self, name), low=1, high=1 << 16)
        check_pair("kernel", self.kernel)
        check_choice("padding", self.padding, ("valid", "same"))
        kh, kw = self.kernel
        if self.padding == "valid" and (kh > self.height or kw > self.width):
            raise QhwInputError(
                f"kernel: {kh}x{kw} does not fit a {self.height}x{self.width} input with padding "
                f"'valid' (kernel must be <= input size, or use padding 'same')")
        check_int("pe", self.pe)
        check_int("simd", self.simd)
        check_divides("pe", self.pe, self.c_out, "c_out")
        check_divides("simd", self.simd, self.k, "c_in*kh*kw")
        check_choice("weights", self.weights, ("baked", "port"))

    @property
    def k(self):
        """Synapses per output: C_in*kh*kw (FINN's MW)."""
        return self.c_in * self.kernel[0] * self.kernel[1]

    @property
    def pads(self):
        """(top, bottom, left, right) padding; 'same' pads like PyTorch."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        kh, kw = self.kernel
        return ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)

    @property
    def out_height(self):
        top, bottom, _, _ = self.pads
        return self.height + top + bottom - self.kernel[0] + 1

    @property
    def out_width(self):
        _, _, left, right = self.pads
        return self.width + left + right - self.kernel[1] + 1

    @property
    def neuron_fold(self):
        return self.c_out // self.pe

    @property
    def synapse_fold(self):
        return self.k // self.simd

    def input_shape(self, frames=None):
        shape = (self.height, self.width, self.c_in)
        return shape if frames is None else (frames,) + shape

    def output_shape(self, frames=None):
        shape = (self.out_height, self.out_width, self.c_out)
        return shape if frames is None else (frames,) + shape


def signed_bits(lo, hi):
    """Fewest bits of a two's-complement number that holds every integer in [lo, hi]."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def sliding_windows(cfg, x, pad_value):
    """Windows as (N, H_out, W_out, K) in window order k = (ky*kw + kx)*C_in + ci."""
    top, bottom, left, right = cfg.pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    kh, kw = cfg.kernel
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win.transpose(0, 1, 2, 4, 5, 3)  # (N, H_out, W_out, kh, kw, C_in)
    return win.reshape(x.shape[0], cfg.out_height, cfg.out_width, cfg.k)


def window_order(cfg, weights):
    """(C_out, C_in, kh, kw) weights as (C_out, K) in window order."""
    return np.asarray(weights).transpose(0, 2, 3, 1).reshape(cfg.c_out, cfg.k)


def check_int_array(name, array, shape, lo, hi, meaning):
    """An integer array of ``shape`` with values in [lo, hi], as int64."""
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise QhwInputError(f"{name}: shape must be {tuple(shape)} ({meaning}), got {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise QhwInputError(f"{name}: dtype must be an integer type, got {array.dtype}")
    if array.size:
        bad = (array < lo) | (array > hi)
        if bad.any():
            raise QhwInputError(f"{name}: values must be in [{lo}, {hi}] ({meaning}), "
                                f"found {array[bad].flat[0]}")
    return array.astype(np.int64)


def pack_fields(values, bits):
    """Rows of integers -> one int per row, field j at bits [j*bits, (j+1)*bits) (two's complement)."""
    values = np.asarray(values, dtype=object).reshape(len(values), -1)
    mask = (1 << bits) - 1
    shifts = [1 << (j * bits) for j in range(values.shape[1])]
    return [int(sum((int(v) & mask) * s for v, s in zip(row, shifts))) for row in values]


def unpack_fields(words, count, bits, signed):
    """Inverse of :func:`pack_fields`: (len(words), count) int64."""
    mask = (1 << bits) - 1
    out = np.array([[(w >> (j * bits)) & mask for j in range(count)] for w in words],
                   dtype=np.int64).reshape(len(words), count)
    if signed:
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


def threshold_rewrite(t, directions, offset, lo, hi):
    """Rewrite ``s >= t`` / ``s <= t`` on s = acc + offset onto the accumulator.

    Returns (T, ge) with the output bit ``(acc >= T) == ge``, T clamped to [lo, hi + 1] where
    [lo, hi] is the accumulator's range: s >= t <=> acc >= t - offset; s <= t <=> acc < t - offset + 1.
    """
    t = np.asarray(t, dtype=np.int64)
    ge = (np.asarray(directions) > 0).astype(np.int64)
    tt = np.clip(t, lo - abs(int(np.max(np.abs(offset), initial=0))) - 2,
                 hi + abs(int(np.max(np.abs(offset), initial=0))) + 2)
    raw = np.where(ge == 1, tt - offset, tt - offset + 1)
    return np.clip(raw, lo, hi + 1), ge
