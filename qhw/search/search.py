"""NSGA-II search over the GRU's 21 format widths (issue 14, part B; docs/search.md).

Genes: the width of each of the 21 format names (``input``, ``weight``, ``bias``, ``state`` and
the 17 operators, :data:`qhw.golden.gru.FORMAT_NAMES`), integers within ``bounds`` (default
:data:`qhw.search.area.WIDTH_BOUNDS`, 3..12 bits); the binary points follow the task's
calibrated ranges (``prepared.formats(widths)``). Objectives, both minimised:

1. the validation error of the integer golden model after the candidate's QAT fine-tune
   (``qhw.search.model.evaluate_candidate``, budget ``steps``/``batch``/``lr``, one seed for
   every candidate: common random numbers);
2. the GRU datapath's transistors (generic target, flip-flops and memory bits included) from
   the fitted area model (:mod:`qhw.search.area`, at the fit's size and folding); its ECP5 LUT4
   and the model size in bits (weights x weight width + biases x bias width of the GRU layer,
   as the mixed-precision GRU paper counts it) are reported beside.

The algorithm is pymoo's NSGA-II (pinned, the ``train`` extra) driven by ask and tell: integer
genes by rounding repair after SBX crossover and polynomial mutation, duplicates eliminated; the
first population holds the homogeneous configurations within the bounds (marked in the report)
and random vectors. Candidates run through :class:`qhw.explore.executor.Executor` (an embedded
Dask cluster, or ``scheduler``) when ``jobs`` > 1, in this process otherwise; each result is
cached on disk under ``<qhw cache>/search/candidates/`` by (task key, formats, budget, seed), so a
rerun (or a resumed search) evaluates nothing already known.

After the search, every front configuration (and every homogeneous one) is synthesized for real
(:func:`synthesize_front`: the area model's datapath, generic transistors and ECP5 by default,
iCE40 on request), through the same executor, each design cached by ``qhw.synth_flow``; the
outputs and the report give the synthesized figures beside the model's and the model's error.
``synthesize_front = false`` skips it.
"""

from __future__ import annotations

import csv
import contextlib
import dataclasses
import hashlib
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from ..errors import QhwInputError
from ..golden import gru as g
from . import area as A
from . import tasks

__all__ = ["SearchSpec", "load_spec", "check_spec", "run_search", "evaluate_widths",
           "synthesize_front", "synth_point", "write_outputs", "write_report", "SEARCH_VERSION",
           "FRONT_TARGETS", "check_export", "chosen_summary", "widths_text", "evaluate_set"]

SEARCH_VERSION = 1
NAMES = g.FORMAT_NAMES

_KEYS = {"task", "size", "population", "generations", "seed", "steps", "batch", "lr",
         "eval_seed", "bounds", "jobs", "scheduler", "area_fit", "homogeneous",
         "synthesize_front", "front_targets"}

#: Targets the front can be synthesized for, and the figures of each that the outputs carry
#: (the full figure dict of each target is kept in search.json and front.json).
FRONT_TARGETS = {
    "generic": ("transistors", "transistors_comb", "transistors_seq", "transistors_mem",
                "flip_flops", "memory_bits"),
    "ecp5": ("LUT4", "FF", "CCU2C", "DP16KD", "MULT18X18D"),
    "ice40": ("LUT4", "FF", "CARRY", "EBR", "DSP", "fits_up5k"),
}
#: The model's figures and the synthesized figures they are compared with.
MODEL_FIGURES = {"transistors": ("generic", "transistors"), "LUT4": ("ecp5", "LUT4")}


@dataclasses.dataclass
class SearchSpec:
    task: str = "digits"
    size: str = "default"
    population: int = 24
    generations: int = 12
    seed: int = 1
    steps: int = 100
    batch: int = 64
    lr: float = 1e-3
    eval_seed: int = 0
    bounds: tuple = A.WIDTH_BOUNDS
    jobs: int = 2
    scheduler: str | None = None
    area_fit: str | None = None           # JSON of a GruAreaFit; default qhw/search/area_fit.json
    homogeneous: tuple = (4, 6, 8, 12)    # homogeneous widths put into the first population
    synthesize_front: bool = True         # synthesize the front (and the homogeneous points)
    front_targets: tuple = ("generic", "ecp5")


