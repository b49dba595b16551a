"""Design-space sweeps: ``qhw sweep SWEEP.toml -o RESULTS/`` (docs/sweeps.md).

A sweep file names one unit kind (or several ``[[sweep]]`` tables) with a base config and lists
or ranges per config field; their cartesian product, plus any explicit points, are the design
points. Every point is generated, cosimulated against the golden model, synthesized and given an
energy estimate in a process of its own, several at a time on Dask workers (:mod:`.executor`: an
embedded cluster by default, or an existing one); each result comes back to this process, which
writes it the moment it is known, so an interrupted sweep resumes where it stopped and an
unchanged sweep does no work.

Results folder::

    RESULTS/points/<key>.json   one record per point (the cache; key hashes what determines it)
    RESULTS/results.json        the sweep, the tools and every record, in sweep order
    RESULTS/results.csv         the same records, one flat row per point
    RESULTS/sweep.toml          the sweep file that produced them
"""

import ast
import contextlib
import csv
import dataclasses
import functools
import hashlib
import importlib.util
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback
from pathlib import Path

import numpy as np

from .. import flow, registry, stages, synth_flow, toolchain
from ..config import config_from_dict, config_to_dict, read_input_text
from ..errors import QhwInputError, QhwToolError
from . import executor, progress

#: Targets a sweep may name (``targets = [...]``), and those it runs when it names none.
TARGETS = ("generic", "ecp5", "xc7", "ice40")
#: ice40 is not a default (so not in `qhw demo` either): the UP5K holds only the small points
#: (most demo points exceed its 5,280 LUT4 and get no Fmax), and synth_ice40 plus nextpnr-ice40
#: cost about as much as the ECP5 stage: 10 s of Yosys and 30 s with Fmax for the binconv default
#: (1,534 LUT4) on the 2-core machine, which over the demo's 24 points would lengthen `make demo`
#: by several minutes. Name it in a sweep file's settings to get the columns.
DEFAULT_TARGETS = ("generic", "ecp5", "xc7")

#: Settings of a sweep (top level or per ``[[sweep]]``) and their defaults.
DEFAULT_SETTINGS = {
    "frames": 2,            # batch items per simulation (frames, vectors, sequences)
    "steps": 4,             # time steps per sequence, for units whose inputs are sequences
    "seed": 0,              # seed of the random weights and inputs
    "stall": 0.3,           # probability of input stalls and output back-pressure (0: skip)
    "targets": list(DEFAULT_TARGETS),
    "fmax": True,           # ECP5 (and iCE40, if a target) place and route for Fmax
    "fmax_lut_limit": 4000,  # ... only below this many LUT4 (place and route time grows fast)
    "energy": True,         # toggle-based and operation-count energy estimates
    "energy_cell_limit": 40000,  # gate-level toggle runs only up to this many generic cells
    "baselines": True,      # add each point's baseline design (registry) as a point
    "timeout_s": 1800,      # per point, all stages together
}

#: Error kinds of a failed point. ``tool``, ``timeout``, ``worker-lost`` (the workers running it
#: kept dying) and ``environment`` (a worker with other qhw sources or tools) may be passing
#: troubles (a full disk, a loaded machine, a cluster being updated): they are tried again when
#: the sweep is run again; the others are final.
FINAL_ERRORS = ("config", "mismatch", "error")

#: Settings that do not change a point's result, so not part of its cache key.
_NOT_IN_KEY = {"timeout_s", "baselines"}

#: Sources that run or present points but compute no figure: editing them keeps the cache.
_NOT_RESULTS = {"cli.py", "demo.py", "sweep.py", "report.py", "executor.py", "progress.py",
                "stages.py"}


# The sweep file ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Point:
    """One design point: a unit, its config as given, and the settings that shape its result."""
    unit: str
    config: dict
    settings: dict
    origin: str = "grid"     # "grid", "points" or "baseline"

    @functools.cached_property
    def key(self):
        shaping = {k: v for k, v in self.settings.items() if k not in _NOT_IN_KEY}
        return _hash([self.unit, _canonical(self.unit, self.config), shaping,
                      toolchain.versions(), code_version(self.unit)])[:20]


