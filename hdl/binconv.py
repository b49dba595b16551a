"""``binconv``: XNOR-popcount binary convolution unit.

Structure (data flows left to right, every arrow an ``amaranth.lib.stream``)::

    i (pixels) -> SlidingWindow -> windows -> XnorMatrixVector -> o (output pixels)

:class:`XnorMatrixVector` is FINN's matrix-vector unit in binary mode (../shared/REFERENCE.md, 1):
per window it runs (C_out/PE) neuron folds of (K/SIMD) synapse folds, one PE x SIMD slice per
clock. Each slice is XNORed with a weight-memory word and counted by PE pipelined compressor trees
(:mod:`qhw.hdl.popcount`); PE accumulators sum the partial counts over a neuron fold; the result
becomes the dot product 2P - K or, through the threshold memory, one bit per channel. Output
channels are collected into one output pixel per transfer, so a threshold-mode unit's output is
exactly the input format of the next layer.

Back-pressure: the datapath pipeline never stalls. A window is started only while fewer than
``fifo_depth`` output pixels are in flight or waiting in the output FIFO, so every result has a
place to go; the depth covers the pipeline, so with a ready consumer the credits never throttle.
"""

import math

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import binconv as golden
from ..registry import CycleEstimate
from .popcount import PopCount, tree_levels
from .window import SlidingWindow

__all__ = ["BinConv", "XnorMatrixVector", "output_layout", "cost_model", "finn_cycles",
           "pipeline_latency"]


def output_layout(cfg):
    """Payload of the output stream: C_out signed dot products, or C_out bits."""
    if cfg.output == "popcount":
        return data.ArrayLayout(signed(cfg.dot_bits), cfg.c_out)
    return unsigned(cfg.c_out)


def tree_latency(cfg):
    """Register stages of one PE's compressor tree (counter levels + final adder)."""
    return tree_levels(cfg.simd, cfg.counter) + 1


def pipeline_latency(cfg):
    """Cycles from a window's last issued slice to its output transfer.

    slice/weight registers (1) + tree + accumulator register (1) + output/FIFO write (1) + FIFO (1).
    """
    return 1 + tree_latency(cfg) + 1 + 1


def fifo_depth(cfg):
    """Output pixels that may be in flight: enough that a ready consumer never waits on credits."""
    fold = cfg.neuron_fold * cfg.synapse_fold
    return math.ceil((fold + pipeline_latency(cfg) + 2) / fold) + 1


