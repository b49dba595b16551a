"""AXI4-Stream wrapper of any generated core (``qhw generate --axis``): the port names and
conventions that AMD's and Intel's IP integrators and FuseSoC users wire by (Arm's AMBA
AXI4-Stream Protocol Specification, IHI 0051).

For each input stream ``X`` of the core: ``s_axis_X_tdata`` (the payload in the low bits, padded
to whole bytes; the padding is ignored), ``s_axis_X_tvalid``, ``s_axis_X_tready`` and
``s_axis_X_tlast`` (accepted for compatibility and ignored: the core counts its own frames). For
each output stream ``Y``: ``m_axis_Y_tdata`` (payload in the low bits, the padding zero),
``m_axis_Y_tvalid``, ``m_axis_Y_tready`` and ``m_axis_Y_tlast``, high on the last word of each
frame (a frame's word count is the unit's ``output_words`` for one frame). The clock is ``aclk``;
``aresetn`` is active low and synchronous. AXI4-Stream's handshake is the one the cores already
obey (valid never waits for ready, data held until taken), so the wrapper adds only wires, the
tlast counters and an inverter.
"""

from amaranth import Module, Shape, Signal, Value
from amaranth.hdl import ClockDomain
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxisWrapper", "padded_bits", "axis_port_name"]


def padded_bits(bits):
    """tdata width: ``bits`` rounded up to whole bytes."""
    return max(8, -(-bits // 8) * 8)


def axis_port_name(stream, direction, signal):
    """``s_axis_<stream>_<signal>`` for inputs, ``m_axis_...`` for outputs."""
    return f"{'s' if direction == 'in' else 'm'}_axis_{stream}_{signal}"


class AxisWrapper(wiring.Component):
    """The core behind AXI4-Stream ports.

    Parameters
    ----------
    core : wiring.Component
        A generated unit or network: stream members of ``amaranth.lib.stream`` signatures.
    frame_words : dict
        Output stream name -> words per frame (where ``tlast`` goes high).

    Members
    -------
    aclk, aresetn : In(1)
        Clock, and synchronous active-low reset.
    s_axis_<X>_tdata, _tvalid, _tlast : In; s_axis_<X>_tready : Out
        Every input stream X of the core.
    m_axis_<Y>_tdata, _tvalid, _tlast : Out; m_axis_<Y>_tready : In
        Every output stream Y of the core.
    """

    def __init__(self, core, frame_words):
        self.core = core
        self.frame_words = dict(frame_words)
        self.streams = {}
        members = {"aclk": In(1), "aresetn": In(1)}
        for name, member in core.signature.members.items():
            bits = Shape.cast(member.signature.members["payload"].shape).width
            direction = "in" if member.flow == In else "out"
            self.streams[name] = (direction, bits)
            ax = "s" if direction == "in" else "m"
            if direction == "out" and name not in self.frame_words:
                raise ValueError(f"frame_words: no word count for output stream {name!r}")
            data_flow, ctrl_flow = (In, Out) if direction == "in" else (Out, In)
            members[f"{ax}_axis_{name}_tdata"] = data_flow(padded_bits(bits))
            members[f"{ax}_axis_{name}_tvalid"] = data_flow(1)
            members[f"{ax}_axis_{name}_tlast"] = data_flow(1)
            members[f"{ax}_axis_{name}_tready"] = ctrl_flow(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.core = core = self.core
        for name, (direction, bits) in self.streams.items():
            port = getattr(core, name)
            sig = {s: getattr(self, axis_port_name(name, direction, s))
                   for s in ("tdata", "tvalid", "tready", "tlast")}
            if direction == "in":
                m.d.comb += [Value.cast(port.payload).eq(sig["tdata"][:bits]),
                             port.valid.eq(sig["tvalid"]),
                             sig["tready"].eq(port.ready)]
                continue
            n = self.frame_words[name]
            count = Signal(range(max(n, 2)), name=f"{name}_word")
            m.d.comb += [sig["tdata"].eq(Value.cast(port.payload)), sig["tvalid"].eq(port.valid),
                         port.ready.eq(sig["tready"]), sig["tlast"].eq(count == n - 1)]
            if n > 1:
                with m.If(port.valid & port.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == n - 1):
                        m.d.sync += count.eq(0)
        return m
