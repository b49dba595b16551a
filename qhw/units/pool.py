"""Registration of the pooling units ``maxpool`` and ``globalpool`` (docs/pool.md)."""

from ..golden import pool as golden
from ..hdl import pool as hdl
from ..registry import Unit, register
from . import opcount


def _kind(cfg):
    if cfg.element_bits == 1:
        return "bits {0,1}"
    return "signed" if cfg.signed else "unsigned"


def _streams(cfg):
    e, b = cfg.element_bits, golden.out_element_bits(cfg)
    return {
        "i": {"direction": "in", "payload_bits": cfg.c_in * e,
              "layout": f"one input pixel per transfer, row-major; channel c at bits "
                        f"[{e}*c, {e}*c+{e}), {_kind(cfg)}"},
        "o": {"direction": "out", "payload_bits": cfg.c_out * b,
              "layout": f"one output pixel per transfer, row-major; channel c at bits "
                        f"[{b}*c, {b}*c+{b}), " + ("signed" if golden.out_signed(cfg) else
                                                    "unsigned" if b > 1 else "bits {0,1}")},
    }


def _describe_maxpool(cfg):
    kh, kw = cfg.kernel
    memories = []
    if kh > 1:
        memories.append({"name": "row_buffer", "depth": cfg.out_width,
                         "width": cfg.c_in * cfg.element_bits,
                         "layout": "partial maximum of output column ox over the window rows "
                                   "so far; synchronous read, transparent for the write"})
    return {
        "derived": {"out_height": cfg.out_height, "out_width": cfg.out_width,
                    "dropped_rows": cfg.height - cfg.out_height * kh,
                    "dropped_columns": cfg.width - cfg.out_width * kw,
                    "out_element_bits": golden.out_element_bits(cfg),
                    "out_signed": golden.out_signed(cfg),
                    "operation": "OR" if cfg.element_bits == 1 else f"max ({_kind(cfg)})"},
        "streams": _streams(cfg),
        "memories": memories,
    }


def _describe_globalpool(cfg):
    derived = {"out_height": 1, "out_width": 1, "positions": cfg.positions,
               "out_element_bits": golden.out_element_bits(cfg),
               "out_signed": golden.out_signed(cfg)}
    if cfg.mode != "max":
        derived["sum_bits"] = golden.sum_bits(cfg)
    if cfg.mode == "avg":
        mult, shift = golden.avg_reciprocal(cfg)
        derived["avg"] = (f"floor(sum / {cfg.positions}) = (u * {mult}) >> {shift} on the "
                          f"offset-binary sum u" if cfg.signed else
                          f"floor(sum / {cfg.positions}) = (sum * {mult}) >> {shift}")
    return {"derived": derived, "streams": _streams(cfg), "memories": []}


def _compare(cfg, count, what):
    if cfg.element_bits == 1:
        return opcount.op("bitop", 1, count, what.replace("compare", "OR"))
    return opcount.op("add", cfg.element_bits, count, what)


def maxpool_operations(cfg, frames, inputs=None):
    """Per output value (position and channel): k_h*k_w - 1 compares (ORs on 1-bit maps)."""
    n = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    kh, kw = cfg.kernel
    outs = n * cfg.out_height * cfg.out_width * cfg.c_out
    ops = [_compare(cfg, outs * (kh * kw - 1), "max compare of two window values")]
    notes = ["the row buffer (W_out x C*E bits) and registers hold partial maxima: not counted"]
    return opcount.counts(n, "one frame (H x W x C input, H_out x W_out x C output)", ops, notes)


def globalpool_operations(cfg, frames, inputs=None):
    """Per channel and frame: H*W - 1 compares (max; ORs on 1-bit maps) or adds at sum_bits
    (sum, avg), and for avg one multiplication by the reciprocal of H*W."""
    n = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    outs = n * cfg.c_out
    steps = outs * (cfg.positions - 1)
    if cfg.mode == "max":
        ops = [_compare(cfg, steps, "max compare into the running maximum")]
    else:
        ops = [opcount.op("add", golden.sum_bits(cfg), steps, "accumulate the sum")]
    if cfg.mode == "avg":
        mult, _ = golden.avg_reciprocal(cfg)
        ops.append(opcount.op("mul", [golden.sum_bits(cfg), mult.bit_length()], outs,
                              "divide by H*W (multiply by the constant reciprocal)"))
    return opcount.counts(n, "one frame (H x W x C input, C outputs)", ops,
                          ["the accumulators are registers: not counted"])


