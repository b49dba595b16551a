"""Benchmark: the binary-activation DNSMOS accelerator beside the same network with 8-bit
activations, same flow, same folding, on Lattice ECP5.

Three networks: ``binary`` (``examples/networks/dnsmos_ecp5.toml`` with ``dnsmos_bam.npz``),
``int8`` (``dnsmos_ecp5_int8.toml`` with ``dnsmos_int8_net.npz``: every convolution and dense
layer with the binary design point's PE and SIMD, its sums requantized to 8-bit codes at the PE
outputs) and ``int8_unfused`` (the same integers with a separate ``requant`` layer after each
layer, made by ``qhw.dnsmos.int8net``; docs/dnsmos.md). qhw generates each, and the same Yosys
flow synthesizes it for ECP5: every layer alone, and with ``--whole`` each whole design (the
binary one placed and routed with Fmax; the 8-bit ones, whose FIFO in front of conv2 alone
exceeds the part's block RAM, by Yosys only). Beside the area: the
cycles per 9.01 s window (cost model), the memory bits of the generated design (weights, line
buffers, inter-layer FIFOs), and the operation-count energy per window (Horowitz 45 nm).

With ``--energy``, also the measured energy per window (gate-level toggles of every layer on
a slice of the demo's window, scaled: ``qhw.synth.energy_sampled``, docs/energy.md) of the
binary and 8-bit networks.

Run: ``.venv/bin/python bench/bench_dnsmos.py [--whole] [--energy] [--jobs 2] [-o docs]``; writes
``benchmarks_dnsmos.{md,json}`` to the output folder (default ``build/bench``). With
``--energy-only``, only the measured energy of both networks, no synthesis (``--jobs`` layers at
a time): ``benchmarks_dnsmos_energy.{md,json}``. Syntheses are
cached (``~/.cache/qhw/synth``); cold, on the 2-core machine, the layers take about 4 minutes
and ``--whole`` adds about 8 (measured: 12 minutes in all).
"""

import argparse
import concurrent.futures
import time
import tomllib
from pathlib import Path

import numpy as np

from _report import command, table, write_results

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "networks"
WINDOW_SECONDS = 9.01
NETWORKS = {"binary": "binary activations (dnsmos_ecp5)",
            "int8": "8-bit activations (dnsmos_ecp5_int8)",
            "int8_unfused": "8-bit, separate requant layers"}
SHIPPED = {"binary": ("dnsmos_ecp5", "dnsmos_bam.npz"),
           "int8": ("dnsmos_ecp5_int8", "dnsmos_int8_net.npz"),
           "binary_ice40": ("dnsmos_ice40", "dnsmos_bam.npz")}
#: --energy-only: the ECP5 pair and the iCE40 design point (energy only: it is not an ECP5 design)
ENERGY_ONLY = {"binary": NETWORKS["binary"], "int8": NETWORKS["int8"],
               "binary_ice40": "binary activations, iCE40 design point (dnsmos_ice40)"}
FIGURES = ("LUT4", "FF", "DP16KD", "MULT18X18D", "LUTRAM")


def _network(kind):
    from qhw import registry
    from qhw.config import config_from_dict
    unit = registry.get("network")
    if kind == "int8_unfused":
        from qhw.dnsmos import int8net
        params, _, _ = int8net.integer_params(int8net.load_export(), fused=False)
        desc = int8net.design_point_description("dnsmos_ecp5", fused=False)
        return unit, config_from_dict(unit.config, desc), params
    name, weights = SHIPPED[kind]
    cfg = config_from_dict(unit.config, tomllib.loads((EXAMPLES / f"{name}.toml").read_text()))
    return unit, cfg, dict(np.load(EXAMPLES / weights))


def layer_task(kind, layer):
    from qhw.synth_flow import part_figures
    unit, cfg, params = _network(kind)
    t0 = time.monotonic()
    row = part_figures(unit, cfg, params, "ecp5", only=layer)[0]
    return {"name": row["name"], "unit": row["unit"], "figures": row["figures"],
            "cycles_per_frame": row.get("cycles_per_frame"),
            "seconds": round(time.monotonic() - t0, 1)}


