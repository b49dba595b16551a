"""Where a sweep's points run: Dask distributed, embedded or on an existing cluster (docs/sweeps.md).

By default an embedded ``LocalCluster`` of worker processes, one thread each, as many as there
are cores (or ``-j``): no set-up. ``--scheduler tcp://HOST:PORT`` (or ``$QHW_SCHEDULER``) sends the
same points to an existing cluster instead (``dask scheduler`` and ``dask worker`` processes, or
Slurm jobs through dask-jobqueue); its workers need only qhw installed. A point's result comes back
to the client, which alone writes the cache and the results, so the workers share no disk.

This module knows nothing of sweeps: it submits functions, reports how each ended (a result, an
exception, or ``worker-lost`` when the workers running it kept dying), relays the messages tasks
send while they run (:func:`report`, :meth:`Executor.listen`: the progress display's stages), and
turns a scheduler that went away into :class:`SchedulerLost`. Dask is imported only when an
executor starts, so the rest of the command line starts as quickly as before.
"""

import contextlib
import logging
import os
import re
import socket
import time
import uuid

from ..errors import QhwInputError

#: The environment variable that names a scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "QHW_SCHEDULER"

#: How many times a point's worker may die under it before the point is recorded as failed with
#: kind ``worker-lost`` (so it runs at most WORKER_RETRIES + 1 times). Dask's own mechanism: the
#: scheduler's ``distributed.scheduler.allowed-failures``, set to this for the embedded cluster;
#: an existing cluster keeps its scheduler's setting (Dask's default: 3), read when connecting.
WORKER_RETRIES = 2

#: Seconds to wait for an existing scheduler to answer before giving up (exit status 2).
CONNECT_TIMEOUT_S = 10

#: The embedded cluster's dashboard port when it is free (Dask's usual one), else any free port.
DASHBOARD_PORT = 8787

_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


class SchedulerLost(Exception):
    """The scheduler went away (or the connection to it broke) while points were pending."""


def scheduler_address(given=None):
    """The scheduler to use: ``given`` (``--scheduler``), else ``$QHW_SCHEDULER``, else None (an
    embedded cluster). A malformed address is a :class:`QhwInputError` naming where it came from."""
    where = "--scheduler"
    if not given:
        given, where = os.environ.get(SCHEDULER_ENV) or None, SCHEDULER_ENV
    if given is None:
        return None
    match = _ADDRESS.fullmatch(given.strip())
    if match is None or not 1 <= int(match.group(3)) <= 65535:
        raise QhwInputError(f"{where}: a Dask scheduler address tcp://HOST:PORT (or tls://), "
                            f"got {given!r}")
    return given.strip()


