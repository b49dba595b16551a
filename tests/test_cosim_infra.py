"""The stream cosimulation layer (qhw.cosim) on small designs defined here.

Builds go to the normal model cache (``$QHW_CACHE_DIR`` or ``~/.cache/qhw/verilator``), so a
second run of this file only simulates; the cache test uses its own empty cache folder.
"""

import random
import time

import pytest
from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from qhw.cosim import runner
from qhw.cosim.runner import CosimError, build, build_info, simulate
from qhw.hdl.common import to_verilog

TB = "qhw.cosim.tb_binconv"  # any module that just awaits run_stream_job(dut) will do


class AddPipe(wiring.Component):
    """Adds 3 to every byte lane of the word (mod 256), through two pipeline registers.

    Each stage loads when it is empty or the stage after it is ready
    (``ready_k = ~valid_k | ready_k+1``): full throughput, valid comes from a register (never
    from ready), and a stalled word stays in place.
    """

    def __init__(self, width):
        self.width = width
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        w = self.width
        d1, d2 = Signal(w), Signal(w)
        v1, v2 = Signal(), Signal()
        r2 = ~v2 | self.o.ready
        r1 = ~v1 | r2
        lanes = [(self.i.payload[k:min(k + 8, w)] + 3)[:min(8, w - k)] for k in range(0, w, 8)]
        m.d.comb += self.i.ready.eq(r1)
        with m.If(r1):
            m.d.sync += [v1.eq(self.i.valid), d1.eq(Cat(*lanes))]
        with m.If(r2):
            m.d.sync += [v2.eq(v1), d2.eq(d1)]
        m.d.comb += [self.o.valid.eq(v2), self.o.payload.eq(d2)]
        return m


class IgnoresReady(wiring.Component):
    """Broken on purpose: one register stage that moves on every cycle, whatever o.ready says."""

    def __init__(self, width):
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        v, d = Signal(), Signal.like(self.i.payload)
        m.d.comb += self.i.ready.eq(1)
        m.d.sync += [v.eq(self.i.valid), d.eq(self.i.payload + 3)]
        m.d.comb += [self.o.valid.eq(v), self.o.payload.eq(d)]
        return m


def add3(word, width):
    return sum((((word >> k) + 3) & 0xFF) << k for k in range(0, width, 8)) & ((1 << width) - 1)


def words(n, width, seed=0):
    rng = random.Random(seed)
    return [rng.getrandbits(width) for _ in range(n)]


@pytest.fixture(scope="module")
def add8():
    return to_verilog(AddPipe(8), "addpipe8")


@pytest.fixture(scope="module")
def add130():
    return to_verilog(AddPipe(130), "addpipe130")


@pytest.mark.parametrize("width", [8, 130])
def test_no_stall_exact_cycles(width, add8, add130):
    verilog = {8: add8, 130: add130}[width]
    n = 40
    data = words(n, width)
    r = simulate(verilog, f"addpipe{width}", TB, {"i": data}, {"o": n})
    assert r.outputs["o"] == [add3(x, width) for x in data]
    assert r.ok
    # Input ready is high from cycle 0 (both stages empty) and stays high (nothing stalls), so
    # word k is taken at cycle k. It is in stage 1 after edge k, in stage 2 (o.valid) after edge
    # k+1, and leaves at edge k+2. Hence first output at 2, last at n+1, cycles = n+2.
    assert r.in_times["i"] == list(range(n))
    assert r.out_times["o"] == list(range(2, n + 2))
    assert (r.first_out_cycle, r.latency, r.cycles) == (2, 2, n + 2)


@pytest.mark.parametrize("width,seeds", [(8, [1, 2, 3]), (130, [4, 5])])
def test_random_stalls(width, seeds, add8, add130):
    verilog = {8: add8, 130: add130}[width]
    n = 200
    for seed in seeds:
        data = words(n, width, seed)
        r = simulate(verilog, f"addpipe{width}", TB, {"i": data}, {"o": n},
                     stall_in=0.5, stall_out=0.5, seed=seed)
        assert r.outputs["o"] == [add3(x, width) for x in data], f"seed {seed}"
        assert r.ok, (seed, r.protocol_errors[:3])
        # With both sides stalling half the time the run must take longer than without.
        assert r.cycles > n + 2
        # Transfers are in order and at most one per cycle per stream.
        assert all(a < b for a, b in zip(r.out_times["o"], r.out_times["o"][1:]))


