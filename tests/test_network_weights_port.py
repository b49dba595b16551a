"""Run-time weights for whole networks (the network's ``weights = "port"``): every weighted layer
is built with run-time weights and one weight-load stream ``wl`` writes them all, layer after
layer; the network then computes bit-exactly with the loaded weights under stalls and
back-pressure, its cycles (counted from the first pixel, after the load) equal the cost model's,
the Verilog does not depend on the weights, a second load replaces the first without mixing
weight sets within a map, and networks with layers that cannot load their weights refuse the
option in one line."""

import dataclasses
import json

import numpy as np
import pytest

from clihelp import assert_usage_error, run
from qhw import flow, registry
from qhw.config import config_from_dict, to_toml
from qhw.errors import QhwInputError
from qhw.hdl.network import load_plan

NET = registry.get("network")


def _case(name, seed, frames=2):
    cfg = config_from_dict(NET.config, dict(NET.regression[name], weights="port"))
    rng = np.random.default_rng(seed)
    params = NET.check_params(cfg, NET.random_params(cfg, rng))
    x = NET.check_inputs(cfg, NET.random_inputs(cfg, rng, frames))
    return cfg, params, x


def test_the_load_stream_is_every_layers_load_words_in_network_order():
    cfg, params, _ = _case("bam_features", 0)
    assert [layer.name for layer in cfg.port_layers] == ["conv1", "conv2", "head"]
    words, plan = NET.load_words(cfg, params), load_plan(cfg)
    expected = []
    for layer, entry in zip(cfg.port_layers, plan):
        unit = registry.get(layer.unit)
        own = {k.split(".", 1)[1]: v for k, v in params.items()
               if k.startswith(layer.name + ".")}
        if layer.kind == "dense":  # (outputs, H*W*C) -> the conv unit's (out, in, kh, kw)
            own["weights"] = own["weights"].reshape(
                layer.config.c_out, layer.config.height, layer.config.width,
                layer.config.c_in).transpose(0, 3, 1, 2)
        own_words = unit.load_words(layer.config, unit.check_params(layer.config, own))
        assert entry["layer"] == layer.name and entry["words"] == len(own_words)
        assert entry["first"] == len(expected)
        assert all(w < 1 << entry["bits"] for w in own_words)
        expected += own_words
    assert words == expected
    wl = flow.generate(NET, cfg, params).manifest["streams"]["wl"]
    assert wl["direction"] == "in" and wl["words"] == len(words) == 24
    assert wl["payload_bits"] == max(e["bits"] for e in plan) == 192
    assert [e["layer"] for e in wl["layers"]] == ["conv1", "conv2", "head"]
    assert "layer after layer" in wl["layout"] and "conv2: 16 words of 192 bits" in wl["layout"]


@pytest.mark.parametrize("name", ["bam_features", "bnn_pool", "gated"])
def test_load_then_compute_bit_exact_cycles_and_stalls(name):
    """bam_features: an 8-bit macconv first layer, a bamconv, a global pool and a dense head;
    bnn_pool: binconv layers, max pools and an xnor dense head; gated: gated bamconv layers."""
    cfg, params, x = _case(name, 1)
    expected = NET.golden(cfg, params, x)
    words = NET.load_words(cfg, params)
    plain = flow.rtlsim(NET, cfg, params, x)
    assert flow.first_mismatch(NET, plain, expected, cfg) is None
    # No pixel before the whole load; then the cost model's cycles and latency exactly.
    assert len(plain.sim.in_times["wl"]) == len(words)
    assert plain.sim.in_times["i"][0] == len(words) > plain.sim.in_times["wl"][-1]
    model = NET.cost_model(cfg, 2, x)
    assert (plain.cycles, plain.latency) == (model.expected, model.latency)
    assert "after the whole weight load" in flow.generate(NET, cfg, params).manifest["cycles"][
        "notes"]
    stalled = flow.rtlsim(NET, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=2)
    assert flow.first_mismatch(NET, stalled, expected, cfg) is None
    assert stalled.sim.in_times["i"][0] > stalled.sim.in_times["wl"][-1]


