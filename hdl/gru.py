"""``gru``: mixed-precision integer GRU unit (one layer, streamed time steps).

Structure per time step (docs/gru.md)::

    i (x_t, reset, last) -> MAC array (MACS lanes, weights in memory) -> 6 row sums per hidden unit
        -> element-wise pipeline (bias, 17 narrowings, sigmoid/tanh tables) -> h' -> FIFO -> o

The folded matrix-product datapath walks, for every hidden unit i and gate g in (r, z, n), the
row of W_ih (ceil(I/MACS) chunks over x) and then the row of W_hh (ceil(H/MACS) chunks over h),
one chunk of MACS multiply-accumulates per cycle, so a step issues 3H(ceil(I/M) + ceil(H/M))
chunks. The six row sums of a hidden unit go, as one bundle, into the element-wise pipeline,
which adds the biases and narrows every operator into its own format with the rounding and
saturation of :func:`qhw.golden.gru.narrow`, so its result is bit-exact to
:func:`qhw.golden.gru.gru_step`. The new state is collected in a shift register and becomes the
state of the next step when the last hidden unit is written. For clock speed every slow element
(block RAM output, multiplier, adder tree, aligned sum, narrowing) is followed by a register and no
stage holds two of them in series: a MAC pipeline of MAC_LATENCY cycles and an element-wise
pipeline of :func:`elementwise_stages` stages.

Back-pressure: a step starts only in the idle state and only while fewer emitting steps are in
flight or waiting than the output FIFO holds, so the datapath never stalls mid-step; the input is
taken in the cycle the step starts. ``o.valid`` is the FIFO's ``r_rdy``; it never depends on
``o.ready``.
"""

from amaranth import C, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import gru as golden
from ..registry import CycleEstimate

__all__ = ["Gru", "cost_model", "timing", "narrow_hw", "MAC_LATENCY", "act_latency", "step_overhead",
           "FIFO_DEPTH", "weight_memory", "bias_memory"]

#: Cycles from a chunk's issue to its accumulated sum in the accumulator register: weight memory
#: read, weight word and operand registers, product register, adder-tree register, accumulate.
MAC_LATENCY = 5

#: Output FIFO depth: steps run one at a time, so two places let a ready consumer never wait.
FIFO_DEPTH = 2

ROWS = ("mm_ir", "mm_hr", "mm_iz", "mm_hz", "mm_in", "mm_hn")  # row order within a hidden unit


def act_latency(cfg):
    """Cycles of one activation, from its narrowed pre-activation to its registered output: the
    narrowing into the table-address format (1), then the table read (LUT: 1), or the segment
    read, B_k*u beside A_k << d, their sum and the narrowing (PWL: 4)."""
    return 2 if cfg.activation == "lut" else 5


def elementwise_stages(cfg):
    """Stage (cycles after the snapshot register S0) in which h' is written into the new state.

    Every operator takes two stages, its exact value then its narrowing: mm_* (2), add_r/add_z
    (2), sigmoid (act_latency), mul_rn/sub_z/mul_zh (2), add_n (2), tanh (act_latency), mul_n
    (2), add_h (2); the write stage narrows add_h into the state format. 16 with tables, 22 with
    PWL.
    """
    return 2 + 2 + act_latency(cfg) + 2 + 2 + act_latency(cfg) + 2 + 2


def step_overhead(cfg):
    """Cycles of a step beyond its 3H(ceil(I/M)+ceil(H/M)) issue cycles.

    start (1) + MAC pipeline (MAC_LATENCY) + snapshot (1) + element-wise stages + finish (1):
    24 with tables, 30 with PWL.
    """
    return 1 + MAC_LATENCY + 1 + elementwise_stages(cfg) + 1


def issue_cycles(cfg):
    return 3 * cfg.hidden_size * (cfg.chunks_i + cfg.chunks_h)


def operand_bits(cfg):
    return max(cfg.fmt("input").total, cfg.fmt("state").total)


def mac_bits(cfg):
    """Width of the MAC accumulator: the larger bare sum of products of the two sides."""
    return max(golden.sum_bits(cfg, "i"), golden.sum_bits(cfg, "h"))


