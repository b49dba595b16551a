"""Property-based test of the command line's contract (Hypothesis): malformed configs, weight
files and input arrays thrown at every unit's ``qhw golden`` end with exit status 0 and a
correct output file, or exit status 2 and exactly one line ``qhw: error: ...``; never a
traceback, no output file unless the command succeeded, and a successful output equal to the
golden model's on what the files hold.

``qhw generate`` and ``qhw rtlsim`` get the same treatment with fewer examples, each with at
least one malformed file (their successful runs take seconds: the regression covers those); a
success there must still be right (the manifest's config is the file's, the simulated outputs
the golden model's)."""

import io
import json
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from qhw import cli, registry  # noqa: E402
from qhw.config import config_from_dict  # noqa: E402

# The network's golden model is a composition of the others; its own malformed descriptions
# are tested in tests/test_network_golden.py.
UNITS = [n for n in registry.names() if n != "network"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=2),
    max_leaves=6)


@st.composite
def case(draw, name, malformed=False):
    """(config dict, weights kind, inputs kind, seed); ``malformed``: at least one is bad."""
    unit = registry.get(name)
    cfg_data = dict(unit.default_config)
    how = draw(st.sampled_from(["keep"] * 4 + ["change", "change", "drop", "add"]))
    keys = sorted(cfg_data)
    if how == "change":
        key = draw(st.sampled_from(keys))
        cfg_data[key] = draw(json_values | st.integers(-3, 70))
    elif how == "drop":
        cfg_data.pop(draw(st.sampled_from(keys)))
    elif how == "add":
        cfg_data[draw(st.text(min_size=1, max_size=5))] = draw(json_values)
    weights = draw(st.sampled_from(["good"] * 6 + ["none", "bad_array", "extra", "bytes",
                                                   "empty"]))
    inputs = draw(st.sampled_from(["good"] * 6 + ["shape", "range", "float", "bytes", "empty"]))
    if malformed and how == "keep" and weights in ("good", "none") and inputs == "good":
        which = draw(st.sampled_from(["weights", "inputs"]))
        if which == "weights":
            weights = draw(st.sampled_from(["bad_array", "extra", "bytes", "empty"]))
        else:
            inputs = draw(st.sampled_from(["shape", "range", "float", "bytes", "empty"]))
    return cfg_data, weights, inputs, draw(st.integers(0, 2 ** 16))


def _write(folder, unit, cfg_data, weights, inputs, seed, command="golden"):
    rng = np.random.default_rng(seed)
    cfg = config_from_dict(unit.config, unit.default_config)
    (folder / "c.json").write_text(json.dumps(cfg_data))
    params = unit.random_params(cfg, rng)
    if weights == "bad_array" and params:
        key = sorted(params)[0]
        params[key] = np.asarray(params[key]).reshape(-1)[:1] + 10 ** 6
    elif weights == "extra":
        params["surprise"] = np.zeros(3)
    if weights == "bytes":
        (folder / "w.npz").write_bytes(bytes(rng.integers(0, 256, 40, dtype=np.uint8)))
    elif weights == "empty":
        (folder / "w.npz").write_bytes(b"")
    elif weights != "none":
        np.savez(folder / "w.npz", **params)
    x = unit.random_inputs(cfg, rng, 2)
    if isinstance(x, dict):
        x = x.get("activations", next(iter(x.values())))
    x = np.asarray(x)
    if inputs == "shape":
        x = x.reshape(-1)[: max(1, x.size - 1)]
    elif inputs == "range":
        x = x.astype(np.int64) + 10 ** 9
    elif inputs == "float":
        x = x.astype(np.float64) + 0.5
    if inputs == "bytes":
        (folder / "x.npy").write_bytes(b"\x93NUMPY garbage")
    elif inputs == "empty":
        (folder / "x.npy").write_bytes(b"")
    else:
        np.save(folder / "x.npy", x)
    if command == "generate":
        argv = ["generate", unit.name, "--config", str(folder / "c.json"), "-o",
                str(folder / "y.npy")]
    else:
        argv = [command, unit.name, "--config", str(folder / "c.json"), "--inputs",
                str(folder / "x.npy"), "-o", str(folder / "y.npy")]
        argv += ["--fast"] if command == "rtlsim" else []
    if weights != "none":
        argv += ["--weights", str(folder / "w.npz")]
    return argv


def _contract(unit, command, c):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        argv = _write(folder, unit, *c, command=command)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(argv)  # an exception here is a traceback: the test fails
        # Only the note "no --config given" may come before an error; configs are always given.
        text = err.getvalue()
        assert code in (0, 2), (code, text)
        if code == 2:
            assert text.count("\n") == 1 and text.startswith("qhw: error: "), text
            assert not (folder / "y.npy").exists()
            return
        # Success: the output is right for what the files hold.
        cfg = config_from_dict(unit.config, json.loads((folder / "c.json").read_text()))
        params = dict(np.load(folder / "w.npz")) if (folder / "w.npz").exists() else {}
        params = unit.check_params(cfg, params)
        if command == "generate":
            manifest = json.loads((folder / "y.npy" / "manifest.json").read_text())
            assert config_from_dict(unit.config, manifest["config"]) == cfg
            return
        x = unit.check_inputs(cfg, np.load(folder / "x.npy"))
        np.testing.assert_array_equal(np.load(folder / "y.npy"), unit.golden(cfg, params, x))


@pytest.mark.parametrize("name", UNITS)
def test_golden_cli_contract(name):
    unit = registry.get(name)

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case(name))
    def check(c):
        _contract(unit, "golden", c)

    check()


@pytest.mark.parametrize("command", ["generate", "rtlsim"])
@pytest.mark.parametrize("name", UNITS)
def test_generate_and_rtlsim_cli_contract(name, command):
    unit = registry.get(name)

    @settings(max_examples=8, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case(name, malformed=True))
    def check(c):
        _contract(unit, command, c)

    check()
