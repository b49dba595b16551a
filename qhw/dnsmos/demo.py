"""``qhw demo``: DNSMOS P.808 with binary activation maps, from speech to a verified accelerator.

The main job, on the shipped weights (``examples/networks/dnsmos_bam.npz``; no training):

1. **clips**: a handful of clean and degraded speech clips, synthesized offline with eSpeak NG
   (two unseen voices, the corpus's test sentences) and degraded with noise, clipping, low-pass
   filtering and reverberation; written as WAV files.
2. **scores**: each clip scored by the float DNSMOS P.808 (its ONNX model in onnxruntime) and by
   the binary student, i.e. the qhw network's golden model, which is also checked against the
   PyTorch integer oracle window by window when PyTorch is installed (the demo needs none).
3. **accelerator**: the Verilog of the ECP5 design point (``dnsmos_ecp5.toml``: folded by FINN's
   rule for 10x real time at 50 MHz).
4. **cosimulation**: one clip's full 9.01 s window through the accelerator in Verilator
   (:mod:`qhw.cosim.fastsim`), bit-exact against the golden model, cycles against the cost model;
   and the window's **measured energy**: every layer's gate netlist run on a slice of its real
   input and scaled to the window (:mod:`qhw.synth.energy_sampled`, a task per layer).
5. **synthesis**: the whole accelerator for the Lattice ECP5-25F (Yosys, nextpnr for Fmax) and
   every layer alone (the per-layer area), and every layer alone for the iCE40 UP5K (the
   moonshot part, which the design does not fit; the report says by how much).
6. **report**: ``report.md`` and ``report.html`` with the headline figures, the teacher-student
   scatter, per-layer cycles and area, the real-time factor, the memory comparison and the
   commands that reproduce every figure.

``--quick`` (at most two minutes) cosimulates a 16-frame slice of the window instead of the whole
window and skips synthesis and the measured energy (the report then gives the cost model's
cycles, the operation-count energy and the memory table).
The unit sweep of the earlier demo is ``qhw demo --units`` (or ``qhw sweep
explore/sweeps/demo.toml``).

Output folder (default ``build/demo``)::

    clips/          the demo clips, 16 kHz 16-bit WAV
    scores.csv      per clip: condition, float DNSMOS, binary student
    accelerator/    network_<hash>.v, weights.npz, config.json, manifest.json, window.npy (the
                    cosimulated window's 8-bit features)
    results.json    every figure of the report
    report/         report.md, report.html, figures/
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import flow, registry, stages
from . import features, student

__all__ = ["EXAMPLES", "CONDITIONS", "demo_clips", "score_clips", "score_files", "run"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "networks"
WEIGHTS = EXAMPLES / "dnsmos_bam.npz"
TRAINING = EXAMPLES / "dnsmos_bam.json"
DESIGN_POINTS = ("dnsmos_ecp5", "dnsmos_ice40")
QUICK_FRAMES = 16   # the slice cosimulated by --quick (at least 8: three 2x2 pools)

#: The degradations of each demo voice: (name, degrade.apply spec).
CONDITIONS = (
    ("clean", {"kind": "clean"}),
    ("white noise 20 dB", {"kind": "white", "snr_db": 20.0}),
    ("white noise 5 dB", {"kind": "white", "snr_db": 5.0}),
    ("pink noise 0 dB", {"kind": "pink", "snr_db": 0.0}),
    ("babble 10 dB", {"kind": "babble", "snr_db": 10.0}),
    ("clipped at 0.05", {"kind": "clip", "level": 0.05}),
    ("low-pass 1 kHz", {"kind": "lowpass", "cutoff_hz": 1000.0}),
    ("reverberation 1.2 s", {"kind": "reverb", "rt60": 1.2}),
)
QUICK_CONDITIONS = ("clean", "white noise 5 dB", "babble 10 dB", "reverberation 1.2 s")
#: Two of the corpus's test voices (unseen in training), both reproducible (no breath noise,
#: speech.BREATHY_VARIANTS), so the demo clips are the same on every machine.
VOICES = ("en-us+m7", "en-us+f1")
SEED = 2407


def _say(text):
    print(f"[qhw demo] {text}", flush=True)


def _network(name, frames=None):
    """(unit, config) of a design point (see :func:`student.design_point_config`)."""
    return registry.get("network"), student.design_point_config(name, frames)


def _params():
    return dict(np.load(WEIGHTS))


# 1. clips -----------------------------------------------------------------------------------

def demo_clips(quick=False, progress=True):
    """The demo clips: [{"name", "voice", "condition", "audio"}], 9.5 s or more each (one
    window), deterministic."""
    from . import corpus, degrade, speech
    sentences = [corpus.SENTENCES[i] for i in corpus.SENTENCE_SPLIT["test"]]
    items = [(s, v, 165, 50) for v in VOICES for s in sentences]
    utts = dict(zip(items, speech.synthesize_many(items, progress=progress, desc="speech")))
    sr = features.SAMPLE_RATE
    gap = np.zeros(int(0.3 * sr))
    conditions = [c for c in CONDITIONS if not quick or c[0] in QUICK_CONDITIONS]
    clips = []
    for k, voice in enumerate(VOICES):
        parts, n = [gap], 0
        for s in sentences:
            parts += [utts[(s, voice, 165, 50)], gap]
            n += 1
            if sum(len(p) for p in parts) >= 9.5 * sr:
                break
        clean = np.concatenate(parts)
        # Babble: the other voice's sentences (other talkers than the speaker).
        talkers = [utts[(s, v, 165, 50)] for v in VOICES if v != voice for s in sentences[:4]]
        for j, (cname, spec) in enumerate(conditions):
            rng = np.random.default_rng([SEED, k, j])
            audio = degrade.apply(clean, spec, rng, talkers=talkers)
            clips.append({"name": f"{voice.replace('+', '_')}_{j}_{spec['kind']}",
                          "voice": voice, "condition": cname, "spec": spec, "audio": audio})
    return clips


# 2. scores ----------------------------------------------------------------------------------

def score_clips(clips, params, mos_scale, progress=True, oracle=None):
    """Float DNSMOS P.808 (onnxruntime) and binary student (the network golden model) MOS of each
    clip, as DNSMOS scores a clip: the mean over its 9.01 s windows. With ``oracle`` (default:
    when PyTorch is installed; the scores themselves need none) also checks the golden model
    against the PyTorch integer oracle on every window (raises on a difference); each row's
    ``oracle_checked`` says whether it was."""
    from tqdm import tqdm
    from ..torch_extra import available
    from .teacher import score_onnx
    if oracle is None:
        oracle = available()
    unit, cfg = _network("dnsmos_ecp5")
    rows, windows = [], []
    for clip in tqdm(clips, desc="score", disable=not progress, leave=False):
        feats = features.clip_features(clip["audio"])
        xq = student.quantize_features(feats)
        sums = unit.golden(cfg, params, unit.check_inputs(cfg, {"activations": xq[..., None]}))
        sums = np.asarray(sums).reshape(len(xq))
        if oracle:
            expected = student.integer_forward(params, xq)
            if not np.array_equal(sums, expected):
                raise AssertionError(f"{clip['name']}: the network golden model "
                                     f"{sums.tolist()} differs from the PyTorch integer oracle "
                                     f"{expected.tolist()}")
        teacher = score_onnx(feats).astype(np.float64)
        rows.append({"clip": clip["name"], "voice": clip["voice"],
                     "condition": clip["condition"], "windows": int(len(xq)),
                     "teacher_mos": float(teacher.mean()),
                     "student_mos": float(student.mos_from_sum(sums, mos_scale).mean()),
                     "student_sums": sums.tolist(), "oracle_checked": bool(oracle)})
        windows.append(xq)
    return rows, windows


def score_files(paths, resample=False):
    """Scores of WAV files (``qhw score``): every file is read and checked before any is
    scored, so a bad one stops the command before it prints or writes anything."""
    from . import audio as audio_io
    clips = []
    for path in paths:
        audio, _ = audio_io.read_clip(path, resample=resample)
        clips.append({"name": str(path), "voice": None, "condition": None, "audio": audio})
    rows, _ = score_clips(clips, _params(), float(json.loads(TRAINING.read_text())["mos_scale"]),
                          progress=False)
    for row in rows:
        row.pop("voice"), row.pop("condition"), row.pop("oracle_checked")
    return rows


def _agreement(rows):
    t = np.array([r["teacher_mos"] for r in rows])
    s = np.array([r["student_mos"] for r in rows])
    pcc = float(np.corrcoef(t, s)[0, 1]) if len(t) > 2 and np.ptp(t) > 0 and np.ptp(s) > 0 \
        else None
    return {"clips": int(len(t)), "pcc": pcc, "rmse": float(np.sqrt(np.mean((t - s) ** 2)))}


# 4. cosimulation (a worker task) --------------------------------------------------------------

def cosim_task(window, frames=None):
    """One window (or its first ``frames`` frames) through the ECP5 accelerator in Verilator:
    bit-exactness, cycles measured and modelled, wall time."""
    unit, cfg = _network("dnsmos_ecp5", frames)
    params = _params()
    xq = np.asarray(window)[None, :frames, :, None] if frames else np.asarray(window)[None, ...,
                                                                                          None]
    x = unit.check_inputs(cfg, {"activations": xq})
    t0 = time.monotonic()
    model = unit.cost_model(cfg, 1, x)
    stages.stage("golden model")
    golden = unit.golden(cfg, params, x)  # computed once: compared and reported
    stages.stage(f"Verilator: generate, build and simulate {model.expected:,} cycles")
    run, mismatch = flow.check_rtl(unit, cfg, params, x, fast=True, expected=golden)
    return {"frames": int(xq.shape[1]), "bit_exact": mismatch is None, "mismatch": mismatch,
            "output": np.asarray(run.outputs).ravel().tolist(),
            "golden": np.asarray(golden).ravel().tolist(),
            "cycles_measured": int(run.cycles), "cycles_model": int(model.expected),
            "cycles_per_s": round(run.sim.cycles_per_s), "seconds": round(time.monotonic() - t0, 1)}


# 5. synthesis (worker tasks) ------------------------------------------------------------------

def synth_task(name, part=None, target=None):
    """The accelerator of design point ``name`` synthesized for its part's target with Fmax, or
    with ``part`` (a layer name) that layer alone, without Fmax; ``target`` another target for
    the whole accelerator (xc7: resources only, no place and route)."""
    from ..synth_flow import part_figures, synthesize_verilog
    unit, cfg = _network(name)
    params = _params()
    own = student.DESIGN_POINTS[name]["target"]
    target = target or own
    t0 = time.monotonic()
    if part is None:
        stages.stage("generate (Amaranth)")
        gen = flow.generate(unit, cfg, params)
        fmax = target == own
        stages.stage(f"synthesis{' with place and route' if fmax else ''} ({target})")
        result = synthesize_verilog(gen.verilog, gen.top, target, fmax=fmax)
        out = {"figures": result["figures"], "notes": result.get("notes", [])}
    else:
        stages.stage(f"generate and synthesize the layer alone ({target})")
        out = part_figures(unit, cfg, params, target, only=part)[0]
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def _collect_synthesis(done):
    """The synthesis results as the report reads them: "ECP5 synthesis" and "xc7 synthesis"
    (whole), "ECP5 layers" and "iCE40 layers" ({"parts": [...]} in layer order, failed layers
    left out and listed)."""
    out = {}
    for key in ("ECP5 synthesis", "xc7 synthesis"):
        if key in done:
            out[key] = done[key]
    for point, key in (("dnsmos_ecp5", "ECP5"), ("dnsmos_ice40", "iCE40")):
        rows = [done[f"{key} {layer}"] for layer in _layer_names(point)
                if f"{key} {layer}" in done]
        if rows:
            out[f"{key} layers"] = {"parts": [r for r in rows if "error" not in r],
                                    "failed": [r["error"] for r in rows if "error" in r]}
    return out


def _layer_names(name):
    unit, cfg = _network(name)
    return [layer.name for layer in cfg.resolved]


def _energy():
    """Operation-count energy of one window at the ECP5 design point (Horowitz 45 nm), in all
    and per layer (``per_layer``: layer -> pJ)."""
    from ..synth import energy
    unit, cfg = _network("dnsmos_ecp5")
    e = energy.operation_energy(unit, cfg, 1)
    per_layer = {layer.name: 0.0 for layer in cfg.resolved}
    for op in e["operations"]:
        name = op["what"].split(":", 1)[0]
        per_layer[name] = per_layer.get(name, 0.0) + op["pj"]
    return {**{k: e[k] for k in ("pj_per_inference", "breakdown", "model")},
            "per_layer": per_layer}


#: The measured energy's slices (synth/energy_sampled.py): at most this many input rows of each
#: layer, and at most this many cycles per layer's slice (conv2's cycles per row are 92,160).
ENERGY_ROWS = 4
ENERGY_CYCLE_BUDGET = 200_000


def energy_layer_task(window, layer):
    """The measured (gate-level toggle) energy of one layer of the ECP5 design point for the
    whole window, from a slice of its real input (:func:`qhw.synth.energy_sampled.sample_layer`;
    cached)."""
    from ..synth import energy_sampled
    unit, cfg = _network("dnsmos_ecp5")
    t0 = time.monotonic()
    stages.stage("golden model, Yosys (memories kept), Verilator gate-level run with toggle "
                 "coverage")
    entry = energy_sampled.sample_layer(cfg, _params(), {"activations": np.asarray(window)[
        None, ..., None]}, layer, rows=ENERGY_ROWS, cycle_budget=ENERGY_CYCLE_BUDGET)
    return {"pj": entry["pj"], "seconds": round(time.monotonic() - t0, 1)}


def _measured_energy(window, done, quick):
    """The sampled measured energy of the window (every layer's task done: each is cached, so
    this adds them up), compact for results.json; or why it is missing."""
    if quick:
        return {"skipped": "--quick skips the measured energy (twelve gate-level layer runs: "
                           "minutes on a cold cache); `qhw demo` computes it"}
    failed = [f"{k}: {v['error']}" for k, v in done.items()
              if k.startswith("energy ") and "error" in v]
    if failed:
        return {"error": "; ".join(failed)[:600]}
    from ..synth import energy_sampled
    unit, cfg = _network("dnsmos_ecp5")
    try:
        r = energy_sampled.network_toggle_energy(
            cfg, _params(), {"activations": np.asarray(window)[None, ..., None]},
            rows=ENERGY_ROWS, cycle_budget=ENERGY_CYCLE_BUDGET)
    except Exception as exc:  # reported like a failed task; the rest of the report stands
        return {"error": f"{type(exc).__name__}: {exc}"[:600]}
    layers = [{"name": L["name"], "unit": L["unit"], "slice": L["slice"], "scale": L["scale"],
               "busy_cycles": L["busy_cycles"], "pj": L["pj"], "breakdown": L["breakdown"],
               "idle": L["idle"], "flipflops": L["measured"]["flipflops"],
               "memory_bits": L["measured"]["memory_bits"],
               "slice_cycles": L["measured"]["cycles"],
               "seconds": L["measured"]["seconds"]["total"]} for L in r["layers"]]
    return {k: r[k] for k in ("pj_per_inference", "breakdown", "idle", "fifos", "cycles",
                              "rows", "cycle_budget", "model", "notes")} | {
        "layers": layers,
        "seconds": {k: done[f"energy {k}"]["seconds"] for k in (L["name"] for L in layers)
                    if f"energy {k}" in done}}


# Running --------------------------------------------------------------------------------------

def _staged(fn, stage_file, args):
    """A step-4 task in its pool process, announcing its stages (:mod:`qhw.stages`) to
    ``stage_file``, which the demo's process reads for the progress display."""
    if stage_file:
        os.environ[stages.ENV] = stage_file
    try:
        return fn(*args)
    finally:
        os.environ.pop(stages.ENV, None)


