"""The format search's tasks and model (qhw.search, docs/search.md): the keyword-spotting corpus
(tiny), the digits task, float training, calibrated binary points, QAT exported bit-exactly to
the golden GRU, the candidate evaluation, and one-line errors."""

import math

import numpy as np
import pytest

from qhw.errors import QhwInputError
from qhw.golden import gru as g
from qhw.search import digits, kws, tasks

pytest.importorskip("espeakng_loader")
torch = pytest.importorskip("torch")

from qhw.search import model as M  # noqa: E402
from qhw.units.gru import MIXED_A  # noqa: E402

MIXED_WIDTHS = {name: MIXED_A[name][0] for name in g.FORMAT_NAMES}



@pytest.fixture(scope="module")
def tiny_kws(cache):
    return kws.load("tiny", progress=False)


@pytest.fixture(scope="module")
def kws_prepared(cache, tiny_kws):
    return M.prepare("kws", "tiny", progress=False)


@pytest.fixture(scope="module")
def digits_prepared(cache):
    return M.prepare("digits", "tiny", progress=False)


# ------------------------------------------------------------------------------------ kws


def test_tiny_kws_builds_is_cached_and_deterministic(cache, tiny_kws):
    d = tiny_kws
    assert d.classes == kws.CLASSES and len(d.classes) == 12
    assert d.steps == kws.N_FRAMES == 49 and d.input_size == kws.N_MELS == 40
    # 5 takes of 13 words (one clip each) + one silence clip per take.
    assert (len(d.train), len(d.val), len(d.test)) == (42, 14, 14)
    assert set(np.unique(d.train.y)) == set(range(12))
    for sp in d.splits.values():
        assert sp.x.dtype == np.float32 and sp.x.shape == (len(sp), 49, 40)
        assert np.all(np.isfinite(sp.x)) and sp.y.dtype == np.int64
        assert [m["word"] is None for m in sp.meta] == list(sp.y == kws.SILENCE)
    assert d.info["timings"]["fallback_takes"] == 0
    path = cache / "search" / "kws" / f"tiny-{d.key}"
    assert (path / "meta.json").is_file() and (path / "train_x.npy").is_file()
    again = kws.load("tiny", progress=False)           # from the cache
    assert "load_s" in again.info and again.key == d.key
    fresh = kws.load("tiny", cache=False, progress=False)  # rebuilt (speech from its cache)
    for s in ("train", "val", "test"):
        assert np.array_equal(again.splits[s].x, d.splits[s].x)
        assert np.array_equal(fresh.splits[s].x, d.splits[s].x)
        assert np.array_equal(fresh.splits[s].y, d.splits[s].y)
        assert fresh.splits[s].meta == d.splits[s].meta


def test_kws_splits_are_disjoint_by_voice(tiny_kws):
    split = kws.VOICE_SPLIT
    assert not set(split["train"]) & set(split["val"])
    assert not set(split["train"]) & set(split["test"])
    assert not set(split["val"]) & set(split["test"])
    every = [v for vs in split.values() for v in vs]
    assert len(every) == len(set(every)) == 20
    assert all(v in kws.speech.VOICES and v.split("+")[-1] not in kws.speech.BREATHY_VARIANTS
               for v in every)
    voices = {s: {m["voice"] for m in sp.meta if m["voice"]} for s, sp in tiny_kws.splits.items()}
    assert voices["train"] <= set(split["train"]) and voices["val"] <= set(split["val"])
    assert voices["test"] <= set(split["test"])
    assert all(voices.values())


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(3)
    t = np.arange(kws.CLIP_SAMPLES) / 16000
    clip = 0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.3) + 0.01 * rng.standard_normal(len(t))
    ours = kws.log_mel(clip)
    ref = librosa.feature.melspectrogram(y=clip, sr=16000, n_fft=512, win_length=400,
                                         hop_length=320, center=False, n_mels=40, power=2.0)
    ref = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=None).T
    assert ours.shape == ref.shape == (49, 40)
    assert np.max(np.abs(ours - ref)) < 1e-3          # dB
    assert np.array_equal(kws.log_mel(clip[None])[0], ours)


