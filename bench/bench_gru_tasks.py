"""Accuracy of the search's GRU classifier on its two tasks (docs/search.md): float, and
homogeneous 16/8/6/4-bit formats with calibrated binary points after QAT, every quantized
figure from the integer golden model (qhw.golden.gru + the integer classifier).

Per task: the data and the float model (:func:`qhw.search.model.prepare`: built and trained on
the first run, then cached), then per width: no fine-tune (steps 0), the search's candidate
budget (``--candidate-steps``, default 100 Adam steps), the table's budget (``--table-steps``,
default 1000) and, for comparison, the GRU unit's preset binary points
(:func:`qhw.golden.gru.homogeneous_formats`) at the candidate budget; and the candidate
objective's spread over ``--seeds`` seeds at 8 bits. One CPU thread per run (as a search
worker has).

Run: ``.venv/bin/python bench/bench_gru_tasks.py [--tasks kws,digits] [-o build/bench]``.
Writes ``<o>/gru_tasks.json`` and ``<o>/gru_tasks.md``.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from qhw.golden import gru as g
from qhw.search import model as M

from _report import table, write_results

WIDTHS = (16, 8, 6, 4)


def pct(v):
    return f"{100 * v:.1f}"


def run_task(task, candidate_steps, table_steps, seeds, threads):
    t0 = time.perf_counter()
    p = M.prepare(task)
    prepare_s = time.perf_counter() - t0
    res = {"task": task, "prepare_s": round(prepare_s, 1), "data_info": {
        k: v for k, v in p.data.info.items() if k != "path"},
        "sizes": {s: len(sp) for s, sp in p.data.splits.items()},
        "hidden_size": p.hidden_size, "float_budget": M.FLOAT_BUDGET[task],
        "float_train_s": p.metrics["train_s"], "float": p.metrics["float_accuracy"],
        "ranges": p.ranges, "widths": {}}
    for bits in WIDTHS:
        formats = p.formats(M.homogeneous_widths(bits))
        row = {"formats": formats}
        for name, steps, fmts in (("ptq", 0, formats), ("candidate", candidate_steps, formats),
                                  ("table", table_steps, formats),
                                  ("preset", candidate_steps, g.homogeneous_formats(bits))):
            r = M.evaluate_candidate(p, fmts, steps=steps, test=True, threads=threads)
            row[name] = {k: r[k] for k in ("val_error", "val_accuracy", "test_accuracy",
                                            "steps", "qat_loss", "seconds")}
            print(f"{task} {bits}-bit {name}: val error {r['val_error']:.4f}, "
                  f"test accuracy {r['test_accuracy']:.4f}, {r['seconds']:.1f} s", flush=True)
        res["widths"][bits] = row
    errs = [res["widths"][8]["candidate"]["val_error"]]
    for seed in range(1, seeds):
        r = M.evaluate_candidate(p, p.formats(M.homogeneous_widths(8)), steps=candidate_steps,
                                 seed=seed, threads=threads)
        errs.append(r["val_error"])
    res["seed_spread_8bit"] = {"val_errors": errs, "mean": float(np.mean(errs)),
                               "std": float(np.std(errs))}
    res["total_s"] = round(time.perf_counter() - t0, 1)
    return res


def markdown(results, args, total_s):
    lines = ["#### Test accuracy (%), integer golden model after QAT "
             f"({args.table_steps} steps); float = the float model", ""]
    lines += table(["task", "test clips", "float", *(f"{b}-bit" for b in WIDTHS)],
                   [[r["task"], r["sizes"]["test"], pct(r["float"]["test"]),
                     *(pct(r["widths"][b]["table"]["test_accuracy"]) for b in WIDTHS)]
                    for r in results])
    for r in results:
        lines += ["", f"#### {r['task']}: per width (accuracy %, validation / test; "
                  "seconds of QAT + integer evaluation, one thread)", ""]
        rows = [["float", "-", f"{pct(r['float']['val'])} / {pct(r['float']['test'])}",
                 f"{r['float_train_s']:.0f} (training)", "-", "-", "-", "-"]]
        for b in WIDTHS:
            w = r["widths"][b]

            def vt(k):
                return f"{pct(w[k]['val_accuracy'])} / {pct(w[k]['test_accuracy'])}"
            rows.append([f"{b}-bit", vt("ptq"), vt("candidate"), f"{w['candidate']['seconds']:.1f}",
                         vt("table"), f"{w['table']['seconds']:.1f}", vt("preset"),
                         f"{w['preset']['seconds']:.1f}"])
        lines += table(["formats", "no fine-tune", f"QAT {args.candidate_steps}", "s",
                        f"QAT {args.table_steps}", "s",
                        f"preset points, QAT {args.candidate_steps}", "s"], rows)
        s = r["seed_spread_8bit"]
        lines += ["", f"Candidate objective at 8 bits over {len(s['val_errors'])} seeds: "
                  f"validation error {', '.join(f'{100 * e:.2f}' for e in s['val_errors'])} % "
                  f"(std {100 * s['std']:.2f} points). Data + float model this run: "
                  f"{r['prepare_s']:.0f} s; task total {r['total_s']:.0f} s."]
    lines += ["", f"Whole run: {total_s:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="digits,kws")
    ap.add_argument("--candidate-steps", type=int, default=M.CANDIDATE_BUDGET["steps"])
    ap.add_argument("--table-steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = [run_task(t, args.candidate_steps, args.table_steps, args.seeds, args.threads)
               for t in args.tasks.split(",")]
    total_s = time.perf_counter() - t0
    res = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "candidate_budget": M.CANDIDATE_BUDGET, "gru_options": M.GRU_OPTIONS,
           "head_bits": M.HEAD_BITS, "results": results, "total_s": round(total_s, 1)}
    write_results(args.output, "gru_tasks", res, markdown(results, args, total_s))


if __name__ == "__main__":
    main()
