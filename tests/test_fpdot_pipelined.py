"""``fpdot`` with ``pipeline: "deep"``: its order of operations against IEEE arithmetic written
outside this project, and its RTL under stress.

Oracle: NumPy float32 / float16 and PyTorch bfloat16 (``Native`` of :mod:`test_golden_fpdot`)
performing the deep order: products, a pairwise tree per fold, then a pairwise tree over the fold
sums (odd last passed up at every level), on normal-range data where no subnormal occurs (so IEEE
and the unit's flush policy agree), also as a hypothesis property over formats, lanes and SIMD.
The RTL (cocotb + Verilator): the registry's regression configurations, deep ones included, are
run by ``test_fpdot_cosim`` (bit-exact, cycles = the cost model, random stalls); here the adder
stress vectors and directed special values go through the deep pipeline with stalls, and the
fold-tree's pass-through (t + signed zero) is checked over every fp16 value. Subsets of the
cuts (``mul_cuts``, ``add_cuts``) change the latency only: the registry's regression configs
include three (cycles = model, stalls), and the adder stress goes through two of them.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import expmul as gexp
from qhw.golden import fpdot as g
from qhw.hdl import fpdot as hdl
from qhw.hdl import mulbase
from qhw.hdl.common import to_verilog

from test_fpdot_cosim import _ones, stress_vectors
from test_golden_fpdot import Native, normal_range, to_float64

UNIT = registry.get("fpdot")
ONE, NEG = 0x3F800000, 1 << 31


def native_deep(cfg, x, w):
    """The deep order by the format's own arithmetic: (bits, flagged: a subnormal occurred)."""
    nat, fmt = Native(cfg.act_format), cfg.fmt
    x = np.asarray(x, dtype=np.int64)
    flagged = np.zeros(x.shape[0], dtype=bool)

    def add(u, v):
        nonlocal flagged
        s, sub = nat.op(lambda a, b: a + b, u, v)
        flagged |= sub
        return s

    def pairwise(vals):
        while len(vals) > 1:
            nxt = [add(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]
            vals = nxt + ([vals[-1]] if len(vals) % 2 else [])
        return vals[0]

    p, sub = nat.op(lambda a, b: a * b, x, np.broadcast_to(w, x.shape), product=True)
    flagged |= sub.any(axis=1)
    roots = [pairwise([p[:, f * cfg.simd + s] for s in range(cfg.simd)])
             for f in range(cfg.fold)]
    out = pairwise(roots)
    nan = ((out >> fmt.mbits) & fmt.emask == fmt.emask) & ((out & fmt.mmask) != 0)
    return np.where(nan, gexp.qnan(fmt), out), flagged


DEEP_CASES = [("fp32", 16, 4), ("fp32", 24, 4), ("fp32", 5, 1), ("fp32", 8, 8),
              ("fp16", 9, 3), ("fp16", 12, 2), ("bf16", 10, 2), ("bf16", 7, 1)]


@pytest.mark.parametrize("name, lanes, simd", DEEP_CASES)
def test_deep_order_equals_native_sequence(name, lanes, simd):
    cfg = g.FpDotConfig(lanes=lanes, simd=simd, act_format=name, pipeline="deep")
    rng = np.random.default_rng(lanes * 10 + simd + 7)
    band = 2 if name == "fp16" else 12   # fp16: no cancellation can leave a subnormal
    x = normal_range(cfg.fmt, rng, (20_000, lanes), band)
    w = normal_range(cfg.fmt, rng, lanes, band)
    got = g.fpdot_ref(cfg, x, w)
    want, flagged = native_deep(cfg, x, w)
    assert not flagged.any()
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} mismatches; vector {bad[0]}: {got[bad[0]]:#x} "
                           f"{want[bad[0]]:#x}")
    if cfg.fold > 3:
        # not vacuous: the order differs from the accumulator loop's on a share of the vectors
        # (up to 3 folds, (t0 + t1) + t2 is both orders)
        loop = g.fpdot_ref(g.FpDotConfig(lanes=lanes, simd=simd, act_format=name), x, w)
        assert (loop != got).mean() > 0.01


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["fp32", "fp16", "bf16"]), fold=st.integers(1, 9),
       simd=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_deep_order_property(name, fold, simd, seed):
    """Any format, fold count and SIMD: the golden deep order is the native pairwise order."""
    cfg = g.FpDotConfig(lanes=fold * simd, simd=simd, act_format=name, pipeline="deep")
    rng = np.random.default_rng(seed)
    band = 2 if name == "fp16" else 12
    x = normal_range(cfg.fmt, rng, (200, cfg.lanes), band)
    w = normal_range(cfg.fmt, rng, cfg.lanes, band)
    want, flagged = native_deep(cfg, x, w)
    got = g.fpdot_ref(cfg, x, w)
    assert ((got == want) | flagged).all()
    assert flagged.mean() < 0.05