def test_split_words_cuts_at_the_long_silences():
    rng = np.random.default_rng(0)

    def burst(ms):
        return 0.5 * rng.standard_normal(16 * ms)

    gap = np.zeros(16 * 300)
    word2 = np.concatenate([burst(120), np.zeros(16 * 60), burst(100)])   # a stop closure
    take = np.concatenate([gap, burst(200), gap, word2, gap, burst(150), gap])
    words = kws.split_words(take, 3)
    assert [len(w) // 160 for w in words] == [20, 28, 15]
    assert kws.split_words(take, 4) is None      # only 2 inner silences
    assert kws.split_words(take, 5) is None
    # A cut not much longer than the silence left inside a word is refused.
    take2 = np.concatenate([burst(200), np.zeros(16 * 80), word2])
    assert kws.split_words(take2, 2) is None


# --------------------------------------------------------------------------------- digits


def test_digits_shapes_and_fixed_splits():
    from sklearn.datasets import load_digits
    d = tasks.load_task("digits")
    assert d.classes == digits.CLASSES and (d.steps, d.input_size) == (8, 8)
    assert (len(d.train), len(d.val), len(d.test)) == (1199, 299, 299)
    idx = {s: [m["index"] for m in sp.meta] for s, sp in d.splits.items()}
    every = idx["train"] + idx["val"] + idx["test"]
    assert sorted(every) == list(range(1797))
    raw = load_digits()
    for s, sp in d.splits.items():
        assert sp.x.dtype == np.float32 and sp.x.min() >= -1 and sp.x.max() <= 1
        assert set(np.unique(sp.y)) == set(range(10))
        i = idx[s][5]
        assert np.array_equal(sp.x[5], (raw.images[i] - 8) / 8)   # step t = pixel row t
        assert sp.y[5] == raw.target[i]
    again = digits.load()
    assert again.key == d.key and np.array_equal(again.val.x, d.val.x)
    tiny = digits.load("tiny")
    assert (len(tiny.train), len(tiny.val), len(tiny.test)) == (200, 100, 100)
    assert tiny.key != d.key and np.array_equal(tiny.test.x, d.test.x[:100])


# ----------------------------------------------------------------------------------- model


def test_tiny_float_training_reduces_loss():
    data = digits.load("tiny")
    net, losses = M.train_float(data, 16, epochs=20, batch=32, lr=1e-2)
    assert len(losses) == 20 * 7
    assert np.mean(losses[-7:]) < 0.4 * np.mean(losses[:7])
    assert M.accuracy(net, data.train) > 0.7 and M.accuracy(net, data.val) > 0.5


def test_binary_point_rule():
    assert M.binary_point(1.0, 8) == 7          # [-1, 1): 1.0 itself saturates by one code
    assert M.binary_point(0.99, 8) == 7
    assert M.binary_point(1.01, 8) == 6
    assert M.binary_point(8.4, 8) == 3          # ceil(log2 8.4) = 4 integer bits
    assert M.binary_point(8.0, 8) == 4
    assert M.binary_point(0.3, 4) == 4          # ceil(log2 0.3) = -1 -> 4, within frac <= total
    assert M.binary_point(1e-6, 4) == 4         # clamped to total
    assert M.binary_point(1e12, 4) == g.MIN_FRAC
    assert M.binary_point(0.0, 6) == 6


def test_range_rule_leaves_out_at_most_the_outliers():
    t = M._Tally()
    t.add(np.linspace(0, 0.9, 1000))
    t.add([100.0])                              # 1 of 1001 values: may be left out
    assert t.range(M.OUTLIERS) == (1.0, pytest.approx(1 / 1001))
    t.add([-100.0])                             # 2 of 1002: may not
    assert t.range(M.OUTLIERS) == (128.0, 0.0)
    assert t.range(M.OUTLIERS, cap=8) == (8.0, pytest.approx(2 / 1002))
    t2 = M._Tally()
    t2.add([0.5, -0.25, 0.0])                   # a power of two is its own range
    assert t2.range(0.0) == (0.5, 0.0) and t2.max == 0.5
    t3 = M._Tally()
    t3.add(np.zeros(5))
    assert t3.range(M.OUTLIERS) == (0.0, 0.0)


def test_calibration_of_the_float_model(kws_prepared):
    p = kws_prepared
    cal = M.calibrate(p.float_net(), p.data.train.x[:M.CALIBRATION])
    assert cal == p.calibration
    for name in (*g.FORMAT_NAMES, "head_weight"):
        r, mx, beyond = cal["ranges"][name], cal["max"][name], cal["beyond"][name]
        capped = name in M.CAPS and r == M.CAPS[name]
        assert beyond <= M.OUTLIERS or capped, name
        assert (beyond == 0) == (mx <= r), name
        assert r > 0 and math.log2(r).is_integer(), name
        assert r <= M.CAPS.get(name, math.inf)


@pytest.mark.parametrize("bits", [4, 6, 8, 16])
def test_calibrated_binary_points_never_overflow(kws_prepared, bits):
    """A format spans its name's range: +-R is at most one code beyond it (the top code is
    2^k - 2^-f), so only the values beyond R (at most 0.1 %, or beyond the activation's range)
    saturate by more than one LSB."""
    p = kws_prepared
    formats = p.formats(M.homogeneous_widths(bits))
    for name in g.FORMAT_NAMES:
        fmt = g.Format(*formats[name])
        top = p.ranges[name] * 2.0 ** fmt.frac
        assert top <= fmt.hi + 1 and -top >= fmt.lo, name
        if fmt.frac < fmt.total:             # not clamped: the format is no wider than R needs
            assert top == fmt.hi + 1, name


def test_integer_model_saturates_only_the_calibrated_outliers(kws_prepared):
    """The golden GRU at 16 bits (no fine-tune) on the calibration batch: per operator, the
    share of narrowings that saturate is the float model's share of values beyond the range
    (within 0.1 %). The activations and 1 - z are left out: their outputs saturate at 1.0 by
    one code, as their formats say."""
    p = kws_prepared
    x = p.data.train.x[:M.CALIBRATION]
    model = M.evaluate_candidate(p, p.formats(M.homogeneous_widths(16)), steps=0)["model"]
    trace = []
    model.states(x, trace=trace)
    n = x.shape[0] * x.shape[1] * p.hidden_size
    for name in g.MATMULS + ("add_r", "add_z", "add_n", "mul_rn", "mul_n", "mul_zh", "add_h",
                             "state"):
        share = sum(step["saturated"][name] for step in trace) / n
        assert share <= p.calibration["beyond"][name] + 1e-3, name


@pytest.mark.parametrize("which", ["kws", "digits"])
@pytest.mark.parametrize("widths", ["mixed", 4, 8])
def test_qat_export_equals_the_golden_gru(request, which, widths):
    """After a few QAT steps, the QuantNet's float64 forward on the task's validation inputs
    equals the integer model: states bit for bit, logits exactly."""
    p = request.getfixturevalue(f"{which}_prepared")
    w = MIXED_WIDTHS if widths == "mixed" else M.homogeneous_widths(widths)
    net, losses = M.qat(p, p.formats(w), steps=4, seed=1)
    assert len(losses) == 4
    im = net.export()
    x = p.data.val.x
    net = net.double()
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float64)
        _, h = net.gru(xt)
        logits = net(xt).numpy()
    codes = im.states(x)
    assert codes.shape == (len(x), p.hidden_size)
    assert np.array_equal(codes, np.rint(h.numpy() * 2.0 ** im.cfg.fmt("state").frac))
    assert np.array_equal(im.logits(x) * im.logit_scale, logits)
    assert np.array_equal(im.input_codes(x), net.gru.quantize_inputs(x))


