"""Cosimulation regression of ``bamconv`` and ``macconv``: RTL in Verilator against the golden
model bit for bit, cycles against the cost model (gated cycles depend on the gates), and the
netlist check that binary activations need no multiplier."""

import numpy as np
import pytest

from qhw import flow, registry, synth_flow
from qhw.config import config_from_dict

FRAMES = 2
CASES = [(unit, name) for unit in ("bamconv", "macconv")
         for name in sorted(registry.get(unit).regression)]


def _case(unit_name, name, seed, density=None):
    unit = registry.get(unit_name)
    cfg = config_from_dict(unit.config, unit.regression[name])
    rng = np.random.default_rng(seed)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    inputs = (unit.random_inputs(cfg, rng, FRAMES, density) if cfg.gating != "none"
              else unit.random_inputs(cfg, rng, FRAMES))
    inputs = unit.check_inputs(cfg, inputs)
    return unit, cfg, params, inputs, unit.golden(cfg, params, inputs)


@pytest.mark.parametrize("unit_name, name", CASES)
def test_bit_exact_and_cycles(unit_name, name):
    unit, cfg, params, inputs, expected = _case(unit_name, name, seed=1, density=0.5)
    run = flow.rtlsim(unit, cfg, params, inputs)
    assert flow.first_mismatch(unit, run, expected) is None, \
        flow.first_mismatch(unit, run, expected)
    model = unit.cost_model(cfg, FRAMES, inputs)
    assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
    assert run.latency == model.latency


@pytest.mark.parametrize("unit_name, name", CASES)
def test_bit_exact_under_stalls(unit_name, name):
    unit, cfg, params, inputs, expected = _case(unit_name, name, seed=2, density=0.3)
    run = flow.rtlsim(unit, cfg, params, inputs, stall_in=0.5, stall_out=0.5, seed=3)
    assert flow.first_mismatch(unit, run, expected) is None, \
        flow.first_mismatch(unit, run, expected)


@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
def test_gated_cycles_follow_gate_density(density):
    """Cycles scale with the active neuron folds; all-off positions cost one cycle each."""
    unit, cfg, params, inputs, expected = _case("bamconv", "1d_k3_same_w4_sum_mask", seed=4,
                                                density=density)
    run = flow.rtlsim(unit, cfg, params, inputs)
    assert flow.first_mismatch(unit, run, expected) is None
    model = unit.cost_model(cfg, FRAMES, inputs)
    assert run.cycles == model.expected
    full = unit.cost_model(cfg, FRAMES)
    if density == 1.0:
        assert model.formula == full.formula
    else:
        assert model.formula < full.formula


@pytest.mark.parametrize("target, cells", [("xc7", ("DSP",)), ("ecp5", ("MULT18X18D", "ALU54B"))])
def test_bamconv_netlist_has_no_multipliers(target, cells):
    unit = registry.get("bamconv")
    cfg = config_from_dict(unit.config, unit.regression["2d_k3_same_w8_sum_pe2_simd3"])
    params = unit.check_params(cfg, unit.random_params(cfg, np.random.default_rng(0)))
    figures = synth_flow.synthesize_unit(unit, cfg, params, target, fmax=False)["figures"]
    assert figures["LUT" if target == "xc7" else "LUT4"] > 0
    assert all(figures[c] == 0 for c in cells), figures
