"""The steps of the flow, in the order data moves: config -> generator -> Verilog -> cosim/synth.

Everything here goes through the unit registry; nothing names a particular unit.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import toolchain
from .config import config_to_dict, load_config
from .errors import QhwInputError
from .hdl.common import LINT_WAIVERS, port_list, to_verilog


# Reading user input -------------------------------------------------------------------------------

def read_config(unit, path):
    return load_config(unit.config, path)


def read_params(unit, cfg, path=None, seed=0):
    """Weights from an .npz file, or random ones from ``seed`` when no file is given."""
    if path is None:
        return unit.check_params(cfg, unit.random_params(cfg, np.random.default_rng(seed)))
    path = check_input_file("--weights", path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            params = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise QhwInputError(f"--weights: {path} is not a readable .npz file ({e})") from None
    return unit.check_params(cfg, params)


def read_inputs(unit, cfg, path):
    """Inputs from a .npy file (or an .npz of named arrays), validated and batched."""
    path = check_input_file("--inputs", path)
    try:
        x = np.load(path, allow_pickle=False)
        if isinstance(x, np.lib.npyio.NpzFile):  # several input arrays (activations, gates)
            with x:
                x = {name: x[name] for name in x.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise QhwInputError(f"--inputs: {path} is not a readable .npy/.npz file ({e})") from None
    return unit.check_inputs(cfg, x)


def check_input_file(field, path):
    """``path`` as a Path if it is a non-empty readable file; else one line naming ``field``."""
    path = Path(path)
    if path.is_dir():
        raise QhwInputError(f"{field}: {path} is a directory, not a file")
    if not path.exists():
        raise QhwInputError(f"{field}: file not found: {path}")
    if not path.is_file():
        raise QhwInputError(f"{field}: {path} is not a regular file")
    if path.stat().st_size == 0:
        raise QhwInputError(f"{field}: {path} is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise QhwInputError(f"{field}: cannot read {path} (permission denied)")
    return path


def check_output(field, path, *, folder):
    """Fail early, before any work, if ``path`` cannot become the output: an existing folder
    where a file is wanted (or a file where a folder is), a path under a regular file, or a
    location that cannot be written. Missing parent folders are fine (they are created)."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise QhwInputError(f"{field}: {path} exists and is not a folder")
    if not folder and path.is_dir():
        raise QhwInputError(f"{field}: {path} is a folder; give a file name")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise QhwInputError(f"{field}: {path} is under {parent}, which is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise QhwInputError(f"{field}: cannot write in {parent} (permission denied)")
    return path


def _umask_mode():
    """The permissions a new file gets from the user's umask (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# Writing outputs without leaving partial files ----------------------------------------------------

@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path; it becomes ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder; its files move into ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        path.mkdir(exist_ok=True)
        for item in tmp.iterdir():
            target = path / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # an earlier run's output of the same name
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path, obj):
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


# Generation ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Generated:
    """A generated unit: its Verilog, module name and manifest."""
    verilog: str
    top: str
    manifest: dict


_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_module_name(name):
    """A top-module name that every Verilog tool takes: a plain identifier, at most 63 chars."""
    if not isinstance(name, str) or not _MODULE_NAME.match(name):
        raise QhwInputError(f"--name: must be a Verilog identifier (a letter or _, then "
                            f"letters, digits or _, at most 63 characters), got {name!r}")
    return name


def generate(unit, cfg, params, frames=1, inputs=None, name=None, axis=False):
    """Build the unit and describe it: Verilog text and the manifest (nothing is written).

    ``inputs`` (batched), when given, makes the manifest's cycle estimate exact for units whose
    cycles depend on the data. ``name``: the top module's name (default the unit's); every
    submodule's name starts with it (``<name>.window``, ...), so cores of different names
    coexist in one design. ``axis``: the core behind AXI4-Stream ports
    (:class:`qhw.hdl.axis.AxisWrapper`: ``aclk``, ``aresetn``, ``s_axis_<X>_t*``,
    ``m_axis_<Y>_t*``); the manifest's ``axis`` entry documents the byte layout.
    """
    component = unit.generator(cfg, params)
    top = unit.name if name is None else check_module_name(name)
    core_ports = port_list(component)
    if axis:
        from .hdl.axis import AxisWrapper
        frame_words = unit.output_words(cfg, 1)
        component = AxisWrapper(component, frame_words)
    verilog = to_verilog(component, top)
    estimate = unit.cost_model(cfg, frames, inputs)
    manifest = {
        "unit": unit.name,
        "top": top,
        "summary": unit.summary,
        "config": config_to_dict(cfg),
        **unit.describe(cfg),
        "ports": core_ports,
        "clock": {"name": "clk", "edge": "rising"},
        "reset": {"name": "rst", "kind": "synchronous, active high"},
        "latency": estimate.latency,
        "cycles": {"frames": frames, "formula": estimate.formula,
                   "expected": estimate.expected, "notes": estimate.notes},
        "tools": toolchain.versions(),
    }
    if axis:
        manifest.update(_axis_manifest(component))
    return Generated(verilog=verilog, top=top, manifest=manifest)


def _axis_manifest(wrapper):
    """The manifest entries of an AXI4-Stream-wrapped core: its ports, clock, reset and the
    byte layout of every stream."""
    from amaranth.hdl import Shape
    from amaranth.lib import wiring
    from .hdl.axis import axis_port_name, padded_bits
    ports = [{"name": name, "direction": "in" if m.flow == wiring.In else "out",
              "width": Shape.cast(m.shape).width}
             for name, m in wrapper.signature.members.items()]
    streams = {}
    for name, (direction, bits) in wrapper.streams.items():
        entry = {"tdata": axis_port_name(name, direction, "tdata"),
                 "tdata_bits": padded_bits(bits), "payload_bits": bits,
                 "layout": f"the core's payload at tdata[{bits - 1}:0] (byte 0 = tdata[7:0], "
                           f"little-endian); " + ("bits above it ignored" if direction == "in"
                                                  else "bits above it zero")}
        entry["tlast"] = ("ignored (the core counts its own frames)" if direction == "in" else
                          f"high on word {wrapper.frame_words[name]} of {wrapper.frame_words[name]}"
                          f" of each frame")
        streams[name] = entry
    return {"ports": ports, "clock": {"name": "aclk", "edge": "rising"},
            "reset": {"name": "aresetn", "kind": "synchronous, active low"},
            "axis": {"standard": "AMBA AXI4-Stream (Arm IHI 0051): tvalid, tready, tdata, "
                                 "tlast", "streams": streams}}


def verilog_header(manifest):
    """The comment block at the top of a written Verilog file: the unit and its config, the
    ports and their protocol, latency and expected cycles, the tool versions."""
    m = manifest
    lines = [f"Generated by qhw {m['tools'].get('qhw')}: unit {m['unit']} ({m['summary']}), "
             f"top module {m['top']}.",
             "Config: " + json.dumps(m["config"], separators=(",", ":")),
             f"Clock {m['clock']['name']} ({m['clock']['edge']} edge); reset "
             f"{m['reset']['name']} ({m['reset']['kind']}).",
             "Streams (amaranth.lib.stream): <s>__valid, <s>__ready, <s>__payload; a transfer "
             "is a cycle with valid and ready high; valid never waits for ready and the "
             "payload holds until taken." if "axis" not in m else
             "AXI4-Stream ports s_axis_<s>_t{data,valid,ready,last} (inputs) and "
             "m_axis_<s>_t{data,valid,ready,last} (outputs); valid never waits for ready and "
             "tdata holds until taken."]
    for name, s in m.get("streams", {}).items():
        lines.append(f"  {name} ({s['direction']}, {s['payload_bits']} bits): {s['layout']}")
        if "axis" in m:
            a = m["axis"]["streams"][name]
            lines.append(f"    {a['tdata']} [{a['tdata_bits']}]: {a['layout']}; tlast "
                         f"{a['tlast']}")
    lines.append("Ports: " + ", ".join(f"{p['name']} {p['direction']} [{p['width']}]"
                                       for p in m["ports"]))
    c = m["cycles"]
    lines.append(f"Latency {m['latency']} cycles; {c['expected']} cycles expected for "
                 f"{c['frames']} frame(s) with no stalls (formula {c['formula']}).")
    lines.append("Tools: " + ", ".join(f"{k} {v}" for k, v in m["tools"].items()
                                       if k != "qhw" and v))
    out = []
    for line in lines:
        out.append("// " + line.replace("\n", " "))
    return "\n".join(out) + "\n"


def fusesoc_core(manifest, verilog_file):
    """A FuseSoC CAPI2 core file for a written core: its Verilog file, its top module, a
    ``default`` target (for a user's own synthesis or simulation flow) and a ``lint`` target
    running Verilator's ``--lint-only -Wall`` with the shipped waivers (``lint_waivers.vlt``
    beside it, docs/lint.md). The VLNV is ``qhw:<unit>:<top>:<qhw version>``."""
    top, unit = manifest["top"], manifest["unit"]
    version = manifest["tools"].get("qhw") or "0"
    # YAML scalars are quoted with JSON's escaping, which YAML accepts in double-quoted strings.
    q = json.dumps
    vlnv = f"qhw:{unit}:{top}:{version}"
    description = f"{manifest['summary']} (generated by qhw {version})"
    return "\n".join([
        "CAPI=2:",
        f"name: {q(vlnv)}",
        f"description: {q(description)}",
        "",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {q(verilog_file)}",
        "    file_type: verilogSource",
        "  lint_waivers:",
        "    files:",
        f"      - {q(LINT_WAIVERS.name)}",
        "    file_type: vlt",
        "",
        "targets:",
        "  default: &default",
        "    filesets: [rtl]",
        f"    toplevel: {q(top)}",
        "  lint:",
        "    <<: *default",
        "    filesets: [lint_waivers, rtl]",
        "    description: Verilator lint (--lint-only -Wall, with qhw's waivers)",
        "    default_tool: verilator",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        "        verilator_options: [-Wall]",
        ""])


def default_module_name(unit, cfg, params, axis=False):
    """The top-module name of a written core: the unit's name and 8 hex digits of a hash of
    its config, weights and wrapper, so that two different cores never share module names
    (``<name>``, ``<name>.window``, ...) when dropped into one design. With run-time weights
    (``weights = 'port'``) the Verilog does not depend on the weights, and neither does the
    name."""
    h = hashlib.sha256(json.dumps([unit.name, config_to_dict(cfg), bool(axis)],
                                  default=str).encode())
    for key in sorted(params) if getattr(cfg, "weights", "baked") != "port" else ():
        a = np.ascontiguousarray(np.asarray(params[key]))
        h.update(key.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return f"{unit.name}_{h.hexdigest()[:8]}"


def write_generated(unit, cfg, params, outdir, name=None, axis=False):
    """Write Verilog (headed by :func:`verilog_header`), the FuseSoC core file, the lint
    waivers, the weight file, the config and manifest.json into ``outdir`` (and, with run-time
    weights, ``load_words.hex``: the words of the weight-load stream); the top module is
    ``name``, by default :func:`default_module_name` (unique per config and weights)."""
    if name is None:
        name = default_module_name(unit, cfg, params, axis)
    gen = generate(unit, cfg, params, name=name, axis=axis)
    with atomic_dir(outdir) as tmp:
        (tmp / f"{gen.top}.v").write_text(verilog_header(gen.manifest) + gen.verilog)
        (tmp / f"{gen.top}.core").write_text(fusesoc_core(gen.manifest, f"{gen.top}.v"))
        shutil.copyfile(LINT_WAIVERS, tmp / LINT_WAIVERS.name)
        np.savez(tmp / "weights.npz", **params)
        (tmp / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")
        gen.manifest["files"] = {"verilog": f"{gen.top}.v", "fusesoc_core": f"{gen.top}.core",
                                 "lint_waivers": LINT_WAIVERS.name, "weights": "weights.npz",
                                 "config": "config.json"}
        if getattr(cfg, "weights", "baked") == "port":
            # The words a driver sends on the weight-load stream wl, in order: one hexadecimal
            # word per line ($readmemh's format), as wide as wl's payload.
            bits = gen.manifest["streams"]["wl"]["payload_bits"]
            digits = max(1, -(-bits // 4))
            (tmp / "load_words.hex").write_text("".join(
                f"{w:0{digits}x}\n" for w in unit.load_words(cfg, params)))
            gen.manifest["files"]["load_words"] = "load_words.hex"
        (tmp / "manifest.json").write_text(json.dumps(gen.manifest, indent=2) + "\n")
    return gen


# Simulation ---------------------------------------------------------------------------------------

def first_mismatch(unit, got, expected, cfg=None):
    """None if equal, else a one-line message naming the position, the expected and the
    obtained value.

    ``got`` is an output array, or an :class:`RtlRun`: then the message also gives the output
    transfer that carried the first differing value and its cycle, the seed of the run's
    stalls, and (under pytest) the command that reruns just this test."""
    run = got if isinstance(got, RtlRun) else None
    if run is not None:
        got, cfg = run.outputs, run.cfg if cfg is None else cfg
    if got.shape != expected.shape:
        return f"output shape {got.shape} differs from the reference's {expected.shape}"
    diff = np.argwhere(~_same(got, expected))
    if diff.size == 0:
        return None
    pos = tuple(int(i) for i in diff[0])
    axes = unit.axes(cfg) if cfg is not None or not callable(unit.output_axes) else ()
    where = ", ".join(f"{name} {i}" for name, i in zip(axes, pos)) or f"index {pos}"
    message = (f"mismatch at {where}: expected {expected[pos]}, got {got[pos]} "
               f"({len(diff)} of {expected.size} outputs differ)")
    if run is not None:
        message += "; " + run.describe(pos)
    return message


def _same(a, b):
    """Element-wise equality that counts NaN as equal to NaN (float outputs)."""
    a, b = np.asarray(a), np.asarray(b)
    same = a == b
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    return same


def rerun_command():
    """The command that reruns the current pytest test alone ('' outside pytest)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    return f".venv/bin/python -m pytest '{test}'" if test else ""


