"""Issue 14, the rest (docs/search.md): the front synthesized inside ``qhw search``, and the
chosen GRU configuration as a whole network (features -> GRU -> dense -> class scores) through
the network flow: its golden model against the search's integer classifier, its RTL against
the golden model with cycles per utterance, the operation-count energy; synthesis for ECP5 and
iCE40 and the gate-level energy behind ``slow``:

    .venv/bin/python -m pytest tests/test_search_network.py -m slow     # about 4 minutes cold

A digits (tiny) classifier is trained here (its task, float model and QAT in a private cache,
a few seconds); the Verilator builds and syntheses use the usual caches.
"""

import csv
import json
import re
import types

import numpy as np
import pytest

from qhw import cli, flow, registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import gru as g
from qhw.search import area as A

pytest.importorskip("torch")
pytest.importorskip("pymoo")

from qhw.search import export as E  # noqa: E402
from qhw.search import search as S  # noqa: E402

NAMES = g.FORMAT_NAMES
NETWORK = registry.get("network")
TINY_SIZE = {"input_size": 2, "hidden_size": 2, "macs": 1}
#: A mixed configuration: 4-bit weights, 5-bit input and state, 6-bit operators.
MIXED = {**{n: 6 for n in NAMES}, "weight": 4, "input": 5, "state": 5}
MACS = 8


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits (tiny) classifier of MIXED after 20 QAT steps, and its network."""
    root = tmp_path_factory.mktemp("qhwcache")
    with pytest.MonkeyPatch.context() as mp:   # the task and models only, not the tool caches
        mp.setenv("QHW_CACHE_DIR", str(root))
        model, ev, prepared = E.trained_model("digits", "tiny", MIXED, steps=20, batch=64,
                                              lr=1e-3, seed=0)
    steps = prepared.data.test.x.shape[1]
    desc = E.network_description(model, steps, macs=MACS, name="digits_gru")
    cfg = config_from_dict(NETWORK.config, desc)
    params = NETWORK.check_params(cfg, E.network_params(model, desc))
    return types.SimpleNamespace(model=model, ev=ev, prepared=prepared, desc=desc, cfg=cfg,
                                 params=params, steps=steps, test=prepared.data.test)


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    """A made-up area fit of a tiny GRU datapath (I = H = 2, M = 1: a synthesis is a few
    seconds), so that the search's front can be synthesized in a test."""
    coef = {"transistors": [60, 20, 2, 2, 10, 30, 40, 1, 5000],
            "LUT4": [1, 1, 0, 0, 1, 1, 2, 0.05, 100]}
    fit = A.GruAreaFit(dict(TINY_SIZE), dict(A.KWS_RANGES), coef, [], {},
                       {"transistors": {"mean_rel": 0.0, "max_rel": 0.0, "rms": 0.0}})
    p = tmp_path_factory.mktemp("fit") / "fit.json"
    p.write_text(json.dumps(fit.to_json()))
    return p


# --------------------------------------------------------------------- the exported network


def test_description_is_the_classifier(digits):
    cfg, model = digits.cfg, digits.model
    gru, head = cfg.layer("gru"), cfg.layer("head")
    assert cfg.steps == 8 and cfg.input["bits"] == 5 and cfg.input["signed"]
    assert gru.unit == "gru" and gru.config.output == "last" and gru.config.macs == MACS
    assert {n: gru.config.formats[n] for n in NAMES} == model.cfg.formats
    assert (gru.config.lut_bits, gru.config.sigmoid_range, gru.config.tanh_range) == (8, 8, 4)
    assert head.unit == "macconv" and head.config.output == "sum"
    assert (head.config.c_out, head.config.k) == (10, 32)    # 10 digits from 32 states
    assert head.config.act_bits == 5 and head.config.weight_bits == 8
    assert 32 % head.config.simd == 0 and head.config.simd <= MACS
    assert set(E.network_params(model)) == {"gru.weight_ih", "gru.weight_hh", "gru.bias_ih",
                                            "gru.bias_hh", "head.weights", "head.bias"}
    assert E.head_simd(48, 8) == 8 and E.head_simd(30, 8) == 6 and E.head_simd(7, 8) == 7


