"""The folding solvers (qhw/folding.py): cycles, FINN's SetFolding greedy, the min-area choice."""

import json
import zlib

import pytest

from qhw import registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.folding import (FoldingLayer, candidates, check_reachable, divisors, finn_set_folding,
                         layer_bound, layer_cycles, metric_value, min_area_folding, solve,
                         target_cycles_from, target_cycles_from_spec)

# Pointwise (1x1, 'valid') layers over a 2x4 map: every grid step makes a window, so the cycles
# are exactly FINN's (C_out/PE)*(K/SIMD)*H_out*W_out = 384/(PE*SIMD) for both, which makes the
# greedy's walk easy to follow by hand.
A = FoldingLayer("A", "bamconv", dict(c_in=12, c_out=4, height=2, width=4, kernel=[1, 1],
                                      weight_bits=8))
B = FoldingLayer("B", "binconv", dict(c_in=8, c_out=6, height=2, width=4, kernel=[1, 1]))

_G = dict(height=16, width=16, padding="same", weight_bits=4, output="threshold")
CHAIN = [FoldingLayer("conv1", "bamconv", dict(c_in=8, c_out=16, kernel=[3, 3], **_G)),
         FoldingLayer("conv2", "bamconv", dict(c_in=16, c_out=32, kernel=[3, 3], **_G)),
         FoldingLayer("conv3", "bamconv", dict(c_in=32, c_out=16, kernel=[1, 1], **_G))]


def _cfg(layer, pe, simd):
    u = registry.get(layer.unit)
    return u, config_from_dict(u.config, {**layer.config, "pe": pe, "simd": simd})


# Cycles -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [
    FoldingLayer("b", "binconv", dict(c_in=3, c_out=4, height=5, width=7, kernel=[3, 3],
                                      padding="same")),
    FoldingLayer("bv", "binconv", dict(c_in=2, c_out=6, height=4, width=6, kernel=[2, 3])),
    FoldingLayer("m", "bamconv", dict(c_in=4, c_out=6, height=1, width=9, kernel=[1, 3],
                                      padding="same", weight_bits=4)),
    FoldingLayer("x", "macconv", dict(c_in=3, c_out=4, height=4, width=5, kernel=[3, 3],
                                      padding="same")),
])
def test_layer_cycles_is_the_unit_cost_model_in_steady_state(layer):
    for pe, simd in candidates(layer):
        u, cfg = _cfg(layer, pe, simd)
        expected = [u.cost_model(cfg, n).expected for n in (2, 3, 4)]
        assert layer_cycles(layer, pe, simd) == expected[1] - expected[0] == \
            expected[2] - expected[1]
        finn = cfg.neuron_fold * cfg.synapse_fold * cfg.out_height * cfg.out_width
        bound = layer_bound(layer, pe, simd)
        assert (layer_cycles(layer, pe, simd) == finn) == (bound == "compute")
        assert layer_cycles(layer, pe, simd) >= finn


def test_candidates_are_the_divisor_pairs_and_fixed_layers_keep_their_config():
    assert candidates(A) == [(p, s) for p in (1, 2, 4) for s in (1, 2, 3, 4, 6, 12)]
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
    gru = FoldingLayer("g", "gru", dict(registry.get("gru").default_config))
    assert candidates(gru) in ([None], [(gru.config.get("pe"), gru.config.get("simd"))])
    u = registry.get("gru")
    cfg = config_from_dict(u.config, gru.config)
    assert layer_cycles(gru) == u.cost_model(cfg, 3).expected - u.cost_model(cfg, 2).expected
    assert layer_bound(gru) == "fixed"


def test_input_bound_layer_takes_one_cycle_per_padded_grid_step():
    layer = CHAIN[0]  # 16x16, 3x3 'same': a 17x17 grid
    assert layer_cycles(layer, 16, 72) == 17 * 17
    assert layer_bound(layer, 16, 72) == "input"
    assert layer_bound(layer, 16, 9) == "mixed"  # 8 cycles a window, plus the pad steps
    assert layer_cycles(layer, 16, 9) > 8 * 256


def test_pe_and_simd_must_fold():
    with pytest.raises(QhwInputError, match=r"layer 'A': pe=3, simd=1 is not a folding"):
        layer_cycles(A, 3, 1)


# FINN's greedy ----------------------------------------------------------------------------------