@dataclasses.dataclass
class RtlRun:
    """Outputs of an RTL simulation and what it measured.

    ``steady_cycles``: cycles between the last output words of the last two frames (FINN's
    stable throughput, in cycles per frame); None for fewer than two frames, or when frames are
    not a plain count (sequences of steps)."""
    outputs: np.ndarray
    cycles: int
    latency: int
    sim: object
    steady_cycles: int = None
    #: What the run was, for :meth:`describe`: the config, the stall probabilities and seed,
    #: the unpacking of output words into ``outputs``, each output stream's payload width.
    cfg: object = None
    stalls: tuple = (0.0, 0.0)
    seed: int = 0
    unpack: object = None
    payload_bits: dict = dataclasses.field(default_factory=dict)

    def transfer_of(self, pos):
        """``(stream, index, cycle)`` of the output transfer whose word holds output element
        ``pos``, or None. Found without knowing the unit's packing: inverting every payload
        bit of a range of words changes exactly the elements those words hold, so a bisection
        over the words with :attr:`unpack` finds the one word."""
        if self.unpack is None:
            return None
        base = self.outputs[pos]
        for stream, words in self.sim.outputs.items():
            if stream not in self.payload_bits:
                continue
            mask = (1 << self.payload_bits[stream]) - 1

            def changes(lo, hi):
                flipped = dict(self.sim.outputs)
                flipped[stream] = [w ^ mask if lo <= i < hi else w for i, w in enumerate(words)]
                try:
                    return not _same(self.unpack(flipped)[pos], base)
                except Exception:  # an unpacking that refuses inverted words: not this stream
                    return False
            if not words or not changes(0, len(words)):
                continue
            lo, hi = 0, len(words)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if changes(lo, mid) else (mid, hi)
            return stream, lo, self.sim.out_times[stream][lo]
        return None

    def describe(self, pos):
        """Where output element ``pos`` left the hardware and how to rerun: one line."""
        parts = []
        found = self.transfer_of(pos)
        if found is not None:
            stream, index, cycle = found
            total = len(self.sim.outputs[stream])
            parts.append(f"output transfer {index} of {total} on stream {stream}, at cycle "
                         f"{cycle} after reset")
        stall_in, stall_out = self.stalls
        parts.append(f"seed {self.seed}, stalls in/out {stall_in}/{stall_out}")
        rerun = rerun_command()
        if rerun:
            parts.append(f"rerun: {rerun} (add --qhw-waves DIR for its waveform)")
        return "; ".join(parts)


