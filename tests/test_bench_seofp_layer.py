"""bench/bench_seofp_layer.py: its designs run at equal throughput (the cost models, which the
network cosim tests tie to the RTL), with the same weight values, and its integer layers are
exact."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_seofp_layer as bench  # noqa: E402

from qhw.hdl.network import steady_cycles  # noqa: E402


def _built(inputs, outputs, simd, fp32):
    signs, ks = bench.shared_weights(outputs, inputs)
    return signs, ks, [(label, kind, *bench.build(label, spec, signs, ks))
                       for label, kind, spec in bench.designs(inputs, outputs, simd, fp32)]


# (64, 8, 4) and (64, 16, 4): the equal-throughput runs at SIMD 4 (docs/benchmarks_expmul.md)
@pytest.mark.parametrize("inputs, outputs, simd, fp32", [(64, 16, 1, True), (64, 64, 2, False),
                                                         (32, 8, 4, True), (64, 8, 4, False),
                                                         (64, 16, 4, False)])
def test_designs_have_equal_cycles_per_frame(inputs, outputs, simd, fp32):
    _, _, built = _built(inputs, outputs, simd, fp32)
    kinds = sorted({cfg.resolved[0].kind for _, _, cfg, _ in built})
    assert kinds == ["dense", "expdot", "fpdot"]
    # fp16: expdot deep with every cut and with the lean cuts, fpdot as by default, fpdot with
    # the deep pipeline; fp32 the same without the lean expdot; two integer layers
    assert len(built) == (9 if fp32 else 6)
    for label, _, cfg, _ in built:
        layer = cfg.resolved[0]
        assert steady_cycles(layer) == inputs // simd, label
        # and over many frames, from the composed model (first-frame latency aside)
        model = bench.NETWORK.cost_model
        assert model(cfg, 9).expected - model(cfg, 4).expected == 5 * inputs // simd, label
        assert layer.out_shape == (1, 1, outputs)
        assert layer.config.simd == simd, label


@pytest.mark.parametrize("simd", [1, 4])
def test_pipelined_fpdot_rows_carry_their_cuts(simd):
    """The pipelined fpdot rows reach the unit with the deep pipeline and, fp16, only the cuts
    that make 100 MHz (bench_expmul's FPDOT_FP16_CUTS, the issue-15 baseline); fp32 every cut.
    Their latency is that of those cuts, so a layer without them would show here."""
    from qhw.golden.fpdot import ADD_CUT_NAMES
    from qhw.hdl.fpdot import stages

    _, _, built = _built(64, 8, simd, True)
    deep = {cfg.input_format.kind: cfg.resolved[0].config for label, _, cfg, _ in built
            if cfg.resolved[0].kind == "fpdot" and cfg.resolved[0].config.pipeline == "deep"}
    assert sorted(deep) == ["fp16", "fp32"]
    fp16, fp32 = deep["fp16"], deep["fp32"]
    assert list(fp16.mul_cut_names) == ["product", "round"]
    assert list(fp16.add_cut_names) == ["compare", "align", "lead"]
    assert list(fp32.add_cut_names) == list(ADD_CUT_NAMES)
    # 64 lanes at SIMD s: log2(s) tree levels and log2(64 / s) levels over the fold sums, 6 in
    # all; fp16: input + 2 multiplier cuts + output, then (3 cuts + output) per adder level
    assert stages(fp16) == 2 + 2 + (3 + 1) * 6
    # fp32: the partial-product cut too, and every adder cut
    assert stages(fp32) == 2 + 3 + (len(ADD_CUT_NAMES) + 1) * 6


@pytest.mark.parametrize("simd", [1, 4])
def test_lean_expdot_row_carries_its_cuts(simd):
    """The lean expdot row reaches the unit with bench_expmul's EXPDOT_FP16_CUTS (fewer stages
    than the deep row with every cut: the cuts are not dropped on the way), the same arithmetic
    otherwise."""
    from qhw.golden.expmul import EXPDOT_CUT_NAMES
    from qhw.hdl.expdot import stages

    _, _, built = _built(64, 8, simd, False)
    deep = [cfg.resolved[0].config for _, _, cfg, _ in built
            if cfg.resolved[0].kind == "expdot" and cfg.input_format.kind == "fp16"]
    assert len(deep) == 2
    full, lean = deep
    # at SIMD 4 all of them; at SIMD 1 there is no lane-sum tree to cut
    assert list(lean.cut_names) == (["product", "shift", "tree", "lead", "normalise"] if simd == 4
                                    else ["product", "shift", "lead", "normalise"])
    assert full.cuts is None and list(full.cut_names) == [c for c in EXPDOT_CUT_NAMES
                                                          if c in full.available_cuts]
    assert stages(lean) < stages(full)
    assert lean.exp_range == full.exp_range and lean.simd == full.simd == simd


def test_frames_per_second_is_fmax_over_cycles_per_frame():
    assert bench.frames_per_second({"cycles_per_frame": 16, "ecp5": {"fmax_mhz": 100.0}}) \
        == pytest.approx(6.25e6)
    assert bench.frames_per_second({"cycles_per_frame": 16, "ecp5": {}}) is None


def test_designs_share_the_weight_values():
    signs, ks, built = _built(64, 16, 1, True)
    want = np.where(signs == 1, -1.0, 1.0) * np.exp2(ks)
    for label, _, cfg, params in built:
        layer = cfg.resolved[0]
        w = np.asarray(params["dense.weights"])
        if layer.kind == "expdot":
            values = bench.decoded_weights(layer.config, w)
        elif layer.kind == "fpdot":
            native, uint = bench.NATIVE[layer.config.act_format]
            values = w.astype(uint).view(native).astype(np.float64)
        else:
            values = w.astype(np.float64)
            assert not np.any(params["dense.bias"])
        np.testing.assert_array_equal(values, want, err_msg=label)


def test_integer_layers_are_exact_and_float_accuracy_is_measured():
    signs, ks, built = _built(16, 4, 1, False)
    acc = bench.accuracy(built, signs, ks, vectors=20)
    ints = [label for label, kind, _, _ in built if kind == "int"]
    assert len(ints) == 2
    for label in ints:  # checked against int64 sums computed apart from the layers
        assert acc[label]["exact"] and acc[label]["equal_to_other_int_layer"], acc[label]
    floats = [label for label, kind, _, _ in built if kind == "float"]
    for label in floats:
        assert acc[label]["results"] == 20 * 4
        assert 0 <= acc[label]["mean_ulp"] <= acc[label]["max_ulp"]
    expdot = next(label for label in floats if label.startswith("expdot"))
    assert acc[expdot]["correctly_rounded"] > 0.9  # one rounding of a (bounded) exact sum
