"""Whole-network cosimulation: every regression network in Verilator, bit-exact against the
network golden model with and without random stalls, cycles and latency equal to the composed
cost model, and a mismatch traced to the first layer that differs."""

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict

UNIT = registry.get("network")
FRAMES = 2


def _case(name, seed):
    cfg = config_from_dict(UNIT.config, UNIT.regression[name])
    rng = np.random.default_rng(seed)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    inputs = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, rng, FRAMES))
    return cfg, params, inputs


@pytest.mark.parametrize("name", sorted(UNIT.regression))
def test_network_bit_exact_cycles_and_stalls(name):
    cfg, params, inputs = _case(name, 1)
    run, mismatch = flow.check_rtl(UNIT, cfg, params, inputs)
    assert mismatch is None, mismatch
    model = UNIT.cost_model(cfg, FRAMES, inputs)
    assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
    assert run.latency == model.latency
    # FINN's stable throughput: the last frame's cycles, measured and from the composed timing
    from qhw.hdl.network import network_timing
    out = network_timing(cfg, FRAMES, inputs).out
    per_frame = len(out) // FRAMES
    assert run.steady_cycles == out[-1] - out[-1 - per_frame]
    stalled, mismatch = flow.check_rtl(UNIT, cfg, params, inputs, stall_in=0.3, stall_out=0.3,
                                       seed=5)
    assert mismatch is None, mismatch
    assert stalled.cycles >= run.cycles


def test_mismatch_names_the_first_differing_layer():
    """Hardware built with one weight of conv2 changed: the output differs, and the probes say
    that conv1 and pool1 agree and conv2 is where it starts."""
    cfg, params, inputs = _case("bnn_pool", 1)
    hardware = dict(params)
    w = hardware["conv2.weights"].copy()
    w[0, 0, 1, 1] ^= 1
    hardware["conv2.weights"] = w
    run = flow.rtlsim(UNIT, cfg, hardware, inputs)
    expected = UNIT.golden(cfg, params, inputs)
    assert flow.first_mismatch(UNIT, run, expected, cfg) is not None
    where = UNIT.locate(cfg, params, inputs, hardware_params=hardware)
    assert where.startswith("first differing layer 'conv2' (binconv): mismatch at frame "), where
    assert "channel 0" in where  # only output channel 0's weights changed
    assert UNIT.locate(cfg, params, inputs) is None


def test_manifest_states_the_fifo_depths_the_design_uses():
    """A consistency check, not an oracle (the simulation tests are): the depths come from the
    paced timing, the fast macconv of bam_features needs a FIFO deeper than the minimum behind
    it, and the manifest states the depths the generator builds."""
    from qhw.hdl.network import Network, fifo_depths, network_timing, steady_cycles
    cfg = config_from_dict(UNIT.config, UNIT.regression["bam_features"])
    depths = fifo_depths(cfg)
    period = max(steady_cycles(layer) for layer in cfg.resolved)
    paced = network_timing(cfg, 3, period=period)
    assert depths[0] == 0 and depths[1] == max(2, paced.fifo_depths[1]) > 2
    described = UNIT.describe(cfg)["fifos"]
    assert [f["depth"] for f in described] == depths[1:]
    params = UNIT.random_params(cfg, np.random.default_rng(0))
    network = Network(cfg, params)
    network._MustUse__silence = True  # built only to read its depths, never elaborated
    assert network.fifo_depths == depths


def test_shallower_fifos_than_derived_lose_cycles():
    """fold_solved's first FIFO is derived 4 deep: conv2 takes pixels in bursts, between its
    windows, so with every FIFO 1 deep conv1, the slowest layer, is held back and the run
    takes longer than the model; with the derived depths it takes exactly the model's cycles
    (the regression above)."""
    from qhw.cosim import runner
    from qhw.hdl.common import to_verilog
    from qhw.hdl.network import Network, fifo_depths

    cfg, params, inputs = _case("fold_solved", 1)
    assert fifo_depths(cfg) == [0, 4, 2]
    frames = 3
    x = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, np.random.default_rng(1), frames))
    verilog = to_verilog(Network(cfg, params, depths=[0, 1, 1]), "network")
    sim = runner.simulate(verilog, "network", UNIT.testbench, UNIT.pack_inputs(cfg, x),
                          UNIT.output_words(cfg, frames), timeout_cycles=100000)
    assert sim.cycles > UNIT.cost_model(cfg, frames, x).expected
