"""Registration of the sign-exponent-only weight units: `expmul`, `expdot` and the `mulbase`
baselines (docs/expmul.md)."""

from ..golden import expmul as g
from ..hdl import expdot as expdot_hdl
from ..hdl import expmul as expmul_hdl
from ..hdl import mulbase as mulbase_hdl
from ..registry import Unit, register
from . import opcount


def _layout_text(cfg):
    if cfg.is_float:
        return f"{cfg.act_format} bit pattern"
    return f"signed {cfg.act_bits}-bit fixed point (any binary point)"


def _weight_text(cfg):
    return (f"weight code: bit {cfg.weight_exp_bits} sign, bits [0, {cfg.weight_exp_bits}) "
            f"exponent field f; f = 0 is zero, else 2^(f - {cfg.weight_bias})")


def _expmul_describe(cfg):
    return {
        "derived": {"x_bits": cfg.x_bits, "w_bits": cfg.w_bits,
                    "weight_exponents": list(cfg.d_range), "pipeline_stages": expmul_hdl.STAGES},
        "streams": {
            "i": {"direction": "in", "payload_bits": cfg.x_bits + cfg.w_bits,
                  "layout": f"one product per transfer: activation ({_layout_text(cfg)}) at bits "
                            f"[0, {cfg.x_bits}), {_weight_text(cfg)} at bits "
                            f"[{cfg.x_bits}, {cfg.x_bits + cfg.w_bits})"},
            "o": {"direction": "out", "payload_bits": cfg.x_bits,
                  "layout": f"the product, {_layout_text(cfg)}"},
        },
        "memories": [],
    }


def _mulbase_describe(cfg):
    what = (f"{cfg.kind} bit pattern" if cfg.is_float else "signed 8-bit integer")
    return {
        "derived": {"operand_bits": cfg.x_bits, "product_bits": cfg.out_bits,
                    "pipeline_stages": mulbase_hdl.STAGES},
        "streams": {
            "i": {"direction": "in", "payload_bits": 2 * cfg.x_bits,
                  "layout": f"a ({what}) at bits [0, {cfg.x_bits}), b above"},
            "o": {"direction": "out", "payload_bits": cfg.out_bits,
                  "layout": (f"the product, {cfg.kind} bit pattern (RNE, flush to zero)"
                             if cfg.is_float else "the product, signed 16-bit integer")},
        },
        "memories": [],
    }


def _expdot_describe(cfg):
    if cfg.bounded:
        lo, hi = cfg.exp_range
        out = (f"the rounded sum, {cfg.act_format} bit pattern; exact for products 2^{lo} <= |p| "
               f"< 2^{hi + 1}, smaller ones flushed, larger ones "
               + ("saturated to the range" if cfg.out_of_range == "saturate"
                  else "giving the canonical NaN"))
    elif cfg.rounded:
        out = (f"the running sum rounded to {cfg.act_format} after every fold of {cfg.simd} "
               f"lanes ({cfg.fold} roundings; each fold's products summed exactly), "
               f"{cfg.act_format} bit pattern")
    else:
        out = None
    if cfg.exact_products:
        out = (f"the exact sum of x * 2^(d - d_min), signed {cfg.acc_bits}-bit integer (units of "
               f"2^{cfg.d_range[0]} activation LSBs)")
    out = out or (f"the rounded sum, {cfg.act_format} bit pattern" if cfg.is_float else
           f"the exact sum, signed {cfg.acc_bits}-bit integer (same binary point as the inputs)")
    return {
        "derived": {"x_bits": cfg.x_bits, "w_bits": cfg.w_bits, "fold": cfg.fold,
                    "accumulator": cfg.accumulator, "acc_bits": cfg.acc_bits,
                    "accumulator_register_bits": cfg.acc_register_bits,
                    "product_magnitude_bits": cfg.product_mag_bits,
                    "weight_exponents": list(cfg.d_range),
                    "pipeline_stages": expdot_hdl.stages(cfg),
                    # deep: the cuts registered (every one this config has unless it names some)
                    "cut_names": list(cfg.cut_names)},
        "streams": {
            "i": {"direction": "in", "payload_bits": cfg.simd * cfg.x_bits,
                  "layout": f"one fold of {cfg.simd} activations ({_layout_text(cfg)}) per "
                            f"transfer; lane f*{cfg.simd}+s at bits [s*{cfg.x_bits}, "
                            f"(s+1)*{cfg.x_bits}); {cfg.fold} transfers per vector"},
            "o": {"direction": "out", "payload_bits": cfg.out_bits,
                  "layout": f"one dot product per vector: {out}"},
        },
        "memories": [{"name": "weights", "depth": cfg.fold, "width": cfg.simd * cfg.w_bits,
                      "layout": _weight_text(cfg)}],
    }


