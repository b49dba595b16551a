"""Registration of the `gru` unit: mixed-precision integer GRU (docs/gru.md)."""


from ..config import config_to_dict
from ..golden import gru as g
from ..hdl import gru as gru_hdl
from ..registry import Unit, register
from . import opcount


def _describe(cfg):
    bx, bh = cfg.fmt("input").total, cfg.fmt("state").total
    i, h = cfg.input_size, cfg.hidden_size
    return {
        "derived": {
            "formats": {name: list(cfg.fmt(name)) for name in g.FORMAT_NAMES},
            "activation_input_formats": {name: list(g.act_input_format(cfg, name))
                                         for name in ("sig_r", "sig_z", "tanh_n")},
            "chunks_per_row": {"ih": cfg.chunks_i, "hh": cfg.chunks_h},
            "issue_cycles_per_step": gru_hdl.issue_cycles(cfg),
            "step_overhead_cycles": gru_hdl.step_overhead(cfg),
            "mac_accumulator_bits": gru_hdl.mac_bits(cfg),
            "accumulator_bits_with_bias": {"ih": g.acc_bits(cfg, "i"), "hh": g.acc_bits(cfg, "h")},
            "output_fifo_depth": gru_hdl.FIFO_DEPTH,
        },
        "streams": {
            "i": {"direction": "in", "payload_bits": g.input_word_bits(cfg),
                  "layout": f"one time step per transfer: x_j (signed {bx}-bit code of the input "
                            f"format) at bits [{bx}*j, {bx}*j+{bx}) for j < {i}; reset (state "
                            f"zeroed before this step) at bit {i * bx}; last at bit {i * bx + 1}"},
            "o": {"direction": "out", "payload_bits": h * bh,
                  "layout": f"the state h_i (signed {bh}-bit code of the state format) at bits "
                            f"[{bh}*i, {bh}*i+{bh}) for i < {h}; "
                            + ("after every step" if cfg.output == "sequence"
                               else "after each step flagged last")},
        },
        "memories": [
            {"name": "weights", "depth": 3 * h * (cfg.chunks_i + cfg.chunks_h),
             "width": cfg.macs * cfg.fmt("weight").total},
            {"name": "biases", "depth": h, "width": 6 * cfg.fmt("bias").total},
            *({"name": f"{name}_{cfg.activation}",
               "depth": (1 << cfg.lut_bits) if cfg.activation == "lut" else cfg.pwl_segments,
               "width": cfg.fmt(name).total * (1 if cfg.activation == "lut" else 2) +
               (0 if cfg.activation == "lut" else 1)}
              for name in ("sig_r", "sig_z", "tanh_n")),
        ],
    }


def frames(cfg, x):
    """The cost model's frames for a batched input (N, T, I): the pair (N, T)."""
    return (int(x.shape[0]), int(x.shape[1]))


def output_axes(cfg):
    """(N, T, H) for ``sequence`` output, (N, H) for ``last``."""
    return ("sequence", "step", "hidden") if cfg.output == "sequence" else ("sequence", "hidden")


MIXED_A = {  # narrow matrix products and gates, 8-bit state
    "input": [6, 3], "weight": [4, 2], "bias": [6, 3], "state": [8, 7],
    "mm_ir": [6, 2], "mm_hr": [6, 2], "mm_iz": [6, 2], "mm_hz": [6, 2], "mm_in": [6, 2],
    "mm_hn": [6, 2], "add_r": [6, 2], "add_z": [6, 2], "add_n": [6, 2],
    "sig_r": [4, 3], "sig_z": [5, 4], "tanh_n": [5, 4], "mul_rn": [6, 2], "sub_z": [5, 4],
    "mul_n": [6, 5], "mul_zh": [6, 5], "add_h": [8, 7]}