def test_finn_greedy_hand_worked():
    # Target 40, mvau_wwidth_max 36 (FINN's default).
    # A (bamconv, 8-bit weights, MW = K = 12, MH = 4): SIMD walk over 1,2,3,4,6 gives 384, 192,
    #   128, 96, 64 cycles, none below 40; at SIMD 6 the weight stream is 8*6 = 48 > 36 bits, so
    #   SIMD goes back to 4. PE walk over 1,2,4 gives 96, 48, 24: 24 < 40, PE = 4.
    # B (binconv, 1-bit weights, MW = 8, MH = 6): SIMD 1,2,4,8 gives 384, 192, 96, 48 (width 8
    #   bits at most): SIMD = 8, the last divisor. PE 1,2 gives 48, 24 < 40: PE = 2.
    f = finn_set_folding([A, B], 40)
    assert [(lf.name, lf.pe, lf.simd, lf.cycles) for lf in f.layers] == \
        [("A", 4, 4, 24), ("B", 2, 8, 24)]
    assert f.met and f.relaxed_target is None
    assert (f.bottleneck, f.bottleneck_cycles) == ("A", 24)  # the first of equals, as FINN
    assert f.folding_config() == {"Defaults": {}, "A": {"PE": 4, "SIMD": 4},
                                  "B": {"PE": 2, "SIMD": 8}}
    # FINN stops at cycles strictly below the target: at target 48, B's (1, 8) takes exactly 48
    # cycles and the walk goes on to PE = 2.
    assert finn_set_folding([A, B], 48).layer("B").pe == 2
    # A wider weight stream lets A's SIMD reach 12 (8*12 = 96 bits), where (1, 12) takes 32 < 40
    # cycles: PE stays 1.
    wide = finn_set_folding([A], 40, mvau_wwidth_max=96).layer("A")
    assert (wide.pe, wide.simd, wide.cycles) == (1, 12, 32)


def test_finn_second_pass_relaxes_to_the_bottleneck():
    # Target 10. First pass: A stops at SIMD 4 (width) and PE 4 (max): 24 cycles; B reaches
    # (6, 8) = 8 cycles. The bottleneck A at 24 > 10 relaxes the target to 24; second pass: A
    # again (4, 4) = 24 (never < 24); B: (1, 8) = 48, then PE 1, 2 give 48, 24 (not < 24), PE 3
    # gives 16 < 24: (3, 8).
    f = finn_set_folding([A, B], 10)
    assert [(lf.pe, lf.simd, lf.cycles) for lf in f.layers] == [(4, 4, 24), (3, 8, 16)]
    assert not f.met and f.relaxed_target == 24 and f.bottleneck == "A"
    one = finn_set_folding([A, B], 10, two_pass_relaxation=False)
    assert [(lf.pe, lf.simd) for lf in one.layers] == [(4, 4), (6, 8)]
    # The target is reachable (A unfolded takes 8 cycles), so strict names FINN's width limit.
    with pytest.raises(QhwInputError, match=r"^target: FINN's greedy leaves layer 'A' at 24 "
                                            r"cycles per frame .*mvau_wwidth_max=36[^\n]*$"):
        finn_set_folding([A, B], 10, strict=True)
    # min_area meets it.
    assert min_area_folding([A, B], 10, _lanes_area, "LUT4").met


# Min area ---------------------------------------------------------------------------------------

def _lanes_area(unit, config):
    """A fake, monotone area: lanes times bits, accumulators and memory depth."""
    u = registry.get(unit)
    cfg = config_from_dict(u.config, config)
    bits = 1 if unit == "binconv" else cfg.weight_bits
    return {"LUT4": 3 * cfg.pe * cfg.simd * bits + 20 * cfg.pe
            + cfg.neuron_fold * cfg.synapse_fold / 16 + 50, "FF": 10 * cfg.pe}


def _bumpy_area(unit, config):
    """A fake area that is not monotone in PE or SIMD (a hash-driven bump per point)."""
    base = _lanes_area(unit, config)["LUT4"]
    bump = zlib.crc32(json.dumps(config, sort_keys=True).encode()) % 97
    return {"LUT4": base + 5 * bump, "transistors": 4 * base}


@pytest.mark.parametrize("area", [_lanes_area, _bumpy_area])
@pytest.mark.parametrize("target", [200000, 40000, 24000, 9000, 4096, 2500])
def test_min_area_never_worse_than_finn_and_meets_what_finn_meets(area, target):
    finn = finn_set_folding(CHAIN, target, area=area, metric="ecp5_lut4")
    # When FINN misses (its relaxed result), compare at the cycles FINN reached.
    t = target if finn.met else finn.bottleneck_cycles
    best = min_area_folding(CHAIN, t, area, "ecp5_lut4")
    assert best.met
    assert all(lf.cycles <= t for lf in best.layers)
    assert best.total_area <= finn.total_area if finn.met else True
    finn_at_t = finn.with_area(area, "ecp5_lut4")
    if all(lf.cycles <= t for lf in finn.layers):
        assert best.total_area <= finn_at_t.total_area
    # Per layer too, since the choice separates.
    for ours, theirs in zip(best.layers, finn.layers):
        if theirs.cycles <= t:
            assert metric_value(ours.area, "ecp5_lut4") <= metric_value(theirs.area, "ecp5_lut4")