def _frames(cfg, inputs):
    return golden.check_inputs(cfg, inputs).shape[0]


# 1-bit OR pools, signed 8- and 32-bit max, floor on odd sizes (5x7 with 2x2, 1x10 with 1x3),
# a single output column with kernel width 1 (the row buffer's read of the value written the
# cycle before).
MAXPOOL_REGRESSION = {
    "1bit_k2_6x8_or": dict(c_in=4, height=6, width=8, kernel=[2, 2], element_bits=1),
    "s8_k2_5x7_floor": dict(c_in=3, height=5, width=7, kernel=[2, 2], element_bits=8,
                            signed=True),
    "1d_u4_k13_w10_floor": dict(c_in=2, height=1, width=10, kernel=[1, 3], element_bits=4),
    "u5_k32_7x5_floor": dict(c_in=2, height=7, width=5, kernel=[3, 2], element_bits=5),
    "s32_k21_5x1_wout1": dict(c_in=2, height=5, width=1, kernel=[2, 1], element_bits=32,
                              signed=True),
}

GLOBALPOOL_REGRESSION = {
    "max_1bit_or_3x4": dict(c_in=5, height=3, width=4, element_bits=1, mode="max"),
    "sum_1bit_count_4x4": dict(c_in=3, height=4, width=4, element_bits=1, mode="sum"),
    "max_s8_3x5": dict(c_in=3, height=3, width=5, element_bits=8, signed=True, mode="max"),
    "sum_s6_3x3": dict(c_in=2, height=3, width=3, element_bits=6, signed=True, mode="sum"),
    "avg_s8_3x5": dict(c_in=3, height=3, width=5, element_bits=8, signed=True, mode="avg"),
    "avg_u4_1x6": dict(c_in=2, height=1, width=6, element_bits=4, mode="avg"),
}

_COMMON = dict(
    golden=golden.reference,
    check_params=golden.check_params,
    random_params=golden.random_params,
    check_inputs=golden.check_inputs,
    random_inputs=golden.random_inputs,
    pack_inputs=golden.pack_inputs,
    unpack_outputs=golden.unpack_outputs,
    output_words=golden.output_words,
    output_axes=("frame", "row", "column", "channel"),
    frames=_frames,
)

MAXPOOL = register(Unit(
    name="maxpool",
    summary="k_h x k_w max pooling (stride = kernel, floor): OR on 1-bit maps, integer max",
    config=golden.MaxPoolConfig,
    generator=hdl.MaxPool,
    testbench="qhw.cosim.tb_maxpool",
    cost_model=hdl.maxpool_cost_model,
    describe=_describe_maxpool,
    default_config={"c_in": 16, "height": 8, "width": 8, "kernel": [2, 2], "element_bits": 1,
                    "signed": False},
    regression=MAXPOOL_REGRESSION,
    operations=maxpool_operations,
    timing=hdl.maxpool_timing,
    **_COMMON,
))

GLOBALPOOL = register(Unit(
    name="globalpool",
    summary="global max / sum / floor-average pooling over all H x W positions per channel",
    config=golden.GlobalPoolConfig,
    generator=hdl.GlobalPool,
    testbench="qhw.cosim.tb_globalpool",
    cost_model=hdl.globalpool_cost_model,
    describe=_describe_globalpool,
    default_config={"c_in": 16, "height": 8, "width": 8, "element_bits": 8, "signed": True,
                    "mode": "avg"},
    regression=GLOBALPOOL_REGRESSION,
    operations=globalpool_operations,
    timing=hdl.globalpool_timing,
    **_COMMON,
))
