"""What a long job is doing: the progress display of ``qhw sweep`` points and ``qhw demo`` tasks,
and the ending every main job prints (docs/sweeps.md, "Progress").

A job (a sweep point, a demo task) runs in a process of its own that announces its stages
(:mod:`qhw.stages`); whoever started that process relays them here (the sweep through Dask's
events, :meth:`qhw.explore.executor.Executor.listen`; the demo from its pool's stage files).
:class:`StageBoard` shows, for every job in flight, which job, which stage, which tool within it
and for how long, with the jobs done, the time elapsed and an estimate of the time left. Three
modes (:func:`display_mode`):

``bars``  (stderr is a terminal) an overall bar and one line per job in flight, redrawn twice a
          second.
``lines`` (stderr is a file or a pipe: CI logs, ``| tee``) a plain line per stage change, tool
          start and finished job, and a line a minute naming what runs while nothing changes;
          nothing is redrawn. Why lines and not a rate-limited bar: a log is read afterwards,
          and a line per change keeps the order and the time of every stage (a few hundred
          lines for the 27-point unit demo), while the minute lines show that a long nextpnr
          run is alive to a reader, or a CI job that kills silent builds.
``off``   (``--no-progress``) nothing but the messages passed to :meth:`StageBoard.write`.

All the work (state, estimate, output) happens in one thread of the board: the other threads
(the main one, Dask's event loop, a relay) only put items in its queue, so they never wait on the
terminal.
"""

import collections
import dataclasses
import heapq
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

__all__ = ["display_mode", "StageBoard", "short_time", "remaining_estimate", "point_labels",
           "ending_lines", "print_ending"]


def display_mode(progress, stream=None):
    """``"off"`` without ``progress``, else ``"bars"`` on a terminal and ``"lines"`` elsewhere.

    Parameters
    ----------
    progress : bool
        False for ``--no-progress``.
    stream : file, optional
        Where the display goes (default ``sys.stderr``).

    Returns
    -------
    str
        ``"bars"``, ``"lines"`` or ``"off"``.
    """
    if not progress:
        return "off"
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        tty = False
    return "bars" if tty else "lines"