def test_deep_order_directed():
    """simd 1, four folds: the loop ((a + b) + c) + d against the tree (a + b) + (c + d)."""
    big = 0x4B800000                                    # 2^24; its ulp is 2
    x = np.array([[big, ONE, ONE, ONE]])
    w = np.full(4, ONE)
    # loop: 2^24 + 1 -> 2^24 (tie, even), twice more: 2^24
    assert int(g.fpdot_ref(g.FpDotConfig(4, 1), x, w)[0]) == big
    # tree: (2^24 + 1) -> 2^24, 1 + 1 = 2, 2^24 + 2 exact
    assert int(g.fpdot_ref(g.FpDotConfig(4, 1, pipeline="deep"), x, w)[0]) == big + 1
    # IEEE float32 agrees on both
    f = np.float32
    assert (f(f(f(2**24) + f(1)) + f(1)) + f(1)) == f(2**24)
    assert (f(f(2**24) + f(1)) + f(f(1) + f(1))) == f(2**24 + 2)


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_pass_through_is_identity_on_every_value(name):
    """The fold tree passes an odd last sum t up as t + (+-0 with t's sign): the identity on
    every value a multiplier or an adder gives (all but subnormals and non-canonical NaNs)."""
    fmt = gexp.FLOAT_FORMATS[name]
    t = np.arange(1 << 16, dtype=np.int64)
    e, man = (t >> fmt.mbits) & fmt.emask, t & fmt.mmask
    keep = ~((e == 0) & (man != 0)) & ~((e == fmt.emask) & (man != 0))
    t = np.append(t[keep], gexp.qnan(fmt))
    got = g.fp_add_ref(fmt, t, t & (1 << (fmt.width - 1)))
    assert (got == t).all()


def test_pass_through_is_identity_fp32():
    fmt = gexp.FLOAT_FORMATS["fp32"]
    rng = np.random.default_rng(5)
    t = rng.integers(0, 1 << 32, 1_000_000, dtype=np.int64)
    e, man = (t >> fmt.mbits) & fmt.emask, t & fmt.mmask
    t = t[~((e == 0) & (man != 0)) & ~((e == fmt.emask) & (man != 0))]
    t = np.concatenate([t, [0, NEG, 0x7F800000, 0xFF800000, gexp.qnan(fmt), 0x7F7FFFFF]])
    assert (g.fp_add_ref(fmt, t, t & NEG) == t).all()


def test_stages_and_cycles_of_the_benchmark_shape():
    """16 lanes, SIMD 4: input register, 3 multiplier stages (fp32: 4, partial products), 2
    in-fold and 2 fold-tree levels of 6 adder stages: 28 (fp32: 29); one fold per cycle (4
    cycles per vector)."""
    for fmt, latency in (("fp16", 28), ("bf16", 28), ("fp32", 29)):
        cfg = g.FpDotConfig(16, 4, fmt, pipeline="deep")
        assert (cfg.tree_levels, cfg.fold_levels, hdl.ADD_CUTS) == (2, 2, 5)
        model = hdl.cost_model(cfg, frames=10)
        assert (model.latency, model.expected) == (latency, 4 * 10 + latency)
    assert hdl.stages(g.FpDotConfig(16, 4, "fp32")) == 5   # the default design is unchanged


def test_config_error_names_the_field():
    with pytest.raises(QhwInputError) as e:
        config_from_dict(g.FpDotConfig, {"lanes": 8, "simd": 2, "pipeline": "fast"})
    assert "pipeline" in str(e.value) and "'deep'" in str(e.value)


@pytest.mark.parametrize("fields, words", [
    ({"add_cuts": ["align"]}, ["add_cuts", "only with pipeline 'deep'"]),
    ({"pipeline": "deep", "add_cuts": ["align", "shift"]}, ["add_cuts", "'normalise'"]),
    ({"pipeline": "deep", "mul_cuts": ["round", "round"]}, ["mul_cuts", "distinct"]),
    ({"pipeline": "deep", "mul_cuts": "product"}, ["mul_cuts", "list"]),
    ({"pipeline": "deep", "act_format": "fp16", "mul_cuts": ["partial"]},
     ["mul_cuts", "'partial' only for fp32"]),
])
def test_cut_config_errors_name_the_field(fields, words):
    with pytest.raises(QhwInputError) as e:
        config_from_dict(g.FpDotConfig, {"lanes": 8, "simd": 2, **fields})
    assert all(w in str(e.value) for w in words), str(e.value)