def _hash(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _canonical(unit_name, config):
    """The validated config with defaults filled in (so equal designs share a key), or as given."""
    try:
        return config_to_dict(config_from_dict(registry.get(unit_name).config, config))
    except QhwInputError:
        return config


#: Modules every point runs through, whatever its unit (their qhw imports are followed too).
_FLOW_MODULES = ("qhw.flow", "qhw.synth_flow", "qhw.synth.flows", "qhw.synth.energy",
                 "qhw.cosim.runner", "qhw.cosim.streams")

#: Imports not followed: the package that registers every unit (the registry loads it lazily).
_NOT_FOLLOWED = {"qhw.units"}

#: Non-Python files the flows read: Yosys scripts and Verilog helpers, the FST shim header.
_FLOW_DATA = (("qhw.synth", "scripts"), ("qhw.cosim", "_lz4shim"))


def _find(name):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a name imported from a module, not a module
        return None


def _qhw_imports(module):
    """The qhw modules that ``module`` imports, read from its source (nothing is executed)."""
    spec = _find(module)
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] == "qhw" and _find(n) is not None}
    return found


@functools.cache
def code_version(unit_name):
    """Hash of :func:`code_sources`: editing another unit, the runner or the report keeps it."""
    digest = hashlib.sha256()
    for path in code_sources(unit_name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def code_sources(unit_name):
    """The files that compute a unit's figures, sorted: the modules its registered functions
    live in and everything in qhw they import, the flows (generation, cosimulation, synthesis,
    energy) and the flows' scripts."""
    unit = registry.get(unit_name)
    roots = {value.__module__ for field in dataclasses.fields(unit)
             for value in [getattr(unit, field.name)] if callable(value)
             and getattr(value, "__module__", "").startswith("qhw")}
    todo, seen = [*roots, unit.testbench, *_FLOW_MODULES], set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += _qhw_imports(module) - seen - _NOT_FOLLOWED
    files = {Path(_find(m).origin) for m in seen}
    for package, folder in _FLOW_DATA:
        files |= {p for p in Path(_find(package).origin).with_name(folder).iterdir()
                  if p.suffix in (".ys", ".v", ".h")}
    return sorted(f for f in files if f.name not in _NOT_RESULTS)


def _expand_values(where, spec):
    """A grid entry: a list of values, or an inclusive range {start, stop, step}."""
    if isinstance(spec, list):
        if not spec:
            raise QhwInputError(f"{where}: empty list of values")
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "step"}
        if unknown or not {"start", "stop"} <= set(spec):
            raise QhwInputError(f"{where}: a range is {{start = A, stop = B, step = S}} "
                                f"(stop included, step default 1), got {spec}")
        start, stop, step = spec["start"], spec["stop"], spec.get("step", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)) \
                or step == 0:
            raise QhwInputError(f"{where}: range bounds and step must be integers, step != 0")
        values = list(range(start, stop + (1 if step > 0 else -1), step))
        if not values:
            raise QhwInputError(f"{where}: range {spec} is empty")
        return values
    raise QhwInputError(f"{where}: expected a list of values or a range table, got {spec!r}")


def _set_field(config, dotted, value):
    """Set ``a.b`` in a nested config dict (GRU formats: ``"formats.weight" = [[4, 2], ...]``)."""
    head, *rest = dotted.split(".")
    if not rest:
        config[head] = value
    else:
        config[head] = dict(config.get(head) or {})
        _set_field(config[head], ".".join(rest), value)


