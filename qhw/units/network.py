"""Registration of ``network``: a chain of registered units as one accelerator (docs/networks.md).

Everything here composes the layers' own registered members: the golden model is the chain of
their golden models, the cost model chains their timing, the operation counts add up theirs.
"""

import numpy as np

from .. import registry
from ..config import config_to_dict
from ..golden import network as golden
from ..hdl import network as hdl
from ..registry import Unit, register
from . import opcount

def _layer_entry(cfg, layer, depth, steady):
    c = layer.config
    entry = {
        "name": layer.name, "kind": layer.kind, "unit": layer.unit,
        "config": config_to_dict(c),
        "input": {"shape": list(layer.in_shape), "format": layer.in_format.describe()},
        "output": {"shape": list(layer.out_shape), "format": layer.out_format.describe()},
        "fifo_depth_in": depth,
        "cycles_per_frame": steady,
    }
    if hasattr(c, "pe") and hasattr(c, "simd"):
        entry["folding"] = {"PE": c.pe, "SIMD": c.simd, "MW": c.k, "MH": c.c_out}
    if layer.gated:
        entry["gating"] = c.gating
    return entry


def performance(cfg, clock_mhz=None):
    """FINN's estimate_network_performance, from the layers' exact cycle models.

    ``max_cycles``: the slowest layer's steady cycles per frame (``max_cycles_node_name``), which
    sets the throughput; ``critical_path_cycles``: the cycles of one frame through the whole
    chain (first input to last output, composed timing), which is the latency of a frame; the
    throughput in frames per second and the latency in ns at ``clock_mhz`` (default: the
    target's clock).
    """
    steady = {layer.name: hdl.steady_cycles(layer) for layer in cfg.resolved}
    name = max(steady, key=steady.get)
    one = hdl.cost_model(cfg, 1)
    clock = clock_mhz or (cfg.target or {}).get("clock_mhz")
    perf = {"max_cycles": steady[name], "max_cycles_node_name": name,
            "critical_path_cycles": one.expected}
    if clock:
        perf.update(fclk_mhz=clock,
                    estimated_throughput_fps=round(clock * 1e6 / steady[name], 3),
                    estimated_latency_ns=round(one.expected * 1e3 / clock, 1))
    return perf


def _describe(cfg):
    depths = hdl.fifo_depths(cfg)
    layers = [_layer_entry(cfg, layer, depth, hdl.steady_cycles(layer))
              for layer, depth in zip(cfg.resolved, depths)]
    streams = {"i": {"direction": "in",
                     "payload_bits": cfg.input["channels"] * cfg.input["bits"],
                     "layout": f"one input pixel per transfer, row-major; channel c at bits "
                               f"[{cfg.input['bits']}*c, {cfg.input['bits']}*c+"
                               f"{cfg.input['bits']}), {cfg.input_format.describe()}"}}
    for layer in cfg.gated_layers:
        streams[f"g_{layer.name}"] = {
            "direction": "in", "layout": f"gates of layer {layer.name!r} ({layer.config.gating}),"
                                         f" one per output position of that layer"}
    if cfg.weights == "port":
        plan = hdl.load_plan(cfg)
        total = sum(entry["words"] for entry in plan)
        streams["wl"] = {
            "direction": "in", "payload_bits": hdl.load_bits(cfg), "words": total,
            "layers": plan,
            "layout": "the weight-load words of every port-weight layer, layer after layer ("
                      + ", ".join(f"{e['layer']}: {e['words']} words of {e['bits']} bits"
                                  for e in plan)
                      + "), each layer's own load stream (its weight-memory words, then its "
                        "auxiliary words, in address order), each word in the low bits; no "
                        f"pixel is taken until all {total} have arrived, and a new load is "
                        "taken once no map is in the network"}
    last = cfg.resolved[-1]
    streams["o"] = {"direction": "out",
                    "payload_bits": last.out_shape[2] * last.out_format.bits,
                    "layout": f"one output pixel of layer {last.name!r} per transfer, row-major; "
                              f"{last.out_format.describe()} per channel"}
    return {
        "network": cfg.name,
        "layers": layers,
        "fifos": [{"between": [a.name, b.name], "depth": d,
                   "width": b.in_shape[2] * b.in_format.bits,
                   "kind": "SyncFIFOBuffered (block RAM)" if k == "buffered" else "SyncFIFO"}
                  for a, b, d, k in zip(cfg.resolved, cfg.resolved[1:], depths[1:],
                                        hdl.fifo_kinds(cfg)[1:])],
        "folding": {layer.name: {"PE": layer.config.pe, **(
                        {"SIMD": layer.config.simd} if hasattr(layer.config, "simd") else {})}
                    for layer in cfg.resolved if hasattr(layer.config, "pe")},
        "estimate_network_performance": performance(cfg),
        **({"folding_solution": cfg.folding_solution.to_dict()}
           if cfg.folding_solution is not None else {}),
        "streams": streams,
    }