def _int(field, v, low, high=None):
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        rng = f"{low}..{high}" if high is not None else f">= {low}"
        raise QhwInputError(f"{field}: must be an integer {rng}, got {v!r}")
    return v


def check_spec(d, where="search"):
    """A :class:`SearchSpec` from a dict (the TOML's ``[search]`` table or its top level)."""
    if not isinstance(d, dict):
        raise QhwInputError(f"{where}: must be a table, got {type(d).__name__}")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise QhwInputError(f"{where}.{unknown[0]}: unknown key; allowed: "
                            f"{', '.join(sorted(_KEYS))}")
    s = SearchSpec()
    task = d.get("task", s.task)
    try:
        tasks.check_task(task)
        size = d.get("size", s.size)
        tasks.check_size(size)
    except QhwInputError as e:
        raise QhwInputError(f"{where}.{e}") from None
    pop = _int(f"{where}.population", d.get("population", s.population), 4, 1000)
    gens = _int(f"{where}.generations", d.get("generations", s.generations), 1, 1000)
    seed = _int(f"{where}.seed", d.get("seed", s.seed), 0)
    steps = _int(f"{where}.steps", d.get("steps", s.steps), 0, 100000)
    batch = _int(f"{where}.batch", d.get("batch", s.batch), 1, 65536)
    eval_seed = _int(f"{where}.eval_seed", d.get("eval_seed", s.eval_seed), 0)
    jobs = _int(f"{where}.jobs", d.get("jobs", s.jobs), 1, 1024)
    lr = d.get("lr", s.lr)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
        raise QhwInputError(f"{where}.lr: must be a number in (0, 1), got {lr!r}")
    bounds = d.get("bounds", list(s.bounds))
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or not 2 <= bounds[0] < bounds[1] <= 16):
        raise QhwInputError(f"{where}.bounds: must be [low, high] widths, 2 <= low < high <= 16, "
                            f"got {bounds!r}")
    homo = d.get("homogeneous", list(s.homogeneous))
    if not isinstance(homo, list) or not all(isinstance(b, int) and not isinstance(b, bool)
                                             and bounds[0] <= b <= bounds[1] for b in homo):
        raise QhwInputError(f"{where}.homogeneous: must be a list of widths within bounds "
                            f"{bounds}, got {homo!r}")
    if len(homo) > pop:
        raise QhwInputError(f"{where}.homogeneous: at most population ({pop}) widths")
    sched = d.get("scheduler")
    if sched is not None and not isinstance(sched, str):
        raise QhwInputError(f"{where}.scheduler: must be a tcp://HOST:PORT string")
    fit = d.get("area_fit")
    if fit is not None and not isinstance(fit, str):
        raise QhwInputError(f"{where}.area_fit: must be a path (string) to an area fit JSON")
    synth = d.get("synthesize_front", s.synthesize_front)
    if not isinstance(synth, bool):
        raise QhwInputError(f"{where}.synthesize_front: must be true or false, got {synth!r}")
    targets = d.get("front_targets", list(s.front_targets))
    if (not isinstance(targets, list) or not targets or len(set(map(str, targets))) != len(targets)
            or not all(isinstance(t, str) and t in FRONT_TARGETS for t in targets)):
        raise QhwInputError(f"{where}.front_targets: must be a non-empty list of distinct "
                            f"targets from {', '.join(FRONT_TARGETS)}, got {targets!r}")
    return SearchSpec(task, size, pop, gens, seed, steps, batch, float(lr), eval_seed,
                      tuple(bounds), jobs, sched, fit, tuple(homo), synth, tuple(targets))


def load_spec(path):
    """Read and check a search TOML (keys at the top level or under ``[search]``); relative
    ``area_fit`` paths are taken from the file's folder. One-line QhwInputError on bad input."""
    path = Path(path)
    if not path.is_file():
        raise QhwInputError(f"{path}: no such search file")
    try:
        d = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise QhwInputError(f"{path}: not valid TOML ({str(e).splitlines()[0]})") from None
    if "search" in d:
        extra = sorted(set(d) - {"search"})
        if extra:
            raise QhwInputError(f"{path}: {extra[0]}: unknown table; the file has [search]")
        d = d["search"]
    spec = check_spec(d, "search")
    if spec.area_fit is not None and not Path(spec.area_fit).is_absolute():
        spec.area_fit = str((path.parent / spec.area_fit).resolve())
    _load_fit(spec)  # a missing or bad fit fails here, before any work
    return spec