def _check_settings(where, settings):
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise QhwInputError(f"{where}: unknown setting {unknown[0]!r}; allowed: "
                            f"{', '.join(DEFAULT_SETTINGS)}")
    for name, value in settings.items():
        default = DEFAULT_SETTINGS[name]
        if name == "targets":
            if not isinstance(value, list) or any(t not in TARGETS for t in value):
                raise QhwInputError(f"{where}.targets: a list of {', '.join(TARGETS)}, got {value!r}")
        elif name == "stall":
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not 0 <= value <= 0.95:
                raise QhwInputError(f"{where}.stall: a probability in [0, 0.95], got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise QhwInputError(f"{where}.{name}: true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < (
                0 if name == "seed" else 1):
            raise QhwInputError(f"{where}.{name}: an integer >= {0 if name == 'seed' else 1}, "
                                f"got {value!r}")


def _section_points(where, section, settings, overrides):
    allowed = {"unit", "from_default", "base", "grid", "points", "settings"}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise QhwInputError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    if "unit" not in section:
        raise QhwInputError(f"{where}: missing key 'unit' (one of {', '.join(registry.names())})")
    unit = registry.get(section["unit"])
    own = dict(section.get("settings", {}))
    _check_settings(f"{where}.settings", own)
    settings = {**settings, **own, **overrides}
    fields = {f.name for f in dataclasses.fields(unit.config)}

    def check_fields(part, names):
        for name in names:
            if name.split(".")[0] not in fields:
                raise QhwInputError(f"{where}.{part}: {unit.name} has no config field "
                                    f"{name.split('.')[0]!r}; fields: {', '.join(sorted(fields))}")

    base = section.get("base", {})
    from_default = section.get("from_default", False)
    if not isinstance(from_default, bool):
        raise QhwInputError(f"{where}.from_default: true or false, got {from_default!r}")
    grid = section.get("grid", {})
    explicit = section.get("points", [])
    if not isinstance(base, dict) or not isinstance(grid, dict) or not isinstance(explicit, list):
        raise QhwInputError(f"{where}: base and grid are tables, points an array of tables")
    check_fields("base", base)
    check_fields("grid", grid)
    if from_default:  # the unit's demo configuration, with base's fields over it
        base = {**json.loads(json.dumps(unit.default_config)), **base}
    axes = {name: _expand_values(f"{where}.grid.{name}", spec) for name, spec in grid.items()}
    configs = []
    if axes or not explicit:
        for values in itertools.product(*axes.values()):
            config = json.loads(json.dumps(base))  # deep copy
            for name, value in zip(axes, values):
                _set_field(config, name, value)
            configs.append(("grid", config))
    for i, extra in enumerate(explicit):
        if not isinstance(extra, dict):
            raise QhwInputError(f"{where}.points[{i}]: expected a table of config fields")
        check_fields(f"points[{i}]", extra)
        config = json.loads(json.dumps(base))
        for name, value in extra.items():
            _set_field(config, name, value)
        configs.append(("points", config))
    return [Point(unit.name, config, settings, origin) for origin, config in configs], list(axes)


@dataclasses.dataclass
class Sweep:
    """A parsed sweep file: its points in order, the grid axes per unit, and the raw text."""
    name: str
    points: list
    axes: dict          # unit name -> grid field names (for plots)
    text: str


def load_sweep(path, *, overrides=None):
    """Parse and check a sweep file; errors name the key and what is allowed (exit status 2)."""
    path = Path(path)
    return parse_sweep(read_input_text("sweep", path), name=path.stem, overrides=overrides)


def parse_sweep(text, name="sweep", *, overrides=None):
    """Parse sweep-file text; ``overrides`` are settings that win over the file's own."""
    overrides = dict(overrides or {})
    _check_settings("overrides", overrides)
    code_version.cache_clear()  # keys of the sources as they are now (a long-lived process)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise QhwInputError(f"sweep: not valid TOML ({e})") from None
    settings = dict(DEFAULT_SETTINGS)
    own = data.pop("settings", {})
    _check_settings("settings", own)
    settings.update(own)
    name = data.pop("name", name)
    if "sweep" in data:
        sections = data.pop("sweep")
        if data:
            raise QhwInputError(f"sweep: with [[sweep]] tables, only 'name' and [settings] may be "
                                f"at the top level, not {sorted(data)[0]!r}")
        if not isinstance(sections, list) or not sections:
            raise QhwInputError("sweep: [[sweep]] must be an array of tables")
    else:
        sections = [data]
    points, axes = [], {}
    for i, section in enumerate(sections):
        where = f"sweep[{i}]" if len(sections) > 1 else "sweep"
        found, section_axes = _section_points(where, section, settings, overrides)
        points += found  # never empty: without grid or points, base is the one point
        unit_axes = axes.setdefault(found[0].unit, [])
        unit_axes += [axis for axis in section_axes if axis not in unit_axes]
    unique = {}
    for point in _with_baselines(points):
        unique.setdefault(point.key, point)  # a design asked for twice runs once
    unique = list(unique.values())
    return Sweep(name=name, points=unique, axes=axes, text=text)


def _with_baselines(points):
    """Each point followed by its baseline design (the registry's ``baseline``), if asked."""
    out = []
    for point in points:
        out.append(point)
        unit = registry.get(point.unit)
        if not point.settings["baselines"] or unit.baseline is None:
            continue
        try:
            cfg = config_from_dict(unit.config, point.config)
        except QhwInputError:
            continue  # the point itself will be recorded as a config failure
        found = unit.baseline(cfg)
        if found is not None:
            name, config = found
            out.append(Point(name, config, point.settings, "baseline"))
    return out


# One point, in a process of its own -------------------------------------------------------------

def _fail(kind, message, record):
    record.update(status="failed", error_kind=kind, error=message)
    return record


def run_point(point):
    """Every stage of one point; returns its record (failures are recorded, not raised)."""
    started = time.monotonic()
    record = _base_record(point)
    s = point.settings
    unit = registry.get(point.unit)
    try:
        cfg = config_from_dict(unit.config, point.config, where=f"{unit.name} config")
    except QhwInputError as e:
        return _fail("config", str(e), record)
    record["config"] = config_to_dict(cfg)
    try:
        _measure(unit, cfg, s, record)
    except QhwInputError as e:
        _fail("config", str(e), record)
    except QhwToolError as e:
        _fail("tool", f"{type(e).__name__}: {e}", record)
    except AssertionError as e:  # the simulation's own checks: protocol, surplus, deadlock
        _fail("mismatch", str(e), record)
    except Exception as e:  # noqa: BLE001 - recorded with its traceback, the sweep goes on
        _fail("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=6)}", record)
    record["seconds"]["total"] = round(time.monotonic() - started, 2)
    return record


@contextlib.contextmanager
def _timed(record, stage, shown=None):
    """Record the seconds a stage took in ``record['seconds'][stage]``, and announce it to the
    progress display (:mod:`qhw.stages`) as ``shown`` (default ``stage``)."""
    stages.stage(shown or stage)
    started = time.monotonic()
    try:
        yield
    finally:
        record["seconds"][stage] = round(time.monotonic() - started, 2)


def random_inputs(unit, cfg, rng, settings):
    """Random inputs of a point: ``frames`` items; sequences of ``steps`` when the unit's cost
    model counts (sequences, steps), as the registry's ``frames`` rule says."""
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, settings["frames"]))
    if isinstance(flow.frames_of(unit, cfg, x), tuple):
        x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, (settings["frames"],
                                                                  settings["steps"])))
    return x


