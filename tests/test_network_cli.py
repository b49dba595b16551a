"""``qhw`` on networks: generate from a TOML description, golden and rtlsim on .npz inputs, and
bad descriptions ending in one line, exit 2, nothing written."""

import json

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw import registry
from qhw.config import config_from_dict

UNIT = registry.get("network")
EXAMPLE = "examples/networks/bnn_pool.toml"


@pytest.fixture
def files(tmp_path):
    cfg = config_from_dict(UNIT.config, UNIT.regression["bnn_pool"])
    rng = np.random.default_rng(4)
    params = UNIT.random_params(cfg, rng)
    np.savez(tmp_path / "w.npz", **params)
    x = UNIT.random_inputs(cfg, rng, 2)
    np.save(tmp_path / "x.npy", x["activations"])
    return tmp_path, cfg, params, x


def test_generate_writes_one_verilog_with_a_network_manifest(files, capsys):
    tmp, cfg, params, _ = files
    code, out, err = run(["generate", "network", "--config", EXAMPLE, "--weights", tmp / "w.npz",
                          "-o", tmp / "gen"], capsys)
    assert code == 0, err
    manifest = json.loads((tmp / "gen" / "manifest.json").read_text())
    top = manifest["top"]
    assert top.startswith("network_")
    assert sorted(p.name for p in (tmp / "gen").iterdir()) == \
        sorted(["config.json", "lint_waivers.vlt", "manifest.json", f"{top}.core", f"{top}.v",
                "weights.npz"])
    verilog = (tmp / "gen" / f"{top}.v").read_text()
    assert f"module {top}(" in verilog
    assert [layer["name"] for layer in manifest["layers"]] == ["conv1", "pool1", "conv2",
                                                               "pool2", "fc"]
    assert manifest["layers"][0]["folding"] == {"PE": 2, "SIMD": 9, "MW": 27, "MH": 8}
    assert [f["between"] for f in manifest["fifos"]][0] == ["conv1", "pool1"]
    assert all(f["depth"] >= 2 for f in manifest["fifos"])
    perf = manifest["estimate_network_performance"]
    assert perf["max_cycles_node_name"] in {"conv1", "conv2"}
    assert perf["max_cycles"] == max(layer["cycles_per_frame"] for layer in manifest["layers"])
    with np.load(tmp / "gen" / "weights.npz") as w:
        assert sorted(w.files) == sorted(params)


@pytest.mark.parametrize("command", ["golden", "rtlsim"])
def test_golden_and_rtlsim(files, capsys, command):
    tmp, cfg, params, x = files
    extra = ["--check", "--stall-in", "0.2", "--stall-out", "0.2"] if command == "rtlsim" else []
    code, out, err = run([command, "network", "--config", EXAMPLE, "--weights", tmp / "w.npz",
                          "--inputs", tmp / "x.npy", "-o", tmp / "y.npy", *extra], capsys)
    assert code == 0, err
    assert np.array_equal(np.load(tmp / "y.npy"), UNIT.golden(cfg, params, x))
    if command == "rtlsim":
        assert "bit-exact against the golden model" in out
        assert "steady state: " in out


@pytest.mark.parametrize("text, words", [
    ('input = { height = 4, width = 4, channels = 1 }\n[[layers]]\nname = "c1"\nkind = "lstm"\n',
     ["c1", "kind"]),
    ('input = { height = 4, width = 4, channels = 1 }\n[[layers]]\nname = "c1"\n'
     'kind = "binconv"\nc_out = 4\nkernel = [5, 5]\n', ["c1", "5x5", "4x4x1", "network input"]),
    ('input = { height = 4, width = 4, channels = 1 }\n[[layers]]\nname = "c1"\n'
     'kind = "binconv"\nc_out = 4\npe = 3\n', ["c1", "pe", "divide"]),
    ('input = { height = 4, width = 4 channels = 1 }\n', ["--config", "TOML"]),
])
def test_bad_description(tmp_path, capsys, text, words):
    (tmp_path / "net.toml").write_text(text)
    code, out, err = run(["generate", "network", "--config", tmp_path / "net.toml", "-o",
                          tmp_path / "gen"], capsys)
    assert_usage_error(code, err, *words)
    assert not (tmp_path / "gen").exists()


def test_missing_layer_weights(files, capsys):
    tmp, cfg, params, _ = files
    np.savez(tmp / "bad.npz", **{k: v for k, v in params.items() if k != "conv2.thresholds"})
    code, out, err = run(["generate", "network", "--config", EXAMPLE, "--weights",
                          tmp / "bad.npz", "-o", tmp / "gen"], capsys)
    assert_usage_error(code, err, "layer 'conv2'", "conv2.thresholds")
    assert not (tmp / "gen").exists()


def test_synth_gives_the_whole_and_each_layer(tmp_path, capsys):
    """`qhw synth network`: the whole network's figures, each layer synthesized alone, and the
    remainder (FIFOs, glue) that the layers do not account for."""
    code, out, err = run(["synth", "network", "--config", "examples/networks/gated.toml",
                          "--target", "generic", "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert [p["name"] for p in result["parts"]] == ["conv1", "conv2"]
    whole = result["figures"]["transistors"]
    layers = sum(p["figures"]["transistors"] for p in result["parts"])
    assert result["parts_remainder"]["transistors"] == whole - layers
    # (it may be negative: flattened, the whole lets synthesis remove logic across layers)
    assert all(p["cycles_per_frame"] > 0 for p in result["parts"])
    assert "conv1 (bamconv)" in out


def test_report_network_section(tmp_path):
    """A network record with per-layer figures gets a bar chart and a table, bottleneck marked."""
    import types

    from qhw.explore import report
    record = {"unit": "network", "status": "ok", "key": "abc", "config": {"name": "toy"},
              "cycles_per_inference": 900, "generic": {"transistors": 1000},
              "ecp5": {"LUT4": 90},
              "parts": [{"name": "a", "unit": "binconv", "cycles_per_frame": 800,
                         "generic": {"transistors": 600}, "ecp5": {"LUT4": 50}},
                        {"name": "b", "unit": "maxpool", "cycles_per_frame": 64,
                         "generic": {"transistors": 300}, "ecp5": {"LUT4": 30}}]}
    results = types.SimpleNamespace(ok=[record], records=[record])
    blocks = report.plot_networks(results, tmp_path, "note")
    table = next(b for b in blocks if isinstance(b, report.Table))
    assert table.rows[0][0] == "a (bottleneck)" and table.rows[1][0] == "b"
    assert table.rows[-1] == ["whole network", "", 900, 1000, 90]
    assert list(tmp_path.glob("network_toy_*.png"))
