"""Benchmark of the DNSMOS P.808 binary-activation accelerator at its two design points.

For each design point (``examples/networks/dnsmos_ecp5.toml``: Lattice ECP5-25F at 10x real
time; ``dnsmos_ice40.toml``: Lattice iCE40 UP5K at 1x) with the shipped weights
(``dnsmos_bam.npz``): the folding chosen by the solver, the cost model's cycles per 9.01 s window,
synthesis on the design point's part (LUT4, FF, block RAM, DSP, Fmax; each layer alone too),
the real-time factor at Fmax, and the memory bits split into weights, line buffers and FIFOs,
beside the same network with 8-bit activations and in fp32 (``qhw.dnsmos.memory``).

Run: ``.venv/bin/python bench/bench_dnsmos.py [--points dnsmos_ecp5 dnsmos_ice40]``; writes
``build/bench/dnsmos.json``. Syntheses are cached (``~/.cache/qhw/synth``). A cold run takes
about 15 minutes per design point on the 2-core machine (synthesis of every layer alone
included; ``--no-parts`` skips that).
"""

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.dnsmos import memory, student
from qhw.synth_flow import synthesize_unit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "networks"
WINDOW_SECONDS = 9.01

#: Part capacities (Lattice data sheets: ECP5 family FPGA-DS-02012, iCE40 UltraPlus FPGA-DS-02008).
PARTS = {
    "ecp5": {"LUT4": 24288, "DP16KD": 56, "MULT18X18D": 28},
    "ice40": {"LUT4": 5280, "EBR": 30, "SPRAM": 4, "MAC16": 8},
}


def design_point(name, *, parts=True):
    unit = registry.get("network")
    cfg = config_from_dict(unit.config, tomllib.loads((EXAMPLES / f"{name}.toml").read_text()))
    params = dict(np.load(EXAMPLES / "dnsmos_bam.npz"))
    target = student.DESIGN_POINTS[name]["target"]
    gen = flow.generate(unit, cfg, params)
    manifest = gen.manifest
    cycles = manifest["estimate_network_performance"]["critical_path_cycles"]
    t0 = time.monotonic()
    synth = synthesize_unit(unit, cfg, params, target, fmax=True, parts=parts)
    figures = synth["figures"]
    fmax = figures.get("fmax_mhz")
    mem = memory.memory_table(cfg, params, manifest["fifos"])
    out = {
        "name": name, "part": student.DESIGN_POINTS[name]["part"], "target": target,
        "spec": student.DESIGN_POINTS[name]["spec"],
        "folding": {l["name"]: l["folding"] for l in manifest["layers"] if "folding" in l},
        "cycles_per_window": cycles,
        "bottleneck": manifest["estimate_network_performance"]["max_cycles_node_name"],
        "figures": figures,
        "capacity": PARTS[target],
        "utilisation": {k: round(figures.get(k, 0) / v, 3) for k, v in PARTS[target].items()
                        if k in figures},
        "realtime_factor_at_fmax": (WINDOW_SECONDS * fmax * 1e6 / cycles) if fmax else None,
        "parts": [{"name": p["name"], "unit": p.get("unit"), "figures": p["figures"]}
                  for p in synth.get("parts", [])],
        "memory_bits": mem,
        "synth_seconds": round(time.monotonic() - t0, 1),
        "notes": synth.get("notes", []),
    }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", nargs="+", default=list(student.DESIGN_POINTS))
    ap.add_argument("--no-parts", action="store_true")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "build" / "bench" / "dnsmos.json")
    args = ap.parse_args(argv)
    unknown = [p for p in args.points if p not in student.DESIGN_POINTS]
    if unknown:
        ap.error(f"--points: unknown {unknown[0]!r}; one of {', '.join(student.DESIGN_POINTS)}")
    results = []
    for name in args.points:
        print(f"[bench_dnsmos] {name}: generate and synthesize", flush=True)
        r = design_point(name, parts=not args.no_parts)
        results.append(r)
        f = r["figures"]
        print(f"  {r['part']}: {json.dumps(f)}; {r['cycles_per_window']} cycles per window; "
              f"real-time factor at Fmax {r['realtime_factor_at_fmax']}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"command": " ".join(sys.argv), "results": results},
                                      indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