def test_min_area_is_exhaustive_per_layer_and_breaks_ties_on_cycles():
    target = 24000
    best = min_area_folding(CHAIN, target, _bumpy_area)
    for layer, lf in zip(CHAIN, best.layers):
        feasible = [(p, s) for p, s in candidates(layer) if layer_cycles(layer, p, s) <= target]
        values = {(p, s): _bumpy_area(layer.unit, {**layer.config, "pe": p, "simd": s})["LUT4"]
                  for p, s in feasible}
        assert lf.area["LUT4"] == min(values.values())
    flat = min_area_folding([A], 200, lambda unit, config: {"LUT4": 1})
    assert flat.layers[0].cycles == min(layer_cycles(A, p, s) for p, s in candidates(A))


def test_monotone_pruning_matches_exhaustive_on_a_monotone_area():
    def monotone(unit, config):  # _lanes_area without the memory-depth term, which shrinks
        return {"LUT4": 3 * config["pe"] * config["simd"] + 20 * config["pe"]}

    for target in (240000, 24000, 5000):
        full = min_area_folding(CHAIN, target, monotone)
        pruned = min_area_folding(CHAIN, target, monotone, monotone=True)
        assert full.total_area == pruned.total_area
    # With the depth term the area is not monotone, and pruning can miss the minimum.
    full = min_area_folding(CHAIN, 240000, _lanes_area)
    pruned = min_area_folding(CHAIN, 240000, _lanes_area, monotone=True)
    assert full.total_area <= pruned.total_area


def test_min_area_prefetches_every_query_once():
    seen = []

    class Area:
        def prefetch(self, queries):
            seen.extend(queries)

        def __call__(self, unit, config):
            assert (unit, config) in seen
            return _lanes_area(unit, config)

    min_area_folding(CHAIN, 24000, Area(), monotone=True)
    assert len(seen) == 5 + 6 + 4


def test_unreachable_target_is_one_line_naming_the_layer_and_its_best():
    with pytest.raises(QhwInputError) as e:
        min_area_folding(CHAIN, 280, _lanes_area)
    msg = str(e.value)
    assert msg == ("target: layer 'conv1' cannot meet 280 cycles per frame; its fastest folding "
                   "(pe=16, simd=72) takes 289 cycles (input-bound: one pixel per cycle over "
                   "the padded grid)")
    with pytest.raises(QhwInputError, match=r"^target: layer 'conv2' cannot meet 280 cycles"):
        check_reachable(CHAIN[1:], 280)
    with pytest.raises(QhwInputError, match=r"^target: layer 'conv1' .* 289 cycles"):
        finn_set_folding(CHAIN, 280, strict=True)
    gru = FoldingLayer("g", "gru", dict(registry.get("gru").default_config))
    best = layer_cycles(gru)
    with pytest.raises(QhwInputError, match=rf"^target: layer 'g' cannot meet {best - 1} cycles "
                                            rf"per frame; it takes {best} cycles \(unit 'gru' is "
                                            rf"not foldable"):
        min_area_folding([gru], best - 1, _lanes_area)


def test_fixed_layers_pass_through_both_solvers():
    gru = FoldingLayer("g", "gru", dict(registry.get("gru").default_config))
    cycles = layer_cycles(gru)
    f = finn_set_folding([A, gru], 40)
    assert f.layer("g").cycles == cycles and f.layer("g").bound == "fixed"
    if cycles > 40:
        assert f.bottleneck == "g" and f.relaxed_target == cycles
    area = lambda unit, config: {"LUT4": 1} if unit == "gru" else _lanes_area(unit, config)
    m = min_area_folding([A, gru], max(cycles, 40), area)
    assert m.layer("g").config == gru.config or m.layer("g").config == {
        **gru.config, "pe": gru.config.get("pe"), "simd": gru.config.get("simd")}