def frames_of(unit, cfg, x):
    """The ``frames`` of the cost model for batched inputs ``x``: the unit's rule, else N."""
    return unit.frames(cfg, x) if unit.frames is not None else x.shape[0]


def rtlsim(unit, cfg, params, x, *, stall_in=0.0, stall_out=0.0, seed=0, waves=None,
           fast=False):
    """Run the unit's RTL in Verilator on inputs ``x`` (batched) and return its outputs.

    Cycles are counted from the first input transfer to the last output transfer; latency from
    the input transfer that completes the first unit of work to the first output transfer (as
    the cost model defines them). With run-time weights (``weights = 'port'``) the weight-load
    stream ``wl`` is not an input of the cost model: cycles count from the first transfer of
    the other inputs (a network takes its first pixel only after the whole load).

    ``fast=True`` runs the stall-free job in a C++ harness (:mod:`qhw.cosim.fastsim`, same
    timing, about 50x faster than the cocotb testbench) instead of cocotb; it takes no stalls,
    no waveform and no probes.

    With the environment variable ``QHW_KEEP_WAVES=DIR`` (pytest: ``--qhw-waves DIR``), every
    cocotb run records an FST waveform; it is kept in DIR only when the run fails (outputs not
    the golden model's, a protocol error, a timeout), and the failure message (and stderr)
    names the file, the seed and the command that reruns just that test.
    """
    from .cosim import runner

    keep = os.environ.get("QHW_KEEP_WAVES")
    if keep and not fast and waves is None:
        digest = hashlib.sha256(json.dumps(
            [unit.name, config_to_dict(cfg), stall_in, stall_out, seed,
             os.environ.get("PYTEST_CURRENT_TEST", "")], default=str).encode()).hexdigest()[:10]
        waves = Path(keep) / f"{unit.name}-{digest}.fst"
        waves.parent.mkdir(parents=True, exist_ok=True)
        try:
            run = rtlsim(unit, cfg, params, x, stall_in=stall_in, stall_out=stall_out,
                         seed=seed, waves=waves)
            failed = first_mismatch(unit, run, unit.golden(cfg, params, x), cfg)
        except AssertionError as e:
            raise AssertionError(f"{e}; {_kept_waves(waves, seed)}") from None
        if failed is None:
            waves.unlink(missing_ok=True)
        else:
            import sys
            print(f"qhw: {failed}; {_kept_waves(waves, seed)}", file=sys.stderr)
        return run

    if fast and (stall_in or stall_out or waves is not None):
        raise QhwInputError("fast: the fast simulation runs without stalls and waveforms "
                            "(stall_in = stall_out = 0, no waves)")
    frames = frames_of(unit, cfg, x)
    gen = generate(unit, cfg, params, frames=frames, inputs=x)
    inputs, words = _stream_inputs(unit, cfg, params, x), unit.output_words(cfg, frames)
    # A deadlock guard that also covers units with many cycles per word (a folded GRU step).
    timeout = runner.default_timeout(inputs, words, stall_in, stall_out) + int(
        3 * gen.manifest["cycles"]["expected"] / max(1e-3, 1.0 - max(stall_in, stall_out)))
    if fast:
        from .cosim import fastsim
        sim = fastsim.simulate(gen.verilog, gen.top, gen.manifest["ports"], inputs, words,
                               timeout_cycles=timeout)
    else:
        sim = runner.simulate(gen.verilog, gen.top, unit.testbench, inputs, words,
                              stall_in=stall_in, stall_out=stall_out, seed=seed, waves=waves,
                              timeout_cycles=timeout)
    if sim.protocol_errors:
        raise AssertionError(f"stream protocol violated: {sim.protocol_errors[0]}")
    if any(sim.surplus.values()):
        raise AssertionError(f"surplus output words: {sim.surplus}")
    if sim.timed_out:
        raise AssertionError("simulation timed out before all outputs arrived "
                             f"({ {k: len(v) for k, v in sim.outputs.items()} } words)")
    outputs = unit.unpack_outputs(cfg, sim.outputs, frames)
    latency = first_output_latency(unit, cfg, sim, frames, x)
    steady = None
    out_times = next(iter(sim.out_times.values()))
    if isinstance(frames, (int, np.integer)) and frames >= 2 and len(out_times) % frames == 0:
        per_frame = len(out_times) // frames
        steady = out_times[-1] - out_times[-1 - per_frame]
    cycles = sim.cycles
    if "wl" in inputs:  # the load is not part of the cost model's cycles
        starts = [t[0] for name, t in sim.in_times.items() if t and name != "wl"]
        if starts and sim.last_out_cycle is not None:
            cycles = sim.last_out_cycle - min(starts) + 1
    return RtlRun(outputs=outputs, cycles=cycles, latency=latency, sim=sim,
                  steady_cycles=steady, cfg=cfg, stalls=(stall_in, stall_out), seed=seed,
                  unpack=lambda words: unit.unpack_outputs(cfg, words, frames),
                  payload_bits={name: s["payload_bits"]
                                for name, s in gen.manifest.get("streams", {}).items()
                                if "payload_bits" in s})


