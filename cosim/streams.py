"""cocotb side of the stream cosimulation: drive input streams, collect output streams.

A unit's testbench module is just::

    import cocotb
    from qhw.cosim.streams import run_stream_job

    @cocotb.test()
    async def binconv(dut):
        await run_stream_job(dut)

:func:`run_stream_job` reads the job JSON named by env var ``QHW_JOB`` (written by
:func:`qhw.cosim.runner.simulate`; the fields are listed in that module's docstring), runs it and
writes the result JSON named in the job.

Timing model. The whole testbench is one coroutine that awaits ``RisingEdge(clk)`` once per
cycle. cocotb's Verilator main loop fires the edge callbacks after the clock changed but
*before* the model is evaluated for it, so the values read there are the values sampled by the
edge (a transfer happened on this edge iff valid and ready read high), and writes made there
(inertial writes) take effect after the edge, i.e. they are what the next edge samples. The
exact cycle counts checked in tests/test_cosim_infra.py depend on this, so they guard it.
Cycle 0 is the first rising edge at which ``rst`` is sampled low.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

__all__ = ["run_stream_job"]

RESET_CYCLES = 4


class _Port:
    """Fast accessors for one signal.

    cocotb 2's ``handle.value`` goes through LogicArray objects and range checks; per cycle
    that dominates the testbench's cost. With ``COCOTB_TRUST_INERTIAL_WRITES`` (which cocotb's
    Verilator runner sets) a deposit is exactly ``set_signal_val_*`` on the GPI object, so the
    raw calls below are equivalent; without it we fall back to the public API.
    """

    __slots__ = ("handle", "width", "raw", "fast", "_fmt")

    def __init__(self, handle):
        self.handle = handle
        self.width = len(handle)
        self.raw = getattr(handle, "_handle", None)
        import cocotb.handle as ch
        # QHW_COSIM_PUBLIC_API=1 forces the public API (to rule out the fast path when debugging).
        self.fast = (bool(getattr(ch, "_trust_inertial", False)) and self.raw is not None
                     and os.environ.get("QHW_COSIM_PUBLIC_API") != "1")
        self._fmt = f"0{self.width}b"

    def read(self) -> int:
        """Unsigned value; raises ValueError if any bit is X/Z."""
        if self.fast:
            return int(self.raw.get_signal_val_binstr(), 2)
        value = self.handle.value  # Logic for 1-bit ports, LogicArray otherwise
        return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)

    def write(self, value: int) -> None:
        if self.fast:
            if self.width <= 32:
                self.raw.set_signal_val_int(0, value)  # 0: _GPISetAction.DEPOSIT
            else:
                self.raw.set_signal_val_binstr(0, format(value, self._fmt))
        else:
            self.handle.value = value


class _In:
    __slots__ = ("name", "words", "n", "idx", "valid", "v", "r", "p", "mask", "times")


class _Out:
    __slots__ = ("name", "expected", "ready", "v", "r", "p", "pending", "last", "words", "times")


def _get(dut, name):
    try:
        return getattr(dut, name)
    except AttributeError:
        raise AttributeError(f"the design has no port {name!r}") from None


async def run_stream_job(dut, job_path: str | None = None) -> dict:
    """Run the stream job named by ``$QHW_JOB`` on ``dut`` and write its result JSON.

    Parameters
    ----------
    dut:
        cocotb's handle of the top module; it must have ``clk``, ``rst`` and, for each stream
        ``X`` in the job, ``X__valid``, ``X__ready`` and ``X__payload``.
    job_path:
        Path of the job JSON; default ``os.environ["QHW_JOB"]``.

    Returns
    -------
    dict
        The result that was also written to the job's ``result`` path.
    """
    job_path = job_path or os.environ["QHW_JOB"]
    with open(job_path) as f:
        job = json.load(f)
    rng = random.Random(job["seed"])
    rand = rng.random
    getrandbits = rng.getrandbits
    stall_in = float(job["stall_in"])
    stall_out = float(job["stall_out"])
    timeout = int(job["timeout_cycles"])
    extra = int(job.get("extra_cycles", 16))
    # "hold": an idle input payload keeps its last word (zero during reset) instead of garbage.
    garbage = job.get("idle_payload", "random") != "hold"

    clk = _get(dut, "clk")
    rst = _Port(_get(dut, "rst"))

    ins: list[_In] = []
    for name, words in job["inputs"].items():
        s = _In()
        s.name, s.words, s.n, s.idx, s.valid = name, words, len(words), 0, False
        s.v = _Port(_get(dut, f"{name}__valid"))
        s.r = _Port(_get(dut, f"{name}__ready"))
        s.p = _Port(_get(dut, f"{name}__payload"))
        s.mask = (1 << s.p.width) - 1
        s.times = []
        for i, w in enumerate(words):
            if w > s.mask:
                raise ValueError(f"inputs[{name!r}][{i}] = {w} does not fit in {s.p.width} bits")
        ins.append(s)
    outs: list[_Out] = []
    for name, count in job["expected_words"].items():
        o = _Out()
        o.name, o.expected, o.ready, o.pending, o.last = name, int(count), False, False, 0
        o.v = _Port(_get(dut, f"{name}__valid"))
        o.r = _Port(_get(dut, f"{name}__ready"))
        o.p = _Port(_get(dut, f"{name}__payload"))
        o.words, o.times = [], []
        outs.append(o)
    # Monitors: (valid, payload) pairs sampled every cycle; a word is recorded when valid is
    # high (a probe's valid marks a transfer inside the design).
    monitors = [(name, _Port(_get(dut, f"{name}__valid")), _Port(_get(dut, f"{name}__payload")))
                for name in job.get("monitors", [])]
    monitored: dict[str, list[int]] = {name: [] for name, _, _ in monitors}
    errors: list[dict] = []

    # Reset: rst high, every valid/ready low, garbage on the input payloads.
    rst.write(1)
    for s in ins:
        s.v.write(0)
        s.p.write(getrandbits(s.p.width) if garbage else 0)
    for o in outs:
        o.r.write(0)
    Clock(clk, 10, unit="ns").start()
    edge = RisingEdge(clk)
    for _ in range(RESET_CYCLES):
        await edge
    rst.write(0)

    # Drives for cycle 0 (the same decisions the loop makes for the following cycles).
    for s in ins:
        if s.n and rand() >= stall_in:
            s.valid = True
            s.v.write(1)
            s.p.write(s.words[0])
    for o in outs:
        o.ready = rand() >= stall_out
        o.r.write(int(o.ready))

    remaining = sum(o.expected for o in outs)
    done_at = None  # cycle at which the last expected word arrived
    timed_out = False
    cycle = -1
    t0 = time.perf_counter()
    while True:
        await edge
        cycle += 1
        # --- inputs: did the edge take our word? then choose the next cycle's drive.
        for s in ins:
            if s.valid:
                if s.r.read():
                    s.times.append(cycle)
                    s.idx += 1
                else:
                    continue  # hold valid and payload until the transfer
            # valid is (now) low: offer the next word, or stall with garbage on the payload
            if s.idx < s.n and rand() >= stall_in:
                s.p.write(s.words[s.idx])
                if not s.valid:
                    s.v.write(1)
                    s.valid = True
            else:
                if garbage:
                    s.p.write(getrandbits(s.p.width))
                if s.valid:
                    s.v.write(0)
                    s.valid = False
        for name, mv, mp in monitors:
            if mv.read():
                try:
                    monitored[name].append(mp.read())
                except ValueError:
                    monitored[name].append(-1)
        # --- outputs: collect, check that a pending word is held, choose the next ready.
        for o in outs:
            if o.v.read():
                try:
                    p = o.p.read()
                except ValueError:
                    p = -1
                    errors.append({"cycle": cycle, "stream": o.name,
                                   "error": "payload has X/Z bits while valid"})
                if o.pending and p != o.last:
                    errors.append({"cycle": cycle, "stream": o.name,
                                   "error": f"payload changed while valid and not ready "
                                            f"(was {o.last:#x}, now {p:#x})"})
                if o.ready:
                    o.words.append(p)
                    o.times.append(cycle)
                    o.pending = False
                    if len(o.words) <= o.expected:
                        remaining -= 1
                else:
                    o.pending = True
                    o.last = p
            elif o.pending:
                errors.append({"cycle": cycle, "stream": o.name,
                               "error": "valid dropped before the transfer"})
                o.pending = False
            # After all expected words, keep ready high to catch surplus words quickly.
            ready = done_at is not None or rand() >= stall_out
            if ready != o.ready:
                o.ready = ready
                o.r.write(int(ready))
        if done_at is None and remaining <= 0:
            done_at = cycle
            for o in outs:
                if not o.ready:
                    o.ready = True
                    o.r.write(1)
        if done_at is not None and cycle >= done_at + extra:
            break
        if cycle + 1 >= timeout:
            timed_out = True
            break
    wall = time.perf_counter() - t0
    cycles_run = cycle + 1

    result = {
        "outputs": {o.name: o.words for o in outs},
        "monitored": monitored,
        "in_times": {s.name: s.times for s in ins},
        "out_times": {o.name: o.times for o in outs},
        "surplus": {o.name: max(0, len(o.words) - o.expected) for o in outs},
        "protocol_errors": errors,
        "timed_out": timed_out,
        "cycles_run": cycles_run,
        "wall_s": wall,
        "cycles_per_s": cycles_run / wall if wall > 0 else 0.0,
    }
    with open(job["result"], "w") as f:
        json.dump(result, f)
    dut._log.info("stream job: %d cycles in %.3f s (%.0f cycles/s), %d protocol errors%s",
                  cycles_run, wall, result["cycles_per_s"], len(errors),
                  ", TIMED OUT" if timed_out else "")
    return result