def _exponent_product_ops(cfg, count, where=""):
    """One exponent-adder product per count (docs/energy.md): float, an integer add of the
    exponent width (the wider of the activation's exponent field and the weight's) and the sign
    XOR; fixed point, the shift by the exponent and the negation for a negative weight."""
    if cfg.is_float:
        return [opcount.op("add", max(cfg.fmt.ebits, cfg.weight_exp_bits), count,
                           f"exponent add{where}"),
                opcount.op("bitop", 1, count, f"sign XOR{where}")]
    if getattr(cfg, "exact_products", False):
        return [opcount.op("shift", cfg.product_bits, count, f"x * 2^(d - d_min), exact{where}"),
                opcount.op("add", cfg.act_bits, count, f"negation for a negative weight{where}")]
    return [opcount.op("shift", cfg.act_bits, count, f"x * 2^d as a shift{where}"),
            opcount.op("add", cfg.act_bits, count, f"negation for a negative weight{where}")]


def expmul_operations(cfg, frames, inputs=None):
    n = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    return opcount.counts(n, "one product", _exponent_product_ops(cfg, n),
                          ["special values (zero, infinity, NaN, overflow) not counted"])


def mulbase_operations(cfg, frames, inputs=None):
    n = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    if cfg.is_float:
        ops = [opcount.op("fmul", cfg.fmt.width, n, f"{cfg.kind} multiply")]
        notes = ["bf16 multiply priced as fp16 (Horowitz gives fp16 and fp32)"] \
            if cfg.kind == "bf16" else []
    else:
        ops, notes = [opcount.op("mul", [8, 8], n, "int8 multiply")], []
    return opcount.counts(n, "one product", ops, notes)


def expdot_operations(cfg, frames, inputs=None):
    """Per vector: N exponent-adder products, N alignments into the exact accumulator (a shift of
    its width), N-1 additions at its width, the final rounding (float: a normalising shift and a
    rounding add), and the reads of N weight codes. ``accumulator='rounded'``: N - F lane
    additions, and per fold after the first the alignment of the running sum and its addition;
    a normalisation and a rounding per fold (F = lanes / simd)."""
    v = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    n, acc = cfg.lanes, cfg.acc_bits
    ops = _exponent_product_ops(cfg, v * n, " (per lane)")
    if cfg.is_float:
        ops.append(opcount.op("shift", acc, v * n, "alignment into the accumulator"))
    roundings = 1
    if cfg.rounded:
        f = cfg.fold
        roundings = f
        ops.append(opcount.op("add", acc, v * (n - f), "exact sum of each fold's lanes"))
        if f > 1:
            ops.append(opcount.op("shift", acc, v * (f - 1), "alignment of the running sum"))
            ops.append(opcount.op("add", acc, v * (f - 1), "running sum + fold sum"))
    else:
        ops.append(opcount.op("add", acc, v * (n - 1), "exact accumulation"))
    if cfg.is_float:
        ops.append(opcount.op("shift", acc, v * roundings, "normalisation of the sum"))
        ops.append(opcount.op("add", cfg.fmt.mbits + 2, v * roundings,
                              "rounding to the output format"))
    ops.append(opcount.op("sram_read", cfg.w_bits * n, v, "the N weight codes"))
    return opcount.counts(v, "one dot-product vector", ops,
                          ["special values not counted"])


# Covers every activation format, both overflow modes, E = 2 and 8, negative and large biases,
# and fixed-point widths 2, 8, 32.
EXPMUL_REGRESSION = {
    "fp32_e5_sat": dict(act_format="fp32", weight_exp_bits=5, weight_bias=31),
    "fp32_e8_inf": dict(act_format="fp32", weight_exp_bits=8, weight_bias=127, overflow="inf"),
    "fp16_e5_inf": dict(act_format="fp16", weight_exp_bits=5, weight_bias=15, overflow="inf"),
    "bf16_e3_sat_negbias": dict(act_format="bf16", weight_exp_bits=3, weight_bias=-2),
    "fixed8_e4": dict(act_format="fixed", act_bits=8, weight_exp_bits=4, weight_bias=8),
    "fixed32_e2": dict(act_format="fixed", act_bits=32, weight_exp_bits=2, weight_bias=1),
    "fixed2_e6": dict(act_format="fixed", act_bits=2, weight_exp_bits=6, weight_bias=32),
}

