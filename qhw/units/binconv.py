"""Registration of the `binconv` unit."""

from ..golden import binconv as binconv_golden
from ..hdl import binconv as binconv_hdl
from ..hdl.mvu import load_stream
from ..registry import Unit, register
from . import opcount
from .bamconv import int8_mac_baseline


def _binconv_describe(cfg):
    return {
        "derived": {
            "k": cfg.k, "out_height": cfg.out_height, "out_width": cfg.out_width,
            "pads_top_bottom_left_right": list(cfg.pads),
            "neuron_fold": cfg.neuron_fold, "synapse_fold": cfg.synapse_fold,
            "popcount_bits": cfg.popcount_bits, "dot_bits": cfg.dot_bits,
            "tree_latency": binconv_hdl.tree_latency(cfg),
            "output_fifo_depth": binconv_hdl.fifo_depth(cfg),
        },
        "streams": {
            "i": {"direction": "in", "payload_bits": cfg.c_in,
                  "layout": "one input pixel per transfer, row-major (row, column); "
                            "bit c = channel c; 1 -> +1, 0 -> -1"},
            "o": {"direction": "out", "payload_bits": cfg.c_out * cfg.out_element_bits,
                  "layout": (f"one output pixel per transfer, row-major; channel c at bits "
                             f"[{cfg.dot_bits}*c, {cfg.dot_bits}*c+{cfg.dot_bits}), signed dot "
                             f"product 2P-K in [-{cfg.k}, {cfg.k}]"
                             if cfg.output == "popcount" else
                             "one output pixel per transfer, row-major; bit c = channel c")},
            **({"wl": load_stream(binconv_hdl.XnorPopcountLanes(cfg), cfg)}
               if cfg.weights == "port" else {}),
        },
        "memories": [
            {"name": "weights", "depth": cfg.neuron_fold * cfg.synapse_fold,
             "width": cfg.pe * cfg.simd},
            *([{"name": "thresholds", "depth": cfg.neuron_fold,
                "width": cfg.pe * (cfg.threshold_bits + 1)}] if cfg.output == "threshold" else []),
            {"name": "line_buffer", "depth": cfg.width,
             "width": (cfg.kernel[0] - 1) * cfg.c_in},
        ],
    }


def binconv_operations(cfg, frames, inputs=None):
    """Operation counts of ``frames`` frames (docs/energy.md): per output channel and position,
    K XNORs (1-bit operations), a popcount of K bits as K-1 one-bit additions (the full adders
    of a compressor tree, a full adder removes one bit of the count), then 2P-K (an add of the dot width) or the threshold
    compare (an add of the threshold width), and the reads of K weight bits (and a threshold)."""
    n = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    outs = n * cfg.out_height * cfg.out_width * cfg.c_out
    k, ops = cfg.k, []
    ops.append(opcount.op("bitop", 1, outs * k, "XNOR of activation and weight bits"))
    ops.append(opcount.op("add", 1, outs * (k - 1), "popcount: K-1 one-bit additions per output"))
    if cfg.output == "popcount":
        ops.append(opcount.op("add", cfg.dot_bits, outs, "dot product 2P - K"))
    else:
        ops.append(opcount.op("add", cfg.threshold_bits, outs, "threshold compare"))
    ops.append(opcount.op("sram_read", k, outs, "weight bits of one output channel"))
    if cfg.output == "threshold":
        ops.append(opcount.op("sram_read", cfg.threshold_bits + 1, outs,
                              "threshold and direction of one output channel"))
    return opcount.counts(n, "one frame (H x W x C_in input, H_out x W_out x C_out output)", ops,
                          ["activations come from the line buffer and registers: not counted"])


# Covers: 1-D and 2-D; kernels 1, 2x3 and 3; PE = 1 and PE = C_out; SIMD = 1 and SIMD = K; both
# paddings and pad bits; both output modes; both counter trees; odd sizes; a kernel larger than
# the image ('same'); a DNSMOS-like slice (arXiv 2407.04578).
BINCONV_REGRESSION = {
    "2d_k3_same_thr_pe2_simd3": dict(c_in=3, c_out=4, height=5, width=7, kernel=[3, 3],
                                     padding="same", pe=2, simd=3, output="threshold"),
    "2d_k3_valid_pop_unfolded": dict(c_in=2, c_out=3, height=5, width=6, kernel=[3, 3],
                                     padding="valid", pe=3, simd=18, output="popcount"),
    "1d_k3_same_pad1_pop_pe1_simd1": dict(c_in=4, c_out=2, height=1, width=11, kernel=[1, 3],
                                          padding="same", pad_bit=1, pe=1, simd=1),
    "1d_k1_valid_thr_full": dict(c_in=5, c_out=3, height=1, width=7, kernel=[1, 1],
                                 pe=3, simd=5, output="threshold"),
    "2d_k1_same_pop_simd1": dict(c_in=7, c_out=5, height=3, width=5, kernel=[1, 1],
                                 padding="same", pe=5, simd=1),
    "2d_k3_valid_thr_fa_pe1_simd1": dict(c_in=2, c_out=2, height=4, width=4, kernel=[3, 3],
                                         pe=1, simd=1, output="threshold", counter="fa"),
    "2d_k2x3_same_pad1_pop": dict(c_in=3, c_out=6, height=4, width=5, kernel=[2, 3],
                                  padding="same", pad_bit=1, pe=3, simd=9),
    "2d_k3_same_pop_wide_simd_k": dict(c_in=8, c_out=4, height=3, width=5, kernel=[3, 3],
                                       padding="same", pe=4, simd=72, counter="fa"),
    "2d_k3_same_thr_kernel_over_image": dict(c_in=1, c_out=2, height=2, width=2, kernel=[3, 3],
                                             padding="same", pe=1, simd=9, output="threshold"),
    "2d_k3_same_thr_dnsmos_slice": dict(c_in=32, c_out=32, height=3, width=10, kernel=[3, 3],
                                        padding="same", pe=8, simd=32, output="threshold"),
}

BINCONV = register(Unit(
    name="binconv",
    summary="XNOR-popcount binary convolution (bipolar bits, popcount or threshold output)",
    config=binconv_golden.BinConvConfig,
    generator=binconv_hdl.BinConv,
    golden=binconv_golden.reference,
    testbench="qhw.cosim.tb_binconv",
    cost_model=binconv_hdl.cost_model,
    check_params=binconv_golden.check_params,
    random_params=binconv_golden.random_params,
    check_inputs=binconv_golden.check_inputs,
    random_inputs=binconv_golden.random_inputs,
    pack_inputs=lambda cfg, x: {"i": binconv_golden.pack_inputs(cfg, x)},
    unpack_outputs=lambda cfg, words, frames: binconv_golden.unpack_outputs(cfg, words["o"], frames),
    output_words=lambda cfg, frames: {"o": frames * cfg.out_height * cfg.out_width},
    output_axes=("frame", "row", "column", "channel"),
    describe=_binconv_describe,
    default_config={"c_in": 16, "c_out": 16, "height": 8, "width": 12, "kernel": [3, 3],
                    "padding": "same", "pad_bit": 0, "pe": 4, "simd": 48,
                    "output": "threshold", "counter": "gpc63"},
    regression=BINCONV_REGRESSION,
    baseline=int8_mac_baseline,
    operations=binconv_operations,
    timing=binconv_hdl.timing,
    startup=binconv_hdl.startup,
    load_words=binconv_golden.load_words,
))