def check_export(spec, name, reference_bits=8):
    """Before any work: ``--export-network NAME`` needs a valid name and the homogeneous
    reference the chosen configuration is measured against."""
    from .export import check_name
    check_name(name)
    if reference_bits not in spec.homogeneous:
        raise QhwInputError(f"search.homogeneous: --export-network exports the front point "
                            f"with the least area within 1 point of homogeneous "
                            f"{reference_bits}-bit, so it must hold {reference_bits}; got "
                            f"{list(spec.homogeneous)}")


def _load_fit(spec):
    p = Path(spec.area_fit) if spec.area_fit else A.default_fit_path()
    if not p.is_file():
        raise QhwInputError(f"search.area_fit: no area model at {p}; fit one with "
                            f"bench/bench_search_area.py")
    try:
        d = json.loads(p.read_text())
        d = {k: d[k] for k in ("size", "ranges", "coef", "points", "train_error",
                               "holdout_error", "seconds")}
        fit = A.GruAreaFit.from_json(d)
        fit.predict({n: 8 for n in NAMES})
    except (ValueError, KeyError, TypeError) as e:
        raise QhwInputError(f"search.area_fit: {p} is not an area fit ({e})") from None
    return fit


# ------------------------------------------------------------------------- candidates


def evaluate_widths(task, size, widths, steps, batch, lr, seed):
    """One candidate, in a worker: prepare (cached), QAT, integer validation error."""
    from . import model as M
    prepared = M.prepare(task, size, progress=False)
    r = M.evaluate_candidate(prepared, prepared.formats(widths), steps=steps, batch=batch,
                             lr=lr, seed=seed)
    return {"val_error": float(r["val_error"]), "val_accuracy": float(r["val_accuracy"]),
            "formats": r["formats"], "seconds": float(r["seconds"]), "qat_loss": r["qat_loss"]}


def _cache_dir():
    return tasks.cache_root() / "candidates"


def _cand_key(task_key, formats, spec):
    blob = [SEARCH_VERSION, task_key, formats, spec.steps, spec.batch, spec.lr, spec.eval_seed]
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


class _Evaluator:
    def __init__(self, spec, prepared, fit, progress):
        self.spec, self.prepared, self.fit = spec, prepared, fit
        self.progress = progress
        self.known = {}       # widths tuple -> record
        self.evaluated = 0    # candidates computed (not from the cache) in this run
        self.cached = 0
        self.executor = None
        self.bar = None

    def record(self, widths, res):
        w = dict(zip(NAMES, widths))
        area = self.fit.predict(w)
        return {"widths": w, "formats": res["formats"], "val_error": res["val_error"],
                "val_accuracy": res["val_accuracy"], "transistors": area["transistors"],
                "LUT4": area.get("LUT4"), "model_bits": A.model_size_bits(
                    w, self.prepared.data.input_size, self.prepared.hidden_size),
                "seconds": res["seconds"]}

    def __call__(self, X):
        X = [tuple(int(v) for v in row) for row in np.asarray(X)]
        todo = {}
        for wt in X:
            if wt in self.known or wt in todo:
                continue
            formats = self.prepared.formats(dict(zip(NAMES, wt)))
            key = _cand_key(self.prepared.key, formats, self.spec)
            path = _cache_dir() / f"{key}.json"
            if path.is_file():
                try:
                    self.known[wt] = self.record(wt, json.loads(path.read_text()))
                    self.cached += 1
                    continue
                except (ValueError, KeyError):
                    pass
            todo[wt] = path
        if self.bar is not None:
            self.bar.update(len(set(X)) - len(todo))
        if todo:
            self._run(todo)
        return np.array([[self.known[wt]["val_error"], self.known[wt]["transistors"]]
                         for wt in X])

    def _done(self, wt, path, res):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{time.monotonic_ns()}")
        tmp.write_text(json.dumps(res))
        tmp.replace(path)
        self.known[wt] = self.record(wt, res)
        self.evaluated += 1
        if self.bar is not None:
            self.bar.update(1)

    def _run(self, todo):
        s = self.spec
        args = {wt: (s.task, s.size, dict(zip(NAMES, wt)), s.steps, s.batch, s.lr, s.eval_seed)
                for wt in todo}
        if self.executor is None:
            for wt, path in todo.items():
                self._done(wt, path, evaluate_widths(*args[wt]))
            return
        jobs = [(wt, args[wt], "qhw-search") for wt in todo]
        for wt, res, err in self.executor.run(evaluate_widths, jobs):
            if err is not None:
                raise RuntimeError(f"candidate {dict(zip(NAMES, wt))}: {err}")
            self._done(wt, todo[wt], res)