def whole_task(kind):
    from qhw import flow
    from qhw.synth_flow import synthesize_verilog
    unit, cfg, params = _network(kind)
    t0 = time.monotonic()
    gen = flow.generate(unit, cfg, params)
    result = synthesize_verilog(gen.verilog, gen.top, "ecp5", fmax=kind == "binary")
    return {"figures": result["figures"], "notes": result.get("notes", []),
            "seconds": round(time.monotonic() - t0, 1)}


ENERGY_KINDS = ("binary", "int8")


def demo_window():
    """The window the demo cosimulates: the first 9.01 s of its first clip (clean speech, the
    first demo voice), quantized to signed 8 bits as both networks take it: (1, 900, 120, 1)."""
    from qhw.dnsmos import demo, features, student
    clip = demo.demo_clips(quick=True, progress=False)[0]
    return student.quantize_features(features.clip_features(clip["audio"]))[:1, ..., None]


def energy_task(kind, layer, window):
    """One layer's sampled measured energy for the window (synth/energy_sampled.py; cached)."""
    from qhw.dnsmos.demo import ENERGY_CYCLE_BUDGET, ENERGY_ROWS
    from qhw.synth import energy_sampled
    unit, cfg, params = _network(kind)
    t0 = time.monotonic()
    energy_sampled.sample_layer(cfg, params, {"activations": window}, layer, rows=ENERGY_ROWS,
                                cycle_budget=ENERGY_CYCLE_BUDGET)
    return {"seconds": round(time.monotonic() - t0, 1)}


def measured_energy(kind, window):
    """The window's sampled measured energy (every layer cached by energy_task): compact."""
    from qhw.dnsmos.demo import ENERGY_CYCLE_BUDGET, ENERGY_ROWS
    from qhw.synth import energy_sampled
    unit, cfg, params = _network(kind)
    r = energy_sampled.network_toggle_energy(cfg, params, {"activations": window},
                                             rows=ENERGY_ROWS, cycle_budget=ENERGY_CYCLE_BUDGET)
    return {"uj_per_window": r["pj_per_inference"] / 1e6,
            "breakdown_uj": {k: v / 1e6 for k, v in r["breakdown"].items()},
            "idle_uj": (r["idle"]["clock"] + r["idle"]["memory_reads"]) / 1e6,
            "layers_uj": {L["name"]: L["pj"] / 1e6 for L in r["layers"]},
            "slices": {L["name"]: [L["slice"]["rows"], L["slice"]["of_rows"]]
                       for L in r["layers"]},
            "model": r["model"]}


def design_facts(kind):
    """Cycles, memory bits of the generated design and energy per window (no synthesis)."""
    from qhw.golden import network as golden_network
    from qhw.synth import energy
    unit, cfg, params = _network(kind)
    d = unit.describe(cfg)
    perf = d["estimate_network_performance"]
    fifo_bits = sum(f["depth"] * f["width"] for f in d["fifos"])
    weight_bits = 0
    for layer in cfg.resolved:
        own = golden_network.layer_params(cfg, params, layer)
        for array, value in own.items():
            bits = _array_bits(layer, array)
            weight_bits += int(np.asarray(value).size) * bits
    line_bits = 0
    for layer in cfg.resolved:
        h, w, c = layer.in_shape
        e = layer.in_format.bits
        if layer.kind in ("macconv", "bamconv", "binconv"):
            kh, kw = layer.config.kernel
            line_bits += ((kh - 1) * w + kw) * c * e
        elif layer.kind == "maxpool":
            line_bits += layer.config.out_width * c * e  # the row buffer of partial maxima
    e = energy.operation_energy(unit, cfg, 1)
    return {"cycles_per_window": perf["critical_path_cycles"],
            "max_cycles": perf["max_cycles"], "bottleneck": perf["max_cycles_node_name"],
            "memory_bits": {"weights": weight_bits, "line_buffers": line_bits,
                            "fifos": fifo_bits, "total": weight_bits + line_bits + fifo_bits},
            "energy_uj_per_window": e["pj_per_inference"] / 1e6}


