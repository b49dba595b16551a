"""qhw.dnsmos.train on a tiny synthetic corpus (one thread, fixed step budgets so that a slow
machine does the same work, a few seconds per run): the training loop runs end to end for both
students, the trained binary student's export gives the same scores through the integer forward
as its eval forward (integer sums times mos_scale), the fast validation path equals the eval
forward, the 8-bit student's export reproduces its forward, and bad command-line values are
one-line errors with exit status 2."""

import json
import types

import numpy as np
import pytest

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
pytest.importorskip("speechmos")

from qhw.dnsmos import features, student, teacher  # noqa: E402
from qhw.dnsmos import train as T  # noqa: E402
from dnsmos_clips import speech_like  # noqa: E402

FRAMES = 96  # short windows: the network is fully convolutional (>= 8 frames survive the pools)
QUICK = {"crop": (32, 64), "val_every": 4, "batch": 2, "full_frac": 0.3, "head_steps": 100}


def _clip(seed, seconds=9.2):
    return speech_like(seed, seconds, noise=0.004)


def _split(feats, clips_of):
    labels = teacher.score_torch(feats).astype(np.float64)
    clip_index = np.asarray(clips_of)
    clip_labels = np.bincount(clip_index, labels) / np.bincount(clip_index)
    return types.SimpleNamespace(features=feats, window_labels=labels, clip_index=clip_index,
                                 labels=clip_labels)


@pytest.fixture(scope="module")
def corpus():
    """Windows of FRAMES frames cut from the features of synthetic clips, teacher-labelled; two
    windows per clip."""
    torch.set_num_threads(1)
    win = np.concatenate([features.clip_features(_clip(s)) for s in range(4)])
    cuts = np.stack([w[o:o + FRAMES] for w in win for o in (0, 300, 600)])  # 12 windows
    return types.SimpleNamespace(
        train=_split(cuts[:6], [0, 0, 1, 1, 2, 2]),
        val=_split(cuts[6:9], [0, 0, 1]),
        test=_split(cuts[9:], [0, 1, 1]))


@pytest.fixture(scope="module")
def trained(corpus):
    return T.train("binary", steps=12, minutes=10, corpus=corpus, threads=1, progress=False,
                   log=lambda *a: None, lr=1e-2, **QUICK)


def test_binary_training_runs_end_to_end(trained):
    model, fig = trained
    assert fig["steps"] == 12 and fig["step_budget"] == 12 and fig["threads"] == 1
    assert fig["history"][0]["phase"] == "init" and len(fig["history"]) >= 2
    assert {"crop"} <= {h["phase"] for h in fig["history"][1:]}
    assert fig["test"]["clips"] == 2 and fig["validation"]["clips"] == 2
    for part in ("test", "validation"):
        assert np.isfinite(fig[part]["rmse"])
    json.dumps(fig)  # the figures are JSON


def test_trained_export_scores_equal_eval_forward(trained, corpus):
    """Integer sums of the export times mos_scale == the eval forward (float32), and the fast
    float32 validation path == the float64 integer forward."""
    model, _ = trained
    xq = student.quantize_features(corpus.test.features)
    params, scale = student.export_params(model)
    sums = student.integer_forward(params, xq)
    mos = T.predict(model, xq.astype(np.float32))
    np.testing.assert_array_equal(np.float32(student.mos_from_sum(sums, scale)),
                                  np.float32(mos))
    np.testing.assert_array_equal(T._integer_forward32(params, xq), sums)
    np.testing.assert_array_equal(np.float32(T.window_scores(model, xq)), np.float32(mos))