def _measure(unit, cfg, s, record):
    rng = np.random.default_rng(s["seed"])
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = random_inputs(unit, cfg, rng, s)
    frames = flow.frames_of(unit, cfg, x)
    inferences = frames[0] if isinstance(frames, tuple) else frames
    with _timed(record, "generate"):
        gen = flow.generate(unit, cfg, params, frames=frames, inputs=x)
        expected = unit.golden(cfg, params, x)
    model = unit.cost_model(cfg, frames, x)
    record["inferences"] = inferences
    record["cycles_model"] = model.expected
    record["cycles_formula"] = model.formula
    record["latency_model"] = model.latency

    with _timed(record, "cosim"):
        run = flow.rtlsim(unit, cfg, params, x)
        mismatch = flow.first_mismatch(unit, run.outputs, expected, cfg)
        record.update(bit_exact=mismatch is None, cycles_measured=run.cycles,
                      latency_measured=run.latency,
                      cycles_per_inference=run.cycles / inferences)
        if mismatch is None and s["stall"] > 0:
            stages.stage("cosim under stalls")
            stalled = flow.rtlsim(unit, cfg, params, x, stall_in=s["stall"],
                                  stall_out=s["stall"], seed=s["seed"] + 1)
            mismatch = flow.first_mismatch(unit, stalled.outputs, expected, cfg)
            record.update(bit_exact_under_stalls=mismatch is None,
                          cycles_under_stalls=stalled.cycles)
    if mismatch is not None:
        _fail("mismatch", mismatch, record)

    for target in s["targets"]:
        with _timed(record, target, f"synth {target}"):
            result = synth_flow.synthesize_verilog(gen.verilog, gen.top, target, fmax=False)
            if target in ("ecp5", "ice40") and s["fmax"]:
                luts = result["figures"].get("LUT4", 0)
                if luts <= s["fmax_lut_limit"]:
                    stages.stage(f"place and route {target}")
                    result = synth_flow.synthesize_verilog(gen.verilog, gen.top, target, fmax=True)
                    if target == "ice40" and "fmax_mhz" not in result["figures"]:
                        record.setdefault("notes", []).append(
                            f"ice40 Fmax: {result['fmax']['reason']}")
                else:
                    record.setdefault("notes", []).append(
                        f"{target} Fmax skipped: {luts} LUT4 > fmax_lut_limit "
                        f"{s['fmax_lut_limit']}")
        record[target] = result["figures"]
        record.setdefault("synth_tools", {}).update(result["tools"])
        if unit.parts is not None:  # a network: each layer's area too (the report's breakdown)
            with _timed(record, f"{target}_parts", f"synth {target}, each layer alone"):
                for row in synth_flow.part_figures(unit, cfg, params, target):
                    parts = record.setdefault("parts", [])
                    entry = next((p for p in parts if p["name"] == row["name"]), None)
                    if entry is None:
                        entry = {k: v for k, v in row.items() if k != "figures"}
                        parts.append(entry)
                    entry[target] = row["figures"]

    if s["energy"] and record["status"] == "ok":  # a wrong design's energy means nothing
        from ..synth import energy
        with _timed(record, "energy", "energy (operation counts)"):
            record["energy_ops"] = energy.operation_energy(unit, cfg, frames, x)
            cells = (record.get("generic") or {}).get("cells", 0)
            if cells <= s["energy_cell_limit"]:
                stages.stage("energy (toggle simulation of the gate netlist)")
                record["energy_toggle"] = energy.toggle_energy(unit, cfg, params, x)
            else:  # the gate-level model's C++ build grows faster than the netlist
                record.setdefault("notes", []).append(
                    f"toggle energy skipped: {cells} generic cells > energy_cell_limit "
                    f"{s['energy_cell_limit']}; the operation-count estimate stands")


