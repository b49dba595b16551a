"""``maxpool`` and ``globalpool``: pooling units on the convolutions' pixel stream.

Both take one input pixel per cycle whenever the input is valid and the output can take a result
(no bubbles), and stall the input only on the pixel that completes an output while the output
register still holds an untaken result, so nothing is lost under back-pressure. Arithmetic and
widths come from :mod:`qhw.golden.pool`.

``MaxPool`` (stride = kernel, no padding, floor)::

    i -> [kx: horizontal max register hacc] -> [ky: row buffer of W_out partial maxima] -> o

The pixel at column kx of its window is max-ed into ``hacc`` (kx = 0 loads it). At the window's
last column (kx = k_w-1) the horizontal maximum h of this row of the window is complete: window
row ky = 0 stores h in the row buffer at the output column ox, rows 0 < ky < k_h-1 store
max(buffer[ox], h), and the last row ky = k_h-1 sends max(buffer[ox], h) to the output register.
The row buffer (``amaranth.lib.memory``, depth W_out, C*E bits) has a synchronous read port,
transparent for its write port, whose address is the output column of the *next* cycle's pixel
(the current column, or the one after it when a pixel is taken this cycle), so its data is
buffer[ox] in every cycle, including a value written in the cycle before (W_out = 1). Rows and
columns beyond H_out*k_h and W_out*k_w are taken and dropped.

``GlobalPool``: an accumulator per channel (max, or the sum at sum_bits), loaded by the first pixel
of a frame; the frame's last pixel moves the finished value into the output register. 'avg'
divides by the constant H*W as a multiplication by a reciprocal on the output register
(:func:`qhw.golden.pool.avg_reciprocal`, exact over the sum's range), signed values through their
offset-binary form (sign bit flipped before the sum and after the division).
"""

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import pool as golden
from ..registry import CycleEstimate

__all__ = ["MaxPool", "GlobalPool", "maxpool_cost_model", "globalpool_cost_model",
           "maxpool_timing", "globalpool_timing"]


def _fields(value, count, bits):
    return [value[c * bits:(c + 1) * bits] for c in range(count)]


def _max(a, b, bits, is_signed):
    """max(a, b) of two ``bits``-bit values: an OR for bits, else a compare and a multiplexer."""
    if bits == 1:
        return a | b
    if is_signed:
        return Mux(a.as_signed() > b.as_signed(), a, b)
    return Mux(a > b, a, b)


class _PoolBase(wiring.Component):
    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        super().__init__({
            "i": In(stream.Signature(cfg.c_in * cfg.element_bits)),
            "o": Out(stream.Signature(cfg.c_out * golden.out_element_bits(cfg))),
        })


