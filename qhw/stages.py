"""Stage announcements of long jobs, read by the progress display (docs/sweeps.md, "Progress").

A job that runs in a process of its own (a sweep point, a task of ``qhw demo``) says which stage
it is in, and which external tool it is running, by appending one JSON line to the file named by
``$QHW_STAGE_FILE``; the process that started it reads the new lines (:func:`read_new`) and relays
them to the display (:mod:`qhw.explore.progress`). Without the variable (``qhw synth``, the
tests, ``--no-progress``) announcing does nothing.

Why a file: the writer needs no connection that could block or break, and the same file works
under a Dask worker (local or remote: the task that started the process reads it on that machine),
a process pool and a plain subprocess. Lines are short and appended with one ``write`` each
(``O_APPEND``), so a reader never sees half of one that it keeps.

This module sits outside ``qhw.explore`` so that the tool flows (``qhw.synth.flows``) may call
:func:`tool` without importing the exploration code.
"""

import json
import os
import re
import time

__all__ = ["ENV", "stage", "tool", "tool_label", "read_new"]

#: The environment variable naming the file a job appends its stages to.
ENV = "QHW_STAGE_FILE"


def stage(name):
    """Announce that the job now runs stage ``name`` (e.g. ``"cosim"``, ``"synth ecp5"``).

    Parameters
    ----------
    name : str
        What the job does from now on, in the words the display shows.
    """
    _append({"stage": str(name)})


def tool(what):
    """Announce that an external tool starts within the current stage (see :func:`tool_label`).

    Parameters
    ----------
    what : str
        The tool flows' description of the run, e.g. ``"ecp5: nextpnr (25k)"``.
    """
    _append({"tool": tool_label(what)})


_NEXTPNR = re.compile(r"(\w+): nextpnr \(([^)]*)\)")


def tool_label(what):
    """The display's words for a tool run described as the synthesis flows describe it.

    Parameters
    ----------
    what : str
        ``"<target>: yosys"``, ``"<family> fmax: yosys"``, ``"<family> ports: yosys"``,
        ``"<family>: nextpnr (<device>)"``, ``"energy netlist: yosys"``; anything else is kept.

    Returns
    -------
    str
        e.g. ``"nextpnr-ecp5 (25k)"`` or ``"Yosys, netlist for place and route"``.
    """
    match = _NEXTPNR.fullmatch(what)
    if match:
        return f"nextpnr-{match.group(1)} ({match.group(2)})"
    if what.endswith(": yosys"):
        job = what[:-len(": yosys")]
        if job.endswith(" fmax"):
            return "Yosys, netlist for place and route"
        if job == "ports" or job.endswith(" ports"):
            return "Yosys, reading the ports"
        if job == "energy netlist":
            return "Yosys, gate netlist"
        return f"Yosys synth ({job})"
    return what


def _append(entry):
    path = os.environ.get(ENV)
    if not path:
        return
    entry["t"] = time.time()  # the reader runs on the same machine: its clock is ours
    try:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:  # progress is never worth failing a job for
        pass


def read_new(path, offset=0):
    """The announcements appended to ``path`` since byte ``offset``.

    Parameters
    ----------
    path : path-like
        The job's stage file (it may not exist yet).
    offset : int
        Where the previous call stopped.

    Returns
    -------
    (list, int)
        ``[(kind, text, age_s), ...]`` in order, kind ``"stage"`` or ``"tool"`` and ``age_s`` the
        seconds since it was announced; and the offset to pass next time (a line not yet
        complete is left for then).
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    now, events = time.time(), []
    for line in data[:end].splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        kind = "stage" if "stage" in entry else "tool" if "tool" in entry else None
        if kind is not None:
            events.append((kind, str(entry[kind]), max(0.0, now - float(entry.get("t", now)))))
    return events, offset + end
