"""The format search (issue 14 part B, docs/search.md): the GRU area model over formats, the
NSGA-II search on a tiny budget (digits tiny, a few individuals, two generations), caching and
resume, and the ``qhw search`` command's outputs and one-line errors."""

import csv
import json

import numpy as np
import pytest

from qhw import cli
from qhw.errors import QhwInputError
from qhw.golden import gru as g
from qhw.search import area as A

pytest.importorskip("torch")
pytest.importorskip("pymoo")

from qhw.search import search as S  # noqa: E402

NAMES = g.FORMAT_NAMES
TINY_SIZE = {"input_size": 2, "hidden_size": 2, "macs": 1}



@pytest.fixture(scope="module")
def fit_path(tmp_path_factory):
    """A made-up area fit (positive coefficients): the search only needs predict()."""
    coef = {"transistors": [60, 20, 2, 2, 10, 30, 40, 1, 5000],
            "LUT4": [1, 1, 0, 0, 1, 1, 2, 0.05, 100]}
    fit = A.GruAreaFit(dict(A.KWS_SIZE), dict(A.KWS_RANGES), coef, [], {},
                       {"transistors": {"mean_rel": 0.0, "max_rel": 0.0, "rms": 0.0}})
    p = tmp_path_factory.mktemp("fit") / "fit.json"
    p.write_text(json.dumps(fit.to_json()))
    return p


TINY = {"task": "digits", "size": "tiny", "population": 6, "generations": 2, "steps": 5,
        "jobs": 1, "homogeneous": [4, 8], "synthesize_front": False}   # synthesized: see
# tests/test_search_network.py (this fit is of the KWS-size datapath, about 50 s a synthesis)


# ------------------------------------------------------------------------------ area model


def test_features_and_model_size():
    f4, f8 = A.features({n: 4 for n in NAMES}), A.features({n: 8 for n in NAMES})
    assert f8["mac_mult"] == 4 * f4["mac_mult"] == 8 * 8 * 8
    assert f8["weight_bits"] == 2 * f4["weight_bits"] == 3 * 48 * (5 + 6) * 8 * 8
    assert f8["table_bits"] == 256 * 24 and f4["const"] == 1
    w = {n: 8 for n in NAMES} | {"weight": 4, "bias": 6}
    assert A.model_size_bits(w, 40, 48) == 3 * 48 * 88 * 4 + 6 * 48 * 6
    cfg = g.GruConfig(**A.gru_unit_config(w))
    assert cfg.fmt("mm_hz") == g.Format(8, 3) and cfg.fmt("weight") == g.Format(4, 3)
    with pytest.raises(QhwInputError, match=r"widths\.add_h: missing"):
        A.features({n: 8 for n in NAMES[:-1]})
    with pytest.raises(QhwInputError, match="unknown name"):
        A.features({**{n: 8 for n in NAMES}, "foo": 3})


def test_fit_recovers_a_linear_area():
    """Figures linear in the features are fitted exactly: held-out error 0."""
    truth = np.array([3, 2, 0.5, 0.25, 4, 10, 7, 0.1, 900])

    def synth(target, configs):
        out = []
        for c in configs:
            w = {n: c["formats"][n][0] for n in NAMES}
            x = np.array([A.features(w, TINY_SIZE)[f] for f in A.FEATURES])
            out.append({"transistors": float(x @ truth), "LUT4": float(x @ truth / 50)})
        return out

    tr, ho = A.design_widths(12, 3, homogeneous=(4, 8), seed=3)
    fit = A.fit_area_model(tr, ho, size=TINY_SIZE, synth=synth)
    for name in ("transistors", "LUT4"):
        assert fit.holdout_error[name]["max_rel"] < 1e-6
    assert fit.predict(ho[0])["transistors"] == pytest.approx(fit.points[-3]["figures"]
                                                                 ["transistors"])
    back = A.GruAreaFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert back.predict(ho[1]) == fit.predict(ho[1])
    assert "14 training, 3 held-out" in fit.report()


