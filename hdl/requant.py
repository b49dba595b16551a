"""``requant``: per-channel fixed-point scaling of wide sums to activation codes, on the pixel
stream. Arithmetic and widths come from :mod:`qhw.golden.requant`.

Structure (F = c_in / pe folds per pixel)::

    i -> x_reg (shifts pe fields per fold) -> pe x (x * M_c) -> product registers
      -> round, shift, saturate -> result shift register -> o

A pixel is taken into ``x_reg``; in each of the next F cycles (stage A) the pe lanes multiply
the lowest pe fields of ``x_reg`` by their channels' multipliers (constants, selected by the
fold) into registered products, and ``x_reg`` shifts down by pe fields. Stage B, one cycle
later, rounds (adds 2**(shift-1)), shifts arithmetically and saturates each product, and
shifts the pe codes into the top of the result register; the last fold's codes complete the
pixel, which goes to the output register. The next pixel is taken in the cycle of the last
fold, so a pixel takes F cycles and a stream of pixels has no bubbles.

Back-pressure: every register advances only when the output register is empty or being taken
(``en``), so a held output freezes the pipeline and nothing is lost; ``o.valid`` never waits
for ``o.ready``.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import requant as golden
from ..registry import CycleEstimate

__all__ = ["Requant", "cost_model", "timing", "LATENCY_AFTER_FOLDS"]

#: Cycles from a pixel's last fold to its output transfer: the product register (stage B reads
#: it) and the output register.
LATENCY_AFTER_FOLDS = 2


class Requant(wiring.Component):
    """Requantization of signed sums to codes: y = sat(round(x * M_c / 2**shift)) per channel.

    Parameters
    ----------
    cfg : qhw.golden.requant.RequantConfig
    params : dict
        ``multipliers`` (C,) unsigned mult_bits-bit integers.

    Members
    -------
    i : In(stream.Signature(C * in_bits))
        Input pixels, row-major; channel c at bits [c*E, (c+1)*E), two's complement.
    o : Out(stream.Signature(C * out_bits))
        Output pixels, same order; channel c at bits [c*B, (c+1)*B), unsigned (or two's
        complement with ``out_signed``).
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        super().__init__({
            "i": In(stream.Signature(cfg.c_in * cfg.in_bits)),
            "o": Out(stream.Signature(cfg.c_in * cfg.out_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        e, b, pe, folds = cfg.in_bits, cfg.out_bits, cfg.pe, cfg.fold
        mult = [int(v) for v in self.params["multipliers"]]
        lo, hi = golden.out_range(cfg)
        pbits = golden.product_bits(cfg)

        en = Signal()
        take = Signal()
        busy = Signal()
        fold = Signal(range(folds), name="fold")
        last_fold = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            last_fold.eq(fold == folds - 1),
            self.i.ready.eq(en & (~busy | last_fold)),
            take.eq(self.i.valid & self.i.ready),
        ]

        # Stage A: pe products of the lowest fields of x_reg and their channels' multipliers.
        x_reg = Signal(cfg.c_in * e, name="x_reg", reset_less=True)
        products = [Signal(signed(pbits), name=f"product{lane}", reset_less=True)
                    for lane in range(pe)]
        a_valid = Signal(name="a_valid")
        a_last = Signal(name="a_last")
        with m.If(en):
            m.d.sync += [a_valid.eq(busy), a_last.eq(busy & last_fold)]
            with m.If(busy):
                for lane, product in enumerate(products):
                    table = [mult[f * pe + lane] for f in range(folds)]
                    if len(set(table)) == 1:
                        factor = Const(table[0], unsigned(cfg.mult_bits))
                    else:
                        factor = Array(Const(v, unsigned(cfg.mult_bits)) for v in table)[fold]
                    m.d.sync += product.eq(x_reg[lane * e:(lane + 1) * e].as_signed() * factor)
                m.d.sync += [x_reg.eq(x_reg >> (pe * e)), fold.eq(fold + 1)]
                with m.If(last_fold):
                    m.d.sync += [busy.eq(0), fold.eq(0)]
            with m.If(take):
                m.d.sync += [x_reg.eq(self.i.payload), busy.eq(1), fold.eq(0)]

        # Stage B: round, shift, saturate; codes shift into the top of the result register.
        codes = []
        for lane, product in enumerate(products):
            shifted = Signal(signed(pbits), name=f"shifted{lane}")
            rounded = product + (1 << (cfg.shift - 1)) if cfg.shift else product
            m.d.comb += shifted.eq(rounded >> cfg.shift)
            code = Signal(b, name=f"code{lane}")
            m.d.comb += code.eq(Mux(shifted < lo, Const(lo, signed(b + 1)),
                                    Mux(shifted > hi, Const(hi, signed(b + 1)), shifted)))
            codes.append(code)
        width = cfg.c_in * b
        result = Signal(width, name="result", reset_less=True)
        shifted_in = Cat(result, *codes)[pe * b:]  # drop the oldest pe codes
        with m.If(en):
            m.d.sync += self.o.valid.eq(0)
            with m.If(a_valid):
                m.d.sync += result.eq(shifted_in)
                with m.If(a_last):
                    m.d.sync += [self.o.payload.eq(shifted_in), self.o.valid.eq(1)]
        return m


# Cost model and timing ----------------------------------------------------------------------------

def timing(cfg, avail, inputs=None, start=0):
    """Exact transfer times with the output always ready: pixel j is taken at
    t_j = max(avail[j], start, t_{j-1} + F) and goes out F + 2 cycles later (F folds, the
    product and output registers)."""
    take, t = [], None
    for a in avail:
        t = max(a, start) if t is None else max(a, t + cfg.fold)
        take.append(t)
    return take, [t + cfg.fold + LATENCY_AFTER_FOLDS for t in take], list(range(len(take)))


def cost_model(cfg, frames=1, inputs=None):
    """Exact cycles with no stalls: P = N*H*W pixels at F = c_in/pe cycles each, the last one's
    output F + 2 cycles after it is taken: P*F + 3 cycles from the first input transfer to the
    last output transfer (both counted)."""
    n = golden._frames(frames)
    pixels = n * cfg.positions
    f = cfg.fold
    return CycleEstimate(
        formula=pixels * f, latency=f + LATENCY_AFTER_FOLDS,
        expected=(pixels - 1) * f + f + LATENCY_AFTER_FOLDS + 1, first_input=0,
        notes="F = c_in/pe cycles per pixel (formula: N*H*W*F); each pixel's output F + 2 "
              "cycles after it is taken (product and output registers)")
