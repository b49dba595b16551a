"""The chosen GRU configuration as a whole network, at the task's real size (issue 14).

    .venv/bin/python bench/bench_search_network.py [--task kws|digits|both] [-o build/bench]
        [-j 2] [--utterances 8] [--stall-utterances 2] [--no-toggle] [--no-pnr] [--seeds 3]
        [--search DIR]   # DIR: a finished `qhw search` of --task (its front and choice)

Per task (default: both; recorded in docs/search.md):

1. **Candidates**: the homogeneous 4/6/8/12-bit configurations, the mixed points of the digits
   front (docs/search_digits_front.csv) and, for kws, 6-bit variants with narrower parts
   (:data:`KWS_VARIANTS`). This is *not* an NSGA-II search of kws (none has been run: up to an
   hour on the shared 2 cores): a hand-picked set, evaluated with the search's own objective
   (:func:`qhw.search.search.evaluate_set`: QAT 100 steps, the integer golden model's
   validation error, the area model), its front synthesized (generic, ECP5) and the chosen
   configuration taken by the search's rule: the least synthesized transistors within 1 point
   of homogeneous 8-bit's validation accuracy.
2. **Networks**: the chosen configuration and homogeneous 8-bit, each exported as a network
   (features -> GRU on 8 MACs -> dense head -> class scores) into ``<output>/search_network/``
   by ``qhw search --export-network``'s :func:`qhw.search.export.export_chosen` (``<name>.json``
   included); its golden model against the integer classifier on the whole test split; its RTL
   against the golden model on ``--utterances`` test utterances (C++ harness, no stalls: cycles
   and latency against the cost model) and ``--stall-utterances`` under 30 % stalls (cocotb);
   ECP5 and iCE40 synthesis of the whole network and its layers (place and route for Fmax unless
   ``--no-pnr``); energy per utterance, both estimates (synth/energy.py: operation counts on the
   ``--utterances``, gate-level toggles on one utterance unless ``--no-toggle``).
3. **Seeds**: the validation and test accuracy of both configurations after the candidate's QAT
   with ``--seeds`` seeds (0 is the search's), for the noise of the objective.

Writes ``<output>/search_network.json`` and ``.md``; every synthesis, build and candidate is
cached, so a rerun costs little.
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _report  # noqa: E402

from qhw import flow, registry, synth_flow  # noqa: E402
from qhw.golden import gru as g  # noqa: E402
from qhw.search import export as E  # noqa: E402
from qhw.search import search as S  # noqa: E402
from qhw.synth import energy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAMES = g.FORMAT_NAMES
NETWORK = registry.get("network")


def _all(b, **over):
    return {**{n: b for n in NAMES}, **over}


#: 6-bit variants for kws: part A measured 6-bit within the noise of 8-bit on kws after the
#: candidate budget and 4-bit 20 points below (docs/search.md), so the room for a smaller
#: configuration within 1 point lies between them: narrower weights (the weight ROM and the
#: MAC multipliers), input, operators or gates of the 6-bit configuration.
KWS_VARIANTS = [
    _all(6, weight=4),
    _all(6, weight=5, input=5),
    _all(6, weight=4, bias=4),
    {**_all(5, input=6, state=6)},
    {**_all(6), **{n: 5 for n in g.OPERATORS}},
    {**_all(6, weight=4), **{n: 5 for n in ("sig_r", "sig_z", "tanh_n", "sub_z", "mul_n",
                                          "mul_zh")}},
]


def digits_front_widths():
    """The mixed configurations of the recorded digits front (docs/search_digits_front.csv)."""
    with open(ROOT / "docs" / "search_digits_front.csv") as f:
        rows = [{n: int(r[n]) for n in NAMES} for r in csv.DictReader(f)]
    return [w for w in rows if len(set(w.values())) > 1]


def candidates(task):
    return digits_front_widths() + (KWS_VARIANTS if task == "kws" else [])


def _fig(figs, key):
    v = figs.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def network_point(task, label, widths, result, args, outdir):
    """Export one configuration as a network and measure it (docs in the module docstring).
    The export is ``qhw search --export-network``'s (:func:`qhw.search.export.export_chosen`:
    the candidate's QAT again, its golden network against the integer classifier on the whole
    test split); the RTL and the energy take the input maps it wrote."""
    t0 = time.perf_counter()
    name = f"{task}_{label}"
    info = E.export_chosen(result, outdir, name, widths=widths,
                           test_sequences=max(args.utterances, args.stall_utterances, 1))
    paths = info["paths"]
    cfg = flow.read_config(NETWORK, paths["config"])
    params = flow.read_params(NETWORK, cfg, paths["weights"])
    maps = np.load(paths["inputs"])        # (utterances x steps, 1, 1, I) input codes
    steps = info["steps_per_utterance"]

    def first(n):
        """The first ``n`` test utterances' input maps."""
        return NETWORK.check_inputs(cfg, maps[:n * steps])
    check = info["golden_network_equals_integer_model"]
    rec = {"label": label, "widths": widths, "val_accuracy": info["val_accuracy"],
           "test_accuracy": info["test_accuracy"], "paths": paths,
           # export_chosen refuses a network whose logits differ, so "logits" is True here
           "golden_equals_integer_model": {"utterances": check["test_sequences"],
                                           "logits": check["logits"],
                                           "classes": check["classes"]},
           "network_test_accuracy": info["network_test_accuracy"]}
    print(f"[{name}] golden = integer model on {check['test_sequences']} utterances: "
          f"{rec['golden_equals_integer_model']}", flush=True)
    # cycles: the cost model, and the RTL
    x = first(args.utterances)
    model_u = NETWORK.cost_model(cfg, args.utterances, x)
    ts = time.perf_counter()
    run, mismatch = flow.check_rtl(NETWORK, cfg, params, x, fast=True)
    rec["rtl"] = {"utterances": args.utterances, "bit_exact": mismatch is None,
                  "mismatch": mismatch, "cycles": run.cycles, "cycles_model": model_u.expected,
                  "latency": run.latency, "latency_model": model_u.latency,
                  "cycles_per_utterance": run.steady_cycles,
                  "cycles_per_utterance_model": info["cycles_per_utterance"]["model"],
                  "seconds": round(time.perf_counter() - ts, 1)}
    print(f"[{name}] RTL (fast, {args.utterances} utterances): {rec['rtl']}", flush=True)
    if args.stall_utterances:
        ts = time.perf_counter()
        _, mismatch = flow.check_rtl(NETWORK, cfg, params, first(args.stall_utterances),
                                     stall_in=0.3, stall_out=0.3, seed=1)
        rec["rtl_stalls"] = {"utterances": args.stall_utterances, "stalls": 0.3,
                             "bit_exact": mismatch is None, "mismatch": mismatch,
                             "seconds": round(time.perf_counter() - ts, 1)}
        print(f"[{name}] RTL (cocotb, 30 % stalls): {rec['rtl_stalls']}", flush=True)
    # synthesis, whole network and its layers
    rec["synth"] = {}
    for target in ("ecp5", "ice40"):
        ts = time.perf_counter()
        try:
            r = synth_flow.synthesize_unit(NETWORK, cfg, params, target, fmax=not args.no_pnr)
        except Exception as e:  # noqa: BLE001 - recorded; the other figures stand
            rec["synth"][target] = {"error": str(e).splitlines()[0]}
            continue
        rec["synth"][target] = {"figures": r["figures"], "fmax": r.get("fmax"),
                                "parts": {p["name"]: p["figures"] for p in r.get("parts", [])},
                                "seconds": round(time.perf_counter() - ts, 1)}
        print(f"[{name}] {target}: {r['figures']}", flush=True)
    # energy per utterance
    rec["energy"] = {"operations": energy.operation_energy(NETWORK, cfg, args.utterances, x)}
    if not args.no_toggle:
        try:
            rec["energy"]["toggles"] = energy.toggle_energy(NETWORK, cfg, params, first(1))
        except Exception as e:  # noqa: BLE001 - recorded
            rec["energy"]["toggles"] = {"error": str(e).splitlines()[0]}
    for k, v in rec["energy"].items():
        print(f"[{name}] energy ({k}): {v.get('pj_per_inference', v.get('error'))} "
              f"pJ/utterance", flush=True)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def load_search(folder, task):
    """A finished `qhw search`'s result (``folder/search.json``), checked for what this bench
    takes from it; a one-line message otherwise."""
    try:
        result = json.loads((folder / "search.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--search: no readable search.json in {folder} ({e})") from None
    if result.get("task") != task:
        raise ValueError(f"--search: {folder} is a {result.get('task')} search, not {task} "
                         f"(name its task with --task)")
    if not result.get("chosen"):
        raise ValueError(f"--search: {folder} has no chosen configuration (its search needs "
                         f"8 among homogeneous)")
    return result


def run_task(task, args, searched=None):
    """One task's set (or ``searched``, a finished search's result), networks and seeds."""
    t0 = time.perf_counter()
    out = args.output / "search_network"
    if searched is not None:
        result = searched
    else:
        spec = S.check_spec({"task": task, "size": "default", "jobs": args.jobs,
                             "homogeneous": [4, 6, 8, 12]})
        result = S.evaluate_set(spec, candidates(task), progress=True,
                                log=lambda t: print(f"[{task}] {t}", flush=True))
        S.write_outputs(result, out / f"{task}_set")
        S.write_report(result, out / f"{task}_set")
    chosen = result["chosen"]
    ref = {n: chosen["reference_bits"] for n in NAMES}   # homogeneous 8-bit, the rule's reference
    points = [("chosen", chosen["widths"])]
    if chosen["widths"] != ref:
        points.append((f"homogeneous{chosen['reference_bits']}", ref))
    nets = [network_point(task, label, w, result, args, out) for label, w in points]
    return {"task": task, "set": result, "networks": nets,
            "seeds": seed_spread(task, points, result, args.seeds),
            "seconds": round(time.perf_counter() - t0, 1)}


def seed_spread(task, points, result, seeds):
    """Validation and test accuracy of the networks' configurations after the candidate's QAT
    with ``seeds`` seeds (0 is the search's): how much of a difference the seed alone makes."""
    from qhw.search import model as M
    s = result["settings"]
    prepared = M.prepare(task, result["size"], progress=False)
    out = {}
    for label, widths in points:
        runs = [M.evaluate_candidate(prepared, prepared.formats(widths), steps=s["steps"],
                                     batch=s["batch"], lr=s["lr"], seed=seed, test=True)
                for seed in range(seeds)]
        out[label] = [{"seed": seed, "val_accuracy": r["val_accuracy"],
                       "test_accuracy": r["test_accuracy"]} for seed, r in enumerate(runs)]
        print(f"[{task}_{label}] seeds: {out[label]}", flush=True)
    return out


def _n(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def _ice40_fit(ice):
    """Whether the network fits the UP5K: place and route's answer where it ran (the resource
    counts can fit while the packed logic cells do not), else the counts'."""
    figs, fmax = ice.get("figures", {}), ice.get("fmax") or {}
    if "fits" in fmax:
        if not fmax["fits"]:
            lc = (fmax.get("utilisation") or {}).get("ICESTORM_LC")
            if lc:
                return f"does not place: {lc[0]:,} of {lc[1]:,} logic cells"
            return "does not fit: " + str(fmax.get("reason")).split(": ", 1)[-1]
        return f"fits, {_n(_fig(figs, 'fmax_mhz'), 1)} MHz"
    return "fits (counts)" if figs.get("fits_up5k") else "does not fit (counts)"


def markdown(res):
    lines = ["# The chosen GRU configuration as a network (bench_search_network.py)", ""]
    for t in res["tasks"]:
        r = t["set"]
        # evaluate_set's result has generations_run 0: a hand-picked set, not a search
        how = ("an NSGA-II search (`qhw search`, population "
               f"{r['settings']['population']} x {r['generations_run']} generations)"
               if r["generations_run"] else "the search's objective (not an NSGA-II search)")
        synthesis = r["front_synthesis"]
        lines += [f"## {t['task']}", "",
                  f"{len(r['candidates'])} configurations evaluated with {how}, "
                  f"{r['seconds']} s; front of "
                  f"{len(r['front'])}, "
                  + (f"synthesized with the homogeneous ones ({synthesis['seconds']} s)."
                     if synthesis else "not synthesized (`synthesize_front = false`)."), ""]
        rows = []
        for tag, recs in (("front", r["front"]), ("homogeneous", r["homogeneous"])):
            for x in recs:
                syn = x.get("synth", {})
                rows.append([tag, f"{100 * (1 - x['val_error']):.1f}", _n(x["transistors"]),
                             _n(_fig(syn.get("generic", {}), "transistors")), _n(x["LUT4"]),
                             _n(_fig(syn.get("ecp5", {}), "LUT4")), S.widths_text(x["widths"])])
        lines += _report.table(["", "val acc %", "transistors (model)", "(synthesized)",
                                "LUT4 (model)", "(synthesized)", "widths"], rows)
        lines += ["", r["chosen"]["text"], ""]
        rows = []
        for n in t["networks"]:
            ecp5 = n["synth"].get("ecp5", {})
            ice = n["synth"].get("ice40", {})
            fe, fi = ecp5.get("figures", {}), ice.get("figures", {})
            fmax = _fig(fe, "fmax_mhz")
            cyc = n["rtl"]["cycles_per_utterance"]
            ops = n["energy"]["operations"]["pj_per_inference"]
            tog = n["energy"].get("toggles", {}).get("pj_per_inference")
            rows.append([
                n["label"], f"{100 * n['val_accuracy']:.1f} / {100 * n['test_accuracy']:.1f}",
                "yes" if n["golden_equals_integer_model"]["logits"] else "NO",
                f"{'yes' if n['rtl']['bit_exact'] else 'NO'} ({n['rtl']['utterances']})"
                + (f", stalls {'yes' if n['rtl_stalls']['bit_exact'] else 'NO'}"
                   if "rtl_stalls" in n else ""),
                f"{_n(cyc)} / {_n(n['rtl']['cycles_per_utterance_model'])}",
                f"{_n(n['rtl']['latency'])} / {_n(n['rtl']['latency_model'])}",
                f"{_n(fe.get('LUT4'))} / {_n(fe.get('FF'))} / {_n(fe.get('DP16KD'))} / "
                f"{_n(fe.get('MULT18X18D'))}",
                _n(fmax, 1),
                "-" if not fmax or not cyc else f"{cyc / fmax:,.1f}",
                f"{_n(fi.get('LUT4'))} / {_n(fi.get('EBR'))} / {_n(fi.get('DSP'))}; "
                + _ice40_fit(ice),
                _n(ops / 1e3, 1), _n(None if tog is None else tog / 1e3, 1)])
        lines += _report.table(
            ["network", "val / test acc %", "golden = integer model (all test)",
             "RTL bit-exact (utterances)", "cycles per utterance measured / model",
             "latency cycles measured / model", "ECP5 LUT4 / FF / DP16KD / MULT18X18D",
             "ECP5 Fmax MHz", "us per utterance at Fmax", "iCE40 LUT4 / EBR / DSP; UP5K",
             "energy nJ/utt. (operations)", "energy nJ/utt. (gate toggles)"], rows)
        lines += ["", "The same configurations after the candidate's QAT with other seeds (seed 0 "
                      "is the search's; validation / test accuracy %):", ""]
        rows = [[label] + [f"{100 * r['val_accuracy']:.1f} / {100 * r['test_accuracy']:.1f}"
                           for r in runs] for label, runs in t.get("seeds", {}).items()]
        if rows:
            lines += _report.table(["network"] + [f"seed {i}" for i in range(len(rows[0]) - 1)],
                                   rows)
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=("kws", "digits", "both"), default="both")
    ap.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--utterances", type=int, default=8)
    ap.add_argument("--stall-utterances", type=int, default=2)
    ap.add_argument("--no-toggle", action="store_true", help="no gate-level energy")
    ap.add_argument("--no-pnr", action="store_true", help="no place and route (no Fmax)")
    ap.add_argument("--search", type=Path, default=None,
                    help="the output folder of a finished `qhw search` of --task: take its "
                         "front and chosen configuration instead of the hand-picked set")
    ap.add_argument("--seeds", type=int, default=3,
                    help="QAT seeds of the accuracy spread of the networks' configurations")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    tasks = ["digits", "kws"] if args.task == "both" else [args.task]
    searched = None
    if args.search:   # checked before any work (exit status 2)
        if len(tasks) != 1:
            ap.error("--search: name the search's task with --task kws or --task digits")
        try:
            searched = load_search(args.search, tasks[0])
        except ValueError as e:
            ap.error(str(e))
    res = {"tasks": [run_task(t, args, searched) for t in tasks],
           "args": {k: str(v) for k, v in vars(args).items()}}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    _report.write_results(args.output, "search_network", res, markdown(res), json_default=str)
    print(f"{res['seconds']} s")


if __name__ == "__main__":
    main()
