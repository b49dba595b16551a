"""The requantization unit ``requant``: its golden model against IEEE float64 arithmetic in NumPy
(an outside oracle: x * M / 2**shift is exact in float64 below 2**53, and floor(v + 0.5) rounds
halves up), the RTL in Verilator bit for bit against the golden model, to the cycle against the
cost model with no stalls and bit-exact under stalls and back-pressure; config and weight-file
errors; and the checks can fail."""

import dataclasses

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import requant as R

UNIT = registry.get("requant")
FRAMES = 2


def _float_oracle(cfg, mult, x):
    lo, hi = R.out_range(cfg)
    v = x.astype(np.float64) * mult.astype(np.float64) / 2.0 ** cfg.shift
    return np.clip(np.floor(v + 0.5) if cfg.shift else v, lo, hi).astype(np.int64)


@pytest.mark.parametrize("name", sorted(UNIT.regression))
def test_golden_equals_float64_oracle(name):
    cfg = config_from_dict(UNIT.config, UNIT.regression[name])
    rng = np.random.default_rng(7)
    p = UNIT.random_params(cfg, rng)
    x = UNIT.random_inputs(cfg, rng, 64)
    if R.product_bits(cfg) > 53:  # keep the oracle exact: inputs below 2**(52 - mult_bits)
        x = np.clip(x, -(1 << (52 - cfg.mult_bits)), 1 << (52 - cfg.mult_bits))
    y = UNIT.golden(cfg, p, x)
    np.testing.assert_array_equal(y, _float_oracle(cfg, p["multipliers"], x))
    lo, hi = R.out_range(cfg)
    # The random inputs reach both saturations and the unsaturated range.
    assert (y == lo).any() and (y == hi).any() and ((y > lo) & (y < hi)).mean() > 0.1


def test_exhaustive_small_format_rounds_halves_up():
    """Every 6-bit input times every 3-bit multiplier, shift 2: ties (x*M = 4k + 2) go up."""
    cfg = R.RequantConfig(c_in=8, height=1, width=64, in_bits=6, out_bits=3, out_signed=True,
                          mult_bits=3, shift=2, pe=8)
    x = np.broadcast_to(np.arange(-32, 32).reshape(1, 64, 1), (1, 64, 8)).reshape(1, 1, 64, 8)
    mult = np.arange(8)
    y = R.reference(cfg, {"multipliers": mult}, x)
    np.testing.assert_array_equal(y, _float_oracle(cfg, mult, x))
    # x = 1, M = 2: 2/4 = 0.5 -> 1; x = -1, M = 2: -0.5 -> 0; x = 3, M = 7: 21/4 = 5.25 -> 3.
    assert y[0, 0, 33, 2] == 1 and y[0, 0, 31, 2] == 0 and y[0, 0, 35, 7] == 3


def test_multipliers_for_places_the_binary_point():
    scales = np.array([0.0123, 0.002, 0.0])
    mult, shift = R.multipliers_for(scales, 16)
    assert mult.max() < 1 << 16 and mult.max() >= 1 << 15  # the largest uses all 16 bits
    np.testing.assert_allclose(mult / 2.0 ** shift, scales, rtol=2 ** -15 / (0.002 / 0.0123),
                               atol=2.0 ** -shift)
    with pytest.raises(QhwInputError, match="scales"):
        R.multipliers_for([-1.0, 1.0])


@pytest.mark.parametrize("fields, word", [
    (dict(pe=3), "pe"),
    (dict(in_bits=48, mult_bits=24), "mult_bits"),
    (dict(out_bits=1, out_signed=True), "out_bits"),
    (dict(shift=-1), "shift"),
    (dict(out_signed=1), "out_signed"),
])
def test_bad_configs_name_the_field(fields, word):
    with pytest.raises(QhwInputError, match=word):
        R.RequantConfig(**{"c_in": 4, "height": 2, "width": 2, **fields})


def test_bad_weights_name_the_array():
    cfg = R.RequantConfig(c_in=4, height=2, width=2, mult_bits=4)
    with pytest.raises(QhwInputError, match="multipliers"):
        R.check_params(cfg, {"multipliers": [1, 2, 3, 16]})
    with pytest.raises(QhwInputError, match="missing array 'multipliers'"):
        R.check_params(cfg, {})
    with pytest.raises(QhwInputError, match="unknown array 'bias'"):
        R.check_params(cfg, {"multipliers": [1, 2, 3, 4], "bias": [0] * 4})


def _case(name, seed):
    cfg = config_from_dict(UNIT.config, UNIT.regression[name])
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, np.random.default_rng(seed)))
    x = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, np.random.default_rng(seed), FRAMES))
    return cfg, params, x, UNIT.golden(cfg, params, x)


def _check(unit, cfg, run, expected, x, *, timing):
    mismatch = flow.first_mismatch(unit, run, expected, cfg)
    assert mismatch is None, mismatch
    if timing:
        model = unit.cost_model(cfg, FRAMES, x)
        assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
        assert run.latency == model.latency, \
            f"measured latency {run.latency}, model {model.latency}"


@pytest.mark.parametrize("name", sorted(UNIT.regression))
def test_rtl_bit_exact_cycles_and_stalls(name):
    cfg, params, x, expected = _case(name, seed=1)
    run = flow.rtlsim(UNIT, cfg, params, x)
    _check(UNIT, cfg, run, expected, x, timing=True)
    take, out, _ = UNIT.timing(cfg, [0] * len(run.sim.in_times["i"]))
    first = run.sim.in_times["i"][0]
    assert [t - first for t in run.sim.in_times["i"]] == take  # F cycles per pixel, no bubbles
    assert [t - first for t in run.sim.out_times["o"]] == out
    stalled = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=3)
    _check(UNIT, cfg, stalled, expected, x, timing=False)


def test_heavy_back_pressure_loses_nothing_and_checks_can_fail():
    cfg, params, x, expected = _case("u8_c6_pe3", seed=4)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.0, stall_out=0.9, seed=5)
    _check(UNIT, cfg, run, expected, x, timing=False)
    assert run.cycles > 2 * UNIT.cost_model(cfg, FRAMES).expected
    wrong = expected.copy()
    wrong[1, 0, 2, 4] += 1
    with pytest.raises(AssertionError, match="frame 1, row 0, column 2, channel 4"):
        _check(UNIT, cfg, run, wrong, x, timing=False)
    run = flow.rtlsim(UNIT, cfg, params, x)
    model = UNIT.cost_model(cfg, FRAMES, x)
    for field in ("expected", "latency"):
        bad = dataclasses.replace(model, **{field: getattr(model, field) + 1})
        off = dataclasses.replace(UNIT, cost_model=lambda *a, bad=bad: bad)
        with pytest.raises(AssertionError, match="measured"):
            _check(off, cfg, run, expected, x, timing=True)
