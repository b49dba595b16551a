"""``mulbase``: conventional multipliers to compare ``expmul`` with, in the same stream wrapper.

* ``fp32`` / ``bf16``: IEEE multiplication, round to nearest even; subnormal inputs and results
  are flushed to signed zero (rounding as if the exponent range were unbounded, then a result
  exponent field <= 0 flushes), overflow gives infinity, NaN inputs and 0 x inf the canonical
  quiet NaN (:func:`qhw.golden.expmul.mulbase_ref` is the definition).
* ``int8``: signed 8 x 8 -> 16-bit product.

The significand product is Amaranth's ``*``, so the synthesis flows map it as they would any
multiplier (DSP48E1 on xc7, MULT18X18D on ECP5, an array of gates in the generic flow). The
pipeline is the same as ``expmul``'s: input register -> multiplier -> output register, latency 2.
"""

from amaranth import Cat, Const, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import expmul as golden
from ..golden import fpdot as golden_fpdot
from .expmul import stream_cost_model
from .streampipe import valid_chain

__all__ = ["MulBase", "fp_mul_logic", "mul_cuts", "cost_model", "STAGES"]

STAGES = 2

#: Widest operand of one hard multiplier (ECP5 MULT18X18D): a significand wider than this is
#: multiplied as four registered partial products when ``fp_mul_logic`` is cut (one definition,
#: the config's: :data:`qhw.golden.fpdot.HARD_MUL_BITS`).
HARD_MUL_BITS = golden_fpdot.HARD_MUL_BITS


def mul_cuts(fmt):
    """How many times a cut ``fp_mul_logic`` calls ``cut``: after the partial products (only
    for significands wider than :data:`HARD_MUL_BITS`: fp32), the product, the rounding."""
    return 3 if fmt.mbits + 1 > HARD_MUL_BITS else 2


def input_layout(cfg):
    return data.StructLayout({"a": cfg.x_bits, "b": cfg.x_bits})