def _operations(cfg, frames, inputs=None):
    """The layers' operation counts, added up (gated layers exact with ``inputs``)."""
    n = golden.frames(cfg, inputs) if inputs is not None else opcount.frames_count(frames)
    ops, notes = [], []
    for layer in cfg.resolved:
        unit = registry.get(layer.unit)
        layer_in = None
        if inputs is not None:  # counts depend on the gates only, not on the activations
            zeros = np.zeros((n * layer.in_steps,) + tuple(layer.in_shape), dtype=np.int64)
            layer_in = unit.check_inputs(layer.config,
                                         golden.layer_inputs(cfg, inputs, layer, zeros))
        counts = layer.kind_adapter.operations(layer, layer.unit_frames(n), layer_in)
        if counts is None:
            notes.append(f"layer {layer.name!r}: unit {unit.name!r} has no operation counts")
            continue
        for op in counts["ops"]:
            ops.append({**op, "what": f"{layer.name}: {op['what']}"})
        notes.extend(f"{layer.name}: {note}" for note in counts.get("notes", []))
    return opcount.counts(n, "one frame through every layer", ops, notes)


def _locate(cfg, params, inputs, *, stall_in=0.0, stall_out=0.0, seed=0, hardware_params=None):
    """Run the design with a probe on every layer's output and name the first layer whose
    output differs from its golden model (position, expected, got); None if all agree.

    ``hardware_params``: the weights built into the hardware, when they are not ``params`` (a
    design checked against a model it was not built from)."""
    from .. import flow
    from ..cosim import runner
    from ..hdl.common import to_verilog

    inputs = golden.check_inputs(cfg, inputs)
    frames = golden.frames(cfg, inputs)
    built = params if hardware_params is None else hardware_params
    verilog = to_verilog(hdl.Network(cfg, built, probes=True), "network")
    words = flow._stream_inputs(NETWORK, cfg, built, inputs)  # with the load, if any
    expected_words = NETWORK.output_words(cfg, frames)
    estimate = hdl.cost_model(cfg, frames, inputs)
    timeout = runner.default_timeout(words, expected_words, stall_in, stall_out) + int(
        3 * estimate.expected / max(1e-3, 1.0 - max(stall_in, stall_out)))
    sim = runner.simulate(verilog, "network", NETWORK.testbench, words, expected_words,
                          stall_in=stall_in, stall_out=stall_out, seed=seed,
                          timeout_cycles=timeout,
                          monitors=[f"probe_{layer.name}" for layer in cfg.resolved])
    expected = golden.trace(cfg, params, inputs)
    for layer, want in zip(cfg.resolved, expected):
        got_words = sim.monitored.get(f"probe_{layer.name}", [])
        need = golden.layer_output_words(layer, frames)
        if len(got_words) < need:
            return (f"layer {layer.name!r} ({layer.kind}): {len(got_words)} of {need} output "
                    f"words came out (the layers before it agree)")
        got = golden.layer_outputs(layer, got_words[:need], frames)
        mismatch = flow.first_mismatch(NETWORK, got, want, cfg)
        if mismatch is not None:
            return f"first differing layer {layer.name!r} ({layer.kind}): {mismatch}"
    return None


