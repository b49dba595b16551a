"""What the main jobs show while they run and print when they end (issue 16, the terminal).

The progress display (:mod:`qhw.explore.progress`) fed by a fake clock; the stage file of
:mod:`qhw.stages` and the tool flows' announcement of each tool run; the stages of real sweep
points travelling from their processes to the client through Dask, on the embedded cluster and
on an existing one; the demo's tasks through its process pool; and the ending of ``qhw sweep
--report``, ``qhw report`` and ``qhw demo --units``: the report's headline findings and the
paths of the report.

The sweep points are the cheapest there are (exponent-adder multipliers: generation,
cosimulation without stalls and generic synthesis, a few seconds each once their Verilator
models are cached, as tests/test_sweep_dask.py builds them)."""

import io
import re
import subprocess
import sys
import time

import pytest

from clihelp import run
from dask_cluster import cluster
from qhw import stages
from qhw.dnsmos import demo
from qhw.explore import progress, report, sweep

QHW = [sys.executable, "-m", "qhw.cli"]

SMALL = """
name = "small"
[settings]
targets = ["generic"]
fmax = false
energy = false
stall = 0
baselines = false
[[sweep]]
unit = "expmul"
[sweep.grid]
act_format = ["fp16", "bf16"]
"""

LABELS = ("expmul act_format=fp16", "expmul act_format=bf16")


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    """A stream that says it is a terminal (the display draws bars on it)."""

    def isatty(self):
        return True


def wait_until(condition, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# The display, on its own ------------------------------------------------------------------------

def test_display_mode_follows_the_switch_and_the_terminal():
    assert progress.display_mode(False, Terminal()) == "off"
    assert progress.display_mode(True, Terminal()) == "bars"
    assert progress.display_mode(True, io.StringIO()) == "lines"


def test_lines_name_the_job_its_stage_the_tool_and_the_times():
    clock, stream = FakeClock(), io.StringIO()
    board = progress.StageBoard(total=4, done=1, desc="sweep s", prefix="qhw sweep",
                                mode="lines", unit="point", workers=2, stream=stream,
                                clock=clock, heartbeat_s=30)
    board.add("k1", "binconv weight_bits=4", kind="binconv")
    board.add("k2", "binconv weight_bits=8", kind="binconv")
    board.add("k3", "gru hidden_size=16", kind="gru")
    board.start("k1")
    board.event("k1", "stage", "generate")
    clock.now += 3
    board.event("k1", "stage", "cosim")
    clock.now += 12
    board.event("k1", "stage", "place and route ecp5")
    board.event("k1", "tool", "nextpnr-ecp5 (25k)", ago=0)
    clock.now += 40
    board.end("k1")
    board.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[qhw sweep 00:00] binconv weight_bits=4: generate",
        "[qhw sweep 00:03] binconv weight_bits=4: cosim (generate took 3 s)",
        "[qhw sweep 00:15] binconv weight_bits=4: place and route ecp5 (cosim took 12 s)",
        "[qhw sweep 00:15] binconv weight_bits=4: place and route ecp5: nextpnr-ecp5 (25k)",
        # k2 (same unit, not started) is expected to take as long as k1: 55 s; k3 (a gru:
        # no gru point has ended) is left out, and the line says so.
        "[qhw sweep 00:55] binconv weight_bits=4: done in 55 s; 2/4 points, about 55 s left "
        "+ 1 point not timed yet",
    ], lines