# ------------------------------------------------------------------------ front synthesis


def synth_point(config, target, seed=0):
    """Synthesize one ``gru`` unit config for ``target`` (random weights of ``seed``, as the area
    model's training points; no place and route): the target's figures. Runs in a worker; the
    design is cached on disk by ``qhw.synth_flow``, so a rerun costs only its generation."""
    from ..synth.area_model import SynthArea
    return SynthArea(target, seed=seed)("gru", config)


def _in_process(fn, jobs):
    """:meth:`qhw.explore.executor.Executor.run` in this process, one job after the other:
    ``(tag, result, None)`` or ``(tag, None, the exception)``."""
    for tag, args, _ in jobs:
        try:
            yield tag, fn(*args), None
        except Exception as e:  # noqa: BLE001 - handed to the caller, as the executor does
            yield tag, None, e


def _error_text(err):
    """One line for a failed job: the executor's ``"worker-lost"``, or the exception's type
    and first line."""
    if isinstance(err, str):
        return err
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _model_errors(record):
    """(model - synthesized) / synthesized per modelled figure that was synthesized."""
    out = {}
    for figure, (target, key) in MODEL_FIGURES.items():
        got = record.get("synth", {}).get(target, {})
        if record.get(figure) is not None and isinstance(got.get(key), (int, float)) and got[key]:
            out[figure] = (record[figure] - got[key]) / got[key]
    return out


def synthesize_front(records, fit, targets=("generic", "ecp5"), *, executor=None,
                     progress=False):
    """Synthesize every record's configuration for real, in place.

    Parameters
    ----------
    records : list of dict
        Search records (``widths``, the model's ``transistors`` and ``LUT4``); each gets
        ``synth`` ({target: the target's figures, or {"error": message}}) and ``model_error``
        ({"transistors": (model - synthesized) / synthesized, "LUT4": ...}).
    fit : qhw.search.area.GruAreaFit
        Whose datapath is synthesized: its size, folding and binary points
        (:func:`qhw.search.area.gru_unit_config`), so that the model and the synthesis count
        the same design.
    targets : sequence of str
        From :data:`FRONT_TARGETS`.
    executor : qhw.explore.executor.Executor or None
        Run the syntheses on its workers (in parallel); None: one after the other here.
    progress : bool
        A tqdm bar over the syntheses.

    Returns
    -------
    dict
        ``targets``, ``points``, ``seconds`` (wall time), ``failed`` (syntheses that failed) and,
        per modelled figure, the model's ``error`` on these points (mean and max relative).
    """
    t0 = time.perf_counter()
    unique = {}
    for r in records:
        unique.setdefault(tuple(r["widths"][n] for n in NAMES), []).append(r)
    jobs = [((wt, target), (A.gru_unit_config(dict(zip(NAMES, wt)), fit.size, fit.ranges),
                            target), "qhw-front-synth")
            for wt in unique for target in targets]
    results = {}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc="synthesize front", unit="synth", file=sys.stderr)
    runs = _in_process(synth_point, jobs) if executor is None else executor.run(synth_point, jobs)
    try:
        for tag, res, err in runs:
            # a failure is recorded, not raised: the search's results stand
            results[tag] = res if err is None else {"error": _error_text(err)}
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    failed = 0
    for wt, rs in unique.items():
        for r in rs:
            r["synth"] = {t: dict(results[(wt, t)]) for t in targets}
            r["model_error"] = _model_errors(r)
        failed += sum("error" in results[(wt, t)] for t in targets)
    summary = {"targets": list(targets), "points": len(unique), "failed": failed,
               "seconds": round(time.perf_counter() - t0, 1),
               "size": dict(fit.size), "weights": "random codes of seed 0 (as the area fit's)"}
    for figure in MODEL_FIGURES:
        errs = [rs[0]["model_error"][figure] for rs in unique.values()
                if figure in rs[0]["model_error"]]
        if errs:
            summary[f"{figure}_error"] = {"mean_abs": float(np.mean(np.abs(errs))),
                                          "max_abs": float(np.max(np.abs(errs))),
                                          "points": len(errs)}
    return summary


