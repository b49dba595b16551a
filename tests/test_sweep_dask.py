"""``qhw sweep`` on Dask: the embedded LocalCluster against the serial run, a worker killed with
SIGKILL mid-sweep, the cache, and an existing cluster (``dask scheduler`` and ``dask worker``
processes, tests/dask_cluster.py) through ``--scheduler``: its results, a lost worker, a lost
scheduler.

The points are the cheapest the sweep has: exponent-adder multipliers, cosimulation only (no
synthesis, no energy, no stalls), about two seconds each once their Verilator models are cached
(tests/test_sweep.py builds the same ones)."""

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from clihelp import assert_usage_error, run
from dask_cluster import cluster, free_port, wait_for
from qhw.explore import executor, sweep

QHW = [sys.executable, "-m", "qhw.cli"]

CHEAP = """
name = "cheap"
[settings]
targets = []
fmax = false
energy = false
stall = 0
baselines = false
[[sweep]]
unit = "expmul"
[sweep.grid]
act_format = ["fp16", "bf16"]
overflow = ["saturate", "inf"]
"""

#: Record fields that depend on the run, not on the point: stage times.
_VARYING = {"seconds"}


def comparable(record):
    return {k: v for k, v in record.items() if k not in _VARYING}


def sweep_file(tmp_path, text=CHEAP, name="cheap.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def qhw_sweep(*args, env=None, timeout=300):
    return subprocess.run(QHW + ["sweep", *map(str, args), "--no-progress"], capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else os.environ | env)


def points_of(out):
    return json.loads((out / "results.json").read_text())["points"]


def running_point(keys, under):
    """A process running one of ``keys``' points (``python -m qhw.explore.sweep`` in a
    ``qhw-point-<key>-`` folder) that descends from process ``under`` (tests running in parallel
    may run the same points), or None."""
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "qhw.explore.sweep" in cmdline and any(f"qhw-point-{k}-" in cmdline for k in keys):
            with contextlib.suppress(psutil.Error):
                if under in {p.pid for p in proc.parents()}:
                    return proc
    return None


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The points and their records computed one after another in this process, no Dask."""
    spec = sweep.parse_sweep(CHEAP)
    return {p.key: comparable(sweep.run_point(p)) for p in spec.points}


# The embedded cluster ---------------------------------------------------------------------------

def test_two_local_workers_give_the_serial_results_and_a_second_run_is_served_from_the_cache(
        tmp_path, serial):
    path, out = sweep_file(tmp_path), tmp_path / "r"
    done = qhw_sweep(path, "-o", out, "-j", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 points: 4 computed, 0 from the cache, 0 failed" in done.stdout
    assert "embedded Dask LocalCluster: 2 workers; dashboard http://" in done.stderr
    records = points_of(out)
    assert {r["key"]: comparable(r) for r in records} == serial
    assert all(r["status"] == "ok" and r["bit_exact"] for r in records)

    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    again = qhw_sweep(path, "-o", out, "-j", "2")
    assert "4 points: 0 computed, 4 from the cache, 0 failed" in again.stdout, again.stdout
    assert "LocalCluster" not in again.stderr  # nothing to do: no cluster started
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == before


def test_a_worker_killed_mid_sweep_costs_only_a_retry(tmp_path, serial):
    path, out = sweep_file(tmp_path), tmp_path / "r"
    keys = list(serial)
    proc = subprocess.Popen(QHW + ["sweep", str(path), "-o", str(out), "-j", "2",
                                   "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        point = wait_for(lambda: running_point(keys, proc.pid), 120, "a running point")
        worker = point.parent()  # the Dask worker process that runs it
        assert "spawn" in " ".join(worker.cmdline())
        victim = next(k for k in keys if f"qhw-point-{k}-" in " ".join(point.cmdline()))
        folder = Path(point.cmdline()[-1]).parent  # the point's job folder on the worker
        worker.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert "4 points: 4 computed, 0 from the cache, 0 failed" in stdout
    records = {r["key"]: comparable(r) for r in points_of(out)}
    assert records == serial  # the killed point was run again, whole, elsewhere
    assert victim in records
    # The killed worker's point process ended with it and removed its job folder.
    assert not psutil.pid_exists(point.pid) or point.status() == psutil.STATUS_ZOMBIE
    assert folder.name.startswith(f"qhw-point-{victim}-") and not folder.exists()


def test_bad_or_silent_scheduler_exits_2_before_any_work(tmp_path, capsys):
    path, out = sweep_file(tmp_path), tmp_path / "r"
    code, _, err = run(["sweep", path, "-o", out, "--scheduler", "nowhere:8786"], capsys)
    assert_usage_error(code, err, "--scheduler: a Dask scheduler address tcp://HOST:PORT")
    port = free_port()  # nobody listens there
    code, _, err = run(["sweep", path, "-o", out, "--scheduler", f"tcp://127.0.0.1:{port}"],
                       capsys)
    assert_usage_error(code, err, f"--scheduler: no Dask scheduler answers at "
                                  f"tcp://127.0.0.1:{port}")
    os.environ[executor.SCHEDULER_ENV] = "tcp://"
    try:
        code, _, err = run(["sweep", path, "-o", out], capsys)
    finally:
        del os.environ[executor.SCHEDULER_ENV]
    assert_usage_error(code, err, "QHW_SCHEDULER: a Dask scheduler address")
    assert not out.exists()


def test_a_point_whose_process_computes_another_key_is_refused():
    """A worker with other qhw sources or tools (or sources edited since the sweep started)
    would file its result under a key that does not describe it: the point's process refuses."""
    (point,) = sweep.parse_sweep(CHEAP.replace('["fp16", "bf16"]', '["fp16"]')
                                 .replace('["saturate", "inf"]', '["saturate"]')).points
    record = sweep.point_task(dataclasses.asdict(point) | {"key": "0" * 20})
    assert record["status"] == "failed" and record["error_kind"] == "environment"
    assert record["key"] == "0" * 20 and "differ from the client's" in record["error"]
    assert "environment" not in sweep.FINAL_ERRORS  # tried again once the cluster is fixed


# An existing cluster ----------------------------------------------------------------------------

def test_an_existing_cluster_runs_the_sweep_and_survives_a_lost_worker_and_scheduler(
        tmp_path, serial):
    two = CHEAP.replace('overflow = ["saturate", "inf"]', 'overflow = ["saturate"]')
    path = sweep_file(tmp_path, two, "two.toml")
    keys = [p.key for p in sweep.parse_sweep(two).points]
    with cluster(tmp_path, allowed_failures=0) as (address, procs):
        # --scheduler: the cluster computes what the serial run does.
        out = tmp_path / "on_cluster"
        done = qhw_sweep(path, "-o", out, "--scheduler", address)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 points: 2 computed, 0 from the cache, 0 failed" in done.stdout
        assert f"Dask scheduler {address}: 1 worker" in done.stderr
        assert {r["key"]: comparable(r) for r in points_of(out)} == {k: serial[k] for k in keys}

        # The worker dies under a point: with the scheduler's allowed-failures = 0 the point is
        # recorded as worker-lost at once, the other one still runs (on the restarted worker).
        # $QHW_SCHEDULER names the cluster this time.
        out = tmp_path / "lost_worker"
        proc = subprocess.Popen(QHW + ["sweep", str(path), "-o", str(out), "--no-progress"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=os.environ | {executor.SCHEDULER_ENV: address})
        point = wait_for(lambda: running_point(keys, procs[1].pid), 120, "a running point")
        point.parent().send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 1, stdout + stderr
        records = points_of(out)
        lost = [r for r in records if r["status"] == "failed"]
        assert len(records) == 2 and len(lost) == 1, records
        assert lost[0]["error_kind"] == "worker-lost"
        assert "died once (allowed-failures = 0)" in lost[0]["error"]
        # A lost worker is the machine's trouble, not the point's: the next run computes it.
        again = qhw_sweep(path, "-o", out, "--scheduler", address)
        assert "2 points: 1 computed, 1 from the cache, 0 failed" in again.stdout, again.stdout

        # The scheduler goes away after the first point: the sweep ends, that point is kept.
        out = tmp_path / "lost_scheduler"
        proc = subprocess.Popen(QHW + ["sweep", str(path), "-o", str(out), "--scheduler",
                                       address, "--no-progress"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: out.is_dir() and any(p.suffix == ".json"
                                              for p in (out / "points").iterdir()), 120,
                 "the first point")
        os.killpg(procs[0].pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert "the Dask scheduler went away" in stderr and "run the same command again" in stderr
    data = json.loads((out / "results.json").read_text())
    assert len(data["points"]) >= 1 and len(data["points"]) + len(data["pending"]) == 2
    assert all(r["status"] == "ok" for r in data["points"])
