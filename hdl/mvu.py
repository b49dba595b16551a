"""Folded matrix-vector unit: the control shared by every convolution unit.

FINN's MVAU (FINN: Umuroglu et al., FPGA 2017, arXiv 1612.07119; FINN-R, arXiv 1809.04570): for each input vector (a window of K elements), C_out/PE
neuron folds of K/SIMD synapse folds, one PE x SIMD slice per clock. The arithmetic of a slice,
of the accumulator and of the activation comes from a *lane arithmetic* object, so that the XNOR
popcount of ``binconv``, the masked adder tree of ``bamconv`` and the multiply-accumulate of
``macconv`` share one control, one memory layout and one back-pressure scheme.

Lane arithmetic interface (an object with these members):

``input_bits``, ``weight_bits``
    Bits per input element and per weight.
``partial(m, x, w, name) -> (value, latency)``
    Adds ``m``'s logic for one PE (submodules named after ``name``): ``x`` is SIMD input
    elements, ``w`` SIMD weights (both registered); returns the partial sum over the slice and
    how many cycles later it is valid.
``acc_shape``
    Shape of the accumulator over K/SIMD slices; it must hold every reachable sum.
``aux_bits``
    Bits per PE lane of the per-neuron-fold auxiliary memory (thresholds, biases), or 0.
``finish(m, acc, aux) -> value``
    Combinational activation of one finished accumulator (``aux`` is that lane's auxiliary word,
    or None); its width is ``out_bits``.
``out_bits``
    Bits of one output element.

Dynamic channel gating (``gate="mask"`` or ``"count"``): a gate stream ``g`` carries, with every
input vector, a C_out-bit mask (or an active-channel count n, meaning the first n channels, as in
slimming by a utilisation factor). Neuron folds whose PE channels are all off are skipped: no
cycles, no weight reads. Channels that are off output 0. A vector with no active channel costs a
single cycle and reads no weights.

Back-pressure: the datapath never stalls. A vector is started only while fewer vectors are in
flight than the output FIFO holds, so every result has a place to go.
"""

import math

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..registry import CycleEstimate

__all__ = ["FoldedMatrixVector", "pipeline_latency", "fifo_depth", "conv_timing", "conv_cycles",
           "load_bits"]


def load_bits(lanes, pe, simd):
    """Width of a weight-load word: a weight word or an auxiliary word, whichever is wider."""
    return max(pe * simd * lanes.weight_bits, pe * lanes.aux_bits)


def load_stream(lanes, cfg):
    """The manifest entry of the weight-load stream ``wl`` of a conv config (``weights =
    'port'``)."""
    weights, aux = cfg.neuron_fold * cfg.synapse_fold, cfg.neuron_fold if lanes.aux_bits else 0
    return {"direction": "in", "payload_bits": load_bits(lanes, cfg.pe, cfg.simd),
            "words": weights + aux, "weight_words": weights,
            "weight_word_bits": cfg.pe * cfg.simd * lanes.weight_bits, "aux_words": aux,
            "aux_word_bits": cfg.pe * lanes.aux_bits if aux else 0,
            "layout": f"{weights} weight-memory words ({cfg.pe * cfg.simd * lanes.weight_bits} "
                      f"bits, address order), then {aux} auxiliary words ({cfg.pe * lanes.aux_bits}"
                      f" bits); each in the low bits; no window is computed until all "
                      f"{weights + aux} have arrived; a new load is taken between vectors"}


def pipeline_latency(partial_latency):
    """Cycles from a vector's last slice to its output transfer.

    slice registers (1) + partial sum + accumulator register (1) + FIFO (1; the finished vector
    is written in the cycle after the accumulator register and readable in the next).
    """
    return 1 + partial_latency + 1 + 1


def fifo_depth(min_fold, partial_latency):
    """Output vectors that may be in flight: enough that a ready consumer never waits on credits.

    ``min_fold`` is the fewest cycles a vector can take (1 with gating).
    """
    return math.ceil((min_fold + pipeline_latency(partial_latency) + 2) / min_fold) + 1