def _front(records):
    """Non-dominated records on (val_error, transistors), sorted by transistors."""
    out = []
    for r in records:
        dominated = any((o["val_error"] <= r["val_error"] and o["transistors"] <= r["transistors"])
                        and (o["val_error"] < r["val_error"] or o["transistors"] < r["transistors"])
                        for o in records)
        if not dominated:
            out.append(r)
    uniq = {}
    for r in sorted(out, key=lambda r: (r["transistors"], r["val_error"])):
        uniq.setdefault(tuple(r["widths"].values()), r)
    return list(uniq.values())


def run_search(spec, *, progress=True, log=None):
    """Run the NSGA-II search of ``spec`` (a :class:`SearchSpec`); returns a dict with ``front``
    (records), ``homogeneous``, ``candidates`` (every distinct evaluated record), ``evaluated``
    (computed in this run), ``cached``, ``seconds`` and the settings."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.problems.static import StaticProblem

    from . import model as M
    t0 = time.perf_counter()
    fit = _load_fit(spec)
    prepared = M.prepare(spec.task, spec.size, progress=progress)
    lo, hi = spec.bounds
    problem = Problem(n_var=len(NAMES), n_obj=2, xl=np.full(len(NAMES), lo),
                      xu=np.full(len(NAMES), hi), vtype=int)
    rng = np.random.default_rng(spec.seed)
    init = [[b] * len(NAMES) for b in spec.homogeneous]
    while len(init) < spec.population:
        init.append(list(rng.integers(lo, hi + 1, len(NAMES))))
    algo = NSGA2(pop_size=spec.population, sampling=np.array(init, dtype=float),
                 crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                 mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
                 eliminate_duplicates=True)
    algo.setup(problem, termination=("n_gen", spec.generations), seed=spec.seed, verbose=False)
    ev = _Evaluator(spec, prepared, fit, progress)
    with contextlib.ExitStack() as stack:
        _start(ev, stack, spec.population * spec.generations, f"search {spec.task}", log)
        gen = 0
        while algo.has_next():
            pop = algo.ask()
            F = ev(pop.get("X"))
            Evaluator().eval(StaticProblem(problem, F=F), pop)
            algo.tell(infills=pop)
            gen += 1
        return _finish(ev, t0, log, generations_run=gen)


def evaluate_set(spec, widths_list, *, progress=True, log=None):
    """The search's objective on a given set of configurations instead of NSGA-II's: each
    evaluated (QAT with the spec's budget and seed, cached as the search's candidates are),
    the front of the set, its synthesis (``spec.synthesize_front``) and the chosen
    configuration, as :func:`run_search` gives them (``generations_run`` 0). The homogeneous
    configurations of ``spec.homogeneous`` are evaluated too.

    ``widths_list``: a list of width dicts (all 21 names, within ``spec.bounds``)."""
    from . import model as M
    t0 = time.perf_counter()
    fit = _load_fit(spec)
    prepared = M.prepare(spec.task, spec.size, progress=progress)
    lo, hi = spec.bounds
    rows = [[b] * len(NAMES) for b in spec.homogeneous]
    for i, w in enumerate(widths_list):
        w = A._check_widths(w)
        bad = [n for n in NAMES if not lo <= w[n] <= hi]
        if bad:
            raise QhwInputError(f"widths[{i}].{bad[0]}: must be within bounds {lo}..{hi}, got "
                                f"{w[bad[0]]}")
        rows.append([w[n] for n in NAMES])
    ev = _Evaluator(spec, prepared, fit, progress)
    with contextlib.ExitStack() as stack:
        _start(ev, stack, len(rows), f"evaluate {spec.task}", log)
        ev(np.array(rows))
        return _finish(ev, t0, log, generations_run=0)


def _start(ev, stack, total, desc, log):
    """The executor (jobs > 1 or a scheduler) and the progress bar of an evaluation."""
    spec = ev.spec
    if spec.jobs > 1 or spec.scheduler:
        from ..explore.executor import Executor, scheduler_address
        ev.executor = stack.enter_context(Executor(jobs=spec.jobs,
                                                   scheduler=scheduler_address(spec.scheduler)))
        if log:
            log(ev.executor.describe())
    if ev.progress:
        from tqdm import tqdm
        ev.bar = stack.enter_context(tqdm(total=total, desc=desc, unit="cand", file=sys.stderr))


def _finish(ev, t0, log, *, generations_run):
    """The front, the homogeneous records, the front's synthesis (on the same executor) and
    the chosen configuration: the result dict."""
    spec, fit, prepared = ev.spec, ev.fit, ev.prepared
    if ev.bar is not None:
        ev.bar.close()
    search_s = time.perf_counter() - t0
    records = list(ev.known.values())
    # Copies: the synthesized figures go into the front's and the homogeneous records, while
    # ``candidates`` keeps what the search computed.
    homo = [dict(ev.known[tuple([b] * len(NAMES))]) for b in spec.homogeneous]
    front = [dict(r) for r in _front(records)]
    synthesis = None
    if spec.synthesize_front:
        synthesis = synthesize_front(front + homo, fit, spec.front_targets,
                                     executor=ev.executor, progress=ev.progress)
        if log:
            log(f"synthesized {synthesis['points']} configurations x "
                f"{len(spec.front_targets)} targets in {synthesis['seconds']} s")
    result = {"task": spec.task, "size": spec.size, "task_key": prepared.key,
              "settings": dataclasses.asdict(spec), "generations_run": generations_run,
              "front": front, "homogeneous": homo,
              "candidates": sorted(records, key=lambda r: (r["transistors"], r["val_error"])),
              "evaluated": ev.evaluated, "cached": ev.cached,
              "seconds": round(time.perf_counter() - t0, 1),
              "search_seconds": round(search_s, 1),
              "front_synthesis": synthesis,
              "area_model": {"size": fit.size, "holdout_error": fit.holdout_error,
                             "points": len(fit.points)},
              "float_accuracy": prepared.metrics["float_accuracy"]}
    result["chosen"] = chosen_summary(result)
    return result


def widths_text(widths):
    """'input weight bias state / the 17 operators', or 'homogeneous b'."""
    values = [widths[n] for n in NAMES]
    if len(set(values)) == 1:
        return f"homogeneous {values[0]}"
    return (" ".join(str(v) for v in values[:len(g.TENSORS)]) + " / "
            + " ".join(str(v) for v in values[len(g.TENSORS):]))


def chosen_summary(result, reference_bits=8, within=0.01):
    """The chosen configuration (:func:`qhw.search.export.choose`: the front point with the
    least area within ``within`` of homogeneous ``reference_bits``-bit accuracy) with its
    savings against that reference, or None when the search has no such reference."""
    from .export import choose
    if not any(set(h["widths"].values()) == {reference_bits} for h in result["homogeneous"]):
        return None
    best, ref, kind = choose(result, reference_bits=reference_bits, within=within)
    out = {"widths": dict(best["widths"]), "val_accuracy": 1 - best["val_error"],
           "reference_bits": reference_bits, "reference_val_accuracy": 1 - ref["val_error"],
           "within": within, "area": kind, "savings": {}}
    pairs = [("transistors (model)", best["transistors"], ref["transistors"])]
    for label, target, key in (("transistors (synthesized)", "generic", "transistors"),
                               ("ECP5 LUT4 (synthesized)", "ecp5", "LUT4"),
                               ("iCE40 LUT4 (synthesized)", "ice40", "LUT4")):
        a, b = _synth_fig(best, target, key), _synth_fig(ref, target, key)
        if a is not None and b:
            pairs.append((label, a, b))
    for label, a, b in pairs:
        out["savings"][label] = {"chosen": a, "reference": b, "fewer": 1 - a / b}
    savings = "; ".join(f"{label} {v['chosen']:,.0f} against {v['reference']:,.0f} "
                        f"({100 * v['fewer']:.1f} % fewer)" for label, v in out["savings"].items())
    out["text"] = (
        f"The front point with the least {kind} whose validation accuracy is at least "
        f"homogeneous {reference_bits}-bit's ({100 * out['reference_val_accuracy']:.1f} %) less "
        f"{100 * within:g} point: {100 * out['val_accuracy']:.1f} %, widths "
        f"{widths_text(best['widths'])} (input weight bias state / the 17 operators). Against "
        f"homogeneous {reference_bits}-bit: {savings}. As a whole network (features -> GRU -> "
        f"dense -> class scores): `qhw search SEARCH.toml -o DIR --export-network NAME` "
        f"(docs/search.md).")
    return out


# ------------------------------------------------------------------------------ outputs


def _synth_columns(r, targets):
    """The synthesized figures of a front record, flat, and the model's relative error."""
    out = {}
    for t in targets:
        figs = r.get("synth", {}).get(t, {})
        for k in FRONT_TARGETS[t]:
            out[f"{t}_{k}"] = figs.get(k)
    for figure in MODEL_FIGURES:
        e = r.get("model_error", {}).get(figure)
        out[f"{figure}_model_error"] = None if e is None else round(e, 5)
    errors = [f"{t}: {figs['error']}" for t, figs in r.get("synth", {}).items() if "error" in figs]
    out["synth_errors"] = "; ".join(errors) or None
    return out


