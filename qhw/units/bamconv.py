"""Registration of ``bamconv`` (binary activations, k-bit weights, channel gating) and its int MAC
baseline ``macconv``."""

from ..golden import bamconv as golden
from ..hdl import bamconv as hdl
from ..hdl.mvu import load_stream
from ..registry import Unit, register
from . import opcount


def _describe(cfg):
    a, n = cfg.act_bits, golden.out_element_bits(cfg)
    streams = {
        "i": {"direction": "in", "payload_bits": cfg.c_in * a,
              "layout": f"one input pixel per transfer, row-major; channel c at bits "
                        f"[{a}*c, {a}*c+{a})" + (", bits {0,1}" if a == 1 else
                                                 ", signed" if cfg.act_signed else
                                                 ", unsigned")},
        "o": {"direction": "out", "payload_bits": cfg.c_out * n,
              "layout": (f"one output pixel per transfer, row-major; channel c at bits "
                         f"[{n}*c, {n}*c+{n}), " + (
                             "signed sum" if cfg.output == "sum" else "unsigned code")
                         if cfg.output in ("sum", "requant") else
                         "one output pixel per transfer, row-major; bit c = channel c")},
    }
    if cfg.gating == "mask":
        streams["g"] = {"direction": "in", "payload_bits": cfg.c_out,
                        "layout": "one per output position, row-major; bit c enables channel c"}
    elif cfg.gating == "count":
        streams["g"] = {"direction": "in", "payload_bits": cfg.c_out.bit_length(),
                        "layout": "one per output position: the number n of leading active channels"}
    if cfg.weights == "port":
        lanes = (hdl.MacLanes if isinstance(cfg, golden.MacConvConfig) else hdl.BamLanes)(cfg)
        streams["wl"] = load_stream(lanes, cfg)
    lo, hi = golden.acc_range(cfg)
    return {
        "derived": {"k": cfg.k, "out_height": cfg.out_height, "out_width": cfg.out_width,
                    "neuron_fold": cfg.neuron_fold, "synapse_fold": cfg.synapse_fold,
                    "acc_range": [lo, hi], "acc_bits": golden.acc_bits(cfg),
                    "sum_bits": golden.sum_bits(cfg),
                    "partial_latency": hdl.partial_latency(cfg)},
        "streams": streams,
        "memories": [
            {"name": "weights", "depth": cfg.neuron_fold * cfg.synapse_fold,
             "width": cfg.pe * cfg.simd * cfg.weight_bits},
            {"name": {"sum": "bias", "requant": "bias and multiplier"}.get(
                cfg.output, "thresholds"), "depth": cfg.neuron_fold},
            {"name": "line_buffer", "depth": cfg.width,
             "width": (cfg.kernel[0] - 1) * cfg.c_in * a},
        ],
    }


def _output_words(cfg, frames):
    return {"o": frames * cfg.out_height * cfg.out_width}


def _frames(cfg, inputs):
    return golden.check_inputs(cfg, inputs)["activations"].shape[0]


BAMCONV_REGRESSION = {
    "2d_k3_same_w8_sum_pe2_simd3": dict(c_in=3, c_out=4, height=4, width=5, kernel=[3, 3],
                                        padding="same", pe=2, simd=3, weight_bits=8),
    "2d_k3_valid_w2_thr_unfolded": dict(c_in=2, c_out=3, height=4, width=5, kernel=[3, 3],
                                        pe=3, simd=18, weight_bits=2, output="threshold"),
    "1d_k3_same_w4_sum_mask": dict(c_in=4, c_out=6, height=1, width=9, kernel=[1, 3],
                                   padding="same", pe=2, simd=6, weight_bits=4, gating="mask"),
    "2d_k2_valid_w5_thr_count_simd1": dict(c_in=2, c_out=6, height=3, width=4, kernel=[2, 2],
                                           pe=3, simd=1, weight_bits=5, output="threshold",
                                           gating="count"),
    "2d_k1_same_w8_sum_mask_pe1": dict(c_in=5, c_out=4, height=3, width=3, kernel=[1, 1],
                                       padding="same", pe=1, simd=5, weight_bits=8,
                                       gating="mask"),
}
MACCONV_REGRESSION = {
    "2d_k3_same_8x8_pe2_simd3": dict(c_in=3, c_out=4, height=4, width=5, kernel=[3, 3],
                                     padding="same", pe=2, simd=3),
    "1d_k3_valid_4x3_simd1": dict(c_in=2, c_out=2, height=1, width=7, kernel=[1, 3], pe=1,
                                  simd=1, act_bits=4, weight_bits=3),
    "2d_k2_same_12x6_unfolded": dict(c_in=2, c_out=3, height=3, width=3, kernel=[2, 2],
                                     padding="same", pe=3, simd=8, act_bits=12, weight_bits=6),
    "2d_k3_same_8x8_thr_pe2": dict(c_in=2, c_out=4, height=4, width=4, kernel=[3, 3],
                                   padding="same", pe=2, simd=6, output="threshold"),
    # Unsigned 8-bit codes in, requantized to unsigned 8-bit codes out (an 8-bit network layer).
    "2d_k3_same_u8_requant_pe2": dict(c_in=3, c_out=4, height=4, width=5, kernel=[3, 3],
                                      padding="same", pe=2, simd=9, act_signed=False,
                                      output="requant", shift=24),
}