def _stream_inputs(unit, cfg, params, x):
    """The words of every input stream: the unit's inputs and, with run-time weights
    (``weights = 'port'``), the weight-load words on ``wl``."""
    inputs = unit.pack_inputs(cfg, x)
    if getattr(cfg, "weights", "baked") == "port":
        inputs = {**inputs, "wl": unit.load_words(cfg, params)}
    return inputs


def rtlsim_axis(unit, cfg, params, x, *, stall_in=0.0, stall_out=0.0, seed=0):
    """The core behind its AXI4-Stream wrapper, driven by cocotbext-axi's AxiStreamSource and
    AxiStreamSink with pause generators (:mod:`qhw.cosim.tb_axis`): its outputs (unpacked as
    the unit's), after checking that ``tlast`` delimits every output frame."""
    from .cosim import runner
    frames = frames_of(unit, cfg, x)
    gen = generate(unit, cfg, params, frames=frames, inputs=x, axis=True)
    inputs, words = _stream_inputs(unit, cfg, params, x), unit.output_words(cfg, frames)
    timeout = runner.default_timeout(inputs, words, stall_in, stall_out) + int(
        3 * gen.manifest["cycles"]["expected"] / max(1e-3, 1.0 - max(stall_in, stall_out)))
    sim = runner.simulate(gen.verilog, gen.top, "qhw.cosim.tb_axis", inputs, words,
                          stall_in=stall_in, stall_out=stall_out, seed=seed,
                          timeout_cycles=timeout,
                          job_extra={"frame_words": unit.output_words(cfg, 1)})
    if sim.protocol_errors:
        raise AssertionError(f"AXI4-Stream framing: {sim.protocol_errors[0]}")
    if sim.timed_out:
        raise AssertionError("AXI4-Stream simulation timed out before all outputs arrived")
    if any(sim.surplus.values()):
        raise AssertionError(f"surplus output words: {sim.surplus}")
    return unit.unpack_outputs(cfg, sim.outputs, frames)