def _lowest_set(m, bits, name):
    """Index of the lowest set bit of ``bits`` (0 when none is set)."""
    index = Signal(range(max(2, len(bits))), name=name)
    for i in reversed(range(len(bits))):
        with m.If(bits[i]):
            m.d.comb += index.eq(i)
    return index


class FoldedMatrixVector(wiring.Component):
    """Folded matrix-vector unit with pluggable lane arithmetic and optional channel gating.

    Parameters
    ----------
    lanes : lane arithmetic
        See the module docstring.
    k, c_out, pe, simd : int
        Vector length, output channels, output channels in parallel, elements per slice.
    weight_words : list of int
        Weight memory: word ``nf*(K/SIMD) + sf`` holds, at bits ``(p*SIMD + s)*weight_bits``, the
        weight of channel ``nf*PE + p`` for vector element ``sf*SIMD + s``.
    aux_words : list of int or None
        Auxiliary memory, one word per neuron fold, ``aux_bits`` per PE lane.
    gate : None, 'mask' or 'count'
        Dynamic channel gating (see the module docstring).
    load : bool
        Run-time weights: the memories start empty and the ``wl`` stream writes them, every
        weight word then every auxiliary word in address order (:attr:`load_bits` wide). A load
        word is taken only while no vector is in flight, and a vector starts only after a whole
        load (and not in a cycle offering a load word), so a computation never sees a half
        written memory.

    Members
    -------
    i : In(stream.Signature(K * input_bits))
        Input vectors (windows).
    g : In(stream.Signature(C_out or range(C_out + 1)))
        Gates, one per input vector; only with ``gate``.
    wl : In(stream.Signature(load_bits))
        Weight-load words; only with ``load``.
    o : Out(stream.Signature(C_out * out_bits))
        One output vector per input vector; channel c at bits [c*out_bits, (c+1)*out_bits).
    """

    def __init__(self, *, lanes, k, c_out, pe, simd, weight_words, aux_words=None, gate=None,
                 load=False):
        assert c_out % pe == 0 and k % simd == 0
        assert gate in (None, "mask", "count")
        self.lanes = lanes
        self.k, self.c_out, self.pe, self.simd = k, c_out, pe, simd
        self.weight_words = weight_words
        self.aux_words = aux_words
        self.gate = gate
        self.load = load
        self.load_bits = load_bits(lanes, pe, simd)
        members = {
            "i": In(stream.Signature(k * lanes.input_bits)),
            "o": Out(stream.Signature(c_out * lanes.out_bits)),
        }
        if load:
            members["wl"] = In(stream.Signature(self.load_bits))
        if gate == "mask":
            members["g"] = In(stream.Signature(c_out))
        elif gate == "count":
            members["g"] = In(stream.Signature(range(c_out + 1)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        nf_count, sf_count = self.c_out // self.pe, self.k // self.simd
        pe, simd, c_out = self.pe, self.simd, self.c_out
        in_bits, w_bits = lanes.input_bits, lanes.weight_bits
        gated = self.gate is not None

        load = self.load
        m.submodules.weights = wmem = memory.Memory(
            shape=pe * simd * w_bits, depth=nf_count * sf_count,
            init=[] if load else self.weight_words)
        w_rd = wmem.read_port()

        # ---- gates ------------------------------------------------------------------------------
        if gated:
            channel_mask = Signal(c_out)
            if self.gate == "mask":
                m.d.comb += channel_mask.eq(self.g.payload)
            else:  # the first n channels: a thermometer code of the count
                m.d.comb += channel_mask.eq(Cat(*[self.g.payload > c for c in range(c_out)]))
            group_active = Cat(*[channel_mask[g * pe:(g + 1) * pe].any() for g in range(nf_count)])
            inputs_valid = self.i.valid & self.g.valid
        else:
            inputs_valid = self.i.valid

        # ---- issue: one slice per cycle while busy -------------------------------------------------
        busy = Signal()
        sf = Signal(range(sf_count))
        window = Signal(self.k * in_bits, reset_less=True)  # rotates: the slice is at the bottom
        start = Signal()
        last_slice = Signal()
        ctrl_layout = data.StructLayout({
            "valid": 1, "first": 1, "last": 1, "last_group": 1, "null": 1, "nf": range(nf_count)})
        ctrl = Signal(ctrl_layout)

        if gated:
            remaining = Signal(nf_count)  # neuron folds still to do for this vector, current lowest
            null = Signal()               # this vector has no active channel
            nf = _lowest_set(m, remaining, "nf")
            rest = Signal(nf_count)
            m.d.comb += rest.eq(remaining & (remaining - 1))
            group_done = Signal()
            m.d.comb += [
                group_done.eq(null | (sf == sf_count - 1)),
                last_slice.eq(busy & group_done & (rest == 0)),
            ]
            # Weight address nf*SF + sf, with nf*SF from a table (no multiplier).
            # One entry per value of nf's bits (those past the last group are never read): a
            # complete case, the same logic as the default 0 of a shorter Array.
            base = Array(Const(g * sf_count if g < nf_count else 0, range(nf_count * sf_count))
                         for g in range(1 << len(nf)))
            m.d.comb += [w_rd.addr.eq(base[nf] + sf), w_rd.en.eq(busy & ~null)]
            with m.If(start):
                m.d.sync += [busy.eq(1), sf.eq(0), remaining.eq(group_active),
                             null.eq(group_active == 0), window.eq(self.i.payload)]
            with m.Elif(busy):
                m.d.sync += window.eq(window.rotate_right(simd * in_bits))
                with m.If(group_done):
                    m.d.sync += [sf.eq(0), remaining.eq(rest)]
                    with m.If(rest == 0):
                        m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += sf.eq(sf + 1)
            m.d.comb += [ctrl.null.eq(null), ctrl.last.eq(group_done),
                         ctrl.last_group.eq(rest == 0)]
        else:
            nf = Signal(range(nf_count))
            m.d.comb += last_slice.eq(busy & (nf == nf_count - 1) & (sf == sf_count - 1))
            # Slices are issued in weight-memory order: the address is a counter.
            w_addr = Signal(range(nf_count * sf_count))
            m.d.comb += w_rd.addr.eq(w_addr)
            with m.If(start):
                m.d.sync += [busy.eq(1), nf.eq(0), sf.eq(0), w_addr.eq(0),
                             window.eq(self.i.payload)]
            with m.Elif(busy):
                m.d.sync += [window.eq(window.rotate_right(simd * in_bits)),
                             w_addr.eq(w_addr + 1)]
                with m.If(sf == sf_count - 1):
                    m.d.sync += sf.eq(0)
                    with m.If(nf == nf_count - 1):
                        m.d.sync += busy.eq(0)
                    with m.Else():
                        m.d.sync += nf.eq(nf + 1)
                with m.Else():
                    m.d.sync += sf.eq(sf + 1)
            m.d.comb += [ctrl.last.eq(sf == sf_count - 1), ctrl.last_group.eq(nf == nf_count - 1)]
        m.d.comb += [ctrl.valid.eq(busy), ctrl.first.eq(sf == 0), ctrl.nf.eq(nf)]

        def delay(value, cycles, name):
            for i in range(cycles):
                r = Signal.like(value, name=f"{name}_d{i + 1}")
                m.d.sync += r.eq(value)
                value = r
            return value

        # ---- slice register (the weight word arrives in the same cycle) ---------------------------
        x = Signal(simd * in_bits, reset_less=True)
        m.d.sync += x.eq(window[:simd * in_bits])
        ctrl_s1 = delay(ctrl, 1, "ctrl_s1")

        partials = []
        for p in range(pe):
            value, partial_latency = lanes.partial(
                m, x, w_rd.data[p * simd * w_bits:(p + 1) * simd * w_bits], name=f"pe{p}")
            partials.append(value)
        ctrl_acc = delay(ctrl_s1, partial_latency, "ctrl_acc")

        # ---- accumulate over the synapse folds of a neuron fold -----------------------------------
        acc = [Signal(lanes.acc_shape, name=f"acc{p}", reset_less=True) for p in range(pe)]
        for p in range(pe):
            with m.If(ctrl_acc.valid):
                m.d.sync += acc[p].eq(Mux(ctrl_acc.first, 0, acc[p]) + partials[p])
        res = Signal(ctrl_layout)  # acc[] complete when res.valid
        m.d.sync += [res.eq(ctrl_acc), res.valid.eq(ctrl_acc.valid & ctrl_acc.last)]

        # ---- activation ---------------------------------------------------------------------------
        aux = [None] * pe
        if lanes.aux_bits:
            m.submodules.aux = amem = memory.Memory(
                shape=pe * lanes.aux_bits, depth=nf_count, init=[] if load else self.aux_words)
            a_rd = amem.read_port()
            m.d.comb += a_rd.addr.eq(ctrl_acc.nf)  # one cycle ahead of res
            aux = [a_rd.data[p * lanes.aux_bits:(p + 1) * lanes.aux_bits] for p in range(pe)]
        group = Cat(*[lanes.finish(m, acc[p], aux[p]) for p in range(pe)])
        group_bits = pe * lanes.out_bits
        assert len(group) == group_bits

        # ---- collect neuron folds into an output vector, push it into the FIFO --------------------
        depth = fifo_depth(1 if gated else nf_count * sf_count, partial_latency)
        self.fifo_depth = depth
        self.partial_latency = partial_latency
        out_bits = c_out * lanes.out_bits
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=out_bits, depth=depth)
        if nf_count == 1:
            merged = group
        else:
            # Groups before the last wait here; the vector is pushed with its last group (the
            # highest neuron fold issued, which is the last one unless gating skipped the rest).
            collect = [Signal(group_bits, name=f"collect{g}", reset_less=True)
                       for g in range(nf_count - 1)]
            for g in range(nf_count - 1):
                with m.If(res.valid & (res.nf == g)):
                    m.d.sync += collect[g].eq(group)
            merged = Cat(*[Mux(res.nf == g, group, collect[g]) for g in range(nf_count - 1)],
                         group)
        push = res.valid & res.last_group
        m.d.comb += out_fifo.w_en.eq(push)
        if gated:
            # Channel masks wait in order beside the vectors in flight (never more than `depth`).
            m.submodules.mask_fifo = mask_fifo = fifo.SyncFIFO(width=c_out, depth=depth)
            m.d.comb += [mask_fifo.w_data.eq(channel_mask), mask_fifo.w_en.eq(start),
                         mask_fifo.r_en.eq(push)]
            n = lanes.out_bits
            m.d.comb += out_fifo.w_data.eq(Cat(*[
                Mux(mask_fifo.r_data[c], merged[c * n:(c + 1) * n], 0) for c in range(c_out)]))
        else:
            m.d.comb += out_fifo.w_data.eq(merged)

        # ---- credits ------------------------------------------------------------------------------
        pending = Signal(range(depth + 1))  # vectors started whose output was not yet taken
        can_start = Signal()
        if load:
            # ---- run-time weights: the load stream writes the memories between vectors -----
            n_weights = nf_count * sf_count
            n_words = n_weights + (nf_count if lanes.aux_bits else 0)
            loaded = Signal()
            word = Signal(range(n_words), name="load_word")
            taking = Signal()
            m.d.comb += [self.wl.ready.eq(~busy & (pending == 0)),
                         taking.eq(self.wl.valid & self.wl.ready)]
            w_wr = wmem.write_port()
            m.d.comb += [w_wr.addr.eq(word), w_wr.data.eq(self.wl.payload),
                         w_wr.en.eq(taking & (word < n_weights))]
            if lanes.aux_bits:
                a_wr = amem.write_port()
                m.d.comb += [a_wr.addr.eq(word - n_weights), a_wr.data.eq(self.wl.payload),
                             a_wr.en.eq(taking & (word >= n_weights))]
            with m.If(taking):
                with m.If(word == n_words - 1):
                    m.d.sync += [word.eq(0), loaded.eq(1)]
                with m.Else():
                    m.d.sync += [word.eq(word + 1), loaded.eq(0)]
            m.d.comb += can_start.eq(loaded & ~self.wl.valid)
        else:
            m.d.comb += can_start.eq(1)
        m.d.comb += [
            start.eq(inputs_valid & can_start & (pending < depth) & (~busy | last_slice)),
            self.i.ready.eq(start),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]
        if gated:
            m.d.comb += self.g.ready.eq(start)
        taken = self.o.valid & self.o.ready
        with m.If(start & ~taken):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~start & taken):
            m.d.sync += pending.eq(pending - 1)
        return m


