"""Synthesis sanity of ``gru``: the ECP5 flow keeps the whole datapath of a narrow configuration.

An all-4-bit GRU once reported 44 LUT4 and 61 FF on ECP5 against 763 LUT on xc7: synth_ecp5's
cmp2lut step (Yosys 0.58) mapped the signed saturation comparisons of the 4-bit narrowings as
unsigned ones, the state update folded to a constant and everything feeding it was removed
(tests/test_synth.py checks the comparison mapping itself; synth/scripts/signed_cmp.v is the
workaround). Here the small all-4-bit regression configuration goes through both FPGA flows (no
place and route, no cache: about 35 s cold) and the two flip-flop counts, which count the
registers of the same RTL, must agree within a factor of two; the ECP5 logic (LUT4, CCU2C as two
LUT4 sites) must not fall far below the xc7 LUTs.
"""

import numpy as np

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.synth import flows

UNIT = registry.get("gru")


def test_ecp5_keeps_the_narrow_datapath(tmp_path):
    cfg = config_from_dict(UNIT.config, UNIT.regression["all4_lut_m2"])
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, np.random.default_rng(0)))
    gen = flow.generate(UNIT, cfg, params)
    ecp5 = flows.synthesize(gen.verilog, gen.top, "ecp5", tmp_path, fmax=False)["figures"]
    xc7 = flows.synthesize(gen.verilog, gen.top, "xc7", tmp_path)["figures"]
    # The state alone (h, h', the rotating copy of h) is 3*H*Bh flip-flops.
    state_bits = 3 * cfg.hidden_size * cfg.fmt("state").total
    assert ecp5["FF"] >= state_bits, (ecp5, xc7)
    assert xc7["FF"] / 2 <= ecp5["FF"] <= 2 * xc7["FF"], (ecp5, xc7)
    assert ecp5["LUT4"] + 2 * ecp5["CCU2C"] >= xc7["LUT"] / 4, (ecp5, xc7)
