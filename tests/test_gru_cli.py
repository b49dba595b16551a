"""``qhw generate|golden|rtlsim gru``: outputs, and bad input giving one line and exit 2."""

import json

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw import registry
from qhw.golden import gru as g

CFG = {"input_size": 3, "hidden_size": 4, "bits": 6, "macs": 2,
       "formats": {"state": [8, 7], "weight": [4, 2, "floor"]}}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps(CFG))
    cfg = g.GruConfig(**CFG)
    rng = np.random.default_rng(5)
    params = g.random_params(cfg, rng)
    np.savez(tmp_path / "w.npz", **params)
    x = g.random_inputs(cfg, rng, (2, 5))
    np.save(tmp_path / "x.npy", x)
    return tmp_path, cfg, params, x


def test_generate_writes_verilog_and_manifest(files, capsys):
    tmp, cfg, params, _ = files
    code, out, _ = run(["generate", "gru", "--config", tmp / "cfg.json", "--weights",
                        tmp / "w.npz", "-o", tmp / "gen"], capsys)
    assert code == 0, out
    manifest = json.loads((tmp / "gen" / "manifest.json").read_text())
    model = registry.get("gru").cost_model(cfg, 1)
    assert manifest["latency"] == model.latency
    assert manifest["cycles"]["expected"] == model.expected
    assert manifest["derived"]["formats"]["state"] == [8, 7, "nearest_even"]
    assert manifest["derived"]["formats"]["weight"] == [4, 2, "floor"]
    ports = {p["name"]: p["width"] for p in manifest["ports"]}
    assert ports["i__payload"] == 3 * 6 + 2 and ports["o__payload"] == 4 * 8
    top = manifest["top"]
    assert top.startswith("gru_") and f"module {top}(" in (tmp / "gen" / f"{top}.v").read_text()


def test_golden_matches_reference(files, capsys):
    tmp, cfg, params, x = files
    code, _, _ = run(["golden", "gru", "--config", tmp / "cfg.json", "--weights", tmp / "w.npz",
                      "--inputs", tmp / "x.npy", "-o", tmp / "y.npy"], capsys)
    assert code == 0
    y = np.load(tmp / "y.npy")
    assert y.shape == (2, 5, 4) and (y == g.reference(cfg, params, x)).all()


def test_rtlsim_matches_golden(files, capsys):
    tmp, cfg, params, x = files
    code, out, _ = run(["rtlsim", "gru", "--config", tmp / "cfg.json", "--weights", tmp / "w.npz",
                        "--inputs", tmp / "x.npy", "-o", tmp / "y.npy", "--stall-in", "0.3",
                        "--stall-out", "0.3"], capsys)
    assert code == 0, out
    assert (np.load(tmp / "y.npy") == g.reference(cfg, params, x)).all()


@pytest.mark.parametrize("change, words", [
    ({"formats": {"mm_hn": [6, 7]}}, ["formats.mm_hn frac_bits", "<= total_bits (6)", "got 7"]),
    ({"formats": {"input": [0, 0]}}, ["formats.input total_bits", "1..32", "got 0"]),
    ({"formats": {"add_h": [40, 8]}}, ["formats.add_h total_bits", "1..32", "got 40"]),
    ({"formats": {"sub_z": [8, 7, "ceil"]}}, ["formats.sub_z rounding", "'floor'"]),
    ({"macs": 0}, ["macs"]),
    ({"colour": 1}, ["unknown key 'colour'"]),
])
def test_bad_config(files, capsys, change, words):
    tmp, *_ = files
    (tmp / "bad.json").write_text(json.dumps({**CFG, **change}))
    code, _, err = run(["generate", "gru", "--config", tmp / "bad.json", "-o", tmp / "out"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "out").exists()


@pytest.mark.parametrize("change, words", [
    (lambda p: {**p, "weight_ih": p["weight_ih"][:, :2]}, ["weight_ih", "shape must be (12, 3)"]),
    (lambda p: {**p, "weight_hh": p["weight_hh"].T[:4]}, ["weight_hh", "shape must be (12, 4)"]),
    (lambda p: {**p, "bias_hh": p["bias_hh"][:4]}, ["bias_hh", "shape must be (12,)"]),
    (lambda p: {**p, "weight_ih": p["weight_ih"] * 4}, ["weight_ih", "values must be in [-8, 7]"]),
])
def test_bad_weights(files, capsys, change, words):
    tmp, cfg, params, _ = files
    np.savez(tmp / "bad.npz", **change(params))
    code, _, err = run(["generate", "gru", "--config", tmp / "cfg.json", "--weights",
                        tmp / "bad.npz", "-o", tmp / "out"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "out").exists()


@pytest.mark.parametrize("make_x, words", [
    (lambda x: x[..., :2], ["inputs", "shape"]),
    (lambda x: x.astype(np.float32), ["inputs", "dtype"]),
    (lambda x: x + 100, ["inputs", "values must be in [-32, 31]"]),
])
def test_bad_inputs(files, capsys, make_x, words):
    tmp, cfg, params, x = files
    np.save(tmp / "bad.npy", make_x(x))
    code, _, err = run(["golden", "gru", "--config", tmp / "cfg.json", "--weights", tmp / "w.npz",
                        "--inputs", tmp / "bad.npy", "-o", tmp / "y.npy"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "y.npy").exists()


@pytest.mark.parametrize("output, where", [("sequence", "sequence 1, step 3, hidden 2"),
                                           ("last", "sequence 1, hidden 2")])
def test_mismatch_message_names_the_axes_of_the_output_mode(output, where):
    from qhw import flow
    unit = registry.get("gru")
    cfg = g.GruConfig(**dict(CFG, output=output))
    expected = np.zeros((2, 5, 4) if output == "sequence" else (2, 4), dtype=np.int64)
    got = expected.copy()
    got[(1, 3, 2) if output == "sequence" else (1, 2)] = 7
    assert flow.first_mismatch(unit, got, expected, cfg).startswith(f"mismatch at {where}:")