def weight_memory(cfg, params):
    """Weight memory words: for hidden unit i, gate g (r, z, n): ceil(I/M) chunks of W_ih's row
    then ceil(H/M) chunks of W_hh's row; lane m of chunk c at bits [m*Bw, (m+1)*Bw) holds the
    weight of column c*M + m (0 beyond the row)."""
    h, m = cfg.hidden_size, cfg.macs
    bw = cfg.fmt("weight").total
    mask = (1 << bw) - 1
    words = []
    for i in range(h):
        for g in range(3):
            for w, chunks in ((params["weight_ih"], cfg.chunks_i), (params["weight_hh"], cfg.chunks_h)):
                row = w[g * h + i]
                for c in range(chunks):
                    word = 0
                    for lane in range(m):
                        col = c * m + lane
                        if col < len(row):
                            word |= (int(row[col]) & mask) << (lane * bw)
                    words.append(word)
    return words


def bias_memory(cfg, params):
    """Bias memory words, one per hidden unit: b_ir, b_hr, b_iz, b_hz, b_in, b_hn (Bb bits each)."""
    h = cfg.hidden_size
    bb = cfg.fmt("bias").total
    mask = (1 << bb) - 1
    words = []
    for i in range(h):
        word = 0
        for k, (g, side) in enumerate((g, s) for g in range(3) for s in ("bias_ih", "bias_hh")):
            word |= (int(params[side][g * h + i]) & mask) << (k * bb)
        words.append(word)
    return words


def narrow_hw(v, frac, fmt):
    """Amaranth expression of :func:`qhw.golden.gru.narrow`: ``v`` (signed, ``frac`` fractional
    bits) into ``fmt`` with its rounding and saturation; a signed(fmt.total) value.

    Rounding and saturation are written as bit tests, not comparisons against constants: the
    round-up condition (dropped bits above half, or at half with q odd) is the half bit and (any
    lower dropped bit or q's LSB); q is out of range exactly when its bits from fmt.total - 1 up
    are not all equal to its sign. The same values as the comparisons, in LUT logic instead of
    carry chains, so the round-up adder is the only carry chain of a narrowing.
    """
    fmt = golden.Format(*fmt)
    s = frac - fmt.frac
    if s <= 0:
        q = v << (-s) if s else v
    else:
        v = _sext(v, s + 1)
        q = v >> s
        if fmt.rounding == "nearest_even":
            lower = v[:s - 1].any() if s > 1 else C(0, 1)
            q = q + (v[s - 1] & (lower | q[0]))
    q = _sext(q, fmt.total)
    if len(q) == fmt.total:               # fits: nothing to saturate
        return q.as_signed()
    top, sign = q[fmt.total - 1:], q[-1]
    over = Mux(sign, ~top.all(), top.any())
    return Mux(over, Mux(sign, C(fmt.lo, signed(fmt.total)), C(fmt.hi, signed(fmt.total))),
               q[:fmt.total].as_signed())


def _sext(v, width):
    """``v`` (signed) sign-extended to at least ``width`` bits."""
    if len(v) >= width:
        return v
    return Cat(v, v[-1].replicate(width - len(v))).as_signed()