def test_crop_student_scores_any_length(trained, corpus):
    """The training forward on a 40-frame crop equals the forward written here from the layer
    definitions (zero padding, the bias added after the convolution, the Heaviside, then
    PyTorch's max pools of the bits), and collects each layer's pre-activation pooled as its
    output is; the module's training-mode forward is it."""
    F = torch.nn.functional
    model, _ = trained
    x = torch.from_numpy(
        student.quantize_features(corpus.train.features[:2, :40]).astype(np.float32))
    model.train()
    out, pre = model.train_forward(x, collect=True)
    assert out.shape == (2,)
    torch.testing.assert_close(model(x), out)
    want_pre, h = {}, x.unsqueeze(1)
    with torch.no_grad():
        for name, _, pool in student.CONV_LAYERS:
            layer = getattr(model, name)
            acc = F.conv2d(F.pad(h, (1, 1, 1, 1)), layer.fake_weight()) + layer.bias.view(
                1, -1, 1, 1)
            h = (acc >= 0).float()
            if pool:
                want_pre[name], h = F.max_pool2d(acc, 2), F.max_pool2d(h, 2)
            elif name == "conv5":
                want_pre[name], h = acc.amax(dim=(2, 3), keepdim=True), h.amax(
                    dim=(2, 3), keepdim=True)
            else:
                want_pre[name] = acc
        for name, _ in student.DENSE_LAYERS[:-1]:
            layer = getattr(model, name)
            want_pre[name] = F.conv2d(h, layer.fake_weight()) + layer.bias.view(1, -1, 1, 1)
            h = (want_pre[name] >= 0).float()
        want = model.dense3(h).flatten()
    assert set(pre) == set(want_pre)
    for name in want_pre:
        torch.testing.assert_close(pre[name].detach(), want_pre[name])
    torch.testing.assert_close(out.detach(), want)


def test_dense_stage_recorded(trained):
    _, fig = trained
    stage = fig["dense_stage"]
    assert {"trained", "tuned"} <= set(stage)
    assert sum(stage[k]["kept"] for k in ("trained", "tuned")) <= 1


def test_set_thresholds_is_what_the_export_holds(trained):
    import copy
    model = copy.deepcopy(trained[0])
    params, _ = student.export_params(model)
    t = params["conv5.thresholds"] + np.arange(64) % 7 - 3
    T._set_thresholds(model.conv5, t)
    np.testing.assert_array_equal(student.export_params(model)[0]["conv5.thresholds"], t)


def test_threshold_search_finds_the_informative_cut():
    """y depends on whether channel 0's pooled maximum reaches 40: the search moves channel 0's
    threshold from a useless value to the cut and lowers the cross-validated MSE."""
    rng = np.random.default_rng(0)
    maxacc = rng.integers(0, 100, size=(200, 64))
    y = (maxacc[:, 0] >= 40) + 0.01 * rng.normal(size=200)
    start = np.full(64, 1000)
    t = T._tune_thresholds(maxacc, y, start)
    assert abs(int(t[0]) - 40) <= 4
    assert T._cv_mse((maxacc >= t).astype(float), y) < T._cv_mse(
        (maxacc >= start).astype(float), y) / 10


def test_int8_training_and_export(corpus):
    model, fig = T.train("int8", steps=6, minutes=10, corpus=corpus, threads=1, progress=False,
                         log=lambda *a: None, lr=1e-3, **QUICK)
    assert fig["steps"] == 6 and fig["dense_stage"] is None
    params = model.export()
    w = [v for k, v in params.items() if k.endswith(".weights")]
    assert all(a.dtype == np.int8 for a in w) and sum(a.size for a in w) < 60000
    xq = student.quantize_features(corpus.test.features).astype(np.float32)
    np.testing.assert_allclose(T.int8_forward(params, xq), T.predict(model, xq),
                               rtol=1e-6, atol=1e-6)


def test_lr_schedule():
    assert T._lr_factor(0.0, 0.1, 0.05) < 0.01
    assert T._lr_factor(0.05, 0.1, 0.05) == pytest.approx(0.5)
    assert T._lr_factor(0.1, 0.1, 0.05) == pytest.approx(1.0)
    assert T._lr_factor(1.0, 0.1, 0.05) == pytest.approx(0.05)
    f = [T._lr_factor(x, 0.1, 0.05) for x in np.linspace(0.1, 1, 20)]
    assert all(a >= b for a, b in zip(f, f[1:]))


def test_cli_writes_export_and_figures(corpus, tmp_path, monkeypatch):
    import qhw.dnsmos.corpus as corpus_module
    monkeypatch.setattr(corpus_module, "build_corpus", lambda **kw: corpus)
    T.main(["--steps", "5", "--crop", "32", "64", "--batch", "2", "--val-every", "3",
            "--head-steps", "100", "--no-progress", "-o", str(tmp_path)])
    info = json.loads((tmp_path / "dnsmos_bam.json").read_text())
    assert info["command"].startswith("python -m qhw.dnsmos.train --steps 5")
    assert info["steps"] == 5 and info["threads"] == 1 and info["history"] and info["mos_scale"] > 0
    params = dict(np.load(tmp_path / "dnsmos_bam.npz"))
    xq = student.quantize_features(corpus.val.features)
    assert student.integer_forward(params, xq).shape == (3,)


