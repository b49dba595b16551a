"""``expdot``: an N-lane dot product of exponent-adder products with exact accumulation.

Weights (N sign-exponent-only codes) sit in an ``amaranth.lib.memory`` initialised from the
weight file: lanes/simd words of simd codes. Each input transfer carries ``simd`` activations (one
fold of a vector); a vector takes lanes/simd transfers and gives one output.

Pipeline (one fold per cycle, one global enable as in :mod:`qhw.hdl.streampipe`)::

    S0 input register + weight word  ->  S1 simd expmul products  ->  S2 alignment of each product
    into the accumulator's fixed-point grid, sum of the simd lanes, special-value flags  ->
    S3 accumulator (cleared by the first fold)  ->  S4 one rounding to the output format

The accumulator is exact (Kulisch-style): ``acc_bits`` = product magnitude bits + ceil(log2 N) +
1 (see :attr:`qhw.golden.expmul.ExpDotConfig.acc_bits`), so no sum of N products can overflow it
and the only rounding is the last one (round to nearest even; below the smallest normal flush
to a signed zero; beyond the largest finite value infinity or saturation). Fixed-point
activations give the exact sum in ``acc_bits`` bits, with no rounding at all.

With ``accumulator='rounded'`` (float) the accumulator register is one activation-format word:
S3 adds the fold's exact lane sum to that word's value in the same grid and rounds the result
back to the format in the same cycle (a float accumulator's loop), and S4 is the output
register.

``pipeline='deep'`` registers every step instead (:func:`stages`): the products; the float
alignment in three stages (shift amounts and flags, shifted magnitudes, signed lane values;
fixed point: one); each level of the lane-sum tree; the accumulator; the float rounding in four
(|sum|, leading one, normalising shift, rounding into the output register). The config's
``cuts`` (:data:`qhw.golden.expmul.EXPDOT_CUT_NAMES`) name the ones to keep: a cut left out is a
wire of the register's shape, so the arithmetic, and the result, are the same for every subset
and only the latency changes (the input, accumulator and output registers always stay).
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import expmul as golden
from ..registry import CycleEstimate
from .expmul import expmul_logic
from .fpdot import leading_one
from .streampipe import fold_input

__all__ = ["ExpDot", "cost_model", "STAGES", "stages"]

STAGES = 5


class ExpDot(wiring.Component):
    """N-lane dot product; weights baked into the weight memory.

    Members
    -------
    i : In(stream.Signature(simd * x_bits))
        One fold per transfer: lane ``f*simd + s`` of the vector at bits [s*B, (s+1)*B).
    o : Out(stream.Signature(out_bits))
        One dot product per vector (activation format, or ``acc_bits`` signed for fixed point).
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.weight_words = self.weight_memory(cfg, params)
        super().__init__({
            "i": In(stream.Signature(cfg.simd * cfg.x_bits)),
            "o": Out(stream.Signature(cfg.out_bits)),
        })

    #: Width of one weight in the weight memory (a subclass may store other weights).
    def weight_bits(self):
        return self.cfg.w_bits

    def weight_memory(self, cfg, params):
        return golden.expdot_weight_memory(cfg, params)

    def product(self, m, x, w, name):
        """One lane's product in the activation format: the exponent-adder multiplier; for
        ``product='exact'`` the barrel shift x * 2^(f - 1) of the negated or plain activation."""
        cfg = self.cfg
        if not cfg.exact_products:
            return expmul_logic(m, cfg, x, w, name=name)
        ew = cfg.weight_exp_bits
        sw, fw = w[ew], w[:ew]
        xs = Signal(signed(cfg.act_bits + 1), name=f"{name}_xs")
        m.d.comb += xs.eq(Mux(sw, -x.as_signed(), x.as_signed()))
        shift = Signal(ew, name=f"{name}_shift")
        m.d.comb += shift.eq(fw - 1)
        y = Signal(signed(cfg.product_bits), name=f"{name}_y")
        with m.If(fw != 0):
            m.d.comb += y.eq(xs << shift)
        return y

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        simd, xb, wb, acc_bits = cfg.simd, cfg.x_bits, self.weight_bits(), cfg.acc_bits
        deep = cfg.pipeline == "deep"
        n_stages = stages(cfg)
        k_next = iter(range(1, n_stages))
        # deep: the cuts registered (cfg.cuts); the others are wires of the registers' shapes
        self._registered = set(cfg.cut_names)

        # ---- S0: input register, weight word, fold position ------------------------------------
        en, v, x0, w0, first0, last0 = fold_input(m, self, cfg.fold, simd * wb,
                                                  self.weight_words, n_stages)

        def register(values, shapes, first, last, name, gate_last=False, cut=None):
            """The next stage's registers for ``values`` (and the fold markers); for a deep
            pipeline's ``cut`` that the config leaves out, wires of the same shapes instead
            (the arithmetic bit for bit the registered one's) and no stage."""
            if deep and cut is not None and cut not in self._registered:
                wires = [Signal(shape, name=f"{name}{j}") for j, shape in enumerate(shapes)]
                m.d.comb += [w.eq(val) for w, val in zip(wires, values)]
                return wires, first, last
            k = next(k_next)
            regs = [Signal(shape, name=f"{name}{j}", reset_less=True)
                    for j, shape in enumerate(shapes)]
            f_k = Signal(reset_less=True, name=f"first{k}")
            l_k = Signal(reset_less=True, name=f"last{k}")
            with m.If(en):
                m.d.sync += [v[k].eq(v[k - 1] & last if gate_last else v[k - 1]),
                             f_k.eq(first), l_k.eq(last)]
                m.d.sync += [r.eq(val) for r, val in zip(regs, values)]
            return regs, f_k, l_k

        # ---- S1: products ------------------------------------------------------------------------
        products = [self.product(m, x0[s * xb:(s + 1) * xb], w0[s * wb:(s + 1) * wb],
                                 name=f"lane{s}")
                    for s in range(simd)]
        p1, first, last = register(products, [cfg.product_bits] * simd, first0, last0, "p1_",
                                   cut="product")

        # ---- S2: align into the accumulator grid, flags (deep: registered; then the lane sum) ----
        if deep and cfg.is_float:
            lane_vals, flags, first, last = self._align_deep(m, p1, register, first, last)
        else:
            lane_vals, flags_now = self._align(m, p1)
        if deep:
            if not cfg.is_float:
                regs, first, last = register(lane_vals + [flags_now],
                                             [signed(acc_bits)] * simd + [4], first, last, "al",
                                             cut="align")
                lane_vals, flags = regs[:simd], regs[simd]
            while len(lane_vals) > 1:  # one register per level of a pairwise tree
                summed = [lane_vals[j] + lane_vals[j + 1] for j in range(0, len(lane_vals) - 1, 2)]
                if len(lane_vals) % 2:
                    summed.append(lane_vals[-1])
                regs, first, last = register(summed + [flags],
                                             [signed(acc_bits)] * len(summed) + [4],
                                             first, last, "tr",
                                             cut="sum" if len(summed) == 1 else "tree")
                lane_vals, flags = regs[:-1], regs[-1]
            (sum2, flags2), first2, last2 = (lane_vals[0], flags), first, last
        else:
            total = lane_vals[0]
            for val in lane_vals[1:]:
                total = total + val
            (sum2, flags2), first2, last2 = register([total, flags_now], [signed(acc_bits), 4],
                                                     first, last, "s2_")

        if cfg.rounded:
            m.d.comb += self.o.payload.eq(
                self._rounded_accumulator(m, sum2, flags2, first2, last2, en, v, k_next))
            return m

        # ---- accumulator ----------------------------------------------------------------------------
        k_acc = next(k_next)
        acc = Signal(signed(acc_bits), reset_less=True)
        flags3 = Signal(4, reset_less=True)
        with m.If(en):
            m.d.sync += v[k_acc].eq(v[k_acc - 1] & last2)
            with m.If(v[k_acc - 1]):
                m.d.sync += [acc.eq(Mux(first2, 0, acc) + sum2),
                             flags3.eq(Mux(first2, 0, flags3) | flags2)]

        # ---- rounding to the output format (deep: three stages) ---------------------------------
        if cfg.is_float:
            out = self._round(m, acc, flags3, en, v, k_next, deep)
        else:
            k = next(k_next)
            out = Signal(cfg.out_bits, reset_less=True)
            with m.If(en):
                m.d.sync += [v[k].eq(v[k - 1]), out.eq(acc)]
        m.d.comb += self.o.payload.eq(out)
        return m

    def _align_deep(self, m, p1, register, first, last):
        """The float alignment in three stages: the shift amount and the zero / above-range /
        special flags; the barrel shift; the negation for a negative product."""
        cfg, fmt, acc_bits = self.cfg, self.cfg.fmt, self.cfg.acc_bits
        mb = fmt.mbits
        if cfg.bounded:
            lo, hi = cfg.exp_range
            span, base = hi - lo, fmt.bias + lo
        else:
            span, base = fmt.emask - 2, 1
        values, shapes = [], []
        nan_l, pinf_l, ninf_l, oor_l = [], [], [], []
        for s in range(cfg.simd):
            sgn, e, man = p1[s][fmt.width - 1], p1[s][mb:fmt.width - 1], p1[s][:mb]
            special = e == fmt.emask
            nan_l.append(special & (man != 0))
            pinf_l.append(special & (man == 0) & ~sgn)
            ninf_l.append(special & (man == 0) & sgn)
            t = Signal(signed(fmt.ebits + 2), name=f"t{s}")
            m.d.comb += t.eq(e - base)
            zero = (e == 0) | special | (t < 0)
            above = Signal(name=f"above{s}")
            m.d.comb += above.eq(~special & (e != 0) & (t > span))
            oor_l.append(above)
            values += [sgn, man, t[:max(1, span.bit_length())], zero, above]
            shapes += [1, mb, range(span + 1), 1, 1]
        flag_oor = (Cat(*oor_l).any() if cfg.bounded and cfg.out_of_range == "flag"
                    else Const(0, 1))
        flags_now = Cat(Cat(*nan_l).any(), Cat(*pinf_l).any(), Cat(*ninf_l).any(), flag_oor)
        regs, first, last = register(values + [flags_now], shapes + [4], first, last, "ap",
                                     cut="exponent")
        flags = regs[-1]
        values, shapes = [], []
        for s in range(cfg.simd):
            sgn, man, shift, zero, above = regs[5 * s:5 * s + 5]
            mag = Signal(acc_bits - 1, name=f"mag{s}")
            with m.If(zero):
                m.d.comb += mag.eq(0)
            with m.Elif(above):
                m.d.comb += mag.eq(((1 << (mb + 1)) - 1) << span)
            with m.Else():
                m.d.comb += mag.eq(Cat(man, Const(1, 1)) << shift)
            values += [sgn, mag]
            shapes += [1, acc_bits - 1]
        regs, first, last = register(values + [flags], shapes + [4], first, last, "as",
                                     cut="shift")
        flags = regs[-1]
        vals = [Mux(regs[2 * s], -regs[2 * s + 1], regs[2 * s + 1]) for s in range(cfg.simd)]
        regs, first, last = register(vals + [flags], [signed(acc_bits)] * cfg.simd + [4],
                                     first, last, "al", cut="align")
        return regs[:-1], regs[-1], first, last

    def _align(self, m, p1):
        """Each lane's product as a signed value of the accumulator grid, and the fold's
        special-value flags (nan, +inf, -inf, above the range)."""
        cfg, acc_bits = self.cfg, self.cfg.acc_bits
        lane_vals = []
        nan_l, pinf_l, ninf_l, oor_l = [], [], [], []
        for s in range(cfg.simd):
            val = Signal(signed(acc_bits), name=f"aligned{s}")
            if cfg.is_float:
                fmt = cfg.fmt
                sgn, e, man = p1[s][fmt.width - 1], p1[s][fmt.mbits:fmt.width - 1], p1[s][:fmt.mbits]
                special = e == fmt.emask
                nan_l.append(special & (man != 0))
                pinf_l.append(special & (man == 0) & ~sgn)
                ninf_l.append(special & (man == 0) & sgn)
                mag = Signal(acc_bits - 1, name=f"mag{s}")
                if cfg.bounded:
                    # shift E - lo = e - (bias + lo); below the range flushes, above saturates
                    # (or flags, out_of_range='flag')
                    lo, hi = cfg.exp_range
                    t = Signal(signed(fmt.ebits + 2), name=f"t{s}")
                    m.d.comb += t.eq(e - (fmt.bias + lo))
                    shift = Signal(range(hi - lo + 1), name=f"shift{s}")
                    m.d.comb += shift.eq(t)
                    above = Signal(name=f"above{s}")
                    m.d.comb += above.eq(~special & (e != 0) & (t > hi - lo))
                    oor_l.append(above)
                    with m.If((e == 0) | special | (t < 0)):
                        m.d.comb += mag.eq(0)
                    with m.Elif(above):
                        m.d.comb += mag.eq(((1 << (fmt.mbits + 1)) - 1) << (hi - lo))
                    with m.Else():
                        m.d.comb += mag.eq(Cat(man, Const(1, 1)) << shift)
                else:
                    shift = Signal(fmt.ebits, name=f"shift{s}")
                    m.d.comb += shift.eq(e - 1)
                    with m.If((e == 0) | special):
                        m.d.comb += mag.eq(0)
                    with m.Else():
                        m.d.comb += mag.eq(Cat(man, Const(1, 1)) << shift)
                m.d.comb += val.eq(Mux(sgn, -mag, mag))
            else:
                m.d.comb += val.eq(p1[s].as_signed())
            lane_vals.append(val)
        flag_oor = (Cat(*oor_l).any() if cfg.bounded and cfg.out_of_range == "flag"
                    else Const(0, 1))
        flags_now = (Cat(Cat(*nan_l).any(), Cat(*pinf_l).any(), Cat(*ninf_l).any(), flag_oor)
                     if cfg.is_float else Const(0, 4))
        return lane_vals, flags_now

    def _round(self, m, acc, flags, en, v, k_next, deep):
        """Round the exact sum ``acc`` (LSB 2^lsb_exp) to the float format; returns the output
        register. Compact: one stage. Deep: |acc| and the leading one; the normalising shift;
        the rounding and the result."""
        y = self._round_logic(m, acc, flags, en, v, k_next, deep)
        k = next(k_next)
        out = Signal(self.cfg.out_bits, reset_less=True)
        with m.If(en):
            m.d.sync += [v[k].eq(v[k - 1]), out.eq(y)]
        return out

    def _round_logic(self, m, acc, flags, en, v, k_next, deep):
        """The rounding of :meth:`_round` up to its result ``y`` (a format word; the special
        ``flags`` nan, +inf, -inf, above-range take precedence, or None: no special values),
        without the output register. Compact (``deep`` False): combinational."""
        cfg, fmt = self.cfg, self.cfg.fmt
        a, mb = cfg.acc_bits, fmt.mbits
        c = cfg.lsb_exp + fmt.bias  # biased exponent of a leading bit at acc[0]
        deep_pipeline = deep

        def stage(pairs, cut):
            """Register (name, value, shape) triples under en when deep and ``cut`` is
            registered; wires otherwise (a value None stays None)."""
            out = []
            deep = deep_pipeline and cut in self._registered
            k = next(k_next) if deep else None
            for name, val, shape in pairs:
                if val is None:
                    out.append(None)
                    continue
                r = Signal(shape, name=name, reset_less=deep)
                if deep:
                    with m.If(en):
                        m.d.sync += r.eq(val)
                else:
                    m.d.comb += r.eq(val)
                out.append(r)
            if deep:
                with m.If(en):
                    m.d.sync += v[k].eq(v[k - 1])
            return out

        neg0 = acc[a - 1]
        mag0, neg0, flags = stage([("r_abs", Mux(neg0, -acc, acc), a), ("r_neg0", neg0, 1),
                                   ("r_flags0", flags, 4)], "abs")
        any0, lead0 = leading_one(mag0)
        mag, lead, neg, flags = stage([("r_mag", mag0, a), ("r_lead", lead0, range(a)),
                                       ("r_neg", neg0, 1), ("r_flags1", flags, 4)], "lead")
        shift = Signal(range(a), name="r_shift")
        m.d.comb += shift.eq(a - 1 - lead)
        # the exponent before the rounding's carry, and its flush / overflow tests, are computed
        # beside the normalising shift: the last stage only adds the carry
        ew = max(len(lead), abs(c).bit_length()) + 3
        e_pre = Signal(signed(ew), name="r_e_pre")
        m.d.comb += e_pre.eq(lead + c)
        norm, e0, neg, flags, zero, tiny, ovf0, edge = stage([
            ("r_norm", mag << shift, a), ("r_e0", e_pre, signed(ew)), ("r_neg2", neg, 1),
            ("r_flags2", flags, 4), ("r_zero", mag == 0, 1), ("r_tiny", e_pre < 1, 1),
            ("r_ovf0", e_pre >= fmt.emask, 1), ("r_edge", e_pre == fmt.emask - 1, 1)],
            "normalise")
        sig = norm[a - 1 - mb:]
        guard = norm[a - 2 - mb]
        sticky = norm[:a - 2 - mb].any()
        rounded = Signal(mb + 2, name="r_rounded")
        m.d.comb += rounded.eq(sig + (guard & (sticky | sig[0])))
        carry = rounded[mb + 1]
        e = Signal(signed(ew), name="r_e")
        m.d.comb += e.eq(e0 + carry)
        y = Signal(fmt.width, name="r_y")
        inf_bits = Cat(Const(0, mb), Const(fmt.emask, fmt.ebits))
        if flags is not None:
            self._special_values(m, y, flags)
            with m.Elif(flags[3]):           # above the bounded range, with out_of_range 'flag'
                m.d.comb += y.eq(golden.qnan(fmt))
        with (m.If if flags is None else m.Elif)(zero):
            m.d.comb += y.eq(0)
        with m.Elif(tiny):
            m.d.comb += y.eq(Cat(Const(0, fmt.width - 1), neg))
        with m.Elif(ovf0 | (edge & carry)):
            if cfg.overflow == "inf":
                m.d.comb += y.eq(Cat(inf_bits, neg))
            else:
                m.d.comb += y.eq(Cat(Const(fmt.mmask, mb), Const(fmt.emask - 1, fmt.ebits), neg))
        with m.Else():
            m.d.comb += y.eq(Cat(rounded[:mb], e[:fmt.ebits], neg))
        return y

    def _special_values(self, m, y, flags):
        """Open the priority chain of the special values on ``y``: NaN for a NaN flag or both
        infinities, else +inf or -inf. ``flags``: (nan, +inf, -inf, ...). The caller continues
        the chain with ``m.Elif`` / ``m.Else``."""
        fmt = self.cfg.fmt
        inf_bits = Cat(Const(0, fmt.mbits), Const(fmt.emask, fmt.ebits))
        nan, pinf, ninf = flags[0], flags[1], flags[2]
        with m.If(nan | (pinf & ninf)):
            m.d.comb += y.eq(golden.qnan(fmt))
        with m.Elif(pinf):
            m.d.comb += y.eq(Cat(inf_bits, Const(0, 1)))
        with m.Elif(ninf):
            m.d.comb += y.eq(Cat(inf_bits, Const(1, 1)))

    def _grid_value(self, m, word, name):
        """A format word's value in the accumulator grid (LSB 2^(1 - bias - m)), signed
        ``acc_bits``; zero for a zero (or flushed) word and for an infinity (flagged apart)."""
        cfg, fmt = self.cfg, self.cfg.fmt
        sgn, e, man = word[fmt.width - 1], word[fmt.mbits:fmt.width - 1], word[:fmt.mbits]
        shift = Signal(fmt.ebits, name=f"{name}_shift")
        m.d.comb += shift.eq(e - 1)
        mag = Signal(cfg.acc_bits - 1, name=f"{name}_mag")
        with m.If((e != 0) & (e != fmt.emask)):
            m.d.comb += mag.eq(Cat(man, Const(1, 1)) << shift)
        val = Signal(signed(cfg.acc_bits), name=f"{name}_val")
        m.d.comb += val.eq(Mux(sgn, -mag, mag))
        return val

    def _rounded_accumulator(self, m, fold_sum, flags, first, last, en, v, k_next):
        """``accumulator='rounded'``: the accumulator is one format word, and each fold's exact
        lane sum is added to its value and rounded back to the format in the same cycle (the
        loop: alignment of the word, the add, |sum|, leading one, normalisation, rounding).
        A rounding that overflows to infinity is flagged like an infinite product, unless an
        infinity or NaN came before it or with it in the vector (IEEE: the running sum is then
        already infinite or NaN). Then the output register, where the flags' NaN and infinities
        take precedence. Returns it."""
        cfg, fmt = self.cfg, self.cfg.fmt
        k_acc = next(k_next)
        acc = Signal(fmt.width, reset_less=True, name="acc_word")
        flags3 = Signal(4, reset_less=True)
        total = Signal(signed(cfg.acc_bits), name="loop_sum")
        m.d.comb += total.eq(Mux(first, 0, self._grid_value(m, acc, "acc")) + fold_sum)
        y = self._round_logic(m, total, None, en, v, k_next, deep=False)
        seen = Signal(4, name="flags_seen")   # this vector's flags up to and with this fold
        m.d.comb += seen.eq(Mux(first, 0, flags3) | flags)
        y_ovf = (y[fmt.mbits:fmt.width - 1] == fmt.emask) & ~seen[:3].any()
        y_flags = Cat(Const(0, 1), y_ovf & ~y[fmt.width - 1], y_ovf & y[fmt.width - 1],
                      Const(0, 1))
        with m.If(en):
            m.d.sync += v[k_acc].eq(v[k_acc - 1] & last)
            with m.If(v[k_acc - 1]):
                m.d.sync += [acc.eq(y), flags3.eq(seen | y_flags)]
        result = Signal(fmt.width, name="result")
        self._special_values(m, result, flags3)
        with m.Else():
            m.d.comb += result.eq(acc)
        k = next(k_next)
        out = Signal(cfg.out_bits, reset_less=True)
        with m.If(en):
            m.d.sync += [v[k].eq(v[k - 1]), out.eq(result)]
        return out