def fp_mul_logic(m, fmt, a, b, name="fm", cut=None):
    """Combinational IEEE product of bit patterns ``a`` and ``b`` (RNE, flush to zero).

    ``cut``: None (one combinational block), or a function ``cut(name, {key: (value, shape)})``
    returning registers of those values, called :func:`mul_cuts` times: (for a significand
    wider than a hard multiplier, after four partial products of its halves,) after the
    significand product and after the rounding (``fpdot``'s deep pipeline,
    :mod:`qhw.hdl.fpdot`)."""
    mb, eb = fmt.mbits, fmt.ebits
    sa, ea, ma = a[fmt.width - 1], a[mb:mb + eb], a[:mb]
    sb, e_b, m_b = b[fmt.width - 1], b[mb:mb + eb], b[:mb]
    s = Signal(name=f"{name}_s")
    m.d.comb += s.eq(sa ^ sb)
    a_special, b_special = ea == fmt.emask, e_b == fmt.emask
    a_zero, b_zero = ea == 0, e_b == 0
    nan = Signal(name=f"{name}_nan")
    inf = Signal(name=f"{name}_inf")
    zero = Signal(name=f"{name}_zero")
    m.d.comb += [
        nan.eq((a_special & (ma != 0)) | (b_special & (m_b != 0))
               | (a_special & b_zero) | (b_special & a_zero)),
        inf.eq(a_special | b_special),
        zero.eq(a_zero | b_zero),
    ]
    prod = Signal(2 * mb + 2, name=f"{name}_prod")
    e_sum = ea + e_b - fmt.bias
    if cut is not None and mul_cuts(fmt) == 3:
        # (hi 2^h + lo)(hi' 2^h + lo'): four products of at most HARD_MUL_BITS bits, registered,
        # then their sum (one hard multiplier and its adders per stage, not four)
        h = (mb + 2) // 2
        u, v = Cat(ma, Const(1, 1)), Cat(m_b, Const(1, 1))
        c = cut(f"{name}_c0", {"s": (s, 1), "nan": (nan, 1), "inf": (inf, 1), "zero": (zero, 1),
                               "e_sum": (e_sum, signed(eb + 3)),
                               "ll": (u[:h] * v[:h], 2 * h), "lh": (u[:h] * v[h:], 2 * h),
                               "hl": (u[h:] * v[:h], 2 * h), "hh": (u[h:] * v[h:], 2 * h)})
        s, nan, inf, zero, e_sum = (c[k] for k in ("s", "nan", "inf", "zero", "e_sum"))
        m.d.comb += prod.eq(c["ll"] + ((c["lh"] + c["hl"]) << h) + (c["hh"] << (2 * h)))
    else:
        m.d.comb += prod.eq(Cat(ma, Const(1, 1)) * Cat(m_b, Const(1, 1)))
    if cut is not None:
        c = cut(f"{name}_c1", {"s": (s, 1), "nan": (nan, 1), "inf": (inf, 1), "zero": (zero, 1),
                               "prod": (prod, 2 * mb + 2), "e_sum": (e_sum, signed(eb + 3))})
        s, nan, inf, zero, prod, e_sum = (c[k] for k in ("s", "nan", "inf", "zero", "prod",
                                                          "e_sum"))
    hi = prod[2 * mb + 1]
    sig = Signal(mb + 1, name=f"{name}_sig")
    guard = Signal(name=f"{name}_guard")
    sticky = Signal(name=f"{name}_sticky")
    with m.If(hi):
        m.d.comb += [sig.eq(prod[mb + 1:]), guard.eq(prod[mb]), sticky.eq(prod[:mb].any())]
    with m.Else():
        m.d.comb += [sig.eq(prod[mb:2 * mb + 1]), guard.eq(prod[mb - 1]),
                     sticky.eq(prod[:mb - 1].any())]
    rounded = Signal(mb + 2, name=f"{name}_rounded")
    m.d.comb += rounded.eq(sig + (guard & (sticky | sig[0])))
    carry = rounded[mb + 1]
    e = Signal(signed(eb + 3), name=f"{name}_e")
    m.d.comb += e.eq(e_sum + hi + carry)
    if cut is not None:
        c = cut(f"{name}_c2", {"s": (s, 1), "nan": (nan, 1), "inf": (inf, 1), "zero": (zero, 1),
                               "rounded": (rounded, mb + 2), "e": (e, signed(eb + 3))})
        s, nan, inf, zero, rounded, e = (c[k] for k in ("s", "nan", "inf", "zero", "rounded",
                                                         "e"))
    y = Signal(fmt.width, name=f"{name}_y")
    inf_bits = Cat(Const(0, mb), Const(fmt.emask, eb), s)
    with m.If(nan):
        m.d.comb += y.eq(golden.qnan(fmt))
    with m.Elif(inf):
        m.d.comb += y.eq(inf_bits)
    with m.Elif(zero | (e <= 0)):
        m.d.comb += y.eq(Cat(Const(0, fmt.width - 1), s))
    with m.Elif(e >= fmt.emask):
        m.d.comb += y.eq(inf_bits)
    with m.Else():
        m.d.comb += y.eq(Cat(rounded[:mb], e[:eb], s))
    return y


class MulBase(wiring.Component):
    """A baseline multiplier with stream input (operands ``a``, ``b``) and output (product).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": W, "b": W})))
    o : Out(stream.Signature(out_bits))
    """

    def __init__(self, cfg, params=None):
        self.cfg = cfg
        golden.expmul_check_params(cfg, params or {})
        super().__init__({
            "i": In(stream.Signature(input_layout(cfg))),
            "o": Out(stream.Signature(cfg.out_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        en, _ = valid_chain(m, self.i, self.o, STAGES)
        a = Signal(cfg.x_bits, reset_less=True)
        b = Signal(cfg.x_bits, reset_less=True)
        y = Signal(cfg.out_bits, reset_less=True)
        if cfg.is_float:
            product = fp_mul_logic(m, cfg.fmt, a, b)
        else:
            product = a.as_signed() * b.as_signed()
        with m.If(en):
            m.d.sync += [a.eq(self.i.payload.a), b.eq(self.i.payload.b), y.eq(product)]
        m.d.comb += self.o.payload.eq(y)
        return m


def cost_model(cfg, frames=1, inputs=None):  # inputs: cycles do not depend on data
    return stream_cost_model(frames, STAGES, "one product per cycle; latency 2 (input register, "
                                             "multiplier, output register)")
