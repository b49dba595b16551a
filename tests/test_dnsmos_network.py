"""The binary DNSMOS student as a qhw network: the export is bit-exact (student eval forward ==
PyTorch integer forward on the exported integers == the network golden model), the shipped
network files agree with the student, and the RTL of the same network on a shorter input is
bit-exact in Verilator with the cycles of its cost model."""

import json
import pathlib
import tomllib

import numpy as np
import pytest
import torch

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.dnsmos import features, student
from qhw.golden import network as golden_network
from dnsmos_clips import speech_like as _clip

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples" / "networks"
UNIT = registry.get("network")


@pytest.fixture(scope="module")
def shipped():
    params = dict(np.load(EXAMPLES / "dnsmos_bam.npz"))
    info = json.loads((EXAMPLES / "dnsmos_bam.json").read_text())
    return params, info


@pytest.fixture(scope="module")
def windows():
    return np.concatenate([features.clip_features(_clip(s)) for s in range(3)])


def test_network_golden_equals_pytorch_integer_forward(shipped, windows):
    """The outside oracle (torch conv2d / max_pool2d / matmul on the exported integers) and
    the composition of qhw's unit goldens agree on full 9.01 s windows."""
    params, _ = shipped
    cfg = config_from_dict(golden_network.NetworkConfig, student.network_description(900))
    xq = student.quantize_features(windows)
    expected = student.integer_forward(params, xq)
    got = golden_network.reference(cfg, params, {"activations": xq[..., None]})
    assert got.shape == (len(xq), 1, 1, 1)
    np.testing.assert_array_equal(got[:, 0, 0, 0], expected)


def test_student_eval_forward_equals_its_export(windows):
    """A student initialised from the teacher: its eval-mode forward (float64 on the fake
    quantized layers) gives the same MOS as the exported integers times mos_scale."""
    st = student.init_from_teacher(student.BinaryP808(), windows[:2])
    params, scale = student.export_params(st)
    xq = student.quantize_features(windows)
    st.eval()
    with torch.no_grad():
        mos = st(torch.from_numpy(xq).float()).double().numpy()
    sums = student.integer_forward(params, xq)
    np.testing.assert_allclose(mos, student.mos_from_sum(sums, scale), rtol=1e-6, atol=1e-6)
    assert np.ptp(sums) > 0  # not a constant network: the windows get different sums


def test_shipped_files_describe_the_same_network(shipped):
    """Each design point's TOML is the student's network with a folding; weights fit."""
    params, info = shipped
    for name in ("dnsmos_ecp5", "dnsmos_ice40"):
        desc = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
        cfg = config_from_dict(golden_network.NetworkConfig, desc)
        UNIT.check_params(cfg, params)
        ref = student.network_description(900)
        assert [(l["name"], l["kind"]) for l in desc["layers"]] == \
            [(l["name"], l["kind"]) for l in ref["layers"]]
    assert info["mos_scale"] > 0
    assert info["test"]["clips"] > 0


def test_short_input_rtl_is_bit_exact_with_model_cycles(shipped, windows):
    """The ECP5 design point on 8 frames of real features (the shortest input that survives
    the three pools): Verilator output == golden, cycles == the cost model."""
    params, _ = shipped
    cfg = student.design_point_config("dnsmos_ecp5", 8)
    xq = student.quantize_features(windows[:1, 100:108])[..., None]
    inputs = UNIT.check_inputs(cfg, {"activations": xq})
    run, mismatch = flow.check_rtl(UNIT, cfg, params, inputs)
    assert mismatch is None, mismatch
    model = UNIT.cost_model(cfg, 1, inputs)
    assert run.cycles == model.expected, f"measured {run.cycles}, model {model.expected}"


def test_memory_table_counts_against_hand_figures(shipped):
    """fp32 weights are the teacher's 54,945 parameters (read from the ONNX file) at 32 bits;
    the largest map pair held whole is conv1's 900 x 120 input (8 bits) and 32-channel output
    (1 bit) in the binary network (pool1's pair ties), pool1's 32 x 900 x 120 input and
    32 x 450 x 60 output in fp32; the line buffers of the binary network hold 1-bit maps except
    conv1's 8-bit input."""
    from qhw.dnsmos import memory, teacher
    params, _ = shipped
    cfg = config_from_dict(golden_network.NetworkConfig, student.network_description(900))
    table = memory.memory_table(cfg, params, fifos=[])
    n_params = sum(v.size for v in teacher.teacher_weights().values())
    assert n_params == 54945
    assert table["fp32"]["weights"] == 32 * n_params
    assert table["binary"]["frame_buffer"] == 900 * 120 * 8 + 900 * 120 * 32
    assert table["fp32"]["frame_buffer"] == (900 * 120 + 450 * 60) * 32 * 32
    # conv1: 2 rows + 3 pixels of 120 x 1 x 8 bits; pool1: (1 row + 2) x 32 x 1 bit at width 120
    conv1 = (2 * 120 + 3) * 8
    pool1 = (120 + 2) * 32
    assert table["binary"]["line_buffers"] > conv1 + pool1
    assert table["binary"]["fifos"] == 0 and table["binary"]["streaming_total"] == \
        table["binary"]["weights"] + table["binary"]["line_buffers"]
