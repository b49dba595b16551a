"""Exhaustive simulation of a one-in, one-out stream unit with a compiled Verilator C++ harness.

For units whose whole input word has at most 32 bits (``expmul`` with fp16 / bf16 activations
and E <= 8, the ``mulbase`` int8 multiplier), every input word 0 .. 2^P - 1 is pushed through the
generated Verilog, in order, under pseudo-random input idles and output back-pressure (xorshift,
1 cycle in 8 each), and the outputs are written to a binary file that the caller compares with
the golden model. Cocotb drives about 10^4 transfers per second, the harness about 10^7, which
makes 2^22..2^25 vectors a matter of seconds (plus a ~20 s C++ build, cached by the Verilog text
under ``$QHW_CACHE_DIR/exhaustive``, default ``~/.cache/qhw/exhaustive``).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from qhw.errors import QhwToolError
from qhw.toolchain import tool_env, versions

__all__ = ["run_exhaustive"]

_HARNESS = r"""
#include "V{top}.h"
#include "verilated.h"
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <vector>

static uint64_t s = 88172645463325252ull;
static inline uint64_t rnd() {{ s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }}

int main(int argc, char** argv) {{
    if (argc < 4) {{ fprintf(stderr, "usage: harness BITS STALL OUTFILE\n"); return 2; }}
    const uint64_t total = 1ull << atoi(argv[1]);
    const bool stall = atoi(argv[2]) != 0;
    VerilatedContext ctx;
    V{top} top{{&ctx}};
    std::vector<uint32_t> out(total);
    auto tick = [&]() {{ top.clk = 0; top.eval(); top.clk = 1; top.eval(); }};
    top.rst = 1; top.i___05Fvalid = 0; top.o___05Fready = 0;
    for (int k = 0; k < 4; ++k) tick();
    top.rst = 0;
    uint64_t next = 0, got = 0, cycles = 0, limit = 4 * total + 1000;
    bool holding = false;
    while (got < total && cycles < limit) {{
        if (!holding) {{
            if (next < total && (!stall || (rnd() & 7) != 0)) {{
                top.i___05Fvalid = 1; top.i___05Fpayload = (uint32_t)next; holding = true;
            }} else {{
                top.i___05Fvalid = 0; top.i___05Fpayload = (uint32_t)rnd();
            }}
        }}
        top.o___05Fready = (!stall || (rnd() & 7) != 0) ? 1 : 0;
        top.clk = 0; top.eval();
        const bool in_xfer = top.i___05Fvalid && top.i___05Fready;
        const bool out_xfer = top.o___05Fvalid && top.o___05Fready;
        const uint32_t value = (uint32_t)top.o___05Fpayload;
        top.clk = 1; top.eval();
        ++cycles;
        if (in_xfer) {{ ++next; holding = false; }}
        if (out_xfer) out[got++] = value;
    }}
    FILE* f = fopen(argv[3], "wb");
    if (!f) return 3;
    fwrite(out.data(), sizeof(uint32_t), got, f);
    fclose(f);
    printf("%llu %llu\n", (unsigned long long)got, (unsigned long long)cycles);
    return got == total ? 0 : 1;
}}
"""

_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
         "-Wno-UNOPTFLAT", "-Wno-DECLFILENAME", "-Wno-CASEINCOMPLETE", "-CFLAGS", "-O1"]


def _cache_root():
    env = os.environ.get("QHW_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "qhw") / "exhaustive"


def build_harness(verilog, top):
    """Build (or reuse) the harness executable for ``verilog``; returns its path."""
    key = hashlib.sha256(json.dumps([verilog, top, _HARNESS, _ARGS, versions()]).encode()
                         ).hexdigest()[:24]
    final = _cache_root() / key
    exe = final / "harness"
    if exe.exists():
        return exe
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=final.parent))
    try:
        (tmp / f"{top}.v").write_text(verilog)
        (tmp / "harness.cpp").write_text(_HARNESS.format(top=top))
        env = tool_env()
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", *_ARGS, "--top-module", top,
               f"{top}.v", "harness.cpp", "-o", "harness", "-Mdir", "obj"]
        r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise QhwToolError(f"Verilator harness build failed:\n{(r.stdout + r.stderr)[-3000:]}")
        shutil.copy2(tmp / "obj" / "harness", tmp / "harness")
        shutil.rmtree(tmp / "obj", ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:  # built concurrently by another process
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return exe


def run_exhaustive(verilog, top, input_bits, *, stall=True):
    """Outputs (uint32 array of length 2^input_bits) for every input word in increasing order."""
    if not 1 <= input_bits <= 32:
        raise ValueError(f"input_bits must be in 1..32, got {input_bits}")
    exe = build_harness(verilog, top)
    with tempfile.TemporaryDirectory(prefix="qhw-exh-") as d:
        out = Path(d) / "out.bin"
        r = subprocess.run([str(exe), str(input_bits), str(int(stall)), str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise QhwToolError(f"exhaustive harness failed ({r.returncode}): {r.stdout}{r.stderr}")
        return np.fromfile(out, dtype=np.uint32)