def _row(r, targets=None):
    """A CSV row: validation error, the model's area, model size, [the synthesized figures],
    the 21 widths."""
    row = {"val_error": round(r["val_error"], 5), "transistors": round(r["transistors"]),
           "LUT4": None if r["LUT4"] is None else round(r["LUT4"]),
           "model_bits": r["model_bits"]}
    if targets:
        row.update(_synth_columns(r, targets))
    return {**row, **{n: r["widths"][n] for n in NAMES}}


def _targets(result):
    synthesis = result.get("front_synthesis")
    return list(synthesis["targets"]) if synthesis else []


def write_outputs(result, out):
    """search.json, front.json, front.csv (with the synthesized figures when the front was
    synthesized: ``<target>_<figure>`` columns and ``<figure>_model_error``) and
    candidates.csv."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "front.json").write_text(json.dumps(result["front"], indent=1) + "\n")
    targets = _targets(result)
    for name, rows, tg in (("front.csv", result["front"], targets),
                           ("candidates.csv", result["candidates"], None)):
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(_row(rows[0], tg)))
            w.writeheader()
            for r in rows:
                w.writerow(_row(r, tg))


def _fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:,.{digits}f}"


def _pct(e):
    return "-" if e is None else f"{100 * e:+.1f} %"


def _synth_fig(r, target, key):
    v = r.get("synth", {}).get(target, {}).get(key)
    return v if isinstance(v, (int, float)) else None


def write_report(result, out):
    """report.md and pareto.png: every candidate, the front, the homogeneous ones marked (and,
    when the front was synthesized, the synthesized transistors beside the model's); a table of
    the front with the model's and the synthesized area and the formats; the chosen
    configuration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = _targets(result)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    c, f, h = result["candidates"], result["front"], result["homogeneous"]
    ax.scatter([r["transistors"] for r in c], [100 * (1 - r["val_error"]) for r in c], s=10,
               color="0.7", label="candidates")
    ax.plot([r["transistors"] for r in f], [100 * (1 - r["val_error"]) for r in f], "o-",
            color="C0", label="Pareto front")
    for r in h:
        ax.scatter([r["transistors"]], [100 * (1 - r["val_error"])], marker="s", color="C3",
                   zorder=3)
        ax.annotate(f"{r['widths']['input']}-bit", (r["transistors"], 100 * (1 - r["val_error"])),
                    textcoords="offset points", xytext=(4, -10), color="C3")
    ax.scatter([], [], marker="s", color="C3", label="homogeneous")
    if "generic" in targets:
        pts = [(_synth_fig(r, "generic", "transistors"), 100 * (1 - r["val_error"]))
               for r in f + h if _synth_fig(r, "generic", "transistors") is not None]
        if pts:
            ax.scatter(*zip(*pts), marker="x", color="C2", zorder=4,
                       label="synthesized (front, homogeneous)")
    ax.set_xlabel("GRU datapath transistors (area model; x: synthesized)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{result['task']}: {len(c)} candidates")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=120)
    plt.close(fig)
    s = result["settings"]
    size = result["area_model"]["size"]
    how = (f"NSGA-II, population {s['population']}, {s['generations']} generations, widths "
           f"{s['bounds'][0]}..{s['bounds'][1]}" if result["generations_run"]
           else "A given set of configurations (not an NSGA-II search)")
    lines = [f"# Format search: {result['task']} ({result['size']})", "",
             f"{how}; candidate budget {s['steps']} QAT steps "
             f"(batch {s['batch']}, lr {s['lr']}, seed {s['eval_seed']}); "
             f"{len(c)} distinct candidates ({result['evaluated']} computed in this run, "
             f"{result['cached']} from the cache), {result['seconds']} s in all.", "",
             "Area: the fitted model of the GRU datapath at I={input_size}, H={hidden_size}, "
             "M={macs} ".format(**size)
             + "(held-out error: " + ", ".join(
                 f"{k} mean {100 * v['mean_rel']:.1f} % max {100 * v['max_rel']:.1f} %"
                 for k, v in result["area_model"]["holdout_error"].items()) + "). "
             "Model size: GRU weights x weight width + biases x bias width.", ""]
    synthesis = result.get("front_synthesis")
    if synthesis:
        errs = "; ".join(
            f"{fig_name} mean |error| {100 * synthesis[f'{fig_name}_error']['mean_abs']:.1f} %, "
            f"max {100 * synthesis[f'{fig_name}_error']['max_abs']:.1f} %"
            for fig_name in MODEL_FIGURES if f"{fig_name}_error" in synthesis)
        lines += [f"Synthesized: the front and the homogeneous configurations, "
                  f"{synthesis['points']} designs x {', '.join(targets)} "
                  f"({synthesis['seconds']} s; the same datapath as the model, I = "
                  f"{size['input_size']}, H = {size['hidden_size']}, M = {size['macs']}, "
                  f"{synthesis['weights']}, synthesis without place and route"
                  + (f"; {synthesis['failed']} failed" if synthesis["failed"] else "") + "). "
                  "Generic transistors count gates, flip-flops (20 each) and memory bits "
                  "(6 each; docs/architecture.md); ECP5 LUT4 leaves out the block RAM (DP16KD) "
                  "and hard multipliers (MULT18X18D), given beside. The model's error on them: "
                  + (errs or "-") + ".", ""]
    else:
        lines += ["The front was not synthesized (`synthesize_front = false`): the area "
                  "columns are the model's.", ""]
    lines += ["![Pareto front](pareto.png)", ""]
    head = ["", "val acc %", "transistors (model)"]
    if "generic" in targets:
        head += ["transistors (synthesized)", "model error"]
    head += ["LUT4 (model)"]
    if "ecp5" in targets:
        head += ["LUT4 (synthesized)", "model error", "ECP5 DP16KD / MULT18X18D"]
    if "ice40" in targets:
        head += ["iCE40 LUT4 / EBR / DSP (fits UP5K)"]
    head += ["model bits"] + list(NAMES)
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tag, rows in (("front", f), ("homogeneous", h)):
        for r in rows:
            err = r.get("model_error", {})
            cells = [tag, f"{100 * (1 - r['val_error']):.1f}", _fmt(r["transistors"])]
            if "generic" in targets:
                cells += [_fmt(_synth_fig(r, "generic", "transistors")),
                          _pct(err.get("transistors"))]
            cells += [_fmt(r["LUT4"])]
            if "ecp5" in targets:
                cells += [_fmt(_synth_fig(r, "ecp5", "LUT4")), _pct(err.get("LUT4")),
                          f"{_fmt(_synth_fig(r, 'ecp5', 'DP16KD'))} / "
                          f"{_fmt(_synth_fig(r, 'ecp5', 'MULT18X18D'))}"]
            if "ice40" in targets:
                fits = r.get("synth", {}).get("ice40", {}).get("fits_up5k")
                cells += [f"{_fmt(_synth_fig(r, 'ice40', 'LUT4'))} / "
                          f"{_fmt(_synth_fig(r, 'ice40', 'EBR'))} / "
                          f"{_fmt(_synth_fig(r, 'ice40', 'DSP'))} ({_fmt(fits)})"]
            cells += [str(r["model_bits"])] + [str(r["widths"][n]) for n in NAMES]
            lines.append("| " + " | ".join(cells) + " |")
    failed = [(r, t, figs["error"]) for r in f + h
              for t, figs in r.get("synth", {}).items() if "error" in figs]
    for r, t, msg in failed:
        lines.append(f"\nSynthesis failed ({t}, val acc {100 * (1 - r['val_error']):.1f} %): "
                     f"{msg}")
    chosen = result.get("chosen")
    if chosen:
        lines += ["", "## The chosen configuration", "", chosen["text"]]
    (out / "report.md").write_text("\n".join(lines) + "\n")