def _parts(cfg, params):
    """The layers as units of their own, for the per-layer area breakdown. A GRU layer is the
    GRU unit (its step counter, a few flip-flops, is left in the remainder)."""
    params = golden.check_params(cfg, params)
    parts = []
    for layer in cfg.resolved:
        own = golden.layer_params(cfg, params, layer)
        part = {"name": layer.name, "unit": layer.unit, "config": layer.config, "params": own,
                "cycles_per_frame": hdl.steady_cycles(layer)}
        if layer.kind in ("expdot", "fpdot"):  # one dot product of the layer's outputs, stated so
            part.update(params={"weights": own["weights"][0]}, copies=layer.spec["outputs"],
                        name=f"{layer.name} (1 of {layer.spec['outputs']} outputs)")
        parts.append(part)
    return parts


# The regression networks, small enough for the default test run. They are also written out as
# examples/networks/<name>.toml (a test checks that the two agree).
EMBEDDED = {
    "bnn_pool": {
        "name": "bnn_pool",
        "input": {"height": 8, "width": 8, "channels": 3, "bits": 1},
        "layers": [
            {"name": "conv1", "kind": "binconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "output": "threshold", "pe": 2, "simd": 9},
            {"name": "pool1", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "conv2", "kind": "binconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "output": "threshold", "pe": 4, "simd": 24},
            {"name": "pool2", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "fc", "kind": "dense", "arith": "xnor", "outputs": 4, "pe": 2, "simd": 32},
        ],
    },
    "bam_features": {
        "name": "bam_features",
        "input": {"height": 6, "width": 8, "channels": 1, "bits": 8, "signed": True},
        "layers": [
            {"name": "conv1", "kind": "macconv", "c_out": 4, "kernel": [3, 3],
             "padding": "same", "output": "threshold", "pe": 2, "simd": 9},
            {"name": "conv2", "kind": "bamconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 8, "output": "threshold", "pe": 2, "simd": 12},
            {"name": "pool", "kind": "globalpool", "mode": "max"},
            {"name": "head", "kind": "dense", "arith": "bam", "outputs": 2, "weight_bits": 8,
             "pe": 1, "simd": 8},
        ],
    },
    "int8_requant": {
        "name": "int8_requant",
        "input": {"height": 6, "width": 8, "channels": 1, "bits": 8, "signed": True},
        "layers": [
            {"name": "conv1", "kind": "macconv", "c_out": 4, "kernel": [3, 3],
             "padding": "same", "pe": 2, "simd": 9},
            {"name": "q1", "kind": "requant", "out_bits": 8, "mult_bits": 16, "shift": 22,
             "pe": 2},
            {"name": "pool1", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "conv2", "kind": "macconv", "c_out": 6, "kernel": [3, 3],
             "padding": "same", "pe": 3, "simd": 12},
            {"name": "q2", "kind": "requant", "out_bits": 8, "mult_bits": 16, "shift": 24,
             "pe": 3},
            {"name": "pool", "kind": "globalpool", "mode": "max"},
            {"name": "head", "kind": "dense", "arith": "mac", "outputs": 3, "pe": 1, "simd": 6},
        ],
    },
    "odd_floor": {
        "name": "odd_floor",
        "input": {"height": 7, "width": 9, "channels": 2, "bits": 1},
        "layers": [
            {"name": "conv1", "kind": "bamconv", "c_out": 4, "kernel": [3, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold", "pe": 2, "simd": 6},
            {"name": "pool1", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "conv2", "kind": "bamconv", "c_out": 4, "kernel": [2, 2],
             "padding": "valid", "weight_bits": 4, "output": "sum", "pe": 4, "simd": 16},
            {"name": "pool2", "kind": "maxpool", "kernel": [1, 3]},
            {"name": "gsum", "kind": "globalpool", "mode": "sum"},
        ],
    },
    "gated": {
        "name": "gated",
        "input": {"height": 5, "width": 6, "channels": 2, "bits": 1},
        "layers": [
            {"name": "conv1", "kind": "bamconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 6, "output": "threshold", "gating": "mask",
             "pe": 2, "simd": 18},
            {"name": "conv2", "kind": "bamconv", "c_out": 6, "kernel": [1, 3],
             "padding": "same", "weight_bits": 8, "output": "sum", "gating": "count",
             "pe": 3, "simd": 24},
        ],
    },
    "fold_explicit": {
        "name": "fold_explicit",
        "input": {"height": 6, "width": 6, "channels": 4, "bits": 1},
        "layers": [
            {"name": "conv1", "kind": "bamconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 8, "output": "threshold", "pe": 1, "simd": 4},
            {"name": "conv2", "kind": "bamconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 8, "output": "threshold", "pe": 8, "simd": 72},
            {"name": "pool", "kind": "maxpool", "kernel": [2, 2]},
        ],
    },
    # The same network as fold_explicit, its folding chosen by FINN's SetFolding for a target
    # of 2000 cycles per frame (a 1 MHz clock at 500 frames per second).
    "fold_solved": {
        "name": "fold_solved",
        "input": {"height": 6, "width": 6, "channels": 4, "bits": 1},
        "target": {"clock_mhz": 1, "fps": 500},
        "folding": "finn",
        "layers": [
            {"name": "conv1", "kind": "bamconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 8, "output": "threshold"},
            {"name": "conv2", "kind": "bamconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 8, "output": "threshold"},
            {"name": "pool", "kind": "maxpool", "kernel": [2, 2]},
        ],
    },
    # A sequence model over 5-frame sequences: a dense layer per frame, a GRU over the frames
    # (its input format holds the dense layer's 15-bit sums as Q7.8 codes), a dense head on
    # every step's state.
    "seq_gru": {
        "name": "seq_gru",
        "input": {"height": 1, "width": 1, "channels": 6, "bits": 8, "signed": True,
                  "steps": 5},
        "layers": [
            {"name": "fc_in", "kind": "dense", "arith": "mac", "outputs": 4, "weight_bits": 4,
             "pe": 2, "simd": 6},
            {"name": "gru", "kind": "gru", "hidden_size": 4, "bits": 8,
             "formats": {"input": [15, 8]}, "macs": 2},
            {"name": "fc_out", "kind": "dense", "arith": "mac", "outputs": 3, "weight_bits": 4,
             "pe": 1, "simd": 4},
        ],
    },
    # Sign-exponent-only weights on fp16 frames of 4-frame sequences: two expdot layers (6 then
    # 3 outputs), every multiplication an exponent addition, each sum exact until one rounding.
    "seq_expdot": {
        "name": "seq_expdot",
        "input": {"height": 1, "width": 1, "channels": 8, "format": "fp16", "steps": 4},
        "layers": [
            {"name": "e1", "kind": "expdot", "outputs": 6, "simd": 4},
            {"name": "e2", "kind": "expdot", "outputs": 3, "simd": 2},
        ],
    },
}


NETWORK = register(Unit(
    name="network",
    summary="a chain of units (convolutions, pools, dense layers) as one streaming accelerator "
            "with FIFOs sized from the layers' timing",
    config=golden.NetworkConfig,
    generator=hdl.Network,
    golden=golden.reference,
    testbench="qhw.cosim.tb_network",
    cost_model=hdl.cost_model,
    check_params=golden.check_params,
    random_params=golden.random_params,
    check_inputs=golden.check_inputs,
    random_inputs=golden.random_inputs,
    pack_inputs=golden.pack_inputs,
    unpack_outputs=golden.unpack_outputs,
    output_words=golden.output_words,
    output_axes=("frame", "row", "column", "channel"),
    describe=_describe,
    default_config=EMBEDDED["bam_features"],
    regression=EMBEDDED,
    frames=golden.frames,
    operations=_operations,
    locate=_locate,
    parts=_parts,
    load_words=golden.load_words,
))
