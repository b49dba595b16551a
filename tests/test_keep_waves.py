"""``--qhw-waves DIR`` / ``QHW_KEEP_WAVES``: a failing RTL run leaves its FST waveform in DIR and
says so with the seed and a rerun command; a passing run leaves nothing."""

import dataclasses

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict


def _case():
    unit = registry.get("requant")
    cfg = config_from_dict(unit.config, unit.regression["u8_c4_pe1"])
    params = unit.random_params(cfg, np.random.default_rng(0))
    x = unit.check_inputs(cfg, unit.random_inputs(cfg, np.random.default_rng(1), 1))
    return unit, cfg, params, x


def test_passing_run_keeps_nothing_failing_run_keeps_its_waves(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QHW_KEEP_WAVES", str(tmp_path / "waves"))
    unit, cfg, params, x = _case()
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.2, seed=4)
    assert flow.first_mismatch(unit, run, unit.golden(cfg, params, x), cfg) is None
    assert not list((tmp_path / "waves").glob("*.fst"))
    # A golden model that disagrees with the hardware: the run counts as failing.
    wrong = dataclasses.replace(unit, golden=lambda c, p, i: unit.golden(c, p, i) + 1)
    flow.rtlsim(wrong, cfg, params, x, stall_in=0.2, seed=4)
    kept = list((tmp_path / "waves").glob("requant-*.fst"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    err = capsys.readouterr().err
    assert str(kept[0]) in err and "seed 4" in err and "rerun: " in err
    assert "test_keep_waves.py::test_passing_run_keeps_nothing" in err
