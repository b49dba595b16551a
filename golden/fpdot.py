"""``fpdot``: a conventional floating-point dot product, the baseline of ``expdot``.

This module is the single definition of its arithmetic. An N-lane dot product of activations x
and weights w, both in one IEEE format (fp32, fp16 or bf16), computed the way a conventional
float datapath does it: every multiplication and every addition rounds to nearest, ties to even.

Order of operations (it fixes the result bit for bit; :func:`fpdot_ref` is the definition):

1. products p_k = x_k * w_k, k = 0..N-1, each rounded (:func:`fp_mul_ref`, the ``mulbase``
   multiplier);
2. per fold f (lanes f*S .. f*S+S-1, S = ``simd``), a **pairwise tree**: each level adds
   neighbours (v0+v1, v2+v3, ...) in lane order and passes an odd last value up unchanged
   (:func:`tree_level`); t_f is the tree's root (t_f = p_f when S = 1);
3. ``pipeline: "none"`` (the default): **accumulation in fold order**: acc = t_0, then
   acc = acc + t_f for f = 1..F-1 (F = N/S); the output is acc.
   ``pipeline: "deep"``: a **pairwise tree over the fold sums** t_0 .. t_{F-1}, by the same
   :func:`tree_level` rule (t_0+t_1, t_2+t_3, ..., an odd last passed up; ceil(log2 F) levels);
   the output is its root. (A pipelined adder cannot close a one-cycle accumulator loop; the
   tree needs no loop. It is what the deep hardware computes, one adder per level fed one fold
   sum per cycle, so it does not depend on the adders' latency. When S and F are powers of two
   the whole sum is the pairwise tree over all N products.)

   Lane k's place in this order is fixed by the fold layout, so changing ``simd`` (or
   ``pipeline``) changes the result, as with any float datapath.

Special values (the same policy as the ``mulbase`` multiplier, :func:`qhw.golden.expmul.mulbase_ref`):

* subnormal inputs of any operation are zeros of the same sign (DAZ); a result whose exponent
  field would be <= 0 after rounding (rounding as if the exponent range were unbounded) is a zero
  with the result's sign (FTZ). For additions nothing is lost to rounding there: the exact sum
  of two normal numbers below the smallest normal is a multiple of the smallest subnormal, so
  flushing equals IEEE addition followed by a flush;
* overflow gives infinity (round to nearest); zero signs follow IEEE (x + (-x) = +0, (-0) + (-0)
  = -0); NaN inputs, 0 * inf and inf - inf give the canonical quiet NaN (sign 0, exponent all
  ones, mantissa MSB only: payloads are not propagated); inf + finite = inf.

Wherever no subnormal value occurs, every step equals IEEE 754 binary arithmetic, so the
tests compare the reference bit for bit with NumPy float32 / float16 and PyTorch bfloat16
performing the same sequence of operations.
"""

import dataclasses
import types

import numpy as np

from ..config import check_choice, check_divides, check_int
from ..errors import QhwInputError
from . import expmul as g

__all__ = ["FpDotConfig", "MUL_CUT_NAMES", "ADD_CUT_NAMES", "fp_mul_ref", "fp_add_ref",
           "tree_level", "tree_root", "tree_depth", "fpdot_ref", "encode_values", "random_values"]

FORMATS = ("fp32", "fp16", "bf16")
PIPELINES = ("none", "deep")

#: Where ``pipeline: "deep"`` may register a multiplier (:func:`qhw.hdl.mulbase.fp_mul_logic`), in
#: pipeline order: after four partial products of the significand halves (only for a significand
#: wider than one hard multiplier, 18 bits: fp32), after the significand product, after the
#: rounding. Cuts change the latency only, never the result.
MUL_CUT_NAMES = ("partial", "product", "round")
#: Where it may register an adder (:func:`qhw.hdl.fpdot.fp_add_logic`), in pipeline order: after
#: the magnitude compare and exponent differences, the alignment shift, the add/subtract, the
#: leading-one detection, the normalising shift.
ADD_CUT_NAMES = ("compare", "align", "add", "lead", "normalise")
#: Widest significand one ECP5 MULT18X18D multiplies (the generator's too:
#: :data:`qhw.hdl.mulbase.HARD_MUL_BITS`)
HARD_MUL_BITS = 18


