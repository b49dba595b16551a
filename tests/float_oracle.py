"""Float-format oracles shared by the tests of the float golden models.

Written from the IEEE 754 formats' definitions alone (exponent and mantissa widths stated here,
values decoded by NumPy), so independent of :mod:`qhw.golden`, whose models they check.
"""

from fractions import Fraction

import numpy as np

#: (exponent bits, mantissa bits) of each format, stated here rather than read from the code
FORMATS = {"fp32": (8, 23), "fp16": (5, 10), "bf16": (8, 7)}
#: NumPy's own type and its same-width unsigned integer (bf16: none; the top half of fp32)
NATIVE = {"fp32": (np.float32, np.uint32), "fp16": (np.float16, np.uint16)}


def to_float64(bits, fmt_name):
    """Exact float64 values of bit patterns, by NumPy's own decoding (bf16 = the top half of
    fp32; no flushing; signalling NaNs become quiet ones).

    Parameters
    ----------
    bits : array_like of int
    fmt_name : 'fp32', 'fp16' or 'bf16'

    Returns
    -------
    numpy.ndarray of float64, the shape of ``bits``.
    """
    bits = np.asarray(bits, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        if fmt_name == "bf16":
            return (bits << 16).astype(np.uint32).view(np.float32).astype(np.float64)
        native, uint = NATIVE[fmt_name]
        return bits.astype(uint).view(native).astype(np.float64)


def limits(fmt_name):
    """(smallest normal, largest finite value) of the format, as Fractions."""
    ebits, mbits = FORMATS[fmt_name]
    bias = (1 << (ebits - 1)) - 1
    return Fraction(2) ** (1 - bias), (2 - Fraction(2) ** -mbits) * Fraction(2) ** bias


def nearest(total, fmt_name, overflow):
    """An exact value rounded to the format, by checking its two neighbours.

    Parameters
    ----------
    total : Fraction
    fmt_name : 'fp32', 'fp16' or 'bf16'
    overflow : 'inf' or 'saturate'
        Beyond the largest finite value: infinity, or the largest finite value.

    Returns
    -------
    float: +0.0 for an exact zero; a zero of the value's sign below the smallest normal (flush);
    else the nearer neighbour (ties: the one with an even mantissa), then the overflow rule.
    """
    tiny, big = limits(fmt_name)
    mbits = FORMATS[fmt_name][1]
    if total == 0:
        return 0.0
    sign = -1.0 if total < 0 else 1.0
    mag = abs(total)
    if mag < tiny:
        return sign * 0.0
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    while Fraction(2) ** e > mag:
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    ulp = Fraction(2) ** (e - mbits)
    lo = (mag // ulp) * ulp
    hi = lo + ulp
    if mag - lo != hi - mag:
        r = lo if mag - lo < hi - mag else hi
    else:
        r = lo if (lo / ulp) % 2 == 0 else hi
    if r > big:
        return sign * (float("inf") if overflow == "inf" else float(big))
    return sign * float(r)