def _task_kind(label):
    """Tasks of similar length, for the estimate of the time left: the layers of a part."""
    for key in ("ECP5", "iCE40", "energy"):
        if label.startswith(f"{key} ") and label != "ECP5 synthesis":
            return f"{key} layer"
    return label


def _run_tasks(tasks, jobs, board):
    """Run {label: (fn, args)} in a process pool; returns {label: result or {"error": ...}}.
    Each task's stages go to ``board`` (a :class:`qhw.explore.progress.StageBoard`) as the
    pool's processes announce them."""
    results, started = {}, time.monotonic()
    for label in tasks:
        board.add(label, label, kind=_task_kind(label))
    with tempfile.TemporaryDirectory(prefix="qhw-demo-stages-") as tmp, \
            concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        shown = board.mode != "off"  # else no stage files: the tasks announce nothing
        files = {label: str(Path(tmp) / f"{i}.jsonl") if shown else ""
                 for i, label in enumerate(tasks)}
        offsets = {label: 0 for label in tasks}
        futures = {pool.submit(_staged, fn, files[label], args): label
                   for label, (fn, args) in tasks.items()}
        pending = set(futures)
        while pending:
            done, pending = concurrent.futures.wait(
                pending, timeout=0.25, return_when=concurrent.futures.FIRST_COMPLETED)
            for label in (futures[f] for f in pending | done) if shown else ():
                events, offset = stages.read_new(files[label], offsets[label])
                if events and offsets[label] == 0:
                    board.start(label, events[0][2])
                offsets[label] = offset
                for kind, text, ago in events:
                    board.event(label, kind, text, ago)
            for fut in done:
                label = futures[fut]
                try:
                    results[label] = fut.result()
                except Exception as exc:  # recorded and reported; the other tasks go on
                    results[label] = {"error": f"{type(exc).__name__}: {exc}"}
                failed = "error" in results[label]
                board.end(label, ok=not failed)
                if failed or label in ("ECP5 synthesis", "cosimulation") or not pending:
                    board.write(f"[qhw demo] {label}: "
                                f"{'FAILED ' + results[label]['error'][:300] if failed else 'done'}"
                                f" ({time.monotonic() - started:.0f} s)")
    return results


