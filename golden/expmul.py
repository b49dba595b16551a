"""Sign-exponent-only weights: formats, configurations and the bit-exact references.

This module is the single definition of the arithmetic of three units:

* ``expmul``: one exponent-adder multiplier, activation x (IEEE fp32/fp16/bf16 or signed fixed
  point) times a weight w = +-2^d given as a sign-exponent-only code (SEOFP-NET,
  SEOFP-NET, arXiv 2111.04436);
* ``expdot``: an N-lane dot product of such products with exact (Kulisch-style) accumulation and
  one rounding (or, ``accumulator='rounded'``, a conventional float accumulator: each fold's
  products summed exactly, the running sum rounded to the activation format after every fold);
* ``mulbase``: the baselines, a conventional fp32 or bf16 multiplier (round to nearest even) or a
  signed 8 x 8 integer multiplier, with the same stream interface.

The generators (:mod:`qhw.hdl.expmul`, :mod:`qhw.hdl.expdot`, :mod:`qhw.hdl.mulbase`) import the
formats and packings from here. docs/expmul.md states every rule; the short version:

Weight code (``1 + E`` bits): bit E is the sign, bits [0, E) the exponent field f. f = 0 is the
zero weight (+-0); f in 1..2^E-1 is w = (-1)^sign * 2^(f - weight_bias).

Float activations, ``expmul``: the product keeps x's mantissa; its exponent field is
e_x + f - weight_bias and its sign is s_x XOR s_w. Subnormal inputs are flushed to zero (treated
as a zero of the same sign); a result exponent field <= 0 underflows to a signed zero; a result
exponent field >= 2^ebits - 1 overflows to a signed infinity (``overflow='inf'``) or to the
largest finite value of that sign (``overflow='saturate'``). NaN in, or infinity times a zero
weight, gives the canonical quiet NaN (sign 0, exponent all ones, mantissa MSB only); infinity
times a non-zero weight is an infinity with the XORed sign; zero times anything finite is a zero
with the XORed sign.

Fixed-point activations (signed ``act_bits``-bit integers, any binary point): the product in the
same format is x * 2^d: a left shift that saturates to the format's range, or an arithmetic right
shift (rounding toward minus infinity, like Python's ``>>``). A zero weight gives 0.
"""

import dataclasses
import numpy as np

from ..config import check_choice, check_divides, check_int
from ..errors import QhwInputError

__all__ = [
    "FLOAT_FORMATS", "FloatFormat", "float_format", "ExpMulConfig", "ExpDotConfig",
    "MulBaseConfig", "expmul_ref", "expdot_ref", "mulbase_ref", "round_to_float",
    "encode_weights", "decode_weights", "qnan", "max_finite", "calibrate_exp_range",
    "rounded_accumulation", "EXPDOT_CUT_NAMES",
]

ACT_FORMATS = ("fp32", "fp16", "bf16", "fixed")
OVERFLOW = ("inf", "saturate")
ACCUMULATORS = ("exact", "bounded", "rounded")
OUT_OF_RANGE = ("saturate", "flag")
PRODUCTS = ("format", "exact")
PIPELINES = ("compact", "deep")
#: Where ``expdot``'s ``pipeline: "deep"`` may register, in pipeline order
#: (:attr:`ExpDotConfig.cuts`, :mod:`qhw.hdl.expdot`): the products; the float alignment's shift
#: amounts and flags, its barrel-shifted magnitudes, the signed lane values in the accumulator's
#: grid (fixed point: that one alignment register); the lane-sum tree's levels but the last, its
#: last level (the fold's lane sum); the float rounding's |sum|, leading one and normalising
#: shift. Cuts change the latency only, never the result.
EXPDOT_CUT_NAMES = ("product", "exponent", "shift", "align", "tree", "sum", "abs", "lead",
                    "normalise")
BIAS_RANGE = (-512, 512)


@dataclasses.dataclass(frozen=True)
class FloatFormat:
    """An IEEE-style binary float: 1 sign bit, ``ebits`` exponent bits, ``mbits`` mantissa bits."""
    name: str
    ebits: int
    mbits: int

    @property
    def width(self):
        return 1 + self.ebits + self.mbits

    @property
    def bias(self):
        return (1 << (self.ebits - 1)) - 1

    @property
    def emask(self):
        """All-ones exponent field (infinities and NaNs)."""
        return (1 << self.ebits) - 1

    @property
    def mmask(self):
        return (1 << self.mbits) - 1


FLOAT_FORMATS = {
    "fp32": FloatFormat("fp32", 8, 23),
    "fp16": FloatFormat("fp16", 5, 10),
    "bf16": FloatFormat("bf16", 8, 7),
}


def float_format(name):
    return FLOAT_FORMATS[name]


def qnan(fmt):
    """The canonical quiet NaN of the units: sign 0, exponent all ones, mantissa MSB only."""
    return (fmt.emask << fmt.mbits) | (1 << (fmt.mbits - 1))


def max_finite(fmt, sign=0):
    return (sign << (fmt.width - 1)) | ((fmt.emask - 1) << fmt.mbits) | fmt.mmask


def _check_weight_format(cfg):
    check_int("weight_exp_bits", cfg.weight_exp_bits, low=2, high=8)
    check_int("weight_bias", cfg.weight_bias, low=BIAS_RANGE[0], high=BIAS_RANGE[1])


def _check_act_format(cfg):
    check_choice("act_format", cfg.act_format, ACT_FORMATS)
    check_int("act_bits", cfg.act_bits, low=2, high=32)
    check_choice("overflow", cfg.overflow, OVERFLOW)
    if cfg.act_format == "fixed" and cfg.overflow == "inf":
        raise QhwInputError("overflow: must be 'saturate' for act_format 'fixed' "
                            "(fixed point has no infinity), got 'inf'")


