"""cocotb testbench of any core behind its AXI4-Stream wrapper (``qhw generate --axis``), built on
cocotbext-axi: an ``AxiStreamSource`` per input stream and an ``AxiStreamSink`` per output
stream, with pause generators for idle input cycles and back-pressure, as a user's own
testbench would drive the core.

It reads the same job file as :func:`qhw.cosim.streams.run_stream_job` (``QHW_JOB``), plus
``frame_words`` (output words per frame), sends every input word as one beat (its tdata bytes,
little-endian), receives the outputs frame by frame as ``tlast`` delimits them, and records a
protocol error for any frame whose length is not ``frame_words``. Transfer cycles are not
recorded (the stream testbench measures timing; this one checks the interface).
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def _pauses(rng, probability):
    while True:
        yield rng.random() < probability


@cocotb.test()
async def axis(dut):
    """Drive and collect the wrapped core's AXI4-Stream ports as the job file describes."""
    with open(os.environ["QHW_JOB"]) as f:
        job = json.load(f)
    rng = random.Random(job["seed"])
    Clock(dut.aclk, 10, unit="ns").start()
    dut.aresetn.value = 0
    sources, sinks = {}, {}
    for name in job["inputs"]:
        src = AxiStreamSource(AxiStreamBus.from_prefix(dut, f"s_axis_{name}"), dut.aclk,
                              dut.aresetn, reset_active_level=False)
        if job["stall_in"]:
            src.set_pause_generator(_pauses(random.Random(rng.random()), job["stall_in"]))
        sources[name] = src
    for name in job["expected_words"]:
        sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, f"m_axis_{name}"), dut.aclk,
                             dut.aresetn, reset_active_level=False)
        if job["stall_out"]:
            sink.set_pause_generator(_pauses(random.Random(rng.random()), job["stall_out"]))
        sinks[name] = sink
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await RisingEdge(dut.aclk)

    for name, words in job["inputs"].items():
        lanes = len(getattr(dut, f"s_axis_{name}_tdata")) // 8
        for w in words:
            await sources[name].send(AxiStreamFrame(int(w).to_bytes(lanes, "little")))

    outputs = {name: [] for name in sinks}
    errors = []

    async def collect(name):
        lanes = len(getattr(dut, f"m_axis_{name}_tdata")) // 8
        per_frame = job["frame_words"][name]
        while len(outputs[name]) < job["expected_words"][name]:
            frame = await sinks[name].recv()
            data = bytes(frame.tdata)
            if len(data) != per_frame * lanes:
                errors.append({"stream": name, "error": f"a frame of {len(data) // lanes} "
                               f"words between tlast, expected {per_frame}"})
            outputs[name] += [int.from_bytes(data[i:i + lanes], "little")
                              for i in range(0, len(data), lanes)]

    tasks = [cocotb.start_soon(collect(name)) for name in sinks]
    timed_out = False
    try:
        await with_timeout(Combine(*tasks), 10 * int(job["timeout_cycles"]), "ns")
    except SimTimeoutError:
        timed_out = True
    await ClockCycles(dut.aclk, int(job["extra_cycles"]))
    surplus = {name: int(not sinks[name].empty()) for name in sinks}
    result = {"outputs": outputs, "in_times": {n: [] for n in job["inputs"]},
              "out_times": {n: [] for n in sinks}, "surplus": surplus,
              "protocol_errors": errors, "timed_out": timed_out, "cycles_run": 0}
    with open(job["result"], "w") as f:
        json.dump(result, f)