def test_evaluate_export_scores_and_splits_error_by_voice(trained, corpus, tmp_path, capsys,
                                                          monkeypatch):
    """--evaluate: the export's clip scores against the teacher (checked here by NumPy's own
    corrcoef on the scores of the integer oracle, student.integer_forward), and each voice's
    mean error."""
    model, _ = trained
    params, scale = student.export_params(model)
    np.savez(tmp_path / "s.npz", **params)
    (tmp_path / "s.json").write_text(json.dumps({"mos_scale": scale}))
    test = types.SimpleNamespace(**vars(corpus.test), meta=[{"voice": "a"}, {"voice": "b"}])
    with_meta = types.SimpleNamespace(train=corpus.train, val=corpus.val, test=test)
    out = T.evaluate_export(tmp_path / "s.npz", corpus=with_meta)
    pred = T.clip_scores(student.mos_from_sum(
        student.integer_forward(params, student.quantize_features(corpus.test.features)), scale),
        corpus.test.clip_index)
    err = pred - corpus.test.labels
    assert out["test"]["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), abs=1e-6)
    assert out["test"]["pcc"] == pytest.approx(np.corrcoef(pred, corpus.test.labels)[0, 1],
                                                abs=1e-6)
    # one clip per voice: each offset is that clip's error, and nothing is left beside them
    assert out["test"]["voice_offsets"] == pytest.approx({"a": err[0], "b": err[1]}, abs=1e-6)
    assert out["test"]["rmse_without_voice_offsets"] == pytest.approx(0, abs=1e-6)
    assert "voice_offsets" not in out["val"]          # no meta: no per-voice figures
    offsets, rest = T.voice_offsets([1.0, 2.0, 3.0, 5.0], [1.5, 2.5, 3.0, 4.0], list("aabb"))
    assert offsets == {"a": -0.5, "b": 0.5} and rest == pytest.approx(np.sqrt(0.5 / 4))
    # clips and voices that do not pair up (a run on the first windows only): no offsets
    assert "voice_offsets" not in T.split_figures(pred[:1], corpus.test.labels[:1], test)
    # training records the same figures for its test split
    _, fig = T.train("binary", steps=2, minutes=10, corpus=with_meta, threads=1, progress=False,
                     log=lambda *a: None, **QUICK)
    assert set(fig["test"]["voice_offsets"]) == {"a", "b"}
    # the command line prints both
    monkeypatch.setattr(T, "evaluate_export", lambda path: out)
    T.main(["--evaluate", str(tmp_path / "s.npz")])
    printed = capsys.readouterr().out
    assert f"mean error per voice (MOS): a {err[0]:+.3f}, b {err[1]:+.3f}" in printed


@pytest.mark.parametrize("argv, word", [
    (["--minutes", "0"], "--minutes"),
    (["--minutes", "nan"], "--minutes"),
    (["--steps", "0"], "--steps"),
    (["--lr", "-1"], "--lr"),
    (["--crop", "300", "200"], "--crop"),
    (["--crop", "4", "200"], "--crop"),
    (["--mixup", "1.5"], "--mixup"),
    (["--warp", "0.5"], "--warp"),
    (["--warp", "-0.1"], "--warp"),
    (["--full-frac", "-0.1"], "--full-frac"),
    (["--warmup", "1"], "--warmup"),
    (["--val-every", "0"], "--val-every"),
    (["--batch", "0"], "--batch"),
    (["--threads", "0"], "--threads"),
    (["--beta", "0"], "--beta"),
    (["--student", "float"], "--student"),
    (["--lr", "fast"], "--lr"),
    (["--precision", "float16"], "--precision"),
    (["--student", "int8", "--precision", "bfloat16"], "--precision"),
])
def test_cli_bad_values_exit_2_with_one_line(argv, word, capsys):
    with pytest.raises(SystemExit) as e:
        T.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m qhw.dnsmos.train: error: "), err
    assert word in err[0]


@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (2, 3, 9, 7), (1, 2, 2, 3), (3, 1, 5, 2)])
def test_max_pool2x2_equals_torch_max_pool2d(shape):
    """The teacher's labels and the validation pool with two pairwise maxima: the oracle is
    PyTorch's max_pool2d (floor mode), on small integers (many ties) and on binary maps, even
    and odd sizes."""
    rng = np.random.default_rng(sum(shape))
    for x in (rng.integers(-3, 4, shape), rng.integers(0, 2, shape), rng.normal(size=shape)):
        xt = torch.from_numpy(x.astype(np.float32))
        want = torch.nn.functional.max_pool2d(xt, 2)
        got = student.max_pool2x2(xt)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_teacher_labels_equal_the_teacher_module(corpus):
    """The training loop's teacher forward (pool before ReLU, pair-maximum pool) gives the
    teacher module's scores (PyTorch's max_pool2d after ReLU) on full windows and odd crops."""
    module = teacher.TeacherP808()
    for x in (corpus.train.features[:3], corpus.train.features[:3, 5:46]):
        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
        with torch.no_grad():
            want = module(xt)[:, 0]
        torch.testing.assert_close(T._teacher_forward(module, xt), want, rtol=0, atol=0)