def test_the_weights_are_not_in_the_verilog_and_a_second_load_replaces_the_first():
    cfg, first, x = _case("bam_features", 3, frames=3)
    _, second, _ = _case("bam_features", 4)
    assert flow.generate(NET, cfg, first).verilog == flow.generate(NET, cfg, second).verilog
    assert (flow.default_module_name(NET, cfg, first)
            == flow.default_module_name(NET, cfg, second))
    baked = dataclasses.replace(cfg, weights="baked")
    assert flow.generate(NET, baked, first).verilog != flow.generate(NET, baked, second).verilog
    twice = dataclasses.replace(NET, load_words=lambda c, p: NET.load_words(c, first)
                                + NET.load_words(c, second))
    want_first, want_second = NET.golden(cfg, first, x), NET.golden(cfg, second, x)
    # The two loads back to back: no pixel until both are in, so every map sees the second.
    run_ = flow.rtlsim(twice, cfg, first, x, stall_out=0.3, seed=5)
    assert flow.first_mismatch(NET, run_, want_second, cfg) is None
    assert flow.first_mismatch(NET, run_, want_first, cfg) is not None
    # With idle cycles on the load, a map may start between the loads (seed 5 leaves the load
    # idle right after the first one): the second load then waits until that map is out, so
    # it is all first weights and every later map all second.
    n = len(NET.load_words(cfg, first))
    started_between = []
    for seed in (1, 5):
        stalled = flow.rtlsim(twice, cfg, first, x, stall_in=0.3, stall_out=0.3, seed=seed)
        got, sim = stalled.outputs, stalled.sim
        assert np.array_equal(got[1:], want_second[1:]), seed
        if np.array_equal(got[0], want_first[0]):
            started_between.append(seed)
            assert sim.in_times["i"][0] < sim.in_times["wl"][n]  # between the two loads
            assert sim.in_times["wl"][n] > sim.out_times["o"][0]  # map 0 (one word) was out
        else:
            assert np.array_equal(got[0], want_second[0]), seed
            assert sim.in_times["i"][0] > sim.in_times["wl"][-1]
    assert started_between == [5]


@pytest.mark.parametrize("name, layer, kind", [("seq_gru", "gru", "gru"),
                                               ("seq_expdot", "e1", "expdot"),
                                               ("int8_requant", "q1", "requant")])
def test_a_layer_that_cannot_load_its_weights_is_refused(name, layer, kind):
    with pytest.raises(QhwInputError) as e:
        config_from_dict(NET.config, dict(NET.regression[name], weights="port"))
    message = str(e.value)
    assert message.startswith(f"layer {layer!r} ({kind}): cannot take weights = 'port'")
    assert "\n" not in message
    config_from_dict(NET.config, NET.regression[name])  # baked: fine


def test_a_layers_own_weights_key_is_refused_naming_the_network_option():
    desc = dict(NET.regression["bnn_pool"])
    desc["layers"] = [desc["layers"][0], dict(desc["layers"][1]),
                      dict(desc["layers"][2], weights="port")] + list(desc["layers"][3:])
    with pytest.raises(QhwInputError, match=r"layer 'conv2' \(binconv\): 'weights' is the "
                                            r"network's option.*top of the description"):
        config_from_dict(NET.config, desc)
    with pytest.raises(QhwInputError, match="weights: must be one of"):
        config_from_dict(NET.config, dict(NET.regression["bnn_pool"], weights="rom"))


def test_load_stream_through_axi4_stream():
    """Behind the AXI4-Stream wrapper the network's load stream is s_axis_wl_*, driven by
    cocotbext-axi like the pixels."""
    pytest.importorskip("cocotbext.axi")
    cfg, params, x = _case("bam_features", 6)
    manifest = flow.generate(NET, cfg, params, axis=True).manifest
    assert manifest["axis"]["streams"]["wl"]["tdata"] == "s_axis_wl_tdata"
    got = flow.rtlsim_axis(NET, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=1)
    assert flow.first_mismatch(NET, got, NET.golden(cfg, params, x), cfg) is None


def test_cli_generate_network_with_port_weights(tmp_path, capsys):
    """`qhw generate network --config NET.toml` with weights = "port": the core has a wl
    stream, and other weights (another seed) write the very same Verilog file."""
    desc = dict(NET.regression["bam_features"], weights="port")
    (tmp_path / "net.toml").write_text(to_toml(desc))
    files = []
    for seed in (0, 1):
        out = tmp_path / f"gen{seed}"
        code, _, err = run(["generate", "network", "--config", tmp_path / "net.toml",
                            "--seed", seed, "-o", out], capsys)
        assert code == 0, err
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["config"]["weights"] == "port"
        assert manifest["streams"]["wl"]["words"] == 24
        assert {p["name"] for p in manifest["ports"]} >= {"wl__valid", "wl__ready",
                                                           "wl__payload"}
        files.append((out / f"{manifest['top']}.v").read_text())
        # The words a driver sends on wl, as written beside the core: the network's load words
        # for the weights written beside it, one hexadecimal word per line.
        assert manifest["files"]["load_words"] == "load_words.hex"
        with np.load(out / "weights.npz") as w:
            params = {k: w[k] for k in w.files}
        cfg = config_from_dict(NET.config, manifest["config"])
        lines = (out / "load_words.hex").read_text().splitlines()
        assert [int(line, 16) for line in lines] == NET.load_words(cfg, params)
        assert {len(line) for line in lines} == {-(-manifest["streams"]["wl"]["payload_bits"] // 4)}
    assert files[0] == files[1]
    bad = dict(NET.regression["seq_gru"], weights="port")
    (tmp_path / "bad.toml").write_text(to_toml(bad))
    code, _, err = run(["generate", "network", "--config", tmp_path / "bad.toml", "-o",
                        tmp_path / "gen_bad"], capsys)
    assert_usage_error(code, err, "layer 'gru' (gru)", "weights = 'port'")
    assert not (tmp_path / "gen_bad").exists()