def conv_timing(cfg, avail, fold_of, partial_latency, start=0):
    """Exact transfer times of SlidingWindow + FoldedMatrixVector for given input arrival times.

    ``avail[j]`` is the first cycle in which input pixel ``j`` can be taken (its valid is high
    from then on: always 0 for a source that is always valid, one cycle after the word was
    written for a layer fed by a FIFO); the output is always ready. The window generator steps
    once per cycle over the (H + pad_bottom) x (W + pad_right) grid: a step that consumes a
    pixel waits for it, a step that completes a window waits until the matrix-vector unit has
    taken the previous one, and the unit takes window w ``fold_of(w)`` cycles after the previous
    (F = (C_out/PE)*(K/SIMD) without gating). This recurrence follows the control exactly; the
    cosimulation checks it to the cycle.

    ``start``: the first cycle in which the generator can step (after its start-up fill,
    counted on the caller's clock).

    Returns ``(take, out, needs)``: the cycle of every input transfer, of every output transfer,
    and for every output the index of the last input it depends on (the input that completes
    its window).
    """
    top, bottom, left, right = cfg.pads
    kh, kw = cfg.kernel
    latency = pipeline_latency(partial_latency)
    pixels = cfg.height * cfg.width
    if len(avail) % pixels:
        raise ValueError(f"avail: {len(avail)} input times are not whole frames of {pixels}")
    t = start - 1          # cycle of the last grid step
    take, out, needs = [], [], []
    prev_start = None      # cycle in which the unit took the previous window
    prev_fold = None
    last_out = None
    window = 0
    for _ in range(len(avail) // pixels):
        for y in range(cfg.height + bottom):
            for c in range(cfg.width + right):
                t += 1
                produces = y >= kh - 1 - top and c >= kw - 1 - left
                if produces and prev_start is not None:
                    t = max(t, prev_start)  # the window register must be free by now
                if y < cfg.height and c < cfg.width:
                    t = max(t, avail[len(take)])
                    take.append(t)
                if not produces:
                    continue
                needs.append(len(take) - 1)
                fold = fold_of(window)
                window += 1
                ready = t + 1
                start = ready if prev_start is None else max(ready, prev_start + prev_fold)
                done = start + fold + latency
                last_out = done if last_out is None else max(done, last_out + 1)
                out.append(last_out)
                prev_start, prev_fold = start, fold
    return take, out, needs


def conv_cycles(cfg, frames, fold_of, partial_latency, formula):
    """Exact cycles of SlidingWindow + FoldedMatrixVector, input always valid, output always ready.

    :func:`conv_timing` with every input available from cycle 0. A frame is compute-bound (sum
    of F over its windows) when F covers the grid steps between windows, and input-bound (one
    pixel per cycle) otherwise, as in 'valid' rows where the first kw-1 pixels of each row make
    no window.

    Returns a :class:`~qhw.registry.CycleEstimate`: cycles from the first input transfer to the
    last output transfer, and the latency from the input transfer that completes the first
    window to that window's output transfer.
    """
    take, out, needs = conv_timing(cfg, [0] * (frames * cfg.height * cfg.width), fold_of,
                                   partial_latency)
    first_input = needs[0]
    return CycleEstimate(
        formula=formula, latency=out[0] - take[first_input], expected=out[-1] + 1,
        first_input=first_input,
        notes=(f"compute-bound at F cycles per output pixel (F = active neuron folds x K/SIMD), "
               f"input-bound at one pixel per cycle over the padded grid; pipeline latency "
               f"{pipeline_latency(partial_latency)} cycles after a window's last slice"))
