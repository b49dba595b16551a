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
adders (and removing the loop) is needed to raise Fmax much.

``pipeline: "deep"`` does that: every multiplier in 1 + :func:`~qhw.hdl.mulbase.mul_cuts`
stages (3; fp32: 4, its 24-bit significands as four registered partial products), every adder in
1 + :data:`ADD_CUTS` stages (:func:`fp_add_logic`'s cuts), and in place of the accumulator loop a
pairwise tree over the fold sums with one adder per level (ceil(log2 F) levels), fed one fold
sum per cycle: another order of additions, which :mod:`qhw.golden.fpdot` defines. Still one fold
per cycle; latency 2 + mul_cuts + (ADD_CUTS + 1) (L + ceil(log2 F)) (:func:`stages`).

Those are all the cuts there are, the ones fp32 needs for 100 MHz on ECP5. The config's
``mul_cuts`` and ``add_cuts`` name a subset (:data:`qhw.golden.fpdot.MUL_CUT_NAMES`,
:data:`~qhw.golden.fpdot.ADD_CUT_NAMES`): a cut left out is a wire, so a narrower format can
trade stages (flip-flops) for the slack it has. The arithmetic, and so the result, is the same
for every subset; only the latency changes (Mc + 2 + (Ac + 1) (L + ceil(log2 F)) for Mc
multiplier and Ac adder cuts).
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import expmul as gexp
from ..golden import fpdot as golden
from ..registry import CycleEstimate
from .mulbase import fp_mul_logic, mul_cuts
from .streampipe import fold_input

__all__ = ["FpDot", "fp_add_logic", "cost_model", "stages", "ADD_CUTS"]


def stages(cfg):
    """Pipeline registers from input to output. ``pipeline: "none"``: input, products, L tree
    levels, accumulator: 3 + L. ``"deep"``: input, one per multiplier cut and its output, one
    per adder cut and its output on each of the L tree levels and the ceil(log2 F) levels over
    the fold sums (all cuts: mul_cuts + 1 and ADD_CUTS + 1)."""
    if cfg.pipeline == "deep":
        return (2 + len(cfg.mul_cut_names)
                + (len(cfg.add_cut_names) + 1) * (cfg.tree_levels + cfg.fold_levels))
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


#: Pipeline cuts inside a deep float adder (:func:`fp_add_logic`); each is one register stage.
#: The multiplier's are :func:`qhw.hdl.mulbase.mul_cuts` (2; fp32: 3).
ADD_CUTS = 5

#: The tag each cut's ``cut`` call carries (the name's last part), by the config's cut names
MUL_CUT_TAGS = dict(zip(golden.MUL_CUT_NAMES, ("c0", "c1", "c2")))
ADD_CUT_TAGS = dict(zip(golden.ADD_CUT_NAMES, ("c1", "c2", "c3", "c4", "c5")))


def fp_add_logic(m, fmt, a, b, name="fa", cut=None):
    """Combinational float sum of bit patterns ``a`` and ``b``: round to nearest even, DAZ/FTZ,
    overflow to infinity, canonical NaN (:func:`qhw.golden.fpdot.fp_add_ref`, whose algorithm
    this is step for step).

    ``cut``: None (one combinational block), or a function ``cut(name, {key: (value, shape)})``
    returning registers of those values, called at the :data:`ADD_CUTS` pipeline cuts: after
    the magnitude compare and exponent difference; after the alignment shift; after the
    add/subtract; after the leading-one detection; after the normalising shift. What follows
    the last cut (rounding, exponent, result select) ends in the caller's register.
    """
    mb, eb, top = fmt.mbits, fmt.ebits, fmt.width - 1
    w = mb + 5  # the aligned sum: hidden bit, mb, guard/round/sticky, one carry bit
    live = {}   # what crosses the next cut: key -> (value, shape)

    def across(tag, **values):
        """Values that the rest of the adder reads, after cut ``tag``: with ``live``, the
        registered values (or, without cuts, the values themselves)."""
        live.update(values)
        if cut is None:
            return {k: v for k, (v, _) in live.items()}
        regs = cut(f"{name}_{tag}", dict(live))
        live.update({k: (regs[k], shape) for k, (_, shape) in live.items()})
        return regs

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
    e_s = small[mb:top]

    # Alignment: a double-width right shift keeps the bits shifted out, whose OR is the sticky
    # bit; beyond mb + 5 places the small operand is all sticky, so the shift is clamped.
    dist = Signal(range(mb + 6), name=f"{name}_dist")
    if cut is None:
        diff = Signal(eb, name=f"{name}_diff")
        m.d.comb += diff.eq(big[mb:top] - e_s)
        m.d.comb += dist.eq(Mux(diff > mb + 5, mb + 5, diff))
    else:
        # both differences beside the magnitude compare (which picks the non-negative one),
        # not after it
        d_ab = Signal(eb + 1, name=f"{name}_d_ab")
        d_ba = Signal(eb + 1, name=f"{name}_d_ba")
        m.d.comb += [d_ab.eq(a_e - b_e), d_ba.eq(b_e - a_e)]
        m.d.comb += dist.eq(Mux(swap, Mux(d_ba > mb + 5, mb + 5, d_ba),
                                Mux(d_ab > mb + 5, mb + 5, d_ab)))
    # what the result select needs of the operands: its special cases, and the larger one
    live.update(nan=(nan, 1), inf=(a_inf | b_inf, 1), inf_sign=(Mux(a_inf, a[top], b[top]), 1),
                both_zero=((a_e == 0) & (b_e == 0), 1), zero_sign=(a[top] & b[top], 1),
                small_zero=(e_s == 0, 1), big=(big, fmt.width))
    c = across("c1", sub=(big[top] != small[top], 1), small_m=(small[:mb], mb),
               dist=(dist, range(mb + 6)))
    y_full = Cat(Const(0, 3), c["small_m"], Const(1, 1))
    shifted = Signal(2 * w - 1, name=f"{name}_shifted")
    m.d.comb += shifted.eq(Cat(Const(0, w), y_full) >> c["dist"])
    y = Signal(mb + 4, name=f"{name}_y")
    m.d.comb += y.eq(shifted[w:] | shifted[:w].any())
    del live["small_m"], live["dist"]
    c = across("c2", y=(y, mb + 4))
    x = Cat(Const(0, 3), c["big"][:mb], Const(1, 1))
    r = Signal(w, name=f"{name}_r")
    m.d.comb += r.eq(Mux(c["sub"], x - c["y"], x + c["y"]))
    del live["sub"], live["y"]
    c = across("c3", r=(r, w))
    r = c["r"]

    # Normalise: one place right on a carry (sticky kept), else left to put the leading one at
    # bit mb + 3.
    lead = Signal(range(w), name=f"{name}_lead")
    m.d.comb += lead.eq(leading_one(r)[1])
    lshift = Signal(range(w), name=f"{name}_lshift")
    with m.If(~r[w - 1] & (r != 0)):
        m.d.comb += lshift.eq(mb + 3 - lead)
    c = across("c4", lshift=(lshift, range(w)))
    r, lshift = c["r"], c["lshift"]
    carry = r[w - 1]
    norm = Signal(mb + 4, name=f"{name}_norm")
    with m.If(carry):
        m.d.comb += norm.eq(Cat(r[0] | r[1], r[2:]))
    with m.Else():
        m.d.comb += norm.eq(r << lshift)
    del live["r"], live["lshift"]
    e_pre = c["big"][mb:top] + carry - lshift
    if cut is None:
        c = across("c5", norm=(norm, mb + 4), e_pre=(e_pre, signed(eb + 3)), r_zero=(r == 0, 1))
    else:
        # beside the normalising shift: the exponent with and without the rounding's carry and
        # its overflow / flush tests, so that the last stage only rounds and selects
        e_now = Signal(signed(eb + 3), name=f"{name}_e_pre")
        m.d.comb += e_now.eq(e_pre)
        c = across("c5", norm=(norm, mb + 4), e_pre=(e_now[:eb], eb),
                   e_up=((e_now + 1)[:eb], eb), r_zero=(r == 0, 1),
                   ovf0=(e_now >= fmt.emask, 1), edge=(e_now == fmt.emask - 1, 1),
                   neg0=(e_now < 0, 1), zero0=(e_now == 0, 1))
    norm, s_l = c["norm"], c["big"][top]
    sig = norm[3:]
    rounded = Signal(mb + 2, name=f"{name}_rounded")
    m.d.comb += rounded.eq(sig + (norm[2] & (norm[:2].any() | sig[0])))
    if cut is None:
        e = Signal(signed(eb + 3), name=f"{name}_e")
        m.d.comb += e.eq(c["e_pre"] + rounded[mb + 1])
        overflow, tiny, e_bits = e >= fmt.emask, e <= 0, e[:eb]
    else:
        up = rounded[mb + 1]
        overflow = c["ovf0"] | (c["edge"] & up)
        tiny = c["neg0"] | (c["zero0"] & ~up)
        e_bits = Mux(up, c["e_up"], c["e_pre"])

    y_out = Signal(fmt.width, name=f"{name}_out")
    inf_bits = Const(fmt.emask << mb, top)
    with m.If(c["nan"]):
        m.d.comb += y_out.eq(gexp.qnan(fmt))
    with m.Elif(c["inf"]):
        m.d.comb += y_out.eq(Cat(inf_bits, c["inf_sign"]))
    with m.Elif(c["both_zero"]):           # zeros and flushed subnormals: -0 only if both are
        m.d.comb += y_out.eq(Cat(Const(0, top), c["zero_sign"]))
    with m.Elif(c["small_zero"]):          # x + 0 = x
        m.d.comb += y_out.eq(c["big"])
    with m.Elif(c["r_zero"]):              # exact cancellation: +0
        m.d.comb += y_out.eq(0)
    with m.Elif(overflow):
        m.d.comb += y_out.eq(Cat(inf_bits, s_l))
    with m.Elif(tiny):
        m.d.comb += y_out.eq(Cat(Const(0, top), s_l))
    with m.Else():
        m.d.comb += y_out.eq(Cat(rounded[:mb], e_bits, s_l))
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
        if self.cfg.pipeline == "deep":
            return self._elaborate_deep()
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

    def _elaborate_deep(self):
        """``pipeline: "deep"``: every multiplier and adder split at its cuts, the fold sums
        added by a pairwise tree of one adder per level (no loop); one register stage per cut.
        The valid bit and the fold index travel with the data; a level of the fold tree keeps
        an even-indexed fold sum in a buffer until its odd partner arrives."""
        m = Module()
        cfg, fmt = self.cfg, self.cfg.fmt
        simd, xb, top = cfg.simd, cfg.x_bits, cfg.x_bits - 1
        n_stages = stages(cfg)
        en, v, x0, w0, first0, _ = fold_input(m, self, cfg.fold, simd * xb, self.weight_words,
                                              n_stages)
        index = [None]  # index[k]: the fold index of the item in stage k (from stage 1 on)
        k = 0

        def cut(name, values):
            """Registers (under the enable) of ``values``: {key: (value, shape)}."""
            regs = {}
            for key, (val, shape) in values.items():
                regs[key] = Signal(shape, name=f"{name}_{key}", reset_less=True)
                with m.If(en):
                    m.d.sync += regs[key].eq(val)
            return regs

        def cut_at(tags):
            """A ``cut`` hook that registers at the cuts whose tag is in ``tags`` and passes the
            values on elsewhere (through wires of the same shapes, so that the arithmetic is
            the registered one's bit for bit)."""
            def hook(name, values):
                if name.rsplit("_", 1)[1] in tags:
                    return cut(name, values)
                wires = {}
                for key, (val, shape) in values.items():
                    wires[key] = Signal(shape, name=f"{name}_{key}")
                    m.d.comb += wires[key].eq(val)
                return wires
            return hook

        mul_tags = {MUL_CUT_TAGS[c] for c in cfg.mul_cut_names}
        add_tags = {ADD_CUT_TAGS[c] for c in cfg.add_cut_names}
        # every cut registered (the default): the hook is ``cut`` itself, as before the choice
        mul_cut = cut if len(mul_tags) == mul_cuts(fmt) else cut_at(mul_tags)
        add_cut = cut if len(add_tags) == ADD_CUTS else cut_at(add_tags)
        n_add = len(add_tags)

        def advance(gate=None):
            """The next stage's valid bit (AND ``gate``, evaluated on this stage) and fold
            index."""
            nonlocal k
            k += 1
            idx = Signal(range(cfg.fold), name=f"fold{k}", reset_less=True)
            with m.If(en):
                m.d.sync += v[k].eq(v[k - 1] if gate is None else v[k - 1] & gate)
                if k == 1:   # counts the folds: 0 at a vector's first
                    with m.If(v[0]):
                        m.d.sync += idx.eq(Mux(first0, 0, idx + 1))
                else:
                    m.d.sync += idx.eq(index[k - 1])
            index.append(idx)

        def register(name, values, gate=None):
            regs = [cut(f"{name}_{j}", {"v": (val, xb)})["v"] for j, val in enumerate(values)]
            advance(gate)
            return regs

        # ---- products ---------------------------------------------------------------------------
        products = [fp_mul_logic(m, fmt, x0[s * xb:(s + 1) * xb], w0[s * xb:(s + 1) * xb],
                                 name=f"mul{s}", cut=mul_cut) for s in range(simd)]
        for _ in range(len(mul_tags)):
            advance()
        level = register("p", products)

        # ---- the pairwise tree of each fold ------------------------------------------------------
        for lv in range(cfg.tree_levels):
            sums = [fp_add_logic(m, fmt, level[i], level[i + 1], name=f"add{lv}_{i // 2}",
                                 cut=add_cut) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:      # the odd last value waits as long as the adders take
                odd = level[-1]
                for c in range(n_add):
                    odd = cut(f"add{lv}_odd_c{c + 1}", {"v": (odd, xb)})["v"]
                sums.append(odd)
            for _ in range(n_add):
                advance()
            level = register(f"t{lv}", sums)

        # ---- the pairwise tree over the fold sums: one adder per level ---------------------------
        # Level lv's input j = fold index >> (lv - 1), n of them per vector: an even j waits in
        # the buffer, an odd j is added to it (buffer + t, the tree's order), an even last j is
        # passed up as t + (+-0 of t's sign), which is t for every value a multiplier or adder
        # gives (no subnormals, the canonical NaN).
        t = level[0]
        for lv in range(1, cfg.fold_levels + 1):
            n = -(-cfg.fold // (1 << (lv - 1)))
            j = index[k][lv - 1:]
            even, last = ~j[0], j == n - 1
            buf = Signal(xb, name=f"fbuf{lv}", reset_less=True)
            with m.If(en & v[k] & even & ~last):
                m.d.sync += buf.eq(t)
            a = Mux(even, t, buf)
            b = Mux(even, Cat(Const(0, top), t[top]), t)
            total = fp_add_logic(m, fmt, a, b, name=f"fold{lv}", cut=add_cut)
            # the valid bit of the adder's first register drops an even input that waits
            gate = ~even | last
            for c in range(n_add):
                advance(gate if c == 0 else None)
            t = register(f"f{lv}", [total], gate if n_add == 0 else None)[0]
        assert k == n_stages - 1
        m.d.comb += self.o.payload.eq(t)
        return m


def cost_model(cfg, frames=1, inputs=None):  # inputs: cycles do not depend on data
    """``frames`` vectors of lanes/simd transfers, one per cycle; latency 3 + ceil(log2 simd)."""
    f, s = cfg.fold, stages(cfg)
    if cfg.pipeline == "deep":
        what = (f"input register, products ({len(cfg.mul_cut_names) + 1} stages), "
                f"{cfg.tree_levels} adder-tree level(s) and {cfg.fold_levels} level(s) of the "
                f"tree over the fold sums, {len(cfg.add_cut_names) + 1} stages each")
    else:
        what = f"input register, products, {cfg.tree_levels} adder-tree level(s), accumulator"
    return CycleEstimate(
        formula=f * frames, latency=s, expected=f * frames + s, first_input=f - 1,
        notes=(f"F = lanes/simd = {f} cycles per vector (one fold per cycle, folds of consecutive "
               f"vectors back to back); latency {s} from a vector's last fold: {what}"))