class Gru(wiring.Component):
    """Mixed-precision integer GRU layer.

    Parameters
    ----------
    cfg : GruConfig
    params : dict
        Weight-file arrays (checked here).

    Members
    -------
    i : In(stream.Signature(I*Bx + 2))
        One time step per transfer: x codes (element j at bits [j*Bx, (j+1)*Bx)), ``reset`` at
        bit I*Bx (state zeroed before this step), ``last`` at bit I*Bx + 1.
    o : Out(stream.Signature(H*Bh))
        The state after a step (element i at bits [i*Bh, (i+1)*Bh)): after every step
        ('sequence') or after steps flagged ``last`` ('last').
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        super().__init__({
            "i": In(stream.Signature(golden.input_word_bits(cfg))),
            "o": Out(stream.Signature(cfg.hidden_size * cfg.fmt("state").total)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        I, H, M = cfg.input_size, cfg.hidden_size, cfg.macs
        CI, CH = cfg.chunks_i, cfg.chunks_h
        fx, fw, fb, fh = (cfg.fmt(n) for n in ("input", "weight", "bias", "state"))
        bx, bw, bb, bh = fx.total, fw.total, fb.total, fh.total
        bo = operand_bits(cfg)

        # ---- memories ---------------------------------------------------------------------------
        m.submodules.weights = wmem = memory.Memory(
            shape=M * bw, depth=3 * H * (CI + CH), init=weight_memory(cfg, self.params))
        w_rd = wmem.read_port()
        m.submodules.biases = bmem = memory.Memory(
            shape=6 * bb, depth=H, init=bias_memory(cfg, self.params))
        b_rd = bmem.read_port()

        # ---- step control -----------------------------------------------------------------------
        idle = Signal(init=1)
        running = Signal()
        pending = Signal(range(FIFO_DEPTH + 1))
        emit = Signal()
        finish = Signal()
        m.d.comb += self.i.ready.eq(idle & (pending < FIFO_DEPTH))
        start = Signal()
        m.d.comb += start.eq(self.i.valid & self.i.ready)
        x_in = self.i.payload[:I * bx]
        reset_flag = self.i.payload[I * bx]
        last_flag = self.i.payload[I * bx + 1]

        x_rot = Signal(CI * M * bx)       # x, zero-padded; rotates by one chunk per W_ih chunk
        h_rot = Signal(CH * M * bh)       # h, zero-padded; rotates by one chunk per W_hh chunk
        h_cur = Signal(H * bh)            # h; rotates by one element per element-wise unit
        h_new = Signal(H * bh)            # h'; shifted in from the top, element i last at i

        unit = Signal(range(H))
        gate = Signal(range(3))
        side = Signal()                   # 0: W_ih x, 1: W_hh h
        chunk = Signal(range(max(CI, CH)))
        addr = Signal(range(3 * H * (CI + CH)))
        m.d.comb += w_rd.addr.eq(addr)
        last_chunk = Mux(side, chunk == CH - 1, chunk == CI - 1)
        last_row = (gate == 2) & side
        issue_done = running & last_chunk & last_row & (unit == H - 1)

        with m.If(start):
            m.d.sync += [idle.eq(0), running.eq(1), unit.eq(0), gate.eq(0), side.eq(0),
                         chunk.eq(0), addr.eq(0), x_rot.eq(x_in),
                         emit.eq((cfg.output == "sequence") | last_flag)]
            with m.If(reset_flag):
                m.d.sync += [h_rot.eq(0), h_cur.eq(0)]
        with m.Elif(running):
            m.d.sync += addr.eq(addr + 1)
            with m.If(side):
                m.d.sync += h_rot.eq(h_rot.rotate_right(M * bh))
            with m.Else():
                m.d.sync += x_rot.eq(x_rot.rotate_right(M * bx))
            with m.If(last_chunk):
                m.d.sync += [chunk.eq(0), side.eq(~side)]
                with m.If(last_row):
                    m.d.sync += gate.eq(0)
                    with m.If(unit == H - 1):
                        m.d.sync += running.eq(0)
                    with m.Else():
                        m.d.sync += unit.eq(unit + 1)
                with m.Elif(side):
                    m.d.sync += gate.eq(gate + 1)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)

        # ---- MAC pipeline -----------------------------------------------------------------------
        # One register after every slow element, so that no path holds more than one of them:
        # t+1 weight word out of the block RAM, lane operands registered; t+2 both registered
        # again (a RAM's clock-to-output delay followed by a multiplier is the slowest path
        # otherwise); t+3 products; t+4 adder tree; t+5 accumulator.
        def delay(value, cycles, name):
            for k in range(cycles):
                r = Signal.like(value, name=f"{name}_d{k + 1}")
                m.d.sync += r.eq(value)
                value = r
            return value

        row = Signal(range(6))
        m.d.comb += row.eq(gate * 2 + side)
        ctrl = Cat(running, chunk == 0, last_chunk, row)   # valid, first, last, row
        operands = []
        for lane in range(M):
            o = Signal(signed(bo), name=f"opnd{lane}")
            m.d.sync += o.eq(Mux(side, h_rot.word_select(lane, bh).as_signed(),
                                 x_rot.word_select(lane, bx).as_signed()))
            operands.append(delay(o, 1, f"opnd{lane}"))
        w_word = delay(w_rd.data, 1, "w_word")
        products = []
        for lane in range(M):
            p = Signal(signed(bw + bo), name=f"prod{lane}")
            m.d.sync += p.eq(w_word.word_select(lane, bw).as_signed() * operands[lane])
            products.append(p)
        while len(products) > 1:          # balanced: log2(M) adder levels, not M - 1
            products = [a + b for a, b in zip(products[0::2], products[1::2])] + \
                       products[len(products) & ~1:]
        tree = Signal(products[0].shape(), name="tree")
        m.d.sync += tree.eq(products[0])
        ctrl4 = delay(ctrl, MAC_LATENCY - 1, "ctrl")
        acc = Signal(signed(mac_bits(cfg)))
        with m.If(ctrl4[0]):
            m.d.sync += acc.eq(Mux(ctrl4[1], 0, acc) + tree)
        ctrl5 = delay(Cat(ctrl4[0], ctrl4[2:]), 1, "ctrl5")   # valid, last, row
        c5_valid, c5_last, c5_row = ctrl5[0], ctrl5[1], ctrl5[2:]

        # ---- row sums of a hidden unit, snapshot into the element-wise pipeline ------------------
        rows = [Signal(signed(mac_bits(cfg)), name=f"row_{ROWS[k]}") for k in range(5)]
        for k in range(5):
            with m.If(c5_valid & c5_last & (c5_row == k)):
                m.d.sync += rows[k].eq(acc)
        snap = Signal()
        m.d.comb += snap.eq(c5_valid & c5_last & (c5_row == 5))
        snap_unit = Signal(range(H))
        m.d.comb += b_rd.addr.eq(snap_unit)
        with m.If(start):
            m.d.sync += snap_unit.eq(0)
        with m.Elif(snap):
            m.d.sync += [snap_unit.eq(snap_unit + 1), h_cur.eq(h_cur.rotate_right(bh))]
        s0_valid = Signal()
        s0_acc = [Signal(signed(mac_bits(cfg)), name=f"s0_{ROWS[k]}") for k in range(6)]
        s0_h = Signal(signed(bh))
        m.d.sync += s0_valid.eq(snap)
        with m.If(snap):
            m.d.sync += [s0_acc[k].eq(rows[k]) for k in range(5)]
            m.d.sync += [s0_acc[5].eq(acc), s0_h.eq(h_cur[:bh].as_signed())]

        # ---- element-wise pipeline -----------------------------------------------------------------
        # Every value is a register tagged with its stage (cycles after S0) and fractional bits.
        # Each stage holds one exact operation (an aligned sum or a product, registered as
        # `<name>_x`) or one narrowing (round and saturate, registered as `<name>`), never both:
        # the two in series were the slowest paths. `at` delays a value to a later stage.
        # A register is made when it is first read (`read`), so that a value whose only reader
        # is a floor narrowing (which drops its low bits whatever they are) registers only the
        # bits that the narrowing keeps: no flip-flop of the pipeline goes unread.
        stage_of = {}
        unmade = {}
        trimmed = set()
        delayed = {}

        def reg(name, value, stage, frac, shape=None):
            stage_of[name] = (None, stage, frac)
            unmade[name] = (value, shape)

        def read(name, drop=0):
            """The register of ``name``, without its ``drop`` lowest bits when it is made here
            (its fractional bits then ``fr(name) - drop``)."""
            if name not in unmade:
                assert drop or name not in trimmed, f"{name}: its low bits were dropped"
                return stage_of[name][0]
            v, shape = unmade.pop(name)
            _, stage, frac = stage_of[name]
            if drop:
                v, shape, frac = _sext(v, drop + 1) >> drop, None, frac - drop
                trimmed.add(name)
            r = Signal(v.shape() if shape is None else shape, name=name)
            m.d.sync += r.eq(v)
            stage_of[name] = (r, stage, frac)
            return r

        def at(name, stage):
            r, s = read(name), stage_of[name][1]
            assert stage >= s, (name, stage, s)
            if (name, stage) not in delayed:
                delayed[name, stage] = delay(r, stage - s, f"{name}_at{stage}")
            return delayed[name, stage]

        def fr(name):
            return stage_of[name][2]

        def floor_read(name, fmt):
            """``name`` read by a narrowing into ``fmt``: (register, fractional bits)."""
            fmt = golden.Format(*fmt)
            drop = fr(name) - fmt.frac if fmt.rounding != "nearest_even" else 0
            r = read(name, max(drop, 0))
            return r, fr(name)

        def narrowed(name, src, fmt, stage):
            """``src`` (registered in stage - 1) narrowed into ``fmt``, registered in ``stage``."""
            r, f = floor_read(src, fmt)
            s = stage_of[src][1]
            assert s == stage - 1, (name, src, s, stage)
            reg(name, narrow_hw(r, f, fmt), stage, fmt.frac, signed(fmt.total))

        stage_of["h"] = (s0_h, 0, fh.frac)
        # S1: each matrix product plus its bias, exact; S2: narrowed into mm_*.
        for k, name in enumerate(ROWS):
            bias = b_rd.data.word_select(k, bb).as_signed()
            v, f = golden.mm_exact(cfg, name[3], s0_acc[k], bias)
            reg(f"{name}_x", v, 1, f)
            narrowed(name, f"{name}_x", cfg.fmt(name), 2)

        la = act_latency(cfg)

        def act(name, src, stage):
            """Activation ``name`` of ``src`` (registered in ``stage``); registered output in
            stage + act_latency: the narrowing into the table-address format, then the table read
            (LUT), or the segment read, B_k*u (with A_k << d), their sum, the narrowing (PWL)."""
            in_fmt = golden.act_input_format(cfg, name)
            out_fmt = cfg.fmt(name)
            narrowed(f"{name}_in", src, in_fmt, stage + 1)
            code = read(f"{name}_in").as_unsigned()
            tables = golden.activation_tables(cfg, name)
            if cfg.activation == "lut":
                mem = memory.Memory(shape=signed(out_fmt.total), depth=1 << in_fmt.total,
                                    init=[int(v) for v in tables[0]])
                m.submodules[f"{name}_lut"] = mem
                rd = mem.read_port()
                m.d.comb += rd.addr.eq(code)
                stage_of[name] = (rd.data, stage + 2, out_fmt.frac)
                return
            a_tab, b_tab = tables
            s = cfg.pwl_segments.bit_length() - 1
            d = in_fmt.total - s
            bt = out_fmt.total
            mem = memory.Memory(shape=2 * bt + 1, depth=cfg.pwl_segments,
                                init=[(int(a) & ((1 << bt) - 1)) | ((int(b) & ((1 << (bt + 1)) - 1)) << bt)
                                      for a, b in zip(a_tab, b_tab)])
            m.submodules[f"{name}_pwl"] = mem
            rd = mem.read_port()
            m.d.comb += rd.addr.eq(code[d:])
            a_val = rd.data[:bt].as_signed()
            b_val = rd.data[bt:].as_signed()
            if d:
                u = delay(code[:d], 1, f"{name}_u")                    # beside the read
                reg(f"{name}_bu", b_val * u, stage + 3, out_fmt.frac + d)
            else:
                reg(f"{name}_bu", C(0, signed(1)), stage + 3, out_fmt.frac)
            reg(f"{name}_a", a_val << d, stage + 3, out_fmt.frac + d)
            v, f = golden.add_exact(at(f"{name}_a", stage + 3), fr(f"{name}_a"),
                                    at(f"{name}_bu", stage + 3), fr(f"{name}_bu"))
            reg(f"{name}_x", v, stage + 4, f)
            narrowed(name, f"{name}_x", out_fmt, stage + 5)

        def add(name, a, b, stage):
            """a + b (both present in ``stage``) exact in stage + 1, narrowed in stage + 2."""
            v, f = golden.add_exact(at(a, stage), fr(a), at(b, stage), fr(b))
            reg(f"{name}_x", v, stage + 1, f)
            narrowed(name, f"{name}_x", cfg.fmt(name), stage + 2)

        def mul(name, a, b, stage):
            """a * b (both present in ``stage``) exact in stage + 1, narrowed in stage + 2."""
            reg(f"{name}_x", at(a, stage) * at(b, stage), stage + 1, fr(a) + fr(b))
            narrowed(name, f"{name}_x", cfg.fmt(name), stage + 2)

        # S3-S4: add_r, add_z; sigmoids registered in sa.
        add("add_r", "mm_ir", "mm_hr", 2)
        add("add_z", "mm_iz", "mm_hz", 2)
        act("sig_r", "add_r", 4)
        act("sig_z", "add_z", 4)
        sa = 4 + la
        # sa+1, sa+2: r * (W_hn h + b_hn), 1 - z, z * h.
        mul("mul_rn", "sig_r", "mm_hn", sa)
        v, f = golden.one_minus_exact(at("sig_z", sa), fr("sig_z"))
        reg("sub_z_x", v, sa + 1, f)
        narrowed("sub_z", "sub_z_x", cfg.fmt("sub_z"), sa + 2)
        mul("mul_zh", "sig_z", "h", sa)
        # sa+3, sa+4: add_n; tanh registered in sb.
        add("add_n", "mm_in", "mul_rn", sa + 2)
        act("tanh_n", "add_n", sa + 4)
        sb = sa + 4 + la
        # sb+1 .. sb+4: mul_n, add_h; in the write stage add_h is narrowed into the state format
        # (a no-op when the formats agree) and shifted into h_new.
        mul("mul_n", "sub_z", "tanh_n", sb)
        add("add_h", "mul_n", "mul_zh", sb + 2)
        sw = sb + 4
        assert sw == elementwise_stages(cfg)
        h_val = narrow_hw(*floor_read("add_h", fh), fh)
        w_valid = delay(s0_valid, sw, "w_valid")
        written = Signal(range(H + 1))
        last_write = Signal()
        m.d.comb += last_write.eq(w_valid & (written == H - 1))
        with m.If(start):
            m.d.sync += written.eq(0)
        with m.Elif(w_valid):
            m.d.sync += [written.eq(written + 1), h_new.eq(Cat(h_new[bh:], h_val))]
        m.d.sync += finish.eq(last_write)

        # ---- step end: the new state becomes h, goes out ------------------------------------------
        with m.If(finish):
            pad = CH * M * bh - H * bh
            m.d.sync += [idle.eq(1), h_cur.eq(h_new),
                         h_rot.eq(Cat(h_new, Const(0, pad)) if pad else h_new)]
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=H * bh, depth=FIFO_DEPTH)
        m.d.comb += [
            out_fifo.w_data.eq(h_new),
            out_fifo.w_en.eq(finish & emit),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]
        taken = self.o.valid & self.o.ready
        inc = start & ((cfg.output == "sequence") | last_flag)
        with m.If(inc & ~taken):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~inc & taken):
            m.d.sync += pending.eq(pending - 1)
        return m


def cost_model(cfg, frames=1, inputs=None):  # inputs: cycles do not depend on data
    """Cycles for ``frames`` (an int k: one sequence of k steps; or (N, T)), input always valid
    and output always ready.

    Steps run one after the other: a step takes its input, issues 3H(ceil(I/M) + ceil(H/M))
    chunks, and ends when the element-wise pipeline has written its last hidden unit; its output
    goes out, and the next step's input is taken, in the cycle after that. So the period P and
    the latency from a step's input transfer to its output transfer are both
    issue + :func:`step_overhead`.
    """
    n, t = golden.frames_shape(frames)
    steps = n * t
    issue = issue_cycles(cfg)
    period = issue + step_overhead(cfg)
    latency = period
    expected = (steps - 1) * period + latency + 1
    first_input = 0 if cfg.output == "sequence" else t - 1
    notes = (f"{issue} issue cycles per step = 3H(ceil(I/M)+ceil(H/M)) "
             f"(3H(I+H)/M = {cfg.macs_per_step / cfg.macs:g}) + {period - issue} overhead "
             f"(start, MAC pipeline {MAC_LATENCY}, snapshot, element-wise "
             f"{elementwise_stages(cfg)}, finish); steps do not overlap")
    return CycleEstimate(formula=issue * steps, latency=latency, expected=expected,
                         first_input=first_input, notes=notes)


def timing(cfg, avail, inputs=None, start=0):
    """Input and output transfer times for steps available at ``avail`` (output always ready):
    a step is taken when it has arrived and the previous step is done (``period`` = issue +
    :func:`step_overhead` after it), and its state goes out ``period`` cycles after it is taken
    ('sequence'), or only for each sequence's last step ('last'). ``inputs`` ((N, T, I), the
    values do not matter) gives the sequence length T; without it, one sequence."""
    steps = len(avail)
    length = inputs.shape[1] if inputs is not None else steps
    period = issue_cycles(cfg) + step_overhead(cfg)
    take, out, needs, t = [], [], [], None
    for j, a in enumerate(avail):
        t = max(a, start) if t is None else max(a, t + period)
        take.append(t)
        if cfg.output == "sequence" or j % length == length - 1:
            out.append(t + period)
            needs.append(j)
    return take, out, needs