def test_candidate_evaluation_is_finite_and_deterministic(digits_prepared):
    p = digits_prepared
    formats = p.formats(MIXED_WIDTHS)
    a = M.evaluate_candidate(p, formats, steps=6, seed=5, test=True)
    b = M.evaluate_candidate(p, formats, steps=6, seed=5)
    assert np.isfinite(a["val_error"]) and 0 <= a["val_error"] <= 1
    assert a["val_error"] == b["val_error"] and a["qat_loss"] == b["qat_loss"]
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert np.array_equal(a["model"].params[name], b["model"].params[name])
    assert a["val_accuracy"] == pytest.approx(1 - a["val_error"])
    assert 0 <= a["test_accuracy"] <= 1 and a["seconds"] > 0 and a["steps"] == 6
    assert a["formats"] == {k: list(v) for k, v in formats.items()}
    # By name (the prepared task comes from the cache), and with no fine-tune at all.
    c = M.evaluate_candidate("digits", formats, size="tiny", steps=6, seed=5)
    assert c["val_error"] == a["val_error"]
    d = M.evaluate_candidate(p, formats, steps=0)
    assert d["qat_loss"] is None and 0 <= d["val_error"] <= 1


# ----------------------------------------------------------------------------------- errors


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_bad_inputs_give_one_line_errors(digits_prepared):
    p = digits_prepared
    with pytest.raises(QhwInputError) as e:
        tasks.load_task("speech")
    assert _one_line(e) == "task: must be one of kws, digits, got 'speech'"
    with pytest.raises(QhwInputError) as e:
        M.evaluate_candidate("mnist", {})
    assert _one_line(e).startswith("task: must be one of")
    with pytest.raises(QhwInputError) as e:
        M.prepare("digits", "huge")
    assert _one_line(e) == "size: must be one of default, tiny, got 'huge'"
    formats = p.formats(M.homogeneous_widths(8))
    missing = {k: v for k, v in formats.items() if k != "mm_hz"}
    with pytest.raises(QhwInputError) as e:
        M.evaluate_candidate(p, missing, steps=1)
    assert _one_line(e).startswith("formats.mm_hz: missing")
    with pytest.raises(QhwInputError) as e:
        M.evaluate_candidate(p, {**formats, "mm_xx": [8, 4]}, steps=1)
    assert _one_line(e).startswith("formats: unknown name 'mm_xx'")
    with pytest.raises(QhwInputError) as e:
        M.evaluate_candidate(p, {**formats, "weight": [8, 9]}, steps=1)
    assert _one_line(e).startswith("formats.weight frac_bits: must be <= total_bits")
    with pytest.raises(QhwInputError) as e:
        p.formats({k: 8 for k in g.FORMAT_NAMES if k != "state"})
    assert _one_line(e).startswith("widths.state: missing")
    with pytest.raises(QhwInputError) as e:
        p.formats({**M.homogeneous_widths(8), "input": 0})
    assert _one_line(e).startswith("widths.input")
    with pytest.raises(QhwInputError) as e:
        M.evaluate_candidate(p, formats, steps=-1)
    assert _one_line(e).startswith("steps")
    with pytest.raises(QhwInputError) as e:
        M.evaluate_candidate(p, formats, steps=1, threads=0)
    assert _one_line(e).startswith("threads")