def test_stall_patterns_follow_the_seed(add8):
    data = words(50, 8)
    a, b, c = (simulate(add8, "addpipe8", TB, {"i": data}, {"o": 50},
                        stall_in=0.3, stall_out=0.3, seed=s) for s in (7, 7, 8))
    assert a.out_times == b.out_times and a.in_times == b.in_times
    assert a.out_times != c.out_times


def test_broken_design_is_flagged():
    verilog = to_verilog(IgnoresReady(8), "ignores_ready")
    n = 100
    data = words(n, 8)
    expected = [add3(x, 8) for x in data]
    # Without backpressure this design happens to work ...
    r = simulate(verilog, "ignores_ready", TB, {"i": data}, {"o": n})
    assert r.outputs["o"] == expected and r.ok
    # ... with it, words change (or vanish) while valid and not ready.
    r = simulate(verilog, "ignores_ready", TB, {"i": data}, {"o": n},
                 stall_out=0.5, seed=3, timeout_cycles=2000)
    assert r.protocol_errors
    err = r.protocol_errors[0]
    assert err["stream"] == "o" and isinstance(err["cycle"], int)
    assert r.outputs["o"] != expected


def test_surplus_and_timeout(add8):
    data = words(10, 8)
    r = simulate(add8, "addpipe8", TB, {"i": data}, {"o": 8})
    assert r.surplus == {"o": 2} and not r.ok
    assert r.outputs["o"] == [add3(x, 8) for x in data]  # the surplus words are recorded too
    r = simulate(add8, "addpipe8", TB, {"i": data}, {"o": 12}, timeout_cycles=100)
    assert r.timed_out and len(r.outputs["o"]) == 10 and r.cycles_run == 100


def test_cache_hit(tmp_path, monkeypatch):
    # A fresh cache folder, so the first build really builds; the Verilator runtime objects
    # are shared with the normal cache so that this costs seconds, not a minute.
    monkeypatch.setenv("QHW_OBJCACHE_DIR", str(runner._objcache_dir(runner.cache_root())))
    monkeypatch.setenv("QHW_CACHE_DIR", str(tmp_path))
    verilog = to_verilog(AddPipe(16), "addpipe16")
    first = build(verilog, "addpipe16")
    stamp = (first / "qhw-built.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    second = build(verilog, "addpipe16")
    assert second == first and time.perf_counter() - t0 < 0.5
    assert (first / "qhw-built.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert build_info(first)["top"] == "addpipe16"
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    # A different design, or tracing, is a different entry.
    assert runner._key(verilog, "addpipe16", False) != runner._key(verilog, "addpipe16", True)
    other = to_verilog(AddPipe(24), "addpipe16")
    assert runner._key(verilog, "addpipe16", False) != runner._key(other, "addpipe16", False)


def test_waves(tmp_path, add8):
    fst = tmp_path / "run.fst"
    r = simulate(add8, "addpipe8", TB, {"i": words(5, 8)}, {"o": 5}, waves=fst)
    assert r.ok and fst.stat().st_size > 0
    data = fst.read_bytes()
    assert data[0] == 0  # FST files begin with their header block (type 0)
    if runner._lz4_missing():  # uncompressed hierarchy (see cosim/_lz4shim): names are visible
        assert b"o__valid" in data and b"i__payload" in data


def test_failures_are_reported(add8, tmp_path):
    with pytest.raises(CosimError, match="no port 'x__valid'"):
        simulate(add8, "addpipe8", TB, {"x": [1]}, {"o": 1}, workdir=tmp_path)
    with pytest.raises(CosimError, match="Verilator build"):
        build("module broken(input clk; endmodule\n", "broken")
