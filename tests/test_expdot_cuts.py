"""``expdot`` with ``pipeline: "deep"`` and a subset of its cuts (``cuts``): latency only.

* Bad ``cuts`` give a one-line error naming the field and the names this configuration has.
* The latency of subsets, counted by hand from the stages each cut adds, equals the cost model;
  naming every cut is the default and the same Verilog.
* RTL with subsets (the fp16 benchmark's lean one among them): bit-exact against the golden
  model with random stalls, cycles equal the cost model without, and the in-range vectors
  against a Fraction oracle of the exact sum rounded once (:mod:`float_oracle`, written apart
  from the golden model), so the cuts cannot have changed the arithmetic. The registry's
  regression configs ``*_cuts`` (float, fixed point, rounded) also run in
  tests/test_expmul_cosim.py.
"""

from fractions import Fraction

import numpy as np
import pytest

from config_errors import assert_config_error
from float_oracle import nearest, to_float64
from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.golden import expmul as g
from qhw.hdl import expdot as hdl
from qhw.hdl.common import to_verilog

from test_expdot_bounded import _in_range_vectors

UNIT = registry.get("expdot")
FP16_BOUNDED = {"lanes": 16, "simd": 4, "act_format": "fp16", "weight_exp_bits": 5,
                "weight_bias": 15, "accumulator": "bounded", "exp_range": [-14, 4],
                "pipeline": "deep"}
FIXED16 = {"lanes": 8, "simd": 4, "act_format": "fixed", "act_bits": 16, "weight_exp_bits": 3,
           "weight_bias": 4, "product": "exact", "pipeline": "deep"}
#: The bench's lean fp16 subset (docs/benchmarks_expmul.md, run F): no register after the
#: alignment's shift amounts, the signed lane values, the lane sum, |sum|
LEAN = ["product", "shift", "tree", "lead", "normalise"]


def _cfg(base=FP16_BOUNDED, **fields):
    return config_from_dict(g.ExpDotConfig, {**base, **fields})


@pytest.mark.parametrize("fields, words", [
    ({"cuts": ["align"]}, ["cuts", "only with pipeline 'deep'", "'compact'"]),
    ({"pipeline": "deep", "cuts": ["align", "round"]}, ["cuts", "'normalise'", "'round'"]),
    ({"pipeline": "deep", "cuts": ["sum", "sum"]}, ["cuts", "distinct"]),
    ({"pipeline": "deep", "cuts": "product"}, ["cuts", "list"]),
    # names this configuration does not have: fixed point has no exponent, shift or rounding;
    # simd 2 no "tree"; simd 1 no "sum"; the rounded accumulator no pipelined rounding
    ({"pipeline": "deep", "act_format": "fixed", "cuts": ["shift"]},
     ["cuts", "'product', 'align', 'tree', 'sum'"]),
    ({"pipeline": "deep", "simd": 2, "cuts": ["tree"]}, ["cuts", "'align', 'sum', 'abs'"]),
    ({"pipeline": "deep", "simd": 1, "cuts": ["sum"]}, ["cuts", "'align', 'abs'"]),
    ({"pipeline": "deep", "accumulator": "rounded", "cuts": ["abs"]},
     ["cuts", "'tree', 'sum' (this"]),
])
def test_cut_config_errors_name_the_field(fields, words):
    message = assert_config_error(g.ExpDotConfig, {"lanes": 8, "simd": 4, "act_format": "fp16",
                                                   "weight_exp_bits": 4, "weight_bias": 8,
                                                   **fields}, words)
    assert message.startswith("cuts:"), message


def test_cut_names_in_pipeline_order():
    cfg = _cfg(cuts=["normalise", "product", "sum"])
    assert cfg.cut_names == ("product", "sum", "normalise")       # pipeline order, as given or not
    assert _cfg().cut_names == g.EXPDOT_CUT_NAMES                  # float, simd 4: every name
    assert _cfg(pipeline="compact").cut_names == ()
    assert _cfg(FIXED16).available_cuts == ("product", "align", "tree", "sum")
    rounded = _cfg(accumulator="rounded", exp_range=None, simd=2, lanes=8)
    assert rounded.available_cuts == ("product", "exponent", "shift", "align", "sum")