class _ActMixin:
    @property
    def is_float(self):
        return self.act_format != "fixed"

    @property
    def fmt(self):
        """The activation's :class:`FloatFormat` (None for fixed point)."""
        return FLOAT_FORMATS.get(self.act_format)

    @property
    def x_bits(self):
        """Width of one activation (and of one ``expmul`` product)."""
        return self.fmt.width if self.is_float else self.act_bits

    @property
    def w_bits(self):
        """Width of one weight code: sign + exponent field."""
        return 1 + self.weight_exp_bits

    @property
    def d_range(self):
        """(min, max) exponent d = f - weight_bias of a non-zero weight."""
        return 1 - self.weight_bias, (1 << self.weight_exp_bits) - 1 - self.weight_bias


@dataclasses.dataclass(frozen=True)
class ExpMulConfig(_ActMixin):
    """One exponent-adder multiplier: activation x weight code -> product in x's format.

    Parameters
    ----------
    act_format : 'fp32', 'fp16', 'bf16' or 'fixed'
    act_bits : int
        Width of a signed fixed-point activation (2..32); used only with ``act_format='fixed'``.
    weight_exp_bits : int
        E, the weight's exponent-field width (2..8).
    weight_bias : int
        Weight exponent bias: field f means 2^(f - weight_bias) (-512..512).
    overflow : 'saturate' or 'inf'
        What a float product beyond the format's range becomes (fixed point always saturates).
    """

    act_format: str = "fp32"
    act_bits: int = 8
    weight_exp_bits: int = 5
    weight_bias: int = 31
    overflow: str = "saturate"

    def __post_init__(self):
        _check_act_format(self)
        _check_weight_format(self)


