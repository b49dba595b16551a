"""Benchmark of the sweep's Dask executor (docs/sweeps.md, "Benchmark: the executor").

1. Scaling: the same CPU-bound sweep (16 exponent-adder multiplier points, cosimulated with and
   without stalls, no synthesis) with 1 and with 2 workers of the embedded LocalCluster, into fresh
   results folders, after a warm-up run that builds the Verilator models (so every timed run does
   the same work: a point's process, generation, two simulations). Wall time of the whole
   ``run_sweep`` (cluster start-up included) and of its points (start-up subtracted), and their
   ratio: the speed-up of the second worker.
2. Scheduling overhead per point: trivial jobs through :meth:`Executor.run` (the same path the
   points take: submit as worker threads free up, wait, collect), as worker time lost per job
   (wall x workers / jobs). And, for scale, what a point's own process costs before any stage
   runs (Python start-up and imports): points whose config the unit refuses at once.

Run: ``.venv/bin/python bench/bench_sweep_dask.py [--points 16] [--repeat 2] [--jobs 400]``.
Writes ``build/bench/sweep_dask.json`` and ``.md``; docs/sweeps.md records a run. The machine's
load (``os.getloadavg``) before and after each measurement is recorded with it: on a shared
machine the ratio is only as good as the quiet it ran in.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _report import table, write_results

from qhw.explore import executor, sweep

FORMATS = ["fp16", "bf16", "fp32", "fixed"]
OVERFLOW = ["saturate", "inf"]


def cpu_sweep(points, frames):
    """``points`` exponent-adder multipliers, cosimulation only (with stalls: two simulations of
    ``frames`` products per point): the 7 designs of act_format x overflow (fixed point has no
    'inf'), each with as many seeds as it takes (the same Verilog, other inputs and stalls)."""
    designs = [(fmt, overflow) for fmt in FORMATS for overflow in OVERFLOW
               if not (fmt == "fixed" and overflow == "inf")]
    lines = ['name = "bench_cpu"', "[settings]", "targets = []", "fmax = false",
             "energy = false", "stall = 0.3", f"frames = {frames}", "baselines = false"]
    for i in range(points):
        fmt, overflow = designs[i % len(designs)]
        lines += ["[[sweep]]", 'unit = "expmul"', "[sweep.base]", f'act_format = "{fmt}"',
                  f'overflow = "{overflow}"', "[sweep.settings]", f"seed = {i // len(designs)}"]
    return sweep.parse_sweep("\n".join(lines) + "\n")


def refused_sweep(points):
    """``points`` points the unit refuses at its config check (weight_exp_bits out of range):
    each costs its process and imports, nothing else."""
    lines = ['name = "bench_refused"', "[settings]", "targets = []", "energy = false",
             "baselines = false", "[[sweep]]", 'unit = "expmul"', "[sweep.grid]",
             f"weight_exp_bits = {{start = 20, stop = {19 + points}}}"]
    return sweep.parse_sweep("\n".join(lines) + "\n")


def load():
    return round(os.getloadavg()[0], 2)


def timed_sweep(make_spec, workers, root, *, refused=False, tries=3):
    """Wall time of ``run_sweep`` into a fresh folder. A run in which a point met sources edited
    since the sweep started (kind ``environment``: it did no work) is run again."""
    for _ in range(tries):
        spec = make_spec()  # keys of the sources as they are now
        out = Path(tempfile.mkdtemp(dir=root))
        before = load()
        started = time.perf_counter()
        summary = sweep.run_sweep(spec, out, jobs=workers, progress=False)
        wall = time.perf_counter() - started
        shutil.rmtree(out)
        assert summary.computed == summary.total and not summary.interrupted, summary.total
        kinds = [r["error_kind"] for r in summary.records if r["status"] == "failed"]
        if "environment" in kinds:
            print("sources edited during the run: again", flush=True)
            continue
        assert kinds == (["config"] * summary.total if refused else []), kinds
        return {"wall_s": round(wall, 2), "load_before": before, "load_after": load()}
    raise SystemExit("the sources kept changing during the runs")


def startup(workers):
    """Seconds to start and close an embedded cluster of ``workers``."""
    started = time.perf_counter()
    with executor.Executor(jobs=workers):
        ready = time.perf_counter() - started
    return round(ready, 2), round(time.perf_counter() - started, 2)


def _noop(i):
    return i


def overhead(workers, jobs):
    """Worker time lost per trivial job through Executor.run (ms), wall and throughput."""
    with executor.Executor(jobs=workers) as ex:
        list(ex.run(_noop, [(i, (i,), "bench-warm") for i in range(4 * workers)]))  # warm-up
        before = load()
        started = time.perf_counter()
        results = sorted(r for _, r, error in ex.run(_noop, [(i, (i,), "bench-noop")
                                                            for i in range(jobs)]) if not error)
        wall = time.perf_counter() - started
    assert results == list(range(jobs))
    return {"workers": workers, "jobs": jobs, "wall_s": round(wall, 3),
            "ms_per_job_per_worker": round(1000 * wall * workers / jobs, 2),
            "jobs_per_s": round(jobs / wall, 1), "load_before": before, "load_after": load()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=16, help="points of the CPU-bound sweep")
    p.add_argument("--frames", type=int, default=8, help="products per simulation")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per worker count")
    p.add_argument("--jobs", type=int, default=400, help="trivial jobs for the overhead")
    p.add_argument("--refused", type=int, default=8, help="refused points (process cost)")
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="qhw-bench-sweep-"))
    res = {"cores": os.cpu_count(), "points": args.points, "frames": args.frames,
           "repeat": args.repeat,
           "command": "python bench/bench_sweep_dask.py " + " ".join(argv or sys.argv[1:])}
    try:
        def spec():
            return cpu_sweep(args.points, args.frames)
        print(f"warm-up: {args.points} points, 2 workers (builds the Verilator models)",
              flush=True)
        timed_sweep(spec, 2, root)
        res["startup_s"] = {n: startup(n) for n in (1, 2)}
        runs = {1: [], 2: []}
        for i in range(args.repeat):
            for n in (1, 2):
                runs[n].append(timed_sweep(spec, n, root))
                print(f"run {i + 1}, {n} worker(s): {runs[n][-1]}", flush=True)
        res["runs"] = runs
        best = {n: min(r["wall_s"] for r in runs[n]) for n in runs}
        points_phase = {n: round(best[n] - res["startup_s"][n][1], 2) for n in runs}
        res["best_wall_s"] = best
        res["points_phase_s"] = points_phase
        res["ratio_wall"] = round(best[1] / best[2], 2)
        res["ratio_points"] = round(points_phase[1] / points_phase[2], 2)
        res["overhead"] = [overhead(n, args.jobs) for n in (1, 2)]
        wall = timed_sweep(lambda: refused_sweep(args.refused), 1, root, refused=True)
        res["refused"] = wall | {"points": args.refused,
                                 "s_per_point": round((wall["wall_s"] - res["startup_s"][1][1])
                                                      / args.refused, 2)}
    finally:
        shutil.rmtree(root, ignore_errors=True)

    md = ["# Sweep executor benchmark", "",
          f"Command: `{res['command'].strip()}` on {res['cores']} cores.", "",
          "## Scaling: the same CPU-bound sweep on 1 and 2 workers", ""]
    md += table(["workers", "runs: wall s (load before/after)", "best wall s",
                 "points phase s (start-up subtracted)"],
                [[n, ", ".join(f"{r['wall_s']} ({r['load_before']}/{r['load_after']})"
                               for r in res["runs"][n]),
                  res["best_wall_s"][n], res["points_phase_s"][n]] for n in (1, 2)])
    md += ["", f"Speed-up of the second worker: **{res['ratio_wall']}x** on the whole sweep, "
               f"**{res['ratio_points']}x** on its points; cluster start-up (ready, closed): "
               f"1 worker {res['startup_s'][1]} s, 2 workers {res['startup_s'][2]} s.", "",
           "## Scheduling overhead per job (trivial jobs through Executor.run)", ""]
    md += table(["workers", "jobs", "wall s", "ms of worker time per job", "jobs/s",
                 "load before/after"],
                [[o["workers"], o["jobs"], o["wall_s"], o["ms_per_job_per_worker"],
                  o["jobs_per_s"], f"{o['load_before']}/{o['load_after']}"]
                 for o in res["overhead"]])
    r = res["refused"]
    md += ["", f"A point's own process (Python start-up and imports, a config the unit refuses): "
               f"{r['s_per_point']} s per point ({r['points']} points, 1 worker, "
               f"{r['wall_s']} s with start-up).", ""]
    write_results(args.output, "sweep_dask", res, "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
