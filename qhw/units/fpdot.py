"""Registration of `fpdot`, the conventional float dot product that `expdot` is compared with
(docs/expmul.md)."""

from ..golden import fpdot as g
from ..hdl import fpdot as fpdot_hdl
from ..registry import Unit, register
from . import opcount


def _describe(cfg):
    folds = ("a pairwise tree over the fold sums (t0+t1, t2+t3, ..., odd last passed up)"
             if cfg.pipeline == "deep" else
             "acc = tree(fold 0), then acc = acc + tree(fold f)")
    return {
        "derived": {"x_bits": cfg.x_bits, "fold": cfg.fold, "tree_levels": cfg.tree_levels,
                    "fold_levels": cfg.fold_levels,
                    "pipeline_stages": fpdot_hdl.stages(cfg),
                    # deep: the cuts registered (all of the format's unless the config names some)
                    "mul_cut_names": list(cfg.mul_cut_names),
                    "add_cut_names": list(cfg.add_cut_names),
                    "order": (f"products; per fold a pairwise tree over its {cfg.simd} products "
                              f"(v0+v1, v2+v3, ..., odd last passed up); {folds}; every "
                              f"operation rounds to nearest even, subnormals flushed")},
        "streams": {
            "i": {"direction": "in", "payload_bits": cfg.simd * cfg.x_bits,
                  "layout": f"one fold of {cfg.simd} activations ({cfg.act_format} bit patterns) "
                            f"per transfer; lane f*{cfg.simd}+s at bits [s*{cfg.x_bits}, "
                            f"(s+1)*{cfg.x_bits}); {cfg.fold} transfers per vector"},
            "o": {"direction": "out", "payload_bits": cfg.x_bits,
                  "layout": f"one dot product per vector, {cfg.act_format} bit pattern"},
        },
        "memories": [{"name": "weights", "depth": cfg.fold, "width": cfg.simd * cfg.x_bits,
                      "layout": f"{cfg.simd} {cfg.act_format} weights per word, lane "
                                f"f*{cfg.simd}+s at bits [s*{cfg.x_bits}, (s+1)*{cfg.x_bits})"}],
    }


def fpdot_operations(cfg, frames, inputs=None):
    """Per vector: N float multiplies, N-1 float additions (the trees and the accumulator), and
    the reads of N weights (docs/energy.md)."""
    v = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    n = cfg.lanes
    ops = [opcount.op("fmul", cfg.x_bits, v * n, f"{cfg.act_format} multiply"),
           opcount.op("fadd", cfg.x_bits, v * (n - 1), f"{cfg.act_format} add"),
           opcount.op("sram_read", cfg.x_bits * n, v, "the N weights")]
    notes = ["bf16 priced as fp16 (Horowitz gives fp16 and fp32)"] \
        if cfg.act_format == "bf16" else []
    return opcount.counts(v, "one dot-product vector", ops, notes)


# Every format, tree depths 0..2 with an odd level (simd 3), and folds of 1 and several; deep:
# the benchmark's shape, fold trees with an odd level (F = 3, 5, 6) and none (F = 1); subsets of
# the cuts: the fp16 benchmark's lean one, none at all (each adder one stage, the fold tree's
# gate on its output register), and fp32's partial products as wires.
FPDOT_REGRESSION = {
    "fp32_n8_simd4": dict(lanes=8, simd=4, act_format="fp32"),
    "fp16_n6_simd3": dict(lanes=6, simd=3, act_format="fp16"),
    "bf16_n4_simd1": dict(lanes=4, simd=1, act_format="bf16"),
    "fp16_n2_simd2": dict(lanes=2, simd=2, act_format="fp16"),
    "fp32_n16_simd4_deep": dict(lanes=16, simd=4, act_format="fp32", pipeline="deep"),
    "fp16_n9_simd3_deep": dict(lanes=9, simd=3, act_format="fp16", pipeline="deep"),
    "bf16_n5_simd1_deep": dict(lanes=5, simd=1, act_format="bf16", pipeline="deep"),
    "fp16_n12_simd2_deep": dict(lanes=12, simd=2, act_format="fp16", pipeline="deep"),
    "fp32_n2_simd2_deep": dict(lanes=2, simd=2, act_format="fp32", pipeline="deep"),
    "fp16_n12_simd4_deep_lean": dict(lanes=12, simd=4, act_format="fp16", pipeline="deep",
                                     mul_cuts=["product", "round"],
                                     add_cuts=["compare", "align", "lead"]),
    "bf16_n6_simd2_deep_nocuts": dict(lanes=6, simd=2, act_format="bf16", pipeline="deep",
                                      mul_cuts=[], add_cuts=[]),
    "fp32_n10_simd2_deep_cuts": dict(lanes=10, simd=2, act_format="fp32", pipeline="deep",
                                     mul_cuts=["round"], add_cuts=["compare", "normalise"]),
}

FPDOT = register(Unit(
    name="fpdot",
    summary="conventional float dot product: IEEE multipliers, rounding adder tree and accumulator",
    config=g.FpDotConfig,
    generator=fpdot_hdl.FpDot,
    golden=g.fpdot_reference,
    testbench="qhw.cosim.tb_fpdot",
    cost_model=fpdot_hdl.cost_model,
    check_params=g.fpdot_check_params,
    random_params=g.fpdot_random_params,
    check_inputs=g.fpdot_check_inputs,
    random_inputs=g.fpdot_random_inputs,
    pack_inputs=lambda cfg, x: {"i": g.fpdot_pack_inputs(cfg, x)},
    unpack_outputs=lambda cfg, words, frames: g.fpdot_unpack_outputs(cfg, words["o"], frames),
    output_words=lambda cfg, frames: {"o": frames},
    output_axes=("vector",),
    describe=_describe,
    default_config={"lanes": 16, "simd": 4, "act_format": "fp32"},
    regression=FPDOT_REGRESSION,
    operations=fpdot_operations,
))