MIXED_B = {  # floor rounding here and there, wide accumulation side, 10-bit state
    "input": [5, 2, "floor"], "weight": [3, 1], "bias": [8, 5], "state": [10, 9],
    "mm_ir": [7, 3, "floor"], "mm_hr": [5, 2], "mm_in": [7, 3], "mm_hn": [7, 3, "floor"],
    "add_r": [5, 2], "add_n": [7, 3, "floor"], "sig_z": [6, 5, "floor"], "tanh_n": [7, 6],
    "mul_zh": [9, 8], "add_h": [10, 9, "floor"]}

#: Directed saturation case: narrow formats so that every operator saturates on extreme data.
SATURATE = {
    "input": [4, 1], "weight": [4, 2], "bias": [4, 1], "state": [2, 1],
    "mm_ir": [5, 1], "mm_hr": [3, 1], "mm_iz": [5, 1], "mm_hz": [3, 1], "mm_in": [5, 1],
    "mm_hn": [3, 1], "add_r": [5, 1], "add_z": [5, 1], "add_n": [5, 1],
    "sig_r": [4, 3], "sig_z": [4, 3], "tanh_n": [4, 2], "mul_rn": [2, 1], "sub_z": [4, 3],
    "mul_n": [3, 2], "mul_zh": [1, 1], "add_h": [3, 2]}
#: Its twin, where add_h saturates (and the state, as wide as add_h, does not).
SATURATE_ADD_H = {**SATURATE, "add_h": [2, 1]}

# Covers: all-4-bit, all-8-bit, all-16-bit, two mixed sets, PWL and LUT, MACS = 1, a divisor
# and a non-divisor of I/H, MACS = max(I, H), 'last' output, floor rounding, a 1-wide
# input, and a saturating directed case.
GRU_REGRESSION = {
    "all8_lut_m1": dict(input_size=3, hidden_size=4, bits=8, macs=1),
    "all4_lut_m2": dict(input_size=4, hidden_size=4, bits=4, lut_bits=5, macs=2),
    "mixed_a_lut_m3": dict(input_size=5, hidden_size=6, formats=MIXED_A, lut_bits=6, macs=3),
    "mixed_b_pwl_last": dict(input_size=4, hidden_size=5, formats=MIXED_B, activation="pwl",
                             lut_bits=7, pwl_segments=8, macs=2, output="last"),
    "saturate_lut_m4": dict(input_size=3, hidden_size=4, formats=SATURATE, lut_bits=6,
                            sigmoid_range=4, tanh_range=2, macs=4),
    "saturate_add_h_pwl_m1": dict(input_size=3, hidden_size=4, formats=SATURATE_ADD_H,
                                  activation="pwl", lut_bits=6, pwl_segments=8,
                                  sigmoid_range=4, tanh_range=2, macs=1),
    "all16_pwl_m8": dict(input_size=8, hidden_size=6, bits=16, activation="pwl", lut_bits=10,
                         pwl_segments=32, macs=8),
    "all8_floor_last_i1": dict(input_size=1, hidden_size=7, bits=8, macs=3, output="last",
                               formats={"add_h": [8, 7, "floor"], "state": [8, 7, "floor"],
                                        "mm_hn": [8, 4, "floor"]}),
    "all6_pwl_m5": dict(input_size=7, hidden_size=5, bits=6, activation="pwl", lut_bits=6,
                        pwl_segments=4, macs=5),
    "mixed_a_wide_h16": dict(input_size=8, hidden_size=16, formats=MIXED_A, lut_bits=6,
                             macs=4),
}

def homogeneous_8bit_baseline(cfg):
    """The same GRU (sizes, folding, activations) with every format at the 8-bit preset."""
    return "gru", {**config_to_dict(cfg), "bits": 8, "formats": {}}


