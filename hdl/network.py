"""``network``: a chain of registered units as one streaming accelerator.

Structure (every arrow an ``amaranth.lib.stream``)::

    i -> layer 0 -> FIFO -> layer 1 -> FIFO -> ... -> layer L-1 -> o
                            g_<layer> (gates of a gated layer) -^

Each layer is its unit's own generator (so it is the verified unit, not a copy), and the stream
between two layers is the plain pixel format every unit shares (one pixel per transfer, channel
c at bits [c*E, (c+1)*E)). A FIFO sits between every two layers: ``amaranth.lib.fifo.SyncFIFO``
(its memory read without a clock, so it becomes flip-flops or distributed RAM), or, from
:data:`BUFFERED_FIFO_DEPTH` words deep, ``SyncFIFOBuffered``, whose memory has a registered read
port and so maps to block RAM (ECP5 DP16KD, iCE40 EBR), at one more cycle from write to read.

Timing and FIFO depths come from the layers' own cost models: every unit registers a ``timing``
function, the exact transfer times of its input and output words given when its input words
arrive, with its output always ready. Chaining them (a word written into a FIFO in cycle t can be
read from cycle t+1, from a buffered FIFO from t+2) gives the exact transfer times of the whole network with its input always
valid and its output always ready, and from them each FIFO's largest fill, which is its depth:
with those depths no FIFO ever fills, so no layer is ever held up by the next and the chain runs
at the rate the model says (its slowest layer's, in steady state). With stalls and back-pressure
a chain of valid/ready stages cannot deadlock whatever the depths; the depths are about rate.

Run-time weights (the network's ``weights = 'port'``): every weighted layer is built with its
unit's own weight-load stream, and one network stream ``wl`` feeds them all through a router
(:func:`load_plan`): a one-hot layer select and a counter of that layer's words steer each word,
in the low bits, to the selected layer's ``wl``. The router also keeps weights and maps apart:
a map's first pixel is taken only after a whole load has arrived and while no load word is
offered, and a load word is passed on only while no map is in the network (a map counter:
maps whose first pixel went in, less those whose last output word came out), or once a load is
under way. So every map is computed with one weight set, and a second load replaces the first
for the maps after it. The cycles of the cost model count from the first pixel, after the load.
"""

import dataclasses

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import registry
from ..golden import network as golden
from ..registry import CycleEstimate

__all__ = ["Network", "NetworkTiming", "network_timing", "cost_model", "steady_cycles",
           "fifo_depths", "fifo_kinds", "load_plan", "load_bits", "BUFFERED_FIFO_DEPTH",
           "DotDense", "ExpDotDense"]


#: FIFOs at least this deep are ``SyncFIFOBuffered`` (block RAM); shallower ones ``SyncFIFO``.
#: A 32-bit FIFO of 64 words is 32 ECP5 LUT-RAM cells (DPR16X4) and a read multiplexer; the
#: 6,756-word FIFO of the DNSMOS design point as LUT-RAM took 3,788 DPR16X4 and 12,700 LUT4.
BUFFERED_FIFO_DEPTH = 64


def _payload_bits(shape, fmt):
    return shape[2] * fmt.bits


def load_plan(cfg):
    """The weight-load stream of a ``weights = 'port'`` network, layer by layer in network
    order: ``[{"layer", "unit", "words", "bits", "first"}, ...]`` with the layer's word count,
    its load word's width and the index of its first word in the network's stream (that
    layer's own ``streams.wl`` entry, :func:`qhw.hdl.mvu.load_stream`). Empty for baked
    weights."""
    def plan():
        out, first = [], 0
        for layer in cfg.port_layers:
            wl = registry.get(layer.unit).describe(layer.config)["streams"]["wl"]
            out.append({"layer": layer.name, "unit": layer.unit, "words": wl["words"],
                        "bits": wl["payload_bits"], "first": first})
            first += wl["words"]
        return out
    return [dict(entry) for entry in golden.memo(cfg, "load_plan", plan)]


def load_bits(cfg):
    """Width of the network's ``wl`` payload: the widest layer's load word."""
    return max(entry["bits"] for entry in load_plan(cfg))


