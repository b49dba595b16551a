"""A fixed-latency stream pipeline with one global enable (shared by expmul, mulbase, expdot).

Every stage register, and the valid bit that travels with it, loads only while ``en`` is high;
``en = ~valid_last | o.ready``: the pipeline moves whenever its output register is empty or being
taken. So ``o.valid`` is a register (it never depends on ``o.ready``), the payload holds while a
transfer waits, and with a ready consumer one item enters and one leaves every cycle. ``i.ready``
is ``en`` (ready may depend on ready). The price of the single enable is that a stalled output
also freezes bubbles inside the pipeline, which costs throughput only under back-pressure.

:func:`fold_input` is the input stage of the folded dot products (``expdot``, ``fpdot``): the same
enable, plus the weight memory walked one word per fold.
"""

from typing import NamedTuple

from amaranth import Mux, Signal
from amaranth.lib import memory
from amaranth.lib.wiring import Component

__all__ = ["valid_chain", "fold_input", "FoldInput"]


def valid_chain(m, i, o, stages, name="pipe"):
    """Build the enable and the ``stages`` valid bits between streams ``i`` and ``o``.

    Returns ``(en, valids)``; ``valids[k]`` is high when stage ``k``'s registers hold an item.
    ``o.valid`` is ``valids[-1]``. The caller loads its stage-``k`` registers under ``en``
    (stage 0 from ``i.payload``) and drives ``o.payload`` from its last stage's registers.
    """
    en = Signal(name=f"{name}_en")
    valids = [Signal(name=f"{name}_v{k}") for k in range(stages)]
    m.d.comb += [en.eq(~valids[-1] | o.ready), i.ready.eq(en), o.valid.eq(valids[-1])]
    with m.If(en):
        m.d.sync += valids[0].eq(i.valid)
        for k in range(1, stages):
            m.d.sync += valids[k].eq(valids[k - 1])
    return en, valids


class FoldInput(NamedTuple):
    """What :func:`fold_input` gives its caller."""
    en: Signal       #: the global enable
    valids: list     #: the ``stages`` valid bits; ``valids[0]`` is driven, the rest are not
    x: Signal        #: stage-0 input register (one fold of activations)
    w: Signal        #: the weight word of that fold (the memory's read data, stage 0)
    first: Signal    #: stage 0 holds the first fold of a vector
    last: Signal     #: stage 0 holds the last fold of a vector


def fold_input(m, c: Component, fold, word_bits, init, stages):
    """Stage 0 of a folded dot product: input register, weight word, fold position.

    ``c`` is the component with streams ``c.i`` (one fold of ``len(c.i.payload)`` bits per
    transfer) and ``c.o``. Builds the enable ``en = ~valids[-1] | c.o.ready`` (driving
    ``c.i.ready`` and ``c.o.valid`` as :func:`valid_chain` does), a fold counter that steps on
    every input transfer and wraps at ``fold``, and a weight memory (``m.submodules.weights``,
    ``fold`` words of ``word_bits`` from ``init``) whose synchronous read port is addressed by
    that counter under ``en``, so the word arrives with the registered input. Loads ``valids[0]``,
    the input register and the first/last-of-vector flags under ``en``.

    Unlike :func:`valid_chain`, only ``valids[0]`` is driven: a dot product's later valid bits
    are the caller's (the accumulator's output valid is gated by the last fold), as is
    ``c.o.payload``.
    """
    i, o = c.i, c.o
    valids = [Signal(name=f"v{k}") for k in range(stages)]
    en = Signal(name="en")
    m.d.comb += [en.eq(~valids[-1] | o.ready), i.ready.eq(en), o.valid.eq(valids[-1])]

    m.submodules.weights = wmem = memory.Memory(shape=word_bits, depth=fold, init=init)
    w_rd = wmem.read_port()
    pos = Signal(range(fold), name="fold")
    with m.If(i.valid & i.ready):
        m.d.sync += pos.eq(Mux(pos == fold - 1, 0, pos + 1))
    m.d.comb += [w_rd.addr.eq(pos), w_rd.en.eq(en)]
    x0 = Signal(len(i.payload), reset_less=True, name="x0")
    first0 = Signal(reset_less=True, name="first0")
    last0 = Signal(reset_less=True, name="last0")
    with m.If(en):
        m.d.sync += [valids[0].eq(i.valid), x0.eq(i.payload),
                     first0.eq(pos == 0), last0.eq(pos == fold - 1)]
    return FoldInput(en, valids, x0, w_rd.data, first0, last0)