def test_stages_counted_by_hand():
    """Latency = input register + one stage per registered cut ("tree": ceil(log2 simd) - 1) +
    the accumulator + the output register (float: the rounding's last stage)."""
    # every cut: input, product, exponent, shift, align, tree (1 level), sum, accumulator,
    # abs, lead, normalise, output
    assert hdl.stages(_cfg()) == 12
    # the lean subset: input, product, shift, tree, accumulator, lead, normalise, output
    lean = _cfg(cuts=LEAN)
    assert hdl.stages(lean) == 8
    model = hdl.cost_model(lean, frames=10)
    assert (model.latency, model.expected) == (8, 4 * 10 + 8)
    # no cuts: input, accumulator, output (the alignment, lane sum and rounding are wires)
    assert hdl.stages(_cfg(cuts=[])) == 3
    # simd 8: "tree" is two levels (input, tree x 2, accumulator, output)
    assert hdl.stages(_cfg(simd=8, cuts=["tree"])) == 5
    assert hdl.stages(_cfg(simd=8)) == 13
    # fixed point: input, align, accumulator, output
    assert hdl.stages(_cfg(FIXED16, cuts=["align"])) == 4
    assert hdl.stages(_cfg(FIXED16)) == 7             # input, product, align, 2 levels, acc, out
    # rounded: input, product, sum, the accumulator's loop, output
    rounded = _cfg(accumulator="rounded", exp_range=None, cuts=["product", "sum"])
    assert hdl.stages(rounded) == 5
    assert hdl.cost_model(rounded, frames=3).expected == 4 * 3 + 5


@pytest.mark.parametrize("base", [
    FP16_BOUNDED,
    {**FP16_BOUNDED, "accumulator": "rounded", "exp_range": None, "simd": 2, "lanes": 6},
    FIXED16,
])
def test_every_cut_named_is_the_default(base):
    default = _cfg(base)
    full = _cfg(base, cuts=list(reversed(default.available_cuts)))
    assert full.cut_names == default.cut_names == default.available_cuts
    assert hdl.stages(full) == hdl.stages(default)
    params = UNIT.random_params(default, np.random.default_rng(0))
    assert to_verilog(hdl.ExpDot(full, params), "expdot") == \
        to_verilog(hdl.ExpDot(default, params), "expdot")
    # and a subset is another design (the test above cannot pass by ignoring cuts)
    fewer = _cfg(base, cuts=list(default.available_cuts[1:]))
    assert to_verilog(hdl.ExpDot(fewer, params), "expdot") != \
        to_verilog(hdl.ExpDot(default, params), "expdot")


@pytest.mark.parametrize("cuts, out_of_range", [
    (LEAN, "saturate"), ([], "flag"), (["exponent", "align", "abs"], "saturate")])
def test_subset_rtl_bit_exact_stalls_and_oracle(cuts, out_of_range):
    """8 lanes, SIMD 4, fp16 bounded (-6, 5): in-range vectors (exact sum, one rounding) and
    random ones (above, below the range, special values)."""
    cfg = config_from_dict(g.ExpDotConfig, {
        "lanes": 8, "simd": 4, "act_format": "fp16", "weight_exp_bits": 3, "weight_bias": 3,
        "accumulator": "bounded", "exp_range": [-6, 5], "out_of_range": out_of_range,
        "pipeline": "deep", "cuts": cuts})
    rng = np.random.default_rng(len(cuts) + 11)
    params = UNIT.check_params(cfg, {"weights": g.random_codes(cfg, rng, cfg.lanes)})
    inside = _in_range_vectors(cfg, params["weights"], rng, 12)
    x = np.concatenate([inside, UNIT.random_inputs(cfg, rng, 12)])
    expected = UNIT.golden(cfg, params, x)
    run = flow.rtlsim(UNIT, cfg, params, x)
    assert flow.first_mismatch(UNIT, run, expected) is None
    model = UNIT.cost_model(cfg, x.shape[0])
    assert (run.cycles, run.latency) == (model.expected, model.latency)
    # the oracle: each in-range output is the exact sum of the products rounded once
    products = to_float64(g.expmul_ref(cfg, inside, params["weights"][None, :]), "fp16")
    got = to_float64(run.outputs[:len(inside)], "fp16")
    for v in range(len(inside)):
        total = sum((Fraction(float(p)) for p in products[v]), Fraction(0))
        assert float(got[v]) == nearest(total, "fp16", cfg.overflow), v
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.4, stall_out=0.5, seed=3)
    message = flow.first_mismatch(UNIT, run, expected)
    assert message is None, message