def test_a_silent_long_stage_gets_a_line_a_minute():
    clock, stream = FakeClock(), io.StringIO()
    board = progress.StageBoard(total=1, desc="d", prefix="qhw demo", mode="lines", unit="task",
                                stream=stream, clock=clock, heartbeat_s=60)
    board.add("ECP5 synthesis", "ECP5 synthesis")
    board.start("ECP5 synthesis")
    board.event("ECP5 synthesis", "stage", "synthesis with place and route (ecp5)")
    clock.now += 50
    board.event("ECP5 synthesis", "tool", "nextpnr-ecp5 (25k)")
    clock.now += 61  # a minute since the last line
    wait_until(lambda: "running:" in stream.getvalue(), "the minute line")
    board.close()
    last = stream.getvalue().splitlines()[-1]
    assert last == ("[qhw demo 01:51] running: ECP5 synthesis: synthesis with place and route "
                    "(ecp5) 1 min 51 s - nextpnr-ecp5 (25k) 1 min 01 s (0/1 tasks, no estimate "
                    "of the time left yet)"), last


def test_bars_show_every_job_in_flight_with_its_stage_and_the_time_left():
    clock, stream = FakeClock(), Terminal()
    board = progress.StageBoard(total=4, desc="sweep s", prefix="qhw sweep", mode="bars",
                                unit="point", workers=2, stream=stream, clock=clock)
    for key, label in (("a", "gru hidden=16"), ("b", "gru hidden=32"), ("c", "gru hidden=64"),
                       ("d", "gru hidden=128")):
        board.add(key, label, kind="gru")
    board.start("a", ago=20)
    board.event("a", "stage", "synth ecp5", ago=10)
    board.start("b", ago=5)
    board.event("b", "stage", "cosim", ago=4)
    board.end("a")  # a gru point takes 20 s
    board.start("c", ago=1)
    board.event("c", "stage", "synth xc7", ago=1)
    board.event("c", "tool", "Yosys synth (xc7)", ago=1)
    wait_until(lambda: "gru hidden=64: synth xc7 1 s - Yosys synth (xc7) 1 s" in stream.getvalue(),
               "the third point's line")
    board.close()
    text = stream.getvalue()
    assert "gru hidden=32: cosim 4 s" in text
    # Left: b needs 15 s more, c 19 s, d 20 s after b: 35 s on two workers.
    assert "about 35 s left, 2 running" in text
    assert "1/4 points" in text


def test_nothing_is_shown_when_progress_is_off():
    stream = io.StringIO()
    board = progress.StageBoard(total=1, desc="x", prefix="qhw sweep", mode="off",
                                stream=stream)
    board.add("a", "A")
    board.start("a")
    board.event("a", "stage", "cosim")
    board.end("a")
    board.close()
    assert stream.getvalue() == ""


def test_the_estimate_sends_each_waiting_job_to_the_first_free_worker():
    # Workers free after 10 s and now; jobs of 5, 5 and 20 s: 5 and 5 on the free one (free
    # at 10 s), then 20 on either: the last ends at 30 s (a mean rate would say 20 s).
    assert progress.remaining_estimate([10.0], [5.0, 5.0, 20.0], 2) == 30.0
    assert progress.remaining_estimate([], [4.0, 4.0, 4.0], 3) == 4.0
    assert progress.remaining_estimate([7.0, 3.0, 1.0], [], 1) == 7.0  # more running than 1


def test_short_times_read_naturally():
    assert [progress.short_time(s) for s in (0.4, 42, 185, 3725)] == \
        ["0 s", "42 s", "3 min 05 s", "1 h 02 min"]


def test_point_names_give_the_swept_fields_and_tell_baselines_apart():
    spec = sweep.parse_sweep("""
[settings]
baselines = true
[[sweep]]
unit = "bamconv"
from_default = true
[sweep.grid]
weight_bits = [2, 4]
""")
    labels = progress.point_labels(spec.points, spec.axes)
    own = [labels[p.key] for p in spec.points if p.origin != "baseline"]
    assert own == ["bamconv weight_bits=2", "bamconv weight_bits=4"]
    base = [labels[p.key] for p in spec.points if p.origin == "baseline"]
    assert base and all(label.endswith("(baseline)") for label in base)
    assert len(set(labels.values())) == len(labels)


# Stage files and the tool flows ---------------------------------------------------------------

