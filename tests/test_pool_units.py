"""Registration of ``maxpool`` and ``globalpool``: the cost model's formula on hand-counted cases
(the cosimulation checks it to the cycle), manifest entries and operation counts."""

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.golden.pool import GlobalPoolConfig, MaxPoolConfig
from qhw.synth import energy


@pytest.mark.parametrize("cfg, frames, expected, first_input", [
    # 5x7 with 2x2 over 2 frames: the last output comes from pixel 35 + 3*7 + 5 = 61 -> 63;
    # the 7 pixels of row 4 and the column-6 pixels after it are dropped (row 4 not counted).
    (MaxPoolConfig(c_in=3, height=5, width=7, kernel=(2, 2)), 2, 63, 8),
    (MaxPoolConfig(c_in=1, height=1, width=10, kernel=(1, 3)), 2, 10 + 8 + 2, 2),
    (MaxPoolConfig(c_in=1, height=4, width=4, kernel=(2, 2)), 1, 16 + 1, 5),
    (MaxPoolConfig(c_in=1, height=225, width=4, kernel=(2, 2)), 1, 223 * 4 + 3 + 2, 5),
    (GlobalPoolConfig(c_in=2, height=3, width=5), 2, 31, 14),
    (GlobalPoolConfig(c_in=2, height=1, width=1), 4, 5, 0),
])
def test_cost_model_hand_counts(cfg, frames, expected, first_input):
    unit = registry.get("maxpool" if isinstance(cfg, MaxPoolConfig) else "globalpool")
    model = unit.cost_model(cfg, frames)
    assert (model.expected, model.first_input, model.latency) == (expected, first_input, 1)
    assert model.formula == frames * cfg.height * cfg.width
    x = unit.random_inputs(cfg, np.random.default_rng(0), frames)
    assert unit.cost_model(cfg, flow.frames_of(unit, cfg, unit.check_inputs(cfg, x)), x) == model


def test_describe_and_registry():
    assert {"maxpool", "globalpool"} <= set(registry.names())
    for name in ("maxpool", "globalpool"):
        unit = registry.get(name)
        assert len(unit.regression) >= 4
        for d in [unit.default_config, *unit.regression.values()]:
            cfg = config_from_dict(unit.config, d)
            desc = unit.describe(cfg)
            e = cfg.element_bits
            assert desc["streams"]["i"]["payload_bits"] == cfg.c_in * e
            assert desc["streams"]["o"]["payload_bits"] == \
                cfg.c_out * desc["derived"]["out_element_bits"]
    m = config_from_dict(registry.get("maxpool").config,
                         registry.get("maxpool").regression["s8_k2_5x7_floor"])
    d = registry.get("maxpool").describe(m)
    assert d["derived"]["dropped_rows"] == 1 and d["derived"]["dropped_columns"] == 1
    assert d["memories"] == [{"name": "row_buffer", "depth": 3, "width": 24,
                              "layout": d["memories"][0]["layout"]}]


def test_operation_counts():
    unit = registry.get("maxpool")
    cfg = MaxPoolConfig(c_in=4, height=6, width=8, kernel=(2, 2))
    ops = unit.operations(cfg, 2)["ops"]
    assert ops == [{"op": "bitop", "bits": 1, "count": 2 * 3 * 4 * 4 * 3,
                    "what": "max OR of two window values"}]
    s8 = MaxPoolConfig(c_in=4, height=6, width=8, kernel=(2, 2), element_bits=8, signed=True)
    assert unit.operations(s8, 1)["ops"][0]["op"] == "add"
    g = registry.get("globalpool")
    avg = GlobalPoolConfig(c_in=3, height=3, width=5, element_bits=8, signed=True, mode="avg")
    kinds = {o["op"]: o["count"] for o in g.operations(avg, 2)["ops"]}
    assert kinds == {"add": 2 * 3 * 14, "mul": 2 * 3}
    assert energy.operation_energy(g, avg, 2)["pj_per_inference"] > 0


@pytest.mark.parametrize("unit_name", ["maxpool", "globalpool"])
def test_timing_agrees_with_the_cost_model(unit_name):
    """The per-transfer timing a network composes, with every pixel available at once, gives the
    cost model's cycles, latency and first input."""
    unit = registry.get(unit_name)
    for d in unit.regression.values():
        cfg = config_from_dict(unit.config, d)
        frames = 2
        take, out, needs = unit.timing(cfg, list(range(frames * cfg.height * cfg.width)))
        model = unit.cost_model(cfg, frames)
        assert take == list(range(len(take)))
        assert len(out) == unit.output_words(cfg, frames)["o"]
        assert out[-1] - take[0] + 1 == model.expected
        assert needs[0] == model.first_input and out[0] - take[needs[0]] == model.latency
