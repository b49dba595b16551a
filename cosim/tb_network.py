"""cocotb testbench of the network unit: the generic stream job (see :mod:`qhw.cosim.streams`)."""

import cocotb

from qhw.cosim.streams import run_stream_job


@cocotb.test()
async def network(dut):
    """Drive and collect the network's streams (and record its probes) as the job file says."""
    await run_stream_job(dut)
