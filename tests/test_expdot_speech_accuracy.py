"""The recorded-activation accuracy of bench/bench_expmul.py (``--seofp-only``), on a tiny input.

* conv2's inputs (P.808's conv1, ReLU, 2x2 max pool in NumPy) equal the PyTorch rebuild's;
* the im2col pieces and their weight rows recompose PyTorch's conv2 at sampled positions;
* the weight codes are the log-domain rounding of :func:`qhw.golden.expmul_torch.seofp_quantize`;
* the whole recording and accuracy run on two short clips: shapes, the cache, and the full-range
  accumulator correctly rounded on every vector (fp32).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qhw.config import config_from_dict
from qhw.dnsmos import teacher
from qhw.golden import expmul as g
from qhw.golden import expmul_torch as gt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import bench_expmul as bench  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return teacher.TeacherP808()


def test_conv2_inputs_equal_the_torch_teacher(model):
    feats = np.random.default_rng(0).uniform(-1, 1, size=(2, 22, 17)).astype(np.float32)
    with torch.no_grad():
        h = torch.relu(model.conv1(torch.from_numpy(feats)[:, None]))
        want = torch.nn.functional.max_pool2d(h, 2).numpy()
    got = bench.conv1_pool_maps(feats)
    assert got.shape == want.shape == (2, 32, 11, 8)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_im2col_pieces_recompose_conv2(model):
    rng = np.random.default_rng(1)
    maps = np.maximum(rng.normal(size=(2, 32, 6, 5)), 0).astype(np.float32)
    weight = teacher.teacher_weights()["conv2.weight"]
    with torch.no_grad():
        want = torch.nn.functional.conv2d(torch.from_numpy(maps), model.conv2.weight,
                                          padding=1).numpy()
    pieces = weight.shape[1] // 16 * 9                      # rows per output channel: 18
    for n, o, t, f in [(0, 0, 0, 0), (1, 31, 5, 4), (0, 7, 2, 3), (1, 12, 0, 4)]:
        picks = np.array([[o * pieces + r, n, t, f] for r in range(pieces)])
        acts, rows = bench.im2col_vectors(maps, weight, 16, picks)
        assert acts.shape == (pieces, 16) and rows.shape == (32 * pieces, 16)
        total = float((acts.astype(np.float64) * rows[picks[:, 0]]).sum())
        assert total == pytest.approx(float(want[n, o, t, f]), rel=1e-5, abs=1e-6)


def test_weight_codes_are_the_log_domain_rounding():
    cfg = config_from_dict(g.ExpDotConfig, dict(lanes=16, simd=16, **bench.SPEECH_WEIGHTS))
    w = teacher.teacher_weights()["conv2.weight"].reshape(-1, 16)
    extra = np.array([[0.0, -0.0, 2.0 ** -31, 2.0 ** -30.5, -2.0 ** -30.4, 3.0, 2.0 ** 0.5,
                       2.0 ** -1.5, 1e-12, -5.0, 0.75, 1.0, -1.0, 2.0 ** -29, 0.5, 1.5]])
    for values in (w, extra.astype(np.float32)):
        codes = bench.seofp_codes(cfg, values)
        want = gt.export_codes(torch.from_numpy(values), cfg)
        np.testing.assert_array_equal(codes, want)
    # every weight of conv2 is within the format (nothing clamped, nothing made zero)
    d = (bench.seofp_codes(cfg, w) & ((1 << cfg.weight_exp_bits) - 1)) - cfg.weight_bias
    assert d.min() > cfg.d_range[0] and d.max() <= cfg.d_range[1]


def test_recording_and_accuracy_on_a_tiny_input(tmp_path):
    rng = np.random.default_rng(2)
    t = np.arange(8000) / 16000
    clips = [("a", 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)),
             ("b", 0.2 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t)
              + 0.02 * rng.normal(size=t.size))]
    data = bench.speech_vectors(tmp_path, measured=150, per_row=3, clips=clips)
    assert data["measured"].shape == (150, 16) and data["codes"].shape == (576, 16)
    assert data["calibration"].shape == (576 * 3, 16)
    assert (data["measured"] != 0).any(axis=1).all() and (data["measured"] >= 0).all()
    assert (np.diff(data["rows"]) >= 0).all()
    again = bench.speech_vectors(tmp_path, measured=150, per_row=3, clips=clips)  # the cache
    np.testing.assert_array_equal(again["measured"], data["measured"])
    assert len(list(tmp_path.glob("expmul_speech_*.npz"))) == 1
    res = bench.speech_accuracy(data)
    for fmt in ("fp32", "fp16"):
        names = [k for k, v in res[fmt].items() if isinstance(v, dict) and "mean_ulp" in v]
        assert "fpdot" in names and any(n.startswith("expdot rounded") for n in names)
        lo, hi = res[fmt]["calibrated_exp_range"]
        assert lo <= hi
    # the full-range accumulator rounds the exact sum once: correctly rounded on every vector
    assert res["fp32"]["expdot exact (full range)"]["correctly_rounded"] == 1.0
    assert res["fp32"]["expdot exact (full range)"]["max_ulp"] <= 0.5
    md = bench.seofp_markdown({"lanes": 16, "simd": 4, "seofp": [], "accuracy": {
        "vectors": 0, "data": "-"} | {f: {"calibrated_exp_range": [0, 0]} for f in
                                      ("fp32", "fp16")}, "speech_accuracy": res})
    assert "Accuracy on recorded speech activations, fp16" in md
