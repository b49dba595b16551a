"""Mixed-precision integer GRU: configuration, per-operator formats and the bit-exact reference.

This module is the single definition of the ``gru`` unit's arithmetic (docs/gru.md states every
rule). The generator (:mod:`qhw.hdl.gru`) imports the formats, the width derivations, the
activation tables and the packings from here; the PyTorch module (:mod:`qhw.golden.gru_torch`)
uses the same tables, so none of them can drift.

PyTorch's GRU (gate order r, z, n in ``weight_ih``/``weight_hh``)::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Every one of the 17 operators has its own signed fixed-point format (total bits, fractional bits,
rounding) and every result is narrowed once into it, with its rounding (nearest-even or floor)
and saturation:

==========  ===============================================  ==========
operator    exact value before narrowing                     format key
==========  ===============================================  ==========
mm_ir ...   W_ir x + b_ir  (all six products, bias included)  ``mm_ir``, ``mm_hr``, ``mm_iz``,
                                                             ``mm_hz``, ``mm_in``, ``mm_hn``
add_r       mm_ir + mm_hr                                    ``add_r``
add_z       mm_iz + mm_hz                                    ``add_z``
sig_r       sigmoid(add_r)  (table or PWL, see below)        ``sig_r``
sig_z       sigmoid(add_z)                                   ``sig_z``
mul_rn      sig_r * mm_hn                                    ``mul_rn``
add_n       mm_in + mul_rn                                   ``add_n``
tanh_n      tanh(add_n)                                      ``tanh_n``
sub_z       1 - sig_z                                        ``sub_z``
mul_n       sub_z * tanh_n                                   ``mul_n``
mul_zh      sig_z * h                                        ``mul_zh``
add_h       mul_n + mul_zh                                   ``add_h``
==========  ===============================================  ==========

plus the tensor formats ``input`` (x), ``weight`` (W_ih and W_hh), ``bias`` (b_ih and b_hh) and
``state`` (h; h' = add_h narrowed into it). Integer codes v of a format (t, f) stand for v * 2^-f
with v in [-2^(t-1), 2^(t-1) - 1].

Exactness: products of (a, fa) and (b, fb) are exact with fa + fb fractional bits; sums align the
binary points exactly (left shifts) before the single narrowing; matrix products accumulate in an
accumulator whose width :func:`acc_bits` derives so that it cannot overflow.
"""

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from ..config import check_choice, check_int
from ..errors import QhwInputError

__all__ = ["GruConfig", "Format", "OPERATORS", "TENSORS", "FORMAT_NAMES", "ROUNDINGS",
           "narrow", "acc_bits", "activation_table", "pwl_table", "activation", "reference",
           "check_params", "random_params", "check_inputs", "random_inputs", "pack_inputs",
           "unpack_outputs", "step_flags", "homogeneous_formats"]

GATES = ("r", "z", "n")
MATMULS = ("mm_ir", "mm_hr", "mm_iz", "mm_hz", "mm_in", "mm_hn")
OPERATORS = MATMULS + ("add_r", "add_z", "add_n", "sig_r", "sig_z", "tanh_n",
                       "mul_rn", "sub_z", "mul_n", "mul_zh", "add_h")
TENSORS = ("input", "weight", "bias", "state")
FORMAT_NAMES = TENSORS + OPERATORS
ROUNDINGS = ("nearest_even", "floor")
MAX_BITS = 32
MIN_FRAC = -32

#: Integer bits (above the sign) of each format in the homogeneous preset of ``bits`` total bits:
#: the preset's fractional bits are ``bits - 1 - INT_BITS[name]``. Chosen for unit-scale data:
#: x in [-4, 4), weights in [-2, 2), biases in [-4, 4), pre-activations in [-8, 8), gates and
#: state in [-1, 1).
INT_BITS = {"input": 2, "weight": 1, "bias": 2, "state": 0,
            **{name: 3 for name in MATMULS}, "add_r": 3, "add_z": 3, "add_n": 3,
            "sig_r": 0, "sig_z": 0, "tanh_n": 0, "mul_rn": 3, "sub_z": 0, "mul_n": 0,
            "mul_zh": 0, "add_h": 0}