def _check_cuts(field, value, allowed, pipeline):
    """``value``: None, or a list of distinct names from ``allowed``, only with 'deep'."""
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    if pipeline != "deep":
        raise QhwInputError(f"{field}: only with pipeline 'deep' (pipeline is {pipeline!r}), "
                            f"got {value!r}")
    if (not isinstance(value, tuple) or any(v not in allowed for v in value)
            or len(set(value)) != len(value)):
        raise QhwInputError(f"{field}: must be a list of distinct names from "
                            f"{', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class FpDotConfig:
    """An N-lane float dot product with a rounding adder tree and a rounding accumulator.

    Parameters
    ----------
    lanes : int
        N, the vector length (1..1024).
    simd : int
        Lanes multiplied per cycle and carried per input transfer; divides ``lanes``.
    act_format : 'fp32', 'fp16' or 'bf16'
        The format of the activations, the weights, every intermediate result and the output.
    pipeline : 'none' or 'deep'
        'none': each multiplier and adder is one stage and the fold sums go through a one-cycle
        accumulator loop (acc = acc + t_f). 'deep': the multipliers and adders are split into
        register stages (:func:`qhw.hdl.mulbase.mul_cuts`, :data:`qhw.hdl.fpdot.ADD_CUTS`) and
        the fold sums are added by a pairwise tree instead of the loop, which changes the order
        of the additions (module docstring, step 3). One fold per cycle either way.
    mul_cuts : list of 'partial', 'product', 'round' (:data:`MUL_CUT_NAMES`), or None
        ``pipeline: "deep"`` only: where each multiplier is registered (besides its output
        register): after four partial products, the significand product, the rounding; None:
        every cut the format has (fp32: all three, others: "product" and "round"). "partial"
        only for fp32. Changes the latency, not the result.
    add_cuts : list of 'compare', 'align', 'add', 'lead', 'normalise', or None
        ``pipeline: "deep"`` only: where each adder is registered (besides its output register):
        after the magnitude compare, the alignment shift, the add/subtract, the leading-one
        detection, the normalising shift; None: all five. Changes the latency, not the result.
    """

    lanes: int = 16
    simd: int = 4
    act_format: str = "fp32"
    pipeline: str = "none"
    mul_cuts: tuple = None
    add_cuts: tuple = None

    def __post_init__(self):
        check_int("lanes", self.lanes, low=1, high=1024)
        check_int("simd", self.simd, low=1)
        check_divides("simd", self.simd, self.lanes, "lanes")
        check_choice("act_format", self.act_format, FORMATS)
        check_choice("pipeline", self.pipeline, PIPELINES)
        # (lists, as Python callers may pass them, become tuples: the config stays hashable)
        object.__setattr__(self, "mul_cuts",
                           _check_cuts("mul_cuts", self.mul_cuts, MUL_CUT_NAMES, self.pipeline))
        object.__setattr__(self, "add_cuts",
                           _check_cuts("add_cuts", self.add_cuts, ADD_CUT_NAMES, self.pipeline))
        if self.mul_cuts is not None and "partial" in self.mul_cuts and not self.wide_significand:
            raise QhwInputError(f"mul_cuts: 'partial' only for fp32 (a significand wider than "
                                f"{HARD_MUL_BITS} bits), got {list(self.mul_cuts)!r} with "
                                f"act_format {self.act_format!r}")

    # The names below match ExpDotConfig's, so the shared input checks and packings apply.
    is_float = True

    @property
    def fmt(self):
        return g.FLOAT_FORMATS[self.act_format]

    @property
    def wide_significand(self):
        """Whether a significand is wider than one hard multiplier (fp32), so that a deep
        multiplier is built from four partial products."""
        return self.fmt.mbits + 1 > HARD_MUL_BITS

    @property
    def mul_cut_names(self):
        """``pipeline: "deep"``: the multiplier's registered cuts, in pipeline order; () for
        'none'."""
        if self.pipeline != "deep":
            return ()
        chosen = self.mul_cuts if self.mul_cuts is not None else [
            c for c in MUL_CUT_NAMES if c != "partial" or self.wide_significand]
        return tuple(c for c in MUL_CUT_NAMES if c in chosen)

    @property
    def add_cut_names(self):
        """``pipeline: "deep"``: the adder's registered cuts, in pipeline order; () for 'none'."""
        if self.pipeline != "deep":
            return ()
        chosen = self.add_cuts if self.add_cuts is not None else ADD_CUT_NAMES
        return tuple(c for c in ADD_CUT_NAMES if c in chosen)

    @property
    def x_bits(self):
        """Width of one activation, weight, product and output."""
        return self.fmt.width

    w_bits = x_bits
    out_bits = x_bits

    @property
    def fold(self):
        """Input transfers (and cycles) per vector: lanes / simd."""
        return self.lanes // self.simd

    @property
    def tree_levels(self):
        """Adder-tree levels per fold: ceil(log2 simd)."""
        return tree_depth(self.simd)

    @property
    def fold_levels(self):
        """Levels of the tree over the fold sums (``pipeline: "deep"``): ceil(log2 (lanes /
        simd)); 0 for the accumulator loop."""
        return tree_depth(self.fold) if self.pipeline == "deep" else 0


# Arithmetic -----------------------------------------------------------------------------------------

def fp_mul_ref(fmt, a, b):
    """Rounded products of bit patterns ``a`` and ``b``: the ``mulbase`` multiplier."""
    return g.mulbase_ref(types.SimpleNamespace(is_float=True, fmt=fmt), a, b)


def _bit_length(r, bits):
    """Index of the leading one of each non-negative ``r`` < 2^bits (0 where r == 0)."""
    p = np.zeros_like(r)
    for k in range(1, bits):
        p = np.where((r >> k) != 0, k, p)
    return p


def fp_add_ref(fmt, a, b):
    """Rounded sums of bit patterns ``a`` and ``b`` (int64 arrays, broadcast).

    Round to nearest even with DAZ/FTZ, overflow to infinity, the canonical NaN (module
    docstring). The algorithm is the hardware's (:func:`qhw.hdl.fpdot.fp_add_logic`): order the
    operands by magnitude, align the smaller significand with three extra bits (guard, round and
    a sticky bit that ORs everything shifted further), add or subtract, normalise by one bit right
    or up to mbits + 3 bits left, round on the three extra bits.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    top, mb, emask = fmt.width - 1, fmt.mbits, fmt.emask
    one = np.int64(1)
    sa, ea, ma = (a >> top) & 1, (a >> mb) & emask, a & fmt.mmask
    sb, eb, mbb = (b >> top) & 1, (b >> mb) & emask, b & fmt.mmask
    a_nan, b_nan = (ea == emask) & (ma != 0), (eb == emask) & (mbb != 0)
    a_inf, b_inf = (ea == emask) & (ma == 0), (eb == emask) & (mbb == 0)
    nan = a_nan | b_nan | (a_inf & b_inf & (sa != sb))
    inf = a_inf | b_inf
    inf_sign = np.where(a_inf, sa, sb)
    both_zero = (ea == 0) & (eb == 0)  # zeros and (flushed) subnormals

    # L is the operand of larger magnitude; a zero is never larger than a non-zero
    swap = (b & ((one << top) - 1)) > (a & ((one << top) - 1))
    big = np.where(swap, b, a)
    small = np.where(swap, a, b)
    s_l, e_l, m_l = (big >> top) & 1, (big >> mb) & emask, big & fmt.mmask
    s_s, e_s, m_s = (small >> top) & 1, (small >> mb) & emask, small & fmt.mmask
    small_zero = e_s == 0

    # Alignment: beyond mbits + 5 places the small operand is entirely sticky, so the shift is
    # clamped (the hardware's shifter is that wide too).
    d = np.minimum(e_l - e_s, mb + 5)
    x = ((one << mb) | m_l) << 3
    y_full = ((one << mb) | m_s) << 3
    y = (y_full >> d) | ((y_full & ((one << d) - 1)) != 0)
    r = np.where(s_l != s_s, x - y, x + y)  # >= 0: |L| >= |S|; < 2^(mb + 5)

    # Normalise: a carry shifts right by one (keeping the sticky bit); cancellation shifts left
    # until the leading one is back at bit mb + 3 (only exact values shift by more than one).
    p = _bit_length(r, mb + 5)
    carry = p == mb + 4
    lshift = np.where(carry | (r == 0), 0, mb + 3 - p)
    rn = np.where(carry, (r >> 1) | (r & 1), r << lshift)
    e = e_l + carry - lshift
    sig = rn >> 3
    guard = (rn >> 2) & 1
    rest = (rn & 3) != 0
    sig = sig + (guard & (rest | (sig & 1)))
    c2 = sig >> (mb + 1)  # rounding carried into a new binade
    sig = sig >> c2
    e = e + c2

    out = (s_l << top) | (np.clip(e, 0, emask) << mb) | (sig & fmt.mmask)
    out = np.where(e >= emask, (s_l << top) | (emask << mb), out)
    out = np.where(e <= 0, s_l << top, out)
    out = np.where(r == 0, 0, out)                 # exact cancellation: +0 (round to nearest)
    out = np.where(small_zero, big, out)           # x + 0 = x
    out = np.where(both_zero, (sa & sb) << top, out)
    out = np.where(inf, (inf_sign << top) | (emask << mb), out)
    return np.where(nan, g.qnan(fmt), out)


def tree_level(values, add):
    """One level of the pairwise adder tree: [add(v0, v1), add(v2, v3), ...] (+ an odd last v).

    Used by the reference and by the generator, so both pair the lanes the same way.
    """
    out = [add(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
    if len(values) % 2:
        out.append(values[-1])
    return out


def tree_root(values, add):
    """The root of the pairwise tree over ``values``: :func:`tree_level` until one is left."""
    while len(values) > 1:
        values = tree_level(values, add)
    return values[0]


def tree_depth(n):
    """Levels of the pairwise tree over n values: ceil(log2 n)."""
    return (n - 1).bit_length()


def fpdot_ref(cfg, x, w):
    """Bit-exact ``fpdot`` outputs for activations ``x`` (V, N) and weights ``w`` (N,), bit
    patterns; the order of operations is the module docstring's."""
    fmt = cfg.fmt
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    p = fp_mul_ref(fmt, x, w[None, :]).reshape(x.shape[0], cfg.fold, cfg.simd)

    def add(u, v):
        return fp_add_ref(fmt, u, v)

    t = tree_root([p[:, :, s] for s in range(cfg.simd)], add)  # (V, F): one root per fold
    if cfg.pipeline == "deep":                     # a pairwise tree over the fold sums
        return tree_root([t[:, f] for f in range(cfg.fold)], add)
    acc = t[:, 0]
    for f in range(1, cfg.fold):
        acc = fp_add_ref(fmt, acc, t[:, f])
    return acc


# Values -----------------------------------------------------------------------------------------------

def encode_values(cfg, values):
    """Bit patterns (int64) of float64 ``values`` rounded to the format (RNE, via NumPy / for bf16
    via float32 then RNE on the top half)."""
    v = np.asarray(values, dtype=np.float64)
    if cfg.act_format == "fp16":
        return v.astype(np.float16).view(np.uint16).astype(np.int64)
    bits = v.astype(np.float32).view(np.uint32).astype(np.int64)
    if cfg.act_format == "fp32":
        return bits
    lower = bits & 0xFFFF
    up = (lower > 0x8000) | ((lower == 0x8000) & (((bits >> 16) & 1) == 1))
    nan = ((bits >> 23) & 0xFF == 0xFF) & ((bits & 0x7FFFFF) != 0)
    return np.where(nan, g.qnan(cfg.fmt), (bits >> 16) + up)


def random_values(cfg, rng, shape, special=0.02, wild=0.1):
    """Random bit patterns for stimulus: mostly normal numbers within 2^+-band of 1 (so that dot
    products rarely overflow and the rounding paths are exercised), some with short mantissas
    (exact sums, ties, cancellation), a share ``wild`` of uniform bit patterns (overflow, flush,
    NaN) and a share ``special`` of the special classes (zeros, subnormals, extremes, inf, NaN)."""
    fmt = cfg.fmt
    band = min(20, fmt.bias // 3)
    s = rng.integers(0, 2, size=shape, dtype=np.int64)
    e = fmt.bias + rng.integers(-band, band + 1, size=shape, dtype=np.int64)
    m = rng.integers(0, 1 << fmt.mbits, size=shape, dtype=np.int64)
    short = rng.random(shape) < 0.3
    m = np.where(short, m & ~((1 << max(fmt.mbits - 3, 0)) - 1), m)
    x = (s << (fmt.width - 1)) | (e << fmt.mbits) | m
    pick = rng.random(shape) < wild
    x[pick] = rng.integers(0, 1 << fmt.width, size=int(pick.sum()), dtype=np.int64)
    pick = rng.random(shape) < special
    x[pick] = rng.choice(g.special_values(fmt), size=int(pick.sum()))
    return x


# Unit plumbing ------------------------------------------------------------------------------------

def fpdot_check_params(cfg, params):
    return g.check_lane_weights(cfg, params, f"{cfg.act_format} bit patterns", g.check_acts)


def fpdot_random_params(cfg, rng):
    return {"weights": random_values(cfg, rng, cfg.lanes, special=0.0, wild=0.0)}


def fpdot_check_inputs(cfg, x):
    """(N,) or (V, N) bit patterns (float32 / float16 arrays accepted for fp32 / fp16)."""
    return g.expdot_check_inputs(cfg, x)


def fpdot_random_inputs(cfg, rng, frames=1):
    return random_values(cfg, rng, (frames, cfg.lanes))


def fpdot_reference(cfg, params, x):
    """``fpdot`` outputs (V,): uint32 (fp32) or uint16 (fp16, bf16) bit patterns."""
    x = fpdot_check_inputs(cfg, x)
    w = fpdot_check_params(cfg, params)["weights"]
    return fpdot_ref(cfg, x, w).astype(np.uint32 if cfg.x_bits == 32 else np.uint16)


def fpdot_weight_memory(cfg, params):
    """Weight memory: depth lanes/simd; word f holds lane f*simd + s at bits [s*W, (s+1)*W)."""
    w = fpdot_check_params(cfg, params)["weights"].reshape(cfg.fold, cfg.simd)
    return [sum(int(v) << (s * cfg.x_bits) for s, v in enumerate(row)) for row in w]


def fpdot_pack_inputs(cfg, x):
    """One word per fold, as for ``expdot``: lane f*simd + s at bits [s*W, (s+1)*W)."""
    return g.expdot_pack_inputs(cfg, x)


def fpdot_unpack_outputs(cfg, words, frames):
    return g.unpack_scalars(cfg, words, frames, cfg.x_bits, False,
                            np.uint32 if cfg.x_bits == 32 else np.uint16)
