"""A sign-exponent-only layer in the network flow with the issue-15 options: an ``expdot`` dense
layer with a bounded accumulator and the deep pipeline, followed by a compact full-range one (or
a compact ``rounded`` one: a float accumulator rounded after each fold).

The network's golden output equals the expdot golden model applied layer by layer; the RTL is
bit-exact with and without stalls, and its cycles equal the network cost model (which takes
each expdot layer's latency from :func:`qhw.hdl.expdot.stages`).
"""

import copy

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.golden import expmul as g

UNIT = registry.get("network")

SPEC = {
    "name": "seofp_dense",
    "input": {"height": 1, "width": 1, "channels": 8, "format": "fp16", "steps": 2},
    "layers": [
        {"name": "e1", "kind": "expdot", "outputs": 4, "simd": 4, "weight_exp_bits": 4,
         "weight_bias": 8, "accumulator": "bounded", "exp_range": [-10, 8],
         "pipeline": "deep"},
        {"name": "e2", "kind": "expdot", "outputs": 2, "simd": 2, "weight_exp_bits": 4,
         "weight_bias": 8},
    ],
}


def _case(seed, frames=6, e2_accumulator="exact"):
    spec = copy.deepcopy(SPEC)
    spec["layers"][1]["accumulator"] = e2_accumulator
    cfg = config_from_dict(UNIT.config, spec)
    rng = np.random.default_rng(seed)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    x = (rng.normal(size=(frames * 2, 1, 1, 8)) * 2).astype(np.float16).view(np.uint16)
    inputs = UNIT.check_inputs(cfg, {"activations": x.astype(np.int64)})
    return cfg, params, inputs, frames


@pytest.mark.parametrize("e2_accumulator", ["exact", "rounded"])
def test_seofp_layer_golden_rtl_and_cycles(e2_accumulator):
    cfg, params, inputs, frames = _case(0, e2_accumulator=e2_accumulator)
    got = UNIT.golden(cfg, params, inputs)
    e1 = cfg.layer("e1").config
    e2 = cfg.layer("e2").config
    assert e1.bounded and e1.pipeline == "deep"
    assert e2.accumulator == e2_accumulator
    if e2_accumulator == "exact":
        assert e1.acc_bits < e2.acc_bits
    x = np.asarray(inputs["activations"]).reshape(-1, 8)
    h = np.stack([g.expdot_ref(e1, x, params["e1.weights"][o]) for o in range(4)], axis=1)
    y = np.stack([g.expdot_ref(e2, h, params["e2.weights"][o]) for o in range(2)], axis=1)
    np.testing.assert_array_equal(np.asarray(got).reshape(y.shape), y)
    run, mismatch = flow.check_rtl(UNIT, cfg, params, inputs)
    assert mismatch is None, mismatch
    model = UNIT.cost_model(cfg, frames, inputs)
    assert run.cycles == model.expected, (run.cycles, model.expected)
    assert run.latency == model.latency
    run = flow.rtlsim(UNIT, cfg, params, inputs, stall_in=0.4, stall_out=0.5, seed=5)
    message = flow.first_mismatch(UNIT, run, got)
    assert message is None, message