def test_stage_file_gives_each_complete_line_once(tmp_path, monkeypatch):
    path = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.ENV, str(path))
    stages.stage("cosim")
    stages.tool("ecp5: nextpnr (25k)")
    events, offset = stages.read_new(path)
    assert [(k, t) for k, t, _ in events] == [("stage", "cosim"),
                                               ("tool", "nextpnr-ecp5 (25k)")]
    assert all(0 <= ago < 5 for _, _, ago in events)
    with open(path, "a") as f:
        f.write('{"stage": "synth')  # a line being written: left for the next read
    assert stages.read_new(path, offset) == ([], offset)
    monkeypatch.delenv(stages.ENV)
    stages.stage("nowhere")  # without the variable: nothing, no error
    assert stages.read_new(tmp_path / "missing.jsonl") == ([], 0)


def test_a_synthesis_run_announces_its_tool(tmp_path, monkeypatch):
    from qhw.synth import flows
    path = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.ENV, str(path))
    verilog = "module inv(input a, output y); assign y = ~a; endmodule\n"
    flows.synthesize(verilog, "inv", "generic", tmp_path / "work")
    events, _ = stages.read_new(path)
    assert ("tool", "Yosys synth (generic)") in [(k, t) for k, t, _ in events]


# Sweeps: the stages travel from the points' processes to the client ---------------------------

def _stage_lines(stderr):
    return [line for line in stderr.splitlines() if re.match(r"\[qhw sweep \d\d:\d\d\] ", line)]


def _check_stage_lines(stderr, labels, total):
    lines = _stage_lines(stderr)
    for label in labels:
        mine = [line.split("] ", 1)[1] for line in lines if f"] {label}: " in line]
        assert mine[0] == f"{label}: generate", lines
        assert mine[1].startswith(f"{label}: cosim (generate took "), lines
        assert mine[2].startswith(f"{label}: synth generic (cosim took "), lines
        assert re.fullmatch(rf"{re.escape(label)}: done in \d+ s; \d/{total} points.*",
                            mine[-1]), lines


def sweep_file(tmp_path, text=SMALL):
    path = tmp_path / "small.toml"
    path.write_text(text)
    return path


ONE = SMALL.replace('["fp16", "bf16"]', '["fp16"]')


HEADLINE = ["2 of 2 points bit-exact", "cheapest: expmul act_format=bf16"]


@pytest.fixture
def headline(monkeypatch):
    """The report writer, followed by a headline.txt of known lines (None: none at all)."""
    written = {"lines": HEADLINE}
    real = report.write_report

    def write_report(*args, **kwargs):
        path = real(*args, **kwargs)
        target = path.with_name("headline.txt")
        if written["lines"] is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text("".join(f"{line}\n" for line in written["lines"]))
        return path

    monkeypatch.setattr(report, "write_report", write_report)
    return written


def _ending(rep):
    return ["Headline"] + [f"  {line}" for line in HEADLINE] + [
        f"report.md:   {rep / 'report.md'}", f"report.html: {rep / 'report.html'}"]


