"""Fit the GRU area model over formats at the KWS size (qhw.search.area) and report its error.

    .venv/bin/python bench/bench_search_area.py [--train 14] [--holdout 3] [-j 2]
        [-o qhw/search/area_fit.json]

Synthesizes the homogeneous 4/6/8/12-bit configurations and ``--train`` random width vectors
(training) and ``--holdout`` further random ones (held out) for the generic target
(transistors) and the ECP5 (LUT4), cached by qhw.synth_flow; writes the fit as JSON (what
``qhw search`` uses by default) and prints the error report.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qhw.search import area  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=14)
    ap.add_argument("--holdout", type=int, default=3)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("-o", "--output", default=str(area.default_fit_path()))
    args = ap.parse_args(argv)
    tr, ho = area.design_widths(args.train, args.holdout)
    t0 = time.perf_counter()
    fit = area.fit_area_model(tr, ho, jobs=args.jobs)
    wall = time.perf_counter() - t0
    print(fit.report())
    print(f"wall {wall:.0f} s (synthesis {fit.seconds:.0f} s when not cached)")
    for p in fit.points:
        pred = fit.predict(p["widths"])
        print(p["role"], " ".join(f"{k}={v:.0f}/{pred[k]:.0f}" for k, v in p["figures"].items()))
    Path(args.output).write_text(json.dumps({**fit.to_json(), "wall_s": round(wall, 1)},
                                            indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