class Format(NamedTuple):
    """A signed fixed-point format: ``total`` bits, ``frac`` fractional bits, the rounding used
    when a value is narrowed into it."""
    total: int
    frac: int
    rounding: str = "nearest_even"

    @property
    def lo(self):
        return -(1 << (self.total - 1))

    @property
    def hi(self):
        return (1 << (self.total - 1)) - 1

    @property
    def scale(self):
        return 2.0 ** -self.frac


def homogeneous_formats(bits, rounding="nearest_even"):
    """Every format at ``bits`` total bits with the preset binary points of :data:`INT_BITS`."""
    return {name: [bits, bits - 1 - INT_BITS[name], rounding] for name in FORMAT_NAMES}


def _check_format(name, value):
    field = f"formats.{name}"
    if isinstance(value, (list, tuple)) and len(value) in (2, 3):
        total, frac = value[0], value[1]
        rounding = value[2] if len(value) == 3 else "nearest_even"
    else:
        raise QhwInputError(f"{field}: must be [total_bits, frac_bits] or "
                            f"[total_bits, frac_bits, rounding], got {value!r}")
    check_int(f"{field} total_bits", total, low=1, high=MAX_BITS)
    if isinstance(frac, bool) or not isinstance(frac, int):
        raise QhwInputError(f"{field} frac_bits: must be an integer, got {frac!r}")
    if frac > total:
        raise QhwInputError(f"{field} frac_bits: must be <= total_bits ({total}), got {frac}")
    if frac < MIN_FRAC:
        raise QhwInputError(f"{field} frac_bits: must be >= {MIN_FRAC}, got {frac}")
    check_choice(f"{field} rounding", rounding, ROUNDINGS)
    return [total, frac, rounding]


def _power_of_two(field, value, high):
    check_int(field, value, low=1, high=high)
    if value & (value - 1):
        raise QhwInputError(f"{field}: must be a power of two in 1..{high}, got {value}")