@dataclasses.dataclass(frozen=True)
class ExpDotConfig(_ActMixin):
    """An N-lane dot product of exponent-adder products, accumulated exactly (or rounded per fold).

    Parameters
    ----------
    lanes : int
        N, the vector length (1..1024).
    simd : int
        Lanes computed per cycle and carried per input transfer; divides ``lanes``.
    act_format, act_bits, weight_exp_bits, weight_bias, overflow
        As for :class:`ExpMulConfig`; ``overflow`` applies to the products and to the final
        rounding.
    accumulator : 'exact', 'bounded' or 'rounded'
        'exact' (default): the full-range exact accumulator, every finite product of the format
        (``acc_bits`` = product_mag_bits + ceil(log2 N) + 1; fp32 282 bits at N = 16).
        'bounded' (float formats only): an exact accumulator for the products whose unbiased
        exponent lies in ``exp_range``; far narrower (see :attr:`acc_bits`).
        'rounded' (float formats only): a conventional float accumulator, one activation-format
        word: the ``simd`` products of each fold are summed exactly with the running sum, and
        that sum is rounded to the format (nearest even, flush below the smallest normal,
        ``overflow``) after every fold (:func:`rounded_accumulation`); lanes / simd roundings
        per vector instead of one.
    exp_range : (lo, hi) or None
        'bounded' only (and required there): the unbiased exponents E of the products
        (|p| = 1.m * 2^E) the accumulator holds exactly, as calibrated
        (:func:`calibrate_exp_range`); 1 - bias_x <= lo <= hi <= 2^ebits - 2 - bias_x.
    out_of_range : 'saturate' or 'flag'
        'bounded' only: a finite product with E > hi becomes the largest in-range magnitude of its
        sign, (2 - 2^-m) * 2^hi ('saturate'), or makes the vector's output the canonical NaN
        ('flag'). A product with E < lo is flushed to zero in both modes (it is below the
        accumulator's LSB 2^(lo - m)).
    product : 'format' or 'exact'
        'format' (default): each product is the ``expmul`` product, in the activation's format
        (fixed point: saturating left shifts, flooring right shifts). 'exact' (fixed point only):
        the shift-and-add dot product, x * 2^(d - d_min) exact, no saturation and no rounding;
        the output is the exact sum in units of 2^d_min activation LSBs (``acc_bits`` <= 64).
    pipeline : 'compact' or 'deep'
        Register stages only (the arithmetic is the same): 'compact' (default) 5 stages;
        'deep' registers the alignment, every level of the lane-sum tree and three rounding
        stages, for clock (latency :func:`qhw.hdl.expdot.stages`); with 'rounded' the rounding
        is inside the accumulator's loop and is not pipelined.
    cuts : list of names from :data:`EXPDOT_CUT_NAMES`, or None
        ``pipeline: "deep"`` only: which of its registers to keep (the input, accumulator and
        output registers always stay); None: all of them. "product": the products; float:
        "exponent" (shift amounts and flags), "shift" (the shifted magnitudes), "align" (the
        signed lane values), fixed point: "align" (the lane values); "tree" (the lane-sum
        levels but the last, simd > 2) and "sum" (the last, simd > 1); float with 'exact' or
        'bounded': "abs" (|sum|), "lead" (the leading one), "normalise" (the normalising
        shift). Changes the latency, not the result.
    """

    lanes: int = 16
    simd: int = 4
    act_format: str = "fp32"
    act_bits: int = 8
    weight_exp_bits: int = 5
    weight_bias: int = 31
    overflow: str = "saturate"
    accumulator: str = "exact"
    exp_range: tuple = None
    out_of_range: str = "saturate"
    product: str = "format"
    pipeline: str = "compact"
    cuts: tuple = None

    def __post_init__(self):
        check_int("lanes", self.lanes, low=1, high=1024)
        check_int("simd", self.simd, low=1)
        check_divides("simd", self.simd, self.lanes, "lanes")
        _check_act_format(self)
        _check_weight_format(self)
        check_choice("accumulator", self.accumulator, ACCUMULATORS)
        check_choice("out_of_range", self.out_of_range, OUT_OF_RANGE)
        if self.accumulator != "exact" and not self.is_float:
            raise QhwInputError(f"accumulator: {self.accumulator!r} needs a float act_format "
                                f"(fixed point's accumulator is already exact at acc_bits), "
                                f"got act_format 'fixed'")
        if self.accumulator == "bounded":
            fmt = self.fmt
            e_lo, e_hi = 1 - fmt.bias, fmt.emask - 1 - fmt.bias
            r = self.exp_range
            if (not isinstance(r, tuple) or len(r) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in r)
                    or not e_lo <= r[0] <= r[1] <= e_hi):
                raise QhwInputError(
                    f"exp_range: must be [lo, hi], integers with {e_lo} <= lo <= hi <= {e_hi} "
                    f"(unbiased {self.act_format} product exponents) for accumulator "
                    f"'bounded', got {r!r}")
        elif self.exp_range is not None:
            raise QhwInputError(f"exp_range: only with accumulator 'bounded' (accumulator is "
                                f"{self.accumulator!r}), got {self.exp_range!r}")
        check_choice("product", self.product, PRODUCTS)
        check_choice("pipeline", self.pipeline, PIPELINES)
        if self.exact_products:
            if self.is_float:
                raise QhwInputError(f"product: 'exact' needs act_format 'fixed' (float "
                                    f"products are exact already), got act_format "
                                    f"{self.act_format!r}")
            if self.acc_bits > 64:
                raise QhwInputError(
                    f"product: 'exact' needs acc_bits = act_bits + 2^weight_exp_bits - 1 + "
                    f"ceil(log2 lanes) <= 64, got {self.acc_bits} (act_bits {self.act_bits}, "
                    f"weight_exp_bits {self.weight_exp_bits}, lanes {self.lanes})")
        self._check_cuts()

    def _check_cuts(self):
        """``cuts``: None, or distinct names of this configuration's cuts, only with 'deep'."""
        value = self.cuts
        if value is None:
            return
        if isinstance(value, list):     # Python callers may pass a list: keep it hashable
            value = tuple(value)
            object.__setattr__(self, "cuts", value)
        if self.pipeline != "deep":
            raise QhwInputError(f"cuts: only with pipeline 'deep' (pipeline is "
                                f"{self.pipeline!r}), got {value!r}")
        allowed = self.available_cuts
        if (not isinstance(value, tuple) or any(v not in allowed for v in value)
                or len(set(value)) != len(value)):
            shown = list(value) if isinstance(value, tuple) else value
            raise QhwInputError(f"cuts: must be a list of distinct names from "
                                f"{', '.join(repr(a) for a in allowed)} (this configuration's "
                                f"cuts), got {shown!r}")

    @property
    def available_cuts(self):
        """The cuts a deep pipeline of this configuration has, in pipeline order: "product";
        "exponent", "shift", "align" (float) or "align" (fixed point); "tree" (simd > 2); "sum"
        (simd > 1); "abs", "lead", "normalise" (float, not 'rounded')."""
        names = ["product"] + (["exponent", "shift"] if self.is_float else []) + ["align"]
        names += (["tree"] if self.simd > 2 else []) + (["sum"] if self.simd > 1 else [])
        if self.is_float and not self.rounded:
            names += ["abs", "lead", "normalise"]
        return tuple(names)

    @property
    def cut_names(self):
        """``pipeline: "deep"``: the registered cuts in pipeline order (every available one
        unless :attr:`cuts` names some); () for 'compact'."""
        if self.pipeline != "deep":
            return ()
        chosen = self.available_cuts if self.cuts is None else self.cuts
        return tuple(c for c in self.available_cuts if c in chosen)

    @property
    def exact_products(self):
        return self.product == "exact"

    @property
    def shift_bits(self):
        """'exact' products: the largest shift d - d_min = 2^E - 2."""
        return (1 << self.weight_exp_bits) - 2

    @property
    def product_bits(self):
        """Width of one lane's product: the activation's (``expmul``), or for 'exact' products
        the signed act_bits + 1 + shift_bits (-x of the most negative x, shifted)."""
        return self.act_bits + 1 + self.shift_bits if self.exact_products else self.x_bits

    @property
    def bounded(self):
        return self.accumulator == "bounded"

    @property
    def rounded(self):
        """'rounded': the running sum is rounded to the activation format after every fold."""
        return self.accumulator == "rounded"

    @property
    def acc_register_bits(self):
        """Bits of the accumulator register: one activation-format word for 'rounded', else
        :attr:`acc_bits`."""
        return self.fmt.width if self.rounded else self.acc_bits

    @property
    def lsb_exp(self):
        """Exponent of the accumulator's LSB (float formats): 2^(1 - bias - m) for 'exact',
        2^(lo - m) for 'bounded'."""
        m = self.fmt.mbits
        return (self.exp_range[0] if self.bounded else 1 - self.fmt.bias) - m

    @property
    def fold(self):
        """Input transfers (and cycles) per vector: lanes / simd."""
        return self.lanes // self.simd

    @property
    def lane_tree_levels(self):
        """Levels of the pairwise lane-sum tree over one fold: ceil(log2 simd)."""
        return (self.simd - 1).bit_length()

    @property
    def lane_log(self):
        return (self.lanes - 1).bit_length()  # ceil(log2 N)

    @property
    def product_mag_bits(self):
        """Bits of the magnitude of one finite product in units of the accumulator's LSB.

        Float: a finite product is (1.m) * 2^(e - bias) with e in 1..2^ebits-2; with the LSB at
        2^(1 - bias - mbits) its magnitude is (2^mbits + m) << (e - 1) < 2^(mbits + 2^ebits - 2).
        Fixed: |p| <= 2^(act_bits - 1).
        Bounded: an in-range product is (2^m + mant) << (E - lo) with E - lo in 0..hi - lo, so
        below 2^(m + 1 + hi - lo) (a saturated product is the largest of these).
        """
        if self.bounded:
            return self.fmt.mbits + 1 + self.exp_range[1] - self.exp_range[0]
        if self.is_float:
            return self.fmt.mbits + self.fmt.emask - 1
        return self.act_bits - 1

    @property
    def acc_bits(self):
        """Signed accumulator width: N products cannot overflow it.

        |sum| <= N * 2^k with k = product_mag_bits, and N <= 2^ceil(log2 N), so
        k + ceil(log2 N) + 1 signed bits hold every sum (fixed point: the most negative products
        -2^(B-1) sum to exactly -2^(B-1+ceil(log2 N)) at most, which still fits).
        (Bounded: at least m + 3 bits, what the rounding's guard and sticky bits need.)
        (Exact fixed-point products: |p| <= 2^(B - 1 + S), S = shift_bits, reached by -x * -w,
        so B + S + ceil(log2 N) + 1 bits.)
        ('rounded': the exact sum of one fold's simd products and the running sum, a finite
        format value, so below (simd + 1) * 2^k: k + ceil(log2 (simd + 1)) + 1 bits; the
        register itself is one format word, :attr:`acc_register_bits`.)
        """
        if self.exact_products:
            return self.act_bits + self.shift_bits + self.lane_log + 1
        if self.rounded:
            return self.product_mag_bits + self.simd.bit_length() + 1
        bits = self.product_mag_bits + self.lane_log + 1
        return max(bits, self.fmt.mbits + 3) if self.bounded else bits

    @property
    def out_bits(self):
        """Width of one output: the activation format (float) or the full sum (fixed)."""
        return self.fmt.width if self.is_float else self.acc_bits