def test_fit_on_synthesized_points():
    """A handful of synthesized tiny GRUs (generic target, cached in the qhw synthesis cache
    after the first run, about 12 s each cold): the fit, its error report, monotone in width."""
    tr, ho = A.design_widths(2, 1, homogeneous=(4, 8), bounds=(3, 8))
    fit = A.fit_area_model(tr, ho, size=TINY_SIZE, figures=(("generic", "transistors"),),
                           cache=False)
    assert len(fit.points) == 5
    assert all(p["figures"]["transistors"] > 0 for p in fit.points)
    assert fit.train_error["transistors"]["mean_rel"] < 0.05
    assert np.isfinite(fit.holdout_error["transistors"]["max_rel"])
    assert fit.predict({n: 8 for n in NAMES})["transistors"] > \
        fit.predict({n: 4 for n in NAMES})["transistors"]
    text = fit.report()
    assert "4 training, 1 held-out" in text and "held-out mean" in text


# -------------------------------------------------------------------------------- search


def test_spec_checks(fit_path):
    s = S.check_spec({**TINY, "area_fit": str(fit_path)})
    assert (s.population, s.generations, s.bounds) == (6, 2, (3, 12))
    for bad, match in (({"population": 2}, "population: must be an integer 4..1000"),
                       ({"task": "mnist"}, "task"),
                       ({"bounds": [8, 4]}, "bounds"),
                       ({"homogeneous": [16]}, "homogeneous"),
                       ({"lr": 3}, "lr"),
                       ({"pop": 3}, "pop: unknown key")):
        with pytest.raises(QhwInputError, match=match):
            S.check_spec({**TINY, **bad})


def test_search_tiny_and_resume(cache, fit_path, tmp_path):
    spec = S.check_spec({**TINY, "area_fit": str(fit_path)})
    r = S.run_search(spec, progress=False)
    assert r["generations_run"] == 2
    assert r["evaluated"] == len(r["candidates"]) > 6 and r["cached"] == 0
    front = r["front"]
    assert front and all(0 <= f["val_error"] <= 1 for f in front)
    for a in front:   # non-dominated
        assert not any(b["val_error"] <= a["val_error"] and b["transistors"] < a["transistors"]
                       or b["val_error"] < a["val_error"] and b["transistors"] <= a["transistors"]
                       for b in r["candidates"])
    assert [h["widths"]["weight"] for h in r["homogeneous"]] == [4, 8]
    assert r["homogeneous"][0]["model_bits"] == 3 * 32 * 40 * 4 + 6 * 32 * 4
    again = S.run_search(spec, progress=False)
    assert again["evaluated"] == 0 and again["cached"] == len(r["candidates"])
    assert [f["widths"] for f in again["front"]] == [f["widths"] for f in front]
    assert [f["val_error"] for f in again["front"]] == [f["val_error"] for f in front]
    S.write_outputs(r, tmp_path / "out")
    S.write_report(r, tmp_path / "rep")
    rows = list(csv.DictReader(open(tmp_path / "out" / "front.csv")))
    assert len(rows) == len(front) and set(NAMES) <= set(rows[0])
    assert (tmp_path / "rep" / "pareto.png").stat().st_size > 1000
    assert "| homogeneous |" in (tmp_path / "rep" / "report.md").read_text()


def test_cli_search_resumes(cache, fit_path, tmp_path, capsys):
    """The same settings as the test above through the command line: all cached."""
    toml = tmp_path / "s.toml"
    toml.write_text("[search]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
                    + f"\narea_fit = {json.dumps(str(fit_path))}\n")
    rc = cli.main(["search", str(toml), "-o", str(tmp_path / "o"), "--report",
                   str(tmp_path / "r"), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "(0 evaluated" in out
    assert json.loads((tmp_path / "o" / "front.json").read_text())
    assert (tmp_path / "r" / "report.md").is_file()


@pytest.mark.parametrize("text, match", [
    (None, "no such search file"),
    ("task = ", "not valid TOML"),
    ("[search]\ntask = 'digits'\n[other]\n", "other: unknown table"),
    ("[search]\npopulation = 'many'\n", "search.population: must be an integer"),
    ("[search]\nsize = 'huge'\n", "search.size"),
    ("[search]\narea_fit = 'nowhere.json'\n", "search.area_fit: no area model"),
])
def test_cli_bad_input(tmp_path, capsys, text, match):
    path = tmp_path / "s.toml"
    if text is not None:
        path.write_text(text)
    rc = cli.main(["search", str(path), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()