class MaxPool(_PoolBase):
    """k_h x k_w max pooling, stride = kernel, floor on sizes the kernel does not divide.

    Parameters
    ----------
    cfg : qhw.golden.pool.MaxPoolConfig
    params : dict
        Must be empty (no weights).

    Members
    -------
    i : In(stream.Signature(C * E))
        Input pixels, row-major; channel c at bits [c*E, (c+1)*E) (two's complement if signed).
    o : Out(stream.Signature(C * E))
        Output pixels, row-major over the H_out x W_out grid, same packing.
    """

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        kh, kw = cfg.kernel
        e, ch = cfg.element_bits, cfg.c_in
        pb = ch * e
        ho, wo = cfg.out_height, cfg.out_width

        def pmax(a, b):
            return Cat(*[_max(x, y, e, cfg.signed)
                         for x, y in zip(_fields(a, ch, e), _fields(b, ch, e))])

        # Position: column and row of the pixel on the input, kx/ky within its window, ox/oy
        # the output column/row, and whether it lies in a complete window (not dropped).
        col = Signal(range(cfg.width), name="col")
        row = Signal(range(cfg.height), name="row")
        kx = Signal(range(kw), name="kx")
        ky = Signal(range(kh), name="ky")
        ox = Signal(range(wo), name="ox")
        oy = Signal(range(ho), name="oy")
        col_live = Signal(init=1, name="col_live")
        row_live = Signal(init=1, name="row_live")

        x = self.i.payload
        window_col_end = Signal()
        emits = Signal()
        take = Signal()
        m.d.comb += [
            window_col_end.eq(col_live & row_live & (kx == kw - 1)),
            emits.eq(window_col_end & (ky == kh - 1)),
            self.i.ready.eq(~emits | ~self.o.valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
        ]

        # Horizontal maximum over the window's columns of this row.
        if kw > 1:
            hacc = Signal(pb, name="hacc", reset_less=True)
            h = Signal(pb, name="h")
            m.d.comb += h.eq(Mux(kx == 0, x, pmax(hacc, x)))
            with m.If(take):
                m.d.sync += hacc.eq(h)
        else:
            h = x

        # Vertical maximum through the row buffer.
        if kh > 1:
            m.submodules.row_buffer = row_buffer = memory.Memory(shape=pb, depth=wo, init=[])
            wr = row_buffer.write_port()
            rd = row_buffer.read_port(transparent_for=(wr,))
            next_ox = Signal.like(ox)
            with m.If(take & (col == cfg.width - 1)):
                m.d.comb += next_ox.eq(0)
            with m.Elif(take & (kx == kw - 1) & col_live & (ox != wo - 1)):
                m.d.comb += next_ox.eq(ox + 1)
            with m.Else():
                m.d.comb += next_ox.eq(ox)
            partial = Signal(pb, name="partial")
            m.d.comb += [
                rd.addr.eq(next_ox),  # rd.data is buffer[ox] in the next cycle
                partial.eq(Mux(ky == 0, h, pmax(rd.data, h))),
                wr.addr.eq(ox),
                wr.data.eq(partial),
                wr.en.eq(take & window_col_end & (ky != kh - 1)),
            ]
        else:
            partial = h

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            with m.If(emits):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(partial)]
            # Advance the position. Later assignments win: a row end overrides the column steps.
            with m.If(kx == kw - 1):
                m.d.sync += kx.eq(0)
                with m.If(ox == wo - 1):
                    m.d.sync += col_live.eq(0)
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
            with m.Else():
                m.d.sync += kx.eq(kx + 1)
            m.d.sync += col.eq(col + 1)
            with m.If(col == cfg.width - 1):
                m.d.sync += [col.eq(0), kx.eq(0), ox.eq(0), col_live.eq(1)]
                with m.If(ky == kh - 1):
                    m.d.sync += ky.eq(0)
                    with m.If(oy == ho - 1):
                        m.d.sync += row_live.eq(0)
                    with m.Else():
                        m.d.sync += oy.eq(oy + 1)
                with m.Else():
                    m.d.sync += ky.eq(ky + 1)
                m.d.sync += row.eq(row + 1)
                with m.If(row == cfg.height - 1):
                    m.d.sync += [row.eq(0), ky.eq(0), oy.eq(0), row_live.eq(1)]
        return m