@dataclasses.dataclass(frozen=True)
class MulBaseConfig:
    """A conventional multiplier, for comparison.

    Parameters
    ----------
    kind : 'fp32', 'bf16' or 'int8'
        IEEE fp32 or bf16 with round to nearest even (subnormals flushed to zero on input and
        output), or a signed 8 x 8 -> 16-bit integer multiplier.
    """

    kind: str = "fp32"

    def __post_init__(self):
        check_choice("kind", self.kind, ("fp32", "bf16", "int8"))

    @property
    def is_float(self):
        return self.kind != "int8"

    @property
    def fmt(self):
        return FLOAT_FORMATS.get(self.kind)

    @property
    def x_bits(self):
        return self.fmt.width if self.is_float else 8

    @property
    def out_bits(self):
        return self.fmt.width if self.is_float else 16


# Weight codes -------------------------------------------------------------------------------------

def encode_weights(cfg, values):
    """Codes of weights that are exactly 0 or +-2^d with d in the config's range.

    Use :mod:`qhw.golden.expmul_torch` to quantize arbitrary weights first.
    """
    v = np.asarray(values, dtype=np.float64)
    e = cfg.weight_exp_bits
    sign = np.signbit(v).astype(np.int64)
    mag = np.abs(v)
    with np.errstate(divide="ignore"):
        d = np.where(mag > 0, np.log2(np.where(mag > 0, mag, 1.0)), 0.0)
    lo, hi = cfg.d_range
    if not (np.isfinite(v).all() and (d == np.round(d)).all()
            and ((mag == 0) | ((d >= lo) & (d <= hi))).all()):
        raise QhwInputError(f"weights: values must be 0 or +-2^d with d in {lo}..{hi}")
    f = np.where(mag > 0, d.astype(np.int64) + cfg.weight_bias, 0)
    return (sign << e) | f


def decode_weights(cfg, codes):
    """Float64 values of weight codes (exact)."""
    c = np.asarray(codes, dtype=np.int64)
    e = cfg.weight_exp_bits
    f = c & ((1 << e) - 1)
    s = (c >> e) & 1
    mag = np.where(f == 0, 0.0, np.ldexp(1.0, (f - cfg.weight_bias).astype(np.int64)))
    return np.where(s == 1, -mag, mag)


def _check_int_array(name, a, low, high, what):
    a = np.asarray(a)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise QhwInputError(f"{name}: dtype must be an integer type ({what}), got {a.dtype}")
    if a.size:
        bad = (a < low) | (a > high)
        if bad.any():
            raise QhwInputError(f"{name}: values must be in {low}..{high} ({what}), "
                                f"found {a[bad].flat[0]}")
    return a.astype(np.int64)


def check_codes(cfg, name, codes):
    return _check_int_array(name, codes, 0, (1 << cfg.w_bits) - 1,
                            f"weight codes: sign << {cfg.weight_exp_bits} | exponent field")


def check_acts(cfg, name, x):
    """Activations as int64: float bit patterns (unsigned) or signed fixed-point integers.

    A float32 array is accepted for fp32 and a float16 array for fp16 (their bit patterns).
    """
    x = np.asarray(x)
    if cfg.is_float:
        native = {"fp32": np.float32, "fp16": np.float16}.get(cfg.act_format)
        if native is not None and x.dtype == native:
            return x.view(np.uint32 if native is np.float32 else np.uint16).astype(np.int64)
        return _check_int_array(name, x, 0, (1 << cfg.x_bits) - 1,
                                f"{cfg.act_format} bit patterns")
    b = cfg.act_bits
    return _check_int_array(name, x, -(1 << (b - 1)), (1 << (b - 1)) - 1,
                            f"signed {b}-bit integers")


# expmul reference ---------------------------------------------------------------------------------

