"""cocotb testbench of the globalpool unit: the generic stream job (:mod:`qhw.cosim.streams`)."""

import cocotb

from qhw.cosim.streams import run_stream_job


@cocotb.test()
async def globalpool(dut):
    """Drive and collect globalpool's streams as described by the job file in ``$QHW_JOB``."""
    await run_stream_job(dut)