class GlobalPool(_PoolBase):
    """Global max, sum or floor average over all H x W positions, per channel.

    Parameters
    ----------
    cfg : qhw.golden.pool.GlobalPoolConfig
    params : dict
        Must be empty (no weights).

    Members
    -------
    i : In(stream.Signature(C * E))
        Input pixels, row-major; channel c at bits [c*E, (c+1)*E) (two's complement if signed).
    o : Out(stream.Signature(C * B))
        One word per frame; channel c at bits [c*B, (c+1)*B), B = out_element_bits (E, or
        sum_bits for 'sum'), signed as the input.
    """

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        e, ch, n = cfg.element_bits, cfg.c_in, cfg.positions
        mode = cfg.mode
        acc_bits = e if mode == "max" else golden.sum_bits(cfg)
        sign_flip = mode == "avg" and cfg.signed  # avg sums offset-binary values
        acc_shape = signed(acc_bits) if cfg.signed and not sign_flip else unsigned(acc_bits)

        pos = Signal(range(n), name="pos")
        later = Signal()  # not the first position (the accumulators hold earlier pixels)
        last = Signal()
        take = Signal()
        m.d.comb += [
            later.eq(pos != 0),
            last.eq(pos == n - 1),
            self.i.ready.eq(~last | ~self.o.valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
        ]

        accs = [Signal(acc_shape, name=f"acc{c}", reset_less=True) for c in range(ch)]
        news = []
        for c, xc in enumerate(_fields(self.i.payload, ch, e)):
            new = Signal(acc_shape, name=f"new{c}")
            if mode == "max":
                m.d.comb += new.eq(Mux(later, _max(accs[c], xc, e, cfg.signed), xc))
            else:
                if sign_flip:
                    v = xc ^ (1 << (e - 1))
                elif cfg.signed:
                    v = xc.as_signed()
                else:
                    v = xc
                m.d.comb += new.eq(Mux(later, accs[c] + v, v))
            news.append(new)

        results = [Signal(acc_shape, name=f"result{c}", reset_less=True) for c in range(ch)]
        if mode == "avg":
            mult, shift = golden.avg_reciprocal(cfg)
            outs = []
            for c in range(ch):
                q = Signal(e, name=f"avg{c}")
                m.d.comb += q.eq((results[c] * mult) >> shift)
                outs.append(q ^ (1 << (e - 1)) if sign_flip else q)
            m.d.comb += self.o.payload.eq(Cat(*outs))
        else:
            m.d.comb += self.o.payload.eq(Cat(*[r[:acc_bits] for r in results]))

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += [a.eq(v) for a, v in zip(accs, news)]
            with m.If(last):
                m.d.sync += [r.eq(v) for r, v in zip(results, news)]
                m.d.sync += [self.o.valid.eq(1), pos.eq(0)]
            with m.Else():
                m.d.sync += pos.eq(pos + 1)
        return m


# Cost models --------------------------------------------------------------------------------------

def _frames(frames):
    return int(frames[0]) if isinstance(frames, (tuple, list)) else int(frames)


def maxpool_cost_model(cfg, frames=1, inputs=None):
    """Exact cycles with no stalls: one input pixel per cycle, the output register one cycle later.

    Input pixel j (over all frames) is taken in cycle j. The pixel at (k_h-1, k_w-1) of an output's
    window completes it, and the output is taken in the next cycle (latency 1). The last output
    comes from pixel L = (N-1)*H*W + (H_out*k_h - 1)*W + W_out*k_w - 1, so the measured cycles
    (first input to last output transfer, inclusive) are L + 2; the H % k_h rows and W % k_w
    columns after it in the last frame are taken later and not counted. The data does not matter.
    """
    n = _frames(frames)
    kh, kw = cfg.kernel
    hw = cfg.height * cfg.width
    last = (n - 1) * hw + (cfg.out_height * kh - 1) * cfg.width + cfg.out_width * kw - 1
    return CycleEstimate(
        formula=n * hw, latency=1, expected=last + 2, first_input=(kh - 1) * cfg.width + kw - 1,
        notes="input-bound at one pixel per cycle (formula: N*H*W); expected = L + 2 with L the "
              "index of the last frame's last pooled pixel, latency 1 (output register)")


def globalpool_cost_model(cfg, frames=1, inputs=None):
    """Exact cycles with no stalls: N*H*W + 1 (one pixel per cycle, the result one cycle after the
    frame's last pixel; latency 1 from that pixel)."""
    n = _frames(frames)
    hw = cfg.positions
    return CycleEstimate(
        formula=n * hw, latency=1, expected=n * hw + 1, first_input=hw - 1,
        notes="input-bound at one pixel per cycle (formula: N*H*W); each frame's result one "
              "cycle after its last pixel")


# Timing for a given input arrival (what a network composes) ---------------------------------------

def _stream_timing(avail, completing, latency, start=0):
    """One pixel per cycle as it arrives; output ``p`` ``latency`` cycles after the pixel
    ``completing[p]`` that completes it is taken (the output always ready)."""
    take, t = [], start - 1
    for a in avail:
        t = max(t + 1, a)
        take.append(t)
    return take, [take[j] + latency for j in completing], list(completing)


def maxpool_timing(cfg, avail, inputs=None, start=0):
    """Transfer times of :class:`MaxPool` for input pixels available at ``avail``: pixels are
    taken as they come; the output of a window one cycle after its last pixel, (k_h-1, k_w-1)."""
    kh, kw = cfg.kernel
    hw = cfg.height * cfg.width
    completing = [f * hw + (oy * kh + kh - 1) * cfg.width + ox * kw + kw - 1
                  for f in range(len(avail) // hw)
                  for oy in range(cfg.out_height) for ox in range(cfg.out_width)]
    return _stream_timing(avail, completing, 1, start)


def globalpool_timing(cfg, avail, inputs=None, start=0):
    """Transfer times of :class:`GlobalPool`: each frame's result one cycle after its last pixel."""
    hw = cfg.positions
    return _stream_timing(avail, [f * hw + hw - 1 for f in range(len(avail) // hw)], 1, start)
