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


@pytest.mark.parametrize("inputs, outputs, simd, fp32", [(64, 16, 1, True), (64, 64, 2, False),
                                                         (32, 8, 4, True)])
def test_designs_have_equal_cycles_per_frame(inputs, outputs, simd, fp32):
    _, _, built = _built(inputs, outputs, simd, fp32)
    kinds = sorted({cfg.resolved[0].kind for _, _, cfg, _ in built})
    assert kinds == ["dense", "expdot", "fpdot"]
    assert len(built) == (6 if fp32 else 4)
    for label, _, cfg, _ in built:
        layer = cfg.resolved[0]
        assert steady_cycles(layer) == inputs // simd, label
        # and over many frames, from the composed model (first-frame latency aside)
        model = bench.NETWORK.cost_model
        assert model(cfg, 9).expected - model(cfg, 4).expected == 5 * inputs // simd, label
        assert layer.out_shape == (1, 1, outputs)


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