def short_time(seconds):
    """``"42 s"``, ``"3 min 05 s"`` or ``"1 h 02 min"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def remaining_estimate(running_left, waiting, workers):
    """Seconds until the last job ends if the waiting jobs go, in order, to the first free worker.

    Parameters
    ----------
    running_left : list of float
        Seconds each running job still needs.
    waiting : list of float
        Seconds each job not started yet needs.
    workers : int
        Jobs that run at once (at least the running ones).

    Returns
    -------
    float
        The estimate (greedy list scheduling: a long job last is not averaged away, as a mean
        rate would do).
    """
    slots = max(int(workers), len(running_left), 1)
    free = list(running_left) + [0.0] * (slots - len(running_left))
    heapq.heapify(free)
    for need in waiting:
        heapq.heappush(free, heapq.heappop(free) + need)
    return max(free)


@dataclasses.dataclass
class _Job:
    label: str
    kind: str
    started: float | None = None     # monotonic seconds of this process
    stage: str | None = None
    stage_at: float | None = None
    previous: tuple | None = None    # (stage, seconds) of the stage before, for the lines
    tool: str | None = None
    tool_at: float | None = None


_STOP = object()


class StageBoard:
    """The progress of jobs that run in stages (see the module's description).

    Parameters
    ----------
    total : int
        Jobs in all, those already done included.
    desc : str
        The overall bar's name, e.g. ``"sweep demo"``.
    prefix : str
        The lines' prefix, e.g. ``"qhw sweep"`` (lines read ``[qhw sweep 01:23] ...``).
    mode : str
        ``"bars"``, ``"lines"`` or ``"off"`` (:func:`display_mode`).
    done : int
        Jobs done before this run (cached), counted in the total.
    failed : int
        Of those, how many had failed.
    workers : int
        Jobs that may run at once (for the estimate); :meth:`set_workers` changes it.
    unit : str
        What a job is called in the overall bar (``"point"``, ``"task"``).
    stream : file, optional
        Where the display goes (default ``sys.stderr``).
    heartbeat_s : float
        In ``lines`` mode, the longest silence before a line says what runs.
    t0 : float, optional
        When the job began, in ``clock`` seconds (default: now): the lines' times count from it.
    clock : callable
        Monotonic seconds (tests give a fake one).

    Every method may be called from any thread; they return at once.
    """

    def __init__(self, *, total, desc, prefix, mode, done=0, failed=0, workers=1, unit="job",
                 stream=None, heartbeat_s=60.0, t0=None, clock=time.monotonic):
        self.mode = mode
        self.total, self.done, self.failed, self.cached = total, done, failed, done
        self._desc, self._prefix, self._unit = desc, prefix, unit
        self._stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._t0 = clock() if t0 is None else t0
        self._jobs = {}             # key -> _Job, waiting or running
        self._durations = {}        # kind -> [seconds of the jobs of that kind that ended]
        self._workers = max(1, int(workers))
        self._heartbeat_s = heartbeat_s
        self._last_line = self._t0
        self._queue = queue.SimpleQueue()
        self._bar, self._slots, self._rendered = None, [], -1.0
        self._closed = False
        # A terminal that reports no size (a pty nobody sized) would get bars trimmed to
        # nothing: then a fixed width.
        fixed = None if _terminal_size(self._stream) else 100
        self._bar_size = {"dynamic_ncols": fixed is None, "ncols": fixed}
        if mode == "bars":
            self._bar = tqdm(total=total, initial=done, desc=desc, file=self._stream,
                             position=0, leave=True, mininterval=0, **self._bar_size,
                             bar_format=("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                         f"{unit}s [{{elapsed}} elapsed{{postfix}}]"))
            self._bar.start_t -= clock() - self._t0  # its elapsed counts from t0 too
        self._thread = threading.Thread(target=self._loop, daemon=True, name="qhw-progress")
        self._thread.start()

    # Inputs (any thread) -------------------------------------------------------------------------

    def add(self, key, label, kind=None):
        """A job to come: ``label`` names it; ``kind`` groups jobs of similar length (the
        estimate takes the mean of a kind's finished jobs, else of all)."""
        self._queue.put(("add", key, label, kind or label))

    def start(self, key, ago=0.0):
        """Job ``key`` started ``ago`` seconds ago (a retried job starts again)."""
        self._queue.put(("start", key, self._clock() - ago))

    def event(self, key, kind, text, ago=0.0):
        """Job ``key`` entered stage ``text`` (``kind`` ``"stage"``) or started tool ``text``
        (``kind`` ``"tool"``) ``ago`` seconds ago."""
        self._queue.put((kind, key, text, self._clock() - ago))

    def end(self, key, ok=True):
        """Job ``key`` ended (``ok``: passed its checks)."""
        self._queue.put(("end", key, ok, self._clock()))

    def expect(self, kind, seconds):
        """A job of ``kind`` took ``seconds`` before (a cached result): for the estimate."""
        self._queue.put(("expect", kind, seconds))

    def set_workers(self, workers):
        """Jobs that may run at once now (a cluster grew or shrank)."""
        self._queue.put(("workers", workers))

    def write(self, text, file=None):
        """Print a message line (``file`` default stdout) without breaking the bars; printed in
        every mode, ``off`` included."""
        self._queue.put(("write", text, file))

    def close(self):
        """Show what is left to show, take the bars down, and stop the board's thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put((_STOP,))
        self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # The board's thread --------------------------------------------------------------------------

    def _loop(self):
        stop = False
        while not stop:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                item = None
            while item is not None:
                if item[0] is _STOP:
                    stop = True
                else:
                    try:
                        self._handle(item)
                    except Exception:  # noqa: BLE001 - a display fault must not stop the work
                        pass
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            try:
                self._render(final=stop)
            except Exception:  # noqa: BLE001 - e.g. a terminal that went away
                pass

    def _handle(self, item):
        what, *args = item
        if what == "add":
            key, label, kind = args
            self._jobs[key] = _Job(label, kind)
        elif what == "start":
            key, at = args
            job = self._jobs.get(key)
            if job is not None:
                job.started, job.stage, job.stage_at = at, "starting", at
                job.previous, job.tool, job.tool_at = None, None, None
        elif what in ("stage", "tool"):
            key, text, at = args
            job = self._jobs.get(key)
            if job is None:
                return  # ended already (a late relay), or never added
            if job.started is None:
                job.started = at
            if what == "stage":
                if job.stage is not None and job.stage != "starting":
                    job.previous = (job.stage, at - job.stage_at)
                job.stage, job.stage_at, job.tool, job.tool_at = text, at, None, None
                self._line(f"{job.label}: {text}" + (
                    f" ({job.previous[0]} took {short_time(job.previous[1])})"
                    if job.previous else ""), at)
            else:
                job.tool, job.tool_at = text, at
                self._line(f"{job.label}: {job.stage}: {text}", at)
        elif what == "end":
            key, ok, at = args
            job = self._jobs.pop(key, None)
            self.done += 1
            self.failed += not ok
            if job is None:
                return
            seconds = at - job.started if job.started is not None else None
            if seconds is not None:
                self._durations.setdefault(job.kind, []).append(seconds)
            took = f" in {short_time(seconds)}" if seconds is not None else ""
            self._line(f"{job.label}: {'done' if ok else 'FAILED'}{took}; {self._summary()}",
                       at)
            if self._bar is not None:
                self._bar.n += 1  # drawn by the next render, with the running jobs updated
        elif what == "expect":
            kind, seconds = args
            self._durations.setdefault(kind, []).append(float(seconds))
        elif what == "workers":
            self._workers = max(1, int(args[0]))
        elif what == "write":
            text, file = args
            file = sys.stdout if file is None else file
            if self._bar is not None:
                tqdm.write(text, file=file)
            else:
                print(text, file=file, flush=True)

    # Estimate and text ---------------------------------------------------------------------------

    def remaining(self):
        """The estimate of the time left: ``(seconds, untimed)``, where ``untimed`` counts the
        jobs left out of ``seconds`` because no job of their kind has ended yet (a mean of other
        kinds would be no estimate: one long synthesis would make every small layer look long);
        ``seconds`` is None while no kind is timed."""
        now = self._clock()
        running, waiting, untimed = [], [], 0
        for job in self._jobs.values():
            mine = self._durations.get(job.kind)
            if not mine:
                untimed += 1
                continue
            need = sum(mine) / len(mine)
            if job.started is None:
                waiting.append(need)
            else:
                ran = now - job.started
                # Past its kind's mean: it is a long one; assume a quarter more.
                running.append(need - ran if ran < need else 0.25 * ran)
        if not self._durations:
            return None, untimed
        return remaining_estimate(running, waiting, self._workers), untimed

    def _left_text(self):
        """``about 3 min 05 s left``, with ``+ N <unit>s not timed yet`` when some are left out,
        or None."""
        if self.done >= self.total:
            return None
        left, untimed = self.remaining()
        if left is None or (not left and untimed):  # nothing timed is left to run
            return "no estimate of the time left yet" if untimed else None
        text = f"about {short_time(max(left, 1.0))} left"  # "about 0 s" reads as a fault
        return text + (f" + {untimed} {self._unit}{'s' if untimed > 1 else ''} not timed yet"
                       if untimed else "")

    def _summary(self):
        text = f"{self.done}/{self.total} {self._unit}s"
        if self.failed:
            text += f", {self.failed} failed"
        left = self._left_text()
        return text + (f", {left}" if left else "")

    def _running(self):
        return sorted((j for j in self._jobs.values() if j.started is not None),
                      key=lambda j: j.started)

    def _job_text(self, job, now):
        text = f"{job.label}: {job.stage} {short_time(now - job.stage_at)}"
        if job.tool:
            text += f" - {job.tool} {short_time(now - job.tool_at)}"
        return text

    def _line(self, text, at=None):
        """A line of the ``lines`` mode, stamped with the time since t0 of ``at`` (default
        now): when the change happened, not when this thread got to it."""
        if self.mode != "lines":
            return
        at = self._clock() if at is None else at
        elapsed = tqdm.format_interval(max(0.0, at - self._t0))
        print(f"[{self._prefix} {elapsed}] {text}", file=self._stream, flush=True)
        self._last_line = max(self._last_line, at)

    def _render(self, final=False):
        now = self._clock()
        if self.mode == "lines":
            running = self._running()
            if running and now - self._last_line >= self._heartbeat_s and not final:
                self._line("running: " + "; ".join(self._job_text(j, now) for j in running)
                           + f" ({self._summary()})")
            return
        if self._bar is None:
            return
        if final:
            for slot in self._slots:
                slot.close()
            self._slots = []
            self._bar.set_postfix_str(self._postfix(0, final=True), refresh=False)
            self._bar.close()
            self._bar = None
            return
        if time.monotonic() - self._rendered < 0.25:  # real time: the terminal's pace
            return
        self._rendered = time.monotonic()
        running = self._running()
        columns, lines = _terminal_size(self._stream) or (100, 24)  # the display's own terminal
        width = max(20, columns - 1)
        rows = max(1, min(lines - 2, 40))
        texts = [self._job_text(j, now) for j in running]
        if len(texts) > rows:
            texts = texts[:rows - 1] + [f"... and {len(texts) - rows + 1} more running"]
        while len(self._slots) < len(texts):
            self._slots.append(tqdm(total=None, bar_format="{desc}", file=self._stream,
                                    position=len(self._slots) + 1, leave=False, mininterval=0,
                                    **self._bar_size))
        for i, slot in enumerate(self._slots):
            text = f"  {texts[i]}" if i < len(texts) else ""
            slot.set_description_str(text[:width], refresh=False)
            slot.refresh()
        self._bar.set_postfix_str(self._postfix(len(running)), refresh=False)
        self._bar.refresh()

    def _postfix(self, running, final=False):
        parts = []
        left = None if final else self._left_text()
        if left:
            parts.append(left)
        if running:
            parts.append(f"{running} running")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.cached:
            parts.append(f"{self.cached} cached")
        return ", ".join(parts)


def _terminal_size(stream):
    """``(columns, lines)`` of the terminal ``stream`` writes to, or None when unknown (not a
    terminal, or one that reports no size)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return (size.columns, size.lines or 24) if size.columns else None


# Sweep points' names --------------------------------------------------------------------------

def _value_text(value, limit=24):
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def point_labels(points, axes):
    """Short names of a sweep's points: the unit and its swept fields (``binconv
    weight_bits=4, pe=2``), else the fields that differ among the unit's points, and
    ``(baseline)`` for a baseline design; a name two points share gets their keys' start.

    Parameters
    ----------
    points : list of qhw.explore.sweep.Point
        The sweep's points.
    axes : dict
        Unit name -> swept field names (``Sweep.axes``).

    Returns
    -------
    dict
        Point key -> name.
    """
    by_unit = {}
    for p in points:
        by_unit.setdefault(p.unit, []).append(p)
    labels = {}
    for unit, mine in by_unit.items():
        names = [n for n in axes.get(unit, []) if any(n in p.config for p in mine)]
        if not names and len(mine) > 1:
            fields = list(dict.fromkeys(k for p in mine for k in p.config))
            names = [k for k in fields
                     if len({json.dumps(p.config.get(k), sort_keys=True) for p in mine}) > 1]
        for p in mine:
            shown = ", ".join(f"{n}={_value_text(p.config[n])}" for n in names[:4]
                              if n in p.config)
            label = f"{unit} {shown}".strip()
            labels[p.key] = label + (" (baseline)" if p.origin == "baseline" else "")
    counts = collections.Counter(labels.values())
    return {k: (f"{v} [{k[:6]}]" if counts[v] > 1 else v) for k, v in labels.items()}


# The ending -----------------------------------------------------------------------------------

def ending_lines(report_md):
    """What a main job prints last: ``Headline``, the report's ``headline.txt`` (beside
    report.md, one finding per line; left out when missing), then the paths of report.md and
    report.html.

    Parameters
    ----------
    report_md : path-like
        The report's ``report.md``.

    Returns
    -------
    list of str
    """
    report_md = Path(report_md)
    lines = []
    try:
        found = [line.rstrip() for line in
                 (report_md.with_name("headline.txt")).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        found = []
    if found:
        lines = ["Headline"] + [f"  {line}" for line in found]
    return lines + [f"report.md:   {report_md}",
                    f"report.html: {report_md.with_name('report.html')}"]


def print_ending(report_md, file=None):
    """Print :func:`ending_lines` (to stdout by default)."""
    print("\n".join(ending_lines(report_md)), file=sys.stdout if file is None else file,
          flush=True)
