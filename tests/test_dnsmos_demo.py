"""``qhw demo --quick`` end to end (the main job's short form) and ``qhw score``'s input checks."""

import contextlib
import csv
import io
import json
import re

import numpy as np
import pytest
from scipy.io import wavfile

from qhw import cli
from qhw.dnsmos import audio, demo


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``qhw demo --quick`` run once: (exit status, output folder, what it printed on stdout)."""
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = cli.main(["demo", "--quick", "-o", str(out), "--no-progress"])
    return rc, out, printed.getvalue()


def test_quick_demo_scores_verifies_and_reports(quick):
    rc, out, _ = quick
    assert rc == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert len(rows) == len(demo.VOICES) * len(demo.QUICK_CONDITIONS)
    mos = np.array([[float(r["teacher_mos"]), float(r["student_mos"])] for r in rows])
    assert np.all((mos > 1) & (mos < 5))
    assert np.ptp(mos[:, 0]) > 0.3          # the degradations move the float model's score
    results = json.loads((out / "results.json").read_text())
    cosim = results["cosimulation"]
    assert cosim["bit_exact"] and cosim["output"] == cosim["golden"]
    assert cosim["cycles_measured"] == cosim["cycles_model"] > 0
    assert cosim["frames"] == demo.QUICK_FRAMES
    report = (out / "report" / "report.md").read_text()
    for section in ("## Headline", "## Scores", "## Verification", "## Accelerator",
                    "## Memory", "## Reproduce"):
        assert section in report
    # The training record says whether the validation clips were trained on.
    shipped = json.loads(demo.TRAINING.read_text())
    on_val = bool(shipped["options"].get("train_on_val"))
    assert results["training"]["train_on_val"] is on_val
    assert results["training"]["test"] == shipped["test"]
    assert ("`--train-on-val`" in report) is on_val
    html = (out / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert len(list((out / "clips").glob("*.wav"))) == len(rows)
    # the cosimulated window is saved for `qhw rtlsim --inputs`
    assert np.load(out / "accelerator" / "window.npy").shape == (1, 900, 120, 1)


def test_quick_demo_ends_with_the_headline_and_the_report_paths(quick):
    _, out, printed = quick
    lines = printed.splitlines()
    report = out / "report"
    assert lines[-2:] == [f"report.md:   {report / 'report.md'}",
                          f"report.html: {report / 'report.html'}"]
    # The report's findings (headline.txt, one a line), under "Headline", just before.
    findings = [line for line in (report / "headline.txt").read_text().splitlines()
                if line.strip()]
    assert findings
    assert lines[-3 - len(findings):-2] == ["Headline"] + [f"  {f}" for f in findings]
    # Before the ending: the five steps, in order.
    steps = [line for line in lines if re.match(r"\[qhw demo\] \d/5 ", line)]
    assert [s.split()[2] for s in steps] == ["1/5", "2/5", "3/5", "4/5", "5/5"]


@pytest.mark.parametrize("on_val", [False, True])
def test_report_says_whether_validation_was_trained_on(quick, tmp_path, on_val):
    """The training paragraph for both kinds of shipped student (the shipped one is only one of
    them), with accuracy figures to three decimals: 0.16 prints as 0.160 beside 0.153."""
    from qhw.dnsmos import report as R
    _, out, _ = quick
    results = json.loads((out / "results.json").read_text())
    results["training"] = dict(results["training"], train_on_val=on_val,
                               test={"pcc": 0.938, "rmse": 0.16, "clips": 104},
                               validation={"pcc": 0.97, "rmse": 0.124})
    text = R.write_report(results, tmp_path).read_text()
    para = next(line for line in text.splitlines() if line.startswith("Training record"))
    assert "test PCC 0.938, RMSE 0.160 MOS on 104 clips" in para
    assert para.endswith("PCC 0.970, RMSE 0.124.")
    assert ("validation (trained on: `--train-on-val`" in para) is on_val
    assert ("; validation PCC" in para) is not on_val


def test_score_command_gives_the_demo_scores(quick, tmp_path, capsys):
    _, out, _ = quick
    rows = list(csv.DictReader(open(out / "scores.csv")))
    wav = out / "clips" / f"{rows[1]['clip']}.wav"
    assert cli.main(["score", str(wav), "--json", str(tmp_path / "s.json")]) == 0
    got = json.loads((tmp_path / "s.json").read_text())[0]
    # The WAV holds the clip at 16 bits: the float model's score moves by far less than a
    # hundredth of a MOS.
    assert got["teacher_mos"] == pytest.approx(float(rows[1]["teacher_mos"]), abs=0.01)
    # The binary student is a step function of its input: the 16-bit rounding can flip a few
    # activations and move the integer sum by a few steps of mos_scale (11 steps, 0.026 MOS,
    # on this clip with the shipped weights), so against the demo's score only a loose bound;
    # exactly, the score is the PyTorch integer oracle's on the audio the WAV holds.
    assert got["student_mos"] == pytest.approx(float(rows[1]["student_mos"]), abs=0.1)
    pytest.importorskip("torch")
    from qhw.dnsmos import features, student
    audio_16bit, _ = audio.read_clip(wav)
    xq = student.quantize_features(features.clip_features(audio_16bit))
    sums = student.integer_forward(dict(np.load(demo.WEIGHTS)), xq)
    scale = json.loads(demo.TRAINING.read_text())["mos_scale"]
    assert got["student_mos"] == float(student.mos_from_sum(sums, scale).mean())


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt "), "not a readable WAV"),
    (lambda p: wavfile.write(p, 16000, np.zeros(20000, np.int16)), "silent"),
    (lambda p: wavfile.write(p, 16000, np.zeros(100, np.int16) + 9), "at least one analysis frame"),
    (lambda p: wavfile.write(p, 8000, (np.sin(np.arange(9000)) * 9000).astype(np.int16)),
     "16000"),
    (lambda p: wavfile.write(p, 16000, np.full(4000, 1.5, np.float32)), "[-1, 1]"),
])
def test_score_refuses_bad_clips_before_scoring(quick, tmp_path, capsys, make, message):
    _, out, _ = quick
    good = sorted((out / "clips").glob("*.wav"))[0]
    bad = tmp_path / "bad.wav"
    make(bad)
    result = tmp_path / "s.json"
    assert cli.main(["score", str(good), str(bad), "--json", str(result)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and message in err[0], err
    assert captured.out == "" and not result.exists()   # nothing printed or written


def test_demo_refuses_a_file_as_output(tmp_path, capsys):
    path = tmp_path / "report.txt"
    path.write_text("mine")
    assert cli.main(["demo", "--quick", "-o", str(path)]) == 2
    assert path.read_text() == "mine"
    assert "--output" in capsys.readouterr().err


def test_clip_reading_round_trip(quick):
    _, out, _ = quick
    x, info = audio.read_clip(sorted((out / "clips").glob("*.wav"))[0])
    assert info["sample_rate"] == 16000 and len(x) >= 9.5 * 16000
