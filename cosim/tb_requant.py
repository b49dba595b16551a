"""cocotb testbench of the requant unit: the generic stream job (see :mod:`qhw.cosim.streams`)."""

import cocotb

from qhw.cosim.streams import run_stream_job


@cocotb.test()
async def requant(dut):
    """Drive and collect requant's streams as described by the job file in ``$QHW_JOB``."""
    await run_stream_job(dut)