def _array_bits(layer, array):
    from qhw.golden import bamconv, requant
    c = layer.config
    if array == "weights":
        return c.weight_bits
    if array == "multipliers":
        return c.mult_bits
    if array in ("bias", "thresholds"):
        return bamconv.acc_bits(c) + (1 if array == "thresholds" else 0)
    if array == "directions":
        return 1
    raise AssertionError((layer.name, array, requant))


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}"


def _ratio(a, b):
    if not a or not b:
        return "-"
    return f"{b / a:.1f}x more" if b >= a else f"{a / b:.1f}x fewer"


def report(res):
    kinds = list(NETWORKS)
    b = res["binary"]
    lines = ["# DNSMOS P.808: binary activations against 8-bit activations on ECP5", "",
             "Same qhw flow, same folding (every convolution and dense layer with the PE and "
             "SIMD of `dnsmos_ecp5.toml`), Yosys for ECP5 (docs/dnsmos.md). The 8-bit network "
             "requantizes each layer's sums to unsigned 8-bit codes at the PE outputs; the "
             "unfused variant does the same in a separate `requant` layer after each layer.",
             "", f"Command: `{res['command']}`", ""]
    header = [""] + [NETWORKS[k] for k in kinds] + ["8-bit against binary"]
    rows = []

    def add(label, values, ratio=True):
        rows.append([label] + [_fmt(v) for v in values]
                    + [_ratio(values[0], values[1]) if ratio else "-"])

    for key, label in (("cycles_per_window", "cycles per 9.01 s window (model)"),
                       ("energy_uj_per_window", "energy per window, operation count (µJ)")):
        add(label, [res[k][key] for k in kinds])
    if all("energy_measured" in res[k] for k in ENERGY_KINDS):
        rows.append(["energy per window, measured: gate-level toggles sampled per layer (µJ)"]
                    + [_fmt(res[k]["energy_measured"]["uj_per_window"]) if "energy_measured"
                       in res[k] else "-" for k in kinds]
                    + [_ratio(res["binary"]["energy_measured"]["uj_per_window"],
                              res["int8"]["energy_measured"]["uj_per_window"])])
    for key in ("weights", "line_buffers", "fifos", "total"):
        add(f"memory bits: {key.replace('_', ' ')}", [res[k]["memory_bits"][key] for k in kinds])
    for k in kinds:
        res[k]["layers_total"] = {f: sum(p["figures"].get(f, 0) for p in res[k]["layers"])
                                  for f in FIGURES}
    for f in FIGURES:
        add(f"layers alone: {f}", [res[k]["layers_total"][f] for k in kinds])
    if all("whole" in res[k] for k in kinds):
        for f in FIGURES + ("fmax_mhz",):
            add(f"whole design: {f}", [res[k]["whole"]["figures"].get(f) for k in kinds],
                ratio=f != "fmax_mhz")
    lines += table(header, rows)
    lines += ["", "## Every layer alone (ECP5, Yosys): LUT4 / FF / DP16KD / MULT18X18D", ""]
    by_name = {k: {p["name"]: p for p in res[k]["layers"]} for k in kinds}
    names = list(b["layer_order"])
    for k in kinds:
        names += [n for n in res[k]["layer_order"] if n not in names]

    def cell(k, n):
        p = by_name[k].get(n)
        return " / ".join(_fmt(p["figures"].get(f)) for f in FIGURES[:4]) if p else "-"

    lines += table(["layer"] + [NETWORKS[k] for k in kinds],
                   [[n] + [cell(k, n) for k in kinds] for n in names])
    lines += ["", "What is counted: LUT4, flip-flops, DP16KD block RAMs (18 kbit), "
              "MULT18X18D multipliers and LUT-RAM cells (LUTRAM) as Yosys's `synth_ecp5` maps "
              "them; a layer alone leaves out the inter-layer FIFOs (the memory rows count "
              "them). Memory bits: weights, biases, thresholds and multipliers at their stored "
              "widths; line buffers (k_h - 1) rows plus k_w pixels of each convolution's input "
              "and each pool's row buffer, at the element width; FIFOs depth x word width from "
              "the manifests. Energy: the Horowitz 45 nm operation table (docs/energy.md), "
              "memory reads included.", ""]
    return "\n".join(lines)