@dataclasses.dataclass(frozen=True)
class GruConfig:
    """Configuration of one mixed-precision integer GRU layer (one direction, one layer).

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    bits : int
        Total bits of every format that ``formats`` does not name (homogeneous preset,
        :func:`homogeneous_formats`).
    formats : dict
        Operator or tensor name -> ``[total_bits, frac_bits]`` or ``[total_bits, frac_bits,
        rounding]`` (rounding ``"nearest_even"`` (default) or ``"floor"``). Names: see
        :data:`FORMAT_NAMES`. After validation it holds every name.
    activation : 'lut' or 'pwl'
        Sigmoid/tanh as lookup tables over all codes of the activation input format, or as
        ``pwl_segments`` linear segments between quantized breakpoints.
    lut_bits : int
        Width of the activation input (table address) format.
    sigmoid_range, tanh_range : int
        Powers of two R: the activation input format covers [-R, R) (saturating outside):
        ``lut_bits`` total bits, ``lut_bits - 1 - log2(R)`` fractional bits.
    pwl_segments : int
        Segments of the PWL activations (power of two, 2..2^lut_bits).
    macs : int
        Multipliers (MACs per cycle) of the folded matrix-product datapath, 1..max(I, H).
    output : 'sequence' or 'last'
        Output the state after every step, or only at steps flagged ``last``.
    """

    input_size: int
    hidden_size: int
    bits: int = 8
    formats: dict = dataclasses.field(default_factory=dict)
    activation: str = "lut"
    lut_bits: int = 8
    sigmoid_range: int = 8
    tanh_range: int = 4
    pwl_segments: int = 16
    macs: int = 1
    output: str = "sequence"

    def __post_init__(self):
        check_int("input_size", self.input_size, low=1, high=4096)
        check_int("hidden_size", self.hidden_size, low=1, high=4096)
        check_int("bits", self.bits, low=1, high=MAX_BITS)
        if not isinstance(self.formats, dict):
            raise QhwInputError(f"formats: must be an object mapping names to "
                                f"[total_bits, frac_bits(, rounding)], got {self.formats!r}")
        unknown = sorted(set(self.formats) - set(FORMAT_NAMES))
        if unknown:
            raise QhwInputError(f"formats: unknown name {unknown[0]!r}; allowed: "
                                f"{', '.join(FORMAT_NAMES)}")
        full = homogeneous_formats(self.bits)
        for name in FORMAT_NAMES:
            if name in self.formats:
                full[name] = _check_format(name, self.formats[name])
        object.__setattr__(self, "formats", full)
        check_choice("activation", self.activation, ("lut", "pwl"))
        check_int("lut_bits", self.lut_bits, low=1, high=16)
        _power_of_two("sigmoid_range", self.sigmoid_range, 1 << 12)
        _power_of_two("tanh_range", self.tanh_range, 1 << 12)
        _power_of_two("pwl_segments", self.pwl_segments, 1 << 16)
        if self.activation == "pwl" and not 2 <= self.pwl_segments <= 1 << self.lut_bits:
            raise QhwInputError(f"pwl_segments: must be a power of two in 2..{1 << self.lut_bits} "
                                f"(2^lut_bits), got {self.pwl_segments}")
        check_int("macs", self.macs, low=1, high=max(self.input_size, self.hidden_size))
        check_choice("output", self.output, ("sequence", "last"))
        # Every intermediate must stay within what the reference computes exactly.
        if max(acc_bits(self, "i"), acc_bits(self, "h")) > 160:
            raise QhwInputError("formats: the matrix-product accumulator would exceed 160 bits; "
                                "use fewer fractional bits in 'bias' or narrower formats")

    def fmt(self, name):
        return Format(*self.formats[name])

    def act_in_format(self, kind):
        """Input (table address) format of the sigmoid ('sig') or tanh ('tanh') activation."""
        r = self.sigmoid_range if kind == "sig" else self.tanh_range
        return Format(self.lut_bits, self.lut_bits - 1 - (r.bit_length() - 1))

    @property
    def chunks_i(self):
        """Cycles per row of W_ih: ceil(I / macs)."""
        return -(-self.input_size // self.macs)

    @property
    def chunks_h(self):
        return -(-self.hidden_size // self.macs)

    @property
    def macs_per_step(self):
        return 3 * self.hidden_size * (self.input_size + self.hidden_size)


# Exact integer arithmetic --------------------------------------------------------------------------

def _shift_left(v, s):
    return v * (1 << s) if isinstance(v, np.ndarray) and v.dtype == object else v << s


def narrow(v, frac, fmt, saturate=True):
    """Narrow exact integers ``v`` with ``frac`` fractional bits into ``fmt``.

    Left shifts are exact; right shifts by s round with ``fmt.rounding``: 'floor' is the
    arithmetic shift, 'nearest_even' adds one when the dropped bits exceed half an LSB, or equal
    it and the kept value is odd. Then the value saturates to [lo, hi].
    """
    fmt = Format(*fmt)
    s = frac - fmt.frac
    if s <= 0:
        q = v << (-s) if s else v
    else:
        q = v >> s
        if fmt.rounding == "nearest_even":
            rem = v & ((1 << s) - 1)
            half = 1 << (s - 1)
            q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    if not saturate:
        return q
    return np.clip(q, fmt.lo, fmt.hi) if isinstance(q, np.ndarray) else min(max(q, fmt.lo), fmt.hi)


def signed_width(lo, hi):
    """Bits of the smallest signed type holding [lo, hi]."""
    return max(1, max(hi.bit_length(), (-lo - 1).bit_length()) + 1)


def product_bound(cfg, side):
    """(lo, hi) of one product W*v of the matrix product on ``side`` ('i': x, 'h': h)."""
    w = cfg.fmt("weight")
    v = cfg.fmt("input" if side == "i" else "state")
    ends = [a * b for a in (w.lo, w.hi) for b in (v.lo, v.hi)]
    return min(ends), max(ends)


def acc_bits(cfg, side):
    """Width of the accumulator of a matrix product, derived so that it cannot overflow.

    With K = I (side 'i') or H (side 'h') terms, each product lies in [p_lo, p_hi] (the extreme
    codes of the weight and vector formats, :func:`product_bound`), so the sum of products lies in
    [K*p_lo, K*p_hi]. The bias is added after aligning the binary points: with F = max(fw + fv,
    fb) the sum is shifted left by F - (fw + fv) and the bias by F - fb. The accumulator is the
    smallest signed width holding the extreme sum of both.
    """
    k = cfg.input_size if side == "i" else cfg.hidden_size
    p_lo, p_hi = product_bound(cfg, side)
    fp, fb = mm_product_frac(cfg, side), cfg.fmt("bias").frac
    big_f = max(fp, fb)
    b = cfg.fmt("bias")
    lo = (k * p_lo << (big_f - fp)) + (b.lo << (big_f - fb))
    hi = (k * p_hi << (big_f - fp)) + (b.hi << (big_f - fb))
    return signed_width(lo, hi)


def sum_bits(cfg, side):
    """Width of the bare sum of products (no bias): what the MAC accumulator holds."""
    k = cfg.input_size if side == "i" else cfg.hidden_size
    p_lo, p_hi = product_bound(cfg, side)
    return signed_width(k * p_lo, k * p_hi)


def mm_product_frac(cfg, side):
    return cfg.fmt("weight").frac + cfg.fmt("input" if side == "i" else "state").frac


def mm_exact(cfg, side, acc, bias):
    """Exact value (and its fractional bits) of a matrix product with its bias."""
    fp, fb = mm_product_frac(cfg, side), cfg.fmt("bias").frac
    big_f = max(fp, fb)
    return _shift_left(acc, big_f - fp) + _shift_left(bias, big_f - fb), big_f


def add_exact(a, fa, b, fb):
    """Exact sum of two values with fa and fb fractional bits, and its fractional bits."""
    f = max(fa, fb)
    return _shift_left(a, f - fa) + _shift_left(b, f - fb), f


def one_minus_exact(z, fz):
    """Exact 1 - z (z with fz fractional bits), and its fractional bits max(0, fz)."""
    f = max(0, fz)
    return (1 << f) - _shift_left(z, f - fz), f


# Activations ---------------------------------------------------------------------------------------

def _real(kind, x):
    return 1.0 / (1.0 + np.exp(-x)) if kind == "sig" else np.tanh(x)


def _quantize_real(y, fmt, saturate=True):
    """Quantize real values (float64) into ``fmt`` with its rounding, saturating."""
    fmt = Format(*fmt)
    scaled = np.asarray(y, dtype=np.float64) * 2.0 ** fmt.frac
    q = np.rint(scaled) if fmt.rounding == "nearest_even" else np.floor(scaled)
    return (np.clip(q, fmt.lo, fmt.hi) if saturate else q).astype(np.int64)


def activation_table(kind, in_fmt, out_fmt):
    """Lookup table of sigmoid ('sig') or tanh ('tanh'): one output code per input code.

    Entry a (the table address: the input code's two's-complement bits, a = code mod 2^L) is the
    real function at code * 2^-f_in, quantized into ``out_fmt`` (its rounding, saturating).
    """
    in_fmt = Format(*in_fmt)
    n = 1 << in_fmt.total
    addr = np.arange(n, dtype=np.int64)
    code = np.where(addr >= n // 2, addr - n, addr)
    return _quantize_real(_real(kind, code * 2.0 ** -in_fmt.frac), out_fmt)


def pwl_table(kind, in_fmt, out_fmt, segments):
    """Piecewise-linear activation: per segment k (address order) the pair (A_k, B_k).

    The input codes split into ``segments`` equal segments (the top log2(segments) bits of the
    code); A_k is the quantized function at segment k's first code, B_k = A_{k+1} - A_k with
    A_{S/2} (past the last segment) the quantized function at the range's upper end. Returns two
    int64 arrays indexed by the segment field's two's-complement bits.
    """
    in_fmt = Format(*in_fmt)
    s = segments.bit_length() - 1
    d = in_fmt.total - s
    k = np.arange(-(segments // 2), segments // 2 + 1, dtype=np.int64)
    ends = _quantize_real(_real(kind, (k << d) * 2.0 ** -in_fmt.frac), out_fmt)
    a, b = ends[:-1], ends[1:] - ends[:-1]
    addr = k[:-1] % segments
    a_addr, b_addr = np.empty_like(a), np.empty_like(b)
    a_addr[addr], b_addr[addr] = a, b
    return a_addr, b_addr


def pwl_eval(in_code, in_fmt, out_fmt, segments, a_tab, b_tab):
    """PWL output code for input codes: narrow((A_k << d) + B_k * u, f_out + d) into out_fmt."""
    in_fmt, out_fmt = Format(*in_fmt), Format(*out_fmt)
    s = segments.bit_length() - 1
    d = in_fmt.total - s
    addr = (np.asarray(in_code) & ((1 << in_fmt.total) - 1)).astype(np.int64)
    seg = addr >> d
    u = addr & ((1 << d) - 1)
    a, b = a_tab[seg], b_tab[seg]
    return narrow(_shift_left(a, d) + b * u, out_fmt.frac + d, out_fmt)


def activation(cfg, kind, name, v, frac):
    """Operator ``name`` (sig_r, sig_z or tanh_n): narrow ``v`` into the activation's input
    format (the operator's rounding, saturating), then the table or the PWL segments."""
    out_fmt = cfg.fmt(name)
    in_fmt = cfg.act_in_format(kind)._replace(rounding=out_fmt.rounding)
    code = narrow(v, frac, in_fmt)
    if cfg.activation == "lut":
        table = activation_table(kind, in_fmt, out_fmt)
        return table[(np.asarray(code) & ((1 << in_fmt.total) - 1)).astype(np.int64)]
    a_tab, b_tab = pwl_table(kind, in_fmt, out_fmt, cfg.pwl_segments)
    return pwl_eval(np.asarray(code), in_fmt, out_fmt, cfg.pwl_segments, a_tab, b_tab)


def act_input_format(cfg, name):
    """The table-address format of activation operator ``name`` (its rounding included)."""
    kind = "tanh" if name == "tanh_n" else "sig"
    return cfg.act_in_format(kind)._replace(rounding=cfg.fmt(name).rounding)


def activation_tables(cfg, name):
    """What the hardware stores for activation operator ``name``: the LUT (one array) or the
    PWL pair (A, B)."""
    kind = "tanh" if name == "tanh_n" else "sig"
    in_fmt, out_fmt = act_input_format(cfg, name), cfg.fmt(name)
    if cfg.activation == "lut":
        return (activation_table(kind, in_fmt, out_fmt),)
    return pwl_table(kind, in_fmt, out_fmt, cfg.pwl_segments)


# Intermediate widths (shared with the generator) -------------------------------------------------

def _exact_dtype(cfg):
    """int64 when every intermediate provably fits in 62 bits, else Python integers (object).

    Bounds: the accumulators (:func:`acc_bits`); products of two formats (2 * t_max); aligned sums
    and 1 - z (t_max + the largest binary-point difference + 2, the constant 1 having 0
    fractional bits); the PWL interpolation (t_max + lut_bits + 2).
    """
    totals = [Format(*f).total for f in cfg.formats.values()]
    fracs = [Format(*f).frac for f in cfg.formats.values()] + [0]
    t_max = max(totals)
    widest = max(acc_bits(cfg, "i"), acc_bits(cfg, "h"), 2 * t_max + 1,
                 t_max + max(fracs) - min(fracs) + 2, t_max + cfg.lut_bits + 2)
    return np.int64 if widest <= 62 else object


# Parameters (the weight file) ----------------------------------------------------------------------

def param_shapes(cfg):
    i, h = cfg.input_size, cfg.hidden_size
    w, b = cfg.fmt("weight"), cfg.fmt("bias")
    wtxt = f"integer codes of the weight format ({w.total} bits, {w.frac} fractional)"
    btxt = f"integer codes of the bias format ({b.total} bits, {b.frac} fractional)"
    return {"weight_ih": ((3 * h, i), f"rows r, z, n (PyTorch's weight_ih_l0); {wtxt}"),
            "weight_hh": ((3 * h, h), f"rows r, z, n (PyTorch's weight_hh_l0); {wtxt}"),
            "bias_ih": ((3 * h,), f"r, z, n; {btxt}"),
            "bias_hh": ((3 * h,), f"r, z, n; {btxt}")}


def _check_codes(name, array, fmt, meaning=""):
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise QhwInputError(f"{name}: dtype must be an integer type (codes of a {fmt.total}-bit "
                            f"format), got {array.dtype}")
    if array.size:
        bad = (array < fmt.lo) | (array > fmt.hi)
        if bad.any():
            raise QhwInputError(f"{name}: values must be in [{fmt.lo}, {fmt.hi}] ({fmt.total}-bit "
                                f"signed codes{meaning}), found {array[bad].flat[0]}")
    return array.astype(np.int64)


def check_params(cfg, params):
    """Validate a weight-file mapping against ``cfg``; returns int64 code arrays."""
    shapes = param_shapes(cfg)
    unknown = sorted(set(params) - set(shapes))
    if unknown:
        raise QhwInputError(f"weights file: unknown array {unknown[0]!r}; expected: "
                            f"{', '.join(shapes)}")
    out = {}
    for name, (shape, meaning) in shapes.items():
        if name not in params:
            raise QhwInputError(f"weights file: missing array {name!r} (shape {shape}, {meaning})")
        array = np.asarray(params[name])
        if array.shape != shape:
            raise QhwInputError(f"{name}: shape must be {shape} ({meaning}), got {array.shape}")
        out[name] = _check_codes(name, array, cfg.fmt("weight" if "weight" in name else "bias"))
    return out


def random_params(cfg, rng, scale=None):
    """Random codes: weights ~ U(-1/sqrt(H), 1/sqrt(H)) * ``scale`` (PyTorch's init, default
    scale 2) quantized, and a few extreme codes so that the clamps are reached."""
    h = cfg.hidden_size
    scale = 2.0 if scale is None else scale
    params = {}
    for name, shape in (("weight_ih", (3 * h, cfg.input_size)), ("weight_hh", (3 * h, h)),
                        ("bias_ih", (3 * h,)), ("bias_hh", (3 * h,))):
        fmt = cfg.fmt("weight" if "weight" in name else "bias")
        real = rng.uniform(-1, 1, size=shape) * scale / math.sqrt(h)
        codes = _quantize_real(real, fmt)
        extreme = rng.random(shape) < 0.03
        codes[extreme] = rng.choice([fmt.lo, fmt.hi], size=int(extreme.sum()))
        params[name] = codes
    return params


def check_inputs(cfg, x):
    """Validate inputs (T, I) or (N, T, I) of integer codes in the input format; (N, T, I)."""
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != cfg.input_size or x.shape[0] < 1 or x.shape[1] < 1:
        raise QhwInputError(f"inputs: shape must be (T, {cfg.input_size}) or "
                            f"(N, T, {cfg.input_size}) with N, T >= 1, got {x.shape}")
    return _check_codes("inputs", x, cfg.fmt("input"), ", the input format")


def random_inputs(cfg, rng, frames=1, steps=None):
    """Random input codes, roughly N(0, 1) in real value with some extreme codes.

    ``frames`` is an int (one sequence of that many steps; the cost model's convention) or a pair
    (N sequences, T steps); ``steps`` overrides T.
    """
    n, t = (1, frames) if isinstance(frames, int) else frames
    if steps is not None:
        t = steps
    fmt = cfg.fmt("input")
    codes = _quantize_real(rng.normal(0, 1, size=(n, t, cfg.input_size)), fmt)
    extreme = rng.random(codes.shape) < 0.03
    codes[extreme] = rng.choice([fmt.lo, fmt.hi], size=int(extreme.sum()))
    return codes


# Streams -------------------------------------------------------------------------------------------

def step_flags(n, t):
    """(reset, last) flags per step of N sequences of T steps, in stream order."""
    reset = np.zeros((n, t), dtype=np.int64)
    last = np.zeros((n, t), dtype=np.int64)
    reset[:, 0] = 1
    last[:, -1] = 1
    return reset.reshape(-1), last.reshape(-1)


def input_word_bits(cfg):
    return cfg.input_size * cfg.fmt("input").total + 2


def pack_inputs(cfg, x):
    """Input stream words, one per step: element j's code (two's complement) at bits
    [j*B, (j+1)*B) with B the input format's total bits, then ``reset`` at bit I*B and ``last``
    at bit I*B + 1. Sequences follow each other; each starts with reset and ends with last."""
    x = check_inputs(cfg, x)
    n, t, i = x.shape
    b = cfg.fmt("input").total
    mask = (1 << b) - 1
    reset, last = step_flags(n, t)
    words = []
    for s, row in enumerate(x.reshape(n * t, i)):
        w = 0
        for j, v in enumerate(row):
            w |= (int(v) & mask) << (j * b)
        w |= int(reset[s]) << (i * b) | int(last[s]) << (i * b + 1)
        words.append(w)
    return words


def frames_shape(frames):
    """(N, T) from the cost model's ``frames``: an int k is one sequence of k steps."""
    if isinstance(frames, (int, np.integer)):
        return 1, int(frames)
    n, t = frames
    return int(n), int(t)


def output_count(cfg, frames):
    n, t = frames_shape(frames)
    return n * t if cfg.output == "sequence" else n


def unpack_outputs(cfg, words, frames):
    """Output words (H state codes each, element i at bits [i*B, (i+1)*B)) -> (N, T, H) or
    (N, H) int64 codes of the state format."""
    n, t = frames_shape(frames)
    expected = output_count(cfg, frames)
    if len(words) != expected:
        raise ValueError(f"output stream: expected {expected} words for {n} sequence(s) of "
                         f"{t} step(s), got {len(words)}")
    b = cfg.fmt("state").total
    h = cfg.hidden_size
    mask = (1 << b) - 1
    v = np.array([[(w >> (k * b)) & mask for k in range(h)] for w in words], dtype=np.int64)
    v = np.where(v >= 1 << (b - 1), v - (1 << b), v).reshape(-1, h)
    return v.reshape((n, t, h) if cfg.output == "sequence" else (n, h))


# Reference -----------------------------------------------------------------------------------------

def gru_step(cfg, params, x, h, trace=None):
    """One time step on a batch: x (N, I), h (N, H) codes -> h' (N, H) codes of the state format.

    ``trace``, if a dict, receives every operator's output codes (N, H) under its name and, under
    ``"saturated"``, per operator the number of elements whose narrowing saturated (for the
    activations: the narrowing into the table-address format, and with tables the real value
    beyond the output format).
    """
    dt = _exact_dtype(cfg)
    hs = cfg.hidden_size
    w_ih, w_hh = params["weight_ih"].astype(dt), params["weight_hh"].astype(dt)
    b_ih, b_hh = params["bias_ih"].astype(dt), params["bias_hh"].astype(dt)
    xi, hi = x.astype(dt), h.astype(dt)
    acc_i = xi @ w_ih.T   # (N, 3H)
    acc_h = hi @ w_hh.T
    t, sat = {}, {}

    def nr(name, v, f, fmt=None):
        fmt = cfg.fmt(name) if fmt is None else fmt
        q = narrow(v, f, fmt, saturate=False)
        out = np.clip(q, fmt.lo, fmt.hi)
        sat[name] = sat.get(name, 0) + int(np.count_nonzero(out != q))
        return out

    for g, gate in enumerate(GATES):
        sl = slice(g * hs, (g + 1) * hs)
        for side, acc, bias in (("i", acc_i, b_ih), ("h", acc_h, b_hh)):
            v, f = mm_exact(cfg, side, acc[:, sl], bias[sl])
            t[f"mm_{side}{gate}"] = nr(f"mm_{side}{gate}", v, f)

    def fr(name):
        return cfg.fmt(name).frac

    def add(name, a, b):
        v, f = add_exact(t[a], fr(a), t[b], fr(b))
        t[name] = nr(name, v, f)

    def mul(name, a, b, b_val=None, b_frac=None):
        bv = t[b] if b_val is None else b_val
        bf = fr(b) if b_frac is None else b_frac
        t[name] = nr(name, t[a] * bv, fr(a) + bf)

    def act(name, src):
        kind = "tanh" if name == "tanh_n" else "sig"
        in_fmt = act_input_format(cfg, name)
        code = nr(name, t[src], fr(src), in_fmt)  # counts input saturation
        t[name] = activation(cfg, kind, name, t[src], fr(src)).astype(dt)
        if cfg.activation == "lut":  # and output saturation (the real value beyond the format)
            q = _quantize_real(_real(kind, np.asarray(code, dtype=np.float64) * 2.0 ** -in_fmt.frac),
                               cfg.fmt(name), saturate=False)
            sat[name] += int(np.count_nonzero(q != np.asarray(t[name], dtype=np.int64)))

    add("add_r", "mm_ir", "mm_hr")
    add("add_z", "mm_iz", "mm_hz")
    act("sig_r", "add_r")
    act("sig_z", "add_z")
    mul("mul_rn", "sig_r", "mm_hn")
    add("add_n", "mm_in", "mul_rn")
    act("tanh_n", "add_n")
    v, f = one_minus_exact(t["sig_z"], fr("sig_z"))
    t["sub_z"] = nr("sub_z", v, f)
    mul("mul_n", "sub_z", "tanh_n")
    mul("mul_zh", "sig_z", None, b_val=hi, b_frac=cfg.fmt("state").frac)
    add("add_h", "mul_n", "mul_zh")
    h_new = nr("state", t["add_h"], fr("add_h"))
    if trace is not None:
        trace.update({k: np.asarray(v, dtype=np.int64) for k, v in t.items()})
        trace["saturated"] = sat
    return np.asarray(h_new, dtype=np.int64)


def reference(cfg, params, x, trace=None):
    """Bit-exact outputs: (N, T, H) state codes after every step ('sequence'), or (N, H) after
    the last step ('last'). Every sequence starts from h = 0 (the reset flag of its first step).

    ``trace``, if a list, receives per step the dict of operator outputs (see :func:`gru_step`).
    """
    x = check_inputs(cfg, x)
    params = check_params(cfg, params)
    n, t, _ = x.shape
    h = np.zeros((n, cfg.hidden_size), dtype=np.int64)
    out = np.zeros((n, t, cfg.hidden_size), dtype=np.int64)
    for s in range(t):
        d = {} if trace is not None else None
        h = gru_step(cfg, params, x[:, s], h, d)
        if trace is not None:
            trace.append(d)
        out[:, s] = h
    return out if cfg.output == "sequence" else out[:, -1]


def dequantize(cfg, name, codes):
    return np.asarray(codes, dtype=np.float64) * cfg.fmt(name).scale


def extreme_case(cfg, rng, frames, scale=8.0):
    """Directed data that drives the operators into saturation: weights drawn wide (``scale``
    times PyTorch's init range, clipped to the format) and half the input codes at the format's
    extremes. Returns (params, inputs)."""
    params = random_params(cfg, rng, scale=scale)
    x = random_inputs(cfg, rng, frames)
    fx = cfg.fmt("input")
    x = np.where(rng.random(x.shape) < 0.5, rng.choice([fx.lo, fx.hi], size=x.shape), x)
    return params, x
