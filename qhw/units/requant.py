"""Registration of the requantization unit ``requant`` (docs/requant.md)."""

from ..golden import requant as golden
from ..hdl import requant as hdl
from ..registry import Unit, register
from . import opcount


def _describe(cfg):
    e, b = cfg.in_bits, cfg.out_bits
    lo, hi = golden.out_range(cfg)
    rounding = (f"floor((x * M_c + 2**{cfg.shift - 1}) / 2**{cfg.shift})" if cfg.shift
                else "x * M_c")
    return {
        "derived": {"folds": cfg.fold, "product_bits": golden.product_bits(cfg),
                    "operation": f"clamp({rounding}, {lo}, {hi})"},
        "streams": {
            "i": {"direction": "in", "payload_bits": cfg.c_in * e,
                  "layout": f"one input pixel per transfer, row-major; channel c at bits "
                            f"[{e}*c, {e}*c+{e}), signed"},
            "o": {"direction": "out", "payload_bits": cfg.c_in * b,
                  "layout": f"one output pixel per transfer, row-major; channel c at bits "
                            f"[{b}*c, {b}*c+{b}), " + ("signed" if cfg.out_signed else
                                                        "unsigned")},
        },
        "memories": [],
    }


def operations(cfg, frames, inputs=None):
    """Per value: one multiplication (in_bits x mult_bits), one add (the rounding term) and two
    compares (the saturation)."""
    n = opcount.batch_size(inputs) if inputs is not None else opcount.frames_count(frames)
    values = n * cfg.positions * cfg.c_in
    pb = golden.product_bits(cfg)
    ops = [opcount.op("mul", [cfg.in_bits, cfg.mult_bits], values, "x * M_c"),
           opcount.op("add", pb, values if cfg.shift else 0, "the rounding term"),
           opcount.op("add", pb - cfg.shift, 2 * values, "saturation compares")]
    return opcount.counts(n, "one frame (H x W x C values)", ops,
                          ["the multipliers are constants in logic: no memory reads counted"])


# Rounding ties and saturation both ways, a zero multiplier, shift 0 (no rounding), signed
# outputs, folds of 1 (pe = C) and of C (pe = 1), a wide input (a DNSMOS conv sum).
REGRESSION = {
    "u8_c4_pe1": dict(c_in=4, height=2, width=3, in_bits=12, out_bits=8, mult_bits=8, shift=6),
    "u8_c6_pe3": dict(c_in=6, height=1, width=4, in_bits=20, out_bits=8, mult_bits=16,
                      shift=18, pe=3),
    "s4_c3_pe3_shift0": dict(c_in=3, height=2, width=2, in_bits=6, out_bits=4, out_signed=True,
                             mult_bits=3, shift=0, pe=3),
    "u8_c8_pe2_wide": dict(c_in=8, height=2, width=2, in_bits=26, out_bits=8, mult_bits=16,
                           shift=30, pe=2),
}


REQUANT = register(Unit(
    name="requant",
    summary="per-channel fixed-point requantization of sums to (unsigned) activation codes",
    config=golden.RequantConfig,
    generator=hdl.Requant,
    golden=golden.reference,
    testbench="qhw.cosim.tb_requant",
    cost_model=hdl.cost_model,
    check_params=golden.check_params,
    random_params=golden.random_params,
    check_inputs=golden.check_inputs,
    random_inputs=golden.random_inputs,
    pack_inputs=golden.pack_inputs,
    unpack_outputs=golden.unpack_outputs,
    output_words=golden.output_words,
    output_axes=("frame", "row", "column", "channel"),
    describe=_describe,
    default_config={"c_in": 16, "height": 8, "width": 8, "in_bits": 20, "out_bits": 8,
                    "mult_bits": 16, "shift": 20, "pe": 4},
    regression=REGRESSION,
    operations=operations,
    timing=hdl.timing,
    frames=golden.frames,
))