def expmul_ref(cfg, x, w):
    """Bit-exact ``expmul`` products of activations ``x`` and weight codes ``w`` (int64 arrays).

    Floats: returns bit patterns; fixed point: signed integers. Any config with ``act_format``,
    ``act_bits``, ``weight_exp_bits``, ``weight_bias`` and ``overflow`` works (also ExpDotConfig).
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    ew = cfg.weight_exp_bits
    sw = (w >> ew) & 1
    fw = w & ((1 << ew) - 1)
    w_zero = fw == 0
    d = fw - cfg.weight_bias
    if not cfg.is_float:
        b = cfg.act_bits
        lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
        xs = np.where(sw == 1, -x, x)  # exact in int64; may be 2^(b-1), saturated below
        left = np.clip(d, 0, b)        # shifting a non-zero |x| >= 1 by b always saturates
        shifted = np.where(left >= b, np.where(xs > 0, hi + 1, np.where(xs < 0, lo - 1, 0)),
                           xs << np.minimum(left, b - 1))
        right = np.clip(-d, 0, 63)
        y = np.where(d >= 0, shifted, xs >> right)
        y = np.clip(y, lo, hi)
        return np.where(w_zero, 0, y)
    fmt = cfg.fmt
    top = fmt.width - 1
    sx = (x >> top) & 1
    ex = (x >> fmt.mbits) & fmt.emask
    mx = x & fmt.mmask
    s = sx ^ sw
    e = ex + d
    x_special = ex == fmt.emask
    x_inf = x_special & (mx == 0)
    x_nan = x_special & (mx != 0)
    x_zero = ex == 0  # zero or subnormal: flushed
    nan = x_nan | (x_inf & w_zero)
    inf = x_inf & ~w_zero
    finite = ~x_special & ~x_zero & ~w_zero
    ovf = finite & (e >= fmt.emask)
    unf = finite & (e <= 0)
    signed_zero = s << top
    out = (s << top) | (np.clip(e, 0, fmt.emask) << fmt.mbits) | mx
    out = np.where(unf | (~x_special & (x_zero | w_zero)), signed_zero, out)
    if cfg.overflow == "inf":
        out = np.where(ovf, signed_zero | (fmt.emask << fmt.mbits), out)
    else:
        out = np.where(ovf, signed_zero | ((fmt.emask - 1) << fmt.mbits) | fmt.mmask, out)
    out = np.where(inf, signed_zero | (fmt.emask << fmt.mbits), out)
    return np.where(nan, qnan(fmt), out)


# Rounding of an exact sum -------------------------------------------------------------------------

def round_to_float(total, fmt, overflow, lsb_exp=None):
    """Round the exact integer ``total`` (in units of 2^lsb_exp, by default 2^(1 - bias - mbits))
    to ``fmt`` bits.

    Round to nearest, ties to even; a result whose leading bit is below the smallest normal
    flushes to a zero with the sum's sign; an exact zero is +0; beyond the largest finite value it
    becomes infinity or the largest finite value (``overflow``). Python ints (any size).
    """
    total = int(total)
    if total == 0:
        return 0
    if lsb_exp is None:
        lsb_exp = 1 - fmt.bias - fmt.mbits
    s = int(total < 0)
    mag = -total if s else total
    p = mag.bit_length() - 1
    e = p + lsb_exp + fmt.bias  # biased exponent of the leading bit
    if e < 1:
        return s << (fmt.width - 1)
    shift = p - fmt.mbits
    if shift <= 0:
        sig = mag << -shift
    else:
        sig = mag >> shift
        rem = mag - (sig << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and sig & 1):
            sig += 1
    if sig >> (fmt.mbits + 1):
        sig >>= 1
        e += 1
    if e >= fmt.emask:
        if overflow == "inf":
            return (s << (fmt.width - 1)) | (fmt.emask << fmt.mbits)
        return max_finite(fmt, s)
    return (s << (fmt.width - 1)) | (e << fmt.mbits) | (sig & fmt.mmask)


def float_bits_to_fixed(bits, fmt):
    """Exact integer value of a finite, flushed float (units 2^(1 - bias - mbits)); Python int."""
    bits = int(bits)
    s = (bits >> (fmt.width - 1)) & 1
    e = (bits >> fmt.mbits) & fmt.emask
    if e == 0:
        return 0
    v = ((1 << fmt.mbits) | (bits & fmt.mmask)) << (e - 1)
    return -v if s else v


# expdot reference ---------------------------------------------------------------------------------

def bounded_term(cfg, bits):
    """One float product's term in a bounded accumulator (units 2^(lo - m)) and whether it is
    above the range: ``(value, above)``. E < lo flushes to 0; E > hi gives the largest in-range
    magnitude of its sign (used as is by ``out_of_range='saturate'``; 'flag' turns ``above``
    into a NaN output)."""
    fmt = cfg.fmt
    lo, hi = cfg.exp_range
    bits = int(bits)
    s = (bits >> (fmt.width - 1)) & 1
    e = (bits >> fmt.mbits) & fmt.emask
    if e == 0:
        return 0, False
    big_e = e - fmt.bias
    if big_e < lo:
        return 0, False
    above = big_e > hi
    v = (((1 << (fmt.mbits + 1)) - 1) << (hi - lo) if above
         else ((1 << fmt.mbits) | (bits & fmt.mmask)) << (big_e - lo))
    return (-v if s else v), above


def rounded_accumulation(cfg, products):
    """One vector of ``accumulator='rounded'``: the running sum rounded after every fold.

    ``products``: the vector's N ``expmul`` products (bit patterns). acc starts at 0; for each fold
    f (lanes f*simd .. f*simd + simd - 1, in order) acc = round(acc + the exact sum of the fold's
    finite products) (:func:`round_to_float`: nearest even, flush below the smallest normal, an
    exact zero +0, ``overflow``). Infinite and NaN products count 0 here (the caller's flags
    decide those vectors). A rounding that overflows to infinity (``overflow='inf'``) is
    reported if no infinite or NaN product came before it or with it (as in IEEE arithmetic,
    where a running sum that is already infinite or NaN stays so, and a later overflow of the
    finite part cannot happen); then nothing more is reported and the running sum restarts from
    0 (the output is that infinity, or NaN if an opposite infinity follows). Returns
    ``(bits, pinf, ninf)``: the last rounding and whether an overflow to +inf / -inf is reported.
    """
    fmt = cfg.fmt
    acc, pinf, ninf, y, special = 0, False, False, 0, False
    for f in range(cfg.fold):
        fold = [int(b) for b in products[f * cfg.simd:(f + 1) * cfg.simd]]
        finite = [b for b in fold if (b >> fmt.mbits) & fmt.emask != fmt.emask]
        special = special or len(finite) < len(fold)
        total = acc + sum(float_bits_to_fixed(b, fmt) for b in finite)
        y = round_to_float(total, fmt, cfg.overflow)
        if (y >> fmt.mbits) & fmt.emask == fmt.emask:
            if not special:
                pinf, ninf = total > 0, total < 0
            special, acc = True, 0
        else:
            acc = float_bits_to_fixed(y, fmt)
    return y, pinf, ninf


def exact_fixed_products(cfg, x, w):
    """'exact' fixed-point products: (-1)^s_w * x * 2^(f - 1) (= x * w / 2^d_min), 0 for f = 0;
    int64 (acc_bits <= 64 bounds them)."""
    e = cfg.weight_exp_bits
    f = w & ((1 << e) - 1)
    xs = np.where((w >> e) & 1, -x, x)
    return np.where(f == 0, 0, xs << np.maximum(f - 1, 0))


def expdot_ref(cfg, x, w):
    """Bit-exact ``expdot`` outputs for activations ``x`` (V, N) and weight codes ``w`` (N,).

    Each output is the exact sum of the N ``expmul`` products, rounded once (float formats, see
    :func:`round_to_float`) or exact (fixed point: ``acc_bits`` signed bits). Special values: a
    NaN product, or infinities of both signs, give the canonical NaN; otherwise an infinite
    product gives that infinity. ``accumulator='bounded'``: the sum of the :func:`bounded_term`
    of each product, rounded once; with ``out_of_range='flag'`` a product above the range (and no
    infinity) gives the canonical NaN. ``accumulator='rounded'``: the last rounding of
    :func:`rounded_accumulation` (one per fold), its overflows to infinity counted with the
    infinite products. ``product='exact'`` (fixed point): the exact sum of
    :func:`exact_fixed_products`.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if cfg.exact_products:
        return exact_fixed_products(cfg, x, w[None, :]).sum(axis=1).astype(np.int64)
    p = expmul_ref(cfg, x, w[None, :])
    if not cfg.is_float:
        return p.sum(axis=1).astype(np.int64)
    fmt = cfg.fmt
    e = (p >> fmt.mbits) & fmt.emask
    m = p & fmt.mmask
    s = (p >> (fmt.width - 1)) & 1
    nan = ((e == fmt.emask) & (m != 0)).any(axis=1)
    pinf = ((e == fmt.emask) & (m == 0) & (s == 0)).any(axis=1)
    ninf = ((e == fmt.emask) & (m == 0) & (s == 1)).any(axis=1)
    out = np.zeros(x.shape[0], dtype=np.int64)
    for v in range(x.shape[0]):
        if cfg.rounded:
            y, acc_pinf, acc_ninf = rounded_accumulation(cfg, p[v])
            pinf[v] |= acc_pinf
            ninf[v] |= acc_ninf
        if nan[v] or (pinf[v] and ninf[v]):
            out[v] = qnan(fmt)
        elif pinf[v] or ninf[v]:
            out[v] = (int(ninf[v]) << (fmt.width - 1)) | (fmt.emask << fmt.mbits)
        elif cfg.rounded:
            out[v] = y
        elif cfg.bounded:
            terms = [bounded_term(cfg, b) for b in p[v]]
            if cfg.out_of_range == "flag" and any(a for _, a in terms):
                out[v] = qnan(fmt)
            else:
                out[v] = round_to_float(sum(t for t, _ in terms), fmt, cfg.overflow, cfg.lsb_exp)
        else:
            total = sum(float_bits_to_fixed(b, fmt) for b in p[v])
            out[v] = round_to_float(total, fmt, cfg.overflow)
    return out


