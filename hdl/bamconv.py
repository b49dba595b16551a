"""``bamconv`` (binary activations, k-bit weights, channel gating) and ``macconv`` (its int MAC
baseline): convolution units on the shared window generator and folded matrix-vector unit.

Structure::

    i (pixels) -> SlidingWindow -> windows -> FoldedMatrixVector(lanes) -> o (output pixels)
                                       g (gates, bamconv with gating) -^

``BamLanes``: a product of a bit and a weight is the weight or 0, so a slice's partial sum is a
masked adder tree (a multiplexer per lane, no multiplier). ``MacLanes``: a registered signed
multiplier per lane, then the same adder tree. Accumulator, bias and threshold widths come from
:mod:`qhw.golden.bamconv` (acc_range), so nothing can overflow.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import bamconv as golden
from . import mvu
from .addertree import adder_tree
from .window import SlidingWindow, startup_cycles

__all__ = ["BamConv", "MacConv", "BamLanes", "MacLanes", "cost_model", "partial_latency", "timing", "startup"]


class _SumLanes:
    """Shared accumulator and activation of ``bamconv`` and ``macconv`` lanes."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.input_bits = cfg.act_bits
        self.weight_bits = cfg.weight_bits
        self.acc_shape = signed(golden.acc_bits(cfg))
        if cfg.output == "sum":
            self.aux_bits = golden.acc_bits(cfg)  # the bias
        elif cfg.output == "requant":
            self.aux_bits = golden.acc_bits(cfg) + cfg.mult_bits  # the bias, the multiplier
        else:
            self.aux_bits = golden.threshold_bits(cfg) + 1  # T on the accumulator, then ge
        self.out_bits = golden.out_element_bits(cfg)

    def _terms(self, x, w):
        cfg = self.cfg
        for s in range(cfg.simd):
            xs = x[s * cfg.act_bits:(s + 1) * cfg.act_bits]
            ws = w[s * cfg.weight_bits:(s + 1) * cfg.weight_bits].as_signed()
            yield xs, ws

    def finish(self, m, acc, aux):
        cfg = self.cfg
        if cfg.output in ("sum", "requant"):
            a = golden.acc_bits(cfg)
            s = Signal(signed(golden.sum_bits(cfg)))
            m.d.comb += s.eq(acc + aux[:a].as_signed())
            if cfg.output == "sum":
                return s
            # requant (qhw.golden.requant): round half up, arithmetic shift, saturate to codes
            product = Signal(signed(golden.requant_product_bits(cfg)))
            rounding = (1 << (cfg.shift - 1)) if cfg.shift else 0
            m.d.comb += product.eq(s * aux[a:a + cfg.mult_bits] + rounding)
            shifted = Signal.like(product)
            m.d.comb += shifted.eq(product >> cfg.shift)
            hi = (1 << cfg.out_bits) - 1
            code = Signal(cfg.out_bits)
            m.d.comb += code.eq(Mux(shifted < 0, 0, Mux(shifted > hi, hi, shifted)))
            return code
        tbits = golden.threshold_bits(cfg)
        return (acc >= aux[:tbits].as_signed()) == aux[tbits]


class BamLanes(_SumLanes):
    """Binary activations: each lane adds its weight when its activation bit is 1."""

    def partial(self, m, x, w, name):
        terms = [Mux(xs, ws, 0) for xs, ws in self._terms(x, w)]
        return adder_tree(m, terms, name)


class MacLanes(_SumLanes):
    """Conventional signed multiply-accumulate: a registered product per lane, then a tree."""

    def partial(self, m, x, w, name):
        products = []
        for s, (xs, ws) in enumerate(self._terms(x, w)):
            product = Signal(signed(self.cfg.act_bits + self.cfg.weight_bits),
                             name=f"{name}_product{s}", reset_less=True)
            # Unsigned a-bit codes times signed w-bit weights also fit a + w signed bits:
            # |x * w| <= (2**a - 1) * 2**(w-1) < 2**(a+w-1).
            m.d.sync += product.eq((xs.as_signed() if self.cfg.act_signed else xs) * ws)
            products.append(product)
        total, latency = adder_tree(m, products, name)
        return total, latency + 1


def partial_latency(cfg):
    """Adder-tree levels (plus the product register of macconv)."""
    levels = (cfg.simd - 1).bit_length()
    return levels + (1 if isinstance(cfg, golden.MacConvConfig) else 0)


