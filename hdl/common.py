"""Helpers shared by the generators: Verilog output and port descriptions for manifests."""

from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring


def to_verilog(component, name):
    """Verilog text of ``component`` as module ``name``, with ``clk``/``rst`` and flattened ports.

    Stream members become ``<member>__valid``, ``<member>__ready`` and ``<member>__payload``.
    """
    return verilog.convert(component, name=name, emit_src=False)


def port_list(component):
    """Ports of the generated module: dicts with name, direction ('in'/'out') and width."""
    ports = [{"name": "clk", "direction": "in", "width": 1},
             {"name": "rst", "direction": "in", "width": 1}]
    for path, member, _value in component.signature.flatten(component):
        direction = "in" if member.flow == wiring.In else "out"
        ports.append({"name": "__".join(map(str, path)), "direction": direction,
                      "width": Shape.cast(member.shape).width})
    return ports


#: Verilator waivers for generated Verilog (docs/lint.md): ``verilator --lint-only -Wall
#: LINT_WAIVERS core.v``. Shipped inside the package beside the generators.
LINT_WAIVERS = Path(__file__).with_name("lint_waivers.vlt")
