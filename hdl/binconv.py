"""``binconv``: XNOR-popcount binary convolution unit.

Structure (data flows left to right, every arrow an ``amaranth.lib.stream``)::

    i (pixels) -> SlidingWindow -> windows -> FoldedMatrixVector(XnorPopcountLanes) -> o

:class:`~qhw.hdl.mvu.FoldedMatrixVector` with :class:`XnorPopcountLanes` is FINN's matrix-vector
unit in binary mode (FINN: Umuroglu et al., FPGA 2017, arXiv 1612.07119; FINN-R, arXiv 1809.04570):
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

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import binconv as golden
from . import mvu
from .popcount import PopCount, tree_levels
from .window import SlidingWindow, startup_cycles

__all__ = ["BinConv", "XnorPopcountLanes", "output_layout", "cost_model", "finn_cycles",
           "pipeline_latency", "timing", "startup"]


def output_layout(cfg):
    """Payload of the output stream: C_out signed dot products, or C_out bits."""
    if cfg.output == "popcount":
        return data.ArrayLayout(signed(cfg.dot_bits), cfg.c_out)
    return unsigned(cfg.c_out)


def tree_latency(cfg):
    """Register stages of one PE's compressor tree (counter levels + final adder)."""
    return tree_levels(cfg.simd, cfg.counter) + 1


def pipeline_latency(cfg):
    """Cycles from a window's last issued slice to its output transfer."""
    return mvu.pipeline_latency(tree_latency(cfg))


def fifo_depth(cfg):
    return mvu.fifo_depth(cfg.neuron_fold * cfg.synapse_fold, tree_latency(cfg))


class XnorPopcountLanes:
    """Lane arithmetic of ``binconv`` for :class:`~qhw.hdl.mvu.FoldedMatrixVector`.

    A slice's partial sum is popcount(XNOR(x, w)) from a pipelined compressor tree; the
    accumulator holds P in [0, K] (bit_length(K) bits, so it cannot overflow); the activation is
    2P - K, or ``(P >= T) == ge`` with the popcount-domain threshold T and direction bit ge from
    the auxiliary (threshold) memory.
    """

    input_bits = 1
    weight_bits = 1

    def __init__(self, cfg):
        self.cfg = cfg
        self.acc_shape = unsigned(cfg.popcount_bits)
        self.aux_bits = cfg.threshold_bits + 1 if cfg.output == "threshold" else 0
        self.out_bits = cfg.out_element_bits

    def partial(self, m, x, w, name):
        tree = PopCount(self.cfg.simd, self.cfg.counter)
        m.submodules[f"{name}_popcount"] = tree
        m.d.comb += tree.bits.eq(~(x ^ w))
        return tree.count, tree.latency

    def finish(self, m, acc, aux):
        cfg = self.cfg
        if cfg.output == "popcount":
            dot = Signal(signed(cfg.dot_bits))
            m.d.comb += dot.eq((acc << 1) - cfg.k)
            return dot
        return (acc >= aux[:cfg.threshold_bits]) == aux[-1]


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
    wl : In(stream.Signature(load_bits))
        With ``weights = 'port'``: the weight-load words (:func:`qhw.golden.binconv.load_words`).
    """

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        members = {
            "i": In(stream.Signature(cfg.c_in)),
            "o": Out(stream.Signature(output_layout(cfg))),
        }
        if cfg.weights == "port":
            members["wl"] = In(stream.Signature(mvu.load_bits(XnorPopcountLanes(cfg), cfg.pe,
                                                              cfg.simd)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.window = window = SlidingWindow(
            channels=cfg.c_in, element_bits=1, height=cfg.height, width=cfg.width,
            kernel=cfg.kernel, pads=cfg.pads, pad_element=cfg.pad_bit)
        m.submodules.mvu = mvu_ = mvu.FoldedMatrixVector(
            lanes=XnorPopcountLanes(cfg), k=cfg.k, c_out=cfg.c_out, pe=cfg.pe, simd=cfg.simd,
            weight_words=golden.weight_memory(cfg, self.params),
            aux_words=(golden.threshold_memory(cfg, self.params)
                       if cfg.output == "threshold" else None),
            load=cfg.weights == "port")
        wiring.connect(m, wiring.flipped(self.i), window.i)
        if cfg.weights == "port":
            wiring.connect(m, wiring.flipped(self.wl), mvu_.wl)
        wiring.connect(m, window.o, mvu_.i)
        m.d.comb += [self.o.payload.eq(mvu_.o.payload), self.o.valid.eq(mvu_.o.valid),
                     mvu_.o.ready.eq(self.o.ready)]
        return m


def cost_model(cfg, frames=1, inputs=None):
    """Cycles for ``frames`` frames, input always valid and output always ready.

    See :func:`qhw.hdl.mvu.conv_cycles`: compute-bound (FINN's formula) when F = (C_out/PE) *
    (K/SIMD) covers the window generator's grid steps between windows, input-bound (one pixel
    per cycle) otherwise.
    """
    fold = cfg.neuron_fold * cfg.synapse_fold
    return mvu.conv_cycles(cfg, frames, lambda window: fold, tree_latency(cfg),
                           formula=finn_cycles(cfg, frames))


def startup(cfg):
    """Cycles after reset before the first input pixel can be taken (the window's pad fill)."""
    return startup_cycles(cfg.width, cfg.kernel, cfg.pads)


def timing(cfg, avail, inputs=None, start=0):
    """Input and output transfer times for input pixels available at ``avail`` (output always
    ready): :func:`qhw.hdl.mvu.conv_timing`."""
    fold = cfg.neuron_fold * cfg.synapse_fold
    return mvu.conv_timing(cfg, avail, lambda window: fold, tree_latency(cfg), start)


def finn_cycles(cfg, frames=1):
    """FINN's (C_out/PE)*(K/SIMD)*H_out*W_out per frame (FINN: Umuroglu et al., FPGA 2017, arXiv 1612.07119; FINN-R, arXiv 1809.04570)."""
    return cfg.neuron_fold * cfg.synapse_fold * cfg.out_height * cfg.out_width * frames