def _kept_waves(path, seed):
    rerun = rerun_command()
    rerun = f"; rerun: {rerun} --qhw-waves {path.parent}" if rerun else ""
    return f"waves of this run kept in {path} (seed {seed}){rerun}"


def check_rtl(unit, cfg, params, x, *, stall_in=0.0, stall_out=0.0, seed=0, waves=None,
              fast=False, expected=None):
    """Run the RTL and compare it with the golden model: ``(run, None)`` when bit-exact, else
    ``(run, message)``; for units that can locate a mismatch (a network names its first
    differing layer) the message says where it starts. ``expected``: the golden model's
    outputs for ``x`` when the caller has them already (else computed here)."""
    run = rtlsim(unit, cfg, params, x, stall_in=stall_in, stall_out=stall_out, seed=seed,
                 waves=waves, fast=fast)
    if expected is None:
        expected = unit.golden(cfg, params, x)
    mismatch = first_mismatch(unit, run, expected, cfg)
    if mismatch is not None and unit.locate is not None:
        where = unit.locate(cfg, params, x, stall_in=stall_in, stall_out=stall_out, seed=seed)
        if where is not None:
            mismatch = f"{mismatch}; {where}"
    return run, mismatch


def first_output_latency(unit, cfg, sim, frames=1, inputs=None):
    """Cycles from the input transfer that completes the first output's inputs to that output."""
    first_input = unit.cost_model(cfg, frames, inputs).first_input
    in_times = next(iter(sim.in_times.values()))
    out_times = next(iter(sim.out_times.values()))
    return out_times[0] - in_times[first_input]