def _free_port(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _quiet():
    """Dask's own log lines (worker start-up, lost workers and their tracebacks, a lost scheduler)
    stay out of the sweep's output, which says what happened to the points itself;
    ``QHW_DASK_LOG=info`` (or ``warning``, ``error``) shows them."""
    level = getattr(logging, os.environ.get("QHW_DASK_LOG", "critical").upper(), logging.CRITICAL)
    for name in ("distributed", "distributed.scheduler", "distributed.worker",
                 "distributed.nanny", "distributed.core", "distributed.comm",
                 "distributed.deploy", "distributed.client", "bokeh", "tornado"):
        logging.getLogger(name).setLevel(level)
    return level


class Executor:
    """A Dask client and, unless a scheduler address is given, the embedded cluster it owns.

    Use as a context manager; entering it starts the cluster or connects (a scheduler that does
    not answer is a :class:`QhwInputError`, before any work), leaving it closes both.
    """

    def __init__(self, *, jobs=None, scheduler=None):
        self.address = scheduler
        self.jobs = jobs
        self.cluster = None
        self.client = None
        self.allowed_failures = None
        self.stop_name = f"qhw-stop-{uuid.uuid4().hex}"
        self._stop_event = None
        self._futures = {}  # submitted and not yet reported: future -> tag
        self._threads, self._threads_at = 0, -1e9
        self._topics = []  # listened to: unsubscribed on close (an external scheduler outlives us)

    # Starting and closing ------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        import dask
        import distributed
        level = _quiet()
        if self.address is None:
            workers = self.jobs or os.cpu_count() or 1
            port = DASHBOARD_PORT if _free_port(DASHBOARD_PORT) else 0
            with dask.config.set({
                    "distributed.scheduler.allowed-failures": WORKER_RETRIES,
                    # One point per worker thread at a time (Executor.run also submits no more
                    # than that): a worker's death touches only the point it ran.
                    "distributed.scheduler.worker-saturation": 1.0,
                    "distributed.admin.system-monitor.gil.enabled": False}):
                self.cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", scheduler_port=0, dashboard_address=f"127.0.0.1:{port}",
                    silence_logs=level)
                self.client = distributed.Client(self.cluster, set_as_default=False)
            self.allowed_failures = WORKER_RETRIES
        else:
            try:  # a refused or unknown address answers at once here, not after Dask's retries
                host, port = self.address.split("://", 1)[1].rsplit(":", 1)
                socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
                self.client = distributed.Client(self.address, timeout=CONNECT_TIMEOUT_S,
                                                 set_as_default=False)
            except (OSError, TimeoutError, ValueError) as e:
                where = "--scheduler" if os.environ.get(SCHEDULER_ENV) != self.address \
                    else SCHEDULER_ENV
                first = str(e).strip().split("\n")[0]
                raise QhwInputError(f"{where}: no Dask scheduler answers at {self.address} "
                                    f"({first})") from None
            try:
                self.allowed_failures = self.client.run_on_scheduler(_allowed_failures)
            except Exception:  # noqa: BLE001 - only for the message of a worker-lost point
                self.allowed_failures = None
        self._stop_event = distributed.Event(self.stop_name, client=self.client)

    def close(self):
        """Close the client and the embedded cluster (its workers end, and with them any point
        process still running there). Never raises: the sweep's results are written either way."""
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        topics, self._topics = self._topics, []
        if client is not None:
            for topic in topics:
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(topic)
            with contextlib.suppress(Exception):
                client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=20)

    # Facts for the user --------------------------------------------------------------------------

    @property
    def workers(self):
        """(worker processes, threads) the scheduler knows now."""
        try:
            threads = self.client.nthreads()
        except Exception:  # noqa: BLE001 - only for the banner
            return 0, 0
        return len(threads), sum(threads.values())

    @property
    def dashboard_link(self):
        with contextlib.suppress(Exception):
            return self.client.dashboard_link or None
        return None

    def describe(self):
        """One line: where the points run and where to watch them."""
        workers, threads = self.workers
        where = ("embedded Dask LocalCluster" if self.cluster is not None
                 else f"Dask scheduler {self.address}")
        text = f"{where}: {workers} worker{'s' if workers != 1 else ''}"
        if threads != workers:
            text += f", {threads} threads"
        if self.cluster is None and workers == 0:
            text += " (none yet: points wait until a worker connects)"
        link = self.dashboard_link
        return text + (f"; dashboard {link}" if link else "")

    # Running -------------------------------------------------------------------------------------

    def threads(self):
        """Worker threads the scheduler has now (asked at most once a second)."""
        now = time.monotonic()
        if now - self._threads_at > 1.0:
            with contextlib.suppress(Exception):
                self._threads = sum(self.client.nthreads().values())
            self._threads_at = now
        return self._threads

    def run(self, fn, jobs):
        """Run ``fn(*args)`` for every ``(tag, args, name)`` of ``jobs``; yield ``(tag, result,
        error)`` as each ends: ``error`` is None, the exception ``fn`` raised, or
        ``"worker-lost"`` (Dask's KilledWorker: the workers running it died more than
        ``allowed_failures`` times). Raises :class:`SchedulerLost` when the scheduler goes away.

        Only as many jobs are submitted as the cluster has worker threads (a cluster that grows
        gets more): a job waits here, not in a worker's queue, so that a worker's death counts
        against the job it was running alone. Keys are ``name`` and a random suffix, so that two
        sweeps on a shared cluster (or a job submitted again) never meet the other's results.
        """
        import distributed
        from distributed.client import FutureCancelledError
        waiting = list(jobs)[::-1]
        done = distributed.as_completed([], loop=self.client.loop, raise_errors=False)

        def fill():
            while waiting and len(self._futures) < max(1, self.threads()):
                tag, args, name = waiting.pop()
                future = self.client.submit(fn, *args, key=f"{name}-{uuid.uuid4().hex[:12]}",
                                            pure=False)
                self._futures[future] = tag
                done.add(future)

        fill()
        for future in done:
            tag = self._futures.pop(future)
            status = future.status
            if status not in ("finished", "error"):  # cancelled or lost: nothing of ours
                raise SchedulerLost(f"lost the connection to {self.where}")  # cancels them
            fill()  # the next job starts while this one's result travels and is handled
            if status == "finished":
                try:
                    outcome = future.result(timeout=60), None
                except (FutureCancelledError, OSError, TimeoutError):  # gone meanwhile
                    raise SchedulerLost(f"lost the connection to {self.where}") from None
            else:
                error = future.exception()
                outcome = None, ("worker-lost" if isinstance(error, distributed.KilledWorker)
                                 else error)
            yield tag, *outcome
        if waiting or self._futures:
            raise SchedulerLost(f"lost the connection to {self.where}")

    def listen(self, handler):
        """Call ``handler(message)`` for every message that a task of this executor sends with
        :func:`report` (a point's stages, for the progress display); returns the topic to give
        the tasks. Dask's structured events carry them (``Worker.log_event`` on the worker, the
        scheduler forwards to ``Client.subscribe_topic``): the same path on the embedded cluster
        and on an existing one, with no shared disk and no extra connection. ``handler`` runs in
        the client's event-loop thread, so it must return at once; its exceptions are dropped
        (a display fault must not stop the sweep)."""
        topic = f"qhw-progress-{uuid.uuid4().hex}"

        def call(event):
            with contextlib.suppress(Exception):
                handler(event[1])

        self.client.subscribe_topic(topic, call)
        self._topics.append(topic)
        return topic

    @property
    def in_flight(self):
        """Jobs submitted and not yet reported (running, or about to)."""
        return len(self._futures)

    @property
    def where(self):
        return self.address or "the embedded scheduler"

    def stop(self, wait_s=5):
        """Ask every running job to stop (points poll :func:`stop_requested`), give them
        ``wait_s`` to kill their processes, then cancel everything not finished."""
        futures = list(self._futures)
        if not futures:
            return
        with contextlib.suppress(Exception):
            self._stop_event.set()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self._computing(futures):
            time.sleep(0.1)
        with contextlib.suppress(Exception):
            self.client.cancel(futures, force=True)

    def _computing(self, futures):
        """Whether any of ``futures`` is being computed now."""
        keys = {f.key for f in futures if f.status == "pending"}
        if not keys:
            return False
        try:
            processing = self.client.processing()
        except Exception:  # noqa: BLE001 - the scheduler is gone: nothing to wait for
            return False
        return any(k in keys for tasks in processing.values() for k in tasks)


def _allowed_failures(dask_scheduler):
    return dask_scheduler.allowed_failures


def stop_requested(name):
    """On a worker, inside a task: whether the client that submitted it asked to stop (Ctrl-C,
    SIGTERM). False outside a Dask worker or when the scheduler cannot be asked."""
    if not name:
        return False
    try:
        import distributed
        distributed.get_worker()
        return distributed.Event(name).is_set()
    except Exception:  # noqa: BLE001 - not on a worker, or the scheduler is gone
        return False


def report(topic, message):
    """On a worker, inside a task: send ``message`` (msgpack-able: dicts, lists, strings,
    numbers) to the client that listens on ``topic`` (:meth:`Executor.listen`). Does nothing
    without a topic or outside a Dask worker; never raises (progress is not worth a point)."""
    if not topic:
        return
    try:
        import distributed
        distributed.get_worker().log_event(topic, message)
    except Exception:  # noqa: BLE001 - not on a worker, or the worker is closing
        pass