def test_golden_network_equals_integer_model(digits):
    """Every test utterance: the network's golden model (the composition of the GRU unit's and
    the dense layer's golden models) gives the integer classifier's logits bit for bit."""
    x = NETWORK.check_inputs(digits.cfg, E.network_inputs(digits.model, digits.test.x))
    logits = E.logits_of(NETWORK.golden(digits.cfg, digits.params, x))
    expected = digits.model.logits(digits.test.x)
    assert logits.shape == (len(digits.test), 10)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(np.argmax(logits, 1), digits.model.predict(digits.test.x))
    assert np.mean(np.argmax(logits, 1) == digits.test.y) == digits.ev["test_accuracy"]
    assert len(set(np.argmax(logits, 1))) > 3            # not a constant classifier


def test_written_files_round_trip(digits, tmp_path):
    paths = E.write_network(digits.model, digits.steps, tmp_path, "digits_gru", macs=MACS,
                            x=digits.test.x[:3], info={"note": 1})
    assert {p.name for p in tmp_path.iterdir()} == {
        "digits_gru.toml", "digits_gru.npz", "digits_gru.inputs.npy", "digits_gru.json"}
    cfg = flow.read_config(NETWORK, paths["config"])
    params = flow.read_params(NETWORK, cfg, paths["weights"])
    x = flow.read_inputs(NETWORK, cfg, paths["inputs"])
    np.testing.assert_array_equal(E.logits_of(NETWORK.golden(cfg, params, x)),
                                  digits.model.logits(digits.test.x[:3]))


def test_bias_beyond_the_dense_range_is_refused(digits):
    model = types.SimpleNamespace(**vars(digits.model))
    model.head_bias = digits.model.head_bias.copy()
    model.head_bias[3] = 1 << 40
    with pytest.raises(QhwInputError, match=r"head\.bias: .* beyond the dense layer's \d+-bit"):
        E.network_params(model, digits.desc)


def test_rtl_is_bit_exact_and_takes_the_modelled_cycles(digits, tmp_path, capsys):
    """``qhw rtlsim network ... --check`` on the exported files (cocotb, two utterances, no
    stalls): bit-exact, and the cycles, latency and cycles per utterance are the cost
    model's, T x (3H(ceil(I/M) + ceil(H/M)) + 24) for the GRU."""
    paths = E.write_network(digits.model, digits.steps, tmp_path, "digits_gru", macs=MACS,
                            x=digits.test.x[:2])
    rc = cli.main(["rtlsim", "network", "--config", str(paths["config"]), "--weights",
                   str(paths["weights"]), "--inputs", str(paths["inputs"]), "-o",
                   str(tmp_path / "y.npy"), "--check"])
    out = capsys.readouterr().out
    assert rc == 0 and "bit-exact against the golden model" in out, out
    cycles, model_cycles, latency = map(int, re.search(
        r"cycles (\d+) \(model (\d+) .*latency (\d+)", out).groups())
    steady = int(re.search(r"steady state: (\d+) cycles per frame", out).group(1))
    per_step = 3 * 32 * (1 + 4) + 24           # I = 8, H = 32, M = 8; 24 cycles of overhead
    perf = NETWORK.describe(digits.cfg)["estimate_network_performance"]
    assert steady == perf["max_cycles"] == 8 * per_step
    assert cycles == model_cycles
    assert latency == NETWORK.cost_model(digits.cfg, 2).latency
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(2, 10),
                                  digits.model.logits(digits.test.x[:2]))