def _point_main(job_path, out_path):
    """Entry of the point's own process: read the point, write its record. A job that names the
    key the client gave the point is refused when this process computes another one: its qhw
    sources or tool versions differ from the client's (another install, or an edit since the
    sweep started), so its result would not be the one the key stands for."""
    _exit_with_parent(Path(job_path).parent)
    fields = json.loads(Path(job_path).read_text())
    key = fields.pop("key", None)
    point = Point(**fields)
    if key is not None and point.key != key:
        record = _fail("environment", "this worker's qhw sources or tool versions differ from "
                                      "the client's (the point's key differs): install the same "
                                      "qhw and tools on every worker (or the sources were "
                                      "edited while the sweep ran)", _base_record(point))
        record["key"] = key
    else:
        record = run_point(point)
    flow.write_json(out_path, record)


def _exit_with_parent(folder):
    """End this point's whole process group (simulator and synthesis children too) when the
    process that started it dies, removing the point's job ``folder`` (its parent's to remove
    otherwise): a Dask worker killed with SIGKILL leaves no point running and no files behind.
    The parent's pid comes with the job (it may have died while this process started)."""
    parent = int(os.environ.get("QHW_POINT_PARENT") or os.getppid())

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        if os.environ.get("QHW_POINT_PARENT"):  # a folder of _run_in_process, not a user's
            shutil.rmtree(folder, ignore_errors=True)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="qhw-parent-watch").start()


# Running a sweep --------------------------------------------------------------------------------

