"""The area models of the folding solvers (synth/area_model.py)."""

import json
import warnings

import pytest

from qhw import registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.folding import FoldingLayer, finn_set_folding, min_area_folding
from qhw.synth.area_model import (FEATURES, AreaExtrapolationWarning, FittedArea, SynthArea,
                                  design_points, features)

BASE = dict(c_in=16, c_out=32, height=16, width=16, kernel=[3, 3], padding="same",
            weight_bits=4, output="threshold")
COEF = {"lane_bits": 3.0, "acc_bits": 2.0, "weight_words": 0.5, "const": 100.0}


def _features(unit, config):
    u = registry.get(unit)
    return features(unit, config_from_dict(u.config, config))


def linear(unit, config):
    """An exactly linear synthetic area in the model's features."""
    x = _features(unit, config)
    return {"LUT4": sum(COEF[f] * x[f] for f in FEATURES), "FF": 7 * x["acc_bits"] + 10,
            "fmax_mhz": True}  # a non-numeric (bool) figure is not fitted


def test_fit_reproduces_an_exactly_linear_area(tmp_path):
    area = FittedArea(synth=linear, cache_dir=tmp_path)
    fit = area.fit("bamconv", {**BASE, "pe": 4, "simd": 9})
    assert fit.rank == len(FEATURES) and len(fit.train) == 6 and len(fit.holdout) == 2
    assert set(fit.coef) == {"LUT4", "FF"}
    for err in (fit.train_error, fit.holdout_error):
        assert err["LUT4"]["max_abs"] < 1e-6 and err["FF"]["max_rel"] < 1e-9
    assert fit.coef["LUT4"] == pytest.approx([COEF[f] for f in FEATURES])
    for pe in (1, 2, 4, 8, 16, 32):
        for simd in (1, 3, 16, 48, 144):
            cfg = {**BASE, "pe": pe, "simd": simd}
            assert area("bamconv", cfg)["LUT4"] == pytest.approx(linear("bamconv", cfg)["LUT4"])
    assert "held out" in fit.report() and "LUT4: train rms 0.0" in fit.report("LUT4")
    assert list(tmp_path.iterdir()) == []  # a custom synth is not cached without a cache_key


def test_design_points_cover_the_grid_corners_and_hold_out_interior_points():
    train, held = design_points(32, 144)
    assert {(1, 1), (1, 144), (32, 1), (32, 144)} <= set(train)
    assert len(set(train)) == 6 and len(held) == 2 and not set(held) & set(train)
    assert all(1 < p < 32 and 1 < s < 144 for p, s in held)
    train, held = design_points(32, 144, pe_range=(2, 8), simd_range=(4, 36))
    assert {p for p, _ in train} == {2, 4, 8} and min(s for _, s in train) == 4
    with pytest.raises(QhwInputError, match=r"^pe_range: no divisor in \[5, 7\]"):
        design_points(32, 144, pe_range=(5, 7))


def test_queries_outside_the_fitted_range_are_never_silent(tmp_path):
    area = FittedArea(synth=linear, pe_range=(2, 8), simd_range=(4, 36))
    inside = {**BASE, "pe": 4, "simd": 16}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        area("bamconv", inside)
    with pytest.warns(AreaExtrapolationWarning, match=r"pe=16, simd=16 is an extrapolation "
                                                      r"\(pe=16 outside the fitted \[2, 8\]"):
        area("bamconv", {**BASE, "pe": 16, "simd": 16})
    strict = FittedArea(synth=linear, pe_range=(2, 8), simd_range=(4, 36), on_extrapolate="raise")
    with pytest.raises(QhwInputError, match=r"^area model: bamconv at pe=2, simd=144 is an "
                                            r"extrapolation \(simd=144 outside"):
        strict("bamconv", {**BASE, "pe": 2, "simd": 144})


def test_fit_is_cached_on_disk(tmp_path):
    FittedArea(synth=linear, cache_key="linear-v1", cache_dir=tmp_path).fit("bamconv", BASE)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and json.loads(files[0].read_text())["unit"] == "bamconv"

    def broken(unit, config):
        raise AssertionError("the cached fit should have been used")

    again = FittedArea(synth=broken, cache_key="linear-v1", cache_dir=tmp_path)
    cfg = {**BASE, "pe": 8, "simd": 8}
    assert again("bamconv", cfg)["LUT4"] == pytest.approx(linear("bamconv", cfg)["LUT4"])
    other = FittedArea(synth=broken, cache_key="linear-v1", cache_dir=tmp_path)
    with pytest.raises(AssertionError):  # another base config is another fit
        other.fit("bamconv", {**BASE, "weight_bits": 5})


def test_fitted_area_drives_the_solver():
    layers = [FoldingLayer("c", "bamconv", BASE)]
    area = FittedArea(synth=linear, on_extrapolate="raise")
    best = min_area_folding(layers, 24000, area)
    exact = min_area_folding(layers, 24000, linear)
    assert (best.layers[0].pe, best.layers[0].simd) == (exact.layers[0].pe, exact.layers[0].simd)
    assert best.total_area <= finn_set_folding(layers, 24000, area=area).total_area


def test_bad_arguments_are_one_line_errors():
    for kw, pattern in [(dict(on_extrapolate="loud"), r"^on_extrapolate: must be one of"),
                        (dict(train=2), r"^train: must be an integer >= 4"),
                        (dict(holdout=-1), r"^holdout: must be")]:
        with pytest.raises(QhwInputError, match=pattern):
            FittedArea(synth=linear, **kw)
    with pytest.raises(QhwInputError, match=r"^unit: FittedArea models the foldable units"):
        FittedArea(synth=linear).fit("gru", dict(registry.get("gru").default_config))
    with pytest.raises(QhwInputError, match=r"needs 'pe' and 'simd'"):
        FittedArea(synth=linear)("bamconv", BASE)
    with pytest.raises(QhwInputError, match=r"^binconv config: unknown key 'weight_bits'"):
        SynthArea()("binconv", {**BASE, "pe": 1, "simd": 1})


TINY = dict(c_in=2, c_out=2, height=3, width=3, kernel=[1, 1], pe=1, simd=1)


def test_synth_area_is_the_synthesized_figures():
    # The one real synthesis of the default run: a 2-channel 1x1 binconv on ECP5 (seconds).
    area = SynthArea("ecp5")
    figures = area("binconv", TINY)
    assert figures["LUT4"] > 0 and "FF" in figures and "fmax_mhz" not in figures
    assert area("binconv", dict(TINY)) == figures  # memoized (and cached on disk)
    area.prefetch([("binconv", TINY)])  # nothing left to do


@pytest.mark.slow
def test_fit_on_real_synthesis():
    base = dict(c_in=4, c_out=8, height=6, width=6, kernel=[3, 3], padding="same",
                output="threshold")
    area = FittedArea("ecp5", jobs=2, train=6, holdout=2)
    fit = area.fit("binconv", base)
    print(fit.report("LUT4"))
    assert fit.rank == len(FEATURES)
    assert fit.train_error["LUT4"]["max_rel"] < 0.15
    assert fit.holdout_error["LUT4"]["max_rel"] < 0.25
    # A second model finds the fit in the disk cache without synthesizing.
    cached = FittedArea("ecp5", synth=None)
    assert cached.fit("binconv", base).coef == fit.coef