def test_cut_subsets_stages_and_cycles():
    """Latency = input register + (multiplier cuts + 1) + (adder cuts + 1) per adder level,
    counted by hand for the benchmark shape (2 in-fold and 2 fold-tree levels)."""
    def cfg(fmt, **cuts):
        return config_from_dict(g.FpDotConfig, {"lanes": 16, "simd": 4, "act_format": fmt,
                                                "pipeline": "deep", **cuts})
    # the fp16 benchmark's: both multiplier cuts, adder cuts after the magnitude compare, the
    # alignment and the leading-one detection: 1 + 3 + 4 levels x 4
    lean = cfg("fp16", mul_cuts=["round", "product"], add_cuts=["lead", "compare", "align"])
    assert lean.add_cut_names == ("compare", "align", "lead")   # pipeline order, as given or not
    assert lean.mul_cut_names == ("product", "round")
    assert hdl.cost_model(lean, frames=10).latency == 1 + 3 + 4 * 4
    assert hdl.cost_model(lean, frames=10).expected == 4 * 10 + 20
    # no cuts: 1 + 1 + 4 x 1
    assert hdl.stages(cfg("bf16", mul_cuts=[], add_cuts=[])) == 6
    # fp32 keeps its partial products as wires unless "partial" is named
    assert hdl.stages(cfg("fp32", mul_cuts=["round"], add_cuts=["compare"])) == 1 + 2 + 4 * 2
    # naming every cut is the default, and the same Verilog
    for fmt, mul in (("fp16", ["product", "round"]), ("fp32", ["partial", "product", "round"])):
        full = cfg(fmt, mul_cuts=mul, add_cuts=list(g.ADD_CUT_NAMES))
        default = cfg(fmt)
        assert full.mul_cut_names == default.mul_cut_names == tuple(mul)
        assert hdl.stages(full) == hdl.stages(default)
        params = UNIT.random_params(default, np.random.default_rng(0))
        assert (to_verilog(hdl.FpDot(full, params), "fpdot")
                == to_verilog(hdl.FpDot(default, params), "fpdot"))
    # the golden count of multiplier cuts matches the generator's
    for fmt in ("fp32", "fp16", "bf16"):
        assert len(cfg(fmt).mul_cut_names) == mulbase.mul_cuts(gexp.FLOAT_FORMATS[fmt])


@pytest.mark.parametrize("fmt_name, lanes, simd, cuts", [
    ("fp32", 6, 2, {}), ("fp16", 8, 2, {}),
    ("fp16", 8, 2, {"mul_cuts": ["product", "round"], "add_cuts": ["compare", "align", "lead"]}),
    ("bf16", 6, 2, {"mul_cuts": [], "add_cuts": ["add"]})])
def test_deep_adder_stress_with_stalls(fmt_name, lanes, simd, cuts):
    """Weights 1.0: the in-fold adders and the fold tree (3 folds: a pass-through; 4: two
    levels) see operand pairs that cancel, carry, tie and align over the shifter's range; with
    every cut and with subsets (the fp16 benchmark's, and one adder cut only)."""
    cfg = g.FpDotConfig(lanes=lanes, simd=simd, act_format=fmt_name, pipeline="deep", **cuts)
    x = stress_vectors(cfg.fmt, np.random.default_rng(13), 800, cfg.lanes)
    params = _ones(cfg)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.2, stall_out=0.3, seed=8)
    message = flow.first_mismatch(UNIT, run, UNIT.golden(cfg, params, x))
    assert message is None, message
    assert (run.outputs == 0).any()


def test_deep_directed_special_values():
    cfg = g.FpDotConfig(lanes=6, simd=2, act_format="fp32", pipeline="deep")
    inf, big = 0x7F800000, 0x7F7FFFFF
    x = np.array([
        [inf, ONE, ONE, ONE, ONE, ONE], [ONE, ONE, inf, ONE, inf | NEG, ONE],
        [0xFFC00123, ONE, ONE, ONE, ONE, ONE], [big, big, big | NEG, big | NEG, 0, 0],
        [NEG, NEG, NEG, NEG, NEG, NEG], [0, NEG, NEG, NEG, NEG, NEG],
        [ONE, ONE, ONE, ONE, ONE | NEG, NEG],           # the pass-through of -1: 4 + -1
        [NEG, NEG, NEG, NEG, ONE, NEG],                 # -0 + -0 then + 1
        [0x00C00000, NEG | 0x00800000, 0, 0, 1, 2],     # flushed sum, subnormal inputs
    ])
    params = _ones(cfg)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_out=0.3, seed=2)
    message = flow.first_mismatch(UNIT, run, UNIT.golden(cfg, params, x))
    assert message is None, message
    # by IEEE rules: inf + finite; inf - inf (NaN); NaN; MAX + MAX = inf, -inf: NaN; -0; +0;
    # 2 + 2 + -1 = 3; 1; 0
    assert [int(v) for v in run.outputs] == [
        inf, gexp.qnan(cfg.fmt), gexp.qnan(cfg.fmt), gexp.qnan(cfg.fmt), NEG, 0,
        0x40400000, ONE, 0]
