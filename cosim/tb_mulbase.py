"""cocotb testbench of the mulbase unit: the generic stream job (see :mod:`qhw.cosim.streams`)."""

import cocotb

from qhw.cosim.streams import run_stream_job


@cocotb.test()
async def mulbase(dut):
    """Drive and collect mulbase's streams as described by the job file in ``$QHW_JOB``."""
    await run_stream_job(dut)
