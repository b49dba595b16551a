"""``qhw`` on bamconv: gated inputs as an .npz of activations and gates; bad gates and activations
give one line naming the field, exit 2 and no output file."""

import json

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw.golden import bamconv as golden

CFG = {"c_in": 3, "c_out": 4, "height": 3, "width": 4, "kernel": [3, 3], "padding": "same",
       "pe": 2, "simd": 9, "weight_bits": 4, "output": "sum", "gating": "mask"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps(CFG))
    cfg = golden.BamConvConfig(**{**CFG, "kernel": tuple(CFG["kernel"])})
    rng = np.random.default_rng(3)
    params = golden.random_params(cfg, rng)
    np.savez(tmp_path / "w.npz", **params)
    inputs = golden.random_inputs(cfg, rng, 2, 0.5)
    np.savez(tmp_path / "x.npz", **inputs)
    return tmp_path, cfg, params, inputs


@pytest.mark.parametrize("command", ["golden", "rtlsim"])
def test_gated_inputs_from_npz(files, capsys, command):
    tmp, cfg, params, inputs = files
    code, out, err = run([command, "bamconv", "--config", tmp / "cfg.json", "--weights",
                          tmp / "w.npz", "--inputs", tmp / "x.npz", "-o", tmp / "y.npy"], capsys)
    assert code == 0, err
    y = np.load(tmp / "y.npy")
    assert (y == golden.reference(cfg, params, inputs)).all()
    assert (y[inputs["gates"] == 0] == 0).all()


@pytest.mark.parametrize("change, words", [
    (lambda i: {**i, "gates": i["gates"][..., :3]}, ["gates", "shape"]),
    (lambda i: {"activations": i["activations"]}, ["gating 'mask' needs an array 'gates'"]),
    (lambda i: {**i, "activations": i["activations"] * 2}, ["activations", "[0, 1]"]),
])
def test_bad_gates_and_activations(files, capsys, change, words):
    tmp, cfg, params, inputs = files
    np.savez(tmp / "bad.npz", **change(inputs))
    code, out, err = run(["golden", "bamconv", "--config", tmp / "cfg.json", "--weights",
                          tmp / "w.npz", "--inputs", tmp / "bad.npz", "-o", tmp / "y.npy"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "y.npy").exists()
