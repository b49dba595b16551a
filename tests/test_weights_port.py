"""Run-time weights (``weights = "port"``) for the folded convolution units: the memories start
empty (the Verilog does not depend on the weights), a weight-load stream ``wl`` writes them,
and the unit then computes bit-exactly with the loaded weights under stalls and back-pressure;
a second load replaces the first. Inside a network the option is the network's, not a layer's
(tests/test_network_weights_port.py)."""

import dataclasses

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError

CASES = [("binconv", "2d_k3_same_thr_pe2_simd3"), ("bamconv", "2d_k3_same_w8_sum_pe2_simd3"),
         ("bamconv", "2d_k2_valid_w5_thr_count_simd1"), ("macconv", "2d_k3_same_u8_requant_pe2")]


def _case(name, config, seed):
    unit = registry.get(name)
    cfg = config_from_dict(unit.config, dict(unit.regression[config], weights="port"))
    rng = np.random.default_rng(seed)
    return unit, cfg, unit.check_params(cfg, unit.random_params(cfg, rng)), rng


@pytest.mark.parametrize("name, config", CASES)
def test_load_then_compute_bit_exact(name, config):
    unit, cfg, params, rng = _case(name, config, 1)
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, 2))
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=2)
    assert flow.first_mismatch(unit, run, unit.golden(cfg, params, x), cfg) is None
    assert len(run.sim.in_times["wl"]) == len(unit.load_words(cfg, params))
    # No window is computed before the whole load (the window generator may take pixels).
    assert run.sim.out_times["o"][0] > run.sim.in_times["wl"][-1]


@pytest.mark.parametrize("name, config", CASES[:2])
def test_the_weights_are_not_in_the_verilog_and_a_second_load_replaces_the_first(name, config):
    unit, cfg, first, rng = _case(name, config, 3)
    _, _, second, _ = _case(name, config, 4)
    assert flow.generate(unit, cfg, first).verilog == flow.generate(unit, cfg, second).verilog
    baked = dataclasses.replace(cfg, weights="baked")
    assert flow.generate(unit, baked, first).verilog != flow.generate(unit, baked, second).verilog
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, 1))
    twice = dataclasses.replace(unit, load_words=lambda c, p: unit.load_words(c, first)
                                + unit.load_words(c, second))
    run = flow.rtlsim(twice, cfg, first, x, stall_in=0.2, seed=5)
    assert flow.first_mismatch(unit, run, unit.golden(cfg, second, x), cfg) is None
    assert flow.first_mismatch(unit, run, unit.golden(cfg, first, x), cfg) is not None


def test_manifest_documents_the_load_stream_and_a_network_layer_refuses_it():
    unit, cfg, params, _ = _case("bamconv", "2d_k3_same_w8_sum_pe2_simd3", 0)
    wl = flow.generate(unit, cfg, params).manifest["streams"]["wl"]
    assert wl["direction"] == "in" and "weight-memory words" in wl["layout"]
    net = registry.get("network")
    desc = dict(net.regression["bnn_pool"])
    desc["layers"] = [dict(desc["layers"][0], weights="port")] + list(desc["layers"][1:])
    with pytest.raises(QhwInputError, match="conv1.*the network's option.*weights = 'port'"):
        config_from_dict(net.config, desc)


def test_load_stream_through_axi4_stream():
    """With --axis the load stream is s_axis_wl_*, driven by cocotbext-axi like the inputs."""
    pytest.importorskip("cocotbext.axi")
    unit, cfg, params, rng = _case("bamconv", "2d_k3_same_w8_sum_pe2_simd3", 6)
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, 1))
    got = flow.rtlsim_axis(unit, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=1)
    assert flow.first_mismatch(unit, got, unit.golden(cfg, params, x), cfg) is None