def test_bfloat16_training_runs_the_student_steps_in_bfloat16(corpus, monkeypatch):
    """--precision bfloat16: the student's thresholded pre-activations are bfloat16 in the
    training steps (and float32 with the default); the loss, the weights and the export stay
    float32, and the export's scores are the exact integer forward's."""
    from qhw.dnsmos import student_torch
    seen = []
    real = student_torch.heaviside_superspike

    def spy(p, beta):
        seen.append(p.dtype)
        return real(p, beta)

    monkeypatch.setattr(student_torch, "heaviside_superspike", spy)
    quick = dict(QUICK, head_steps=0)
    for precision, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        seen.clear()
        model, fig = T.train("binary", steps=3, minutes=10, corpus=corpus, threads=1,
                             progress=False, log=lambda *a: None, lr=1e-2,
                             precision=precision, **quick)
        assert fig["options"]["precision"] == precision and fig["steps"] == 3
        assert seen and set(seen) == {dtype}, (precision, set(seen))
        assert all(p.dtype == torch.float32 for p in model.parameters())
        xq = student.quantize_features(corpus.test.features)
        params, scale = student.export_params(model)
        np.testing.assert_array_equal(
            np.float32(student.mos_from_sum(student.integer_forward(params, xq), scale)),
            np.float32(T.window_scores(model, xq.astype(np.float32))))


def test_warp_of_one_is_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (3, 20, features.N_MELS)).astype(np.float32)
    np.testing.assert_allclose(T.warp_features(x, [1.0, 1.0, 1.0]), x, atol=1e-6)


def _vtlp_forward(f, alpha, f_hi=4800.0, nyq=8000.0):
    """VTLP's frequency map as Jaitly & Hinton (2013) write it: original -> warped."""
    knee = f_hi * min(alpha, 1.0) / alpha
    return np.where(f <= knee, alpha * f, nyq - (nyq - f_hi * min(alpha, 1.0))
                    / (nyq - knee) * (nyq - f))


@pytest.mark.parametrize("alpha", [0.88, 0.95, 1.07, 1.15])
def test_warp_moves_the_spectrum_as_vtlp_maps_frequency(alpha):
    """Spectra that are bumps in Hz, sampled at the mel band centres (librosa's, the features'
    reference), warped: each band holds the original spectrum at the frequency VTLP maps to its
    centre (the forward map inverted numerically here), to within linear interpolation between
    bands; unwarped they are far from it."""
    librosa = pytest.importorskip("librosa")
    centre = librosa.mel_frequencies(n_mels=features.N_MELS + 2, fmin=0.0, fmax=8000.0,
                                     htk=False)[1:-1]
    grid = np.linspace(0.0, 8000.0, 400001)
    source = np.interp(centre, _vtlp_forward(grid, alpha), grid)
    peaks = (600.0, 1500.0, 3000.0, 5200.0, 6800.0)
    # As wide as a few bands (which widen with frequency), so linear interpolation holds them.
    bump = lambda f, f0: np.exp(-0.5 * ((f - f0) / max(250.0, 0.1 * f0)) ** 2)  # noqa: E731
    x = np.stack([bump(centre, f0) for f0 in peaks])[:, None, :].repeat(2, axis=1)
    want = np.stack([bump(np.maximum(source, centre[0]), f0) for f0 in peaks])
    got = T.warp_features(x.astype(np.float32), [alpha] * len(peaks))
    assert got.shape == x.shape and got.dtype == np.float32
    assert np.abs(got[:, 0] - want).max() < 0.03
    assert np.abs(got[:, 1] - want).max() < 0.03
    assert np.abs(x[:, 0] - want).max() > 0.2