def test_a_sweep_logs_its_points_stages_and_the_reports_end_with_the_headline(
        tmp_path, headline, capsys):
    """One sweep (two points, progress on, stderr a pipe as in a CI log), then the commands that
    report it: ``qhw sweep --report`` (every point from the cache) and ``qhw report``."""
    path, out = sweep_file(tmp_path), tmp_path / "r"
    done = subprocess.run(QHW + ["sweep", str(path), "-o", str(out), "-j", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("2 points: 2 computed, 0 from the cache, 0 failed")
    _check_stage_lines(done.stderr, LABELS, 2)

    rep = tmp_path / "rep"
    code, printed, err = run(["sweep", path, "-o", out, "--report", rep], capsys)
    assert code == 0, printed + err
    assert printed.splitlines()[1:] == _ending(rep)  # after the count of points
    rep = tmp_path / "rep2"
    code, printed, _ = run(["report", out, "-o", rep], capsys)
    assert code == 0 and printed.splitlines() == _ending(rep)
    headline["lines"] = None  # no headline.txt: just the paths
    code, printed, _ = run(["report", out, "-o", rep], capsys)
    assert code == 0 and printed.splitlines() == _ending(rep)[-2:]


def test_the_unit_demo_ends_with_the_headline_and_the_report(tmp_path, headline, capsys,
                                                             monkeypatch):
    """``qhw demo --units`` on one cheap point instead of the demo sweep (every unit's default
    would take minutes): its count of points, then the report's headline and paths, last."""
    from qhw import demo as unit_demo
    monkeypatch.setattr(unit_demo, "demo_sweep",
                        lambda quick=False: sweep.parse_sweep(ONE, name="demo"))
    out = tmp_path / "demo"
    code, printed, err = run(["demo", "--units", "-o", out, "-j", "1", "--no-progress"], capsys)
    assert code == 0, printed + err
    lines = printed.splitlines()
    assert lines[0].startswith("[qhw demo] 1 design points over 1 unit kinds"), lines
    assert lines[1:] == ["[qhw demo] 1 points computed, 0 from the cache, 0 failed",
                         *_ending(out / "report")]


def test_no_stage_lines_without_progress(tmp_path):
    out = tmp_path / "r"
    done = subprocess.run(QHW + ["sweep", str(sweep_file(tmp_path, ONE)), "-o", str(out), "-j",
                                 "1", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (banner,) = done.stderr.splitlines()  # where the points run, and nothing else
    assert banner.startswith("[qhw sweep] embedded Dask LocalCluster: 1 worker; dashboard ")
    assert done.stdout.splitlines() == [
        f"1 points: 1 computed, 0 from the cache, 0 failed; results in {out}/results.csv and "
        f"results.json"]


def test_an_existing_cluster_relays_the_stages_too(tmp_path):
    with cluster(tmp_path, allowed_failures=2) as (address, _):
        done = subprocess.run(QHW + ["sweep", str(sweep_file(tmp_path, ONE)), "-o",
                                     str(tmp_path / "r"), "--scheduler", address],
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Dask scheduler {address}: 1 worker" in done.stderr
    _check_stage_lines(done.stderr, LABELS[:1], 1)


# The demo's tasks -----------------------------------------------------------------------------

def staged_job(name, seconds):
    """A stand-in for a demo task: two stages, the second with a tool."""
    stages.stage("first part")
    time.sleep(seconds)
    stages.stage("second part")
    stages.tool("ecp5: nextpnr (25k)")
    time.sleep(seconds)
    return {"name": name}


def failing_job():
    stages.stage("doomed")
    raise ValueError("no luck")


def test_the_demo_tasks_report_their_stages_from_the_pool():
    stream = io.StringIO()
    board = progress.StageBoard(total=3, desc="accelerator", prefix="qhw demo", unit="task",
                                mode="lines", workers=2, stream=stream)
    tasks = {"ECP5 synthesis": (staged_job, ("whole", 0.6)),
             "ECP5 conv1": (staged_job, ("conv1", 0.3)),
             "cosimulation": (failing_job, ())}
    results = demo._run_tasks(tasks, 2, board)
    board.close()
    assert results["ECP5 synthesis"] == {"name": "whole"}
    assert results["cosimulation"] == {"error": "ValueError: no luck"}
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    for label in ("ECP5 synthesis", "ECP5 conv1"):
        mine = [line for line in lines if line.startswith(f"{label}: ")]
        assert mine[0] == f"{label}: first part"
        assert re.fullmatch(rf"{label}: second part \(first part took \d s\)", mine[1]), mine
        assert mine[2] == f"{label}: second part: nextpnr-ecp5 (25k)"
        assert mine[3].startswith(f"{label}: done in ")
    assert "cosimulation: doomed" in lines
    assert any(line.startswith("cosimulation: FAILED in ") for line in lines)
