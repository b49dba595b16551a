"""bench/bench_finn_rtl.py: qhw's threshold stage (no network), FINN's sources and fixes (PyPI)."""

import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_finn_rtl as bench  # noqa: E402
import finn_rtl  # noqa: E402


def test_qhw_threshold_stage_matches_reference_under_stalls():
    from amaranth.sim import Simulator

    t = bench.thresholds()
    ge = [1] * 16 + [0] * 16  # both directions of qhw's lane activation
    dut = bench.QhwThreshold(channels=32, pe=8, thresholds=t, ge=ge)
    rng = random.Random(3)
    xs = [[rng.randrange(-128, 128) for _ in range(32)] for _ in range(8)]
    words = [sum((x[cf * 8 + p] & 255) << (8 * p) for p in range(8)) for x in xs for cf in range(4)]
    want = [sum(int((x[cf * 8 + p] >= t[cf * 8 + p]) == bool(ge[cf * 8 + p])) << p
                for p in range(8)) for x in xs for cf in range(4)]
    got = []

    async def tb(ctx):
        sent = 0
        for _ in range(600):
            ctx.set(dut.i.valid, sent < len(words) and rng.random() < 0.7)
            if sent < len(words):
                ctx.set(dut.i.payload, words[sent])
            ctx.set(dut.o.ready, rng.random() < 0.6)
            await ctx.delay(1e-9)
            took_in = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            took_out = ctx.get(dut.o.valid) and ctx.get(dut.o.ready)
            payload = ctx.get(dut.o.payload)
            await ctx.tick()
            sent += bool(took_in)
            if took_out:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == want


def test_replace_once_fails_loudly():
    with pytest.raises(finn_rtl.FinnSourceError, match="expected 1 occurrence"):
        finn_rtl.replace_once("abc", "x", "y", what="t")
    with pytest.raises(finn_rtl.FinnSourceError, match="found 2"):
        finn_rtl.replace_once("xx", "x", "y", what="t")


@pytest.mark.slow
def test_fetch_failure_is_one_clear_error(tmp_path, monkeypatch, capsys):
    """Asks PyPI for a version that does not exist (or fails without network): one error."""
    with pytest.raises(finn_rtl.FinnUnavailable, match="pip download finn-plus==0.0.0.0"):
        finn_rtl.fetch_wheel("0.0.0.0", cache=tmp_path)
    monkeypatch.setenv("QHW_CACHE_DIR", str(tmp_path))
    assert bench.main(["--finn-version", "0.0.0.0", "--work", str(tmp_path / "w"),
                       "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FINN's RTL is not available" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_finn_sources_fix_and_generate(tmp_path):
    """Needs PyPI (or the cached wheel): the fixes apply, FINN's codegen gives its known rates."""
    src = finn_rtl.FinnSources(finn_rtl.fetch_wheel())
    text = finn_rtl.fixed_thresholding_sv(src)
    assert "foreach" not in text and "p.ptr[M-1:SN+1]" not in text
    for parallel, style, mmv, cycles in ((1, "parallel", 9, 60 * 60 + 2),
                                         (0, "default", 1, 123 + 58 * 58 * 9)):
        files, top, info = finn_rtl.swg_sources(
            src, tmp_path / style, channels=32, element_bits=1, height=60, width=60,
            kernel=(3, 3), simd=32, parallel_window=parallel)
        assert info["impl_style"] == style and info["mmv_out"] == mmv
        assert info["exp_cycles"] == cycles
        assert all((tmp_path / style / f).is_file() for f in files)
        wrapper = (tmp_path / style / f"{top}_wrapper.v").read_text()
        assert f"module {top} #(" in wrapper and "$" not in wrapper.replace("$clog2", "")