def run(outdir, *, quick=False, jobs=None, progress=True):
    """Run the demo into ``outdir``; exit status 0 when every check passed."""
    from ..errors import QhwInputError
    from ..explore import progress as display
    from . import audio as audio_io, memory
    from .report import write_report
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise QhwInputError(f"--output: {outdir} exists and is not a folder")
    jobs = jobs or os.cpu_count() or 1
    t_start = time.monotonic()
    mode = display.display_mode(progress)
    bars = mode == "bars"  # the short steps' bars; in a log their redraws would be noise
    params = _params()
    training = json.loads(TRAINING.read_text())
    mos_scale = float(training["mos_scale"])

    _say(f"1/5 clips: {len(VOICES)} unseen eSpeak NG voices x "
         f"{len(QUICK_CONDITIONS) if quick else len(CONDITIONS)} conditions")
    clips = demo_clips(quick=quick, progress=bars)
    (outdir / "clips").mkdir(parents=True, exist_ok=True)
    for clip in clips:
        audio_io.write_clip(outdir / "clips" / f"{clip['name']}.wav", clip["audio"])

    from ..torch_extra import available
    oracle = available()
    _say("2/5 scores: float DNSMOS P.808 (onnxruntime) and the binary student (qhw's golden "
         "model" + (", checked against the PyTorch integer oracle)" if oracle else
                    "; PyTorch is not installed, so no check against its integer oracle)"))
    rows, windows = score_clips(clips, params, mos_scale, progress=bars, oracle=oracle)
    agreement = _agreement(rows)
    with flow.atomic_file(outdir / "scores.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["clip", "voice", "condition", "windows", "teacher_mos",
                                          "student_mos"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    _say(f"   {agreement['clips']} clips: PCC {agreement['pcc']:.3f}, RMSE "
         f"{agreement['rmse']:.3f} MOS (student against the float model)")

    _say("3/5 accelerator: Verilog of the ECP5 design point")
    unit, cfg = _network("dnsmos_ecp5")
    gen = flow.write_generated(unit, cfg, params, outdir / "accelerator")
    window = windows[0][0]
    np.save(outdir / "accelerator" / "window.npy", window[None, ..., None])
    design = {}
    for name in DESIGN_POINTS:
        u, c = _network(name)
        g = gen if name == "dnsmos_ecp5" else flow.generate(u, c, params)
        design[name] = {"manifest": {k: g.manifest[k] for k in (
            "layers", "fifos", "estimate_network_performance", "cycles")},
            "memory_bits": memory.memory_table(c, params, g.manifest["fifos"]),
            **student.DESIGN_POINTS[name]}

    # Longest first, so that two workers finish together: the whole ECP5 flow, the window's
    # cosimulation, then every layer alone (ECP5, then iCE40).
    tasks = {}
    if not quick:
        tasks["ECP5 synthesis"] = (synth_task, ("dnsmos_ecp5",))
    tasks["cosimulation"] = (cosim_task, (window, QUICK_FRAMES if quick else None))
    if not quick:
        for layer in _layer_names("dnsmos_ecp5"):
            tasks[f"energy {layer}"] = (energy_layer_task, (window, layer))
        tasks["xc7 synthesis"] = (synth_task, ("dnsmos_ecp5", None, "xc7"))
        for point, key in (("dnsmos_ecp5", "ECP5"), ("dnsmos_ice40", "iCE40")):
            for layer in _layer_names(point):
                tasks[f"{key} {layer}"] = (synth_task, (point, layer))
    _say(f"4/5 {'cosimulation of a ' + str(QUICK_FRAMES) + '-frame slice' if quick else 'cosimulation of one 9.01 s window, measured energy (each layer on a slice of the window, gate level), and synthesis (ECP5 with place and route, xc7; every layer alone for ECP5 and iCE40)'}"
         f", {min(jobs, len(tasks))} at a time")
    with display.StageBoard(total=len(tasks), desc="accelerator", prefix="qhw demo", unit="task",
                            mode=mode, workers=min(jobs, len(tasks)), t0=t_start) as board:
        done = _run_tasks(tasks, jobs, board)
    cosim = done["cosimulation"]
    if "error" not in cosim:
        _say(f"   cosimulation: {'bit-exact' if cosim['bit_exact'] else 'MISMATCH'}, "
             f"{cosim['cycles_measured']:,} cycles (model {cosim['cycles_model']:,})")

    results = {
        "quick": quick, "clips": rows, "agreement": agreement,
        "training": {**{k: training[k] for k in ("test", "validation", "minutes", "student")
                        if k in training},
                     "train_on_val": bool(training.get("options", {}).get("train_on_val"))},
        "design_points": design, "cosimulation": cosim,
        "synthesis": _collect_synthesis(done),
        "front_end_operations": features.operations(),
        "energy": _energy(),
        "energy_measured": _measured_energy(window, done, quick),
        "seconds": None,
    }
    _say("5/5 report")
    results["seconds"] = round(time.monotonic() - t_start, 1)
    path = write_report(results, outdir / "report")
    flow.write_json(outdir / "results.json", results)
    failed = [k for k, v in done.items() if "error" in v]
    ok = not failed and cosim.get("bit_exact") and \
        cosim.get("cycles_measured") == cosim.get("cycles_model")
    for k in failed:
        _say(f"FAILED {k}: {done[k]['error'][:300]}")
    _say(f"{'done' if ok else 'done, with failures'} in {display.short_time(results['seconds'])}")
    display.print_ending(path)  # the headline findings and where the report is, last
    return 0 if ok else 1
