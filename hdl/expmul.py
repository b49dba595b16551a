"""``expmul``: one exponent-adder multiplier for sign-exponent-only weights.

A weight is +-2^d (SEOFP-NET, arXiv 2111.04436), so x * w needs no multiplier: for a
float x the product's exponent field is e_x + f - bias and its sign s_x XOR s_w; the mantissa
passes through. For a fixed-point x the product is a shift. The arithmetic is defined in
:mod:`qhw.golden.expmul` (:func:`~qhw.golden.expmul.expmul_ref`); :func:`expmul_logic` is its
hardware twin and is shared with the ``expdot`` unit.

Pipeline (see :mod:`qhw.hdl.streampipe`): input register -> exponent adder and special-value
muxes -> output register; latency 2, one product per cycle.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import expmul as golden
from ..registry import CycleEstimate
from .streampipe import valid_chain

__all__ = ["ExpMul", "expmul_logic", "input_layout", "cost_model", "STAGES"]

STAGES = 2


def input_layout(cfg):
    """Input payload: activation at bits [0, x_bits), weight code above."""
    return data.StructLayout({"x": cfg.x_bits, "w": cfg.w_bits})


def _exp_width(cfg, ebits):
    return max(ebits, cfg.weight_exp_bits, abs(cfg.weight_bias).bit_length()) + 3


def expmul_logic(m, cfg, x, w, name="em"):
    """Combinational product of activation ``x`` and weight code ``w`` (returns a Signal).

    Bit-exact to :func:`qhw.golden.expmul.expmul_ref` for every input (tests/test_expmul_cosim.py
    checks it exhaustively for fp16 and bf16).
    """
    ew = cfg.weight_exp_bits
    sw, fw = w[ew], w[:ew]
    w_zero = Signal(name=f"{name}_w_zero")
    m.d.comb += w_zero.eq(fw == 0)
    y = Signal(cfg.x_bits, name=f"{name}_y")
    if not cfg.is_float:
        b = cfg.act_bits
        lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
        xs = Signal(signed(b + 1), name=f"{name}_xs")
        m.d.comb += xs.eq(Mux(sw, -x.as_signed(), x.as_signed()))
        d = Signal(signed(_exp_width(cfg, 0)), name=f"{name}_d")
        m.d.comb += d.eq(fw - cfg.weight_bias)
        left = Signal(range(b), name=f"{name}_left")     # used when 0 <= d < b
        right = Signal(range(b + 1), name=f"{name}_right")  # used when d < 0, clipped to b
        m.d.comb += [left.eq(d[:len(left)]),
                     right.eq(Mux(-d >= b, b, (-d)[:len(right)]))]
        shifted_l = Signal(signed(2 * b + 1), name=f"{name}_shl")
        shifted_r = Signal(signed(b + 1), name=f"{name}_shr")
        m.d.comb += [shifted_l.eq(xs << left), shifted_r.eq(xs >> right)]
        big = Signal(signed(2 * b + 1), name=f"{name}_big")
        with m.If(d >= b):  # any non-zero |x| >= 1 times 2^b saturates
            m.d.comb += big.eq(Mux(xs > 0, hi + 1, Mux(xs < 0, lo - 1, 0)))
        with m.Elif(d >= 0):
            m.d.comb += big.eq(shifted_l)
        with m.Else():
            m.d.comb += big.eq(shifted_r)
        with m.If(w_zero):
            m.d.comb += y.eq(0)
        with m.Elif(big > hi):
            m.d.comb += y.eq(Const(hi, signed(b + 1))[:b])
        with m.Elif(big < lo):
            m.d.comb += y.eq(Const(lo, signed(b + 1))[:b])
        with m.Else():
            m.d.comb += y.eq(big[:b])
        return y

    fmt = cfg.fmt
    sx, ex, mx = x[fmt.width - 1], x[fmt.mbits:fmt.mbits + fmt.ebits], x[:fmt.mbits]
    s = Signal(name=f"{name}_s")
    e = Signal(signed(_exp_width(cfg, fmt.ebits)), name=f"{name}_e")
    m.d.comb += [s.eq(sx ^ sw), e.eq(ex + fw - cfg.weight_bias)]
    x_special, x_zero = ex == fmt.emask, ex == 0
    nan = Signal(name=f"{name}_nan")
    inf = Signal(name=f"{name}_inf")
    m.d.comb += [nan.eq(x_special & ((mx != 0) | w_zero)),
                 inf.eq(x_special & (mx == 0) & ~w_zero)]
    with m.If(nan):
        m.d.comb += y.eq(golden.qnan(fmt))
    with m.Elif(inf):
        m.d.comb += y.eq(Cat(Const(0, fmt.mbits), Const(fmt.emask, fmt.ebits), s))
    with m.Elif(x_zero | w_zero | (e <= 0)):
        m.d.comb += y.eq(Cat(Const(0, fmt.width - 1), s))
    with m.Elif(e >= fmt.emask):
        if cfg.overflow == "inf":
            m.d.comb += y.eq(Cat(Const(0, fmt.mbits), Const(fmt.emask, fmt.ebits), s))
        else:
            m.d.comb += y.eq(Cat(Const(fmt.mmask, fmt.mbits), Const(fmt.emask - 1, fmt.ebits), s))
    with m.Else():
        m.d.comb += y.eq(Cat(mx, e[:fmt.ebits], s))
    return y


class ExpMul(wiring.Component):
    """One exponent-adder multiplier with stream input and output.

    Members
    -------
    i : In(stream.Signature(input_layout(cfg)))
        One product per transfer: activation ``x`` (bits [0, x_bits)) and weight code ``w``.
    o : Out(stream.Signature(x_bits))
        The product in the activation format.
    """

    def __init__(self, cfg, params=None):
        self.cfg = cfg
        golden.expmul_check_params(cfg, params or {})
        super().__init__({
            "i": In(stream.Signature(input_layout(cfg))),
            "o": Out(stream.Signature(cfg.x_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        en, _ = valid_chain(m, self.i, self.o, STAGES)
        x = Signal(cfg.x_bits, reset_less=True)
        w = Signal(cfg.w_bits, reset_less=True)
        y = Signal(cfg.x_bits, reset_less=True)
        product = expmul_logic(m, cfg, x, w)
        with m.If(en):
            m.d.sync += [x.eq(self.i.payload.x), w.eq(self.i.payload.w), y.eq(product)]
        m.d.comb += self.o.payload.eq(y)
        return m


def stream_cost_model(frames, stages, notes):
    """One item per cycle through ``stages`` registers: N + stages cycles, latency ``stages``."""
    return CycleEstimate(formula=frames, latency=stages, expected=frames + stages,
                         first_input=0, notes=notes)


def cost_model(cfg, frames=1, inputs=None):  # inputs: cycles do not depend on data
    """``frames`` products: one per cycle, latency 2 (input and output registers)."""
    return stream_cost_model(frames, STAGES, "one product per cycle; latency 2 (input register, "
                                             "exponent adder, output register)")