@dataclasses.dataclass
class SweepSummary:
    total: int
    computed: int
    cached: int
    failed: int
    interrupted: bool
    records: list
    #: Why the sweep stopped early without an interrupt (the scheduler went away), else None.
    stopped: str | None = None


def _load_cached(path):
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") == "failed" and record.get("error_kind") not in FINAL_ERRORS:
        return None  # tool errors, timeouts, lost workers: try again
    return record


#: Seconds between a running point's checks for a stop request (Ctrl-C at the client).
_POLL_S = 1.0
#: Seconds between reads of a running point's stage file, when the client shows progress: the
#: display's delay (a stage's own time is measured where it runs, so it is not delayed).
_RELAY_S = 0.25


def point_task(fields, stop_name=None, topic=None):
    """A point's work where Dask runs it (a worker): the point in a process of its own there,
    its record returned to the client. ``fields`` are the point's and the key the client gave it
    (the point's process checks that it computes the same); ``topic``: where to send the point's
    stages (:meth:`.executor.Executor.listen`), None for no progress display."""
    fields = dict(fields)
    key = fields.pop("key")
    return _run_in_process(Point(**fields), stop_name, key=key, topic=topic)


class _StageRelay:
    """On the worker, while a point runs: its process's stage announcements (:mod:`qhw.stages`,
    appended to ``path``) sent to the client listening on ``topic``, as
    ``{"key": KEY, "events": [[kind, text, seconds ago], ...]}``; ``start`` first."""

    def __init__(self, topic, key, path):
        self.topic, self.key, self.path, self.offset = topic, key, path, 0
        executor.report(topic, {"key": key, "events": [["start", "", 0.0]]})

    def pump(self):
        events, self.offset = stages.read_new(self.path, self.offset)
        if events:
            executor.report(self.topic, {"key": self.key, "events": [list(e) for e in events]})