def test_warped_training_labels_the_warped_windows_by_the_teacher(corpus, monkeypatch):
    """--warp: every step's windows (crops and full windows) are warped, and the teacher labels
    exactly the warped windows (the student sees their 8-bit quantization)."""
    warped, labelled = [], []
    real_warp, real_teacher = T.warp_features, T._teacher_forward

    def warp(x, alpha):
        assert np.all((np.asarray(alpha) >= 0.9) & (np.asarray(alpha) <= 1.1))
        out = real_warp(x, alpha)
        warped.append(out)
        return out

    def teacher_forward(teacher, x, collect=False):
        labelled.append(x.numpy().copy())
        return real_teacher(teacher, x, collect)

    monkeypatch.setattr(T, "warp_features", warp)
    monkeypatch.setattr(T, "_teacher_forward", teacher_forward)
    quick = dict(QUICK, head_steps=0, full_frac=0.5)
    _, fig = T.train("binary", steps=6, minutes=10, corpus=corpus, threads=1, progress=False,
                     log=lambda *a: None, lr=1e-2, warp=0.1, **quick)
    assert fig["options"]["warp"] == 0.1 and len(warped) == 6 == len(labelled)
    assert {w.shape[1] for w in warped} >= {FRAMES} and min(w.shape[1] for w in warped) < FRAMES
    for w, t in zip(warped, labelled):
        np.testing.assert_array_equal(w, t)


def test_train_on_val_learns_from_validation_windows_and_keeps_the_final_state(corpus):
    """--train-on-val: the validation windows join the training set, nothing held out chooses a
    state (the final EMA state is kept, no dense stage), and the test split stays unseen."""
    quick = {k: v for k, v in QUICK.items() if k != "head_steps"}  # no dense stage to size
    model, fig = T.train("binary", steps=6, minutes=10, corpus=corpus, threads=1, progress=False,
                         log=lambda *a: None, lr=1e-2, ema=0.5, train_on_val=True, **quick)
    assert fig["train_windows"] == len(corpus.train.features) + len(corpus.val.features)
    assert fig["best"] == {"step": 6, "source": "final (validation windows trained on)"}
    assert fig["dense_stage"] is None and fig["options"]["refit_head"] is False
    # The kept state is the one the last validation scored: the final (EMA) state.
    assert fig["history"][-1]["step"] == 6
    assert fig["validation"]["rmse"] == pytest.approx(fig["history"][-1]["val_rmse"])


@pytest.mark.parametrize("extra, named", [
    (["--head-steps", "100"], "--head-steps"),
    (["--head-steps", str(T.DEFAULTS["head_steps"])], "--head-steps"),  # given, if at default
    (["--head-lr", "0.1"], "--head-lr"),
    (["--no-tune", "--head-lr", "0.1"], "--head-lr, --no-tune"),
])
def test_cli_train_on_val_refuses_dense_stage_options(extra, named, capsys, monkeypatch):
    """--train-on-val has no dense stage: an option of that stage is refused, not dropped."""
    monkeypatch.setattr(T, "train", lambda *a, **k: pytest.fail("trained despite a bad option"))
    with pytest.raises(SystemExit) as e:
        T.main(["--train-on-val", "--steps", "1"] + extra)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"cannot be combined with {named}"), err


def test_train_on_val_accepts_no_refit_and_the_dense_defaults():
    """--no-refit says what --train-on-val implies; dense-stage options not given pass, one
    given at its default value does not."""
    T._check_options(dict(T.DEFAULTS, train_on_val=True, refit_head=False),
                     {"train_on_val", "refit_head"}, "binary")
    T._check_options(dict(T.DEFAULTS, train_on_val=True), {"train_on_val"}, "binary")
    from qhw.errors import QhwInputError
    with pytest.raises(QhwInputError, match="cannot be combined with --head-lr"):
        T._check_options(dict(T.DEFAULTS, train_on_val=True), {"train_on_val", "head_lr"},
                         "binary")


def test_train_api_refuses_a_dense_option_given_by_name_at_its_default(corpus, monkeypatch):
    """train() knows which options were given by name: with train_on_val, head_lr given at its
    default value is refused as on the command line, before any work."""
    from qhw.errors import QhwInputError
    monkeypatch.setattr(T, "_split", lambda *a: pytest.fail("worked despite a bad option"))
    with pytest.raises(QhwInputError, match="cannot be combined with --head-lr"):
        T.train("binary", steps=1, corpus=corpus, progress=False, train_on_val=True,
                head_lr=T.DEFAULTS["head_lr"])
