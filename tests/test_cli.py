"""The ``qhw`` command line: outputs, and bad input giving one line, exit 2 and no partial files."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw import registry
from qhw.golden import binconv as golden

CFG = {"c_in": 3, "c_out": 4, "height": 4, "width": 5, "kernel": [3, 3], "padding": "same",
       "pe": 2, "simd": 9, "output": "threshold"}


@pytest.fixture
def files(tmp_path):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(CFG))
    cfg = golden.BinConvConfig(**{**CFG, "kernel": tuple(CFG["kernel"])})
    rng = np.random.default_rng(5)
    params = golden.random_params(cfg, rng)
    np.savez(tmp_path / "w.npz", **params)
    x = golden.random_inputs(cfg, rng, 3)
    np.save(tmp_path / "x.npy", x)
    return tmp_path, cfg, params, x


def test_units_lists_binconv(capsys):
    code, out, _ = run(["units"], capsys)
    assert code == 0 and "binconv" in out


def test_generate_writes_verilog_weights_and_manifest(files, capsys):
    tmp, cfg, params, _ = files
    code, out, _ = run(["generate", "binconv", "--config", tmp / "cfg.json",
                        "--weights", tmp / "w.npz", "-o", tmp / "gen"], capsys)
    assert code == 0, out
    gen = tmp / "gen"
    manifest = json.loads((gen / "manifest.json").read_text())
    top = manifest["top"]  # the unit's name and a hash of its config and weights
    assert re.fullmatch(r"binconv_[0-9a-f]{8}", top)
    assert sorted(p.name for p in gen.iterdir()) == sorted([
        "config.json", "lint_waivers.vlt", "manifest.json", "weights.npz", f"{top}.core",
        f"{top}.v"])
    assert f"module {top}(" in (gen / f"{top}.v").read_text()
    model = registry.get("binconv").cost_model(cfg, 1)
    assert manifest["latency"] == model.latency
    assert manifest["cycles"]["formula"] == 2 * 3 * 4 * 5  # (C_out/PE)*(K/SIMD)*H_out*W_out
    assert manifest["cycles"]["expected"] == model.expected
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i__payload"]["width"] == 3 and ports["o__payload"]["width"] == 4
    assert ports["o__ready"]["direction"] == "in"
    with np.load(gen / "weights.npz") as w:
        assert (w["weights"] == params["weights"]).all()


def test_generate_random_weights_depend_on_seed(files, capsys):
    tmp, *_ = files
    for seed in (1, 2):
        assert run(["generate", "binconv", "--config", tmp / "cfg.json", "--seed", seed,
                    "-o", tmp / f"s{seed}"], capsys)[0] == 0
    with np.load(tmp / "s1" / "weights.npz") as a, np.load(tmp / "s2" / "weights.npz") as b:
        assert (a["weights"] != b["weights"]).any()


def test_golden_matches_reference(files, capsys):
    tmp, cfg, params, x = files
    code, out, _ = run(["golden", "binconv", "--config", tmp / "cfg.json", "--weights",
                        tmp / "w.npz", "--inputs", tmp / "x.npy", "-o", tmp / "y.npy"], capsys)
    assert code == 0
    assert (np.load(tmp / "y.npy") == golden.reference(cfg, params, x)).all()


def test_rtlsim_matches_golden_and_prints_cycles(files, capsys):
    tmp, cfg, params, x = files
    code, out, _ = run(["rtlsim", "binconv", "--config", tmp / "cfg.json", "--weights",
                        tmp / "w.npz", "--inputs", tmp / "x.npy", "-o", tmp / "y.npy",
                        "--stall-in", "0.2", "--stall-out", "0.2"], capsys)
    assert code == 0
    assert (np.load(tmp / "y.npy") == golden.reference(cfg, params, x)).all()
    assert "cycles" in out and "latency" in out


@pytest.mark.parametrize("change, words", [
    ({"colour": 1}, ["unknown key 'colour'"]),
    ({"pe": 3}, ["pe", "must divide c_out = 4"]),
    ({"simd": 4}, ["simd", "c_in*kh*kw = 27"]),
    ({"height": 0}, ["height", "1..65536", "got 0"]),
    ({"padding": "full"}, ["padding", "'valid'", "'same'"]),
    ({"kernel": [3]}, ["kernel", "pair"]),
    ({"output": "relu"}, ["output"]),
    ({"padding": "valid", "kernel": [5, 5]}, ["kernel", "does not fit"]),
])
def test_bad_config_is_one_line_exit_2_and_no_output(files, capsys, change, words):
    tmp, *_ = files
    (tmp / "bad.json").write_text(json.dumps({**CFG, **change}))
    code, _, err = run(["generate", "binconv", "--config", tmp / "bad.json", "-o", tmp / "out"],
                       capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "out").exists()


def test_missing_config_key(files, capsys):
    tmp, *_ = files
    cfg = dict(CFG)
    del cfg["c_out"]
    (tmp / "bad.json").write_text(json.dumps(cfg))
    code, _, err = run(["generate", "binconv", "--config", tmp / "bad.json", "-o", tmp / "out"],
                       capsys)
    assert_usage_error(code, err, "missing key 'c_out'")


def test_unknown_unit_and_missing_files(files, capsys):
    tmp, *_ = files
    code, _, err = run(["generate", "nosuch", "--config", tmp / "cfg.json", "-o", tmp / "o"], capsys)
    assert_usage_error(code, err, "unknown unit 'nosuch'", "binconv")
    code, _, err = run(["generate", "binconv", "--config", tmp / "nope.json", "-o", tmp / "o"], capsys)
    assert_usage_error(code, err, "--config", "not found")
    code, _, err = run(["golden", "binconv", "--config", tmp / "cfg.json", "--weights",
                        tmp / "nope.npz", "--inputs", tmp / "x.npy", "-o", tmp / "y.npy"], capsys)
    assert_usage_error(code, err, "--weights", "not found")
    assert not (tmp / "o").exists() and not (tmp / "y.npy").exists()


@pytest.mark.parametrize("make_x, words", [
    (lambda x: x[:, :, :, :2], ["inputs", "shape"]),
    (lambda x: x.astype(np.float32), ["inputs", "dtype"]),
    (lambda x: x * 2, ["inputs", "0 or 1", "found 2"]),
])
@pytest.mark.parametrize("command", ["golden", "rtlsim"])
def test_bad_inputs(files, capsys, make_x, words, command):
    tmp, cfg, params, x = files
    np.save(tmp / "bad.npy", make_x(x))
    code, _, err = run([command, "binconv", "--config", tmp / "cfg.json", "--weights",
                        tmp / "w.npz", "--inputs", tmp / "bad.npy", "-o", tmp / "y.npy"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "y.npy").exists()


@pytest.mark.parametrize("change, words", [
    (lambda p: {**p, "weights": p["weights"][:, :2]}, ["weights", "shape"]),
    (lambda p: {**p, "weights": p["weights"] + 1}, ["weights", "0 or 1"]),
    (lambda p: {k: v for k, v in p.items() if k != "thresholds"}, ["missing array 'thresholds'"]),
    (lambda p: {**p, "directions": np.zeros(4, np.int64)}, ["directions", "+1 or -1"]),
])
def test_bad_weights(files, capsys, change, words):
    tmp, cfg, params, x = files
    np.savez(tmp / "bad.npz", **change(params))
    code, _, err = run(["generate", "binconv", "--config", tmp / "cfg.json", "--weights",
                        tmp / "bad.npz", "-o", tmp / "out"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp / "out").exists()


def test_console_script_and_argparse_errors_exit_2(files):
    tmp, *_ = files
    qhw = [sys.executable, "-m", "qhw.cli"]
    r = subprocess.run(qhw + ["synth", "binconv", "--config", str(tmp / "cfg.json"),
                              "--target", "asic", "--json", str(tmp / "r.json")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--target" in r.stderr
    assert not (tmp / "r.json").exists()
    r = subprocess.run(qhw + ["rtlsim", "binconv", "--config", str(tmp / "cfg.json"),
                              "--weights", str(tmp / "w.npz"), "--inputs", str(tmp / "x.npy"),
                              "-o", str(tmp / "y.npy"), "--stall-in", "1.5"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--stall-in" in r.stderr
