"""The 8-bit-activation DNSMOS student as an integer qhw network (the binary accelerator's
comparison point): the network golden model equals the same integer arithmetic written with
PyTorch on full 9.01 s windows, the integers stay within a few hundredths of a MOS of the float
8-bit student, the shipped design point and weights are what the export gives, folded as the
binary ECP5 design point; and its RTL on a short input is bit-exact with the cycles of
its cost model."""

import pathlib
import tomllib

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from qhw import flow, registry  # noqa: E402
from qhw.config import config_from_dict  # noqa: E402
from qhw.dnsmos import features, int8net, student, train  # noqa: E402
from dnsmos_clips import speech_like  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples" / "networks"
UNIT = registry.get("network")


@pytest.fixture(scope="module")
def export():
    return int8net.load_export()


@pytest.fixture(scope="module")
def windows():
    return student.quantize_features(
        np.concatenate([features.clip_features(speech_like(s)) for s in range(2)]))


def test_golden_equals_pytorch_integer_forward_and_float_student(export, windows):
    params, shifts, mos_scale = int8net.integer_params(export)
    cfg = config_from_dict(UNIT.config, int8net.network_description(shifts, 900))
    got = UNIT.golden(cfg, UNIT.check_params(cfg, params), {"activations": windows[..., None]})
    sums = int8net.integer_forward(params, shifts, windows)
    np.testing.assert_array_equal(got[:, 0, 0, 0], sums)
    # The same integers with separate requant layers (the unfused comparison design).
    unfused, _, _ = int8net.integer_params(export, fused=False)
    cfg = config_from_dict(UNIT.config, int8net.network_description(shifts, 900, fused=False))
    assert [l.kind for l in cfg.resolved].count("requant") == 7
    got = UNIT.golden(cfg, UNIT.check_params(cfg, unfused), {"activations": windows[..., None]})
    np.testing.assert_array_equal(got[:, 0, 0, 0], sums)
    assert np.ptp(sums) > 0
    # Integer biases and 16-bit multipliers: within 0.03 MOS of the float 8-bit student
    # (measured on the corpus's test windows: at most 0.021, on average 0.004).
    mos = int8net.mos_from_sum(sums, mos_scale)
    np.testing.assert_allclose(mos, train.int8_forward(export, windows), atol=0.03)


def test_requant_scales_are_the_students(export):
    """M / 2**shift is s_w * a_in / a_out to 16 bits for each layer's largest channel."""
    params, shifts, _ = int8net.integer_params(export)
    act = export["act_scale"]
    for k, name in enumerate(["conv1", "conv2", "conv3", "conv4", "conv5", "dense1", "dense2"]):
        a_in = 1 / student.INPUT_SCALE if k == 0 else act[k - 1]
        want = export[f"{name}.scale"].astype(np.float64) * a_in / act[k]
        got = params[f"{name}.multipliers"] / 2.0 ** shifts[name]
        assert params[f"{name}.multipliers"].max() >= 1 << 15
        np.testing.assert_allclose(got, want, rtol=2.0 ** -15 * want.max() / want.min())


def test_shipped_design_point_and_weights(export):
    desc = tomllib.loads((EXAMPLES / "dnsmos_ecp5_int8.toml").read_text())
    assert desc == int8net.design_point_description("dnsmos_ecp5", export)
    shipped = dict(np.load(EXAMPLES / "dnsmos_int8_net.npz"))
    params, _, _ = int8net.integer_params(export)
    assert shipped.keys() == params.keys()
    for k in params:
        np.testing.assert_array_equal(shipped[k], params[k])
    cfg = config_from_dict(UNIT.config, desc)
    binary = student.design_point_config("dnsmos_ecp5")
    fold = {l.name: (l.config.pe, l.config.simd) for l in binary.resolved
            if hasattr(l.config, "simd")}
    assert {l.name: (l.config.pe, l.config.simd) for l in cfg.resolved
            if hasattr(l.config, "simd")} == fold
    assert all(l.config.output == "requant" for l in cfg.resolved
               if l.kind in ("macconv", "dense") and l.name != "dense3")
    # The fused requantization costs no cycles per pixel: the same steady throughput.
    assert UNIT.describe(cfg)["estimate_network_performance"]["max_cycles"] == \
        UNIT.describe(binary)["estimate_network_performance"]["max_cycles"]


def test_short_input_rtl_is_bit_exact_with_model_cycles(windows):
    """The 8-bit design point on 8 frames: Verilator output == golden, cycles == model."""
    desc = tomllib.loads((EXAMPLES / "dnsmos_ecp5_int8.toml").read_text())
    desc["input"]["height"] = 8
    cfg = config_from_dict(UNIT.config, desc)
    params = dict(np.load(EXAMPLES / "dnsmos_int8_net.npz"))
    inputs = UNIT.check_inputs(cfg, {"activations": windows[:1, 100:108, :, None]})
    run, mismatch = flow.check_rtl(UNIT, cfg, params, inputs, fast=True)
    assert mismatch is None, mismatch
    assert run.cycles == UNIT.cost_model(cfg, 1, inputs).expected
