"""Sliding-window generator: turns a row-major pixel stream into convolution windows.

Shared by every convolution unit. The input is the plain feature-map stream, one pixel (all
channels) per transfer; the output is one whole window per transfer, in window order
``k = (ky*kw + kx)*C + c`` (element ``k`` at bits ``[k*E, (k+1)*E)`` for E-bit elements).

How it works: a line buffer (``amaranth.lib.memory``, depth W) keeps, for each column, the pixels of
the previous kh-1 rows. Every step reads the column's entry, appends the new pixel to make a full
kh-pixel column, writes back the newest kh-1 pixels and shifts the column into a kh x kw window
register. The generator walks an extended grid of (H + pad_bottom) x (W + pad_right) steps: the
steps beyond the image consume no input and push padding, so bottom and right padding cost one
cycle per padded position and no extra storage, and frames follow each other without a gap.

Top and left padding need no logic of their own: 'same' padding puts at least as many pad rows
below the image as above it and at least as many pad columns right as left, so the rows above a
frame's first row are the previous frame's bottom pad rows, still in the line buffer, and the
columns left of a row's first column are the previous row's right pad columns, still in the
window register. Before the first frame after reset the generator spends max(W, kw) cycles
(:func:`startup_cycles`) writing pad pixels into the line buffer and the window register, with its
input not ready, so the first frame sees the same padding. The window is then the register
itself: no multiplexer per tap (they were two thirds of the generator's LUTs,
docs/benchmarks_finn.md).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SlidingWindow", "startup_cycles"]


def startup_cycles(width, kernel, pads):
    """Cycles after reset before the generator takes its first pixel: the pad fill of the line
    buffer and window register (none without padding)."""
    if not any(pads):
        return 0
    kh, kw = kernel
    return max(width if kh > 1 else 0, kw)


class SlidingWindow(wiring.Component):
    """Sliding-window generator with a line buffer.

    Parameters
    ----------
    channels : int
        Channels per pixel.
    element_bits : int
        Bits per channel value.
    height, width : int
        Input feature-map size.
    kernel : (int, int)
        Window height and width.
    pads : (int, int, int, int)
        Padding (top, bottom, left, right); each below the kernel size on its axis.
    pad_element : int
        The E-bit value that padded positions hold.

    Members
    -------
    i : In(stream.Signature(channels*element_bits))
        Input pixels, row-major; channel c at bits [c*E, (c+1)*E).
    o : Out(stream.Signature(kh*kw*channels*element_bits))
        Windows, row-major over output positions.
    """

    def __init__(self, *, channels, element_bits, height, width, kernel, pads, pad_element):
        self.channels = channels
        self.element_bits = element_bits
        self.height = height
        self.width = width
        self.kernel = tuple(kernel)
        self.pads = tuple(pads)
        self.pad_element = pad_element
        self.pixel_bits = channels * element_bits
        kh, kw = self.kernel
        super().__init__({
            "i": In(stream.Signature(self.pixel_bits)),
            "o": Out(stream.Signature(kh * kw * self.pixel_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        kh, kw = self.kernel
        top, bottom, left, right = self.pads
        assert bottom >= top and right >= left, "padding beyond the image's end is what fills it"
        height, width, pb = self.height, self.width, self.pixel_bits
        pad_pixel = Const(int(sum(self.pad_element << (c * self.element_bits)
                                  for c in range(self.channels))), pb)

        # Start-up: fill the line buffer and the window register with padding.
        fill_cycles = startup_cycles(width, self.kernel, self.pads)
        filling = Signal(init=1 if fill_cycles else 0)
        fill = Signal(range(max(2, fill_cycles)))

        # Position on the extended grid (padding rows/columns after the image included).
        y = Signal(range(height + bottom), name="y")
        c = Signal(range(width + right), name="c")
        real = Signal()  # this step consumes an input pixel
        m.d.comb += real.eq((y < height) & (c < width))

        new_pixel = Signal(pb)
        m.d.comb += new_pixel.eq(Mux(real, self.i.payload, pad_pixel))

        column = Signal(kh * pb)  # rows y-kh+1 .. y of column c, oldest at the low bits
        if kh > 1:
            m.submodules.line_buffer = line_buffer = memory.Memory(
                shape=(kh - 1) * pb, depth=width, init=[])
            # Asynchronous read: the column is needed in the cycle its pixel arrives, and the
            # write of the same address in that cycle lands only at the clock edge.
            rd = line_buffer.read_port(domain="comb")
            wr = line_buffer.write_port()
            m.d.comb += [
                rd.addr.eq(c),
                column.eq(Mux(c < width, Cat(rd.data, new_pixel), Cat(*[pad_pixel] * kh))),
                wr.addr.eq(Mux(filling, fill, c)),
                wr.data.eq(Mux(filling, Cat(*[pad_pixel] * (kh - 1)), column[pb:])),
            ]
        else:
            m.d.comb += column.eq(Mux(c < width, new_pixel, pad_pixel))

        # Window register: cols[j] holds column c-kw+1+j once the step at (y, c) is done.
        cols = [Signal(kh * pb, name=f"col{j}", reset_less=True) for j in range(kw)]
        new_cols = cols[1:] + [column]
        taps = [new_cols[kx][ky * pb:(ky + 1) * pb] for ky in range(kh) for kx in range(kw)]

        produces = Signal()  # this step completes a window
        # (a bound of 0 is no test: an unsigned position is always at least 0)
        firsts = ((y, kh - 1 - top), (c, kw - 1 - left))
        m.d.comb += produces.eq(Cat(*[pos >= first for pos, first in firsts if first]).all())
        slot_free = ~self.o.valid | self.o.ready
        step = Signal()
        m.d.comb += [
            step.eq(~filling & (~real | self.i.valid) & (~produces | slot_free)),
            self.i.ready.eq(~filling & real & (~produces | slot_free)),
        ]
        if kh > 1:
            m.d.comb += wr.en.eq(Mux(filling, fill < width, step & (c < width)))

        if fill_cycles:
            with m.If(filling):
                m.d.sync += [cols[j].eq(Cat(*[pad_pixel] * kh)) for j in range(kw)]
                m.d.sync += fill.eq(fill + 1)
                with m.If(fill == fill_cycles - 1):
                    m.d.sync += filling.eq(0)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(step):
            m.d.sync += [cols[j].eq(new_cols[j]) for j in range(kw)]
            with m.If(produces):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(Cat(*taps))]
            with m.If(c == width + right - 1):
                m.d.sync += c.eq(0)
                with m.If(y == height + bottom - 1):
                    m.d.sync += y.eq(0)
                with m.Else():
                    m.d.sync += y.eq(y + 1)
            with m.Else():
                m.d.sync += c.eq(c + 1)
        return m
