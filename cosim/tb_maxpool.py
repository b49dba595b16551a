"""cocotb testbench of the maxpool unit: the generic stream job (see :mod:`qhw.cosim.streams`)."""

import cocotb

from qhw.cosim.streams import run_stream_job


@cocotb.test()
async def maxpool(dut):
    """Drive and collect maxpool's streams as described by the job file in ``$QHW_JOB``."""
    await run_stream_job(dut)
