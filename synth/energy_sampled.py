"""Measured (gate-level toggle) energy of a whole network input, by sampling each layer.

A gate-level simulation of a whole network on a whole input is out of reach for large inputs
(DNSMOS P.808: 42 million cycles per 9.01 s window). :func:`network_toggle_energy` measures each
layer alone instead, as its registered unit with the layer's own config, folding and weights, on
a slice of its real input (a few rows of the input map the network's golden model gives that
layer, from the middle of the map), and scales to the whole input:

- the data's switching (``combinational``, ``register_outputs``, ``input_ports``: the toggles of
  the data run minus an idle run, as in :func:`qhw.synth.energy.toggle_energy`) by the layer's
  input transfers in the whole input over those in the slice;
- the clock (every flip-flop, every cycle) by the whole input's cycles: in the network every
  layer is clocked for all of them, also while it waits for the slowest layer;
- memory accesses (next paragraph) by the transfers ratio, or by the whole input's cycles for a
  read port that reads every cycle.

Memories stay memories. :func:`qhw.synth.energy.gate_netlist` maps every memory to gates, as
the area figure does: a weight ROM becomes a constant-folded mux tree, a line buffer or FIFO
flip-flops, which is neither what an FPGA (block RAM, LUT RAM) nor an ASIC (SRAM macros) builds
and makes a layer's netlist many times larger. Here the netlist is synthesized with
``synth/scripts/energy_netlist_mem.ys`` (Yosys's ``synth`` without ``memory_map``): each memory is
a ``$mem_v2`` cell, simulated as an array, and each access is priced as the operation count
prices one, Horowitz's 8 KB SRAM read (10 pJ per 64 bits; a write at the read's price, Horowitz
gives none). Accesses are counted in the simulation: a synchronous read port per cycle its
enable is high (an enable tied high reads every cycle, as an SRAM macro with its chip enable
high does), an asynchronous (LUT-RAM style) read port per cycle its address changes, a write
port per cycle its enable is high. The counting is done by a 1-bit toggle register per port,
added to the netlist's Verilog (``always @(posedge clk) if (enable) r <= ~r``), whose toggle
count is the port's access count; they are not part of the energy.

What is and is not counted is in each result's ``notes``; docs/energy.md gives the method, its
validation against a whole gate-level run of a small network, and the figures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from qhw import flow
from qhw.errors import QhwInputError, QhwToolError

from . import energy

__all__ = ["network_toggle_energy", "network_toggle_energy_direct", "sample_layer",
           "measure_unit", "price", "layer_slices", "SAMPLED_MODEL",
           "MEMORY_SCRIPT"]

#: Name and version of the sampled method (on top of :data:`energy.TOGGLE_MODEL`); bump it when
#: the method (slicing, scaling, memory pricing) changes, so cached results are dropped.
SAMPLED_MODEL = "toggle-sampled (per-layer slices, memories as SRAM accesses) v1"
MEMORY_SCRIPT = Path(__file__).parent / "scripts" / "energy_netlist_mem.ys"
_PREFIX = "qhwacc_"
_DATA_KEYS = ("combinational", "register_outputs", "input_ports")


# --------------------------------------------------------------------------------------------
# Memory ports of a netlist, and the registers that count their accesses


def _param_int(value):
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 2) if set(text) <= {"0", "1"} and text else int(text)


def _bit_names(module):
    """net bit -> Verilog reference of one of its names (ports first)."""
    refs = {}
    ordered = sorted(module["netnames"].items(), key=lambda kv: (kv[0] not in module["ports"],
                                                                  kv[0]))
    for name, net in ordered:
        bits = net["bits"]
        offset, upto = int(net.get("offset", 0)), bool(net.get("upto", 0))
        for i, b in enumerate(bits):
            if not isinstance(b, int) or b in refs:
                continue
            if len(bits) == 1 and not offset:
                refs[b] = f"\\{name} "
            else:
                index = offset + (len(bits) - 1 - i) if upto else offset + i
                refs[b] = f"\\{name} [{index}]"
    return refs


def _expr(bit, refs):
    if isinstance(bit, int):
        return refs[bit]
    return {"0": "1'b0", "1": "1'b1"}.get(bit, "1'b0")  # 'x'/'z' constants read as 0


def memory_ports(netlist_json, top):
    """The access ports of every ``$mem_v2`` cell of a Yosys JSON netlist.

    Returns a list of dicts: ``memory`` (its name), ``words``, ``width``, ``kind`` ('read' or
    'write'), ``rule`` ('every cycle': a synchronous read port whose enable is tied high;
    'enabled cycles'; 'address changes': an asynchronous read port), and ``enable`` or
    ``address`` (net bits, for the counting register).
    """
    module = energy._module(netlist_json, top)
    ports = []
    for cname, cell in sorted(module["cells"].items()):
        if cell["type"] not in ("$mem_v2", "$mem"):
            continue
        p, conn = cell["parameters"], cell["connections"]
        name = str(p.get("MEMID", cname)).lstrip("\\")
        words, width = _param_int(p["SIZE"]), _param_int(p["WIDTH"])
        abits = _param_int(p["ABITS"])
        sync = _param_int(p.get("RD_CLK_ENABLE", "0"))
        for k in range(_param_int(p["RD_PORTS"])):
            entry = {"memory": name, "words": words, "width": width, "kind": "read"}
            en = conn["RD_EN"][k]
            if not (sync >> k) & 1:
                entry.update(rule="address changes",
                             address=conn["RD_ADDR"][k * abits:(k + 1) * abits])
            elif en == "1":
                entry.update(rule="every cycle")
            elif en == "0":
                continue
            else:
                entry.update(rule="enabled cycles", enable=en)
            ports.append(entry)
        for k in range(_param_int(p["WR_PORTS"])):
            en = conn["WR_EN"][k * width]  # a port's enables per data bit: the first bit's
            if en == "0":
                continue
            ports.append({"memory": name, "words": words, "width": width, "kind": "write",
                          "rule": "every cycle" if en == "1" else "enabled cycles",
                          **({} if en == "1" else {"enable": en})})
    return ports


def counting_verilog(verilog_text, netlist_json, top, ports, clock="clk"):
    """The netlist's Verilog with one 1-bit counting register per counted port (see the module
    docstring): ``qhwacc_<k>`` toggles on each access of ``ports[k]``."""
    module = energy._module(netlist_json, top)
    refs = _bit_names(module)
    lines = []
    for k, port in enumerate(ports):
        r = f"{_PREFIX}{k}"
        if port["rule"] == "every cycle":
            continue
        lines.append(f"  reg {r} = 1'b0;")
        if port["rule"] == "address changes":
            addr = "{" + ", ".join(_expr(b, refs) for b in reversed(port["address"])) + "}"
            n = len(port["address"])
            lines.append(f"  reg [{n - 1}:0] {r}_a = {n}'d0;")
            lines.append(f"  always @(posedge {clock}) begin {r}_a <= {addr}; "
                         f"if ({addr} != {r}_a) {r} <= ~{r}; end")
        else:
            lines.append(f"  always @(posedge {clock}) if ({_expr(port['enable'], refs)}) "
                         f"{r} <= ~{r};")
    if not lines:
        return verilog_text
    end = verilog_text.rfind("endmodule")
    if end < 0:
        raise QhwToolError("energy netlist: no endmodule in the netlist Verilog")
    return (verilog_text[:end] + "  // qhw energy: access counters of the memory ports\n"
            + "\n".join(lines) + "\n" + verilog_text[end:])


# --------------------------------------------------------------------------------------------
# One unit, measured


def measure_unit(unit, cfg, params, x, *, timeout=None):
    """Gate-level toggles of one unit on inputs ``x``, memories kept as memories.

    Like :func:`qhw.synth.energy.toggle_energy` (same cell model, testbench, idle-run
    subtraction and golden-model check) but with the netlist of ``energy_netlist_mem.ys`` and
    each memory port's accesses counted. Nothing is scaled or priced per access here: see
    :func:`price`.

    Returns
    -------
    dict
        ``data_pj`` (category -> pJ of the data's switching: ``combinational``,
        ``register_outputs``, ``input_ports``), ``flipflops``, ``cycles`` (first input to last
        output transfer), ``ports`` (:func:`memory_ports` entries with ``accesses`` measured,
        None for 'every cycle' ports), ``memory_bits``, ``cells``, ``toggles``, ``nets``,
        ``cycles_run``, ``seconds``.
    """
    started = time.monotonic()
    cfg = energy._config(unit, cfg)
    params = unit.check_params(cfg, params)
    x = unit.check_inputs(cfg, x)
    frames = flow.frames_of(unit, cfg, x)
    gen = flow.generate(unit, cfg, params, frames=frames, inputs=x)
    expected = unit.golden(cfg, params, x)
    netlist = energy.gate_netlist(gen.verilog, gen.top, timeout=timeout, script=MEMORY_SCRIPT)
    synth_s = time.monotonic() - started
    loads = energy.netlist_loads(netlist.json, gen.top)
    ports = memory_ports(netlist.json, gen.top)
    counted = dataclasses.replace(
        netlist, verilog=counting_verilog(netlist.verilog, netlist.json, gen.top, ports))

    from qhw.cosim import runner
    inputs, words = unit.pack_inputs(cfg, x), unit.output_words(cfg, frames)
    timeout_cycles = runner.default_timeout(inputs, words) + 3 * gen.manifest["cycles"]["expected"]
    t0 = time.monotonic()
    sim, idle_sim, toggles = energy.measure_toggles(counted, unit.testbench, inputs, words,
                                                    timeout_cycles=timeout_cycles)
    sim_s = time.monotonic() - t0
    energy.check_gate_level_run(unit, cfg, sim, expected, frames, "netlist (memories kept)")
    for k, port in enumerate(ports):
        port.pop("enable", None), port.pop("address", None)
        if port["rule"] == "every cycle":
            port["accesses"] = None
        else:
            name = f"{_PREFIX}{k}"
            port["accesses"] = int(max(0, toggles.get((name, None), toggles.get((name, 0), 0))))
    own = {k: v for k, v in toggles.items() if not k[0].startswith(_PREFIX)}
    figures = energy.toggle_energy_of_netlist(loads, own, 0)  # clock priced by price()
    unknown = [t for t in loads.unknown_types if t not in ("$mem_v2", "$mem")]
    mems = {(p["memory"], p["words"], p["width"]) for p in ports}
    return {
        "data_pj": {k: figures["breakdown"][k] for k in _DATA_KEYS},
        "flipflops": figures["flipflops"],
        "cycles": int(sim.cycles),
        "cycles_run": int(sim.cycles_run),
        "ports": ports,
        "memory_bits": int(sum(w * b for _, w, b in mems)),
        "cells": netlist.cells,
        "toggles": figures["toggles"],
        "nets": figures["nets"],
        "unknown_types": unknown,
        "unmapped": figures["unmapped"],
        "seconds": {"synthesis": round(synth_s, 2), "simulation": round(sim_s, 2),
                    "total": round(time.monotonic() - started, 2)},
    }


def price(measured, *, data_scale, cycles, busy_cycles=None, model=energy.CELL_MODEL):
    """Energy (pJ) of a measurement scaled to a whole input.

    Parameters
    ----------
    measured : dict
        From :func:`measure_unit`.
    data_scale : float
        Transfers in the whole input over those of the measured run: multiplies the data's
        switching and the counted memory accesses.
    cycles : int
        The whole input's cycles: the clock of every flip-flop and the reads of 'every cycle'
        ports.
    busy_cycles : int, optional
        The cycles the layer works on the whole input (its steady cycles per frame); the rest
        of ``cycles`` is reported as ``idle`` (its clock and every-cycle reads).

    Returns
    -------
    dict
        ``pj``, ``breakdown`` (``combinational``, ``register_outputs``, ``input_ports``,
        ``clock``, ``memory_reads``, ``memory_writes``), ``idle`` (``clock``, ``memory_reads``:
        the part of those spent while the layer waits; None without ``busy_cycles``),
        ``memory_read_bits``, ``memory_write_bits``.
    """
    if data_scale <= 0 or cycles < 0:
        raise QhwInputError(f"data_scale: must be positive, got {data_scale}; cycles: must be "
                            f"at least 0, got {cycles}")
    breakdown = {k: float(measured["data_pj"][k]) * data_scale for k in _DATA_KEYS}
    clock_each = model.clock_fj_per_ff_cycle() / 1000.0
    breakdown["clock"] = measured["flipflops"] * cycles * clock_each
    bits = {"read": 0.0, "write": 0.0}
    every_bits = 0
    for port in measured["ports"]:
        if port["rule"] == "every cycle":
            bits[port["kind"]] += port["width"] * cycles
            every_bits += port["width"] if port["kind"] == "read" else 0
        else:
            bits[port["kind"]] += port["width"] * port["accesses"] * data_scale
    per_bit = energy.op_energy_pj("sram_read", 64) / 64
    breakdown["memory_reads"] = bits["read"] * per_bit
    breakdown["memory_writes"] = bits["write"] * per_bit
    idle = None
    if busy_cycles is not None:
        wait = max(0, cycles - busy_cycles)
        idle = {"cycles": int(wait), "clock": measured["flipflops"] * wait * clock_each,
                "memory_reads": every_bits * wait * per_bit}
    return {"pj": float(sum(breakdown.values())), "breakdown": breakdown, "idle": idle,
            "memory_read_bits": bits["read"], "memory_write_bits": bits["write"]}


# --------------------------------------------------------------------------------------------
# A network, sampled


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise QhwInputError(f"{name}: must be an integer >= {low}, got {value!r}")
    return int(value)


def layer_slices(cfg, rows, cycle_budget):
    """Per layer of a network config, the input rows measured: [(start, rows, total rows)].

    A layer's slice is ``rows`` rows of its input map (fewer where a slice of that many would
    take more than ``cycle_budget`` cycles, at least one pool window or kernel height), from the
    middle of the map, a multiple of a pool's window high and starting on a window boundary; the
    whole map where the layer's unit has no ``height`` (dense layers, whose kernel is the whole
    map), where it is gated, or where the map has at most that many rows.
    """
    from qhw.hdl import network as hdl
    out = []
    for layer in cfg.resolved:
        total = int(layer.in_shape[0])
        c = layer.config
        sliceable = (hasattr(c, "height") and layer.kind != "dense" and not layer.gated
                     and layer.in_steps == 1 and layer.kind not in ("gru", "expdot"))
        if not sliceable:
            out.append((0, total, total))
            continue
        step = 1
        kernel = getattr(c, "kernel", None)
        if layer.kind == "maxpool":
            step = int(kernel[0])
        least = step
        if getattr(c, "padding", "same") == "valid" and kernel is not None:
            least = max(least, int(kernel[0]))
        per_row = hdl.steady_cycles(layer) / max(1, total)
        h = min(rows, max(least, int(cycle_budget // max(1.0, per_row))))
        h = max(least, (h // step) * step)
        if h >= total:
            out.append((0, total, total))
            continue
        start = ((total - h) // 2 // step) * step
        out.append((start, h, total))
    return out


def _cache_file(key):
    return energy.cache_root() / "sampled" / f"{key}.json"


def _key(*parts):
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, dict):  # arrays by name
            for name in sorted(part):
                if part[name] is not None:
                    h.update(name.encode() + np.ascontiguousarray(part[name]).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def _versions():
    return [SAMPLED_MODEL, energy.TOGGLE_MODEL, energy.OPERATION_MODEL, energy._NETLIST_RECIPE,
            MEMORY_SCRIPT.read_text()]


def sample_layer(cfg, params, x, name, *, rows=4, cycle_budget=200_000, timeout=None,
                 cache=True, _window_cycles=None):
    """One layer's part of :func:`network_toggle_energy` (same arguments; ``name`` the layer):
    its slice measured and priced for the whole input. Cached on its own, so that the layers
    can be measured in separate processes and then added up."""
    from qhw import registry
    from qhw.config import config_to_dict
    from qhw.golden import network as golden
    from qhw.hdl import network as hdl
    unit = registry.get("network")
    cfg = energy._config(unit, cfg)
    names = [layer.name for layer in cfg.resolved]
    if name not in names:
        raise QhwInputError(f"layer: {name!r} is not a layer of {cfg.name!r}; its layers: "
                            f"{', '.join(names)}")
    rows, cycle_budget, params, x = _check_args(unit, cfg, params, x, rows, cycle_budget)
    index = names.index(name)
    layer = cfg.resolved[index]
    start, h, full = layer_slices(cfg, rows, cycle_budget)[index]
    key = _key([config_to_dict(cfg), name, rows, cycle_budget] + _versions(), params,
               x if isinstance(x, dict) else {"x": x})
    path = _cache_file(f"layer-{key}")
    if cache and path.is_file():
        return json.loads(path.read_text())
    window_cycles = _window_cycles or int(unit.cost_model(cfg, 1, x).expected)
    act = np.asarray(x["activations"])
    if index:  # the layer's real input: the golden model up to the layer before
        act = np.asarray(golden.trace(cfg, params, x)[index - 1])
    part = unit.parts(cfg, params)[index]
    sub = registry.get(part["unit"])
    sub_cfg = part["config"]
    piece = act[:, start:start + h]
    if h != full:
        sub_cfg = dataclasses.replace(sub_cfg, height=h)
    gates = x.get(f"{layer.name}.gates") if isinstance(x, dict) else None
    measured = measure_unit(sub, sub_cfg, part["params"], layer.unit_inputs(piece, gates),
                            timeout=timeout)
    scale = full / h
    busy = int(hdl.steady_cycles(layer))
    priced = price(measured, data_scale=scale, cycles=window_cycles, busy_cycles=busy)
    entry = {"name": layer.name, "unit": part["unit"],
             "slice": {"start_row": start, "rows": h, "of_rows": full},
             "scale": scale, "busy_cycles": busy, "measured": measured, **priced}
    if cache:
        flow.write_json(path, entry)
    return entry


def _check_args(unit, cfg, params, x, rows, cycle_budget):
    from qhw.golden import network as golden
    rows = _check_int("rows", rows, 1)
    cycle_budget = _check_int("cycle_budget", cycle_budget, 1)
    if cfg.weights != "baked":
        raise QhwInputError("weights: the sampled measurement needs baked weights ('port' "
                            "networks load them at run time)")
    params = unit.check_params(cfg, params)
    x = unit.check_inputs(cfg, x)
    frames = golden.frames(cfg, x)
    if frames != 1:
        raise QhwInputError(f"inputs: the sampled measurement takes one frame (one window), got "
                            f"{frames}")
    height = int(cfg.input["height"])
    if rows > height:
        raise QhwInputError(f"rows: {rows} is more than the input's {height} rows")
    return rows, cycle_budget, params, x


def network_toggle_energy(cfg, params, x, *, rows=4, cycle_budget=200_000, timeout=None,
                          cache=True, progress=None):
    """Measured (gate-level toggle) energy of one network input (a window), sampled per layer.

    Parameters
    ----------
    cfg : NetworkConfig (or its dict)
    params : dict
        The network's weight arrays.
    x : array or dict
        The network's inputs, one frame (``check_inputs`` format).
    rows : int
        Input rows of each layer's slice (at most; fewer where ``cycle_budget`` says so). Must not
        exceed the network input's height.
    cycle_budget : int
        The most cycles a layer's slice may take (its steady cycles per input row times rows),
        down to one pool window or kernel height.
    timeout : float, optional
        Seconds for each layer's Yosys run.
    cache : bool
        Reuse (and store) the result under ``$QHW_CACHE_DIR/energy/sampled``, keyed by the
        config, weights, input, slicing and model versions.
    progress : callable, optional
        Called with a line as each layer starts.

    Returns
    -------
    dict
        JSON-ready: ``pj_per_inference`` and ``pj_total`` (one frame: equal), ``inferences`` (1),
        ``breakdown`` (category -> pJ, summed over layers, plus ``fifos``), ``idle`` (the clock
        and every-cycle reads of layers while they wait), ``layers`` (per layer: slice, scale,
        measured run and priced breakdown), ``fifos`` (between layers: words, width, pJ),
        ``cycles`` (the whole input's, from the cost model), ``rows``, ``cycle_budget``,
        ``model``, ``notes``, ``seconds``.
    """
    from qhw import registry
    from qhw.config import config_to_dict
    from qhw.golden import network as golden
    from qhw.hdl import network as hdl
    started = time.monotonic()
    unit = registry.get("network")
    cfg = energy._config(unit, cfg)
    rows, cycle_budget, params, x = _check_args(unit, cfg, params, x, rows, cycle_budget)
    key = _key([config_to_dict(cfg), rows, cycle_budget] + _versions(), params,
               x if isinstance(x, dict) else {"x": x})
    if cache and _cache_file(key).is_file():
        result = json.loads(_cache_file(key).read_text())
        result["cached"] = True
        return result
    window_cycles = int(unit.cost_model(cfg, 1, x).expected)
    layers, total = [], {}
    idle = {"clock": 0.0, "memory_reads": 0.0}
    for layer in cfg.resolved:
        if progress:
            progress(layer.name)
        entry = sample_layer(cfg, params, x, layer.name, rows=rows, cycle_budget=cycle_budget,
                             timeout=timeout, cache=cache, _window_cycles=window_cycles)
        for k, v in entry["breakdown"].items():
            total[k] = total.get(k, 0.0) + v
        for k in idle:
            idle[k] += entry["idle"][k]
        layers.append(entry)

    per_bit = energy.op_energy_pj("sram_read", 64) / 64
    fifos = []
    depths, kinds = hdl.fifo_depths(cfg), hdl.fifo_kinds(cfg)
    for a, b, depth, kind in zip(cfg.resolved, cfg.resolved[1:], depths[1:], kinds[1:]):
        if not depth:
            continue
        words = int(golden.layer_output_words(a, 1))
        width = int(b.in_shape[2] * b.in_format.bits)
        pj = 2 * words * width * per_bit
        fifos.append({"between": [a.name, b.name], "depth": int(depth), "width": width,
                      "kind": kind, "words": words, "pj": pj})
    total["fifos"] = float(sum(f["pj"] for f in fifos))
    pj = float(sum(total.values()))
    notes = [
        "each layer measured alone (its unit, config, folding and weights) on a slice of rows "
        "of its real input map (the network golden model's, from the middle of the map; a "
        "'same'-padded convolution sees zeros beyond the slice, not the neighbouring rows), "
        "gate level (synth -flatten -noabc; abc -g cmos2 without memory_map), Verilator "
        "toggle coverage, zero delay, outputs checked against the golden model",
        "data switching scaled by the layer's input rows in the window over those in the slice; "
        f"the clock of every flip-flop over all {window_cycles:,} cycles of the window (the cost "
        "model's; no clock gating: a layer waiting for the slowest one is clocked too)",
        "memories kept as memories: each access priced as the operation count prices a read, "
        "10 pJ per 64 bits (Horowitz 8 KB SRAM; writes at the read's price); a synchronous "
        "read port reads on every cycle its enable is high (tied high: every cycle of the "
        "window), an asynchronous one on every cycle its address changes; counted in the "
        "simulation",
        "FIFOs between layers (not part of any layer): each word written once and read once "
        "at the SRAM price; their control logic and pointers are not counted",
        "not counted: the network's glue outside layers and FIFOs, glitches, clock-tree "
        "buffers, leakage",
    ]
    unknown = sorted({t for L in layers for t in L["measured"]["unknown_types"]})
    if unknown:
        notes.append(f"cell types priced as NAND2: {', '.join(unknown)}")
    result = {
        "pj_per_inference": pj, "pj_total": pj, "inferences": 1,
        "breakdown": total, "idle": idle, "layers": layers, "fifos": fifos,
        "cycles": window_cycles, "rows": rows, "cycle_budget": cycle_budget,
        "model": f"{SAMPLED_MODEL}; {energy.TOGGLE_MODEL}; {energy.OPERATION_MODEL}",
        "notes": notes,
        "seconds": {"total": round(time.monotonic() - started, 1),
                    "layers": {L["name"]: L["measured"]["seconds"]["total"] for L in layers}},
        "cached": False,
    }
    if cache:
        flow.write_json(_cache_file(key), result)
    return result


def network_toggle_energy_direct(cfg, params, x, *, timeout=None):
    """The same figure measured directly: the whole network's netlist (memories kept) on the
    whole input, priced by :func:`price` with no scaling (for validating the sampled one on
    networks small enough to simulate whole). Its ``measured`` entry includes the FIFOs and the
    glue between layers, as gates and memories."""
    from qhw import registry
    unit = registry.get("network")
    measured = measure_unit(unit, cfg, params, x, timeout=timeout)
    priced = price(measured, data_scale=1.0, cycles=measured["cycles"])
    return {"pj_per_inference": priced["pj"], "pj_total": priced["pj"], "inferences": 1,
            "cycles": measured["cycles"], "measured": measured, **priced,
            "model": f"{SAMPLED_MODEL}; {energy.TOGGLE_MODEL}; {energy.OPERATION_MODEL}"}