def _run_in_process(point, stop_name=None, *, key=None, topic=None):
    """Run one point in a child process; a crash or timeout becomes a failed record, a stop
    request (the client's Ctrl-C) kills it and returns None. The job and result files live in a
    temporary folder of the machine it runs on: the record travels back as the return value.
    With a ``topic`` the point's stages go to the client's progress display as they change."""
    timeout_s = point.settings["timeout_s"]
    record = None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"qhw-point-{point.key}-") as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "record.json"
        job.write_text(json.dumps(dataclasses.asdict(point) | ({"key": key} if key else {})))
        env = {k: v for k, v in os.environ.items() if k != stages.ENV}
        env["QHW_POINT_PARENT"] = str(os.getpid())
        relay = None
        if topic:
            env[stages.ENV] = str(Path(tmp) / "stages.jsonl")
            relay = _StageRelay(topic, key or point.key, env[stages.ENV])
        step = _RELAY_S if relay else _POLL_S
        with subprocess.Popen([sys.executable, "-m", "qhw.explore.sweep", str(job), str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              start_new_session=True) as proc:
            try:
                asked = time.monotonic()
                while True:
                    left = timeout_s - (time.monotonic() - started)
                    try:
                        log, _ = proc.communicate(timeout=max(0.01, min(left, step)))
                        break
                    except subprocess.TimeoutExpired:
                        if time.monotonic() - started >= timeout_s:
                            _kill(proc)
                            log, _ = proc.communicate()
                            record = _fail("timeout", f"point did not finish within timeout_s "
                                                      f"= {timeout_s} s", _base_record(point))
                            break
                        if relay is not None:
                            relay.pump()
                        if time.monotonic() - asked < _POLL_S:
                            continue
                        asked = time.monotonic()
                        if executor.stop_requested(stop_name):
                            _kill(proc)
                            proc.communicate()
                            return None  # no record: the point runs again next time
            except BaseException:  # the worker is closing: take the point's processes along
                _kill(proc)
                raise
        if relay is not None:
            relay.pump()  # the last stages, sent before the record (the client shows them first)
        if record is None and proc.returncode != 0:
            tail = log.decode(errors="replace")[-3000:]
            record = _fail("error", f"point process exited with status {proc.returncode}: "
                                    f"{tail}", _base_record(point))
        if record is None:
            return json.loads(out.read_text())
    record["seconds"] = {"total": round(time.monotonic() - started, 2)}
    return record


def _base_record(point):
    """A point's record before any stage ran."""
    return {"key": point.key, "unit": point.unit, "config": point.config, "origin": point.origin,
            "settings": point.settings, "status": "ok", "error_kind": None, "error": None,
            "tools": toolchain.versions(), "code": code_version(point.unit), "seconds": {}}


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_sweep(sweep, outdir, *, jobs=None, scheduler=None, progress=True):
    """Run every point not already in ``outdir`` and write the results (CSV and JSON).

    The points run on Dask (:mod:`.executor`): an embedded cluster of ``jobs`` worker processes
    (default: the cores), or the cluster of ``scheduler`` (``tcp://HOST:PORT``; default
    ``$QHW_SCHEDULER``). A bad or silent scheduler is a :class:`QhwInputError` before any file is
    written. Ctrl-C or SIGTERM stops it: running points are killed (they run again next time),
    the results so far are written, and the summary says ``interrupted``; a scheduler that goes
    away stops it the same way, and the summary's ``stopped`` says so.
    """
    address = executor.scheduler_address(scheduler)
    # A polite kill (SIGTERM) stops the sweep as Ctrl-C does.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    try:
        return _run_sweep(sweep, Path(outdir), jobs, address, progress)
    except KeyboardInterrupt:  # before any point started: nothing to keep
        return SweepSummary(total=len(sweep.points), computed=0, cached=0, failed=0,
                            interrupted=True, records=[])
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _worker_lost(point, allowed):
    times = ("too often" if allowed is None else "once" if allowed == 0
             else f"{allowed + 1} times")
    setting = f" (allowed-failures = {allowed})" if allowed is not None else ""
    return _fail("worker-lost", f"the Dask worker running this point died {times}{setting}; "
                                f"the point is tried again on the next run", _base_record(point))


def _show_stages(board, message):
    """A point's stages, as its worker relayed them (:class:`_StageRelay`), onto the board."""
    key = message["key"]
    for kind, text, ago in message["events"]:
        if kind == "start":
            board.start(key, ago)
        else:
            board.event(key, kind, text, ago)


def _run_sweep(sweep, outdir, jobs, address, progress_on):
    points_dir = outdir / "points"
    records = {}
    for point in sweep.points:
        cached = _load_cached(points_dir / f"{point.key}.json")
        if cached is not None:
            records[point.key] = cached
    cached_count = len(records)
    todo = [p for p in sweep.points if p.key not in records]
    failed = sum(r["status"] == "failed" for r in records.values())
    interrupted, stopped = False, None
    with contextlib.ExitStack() as stack:
        # The cluster first (a scheduler that does not answer stops here, before any file is
        # written); an embedded one only when there is work for it.
        ex = (stack.enter_context(executor.Executor(jobs=jobs, scheduler=address))
              if todo or address else None)
        points_dir.mkdir(parents=True, exist_ok=True)
        (outdir / "sweep.toml").write_text(sweep.text)
        write_results(sweep, outdir, records)
        board = progress.StageBoard(
            total=len(sweep.points), done=cached_count, failed=failed, desc=f"sweep {sweep.name}",
            prefix="qhw sweep", unit="point", mode=progress.display_mode(progress_on),
            workers=ex.threads() if ex is not None else 1)
        labels = progress.point_labels(sweep.points, sweep.axes)
        for point in todo:
            board.add(point.key, labels[point.key], kind=point.unit)
        units_todo = {p.unit for p in todo}
        for record in records.values():  # what points of each unit took before: the estimate
            seconds = (record.get("seconds") or {}).get("total")
            if seconds and record["unit"] in units_todo:
                board.expect(record["unit"], seconds)
        try:
            if ex is not None:
                board.write(f"[qhw sweep] {ex.describe()}", file=sys.stderr)
            if address and jobs:
                board.write("[qhw sweep] -j sizes the embedded cluster only: on an existing one, "
                            "its workers' threads decide how many points run at once",
                            file=sys.stderr)
            topic = (ex.listen(functools.partial(_show_stages, board))
                     if todo and board.mode != "off" else None)
            work = [(point, (dataclasses.asdict(point) | {"key": point.key}, ex.stop_name, topic),
                     f"qhw-point-{point.key}") for point in todo]
            for point, record, error in ex.run(point_task, work) if todo else ():
                if error == "worker-lost":
                    record = _worker_lost(point, ex.allowed_failures)
                elif error is not None:  # the task itself failed (it records the point's own)
                    record = _fail("error", f"{type(error).__name__}: {error}",
                                   _base_record(point))
                if record is None:
                    continue  # stopped on request: the point runs again next time
                record["key"] = point.key
                flow.write_json(points_dir / f"{point.key}.json", record)
                records[point.key] = record
                board.end(point.key, ok=record["status"] != "failed")
                board.set_workers(ex.threads())
                if record["status"] == "failed":
                    board.write(f"[qhw sweep] {record['unit']} {json.dumps(record['config'])}: "
                                f"{record['error_kind']}: {_first_line(record['error'], 300)}")
                write_results(sweep, outdir, records)
        except KeyboardInterrupt:
            interrupted = True
            if ex is not None:
                ex.stop()
        except executor.SchedulerLost as e:
            stopped = f"the Dask scheduler went away ({_first_line(str(e), 200)})"
        finally:
            board.close()
            write_results(sweep, outdir, records)
    ordered = [records[p.key] for p in sweep.points if p.key in records]
    return SweepSummary(total=len(sweep.points), computed=len(records) - cached_count,
                        cached=cached_count, failed=sum(r["status"] == "failed" for r in ordered),
                        interrupted=interrupted, records=ordered, stopped=stopped)


# Results ----------------------------------------------------------------------------------------

def _first_line(text, limit):
    return (text or "").strip().split("\n")[0][:limit] or None


def flat_row(record):
    """One CSV row: identity, status, config fields (``config.<name>``) and figures."""
    row = {"unit": record["unit"], "key": record["key"], "origin": record.get("origin"),
           "status": record["status"], "error_kind": record.get("error_kind"),
           "error": _first_line(record.get("error"), 500)}
    for name, value in record["config"].items():
        row[f"config.{name}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    for name in ("bit_exact", "bit_exact_under_stalls", "inferences", "cycles_measured",
                 "cycles_model", "cycles_formula", "cycles_per_inference", "latency_measured",
                 "latency_model", "cycles_under_stalls"):
        row[name] = record.get(name)
    for target in TARGETS:
        for name, value in (record.get(target) or {}).items():
            row[f"{target}.{name}"] = value
    for kind in ("energy_toggle", "energy_ops"):
        if record.get(kind):
            row[f"{kind}.pj_per_inference"] = record[kind].get("pj_per_inference")
    row["seconds"] = (record.get("seconds") or {}).get("total")
    return row


def write_results(sweep, outdir, records):
    """Rewrite results.json and results.csv from the records known so far (atomically)."""
    ordered = [records[p.key] for p in sweep.points if p.key in records]
    pending = [dataclasses.asdict(p) | {"key": p.key} for p in sweep.points if p.key not in records]
    flow.write_json(Path(outdir) / "results.json", {
        "sweep": sweep.name, "axes": sweep.axes, "tools": toolchain.versions(),
        "code": {unit: code_version(unit) for unit in sorted({p.unit for p in sweep.points})},
        "points": ordered, "pending": pending})
    rows = [flat_row(r) for r in ordered]
    seen = list(dict.fromkeys(k for row in rows for k in row))
    identity = ["unit", "key", "origin", "status", "error_kind", "error"]
    columns = identity + [k for k in seen if k.startswith("config.")] + [
        k for k in seen if k not in identity and not k.startswith("config.")]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with flow.atomic_file(Path(outdir) / "results.csv") as tmp:
        tmp.write_text(buffer.getvalue())


def load_results(path):
    """The records of a results folder (or its results.json)."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise QhwInputError(f"results: no results.json in {path}")
    try:
        return json.loads(file.read_text())
    except ValueError as e:
        raise QhwInputError(f"results: {file} is not valid JSON ({e})") from None


if __name__ == "__main__":
    _point_main(*sys.argv[1:])