def gru_operations(cfg, frames, inputs=None):
    """Operation counts of ``frames`` ((N, T) or an int T: one sequence), docs/energy.md.

    Per step: the six matrix products (3H rows of I and of H multiplies at the weight x vector
    widths, and as many additions at the accumulator width: K-1 to accumulate, 1 for the bias),
    the element-wise operators at their exact widths (adds with aligned binary points, the
    products mul_rn, mul_n, mul_zh, 1 - z), the three activations per hidden unit (a table read;
    PWL: a read of A and B, a multiply and an add), and the reads of every weight and bias.
    Narrowing (rounding, saturation) is not counted."""
    if inputs is not None:
        n, t = int(inputs.shape[0]), int(inputs.shape[1])
    else:
        n, t = g.frames_shape(frames)
    steps = n * t
    i, h = cfg.input_size, cfg.hidden_size
    fmt = {name: (cfg.fmt(name).total, cfg.fmt(name).frac) for name in g.FORMAT_NAMES}
    tw = fmt["weight"][0]
    ops = []
    for side, k, vec in (("i", i, "input"), ("h", h, "state")):
        ops.append(opcount.op("mul", [tw, fmt[vec][0]], steps * 3 * h * k,
                              f"W_{side}* x {vec} (matrix products)"))
        ops.append(opcount.op("add", g.acc_bits(cfg, side), steps * 3 * h * k,
                              f"accumulate W_{side}* products and bias"))
        ops.append(opcount.op("sram_read", tw, steps * 3 * h * k, f"weight_{side}h element"))
        ops.append(opcount.op("sram_read", fmt["bias"][0], steps * 3 * h, f"bias_{side}h element"))
    for name, a, b in (("add_r", "mm_ir", "mm_hr"), ("add_z", "mm_iz", "mm_hz"),
                       ("add_n", "mm_in", "mul_rn"), ("add_h", "mul_n", "mul_zh")):
        ops.append(opcount.op("add", opcount.aligned_add_bits(fmt[a], fmt[b]), steps * h,
                              f"{name} = {a} + {b}"))
    ops.append(opcount.op("add", opcount.aligned_add_bits((2, 0), fmt["sig_z"]), steps * h,
                          "sub_z = 1 - sig_z"))
    for name, a, b in (("mul_rn", "sig_r", "mm_hn"), ("mul_n", "sub_z", "tanh_n"),
                       ("mul_zh", "sig_z", "state")):
        ops.append(opcount.op("mul", [fmt[a][0], fmt[b][0]], steps * h, f"{name} = {a} x {b}"))
    for name in ("sig_r", "sig_z", "tanh_n"):
        out = fmt[name][0]
        if cfg.activation == "lut":
            ops.append(opcount.op("sram_read", out, steps * h, f"{name} table entry"))
        else:
            d = cfg.lut_bits - (cfg.pwl_segments.bit_length() - 1)
            ops.append(opcount.op("sram_read", 2 * out + 1, steps * h, f"{name} segment (A, B)"))
            ops.append(opcount.op("mul", [out + 1, d], steps * h, f"{name} slope x offset"))
            ops.append(opcount.op("add", out + d, steps * h, f"{name} A + slope x offset"))
    return opcount.counts(n, "one sequence (all of its T steps)", ops,
                          [f"{n} sequence(s) of {t} step(s)",
                           "narrowing (rounding, saturation) and the state register not counted"])


GRU = register(Unit(
    name="gru",
    summary="mixed-precision integer GRU layer: a fixed-point format per operator, folded MACs",
    config=g.GruConfig,
    generator=gru_hdl.Gru,
    golden=g.reference,
    testbench="qhw.cosim.tb_gru",
    cost_model=gru_hdl.cost_model,
    check_params=g.check_params,
    random_params=g.random_params,
    check_inputs=g.check_inputs,
    random_inputs=g.random_inputs,
    pack_inputs=lambda cfg, x: {"i": g.pack_inputs(cfg, x)},
    unpack_outputs=lambda cfg, words, fr: g.unpack_outputs(cfg, words["o"], fr),
    output_words=lambda cfg, fr: {"o": g.output_count(cfg, fr)},
    output_axes=output_axes,
    describe=_describe,
    default_config={"input_size": 16, "hidden_size": 16, "bits": 8, "macs": 4},
    regression=GRU_REGRESSION,
    frames=frames,
    baseline=homogeneous_8bit_baseline,
    operations=gru_operations,
    timing=gru_hdl.timing,
))