class _SumConv(wiring.Component):
    """A convolution of a sliding-window generator and a folded matrix-vector unit.

    Members
    -------
    i : In(stream.Signature(C_in * act_bits))
        Input pixels, row-major; channel c at bits [c*A, (c+1)*A).
    g : In(stream.Signature(C_out or range(C_out + 1)))
        Gates, one per output position, row-major (bamconv with gating only).
    o : Out(stream.Signature(C_out * out_bits))
        Output pixels, row-major; channel c at bits [c*B, (c+1)*B): signed sums, or bits.
    wl : In(stream.Signature(load_bits))
        With ``weights = 'port'``: the weight-load words (:func:`qhw.golden.bamconv.load_words`).
    """

    lanes_class = None

    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = golden.check_params(cfg, params)
        members = {"i": In(stream.Signature(cfg.c_in * cfg.act_bits)),
                   "o": Out(stream.Signature(cfg.c_out * golden.out_element_bits(cfg)))}
        if cfg.gating == "mask":
            members["g"] = In(stream.Signature(cfg.c_out))
        elif cfg.gating == "count":
            members["g"] = In(stream.Signature(range(cfg.c_out + 1)))
        if cfg.weights == "port":
            members["wl"] = In(stream.Signature(mvu.load_bits(self.lanes_class(cfg), cfg.pe,
                                                              cfg.simd)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.window = window = SlidingWindow(
            channels=cfg.c_in, element_bits=cfg.act_bits, height=cfg.height, width=cfg.width,
            kernel=cfg.kernel, pads=cfg.pads, pad_element=0)
        m.submodules.mvu = unit = mvu.FoldedMatrixVector(
            lanes=self.lanes_class(cfg), k=cfg.k, c_out=cfg.c_out, pe=cfg.pe, simd=cfg.simd,
            weight_words=golden.weight_memory(cfg, self.params),
            aux_words=golden.aux_memory(cfg, self.params),
            gate=None if cfg.gating == "none" else cfg.gating, load=cfg.weights == "port")
        wiring.connect(m, wiring.flipped(self.i), window.i)
        wiring.connect(m, window.o, unit.i)
        wiring.connect(m, unit.o, wiring.flipped(self.o))
        if cfg.gating != "none":
            wiring.connect(m, wiring.flipped(self.g), unit.g)
        if cfg.weights == "port":
            wiring.connect(m, wiring.flipped(self.wl), unit.wl)
        return m


class BamConv(_SumConv):
    """Binary-activation convolution with signed k-bit weights and optional channel gating."""
    lanes_class = BamLanes


class MacConv(_SumConv):
    """Conventional signed multiply-accumulate convolution (the area baseline)."""
    lanes_class = MacLanes


def _folds(cfg, inputs):
    """Cycles per window: (active neuron folds) x K/SIMD, at least 1, from the gates in
    ``inputs``; None when every window takes the full (C_out/PE) x (K/SIMD)."""
    if cfg.gating == "none" or inputs is None:
        return None
    mask = golden.channel_mask(cfg, golden.check_inputs(cfg, inputs))
    groups = mask.reshape(-1, cfg.neuron_fold, cfg.pe).any(axis=2).sum(axis=1)
    return [max(1, int(g) * cfg.synapse_fold) for g in groups]


def cost_model(cfg, frames=1, inputs=None):
    """Exact cycles with no stalls (:func:`qhw.hdl.mvu.conv_cycles`).

    With gating, a window costs (active neuron folds) x (K/SIMD) cycles, at least 1; the gates
    come from ``inputs`` (without them every channel counts as active: the upper bound).
    """
    folds = _folds(cfg, inputs)
    full = cfg.neuron_fold * cfg.synapse_fold
    formula = (sum(folds) if folds is not None
               else full * cfg.out_height * cfg.out_width * frames)
    return mvu.conv_cycles(cfg, frames, (lambda w: folds[w]) if folds else (lambda w: full),
                           partial_latency(cfg), formula=formula)


def startup(cfg):
    """Cycles after reset before the first input pixel can be taken (the window's pad fill)."""
    return startup_cycles(cfg.width, cfg.kernel, cfg.pads)


def timing(cfg, avail, inputs=None, start=0):
    """Input and output transfer times for input pixels available at ``avail`` (output always
    ready, gates always valid): :func:`qhw.hdl.mvu.conv_timing`."""
    folds = _folds(cfg, inputs)
    full = cfg.neuron_fold * cfg.synapse_fold
    return mvu.conv_timing(cfg, avail, (lambda w: folds[w]) if folds else (lambda w: full),
                           partial_latency(cfg), start)