#: The IEEE (or integer) multiplier an exponent-adder multiplier of each activation format replaces.
_MULTIPLIER_OF = {"fp32": "fp32", "bf16": "bf16", "fixed": "int8"}


def multiplier_baseline(cfg):
    """The conventional multiplier for the activation format (none is generated for fp16)."""
    kind = _MULTIPLIER_OF.get(cfg.act_format)
    return None if kind is None else ("mulbase", {"kind": kind})


def dot_baseline(cfg):
    """The conventional float dot product (IEEE multipliers, rounding adder tree) of the same
    lanes and folding; none for fixed-point activations."""
    if cfg.act_format == "fixed":
        return None
    return "fpdot", {"lanes": cfg.lanes, "simd": cfg.simd, "act_format": cfg.act_format}


EXPMUL = register(Unit(
    name="expmul",
    summary="exponent-adder multiplier: float/fixed activation x sign-exponent-only weight",
    config=g.ExpMulConfig,
    generator=expmul_hdl.ExpMul,
    golden=g.expmul_reference,
    testbench="qhw.cosim.tb_expmul",
    cost_model=expmul_hdl.cost_model,
    check_params=g.expmul_check_params,
    random_params=g.expmul_random_params,
    check_inputs=g.expmul_check_inputs,
    random_inputs=g.expmul_random_inputs,
    pack_inputs=lambda cfg, x: {"i": g.expmul_pack_inputs(cfg, x)},
    unpack_outputs=lambda cfg, words, frames: g.expmul_unpack_outputs(cfg, words["o"], frames),
    output_words=lambda cfg, frames: {"o": frames},
    output_axes=("product",),
    describe=_expmul_describe,
    default_config={"act_format": "fp32", "act_bits": 8, "weight_exp_bits": 5,
                    "weight_bias": 31, "overflow": "saturate"},
    regression=EXPMUL_REGRESSION,
    baseline=multiplier_baseline,
    operations=expmul_operations,
))

MULBASE = register(Unit(
    name="mulbase",
    summary="baseline multipliers: IEEE fp32 / bf16 (RNE, flush to zero), signed int8 x int8",
    config=g.MulBaseConfig,
    generator=mulbase_hdl.MulBase,
    golden=g.mulbase_reference,
    testbench="qhw.cosim.tb_mulbase",
    cost_model=mulbase_hdl.cost_model,
    check_params=g.expmul_check_params,
    random_params=g.expmul_random_params,
    check_inputs=g.mulbase_check_inputs,
    random_inputs=g.mulbase_random_inputs,
    pack_inputs=lambda cfg, x: {"i": g.mulbase_pack_inputs(cfg, x)},
    unpack_outputs=lambda cfg, words, frames: g.mulbase_unpack_outputs(cfg, words["o"], frames),
    output_words=lambda cfg, frames: {"o": frames},
    output_axes=("product",),
    describe=_mulbase_describe,
    default_config={"kind": "fp32"},
    regression={"fp32": {"kind": "fp32"}, "bf16": {"kind": "bf16"}, "int8": {"kind": "int8"}},
    operations=mulbase_operations,
))