def to_format_bits(cfg, values):
    """Float values (any float dtype) as the activation format's bit patterns (round to nearest
    even; bf16 from float32); an integer array is taken as bit patterns already."""
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.integer):
        return check_acts(cfg, "activations", v)
    if cfg.act_format == "fp16":
        return v.astype(np.float16).view(np.uint16).astype(np.int64)
    bits = v.astype(np.float32).view(np.uint32).astype(np.int64)
    if cfg.act_format == "fp32":
        return bits
    return (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # bf16, RNE (NaN payloads aside)


def calibrate_exp_range(cfg, acts, weights, coverage=1.0, headroom=0):
    """The ``exp_range`` of a bounded ``expdot`` from recorded activations.

    ``acts``: recorded activations (..., lanes), float values or the format's bit patterns;
    ``weights``: the lanes' weight codes (lanes,). Returns ``(lo, hi)``: hi is the largest
    unbiased exponent of the finite non-zero ``expmul`` products plus ``headroom`` (so no product
    of the recording saturates); lo is the smallest such exponent, or with ``coverage`` < 1 the
    exponent below which only a share 1 - coverage of the products lies (those flush to zero).
    Both are clipped to the format's product exponents. Infinite and NaN products are ignored.
    """
    if not cfg.is_float:
        raise QhwInputError("calibrate_exp_range: needs a float act_format")
    if not 0 < coverage <= 1:
        raise QhwInputError(f"coverage: must be in (0, 1], got {coverage}")
    fmt = cfg.fmt
    x = to_format_bits(cfg, acts).reshape(-1, cfg.lanes)
    w = check_codes(cfg, "weights", np.asarray(weights).reshape(cfg.lanes))
    p = expmul_ref(cfg, x, w[None, :])
    e = ((p >> fmt.mbits) & fmt.emask).ravel()
    e = np.sort(e[(e > 0) & (e < fmt.emask)]) - fmt.bias
    if e.size == 0:
        raise QhwInputError("calibrate_exp_range: no finite non-zero product in the recording")
    lo = int(e[min(int(np.floor((1 - coverage) * e.size)), e.size - 1)])
    hi = int(e[-1]) + int(headroom)
    e_lo, e_hi = 1 - fmt.bias, fmt.emask - 1 - fmt.bias
    return max(e_lo, min(lo, e_hi)), max(e_lo, min(max(hi, lo), e_hi))


# mulbase reference --------------------------------------------------------------------------------

def mulbase_ref(cfg, a, b):
    """Bit-exact baseline products of ``a`` and ``b`` (int64 arrays of bit patterns / integers).

    Float: IEEE multiplication with round to nearest even, subnormal inputs and results flushed
    to signed zero (the rounding is done as if the exponent range were unbounded, then a result
    exponent field <= 0 flushes), overflow to infinity, the canonical quiet NaN for NaN inputs and
    0 * inf. int8: the signed 16-bit product.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if not cfg.is_float:
        return a * b
    fmt = cfg.fmt
    top, mb = fmt.width - 1, fmt.mbits
    sa, sb = (a >> top) & 1, (b >> top) & 1
    ea, eb = (a >> mb) & fmt.emask, (b >> mb) & fmt.emask
    ma, mbb = a & fmt.mmask, b & fmt.mmask
    s = sa ^ sb
    a_nan, b_nan = (ea == fmt.emask) & (ma != 0), (eb == fmt.emask) & (mbb != 0)
    a_inf, b_inf = (ea == fmt.emask) & (ma == 0), (eb == fmt.emask) & (mbb == 0)
    a_zero, b_zero = ea == 0, eb == 0
    nan = a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero)
    inf = ~nan & (a_inf | b_inf)
    zero = ~nan & ~inf & (a_zero | b_zero)
    # Significand product: (2^mb + ma)(2^mb + mb) in [2^(2mb), 2^(2mb+2)); int64 is enough for
    # fp32 (48 bits).
    prod = ((1 << mb) | ma) * ((1 << mb) | mbb)
    hi = (prod >> (2 * mb + 1)) & 1
    e = ea + eb - fmt.bias + hi
    shift = mb + hi                      # bits dropped to keep mb + 1 significand bits
    sig = prod >> shift
    rem = prod & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    up = (rem > half) | ((rem == half) & ((sig & 1) == 1))
    sig = sig + up
    carry = (sig >> (mb + 1)) & 1
    sig = np.where(carry == 1, sig >> 1, sig)
    e = e + carry
    out = (s << top) | (np.clip(e, 0, fmt.emask) << mb) | (sig & fmt.mmask)
    out = np.where(e <= 0, s << top, out)
    out = np.where(e >= fmt.emask, (s << top) | (fmt.emask << mb), out)
    out = np.where(zero, s << top, out)
    out = np.where(inf, (s << top) | (fmt.emask << mb), out)
    return np.where(nan, qnan(fmt), out)


# Unit plumbing: weight files, inputs, stream words ------------------------------------------------

def _out_dtype(cfg, fixed_dtype):
    if cfg.is_float:
        return np.uint32 if cfg.fmt.width == 32 else np.uint16
    return fixed_dtype


def _signed(values, bits):
    v = np.asarray(values, dtype=object)
    return np.array([int(w) - (1 << bits) if int(w) >> (bits - 1) else int(w) for w in v.flat],
                    dtype=np.int64).reshape(v.shape)


def _check_no_params(params):
    if params:
        raise QhwInputError(f"weights file: unknown array {sorted(params)[0]!r}; this unit takes "
                            f"its weights on the input stream, so the file must hold no arrays")
    return {}


def _check_pairs(cfg, x, second, second_name):
    """(2,) or (N, 2) int array -> (N, 2) int64, column 0 an activation, column 1 ``second``."""
    x = np.asarray(x)
    if x.shape == (2,):
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] < 1:
        raise QhwInputError(f"inputs: shape must be (2,) or (N, 2) [activation, {second_name}], "
                            f"got {x.shape}")
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise QhwInputError(f"inputs: dtype must be an integer type (bit patterns / integers), "
                            f"got {x.dtype}")
    return np.stack([check_acts(cfg, "inputs[:, 0] (activations)", x[:, 0]),
                     second(x[:, 1])], axis=1)


def special_values(fmt):
    """Bit patterns of every special class of ``fmt``: zeros, subnormals, extremes, inf, NaN."""
    t = fmt.width - 1
    vals = [0, 1, fmt.mmask, 1 << (fmt.mbits - 1),                          # +0, subnormals
            1 << fmt.mbits, (1 << fmt.mbits) | fmt.mmask,                   # smallest normals
            fmt.bias << fmt.mbits, (fmt.bias << fmt.mbits) | 1,              # 1.0, 1 + ulp
            max_finite(fmt), (fmt.emask - 1) << fmt.mbits,                  # largest finite
            fmt.emask << fmt.mbits,                                         # inf
            qnan(fmt), (fmt.emask << fmt.mbits) | 1, (fmt.emask << fmt.mbits) | fmt.mmask]  # NaNs
    return np.array(sorted(set(vals + [v | (1 << t) for v in vals])), dtype=np.int64)


def random_acts(cfg, rng, shape, special=0.1):
    """Random activations: uniform bit patterns (float) or integers, with a share of specials."""
    if cfg.is_float:
        x = rng.integers(0, 1 << cfg.fmt.width, size=shape, dtype=np.int64)
        pick = rng.random(shape) < special
        x[pick] = rng.choice(special_values(cfg.fmt), size=int(pick.sum()))
        return x
    b = cfg.act_bits
    x = rng.integers(-(1 << (b - 1)), 1 << (b - 1), size=shape, dtype=np.int64)
    pick = rng.random(shape) < special
    x[pick] = rng.choice(np.array([0, 1, -1, (1 << (b - 1)) - 1, -(1 << (b - 1))]),
                         size=int(pick.sum()))
    return x


def random_codes(cfg, rng, shape, zero=0.05):
    c = rng.integers(0, 1 << cfg.w_bits, size=shape, dtype=np.int64)
    pick = rng.random(shape) < zero
    c[pick] &= 1 << cfg.weight_exp_bits  # keep the sign: +0 or -0 weight
    return c


def pack_pairs(x_bits, pairs):
    """Stream words: activation in bits [0, x_bits), second operand above."""
    mask = (1 << x_bits) - 1
    return [(int(a) & mask) | (int(b) << x_bits) for a, b in pairs]


def unpack_scalars(cfg, words, frames, bits, signed, dtype):
    if len(words) != frames:
        raise ValueError(f"output stream: expected {frames} words, got {len(words)}")
    if signed:
        return _signed(words, bits).astype(dtype)
    return np.array([int(w) for w in words], dtype=np.int64).astype(dtype)


# expmul
def expmul_check_params(cfg, params):
    return _check_no_params(params)


def expmul_random_params(cfg, rng):
    return {}


def expmul_check_inputs(cfg, x):
    """(2,) or (N, 2) integers: [activation, weight code] per product; returns (N, 2) int64."""
    return _check_pairs(cfg, x, lambda c: check_codes(cfg, "inputs[:, 1] (weight codes)", c),
                        "weight code")


def expmul_random_inputs(cfg, rng, frames=1):
    return np.stack([random_acts(cfg, rng, frames), random_codes(cfg, rng, frames)], axis=1)


def expmul_reference(cfg, params, x):
    """``expmul`` outputs (N,): bit patterns (uint32/uint16) or fixed-point int32."""
    x = expmul_check_inputs(cfg, x)
    return expmul_ref(cfg, x[:, 0], x[:, 1]).astype(_out_dtype(cfg, np.int32))


def expmul_pack_inputs(cfg, x):
    return pack_pairs(cfg.x_bits, expmul_check_inputs(cfg, x))


def expmul_unpack_outputs(cfg, words, frames):
    return unpack_scalars(cfg, words, frames, cfg.x_bits, not cfg.is_float,
                          _out_dtype(cfg, np.int32))


# mulbase
class _Int8View(_ActMixin):
    act_format, act_bits = "fixed", 8


class _FloatView(_ActMixin):
    def __init__(self, name):
        self.act_format, self.act_bits = name, 8


def _mulbase_view(cfg):
    return _FloatView(cfg.kind) if cfg.is_float else _Int8View()


def mulbase_check_inputs(cfg, x):
    """(2,) or (N, 2) integers: [a, b] bit patterns (float kinds) or int8 values."""
    view = _mulbase_view(cfg)
    return _check_pairs(view, x, lambda b: check_acts(view, "inputs[:, 1] (b)", b), "b")


def mulbase_random_inputs(cfg, rng, frames=1):
    view = _mulbase_view(cfg)
    return np.stack([random_acts(view, rng, frames), random_acts(view, rng, frames)], axis=1)


def mulbase_reference(cfg, params, x):
    """Baseline products (N,): bit patterns (uint32/uint16) or int16."""
    x = mulbase_check_inputs(cfg, x)
    return mulbase_ref(cfg, x[:, 0], x[:, 1]).astype(_out_dtype(cfg, np.int16))


def mulbase_pack_inputs(cfg, x):
    return pack_pairs(cfg.x_bits, mulbase_check_inputs(cfg, x) & ((1 << cfg.x_bits) - 1))


def mulbase_unpack_outputs(cfg, words, frames):
    return unpack_scalars(cfg, words, frames, cfg.out_bits, not cfg.is_float,
                          _out_dtype(cfg, np.int16))


# expdot
def check_lane_weights(cfg, params, what, check_values):
    """The weight file of a dot-product unit: one array ``weights`` of ``cfg.lanes`` values,
    each checked by ``check_values(cfg, "weights", array)``; ``what`` names their format."""
    unknown = sorted(set(params) - {"weights"})
    if unknown:
        raise QhwInputError(f"weights file: unknown array {unknown[0]!r}; expected: weights")
    if "weights" not in params:
        raise QhwInputError(f"weights file: missing array 'weights' (shape ({cfg.lanes},), "
                            f"{what})")
    w = np.asarray(params["weights"])
    if w.shape != (cfg.lanes,):
        raise QhwInputError(f"weights: shape must be ({cfg.lanes},) (one weight per lane), "
                            f"got {w.shape}")
    return {"weights": check_values(cfg, "weights", w)}


def expdot_check_params(cfg, params):
    return check_lane_weights(cfg, params, "weight codes", check_codes)


def expdot_random_params(cfg, rng):
    return {"weights": random_codes(cfg, rng, cfg.lanes)}


def expdot_check_inputs(cfg, x):
    """(N,) or (V, N) activations; returns (V, N) int64."""
    x = np.asarray(x)
    if x.shape == (cfg.lanes,):
        x = x[None]
    if x.ndim != 2 or x.shape[1] != cfg.lanes or x.shape[0] < 1:
        raise QhwInputError(f"inputs: shape must be ({cfg.lanes},) or (V, {cfg.lanes}), "
                            f"got {x.shape}")
    return check_acts(cfg, "inputs", x)


def expdot_random_inputs(cfg, rng, frames=1):
    return random_acts(cfg, rng, (frames, cfg.lanes), special=0.02)


def expdot_reference(cfg, params, x):
    """``expdot`` outputs (V,): bit patterns (uint32/uint16) or the exact fixed-point sum (int64)."""
    x = expdot_check_inputs(cfg, x)
    w = expdot_check_params(cfg, params)["weights"]
    return expdot_ref(cfg, x, w).astype(_out_dtype(cfg, np.int64))


def expdot_weight_memory(cfg, params):
    """Weight memory: depth lanes/simd; word f holds lane f*simd + s at bits [s*(1+E), ...)."""
    w = expdot_check_params(cfg, params)["weights"].reshape(cfg.fold, cfg.simd)
    return [sum(int(c) << (s * cfg.w_bits) for s, c in enumerate(row)) for row in w]


def expdot_pack_inputs(cfg, x):
    """One word per fold: lanes f*simd .. f*simd+simd-1, lane s at bits [s*B, (s+1)*B)."""
    x = expdot_check_inputs(cfg, x)
    mask = (1 << cfg.x_bits) - 1
    words = []
    for row in x.reshape(-1, cfg.simd):
        words.append(sum((int(v) & mask) << (s * cfg.x_bits) for s, v in enumerate(row)))
    return words


def expdot_unpack_outputs(cfg, words, frames):
    return unpack_scalars(cfg, words, frames, cfg.out_bits, not cfg.is_float,
                          _out_dtype(cfg, np.int64))
