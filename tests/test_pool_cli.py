"""``qhw`` on the pooling units: golden, rtlsim and generate without a weight file; bad configs
(kernel bigger than the input, signed 1-bit maps, unknown keys) and weight files give one line
naming the field, exit 2 and no output file."""

import json

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw import registry
from qhw.config import config_from_dict
from qhw.golden import pool as golden

# A regression config, so that rtlsim reuses the regression's Verilator build.
MAXPOOL = registry.get("maxpool").regression["s8_k2_5x7_floor"]
GLOBALPOOL = registry.get("globalpool").regression["avg_s8_3x5"]


def _files(tmp_path, unit_name, cfg_dict, seed=3):
    unit = registry.get(unit_name)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg_dict))
    cfg = config_from_dict(unit.config, cfg_dict)
    x = unit.random_inputs(cfg, np.random.default_rng(seed), 2)
    np.save(tmp_path / "x.npy", x)
    return cfg, x


@pytest.mark.parametrize("command", ["golden", "rtlsim"])
def test_maxpool_golden_and_rtlsim(tmp_path, capsys, command):
    cfg, x = _files(tmp_path, "maxpool", MAXPOOL)
    code, out, err = run([command, "maxpool", "--config", tmp_path / "cfg.json", "--inputs",
                          tmp_path / "x.npy", "-o", tmp_path / "y.npy"]
                         + (["--stall-in", "0.3", "--stall-out", "0.3"] if command == "rtlsim"
                            else []), capsys)
    assert code == 0, err
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, 2, 3, 3) and (y == golden.reference(cfg, {}, x)).all()
    if command == "rtlsim":
        model = registry.get("maxpool").cost_model(cfg, 2)
        assert f"model {model.expected} with no stalls" in out


def test_globalpool_golden(tmp_path, capsys):
    cfg, x = _files(tmp_path, "globalpool", GLOBALPOOL)
    code, out, err = run(["golden", "globalpool", "--config", tmp_path / "cfg.json", "--inputs",
                          tmp_path / "x.npy", "-o", tmp_path / "y.npy"], capsys)
    assert code == 0, err
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, 1, 1, 3)
    assert (y[:, 0, 0] == np.floor_divide(x.sum(axis=(1, 2)), 15)).all()


def test_generate_writes_manifest(tmp_path, capsys):
    _files(tmp_path, "globalpool", GLOBALPOOL)
    code, out, err = run(["generate", "globalpool", "--config", tmp_path / "cfg.json", "-o",
                          tmp_path / "gen"], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "gen" / "manifest.json").read_text())
    assert manifest["latency"] == 1 and manifest["cycles"]["expected"] == 15 + 1
    ports = {p["name"]: p["width"] for p in manifest["ports"]}
    assert ports["i__payload"] == 24 and ports["o__payload"] == 24
    with np.load(tmp_path / "gen" / "weights.npz") as w:
        assert w.files == []


@pytest.mark.parametrize("unit_name, change, words", [
    ("maxpool", {"kernel": [3, 8]}, ["kernel", "3x8", "5x7"]),
    ("maxpool", {"element_bits": 1}, ["signed", "element_bits is 1"]),
    ("maxpool", {"stride": 2}, ["unknown key 'stride'"]),
    ("globalpool", {"mode": "median"}, ["mode", "'avg'"]),
    ("globalpool", {"element_bits": 1}, ["signed"]),
    ("globalpool", {"kernel": [2, 2]}, ["unknown key 'kernel'"]),
])
@pytest.mark.parametrize("command", ["golden", "rtlsim"])
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, capsys, unit_name, change, words,
                                                   command):
    base = MAXPOOL if unit_name == "maxpool" else GLOBALPOOL
    (tmp_path / "cfg.json").write_text(json.dumps({**base, **change}))
    np.save(tmp_path / "x.npy", np.zeros((5, 7, 3), np.int64))
    code, out, err = run([command, unit_name, "--config", tmp_path / "cfg.json", "--inputs",
                          tmp_path / "x.npy", "-o", tmp_path / "y.npy"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp_path / "y.npy").exists()


def test_weight_file_and_bad_inputs_rejected(tmp_path, capsys):
    _files(tmp_path, "maxpool", MAXPOOL)
    np.savez(tmp_path / "w.npz", weights=np.zeros(3))
    code, out, err = run(["golden", "maxpool", "--config", tmp_path / "cfg.json", "--weights",
                          tmp_path / "w.npz", "--inputs", tmp_path / "x.npy", "-o",
                          tmp_path / "y.npy"], capsys)
    assert_usage_error(code, err, "weights", "no weights")
    np.save(tmp_path / "bad.npy", np.full((5, 7, 3), 200))
    code, out, err = run(["golden", "maxpool", "--config", tmp_path / "cfg.json", "--inputs",
                          tmp_path / "bad.npy", "-o", tmp_path / "y.npy"], capsys)
    assert_usage_error(code, err, "activations", "[-128, 127]")
    assert not (tmp_path / "y.npy").exists()