def main(argv=None):
    from tqdm import tqdm
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--whole", action="store_true",
                    help="also synthesize each whole design (about 8 minutes more, cold)")
    ap.add_argument("--energy", action="store_true",
                    help="also the measured (gate-level toggle, sampled per layer) energy per "
                         "window of the binary and 8-bit networks (synth/energy_sampled.py)")
    ap.add_argument("--energy-only", action="store_true",
                    help="only the measured energy per window of both networks, no synthesis")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "build" / "bench")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs: must be an integer >= 1, got {args.jobs}")
    res = {"command": command(__file__, argv)}
    tasks = {}
    window = demo_window() if args.energy or args.energy_only else None
    if args.energy_only:
        return energy_only(args, res, window)
    for kind in NETWORKS:
        res[kind] = design_facts(kind)
        _, cfg, _ = _network(kind)
        res[kind]["layer_order"] = [layer.name for layer in cfg.resolved]
        for layer in cfg.resolved:
            tasks[(kind, layer.name)] = (layer_task, (kind, layer.name))
        if args.whole:
            tasks[(kind, None)] = (whole_task, (kind,))
        if args.energy and kind in ENERGY_KINDS:
            for layer in cfg.resolved:
                tasks[(kind, "energy " + layer.name)] = (energy_task, (kind, layer.name, window))
    done = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool, \
            tqdm(total=len(tasks), desc="ECP5 syntheses") as bar:
        # The whole designs first: they take longest.
        order = sorted(tasks, key=lambda t: t[1] is not None)
        futures = {pool.submit(tasks[t][0], *tasks[t][1]): t for t in order}
        for fut in concurrent.futures.as_completed(futures):
            done[futures[fut]] = fut.result()
            bar.update(1)
    for kind in NETWORKS:
        res[kind]["layers"] = [done[(kind, n)] for n in res[kind]["layer_order"]]
        if args.whole:
            res[kind]["whole"] = done[(kind, None)]
        if args.energy and kind in ENERGY_KINDS:
            res[kind]["energy_measured"] = measured_energy(kind, window)
    write_results(args.output, "benchmarks_dnsmos", res, report(res))


def energy_only(args, res, window):
    """--energy-only: both networks' sampled measured energy per window, layers in parallel."""
    from tqdm import tqdm
    work = [(kind, layer.name) for kind in ENERGY_ONLY for layer in _network(kind)[1].resolved]
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool, \
            tqdm(total=len(work), desc="layer energies") as bar:
        futures = [pool.submit(energy_task, kind, name, window) for kind, name in work]
        for fut in concurrent.futures.as_completed(futures):
            fut.result()
            bar.update(1)
    for kind in ENERGY_ONLY:
        facts = design_facts(kind)
        res[kind] = {"energy_measured": measured_energy(kind, window),
                     "energy_uj_per_window": facts["energy_uj_per_window"],
                     "cycles_per_window": facts["cycles_per_window"]}
    b, q = (res[k]["energy_measured"]["uj_per_window"] for k in ENERGY_KINDS)
    rows = [[ENERGY_ONLY[k], _fmt(res[k]["cycles_per_window"]),
             _fmt(res[k]["energy_uj_per_window"]),
             _fmt(res[k]["energy_measured"]["uj_per_window"]),
             _fmt(res[k]["energy_measured"]["idle_uj"])] for k in ENERGY_ONLY]
    md = ("Energy per 9.01 s window (45 nm, 0.9 V; the demo's window), both estimates.\n\n"
          f"Command: `{res['command']}`\n\n"
          + "\n".join(table(["network", "cycles per window", "operation count (µJ)",
                              "measured, sampled (µJ)",
                              "of it in cycles a layer has no work (µJ)"], rows))
          + f"\n\nMeasured: 8-bit activations / binary = {q / b:.2f}x.\n")
    write_results(args.output, "benchmarks_dnsmos_energy", res, md)


if __name__ == "__main__":
    main()