def stages(cfg):
    """Register stages from input to output (the latency). Compact: input, products, alignment
    and lane sum, accumulator, rounding (5). Deep, float: input, products, three alignment stages
    (shift amount and flags; barrel shift; negation), one per level of the lane tree
    (ceil(log2 simd)), accumulator, four rounding stages (|acc|; leading one; normalisation;
    rounding): 10 + ceil(log2 simd). Deep, fixed point: input, products, alignment, the tree
    levels, accumulator, output: 5 + ceil(log2 simd). ``accumulator='rounded'`` rounds inside
    the accumulator's loop, so its rounding is not pipelined: compact 5 (the output register in
    place of the rounding stage), deep 7 + ceil(log2 simd) (input, products, three alignment
    stages, the tree levels, the accumulator loop, the output register). Those are every cut of
    the deep pipeline; with ``cuts`` naming a subset, the input, accumulator and output
    registers and one stage per named cut ("tree": ceil(log2 simd) - 1 of them)."""
    if cfg.pipeline != "deep":
        return STAGES
    return 3 + sum(cfg.lane_tree_levels - 1 if c == "tree" else 1 for c in cfg.cut_names)


def cost_model(cfg, frames=1, inputs=None):  # inputs: cycles do not depend on data
    """``frames`` vectors of lanes/simd transfers, one per cycle; latency :func:`stages` after
    the last fold."""
    f, n = cfg.fold, stages(cfg)
    deep = cfg.pipeline == "deep"
    front = (f"alignment ({3 if cfg.is_float else 1} stage(s)), {cfg.lane_tree_levels} "
             f"lane-sum level(s)" if deep else "alignment and lane sum")
    if cfg.rounded:
        back = "the rounding accumulator (add and round in one cycle), output register"
    elif not deep:
        back = "accumulator, rounding"
    else:
        back = "accumulator, " + ("|sum|, leading one, normalisation, rounding" if cfg.is_float
                                  else "output register")
    what = f"input register, products, {front}, {back}"
    if deep and cfg.cuts is not None:
        what = (f"input register, the registered cuts ({', '.join(cfg.cut_names) or 'none'}), "
                + ("the rounding accumulator (add and round in one cycle), output register"
                   if cfg.rounded else "accumulator, output register"))
    return CycleEstimate(
        formula=f * frames, latency=n, expected=f * frames + n, first_input=f - 1,
        notes=(f"F = lanes/simd = {f} cycles per vector (one fold per cycle, folds of consecutive "
               f"vectors back to back); latency {n} from a vector's last fold: {what}"))