def test_operation_energy_per_utterance(digits):
    """The Horowitz estimate of the network is its layers' (the GRU unit's on (N, T), the dense
    layer's on N frames), per utterance; its GRU multiplies are T x 3H(I + H) per utterance."""
    from qhw.synth import energy
    x = NETWORK.check_inputs(digits.cfg, E.network_inputs(digits.model, digits.test.x[:4]))
    net = energy.operation_energy(NETWORK, digits.cfg, 4, x)
    assert net["inferences"] == 4
    gru = digits.cfg.layer("gru").config
    head = digits.cfg.layer("head").config
    alone = (energy.operation_energy(registry.get("gru"), gru, (4, 8))["pj_total"]
             + energy.operation_energy(registry.get("macconv"), head, 4)["pj_total"])
    assert net["pj_total"] == pytest.approx(alone)
    muls = sum(o["count"] for o in net["operations"]
               if o["op"] == "mul" and "matrix products" in o["what"])
    assert muls == 4 * 8 * 3 * 32 * (8 + 32)
    assert net["pj_per_inference"] == pytest.approx(net["pj_total"] / 4)


# ---------------------------------------------------------------------- the chosen configuration


def _rec(acc, transistors, bits=None, synth=None):
    w = {n: bits or 5 for n in NAMES}
    r = {"widths": w, "val_error": 1 - acc, "transistors": transistors, "LUT4": None}
    if synth is not None:
        r["synth"] = {"generic": {"transistors": synth}}
    return r


def test_choose_least_area_within_one_point():
    ref = _rec(0.970, 240_000, bits=8)
    front = [_rec(0.946, 110_000), _rec(0.960, 131_000), _rec(0.963, 135_000),
             _rec(0.973, 214_000)]
    result = {"front": front, "homogeneous": [_rec(0.946, 117_000, bits=4), ref]}
    best, got_ref, kind = E.choose(result)
    assert best is front[1] and got_ref is ref and kind == "area-model transistors"
    # with the front synthesized, the synthesized figure decides
    for r, t in zip(front, (110_000, 150_000, 140_000, 212_000)):
        r["synth"] = {"generic": {"transistors": t}}
    best, _, kind = E.choose(result)
    assert best is front[2] and kind == "synthesized transistors"
    # a failed synthesis of an eligible point: the model's figures decide again
    front[3]["synth"] = {"generic": {"error": "RuntimeError: yosys failed"}}
    best, _, kind = E.choose(result)
    assert best is front[1] and kind == "area-model transistors"
    front[3]["synth"] = {"generic": {"transistors": 212_000}}
    summary = S.chosen_summary(result)
    assert summary["savings"]["transistors (model)"]["fewer"] == pytest.approx(1 - 135 / 240)
    with pytest.raises(QhwInputError, match="homogeneous 8-bit"):
        E.choose({"front": front, "homogeneous": [result["homogeneous"][0]]})
    assert S.chosen_summary({"front": front, "homogeneous": []}) is None


# --------------------------------------------------------- qhw search: front synthesis, export


TINY_SEARCH = {"task": "digits", "size": "tiny", "population": 6, "generations": 2,
               "steps": 5, "jobs": 1, "homogeneous": [4, 8]}


def _toml(path, fit, **extra):
    d = {**TINY_SEARCH, "area_fit": str(fit), **extra}
    path.write_text("[search]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.items())
                    + "\n")
    return path