def test_bad_layers_and_targets_are_one_line_errors():
    cases = [
        (lambda: finn_set_folding([], 10), r"^layers: the chain has no layers$"),
        (lambda: finn_set_folding([A, A], 10), r"^layers: layer name 'A' appears twice$"),
        (lambda: finn_set_folding([A], 0), r"^target_cycles: must be a positive integer"),
        (lambda: finn_set_folding([FoldingLayer("q", "nosuch", {})], 10), r"^unit: unknown"),
        (lambda: finn_set_folding([FoldingLayer("q", "binconv", {"c_in": 2})], 10),
         r"^layer 'q' config: missing key 'c_out'"),
        (lambda: finn_set_folding([A], 10, mvau_wwidth_max=0), r"^mvau_wwidth_max: must be"),
        (lambda: min_area_folding([A], 100, _lanes_area, "nosuch"),
         r"^metric: layer 'A': the area figures have no 'nosuch'"),
        (lambda: solve([A], 100, "min_area"), r"^solver: 'min_area' needs an area model"),
        (lambda: solve([A], 100, "other"), r"^solver: must be one of"),
    ]
    for call, pattern in cases:
        with pytest.raises(QhwInputError, match=pattern) as e:
            call()
        assert "\n" not in str(e.value)


# Targets and output ---------------------------------------------------------------------------

def test_target_cycles_from_the_network_spec():
    assert target_cycles_from(24, frame_rate_hz=100, realtime_factor=1.0) == 240000
    assert target_cycles_from(24, frame_rate_hz=100, realtime_factor=10) == 24000
    assert target_cycles_from(100, fps=3) == 33333333  # rounded down
    assert target_cycles_from_spec({"clock_mhz": 24, "realtime_factor": 1.0,
                                    "frame_rate_hz": 100}) == 240000
    assert target_cycles_from_spec({"clock_mhz": 24, "frame_rate_hz": 100}) == 240000
    for spec, pattern in [
        ({"clock_mhz": 0, "frame_rate_hz": 100}, r"^target\.clock_mhz: must be a positive"),
        ({"clock_mhz": 24, "frame_rate_hz": -1}, r"^target\.frame_rate_hz: must be a positive"),
        ({"clock_mhz": 24, "frame_rate_hz": 100, "realtime_factor": "x"},
         r"^target\.realtime_factor: must be a positive"),
        ({"clock_mhz": 24}, r"^target: needs frame_rate_hz"),
        ({"frame_rate_hz": 100}, r"^target: missing key 'clock_mhz'"),
        ({"clock_mhz": 24, "fps": 1, "frame_rate_hz": 100}, r"^target: give either fps"),
        ({"clock_mhz": 24, "frame_rate": 100}, r"^target: unknown key 'frame_rate'"),
        ({"clock_mhz": 1e-9, "fps": 100}, r"^target: .* less than one cycle per frame"),
    ]:
        with pytest.raises(QhwInputError, match=pattern):
            target_cycles_from_spec(spec)


def test_to_dict_is_json_in_finn_vocabulary():
    f = min_area_folding(CHAIN, 24000, _lanes_area)
    d = json.loads(json.dumps(f.to_dict()))
    assert d["solver"] == "min_area" and d["met"] is True
    assert d["max_cycles"] == max(d["estimate_layer_cycles"].values())
    assert d["max_cycles_node_name"] in d["estimate_layer_cycles"]
    assert set(d["folding_config"]) == {"Defaults", "conv1", "conv2", "conv3"}
    assert all(set(v) == {"PE", "SIMD"} for k, v in d["folding_config"].items() if k != "Defaults")
    assert d["total_area"] == pytest.approx(sum(lf["area"]["LUT4"] for lf in d["layers"]))
    for lf, layer in zip(d["layers"], CHAIN):
        assert lf["config"] == {**layer.config, "pe": lf["PE"], "simd": lf["SIMD"]}
        assert lf["cycles"] == layer_cycles(layer, lf["PE"], lf["SIMD"])
    assert "total_area" not in finn_set_folding(CHAIN, 24000).to_dict()


def test_metric_names():
    fig = {"LUT4": 10, "CCU2C": 3, "LUTRAM": 1, "FF": 4, "transistors": 99, "LUT": 7}
    assert metric_value(fig, "ecp5_lut4") == 10
    assert metric_value(fig, "ecp5_lut4_sites") == 10 + 6 + 4
    assert metric_value(fig, "transistors") == 99
    assert metric_value(fig, "xc7_lut") == 7
    assert metric_value(fig, lambda f: f["FF"] * 2) == 8
    assert metric_value({"LUT4": 1}, "ecp5_lut4_sites") == 1  # absent extras read as 0
    assert min_area_folding(CHAIN, 24000, _bumpy_area, "transistors").metric == "transistors"