EXPDOT_REGRESSION = {
    "fp32_n8_simd2_sat": dict(lanes=8, simd=2, act_format="fp32", weight_exp_bits=5,
                              weight_bias=31),
    "fp16_n6_simd3_inf": dict(lanes=6, simd=3, act_format="fp16", weight_exp_bits=4,
                              weight_bias=8, overflow="inf"),
    "bf16_n4_simd1_sat": dict(lanes=4, simd=1, act_format="bf16", weight_exp_bits=3,
                              weight_bias=3),
    "fixed8_n5_simd5": dict(lanes=5, simd=5, act_format="fixed", act_bits=8,
                            weight_exp_bits=3, weight_bias=4),
    "fixed16_n8_simd4_exact": dict(lanes=8, simd=4, act_format="fixed", act_bits=16,
                                   weight_exp_bits=3, weight_bias=4, product="exact"),
    "fp32_n8_simd4_bounded_flag": dict(lanes=8, simd=4, act_format="fp32", weight_exp_bits=5,
                                       weight_bias=31, accumulator="bounded",
                                       exp_range=(-40, 8), out_of_range="flag"),
    "fp16_n6_simd3_deep_inf": dict(lanes=6, simd=3, act_format="fp16", weight_exp_bits=4,
                                   weight_bias=8, overflow="inf", pipeline="deep"),
    "bf16_n8_simd4_bounded_deep": dict(lanes=8, simd=4, act_format="bf16", weight_exp_bits=3,
                                       weight_bias=3, accumulator="bounded", exp_range=(-6, 9),
                                       pipeline="deep"),
    "fixed16_n8_simd2_exact_deep": dict(lanes=8, simd=2, act_format="fixed", act_bits=16,
                                        weight_exp_bits=3, weight_bias=4, product="exact",
                                        pipeline="deep"),
    # accumulator 'rounded': a rounding per fold (4 and 3 folds), overflow to infinity in the
    # loop, and the deep pipeline in front of the loop
    "fp16_n8_simd2_rounded_inf": dict(lanes=8, simd=2, act_format="fp16", weight_exp_bits=4,
                                      weight_bias=8, overflow="inf", accumulator="rounded"),
    "bf16_n12_simd4_rounded_deep": dict(lanes=12, simd=4, act_format="bf16", weight_exp_bits=3,
                                        weight_bias=3, accumulator="rounded", pipeline="deep"),
    # deep pipelines with a subset of the cuts (latency only): the fp16 benchmark's lean one,
    # simd 8's two-level "tree" registered with the lane sum a wire, fixed point with the tree
    # level a wire, and the rounded accumulator with the alignment in fewer stages
    "fp16_n8_simd4_bounded_deep_cuts": dict(lanes=8, simd=4, act_format="fp16",
                                            weight_exp_bits=4, weight_bias=8,
                                            accumulator="bounded", exp_range=(-8, 6),
                                            pipeline="deep",
                                            cuts=("product", "shift", "tree", "lead",
                                                  "normalise")),
    "fp32_n16_simd8_bounded_deep_cuts": dict(lanes=16, simd=8, act_format="fp32",
                                             weight_exp_bits=5, weight_bias=31,
                                             accumulator="bounded", exp_range=(-30, 10),
                                             pipeline="deep", cuts=("exponent", "tree", "lead")),
    "fixed16_n12_simd4_exact_deep_cuts": dict(lanes=12, simd=4, act_format="fixed", act_bits=16,
                                              weight_exp_bits=3, weight_bias=4, product="exact",
                                              pipeline="deep", cuts=("product", "sum")),
    "bf16_n8_simd2_rounded_deep_cuts": dict(lanes=8, simd=2, act_format="bf16",
                                            weight_exp_bits=3, weight_bias=3,
                                            accumulator="rounded", pipeline="deep",
                                            cuts=("shift", "sum")),
}

EXPDOT = register(Unit(
    name="expdot",
    summary="N-lane dot product of exponent-adder products, exact accumulation, one rounding",
    config=g.ExpDotConfig,
    generator=expdot_hdl.ExpDot,
    golden=g.expdot_reference,
    testbench="qhw.cosim.tb_expdot",
    cost_model=expdot_hdl.cost_model,
    check_params=g.expdot_check_params,
    random_params=g.expdot_random_params,
    check_inputs=g.expdot_check_inputs,
    random_inputs=g.expdot_random_inputs,
    pack_inputs=lambda cfg, x: {"i": g.expdot_pack_inputs(cfg, x)},
    unpack_outputs=lambda cfg, words, frames: g.expdot_unpack_outputs(cfg, words["o"], frames),
    output_words=lambda cfg, frames: {"o": frames},
    output_axes=("vector",),
    describe=_expdot_describe,
    default_config={"lanes": 16, "simd": 4, "act_format": "fp32", "act_bits": 8,
                    "weight_exp_bits": 5, "weight_bias": 31, "overflow": "saturate"},
    regression=EXPDOT_REGRESSION,
    operations=expdot_operations,
    baseline=dot_baseline,
))
