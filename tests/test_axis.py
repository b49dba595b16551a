"""The AXI4-Stream wrapper (``qhw generate --axis``): one configuration of every unit kind and a
network, driven through cocotbext-axi's AxiStreamSource / AxiStreamSink with idle input cycles
and back-pressure, bit-exact against the golden model with tlast delimiting every output frame;
the port names and the manifest's byte layout; and the check fails on a wrong expectation."""

import json

import numpy as np
import pytest

pytest.importorskip("cocotbext.axi")

from qhw import cli, flow, registry  # noqa: E402
from qhw.config import config_from_dict  # noqa: E402

CASES = [(name, sorted(registry.get(name).regression)[0]) for name in registry.names()]


@pytest.mark.parametrize("name, config", CASES)
def test_bit_exact_through_cocotbext_axi(name, config):
    unit = registry.get(name)
    cfg = config_from_dict(unit.config, unit.regression[config])
    rng = np.random.default_rng(3)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, rng, 2))
    got = flow.rtlsim_axis(unit, cfg, params, x, stall_in=0.3, stall_out=0.3, seed=7)
    expected = unit.golden(cfg, params, x)
    assert flow.first_mismatch(unit, got, expected, cfg) is None


def test_ports_and_manifest(tmp_path, capsys):
    assert cli.main(["generate", "bamconv", "--axis", "-o", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    names = {p["name"]: p for p in m["ports"]}
    assert {"aclk", "aresetn", "s_axis_i_tdata", "s_axis_i_tvalid", "s_axis_i_tready",
            "s_axis_i_tlast", "m_axis_o_tdata", "m_axis_o_tvalid", "m_axis_o_tready",
            "m_axis_o_tlast"} == set(names)
    assert "clk" not in names and m["reset"]["kind"] == "synchronous, active low"
    for s in m["axis"]["streams"].values():
        assert s["tdata_bits"] % 8 == 0 and s["payload_bits"] <= s["tdata_bits"] < \
            s["payload_bits"] + 8
        assert names[s["tdata"]]["width"] == s["tdata_bits"]
    assert "on word 64 of 64" in m["axis"]["streams"]["o"]["tlast"]  # 8x8 outputs per frame
    text = (tmp_path / f"{m['top']}.v").read_text()
    assert f"module {m['top']}(" in text and "m_axis_o_tlast" in text
    capsys.readouterr()


def test_a_wrong_expectation_fails():
    unit = registry.get("maxpool")
    cfg = config_from_dict(unit.config, unit.regression[CASES[[n for n, _ in CASES].index(
        "maxpool")][1]])
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, np.random.default_rng(0), 1))
    got = flow.rtlsim_axis(unit, cfg, {}, x)
    wrong = unit.golden(cfg, {}, x).copy()
    wrong.flat[-1] ^= 1
    assert flow.first_mismatch(unit, got, wrong, cfg) is not None
