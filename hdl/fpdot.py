"""``fpdot``: a conventional float dot product (the baseline of ``expdot``).

Same streams and folding as :mod:`qhw.hdl.expdot`: each input transfer carries ``simd``
activations (one fold), a vector takes lanes/simd transfers and gives one output; the weights
(float bit patterns) sit in an ``amaranth.lib.memory``. The arithmetic is a conventional float
datapath, every operation rounding to nearest even (:mod:`qhw.golden.fpdot` is the definition):
``simd`` IEEE multipliers (:func:`qhw.hdl.mulbase.fp_mul_logic`), a pairwise tree of float
adders over each fold's products, and a float accumulator acc = acc + tree sum.

Pipeline (one fold per cycle, one global enable as in :mod:`qhw.hdl.streampipe`)::

    S0 input register + weight word  ->  S1 simd products  ->  S2 .. S(1+L) one register per
    adder-tree level (L = ceil(log2 simd))  ->  S(2+L) accumulator = output register

Latency 3 + L. The accumulator is a single-cycle float adder in a feedback loop (its register
feeds its own input): the first fold of a vector loads the tree sum, the others add to it. That
keeps one fold per cycle without interleaving partial sums (which would change the order of the
additions), at the price that the loop's full float addition (magnitude compare, alignment
shifter, add, leading-one detection, normalising shifter, rounding) must fit in one clock. It is
the critical path (ECP5, fp32: accumulator register to itself, about 41 ns); each tree level is
the same adder between registers, short of the loop only by its input mux, so pipelining the
adders (and interleaving several accumulators) would be needed to raise Fmax much.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import expmul as gexp
from ..golden import fpdot as golden
from ..registry import CycleEstimate
from .mulbase import fp_mul_logic
from .streampipe import fold_input

__all__ = ["FpDot", "fp_add_logic", "cost_model", "stages"]


def stages(cfg):
    """Pipeline registers from input to output: input, products, L tree levels, accumulator."""
    return 3 + cfg.tree_levels


def leading_one(bits):
    """(any, index of the highest set bit) of ``bits``, as a balanced tree of muxes (log depth,
    where a priority chain over the bits would be as deep as the word is wide)."""
    if len(bits) == 1:
        return bits[0], Const(0, 1)
    half = 1 << ((len(bits) - 1).bit_length() - 1)  # the low part: the largest power of 2 < len
    lo_any, lo_pos = leading_one(bits[:half])
    hi_any, hi_pos = leading_one(bits[half:])
    width = (half - 1).bit_length()
    return lo_any | hi_any, Mux(hi_any, hi_pos + half, lo_pos)[:width + 1]


def fp_add_logic(m, fmt, a, b, name="fa"):
    """Combinational float sum of bit patterns ``a`` and ``b``: round to nearest even, DAZ/FTZ,
    overflow to infinity, canonical NaN (:func:`qhw.golden.fpdot.fp_add_ref`, whose algorithm
    this is step for step)."""
    mb, eb, top = fmt.mbits, fmt.ebits, fmt.width - 1
    w = mb + 5  # the aligned sum: hidden bit, mb, guard/round/sticky, one carry bit

    a_e, b_e = a[mb:top], b[mb:top]
    a_special, b_special = a_e == fmt.emask, b_e == fmt.emask
    a_nan, b_nan = a_special & (a[:mb] != 0), b_special & (b[:mb] != 0)
    a_inf, b_inf = a_special & (a[:mb] == 0), b_special & (b[:mb] == 0)
    nan = Signal(name=f"{name}_nan")
    m.d.comb += nan.eq(a_nan | b_nan | (a_inf & b_inf & (a[top] != b[top])))

    # Order by magnitude: the bits below the sign compare as the magnitudes do.
    swap = Signal(name=f"{name}_swap")
    m.d.comb += swap.eq(a[:top] < b[:top])
    big = Signal(fmt.width, name=f"{name}_big")
    small = Signal(fmt.width, name=f"{name}_small")
    m.d.comb += [big.eq(Mux(swap, b, a)), small.eq(Mux(swap, a, b))]
    s_l, e_l, e_s = big[top], big[mb:top], small[mb:top]

    # Alignment: a double-width right shift keeps the bits shifted out, whose OR is the sticky
    # bit; beyond mb + 5 places the small operand is all sticky, so the shift is clamped.
    diff = Signal(eb, name=f"{name}_diff")
    m.d.comb += diff.eq(e_l - e_s)
    dist = Signal(range(mb + 6), name=f"{name}_dist")
    m.d.comb += dist.eq(Mux(diff > mb + 5, mb + 5, diff))
    y_full = Cat(Const(0, 3), small[:mb], Const(1, 1))
    shifted = Signal(2 * w - 1, name=f"{name}_shifted")
    m.d.comb += shifted.eq(Cat(Const(0, w), y_full) >> dist)
    y = Signal(mb + 4, name=f"{name}_y")
    m.d.comb += y.eq(shifted[w:] | shifted[:w].any())
    x = Cat(Const(0, 3), big[:mb], Const(1, 1))
    r = Signal(w, name=f"{name}_r")
    m.d.comb += r.eq(Mux(big[top] != small[top], x - y, x + y))

    # Normalise: one place right on a carry (sticky kept), else left to put the leading one at
    # bit mb + 3.
    lead = Signal(range(w), name=f"{name}_lead")
    m.d.comb += lead.eq(leading_one(r)[1])
    carry = r[w - 1]
    lshift = Signal(range(w), name=f"{name}_lshift")
    with m.If(~carry & (r != 0)):
        m.d.comb += lshift.eq(mb + 3 - lead)
    norm = Signal(mb + 4, name=f"{name}_norm")
    with m.If(carry):
        m.d.comb += norm.eq(Cat(r[0] | r[1], r[2:]))
    with m.Else():
        m.d.comb += norm.eq(r << lshift)
    sig = norm[3:]
    rounded = Signal(mb + 2, name=f"{name}_rounded")
    m.d.comb += rounded.eq(sig + (norm[2] & (norm[:2].any() | sig[0])))
    e = Signal(signed(eb + 3), name=f"{name}_e")
    m.d.comb += e.eq(e_l + carry - lshift + rounded[mb + 1])

    y_out = Signal(fmt.width, name=f"{name}_out")
    inf_bits = Const(fmt.emask << mb, top)
    with m.If(nan):
        m.d.comb += y_out.eq(gexp.qnan(fmt))
    with m.Elif(a_inf | b_inf):
        m.d.comb += y_out.eq(Cat(inf_bits, Mux(a_inf, a[top], b[top])))
    with m.Elif((a_e == 0) & (b_e == 0)):  # zeros and flushed subnormals: -0 only if both are
        m.d.comb += y_out.eq(Cat(Const(0, top), a[top] & b[top]))
    with m.Elif(e_s == 0):                 # x + 0 = x
        m.d.comb += y_out.eq(big)
    with m.Elif(r == 0):                   # exact cancellation: +0
        m.d.comb += y_out.eq(0)
    with m.Elif(e >= fmt.emask):
        m.d.comb += y_out.eq(Cat(inf_bits, s_l))
    with m.Elif(e <= 0):
        m.d.comb += y_out.eq(Cat(Const(0, top), s_l))
    with m.Else():
        m.d.comb += y_out.eq(Cat(rounded[:mb], e[:eb], s_l))
    return y_out


class FpDot(wiring.Component):
    """N-lane float dot product; weights baked into the weight memory.

    Members
    -------
    i : In(stream.Signature(simd * W))
        One fold per transfer: lane ``f*simd + s`` of the vector at bits [s*W, (s+1)*W).
    o : Out(stream.Signature(W))
        One dot product per vector, a bit pattern of the format.
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.weight_words = golden.fpdot_weight_memory(cfg, params)
        super().__init__({
            "i": In(stream.Signature(cfg.simd * cfg.x_bits)),
            "o": Out(stream.Signature(cfg.x_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.cfg, self.cfg.fmt
        simd, xb = cfg.simd, cfg.x_bits
        n_stages = stages(cfg)

        # ---- S0: input register, weight word, fold position ------------------------------------
        en, v, x0, w0, first, last = fold_input(m, self, cfg.fold, simd * xb,
                                                self.weight_words, n_stages)

        # ---- S1 .. S(1+L): products, then one register per adder-tree level -------------------
        def register(k, values, first, last):
            """Stage k's registers for ``values`` and the fold markers."""
            regs = [Signal(xb, name=f"s{k}_{j}", reset_less=True) for j in range(len(values))]
            f_k = Signal(reset_less=True, name=f"first{k}")
            l_k = Signal(reset_less=True, name=f"last{k}")
            with m.If(en):
                m.d.sync += [v[k].eq(v[k - 1]), f_k.eq(first), l_k.eq(last)]
                m.d.sync += [r.eq(val) for r, val in zip(regs, values)]
            return regs, f_k, l_k

        products = [fp_mul_logic(m, fmt, x0[s * xb:(s + 1) * xb], w0[s * xb:(s + 1) * xb],
                                 name=f"mul{s}") for s in range(simd)]
        level, first, last = register(1, products, first, last)
        for k in range(cfg.tree_levels):
            count = iter(range(len(level)))
            level = golden.tree_level(
                level, lambda u, w, k=k: fp_add_logic(m, fmt, u, w, name=f"add{k}_{next(count)}"))
            level, first, last = register(2 + k, level, first, last)

        # ---- S(2+L): accumulator, also the output register --------------------------------------
        # Loaded by each vector's first fold, so acc never starts from a zero (which would turn a
        # -0 result into +0); valid once the vector's last fold is in.
        acc = Signal(xb, reset_less=True)
        acc_sum = fp_add_logic(m, fmt, acc, level[0], name="acc")
        with m.If(en):
            m.d.sync += v[-1].eq(v[-2] & last)
            with m.If(v[-2]):
                m.d.sync += acc.eq(Mux(first, level[0], acc_sum))
        m.d.comb += self.o.payload.eq(acc)
        return m


def cost_model(cfg, frames=1, inputs=None):  # inputs: cycles do not depend on data
    """``frames`` vectors of lanes/simd transfers, one per cycle; latency 3 + ceil(log2 simd)."""
    f, s = cfg.fold, stages(cfg)
    return CycleEstimate(
        formula=f * frames, latency=s, expected=f * frames + s, first_input=f - 1,
        notes=(f"F = lanes/simd = {f} cycles per vector (one fold per cycle, folds of consecutive "
               f"vectors back to back); latency {s} from a vector's last fold: input register, "
               f"products, {cfg.tree_levels} adder-tree level(s), accumulator"))