def int8_mac_baseline(cfg):
    """The conventional design of the same geometry and folding: an 8 x 8 MAC convolution."""
    return "macconv", {**cfg.geometry(), "act_bits": 8, "weight_bits": 8}


def conv_operations(cfg, frames, inputs=None):
    """Operation counts of ``frames`` frames (docs/energy.md), per computed output (channel and
    position): K-1 additions at the accumulator width (bamconv: of the weights its activation
    bits select, the conditional adds; macconv: of the K products, plus K multiplies), the bias
    add (sum output) or the threshold compare, and the reads of K weights and a bias or threshold.

    With gating and ``inputs``, only the channels the gates enable are counted (without them:
    every channel, the upper bound)."""
    n = opcount.batch_size(inputs["activations"]) if inputs is not None \
        else opcount.frames_count(frames)
    notes = ["activations come from the line buffer and registers: not counted"]
    if inputs is not None and cfg.gating != "none":
        outs = int(golden.channel_mask(cfg, inputs).sum())
        notes.append(f"gated: {outs} of {n * cfg.out_height * cfg.out_width * cfg.c_out} "
                     f"channel outputs enabled (the hardware skips neuron folds whose {cfg.pe} "
                     f"channels are all off, so its work is between the two)")
    else:
        outs = n * cfg.out_height * cfg.out_width * cfg.c_out
        if cfg.gating != "none":
            notes.append("gated unit without inputs: every channel counted (upper bound)")
    k, acc = cfg.k, golden.acc_bits(cfg)
    ops = []
    if cfg.act_bits > 1:  # macconv
        ops.append(opcount.op("mul", [cfg.act_bits, cfg.weight_bits], outs * k,
                              "activation x weight"))
        ops.append(opcount.op("add", acc, outs * (k - 1), "accumulate K products"))
    else:
        ops.append(opcount.op("add", acc, outs * (k - 1),
                              "accumulate the weights of active inputs (conditional adds)"))
    if cfg.output in ("sum", "requant"):
        ops.append(opcount.op("add", golden.sum_bits(cfg), outs, "bias"))
    else:
        ops.append(opcount.op("add", golden.threshold_bits(cfg), outs, "threshold compare"))
    if cfg.output == "requant":
        ops.append(opcount.op("mul", [golden.sum_bits(cfg), cfg.mult_bits], outs,
                              "requantization: sum x multiplier"))
        ops.append(opcount.op("add", golden.requant_product_bits(cfg), 3 * outs,
                              "requantization: rounding term and two saturation compares"))
    ops.append(opcount.op("sram_read", k * cfg.weight_bits, outs,
                          "weights of one output channel"))
    aux = {"sum": acc, "requant": acc + getattr(cfg, "mult_bits", 0)}.get(
        cfg.output, golden.threshold_bits(cfg) + 1)
    ops.append(opcount.op("sram_read", aux, outs, {"sum": "bias", "requant": "bias and multiplier"}
                          .get(cfg.output, "threshold and direction")))
    return opcount.counts(n, "one frame (H x W x C_in input, H_out x W_out x C_out output)", ops,
                          notes)


_COMMON = dict(
    golden=golden.reference,
    cost_model=hdl.cost_model,
    check_params=golden.check_params,
    random_params=golden.random_params,
    check_inputs=golden.check_inputs,
    random_inputs=golden.random_inputs,
    pack_inputs=golden.pack_inputs,
    unpack_outputs=golden.unpack_outputs,
    output_words=_output_words,
    output_axes=("frame", "row", "column", "channel"),
    describe=_describe,
    frames=_frames,
    operations=conv_operations,
    timing=hdl.timing,
    startup=hdl.startup,
    load_words=golden.load_words,
)

BAMCONV = register(Unit(
    name="bamconv",
    summary="binary-activation convolution: {0,1} maps, signed k-bit weights as conditional "
            "adds, channel gating",
    config=golden.BamConvConfig,
    generator=hdl.BamConv,
    testbench="qhw.cosim.tb_bamconv",
    default_config={"c_in": 8, "c_out": 8, "height": 8, "width": 8, "kernel": [3, 3],
                    "padding": "same", "pe": 2, "simd": 24, "weight_bits": 8,
                    "output": "threshold", "gating": "none"},
    regression=BAMCONV_REGRESSION,
    baseline=int8_mac_baseline,
    **_COMMON,
))

MACCONV = register(Unit(
    name="macconv",
    summary="conventional signed multiply-accumulate convolution (the area baseline, 8 x 8)",
    config=golden.MacConvConfig,
    generator=hdl.MacConv,
    testbench="qhw.cosim.tb_macconv",
    default_config={"c_in": 8, "c_out": 8, "height": 8, "width": 8, "kernel": [3, 3],
                    "padding": "same", "pe": 2, "simd": 24, "act_bits": 8, "weight_bits": 8},
    regression=MACCONV_REGRESSION,
    **_COMMON,
))