class XnorMatrixVector(wiring.Component):
    """Folded XNOR-popcount matrix-vector unit with threshold or dot-product output.

    Parameters
    ----------
    cfg : BinConvConfig
    params : dict
        Checked weight-file arrays (see :func:`qhw.golden.binconv.check_params`).

    Members
    -------
    i : In(stream.Signature(K))
        Windows in window order.
    o : Out(stream.Signature(output_layout(cfg)))
        One output pixel per window.
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.weight_words = golden.weight_memory(cfg, params)
        self.threshold_words = (golden.threshold_memory(cfg, params)
                                if cfg.output == "threshold" else None)
        super().__init__({
            "i": In(stream.Signature(cfg.k)),
            "o": Out(stream.Signature(output_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        nf_count, sf_count, pe, simd = cfg.neuron_fold, cfg.synapse_fold, cfg.pe, cfg.simd
        depth = fifo_depth(cfg)
        out_bits = cfg.out_element_bits * cfg.c_out

        m.submodules.weights = wmem = memory.Memory(
            shape=pe * simd, depth=nf_count * sf_count, init=self.weight_words)
        w_rd = wmem.read_port()

        # ---- issue: one (neuron fold, synapse fold) slice per cycle while busy ----------------
        busy = Signal()
        nf = Signal(range(nf_count))
        sf = Signal(range(sf_count))
        window = Signal(cfg.k, reset_less=True)  # rotates by SIMD per slice: slice at bits [0, SIMD)
        pending = Signal(range(depth + 1))       # windows started whose output was not yet taken
        last_slice = busy & (nf == nf_count - 1) & (sf == sf_count - 1)
        start = Signal()
        m.d.comb += [
            start.eq(self.i.valid & (pending < depth) & (~busy | last_slice)),
            self.i.ready.eq(start),
            w_rd.addr.eq(nf * sf_count + sf),
        ]
        with m.If(start):
            m.d.sync += [busy.eq(1), nf.eq(0), sf.eq(0), window.eq(self.i.payload)]
        with m.Elif(busy):
            m.d.sync += window.eq(window.rotate_right(simd))
            with m.If(sf == sf_count - 1):
                m.d.sync += sf.eq(0)
                with m.If(nf == nf_count - 1):
                    m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += nf.eq(nf + 1)
            with m.Else():
                m.d.sync += sf.eq(sf + 1)

        # Control that travels with a slice: valid, first/last synapse fold, neuron fold.
        ctrl_layout = data.StructLayout({
            "valid": 1, "first": 1, "last": 1, "nf": range(nf_count)})
        ctrl = Signal(ctrl_layout)
        m.d.comb += [ctrl.valid.eq(busy), ctrl.first.eq(sf == 0),
                     ctrl.last.eq(sf == sf_count - 1), ctrl.nf.eq(nf)]

        def delay(value, cycles, name):
            for i in range(cycles):
                r = Signal.like(value, name=f"{name}_d{i + 1}")
                m.d.sync += r.eq(value)
                value = r
            return value

        # ---- slice register (weight memory data arrives in the same cycle) ---------------------
        x = Signal(simd, reset_less=True)
        m.d.sync += x.eq(window[:simd])
        ctrl_s1 = delay(ctrl, 1, "ctrl_s1")

        # ---- XNOR and compressor trees, one per PE ----------------------------------------------
        counts = []
        for p in range(pe):
            tree = PopCount(simd, cfg.counter)
            m.submodules[f"popcount{p}"] = tree
            m.d.comb += tree.bits.eq(~(x ^ w_rd.data[p * simd:(p + 1) * simd]))
            counts.append(tree.count)
        ctrl_acc = delay(ctrl_s1, tree_latency(cfg), "ctrl_acc")

        # ---- accumulate over the synapse folds of a neuron fold ----------------------------------
        acc = [Signal(cfg.popcount_bits, name=f"acc{p}", reset_less=True) for p in range(pe)]
        for p in range(pe):
            with m.If(ctrl_acc.valid):
                m.d.sync += acc[p].eq(Mux(ctrl_acc.first, 0, acc[p]) + counts[p])
        res = Signal(ctrl_layout)  # acc[] holds complete popcounts when res.valid
        m.d.sync += [res.eq(ctrl_acc), res.valid.eq(ctrl_acc.valid & ctrl_acc.last)]

        # ---- activation: dot product or threshold ------------------------------------------------
        if cfg.output == "popcount":
            lane = [Signal(signed(cfg.dot_bits), name=f"dot{p}") for p in range(pe)]
            for p in range(pe):
                m.d.comb += lane[p].eq((acc[p] << 1) - cfg.k)
        else:
            m.submodules.thresholds = tmem = memory.Memory(
                shape=pe * (cfg.threshold_bits + 1), depth=nf_count, init=self.threshold_words)
            t_rd = tmem.read_port()
            m.d.comb += t_rd.addr.eq(ctrl_acc.nf)  # read one cycle ahead of res
            lane = []
            for p in range(pe):
                entry = t_rd.data[p * (cfg.threshold_bits + 1):(p + 1) * (cfg.threshold_bits + 1)]
                bit = Signal(name=f"bit{p}")
                m.d.comb += bit.eq((acc[p] >= entry[:cfg.threshold_bits]) == entry[-1])
                lane.append(bit)
        group = Cat(*lane)
        group_bits = len(group)

        # ---- collect neuron folds into an output pixel, push it into the FIFO --------------------
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=out_bits, depth=depth)
        if nf_count == 1:
            m.d.comb += out_fifo.w_data.eq(group)
        else:
            collect = Signal((nf_count - 1) * group_bits, reset_less=True)
            with m.If(res.valid):
                m.d.sync += collect.word_select(res.nf, group_bits).eq(group)
            m.d.comb += out_fifo.w_data.eq(Cat(collect, group))
        m.d.comb += out_fifo.w_en.eq(res.valid & (res.nf == nf_count - 1))

        m.d.comb += [
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]
        taken = self.o.valid & self.o.ready
        with m.If(start & ~taken):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~start & taken):
            m.d.sync += pending.eq(pending - 1)
        return m


class BinConv(wiring.Component):
    """XNOR-popcount convolution over a streamed feature map.

    Parameters
    ----------
    cfg : BinConvConfig
    params : dict
        Weight-file arrays (checked here).

    Members
    -------
    i : In(stream.Signature(C_in))
        Input pixels in row-major order; bit c is channel c (1 -> +1, 0 -> -1).
    o : Out(stream.Signature(output_layout(cfg)))
        Output pixels in row-major order: C_out signed dot products 2P - K (element c at bits
        [c*B, (c+1)*B) with B = cfg.dot_bits), or C_out bits in threshold mode.
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        super().__init__({
            "i": In(stream.Signature(cfg.c_in)),
            "o": Out(stream.Signature(output_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.window = window = SlidingWindow(
            channels=cfg.c_in, element_bits=1, height=cfg.height, width=cfg.width,
            kernel=cfg.kernel, pads=cfg.pads, pad_element=cfg.pad_bit)
        m.submodules.mvu = mvu = XnorMatrixVector(cfg, self.params)
        wiring.connect(m, wiring.flipped(self.i), window.i)
        wiring.connect(m, window.o, mvu.i)
        wiring.connect(m, mvu.o, wiring.flipped(self.o))
        return m


def cost_model(cfg, frames=1):
    """Cycles for ``frames`` frames, input always valid and output always ready.

    The sliding window steps once per cycle over the extended (padded) grid and holds a finished
    window until the matrix-vector unit takes it; the unit takes a window every F = (C_out/PE) *
    (K/SIMD) cycles. So the run is compute-bound (F cycles per output pixel, FINN's formula) when
    F covers the steps between windows, and input-bound (one pixel per cycle) otherwise, as in
    'valid' rows where the first kw-1 pixels of each row make no window. The recurrence below
    follows the control exactly; the cosimulation checks it to the cycle.
    """
    top, bottom, left, right = cfg.pads
    kh, kw = cfg.kernel
    fold = cfg.neuron_fold * cfg.synapse_fold
    latency = pipeline_latency(cfg)
    t = -1                 # cycle of the last step (cycle 0: first input transfer)
    input_times = []       # cycle of each input transfer
    first_input = None     # index of the input transfer that completes the first window
    first_out = None
    prev_start = None      # cycle in which the unit took the previous window
    last_out = None
    for _ in range(frames):
        for y in range(cfg.height + bottom):
            for c in range(cfg.width + right):
                t += 1
                produces = y >= kh - 1 - top and c >= kw - 1 - left
                if produces and prev_start is not None:
                    # The window register must be free: the previous window taken by now.
                    t = max(t, prev_start)
                if y < cfg.height and c < cfg.width:
                    input_times.append(t)
                if produces:
                    if first_input is None:
                        first_input = len(input_times) - 1
                    ready = t + 1
                    start = ready if prev_start is None else max(ready, prev_start + fold)
                    out = start + fold + latency
                    last_out = out if last_out is None else max(out, last_out + 1)
                    if first_out is None:
                        first_out = last_out
                    prev_start = start
    expected = last_out + 1
    formula = finn_cycles(cfg, frames)
    first_latency = first_out - input_times[first_input]
    notes = (f"F = {fold} cycles per output pixel; latency = 1 (window register) + F + "
             f"{latency} (pipeline); {_fill_note(cfg)}")
    return CycleEstimate(formula=formula, latency=first_latency, expected=expected,
                         first_input=first_input, notes=notes)


def finn_cycles(cfg, frames=1):
    """FINN's (C_out/PE)*(K/SIMD)*H_out*W_out per frame (../shared/REFERENCE.md, 1)."""
    return cfg.neuron_fold * cfg.synapse_fold * cfg.out_height * cfg.out_width * frames


def _fill_note(cfg):
    top, _, left, _ = cfg.pads
    kh, kw = cfg.kernel
    rows = max(0, kh - 1 - top)
    return f"the first window needs {rows} row(s) + {max(1, kw - left)} pixel(s) of input"
