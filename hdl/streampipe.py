"""A fixed-latency stream pipeline with one global enable (shared by expmul, mulbase, expdot).

Every stage register, and the valid bit that travels with it, loads only while ``en`` is high;
``en = ~valid_last | o.ready``: the pipeline moves whenever its output register is empty or being
taken. So ``o.valid`` is a register (it never depends on ``o.ready``), the payload holds while a
transfer waits, and with a ready consumer one item enters and one leaves every cycle. ``i.ready``
is ``en`` (ready may depend on ready). The price of the single enable is that a stalled output
also freezes bubbles inside the pipeline, which costs throughput only under back-pressure.
"""

from amaranth import Signal

__all__ = ["valid_chain"]


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