@dataclasses.dataclass(frozen=True)
class NetworkTiming:
    """Exact transfer times of a network with its input always valid and output always ready.

    Members
    -------
    layers : list of (take, out)
        Per layer, the cycles of its input and output transfers.
    fifo_depths : list of int
        The depth of the FIFO in front of each layer (0 for the first: it reads the network
        input directly): the largest fill that FIFO reaches, at least 1.
    needs : list of int
        For every network output word, the index of the last network input word it depends on.
    """

    layers: list
    fifo_depths: list
    needs: list

    @property
    def take(self):
        return self.layers[0][0]

    @property
    def out(self):
        return self.layers[-1][1]


def _fifo_depth(writes, reads):
    """Smallest depth at which a FIFO written at ``writes`` and read at ``reads`` never refuses
    a write: at a write in cycle t its fill (words written before t, not yet read before t) must
    be below the depth."""
    depth, r = 1, 0
    for n, t in enumerate(writes):
        while r < len(reads) and reads[r] < t:
            r += 1
        depth = max(depth, n - r + 1)
    return depth


def network_timing(cfg, frames=1, inputs=None, *, period=None, latencies=None):
    """Compose the layers' ``timing`` functions (see the module docstring).

    The network input is always valid, or, with ``period``, frame f's pixels arrive from cycle
    f * period on (a source paced at a frame rate). ``inputs`` gives the gates of gated layers
    (without them every channel is active). ``latencies``: per layer, the cycles from a write
    into the FIFO in front of it to the first cycle the word can be read (index 0 unused);
    by default those of the FIFOs the network is built with (:func:`fifo_kinds`).
    """
    if latencies is None:
        latencies = [FIFO_LATENCY[k] for k in fifo_kinds(cfg)]
    h, w, _ = cfg.input_shape()
    pixels = h * w * cfg.steps  # input words per network frame
    avail = [0 if period is None else (j // pixels) * period for j in range(frames * pixels)]
    layers, fills, needs = [], [], None
    # Cycle 0 is the first input transfer, which waits for the first layer's start-up; the
    # other layers start up at the same time, after reset. With run-time weights the first
    # pixel also waits for the load: at one word per cycle from reset it comes at cycle
    # max(load words, first start-up) after reset, and the start-ups overlap the load.
    startups = [registry.get(layer.unit).startup(layer.config)
                if registry.get(layer.unit).startup else 0 for layer in cfg.resolved]
    origin = startups[0]
    if cfg.weights == "port":
        origin = max(origin, sum(entry["words"] for entry in load_plan(cfg)))
    for index, layer in enumerate(cfg.resolved):
        gates = inputs.get(f"{layer.name}.gates") if inputs is not None else None
        layer_inputs = layer.kind_adapter.timing_inputs(layer, frames * layer.in_steps, gates)
        take, out, layer_needs = layer.kind_adapter.timing(layer, avail, layer_inputs,
                                                           startups[index] - origin)
        fills.append(_fifo_depth(layers[-1][1], take) if index else 0)
        needs = list(layer_needs) if needs is None else [needs[j] for j in layer_needs]
        layers.append((take, out))
        if index + 1 < len(cfg.resolved):  # a FIFO write is readable 1 (2) cycles later
            avail = [t + latencies[index + 1] for t in out]
    return NetworkTiming(layers=layers, fifo_depths=fills, needs=needs)


def _gates_all(cfg, frames, on):
    """Inputs whose gates switch every channel of every gated layer on (or off)."""
    import numpy as np

    out = {}
    for layer in cfg.gated_layers:
        c = layer.config
        shape = (frames * layer.in_steps, c.out_height, c.out_width)
        if c.gating == "mask":
            out[f"{layer.name}.gates"] = np.full(shape + (c.c_out,), int(on), dtype=np.int64)
        else:
            out[f"{layer.name}.gates"] = np.full(shape, c.c_out if on else 0, dtype=np.int64)
    return out


#: Cycles from a FIFO write to the first cycle the word can be read, by FIFO kind.
FIFO_LATENCY = {None: 1, "plain": 1, "buffered": 2}


def fifo_kinds(cfg):
    """The kind of each inter-layer FIFO (None in front of the first layer): "plain"
    (``SyncFIFO``) or, for those that need :data:`BUFFERED_FIFO_DEPTH` words or more with
    plain FIFOs, "buffered" (``SyncFIFOBuffered``, block RAM)."""
    return list(golden.memo(cfg, "fifo_kinds", lambda: [None] + [
        "buffered" if d >= BUFFERED_FIFO_DEPTH else "plain"
        for d in _fifo_depths(cfg, [1] * len(cfg.resolved))[1:]]))


def fifo_depths(cfg):
    """The depth of each inter-layer FIFO (0: none, in front of the first layer).

    A FIFO between a fast layer and a slower one fills without end when the source runs
    ahead, so depths are taken where the network is meant to run: its input paced at the
    slowest layer's steady rate (the best frame rate it can sustain). Over three frames, with
    gated layers all on and all off, the largest fill of each FIFO is its depth (at least 2).
    Faster sources (an always-valid input) are then held back by back-pressure, which leaves
    the slowest layer always fed. A buffered FIFO (:func:`fifo_kinds`) is one word deeper than
    its largest fill: its output register holds a word that its memory no longer counts only
    once the word has moved there, a cycle after it could.
    """
    def depths():
        kinds = fifo_kinds(cfg)
        fills = _fifo_depths(cfg, [FIFO_LATENCY[k] for k in kinds])
        return [0] + [d + 1 if k == "buffered" else d for d, k in zip(fills[1:], kinds[1:])]
    return list(golden.memo(cfg, "fifo_depths", depths))


def _fifo_depths(cfg, latencies):
    period = max(steady_cycles(layer) for layer in cfg.resolved)
    scenarios = [None] + ([_gates_all(cfg, 3, False)] if cfg.gated_layers else [])
    depths = [0] * len(cfg.resolved)
    for inputs in scenarios:
        fills = network_timing(cfg, 3, inputs, period=period, latencies=latencies).fifo_depths
        depths = [max(d, f) for d, f in zip(depths, fills)]
    return [0] + [max(2, d) for d in depths[1:]]


def steady_cycles(layer):
    """Cycles per network frame of one layer alone in steady state (input always valid)."""
    unit = registry.get(layer.unit)
    return golden.memo(layer, "steady_cycles", lambda: (
        unit.cost_model(layer.config, layer.unit_frames(3)).expected
        - unit.cost_model(layer.config, layer.unit_frames(2)).expected))


def cost_model(cfg, frames=1, inputs=None):
    """Exact cycles of ``frames`` frames with no stalls: the composed layer timing.

    ``formula`` is FINN's whole-network estimate: the slowest layer's cycles per frame (FINN's
    max_cycles) times the frames. ``latency`` counts from the input transfer that completes the
    first output's inputs to that output.
    """
    if isinstance(frames, tuple):
        frames = frames[0]
    timing = network_timing(cfg, frames, inputs)
    first_input = timing.needs[0]
    slowest = max(steady_cycles(layer) for layer in cfg.resolved)
    return CycleEstimate(
        formula=slowest * frames, latency=timing.out[0] - timing.take[first_input],
        expected=timing.out[-1] + 1, first_input=first_input,
        notes=("composed from the layers' exact timing through the inter-layer FIFOs "
               "(docs/networks.md); formula: slowest layer's steady cycles per frame x frames"
               + ("; weights = 'port': counted from the first input pixel, which the network "
                  "takes only after the whole weight load (the load's "
                  f"{sum(e['words'] for e in load_plan(cfg))} words on wl come before; exact "
                  "when the load streams one word per cycle from reset)"
                  if cfg.weights == "port" else "")))


class Network(wiring.Component):
    """A chain of units with FIFOs between them.

    Parameters
    ----------
    cfg : NetworkConfig
    params : dict
        The network's weight mapping (``<layer>.<array>``; checked here).
    probes : bool
        Add a ``probe_<layer>`` output per layer that shows every transfer out of it (for
        locating a mismatch in simulation; the delivered design has none).
    depths : list of int, optional
        FIFO depths in front of each layer (0 for the first) instead of :func:`fifo_depths`'s
        (to measure what a depth does; the kinds stay :func:`fifo_kinds`'s).

    Members
    -------
    i : In(stream.Signature(C * E))
        Input pixels, row-major; channel c at bits [c*E, (c+1)*E).
    g_<layer> : In(stream.Signature(...))
        The gates of each gated layer, in that unit's gate format, one per output position.
    o : Out(stream.Signature(C_out * E_out))
        The last layer's output pixels.
    probe_<layer> : Out(Signature(valid, payload)), with ``probes`` only
        ``valid`` is high in the cycles in which the layer's output transfers ``payload``.
    wl : In(stream.Signature(load_bits(cfg))), with ``weights = 'port'`` only
        The weight-load words of every port-weight layer, layer after layer
        (:func:`qhw.golden.network.load_words`, :func:`load_plan`), each in the low bits.
    """

    def __init__(self, cfg, params, *, probes=False, depths=None):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        self.probes = probes
        self.fifo_depths = fifo_depths(cfg) if depths is None else list(depths)
        self.fifo_kinds = fifo_kinds(cfg)
        self.layer_units = []
        members = {"i": In(stream.Signature(_payload_bits(cfg.input_shape(), cfg.input_format)))}
        for layer in cfg.resolved:
            component = layer.kind_adapter.generator(
                layer, golden.layer_params(cfg, self.params, layer))
            self.layer_units.append(component)
            if layer.gated:
                members[f"g_{layer.name}"] = In(stream.Signature(component.g.payload.shape()))
            if probes:
                members[f"probe_{layer.name}"] = Out(wiring.Signature({
                    "valid": Out(1),
                    "payload": Out(_payload_bits(layer.out_shape, layer.out_format))}))
        last = cfg.resolved[-1]
        members["o"] = Out(stream.Signature(_payload_bits(last.out_shape, last.out_format)))
        if cfg.weights == "port":
            members["wl"] = In(stream.Signature(load_bits(cfg)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()

        def link(src, dst):
            m.d.comb += [dst.payload.eq(src.payload), dst.valid.eq(src.valid),
                         src.ready.eq(dst.ready)]

        source = wiring.flipped(self.i)
        if self.cfg.weights == "port":
            source = self._load_router(m)
        for layer, component, depth, kind in zip(self.cfg.resolved, self.layer_units,
                                                 self.fifo_depths, self.fifo_kinds):
            m.submodules[layer.name] = component
            if depth:
                width = _payload_bits(layer.in_shape, layer.in_format)
                queue_type = fifo.SyncFIFOBuffered if kind == "buffered" else fifo.SyncFIFO
                m.submodules[f"fifo_{layer.name}"] = queue = queue_type(width=width,
                                                                        depth=depth)
                link(source, queue.w_stream)
                source = queue.r_stream
            link(source, component.i)
            if layer.gated:
                link(wiring.flipped(getattr(self, f"g_{layer.name}")), component.g)
            if self.probes:
                probe = getattr(self, f"probe_{layer.name}")
                m.d.comb += [probe.valid.eq(component.o.valid & component.o.ready),
                             probe.payload.eq(component.o.payload)]
            source = component.o
        link(source, wiring.flipped(self.o))
        return m

    def _load_router(self, m):
        """The weight-load router and the input gate of a ``weights = 'port'`` network (see the
        module docstring); returns the gated input stream that feeds the first layer.

        Stream rules: every valid it drives is an incoming valid ANDed with a condition that,
        once the word is offered, holds until the word is taken (a map offered to the first
        layer stays offered: ``offered``; a load word passes while no map is in the network,
        and none can enter while a load word is offered), and payloads are passed through."""
        cfg = self.cfg
        plan = load_plan(cfg)
        units = {layer.name: unit for layer, unit in zip(cfg.resolved, self.layer_units)}
        wl = self.wl
        n = len(plan)

        # ---- the network's maps: counted in at the first pixel, out at the last output word --
        first = cfg.resolved[0]
        last = cfg.resolved[-1]
        pixels = first.in_shape[0] * first.in_shape[1]     # input words per map
        outputs = last.out_shape[0] * last.out_shape[1]    # output words per map
        # A map in the network holds at least one word somewhere (a FIFO, a layer's buffers or
        # pipeline), so this many never fit at once.
        bound = 1 + sum(self.fifo_depths) + sum(
            layer.in_shape[0] * layer.in_shape[1] + layer.out_shape[0] * layer.out_shape[1] + 32
            for layer in cfg.resolved)
        in_map = Signal(range(bound + 1), name="maps_in_flight")
        loaded = Signal(name="load_done")      # a whole load has arrived
        loading = Signal(name="load_busy")     # a load's first word is in, not yet its last
        offered = Signal(name="map_offered")   # a map's first pixel offered, not yet taken
        gated = stream.Signature(self.i.payload.shape()).create(path=("load_gate",))

        if pixels > 1:
            pixel = Signal(range(pixels), name="map_pixel")
            at_first = pixel == 0
        else:
            pixel, at_first = None, Const(1)
        allow = Signal(name="input_allowed")
        m.d.comb += [allow.eq(~at_first | offered | (loaded & ~wl.valid)),
                     gated.payload.eq(self.i.payload), gated.valid.eq(self.i.valid & allow),
                     self.i.ready.eq(gated.ready & allow)]
        taken = self.i.valid & self.i.ready
        m.d.sync += offered.eq(at_first & self.i.valid & allow & ~taken)
        if pixel is not None:
            with m.If(taken):
                m.d.sync += pixel.eq(Mux(pixel == pixels - 1, 0, pixel + 1))
        map_in = taken & at_first

        out_taken = self.o.valid & self.o.ready
        if outputs > 1:
            word = Signal(range(outputs), name="map_output")
            with m.If(out_taken):
                m.d.sync += word.eq(Mux(word == outputs - 1, 0, word + 1))
            map_out = out_taken & (word == outputs - 1)
        else:
            map_out = out_taken
        with m.If(map_in & ~map_out):
            m.d.sync += in_map.eq(in_map + 1)
        with m.Elif(map_out & ~map_in):
            m.d.sync += in_map.eq(in_map - 1)

        # ---- the router: a one-hot layer select and a counter of that layer's words -----------
        route = Signal(name="load_route")
        m.d.comb += route.eq(loading | ((in_map == 0) & ~offered))
        if n > 1:
            select = Signal(n, init=1, name="load_layer")
            selected = [select[k] for k in range(n)]
        else:
            select, selected = None, [Const(1)]
        most = max(entry["words"] for entry in plan)
        count = Signal(range(max(2, most)), name="load_word")
        ready = []
        for entry, sel in zip(plan, selected):
            port = units[entry["layer"]].wl
            m.d.comb += [port.payload.eq(wl.payload[:entry["bits"]]),
                         port.valid.eq(wl.valid & route & sel)]
            ready.append(sel & port.ready)
        m.d.comb += wl.ready.eq(route & Cat(*ready).any())
        layer_done = Cat(*[sel & (count == entry["words"] - 1)
                           for entry, sel in zip(plan, selected)]).any()
        load_done = selected[-1] & (count == plan[-1]["words"] - 1)
        with m.If(wl.valid & wl.ready):
            with m.If(layer_done):
                m.d.sync += count.eq(0)
                if select is not None:
                    m.d.sync += select.eq(select.rotate_left(1))
            with m.Else():
                m.d.sync += count.eq(count + 1)
            with m.If(load_done):
                m.d.sync += [loaded.eq(1), loading.eq(0)]
            with m.Else():
                m.d.sync += [loaded.eq(0), loading.eq(1)]
        return gated


class SequenceGru(wiring.Component):
    """A GRU layer inside a network: the unit with its reset and last flags made from a step
    counter over sequences of ``steps`` frames.

    Parameters
    ----------
    cfg : GruConfig
    params : dict
        The GRU's weights.
    steps : int
        Frames per sequence.

    Members
    -------
    i : In(stream.Signature(I * Bx))
        One input vector per step (element j at bits [j*Bx, (j+1)*Bx)).
    o : Out(stream.Signature(H * Bh))
        The GRU's output (every step's state, or each sequence's last).
    """

    def __init__(self, cfg, params, *, steps):
        from .gru import Gru
        self.gru = Gru(cfg, params)
        self.steps = steps
        self.vector_bits = cfg.input_size * cfg.fmt("input").total
        super().__init__({"i": In(stream.Signature(self.vector_bits)),
                          "o": Out(stream.Signature(self.gru.o.payload.shape()))})

    def elaborate(self, platform):
        from amaranth import Cat, Signal
        m = Module()
        m.submodules.gru = gru = self.gru
        step = Signal(range(max(2, self.steps)))
        m.d.comb += [gru.i.payload.eq(Cat(self.i.payload, step == 0, step == self.steps - 1)),
                     gru.i.valid.eq(self.i.valid), self.i.ready.eq(gru.i.ready)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += step.eq(Mux(step == self.steps - 1, 0, step + 1))
        wiring.connect(m, gru.o, wiring.flipped(self.o))
        return m


class DotDense(wiring.Component):
    """A dense layer of dot-product units inside a network (an expdot or fpdot layer):
    ``outputs`` units, one per output, fed the same folds of each input vector.

    The units are alike but for their weights, so with the same folds in and the same ready out
    their handshakes are equal in every cycle: the first unit's ``i.ready`` stands for all, and
    the first unit's ``o.valid`` for all outputs. (Both units take one fold per transfer and
    give one result per vector, with a latency that does not depend on the data.)

    Parameters
    ----------
    cfg : ExpDotConfig or FpDotConfig
        One output's dot product (``lanes`` = the input vector's length).
    params : dict
        ``weights``: (outputs, lanes), each row in the unit's weight format.
    outputs : int
    unit : str
        The registered dot-product unit: 'expdot' or 'fpdot'.

    Members
    -------
    i : In(stream.Signature(lanes * B))
        One vector per transfer, lane j at bits [j*B, (j+1)*B).
    o : Out(stream.Signature(outputs * out_bits))
        One result per output, output m at bits [m*O, (m+1)*O).
    """

    def __init__(self, cfg, params, *, outputs, unit="expdot"):
        self.cfg = cfg
        weights = params["weights"]
        generator = registry.get(unit).generator
        self.units = [generator(cfg, {"weights": weights[m]}) for m in range(outputs)]
        super().__init__({"i": In(stream.Signature(cfg.lanes * cfg.x_bits)),
                          "o": Out(stream.Signature(outputs * cfg.out_bits))})

    def elaborate(self, platform):
        from amaranth import Cat, Signal
        m = Module()
        cfg = self.cfg
        fold_bits = cfg.simd * cfg.x_bits
        for k, unit in enumerate(self.units):
            m.submodules[f"dot{k}"] = unit
        # The vector, rotated by a fold after each fold transfer (its current fold at the bottom).
        vector = Signal(cfg.lanes * cfg.x_bits, reset_less=True)
        full = Signal()
        fold = Signal(range(max(2, cfg.fold)))
        last = fold == cfg.fold - 1
        lead = self.units[0]
        taken = full & lead.i.ready
        m.d.comb += self.i.ready.eq(~full | (taken & last))
        for unit in self.units:
            m.d.comb += [unit.i.valid.eq(full), unit.i.payload.eq(vector[:fold_bits]),
                         unit.o.ready.eq(self.o.ready)]
        with m.If(taken):
            m.d.sync += [vector.eq(vector.rotate_right(fold_bits)), fold.eq(fold + 1)]
            with m.If(last):
                m.d.sync += [full.eq(0), fold.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [vector.eq(self.i.payload), full.eq(1), fold.eq(0)]
        m.d.comb += [self.o.valid.eq(lead.o.valid),
                     self.o.payload.eq(Cat(*[unit.o.payload for unit in self.units]))]
        return m


class ExpDotDense(DotDense):
    """An expdot layer inside a network (:class:`DotDense` of ``expdot`` units)."""

    def __init__(self, cfg, params, *, outputs):
        super().__init__(cfg, params, outputs=outputs, unit="expdot")
