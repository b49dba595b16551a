"""Helpers shared by the tests that start Dask clusters (tests/test_sweep_dask.py,
tests/test_progress.py): an existing cluster as ``dask scheduler`` and ``dask worker``
processes, a free port, and waiting for a condition."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: The ``dask`` command of this virtual environment.
DASK = str(Path(sys.executable).with_name("dask"))


def wait_for(condition, timeout, what):
    """``condition()``'s first true value, polled every 50 ms; AssertionError naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def cluster(tmp_path, allowed_failures):
    """A ``dask scheduler`` and one ``dask worker`` (one thread) on 127.0.0.1, as processes.

    Yields ``(address, [scheduler process, worker process])``; their logs are
    ``tmp_path/scheduler.log`` and ``worker.log``, and both are killed (their process groups)
    on the way out. ``allowed_failures``: the scheduler's allowed-failures (how many workers a
    task may lose before it is recorded as failed)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = os.environ | {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)}
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=logs[0], stderr=subprocess.STDOUT,
                              env=env, start_new_session=True)]
    try:
        wait_for(lambda: _listening(port), 60, "the scheduler")
        procs.append(subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1",
                                       "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
                                      stdout=logs[1], stderr=subprocess.STDOUT,
                                      start_new_session=True))
        yield address, procs
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for log in logs:
            log.close()
