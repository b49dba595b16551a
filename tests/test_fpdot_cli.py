"""``qhw generate|golden|rtlsim|synth fpdot`` through the registry, and its usage errors."""

import json

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw.golden import fpdot as g

CFG = {"lanes": 4, "simd": 2, "act_format": "fp32"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps(CFG))
    rng = np.random.default_rng(3)
    w = rng.uniform(-2, 2, 4).astype(np.float32)
    np.savez(tmp_path / "w.npz", weights=w)
    x = rng.uniform(-4, 4, (6, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path, w, x


def test_units_lists_fpdot(capsys):
    code, out, _ = run(["units"], capsys)
    assert code == 0 and "fpdot" in out


def test_generate_golden_rtlsim(files, capsys):
    tmp, w, x = files
    code, out, _ = run(["generate", "fpdot", "--config", tmp / "cfg.json", "--weights",
                        tmp / "w.npz", "-o", tmp / "gen"], capsys)
    assert code == 0, out
    manifest = json.loads((tmp / "gen" / "manifest.json").read_text())
    # input register, products, one adder-tree level (simd 2), accumulator
    assert manifest["latency"] == 4 and manifest["derived"]["tree_levels"] == 1
    assert manifest["cycles"]["expected"] == 2 + 4  # 2 folds of one vector, then the latency
    top = manifest["top"]
    assert top.startswith("fpdot_") and f"module {top}(" in (tmp / "gen" / f"{top}.v").read_text()
    common = ["--config", tmp / "cfg.json", "--weights", tmp / "w.npz", "--inputs", tmp / "x.npy"]
    assert run(["golden", "fpdot", *common, "-o", tmp / "g.npy"], capsys)[0] == 0
    code, out, _ = run(["rtlsim", "fpdot", *common, "-o", tmp / "r.npy", "--stall-in", "0.3",
                        "--stall-out", "0.3"], capsys)
    assert code == 0 and "cycles" in out
    golden_y, rtl_y = np.load(tmp / "g.npy"), np.load(tmp / "r.npy")
    assert golden_y.dtype == np.uint32 and (golden_y == rtl_y).all()
    # NumPy float32, the documented order: per fold x0*w0 + x1*w1, then fold 0 + fold 1
    p = x * w
    want = (p[:, 0] + p[:, 1]) + (p[:, 2] + p[:, 3])
    assert (golden_y == want.view(np.uint32)).all()


def test_synth_generic(tmp_path, capsys):
    (tmp_path / "cfg.json").write_text(json.dumps({"lanes": 1, "simd": 1, "act_format": "bf16"}))
    code, out, _ = run(["synth", "fpdot", "--config", tmp_path / "cfg.json", "--target",
                        "generic", "--json", tmp_path / "r.json"], capsys)
    assert code == 0, out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["unit"] == "fpdot" and result["figures"]["transistors"] > 0


@pytest.mark.parametrize("cfg, words", [
    ({"lanes": 6, "simd": 4}, ["simd", "must divide lanes = 6"]),
    ({"act_format": "fixed"}, ["act_format", "'bf16'"]),
    ({"lanes": 2000}, ["lanes", "1..1024"]),
    ({"weight_exp_bits": 5}, ["unknown key 'weight_exp_bits'"]),
])
def test_bad_config_is_one_line_exit_2(tmp_path, capsys, cfg, words):
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    code, _, err = run(["generate", "fpdot", "--config", tmp_path / "bad.json", "-o",
                        tmp_path / "out"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["golden", "rtlsim"])
def test_bad_inputs_and_weights(files, capsys, command):
    tmp, w, x = files
    np.save(tmp / "bad.npy", x[:, :3])
    code, _, err = run([command, "fpdot", "--config", tmp / "cfg.json", "--weights",
                        tmp / "w.npz", "--inputs", tmp / "bad.npy", "-o", tmp / "y.npy"], capsys)
    assert_usage_error(code, err, "inputs", "shape")
    np.savez(tmp / "bad.npz", weights=w.astype(np.float16))
    code, _, err = run([command, "fpdot", "--config", tmp / "cfg.json", "--weights",
                        tmp / "bad.npz", "--inputs", tmp / "x.npy", "-o", tmp / "y.npy"], capsys)
    assert_usage_error(code, err, "weights", "dtype")
    assert not (tmp / "y.npy").exists()


def test_reference_of_float_arrays_equals_bit_patterns(files):
    _, w, x = files
    cfg = g.FpDotConfig(**CFG)
    a = g.fpdot_reference(cfg, {"weights": w}, x)
    b = g.fpdot_reference(cfg, {"weights": w.view(np.uint32)}, x.view(np.uint32))
    assert (a == b).all()