def test_search_synthesizes_the_front_and_exports_the_chosen(tiny_fit, tmp_path, capsys,
                                                             monkeypatch):
    """The tiny search with the front synthesized (generic and ECP5, in this process) and the
    chosen configuration exported: the synthesized figures and the model's error in front.csv
    and the report; the exported network is the model the search evaluated. (A private cache
    for this test alone: its candidates and syntheses are computed, about 30 s.)"""
    monkeypatch.setenv("QHW_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "o"
    rc = cli.main(["search", str(_toml(tmp_path / "s.toml", tiny_fit)), "-o", str(out),
                   "--report", str(out), "--export-network", "digits_net", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    result = json.loads((out / "search.json").read_text())
    synthesis = result["front_synthesis"]
    assert synthesis["failed"] == 0 and synthesis["targets"] == ["generic", "ecp5"]
    rows = list(csv.DictReader(open(out / "front.csv")))
    assert len(rows) == len(result["front"]) >= 1
    for row in rows:
        synth_t, model_t = float(row["generic_transistors"]), float(row["transistors"])
        assert synth_t > 0 and float(row["ecp5_LUT4"]) > 0 and float(row["ecp5_FF"]) > 0
        assert float(row["transistors_model_error"]) == pytest.approx(
            (model_t - synth_t) / synth_t, abs=2e-5)
        assert synth_t == (float(row["generic_transistors_comb"])
                           + float(row["generic_transistors_seq"])
                           + float(row["generic_transistors_mem"]))
    # a synthesized point equals the same design synthesized directly (the synthesis cache)
    first = result["front"][0]
    direct = S.synth_point(A.gru_unit_config(first["widths"], TINY_SIZE), "generic")
    assert direct["transistors"] == first["synth"]["generic"]["transistors"]
    report = (out / "report.md").read_text()
    assert "transistors (synthesized)" in report and "## The chosen configuration" in report
    info = json.loads((out / "digits_net.json").read_text())
    chosen = result["chosen"]
    assert info["widths"] == chosen["widths"] and info["same_as_search"]
    assert info["val_accuracy"] == chosen["val_accuracy"]
    assert info["golden_network_equals_integer_model"]["logits"]
    assert "exported the chosen configuration as network 'digits_net'" in text
    cfg = flow.read_config(NETWORK, out / "digits_net.toml")
    params = flow.read_params(NETWORK, cfg, out / "digits_net.npz")
    x = flow.read_inputs(NETWORK, cfg, out / "digits_net.inputs.npy")
    assert x["activations"].shape == (8 * 8, 1, 1, 8)      # 8 test utterances of 8 steps
    assert NETWORK.golden(cfg, params, x).shape == (8, 1, 1, 10)
    # another configuration the search evaluated (the homogeneous reference, as the bench
    # exports it): the search's own model again, its golden network equal to its integer model
    ref = result["homogeneous"][0]
    assert ref["widths"] != chosen["widths"]
    info = E.export_chosen(result, out, "ref_net", widths=ref["widths"])
    assert info["widths"] == ref["widths"] and info["same_as_search"]
    assert info["val_accuracy"] == pytest.approx(1 - ref["val_error"], abs=1e-12)
    assert info["golden_network_equals_integer_model"]["logits"]
    with pytest.raises(QhwInputError, match="widths: not a configuration this search"):
        E.export_chosen(result, out, "nope", widths={k: 3 for k in ref["widths"]})


@pytest.mark.parametrize("extra, args, match", [
    ({"synthesize_front": "yes"}, [], "search.synthesize_front: must be true or false"),
    ({"front_targets": ["xc7"]}, [], "search.front_targets: must be a non-empty list"),
    ({"front_targets": []}, [], "search.front_targets"),
    ({}, ["--export-network", "bad name"], "--export-network: must be a name"),
    ({"homogeneous": [4, 6]}, ["--export-network", "n"], "search.homogeneous: --export-network"),
])
def test_bad_input_one_line(tiny_fit, tmp_path, capsys, extra, args, match):
    rc = cli.main(["search", str(_toml(tmp_path / "s.toml", tiny_fit, **extra)), "-o",
                   str(tmp_path / "o"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_front_synthesis_records_failures_and_model_error(tiny_fit, monkeypatch):
    """In this process, with a stand-in synthesis (no tools): records of the same widths are
    synthesized once and share the figures, a failed synthesis is recorded (type and first
    line) and counted, not raised, and the model's error is (model - synthesized) /
    synthesized on the figures that were synthesized."""
    fit = A.GruAreaFit.from_json(json.loads(tiny_fit.read_text()))
    calls = []

    def fake_synth(config, target, seed=0):
        calls.append((config["formats"]["weight"][0], target))
        if target == "ecp5" and config["formats"]["weight"][0] == 5:
            raise RuntimeError("nextpnr said no\nsecond line")
        return {"transistors": 1000, "LUT4": 50}

    monkeypatch.setattr(S, "synth_point", fake_synth)
    recs = [{"widths": {n: b for n in NAMES}, "transistors": t, "LUT4": 40.0}
            for b, t in ((4, 1100.0), (4, 1100.0), (5, 900.0))]
    summary = S.synthesize_front(recs, fit, ("generic", "ecp5"))
    assert sorted(calls) == [(4, "ecp5"), (4, "generic"), (5, "ecp5"), (5, "generic")]
    assert summary["points"] == 2 and summary["failed"] == 1
    assert recs[0]["synth"] == recs[1]["synth"] == {"generic": {"transistors": 1000, "LUT4": 50},
                                                    "ecp5": {"transistors": 1000, "LUT4": 50}}
    assert recs[2]["synth"]["ecp5"] == {"error": "RuntimeError: nextpnr said no"}
    assert recs[0]["model_error"] == pytest.approx({"transistors": 0.1, "LUT4": -0.2})
    assert recs[2]["model_error"] == pytest.approx({"transistors": -0.1})    # no ECP5 LUT4
    assert summary["transistors_error"] == pytest.approx(
        {"mean_abs": 0.1, "max_abs": 0.1, "points": 2})
    assert summary["LUT4_error"] == pytest.approx({"mean_abs": 0.2, "max_abs": 0.2, "points": 1})


# ------------------------------------------------------------------------------------ slow


@pytest.mark.slow
def test_front_synthesis_through_the_executor(tiny_fit):
    """Two tiny configurations on an embedded Dask cluster of 2 workers: the same figures as
    in this process (the synthesis cache), and a failing synthesis (a target that does not
    exist) is recorded, not raised."""
    from qhw.explore.executor import Executor
    fit = A.GruAreaFit.from_json(json.loads(tiny_fit.read_text()))
    recs = [{"widths": {n: b for n in NAMES}, "transistors": 1.0, "LUT4": 1.0}
            for b in (4, 5)]
    with Executor(jobs=2) as ex:
        summary = S.synthesize_front(recs, fit, ("generic", "ecp5", "no_such_target"),
                                     executor=ex)
    assert summary["points"] == 2 and summary["failed"] == 2
    for r in recs:
        assert set(r["synth"]["no_such_target"]) == {"error"}
        cfg = A.gru_unit_config(r["widths"], TINY_SIZE)
        assert r["synth"]["generic"] == S.synth_point(cfg, "generic")
        assert r["model_error"]["transistors"] == pytest.approx(
            1 / r["synth"]["generic"]["transistors"] - 1)


@pytest.mark.slow
def test_network_synthesis_ecp5_ice40(digits):
    """The digits network synthesized whole and per layer for ECP5 (with place and route) and
    iCE40: figures present, the GRU the bulk of the area, the head's multipliers in hard
    blocks."""
    from qhw import synth_flow
    for target, lut in (("ecp5", "LUT4"), ("ice40", "LUT4")):
        r = synth_flow.synthesize_unit(NETWORK, digits.cfg, digits.params, target, fmax=True)
        parts = {p["name"]: p["figures"] for p in r["parts"]}
        assert r["figures"][lut] > 0 and parts["gru"][lut] > parts["head"][lut]
        assert r["figures"].get("fmax_mhz", 0) > 0 or "fmax" in r


@pytest.mark.slow
def test_rtl_under_stalls_and_gate_level_energy(digits):
    """Three utterances under 30 % input stalls and back-pressure, bit-exact; the gate-level
    toggle energy of one utterance (the netlist's own check against the golden model)."""
    from qhw.synth import energy
    x = NETWORK.check_inputs(digits.cfg, E.network_inputs(digits.model, digits.test.x[:3]))
    run, mismatch = flow.check_rtl(NETWORK, digits.cfg, digits.params, x, stall_in=0.3,
                                   stall_out=0.3, seed=3)
    assert mismatch is None
    one = NETWORK.check_inputs(digits.cfg, E.network_inputs(digits.model, digits.test.x[:1]))
    measured = energy.toggle_energy(NETWORK, digits.cfg, digits.params, one)
    assert measured["inferences"] == 1 and measured["pj_per_inference"] > 0
    assert measured["cycles"] == NETWORK.cost_model(digits.cfg, 1).expected
