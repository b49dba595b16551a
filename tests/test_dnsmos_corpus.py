"""The offline speech-quality corpus: eSpeak NG speech, degradations, teacher-labelled splits."""

import os
import subprocess
import sys

import numpy as np
import pytest

from qhw.errors import QhwInputError

pytest.importorskip("espeakng_loader")
pytest.importorskip("onnxruntime")
pytest.importorskip("speechmos")

from qhw.dnsmos import corpus, degrade, features, speech, teacher  # noqa: E402

TEXT = "The birch canoe slid on the smooth planks."



@pytest.fixture(scope="module")
def utterance(cache):
    return speech.synthesize(TEXT, "en-us", 170, 50)


@pytest.fixture(scope="module")
def tiny(cache):
    return corpus.build_corpus("tiny", progress=False)


# ------------------------------------------------------------------------------------ speech


def test_espeak_bit_identical_across_fresh_processes(cache):
    # Not a breathy variant (f2, f3, f5): their breath noise differs on every run, although a
    # run of this test once found en+f3 identical (speech.BREATHY_VARIANTS).
    a = speech.synthesize_native(TEXT, "en-us+f1", 150, 40, cache=False)
    b = speech.synthesize_native(TEXT, "en-us+f1", 150, 40, cache=False)
    assert a.dtype == np.int16 and len(a) > speech.NATIVE_RATE
    assert np.array_equal(a, b)


def test_speech_cache_and_resampling(cache, utterance):
    native = speech.synthesize_native(TEXT, "en-us", 170, 50)      # from the cache now
    assert list((cache / "speech").glob("*.npy"))
    x = utterance
    assert len(x) == -(-len(native) * 320 // 441)                  # 22,050 -> 16,000 Hz
    assert x.dtype == np.float64 and np.max(np.abs(x)) <= 1.0
    assert 1.5 < len(x) / speech.SAMPLE_RATE < 5.0
    assert np.array_equal(x, speech.resample_to_16k(native))


def test_speech_main_entry_point(cache, tmp_path):
    out = tmp_path / "x.raw"
    env = dict(os.environ)
    subprocess.run([sys.executable, "-m", "qhw.dnsmos.speech", "--voice", "en-us", "--rate",
                    "170", "--text", TEXT, "--out", str(out)], check=True, env=env)
    assert np.array_equal(np.fromfile(out, "<i2"), speech.synthesize_native(TEXT, "en-us", 170))


@pytest.mark.parametrize("kwargs, field", [
    ({"voice": "en-gb"}, "voice"), ({"voice": "en+m9"}, "voice"), ({"rate": 20}, "rate"),
    ({"pitch": 120}, "pitch"), ({"pitch": 4.5}, "pitch"), ({"text": " "}, "text")])
def test_speech_rejects_bad_parameters(kwargs, field):
    args = {"text": TEXT, "voice": "en-us", "rate": 170, "pitch": 50, **kwargs}
    with pytest.raises(QhwInputError, match=field):
        speech.synthesize(**args)


# ------------------------------------------------------------------------------ degradations


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.5, 30.0])
def test_noise_at_requested_snr(utterance, kind, snr):
    rng = np.random.default_rng(1)
    x = utterance
    if kind == "white":
        y, s, n = degrade.add_white(x, snr, rng, return_parts=True)
    elif kind == "pink":
        y, s, n = degrade.add_pink(x, snr, rng, return_parts=True)
    else:
        talkers = [x[::-1], np.roll(x, 5000), x * 0.5 + np.roll(x, 9000) * 0.5]
        y, s, n = degrade.add_babble(x, talkers, snr, rng, return_parts=True)
    assert abs(degrade.snr_db(s, n) - snr) < 0.1
    assert abs(degrade.snr_db(s, y - s) - snr) < 0.1          # measured from the mixture
    assert np.max(np.abs(y)) <= 1.0 + 1e-12 and y.shape == x.shape
    # speech part is a scaled copy of the input
    g = float(np.dot(s, x) / np.dot(x, x))
    assert np.allclose(s, g * x)


def test_noise_is_seeded():
    a = degrade.pink_noise(1000, np.random.default_rng(3))
    b = degrade.pink_noise(1000, np.random.default_rng(3))
    assert np.array_equal(a, b) and abs(np.sqrt(np.mean(a * a)) - 1) < 1e-9
    # pink: more energy in the lowest octave band than in the highest
    p = np.abs(np.fft.rfft(degrade.pink_noise(1 << 16, np.random.default_rng(0)))) ** 2
    f = np.fft.rfftfreq(1 << 16, 1 / 16000)
    low = p[(f > 100) & (f < 200)].mean()
    high = p[(f > 4000) & (f < 8000)].mean()
    assert 20 < low / high < 80          # 1/f: 40x between 150 Hz and 6 kHz


def test_lowpass_removes_energy_above_cutoff(utterance):
    rng = np.random.default_rng(2)
    x = degrade.mix_at_snr(utterance, degrade.white_noise(len(utterance), rng), 10.0)
    cutoff = 1000.0
    y = degrade.lowpass(x, cutoff)
    spec_y = np.abs(np.fft.rfft(y)) ** 2
    spec_x = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / 16000)
    above = f > 1.25 * cutoff
    assert spec_y[above].sum() < 1e-4 * spec_x[above].sum()
    assert spec_y[above].sum() < 1e-4 * spec_y.sum()
    below = f < 0.5 * cutoff
    assert np.isclose(spec_y[below].sum(), spec_x[below].sum(), rtol=0.02)


def test_clipping_caps_at_level(utterance):
    peak = np.max(np.abs(utterance))
    for level in (0.05, 0.3, 1.0):
        y = degrade.clip(utterance, level)
        assert np.isclose(np.max(np.abs(y)), level * peak)
        small = np.abs(utterance) <= level * peak
        assert np.array_equal(y[small], utterance[small])


def test_reverb_tail_and_range(utterance):
    rng = np.random.default_rng(4)
    h = degrade.reverb_ir(0.5, rng)
    assert np.isclose(np.sum(h * h), 1.0) and len(h) == int(round(1.2 * 0.5 * 16000))
    env = np.abs(h[1:])
    early, late = env[:800].mean(), env[7200:8000].mean()   # 0-50 ms vs 450-500 ms
    assert 20 * np.log10(early / late) > 40                   # ~54 dB of decay in 0.45 s
    y = degrade.reverb(utterance, 1.2, np.random.default_rng(4))
    assert y.shape == utterance.shape and np.max(np.abs(y)) <= 1.0


@pytest.mark.parametrize("call, field", [
    (lambda x: degrade.add_white(x, 40, np.random.default_rng(0)), "snr_db"),
    (lambda x: degrade.add_pink(x, -6, np.random.default_rng(0)), "snr_db"),
    (lambda x: degrade.add_white(x, 10, 3), "rng"),
    (lambda x: degrade.add_babble(x, [], 10, np.random.default_rng(0)), "talkers"),
    (lambda x: degrade.clip(x, 0.0), "level"),
    (lambda x: degrade.clip(x, 1.5), "level"),
    (lambda x: degrade.lowpass(x, 9000), "cutoff_hz"),
    (lambda x: degrade.reverb(x, 0.0, np.random.default_rng(0)), "rt60"),
    (lambda x: degrade.apply(x, {"kind": "echo"}, np.random.default_rng(0)), "spec.kind"),
    (lambda x: degrade.clip(np.zeros((2, 2)), 0.5), "x"),
])
def test_degradations_reject_bad_parameters(call, field):
    with pytest.raises(QhwInputError, match=field):
        call(np.linspace(-0.5, 0.5, 1600))


# ------------------------------------------------------------------------------------ corpus


def test_tiny_corpus_shapes(tiny):
    for name, sp in tiny.splits.items():
        assert len(sp) >= 3 and len(sp.meta) == len(sp)
        assert sp.features.dtype == np.float32
        assert sp.features.shape == (sp.n_windows, features.N_FRAMES, features.N_MELS)
        assert sp.clip_index.shape == sp.window_labels.shape == (sp.n_windows,)
        assert set(np.unique(sp.clip_index)) == set(range(len(sp)))
        assert np.all(np.diff(sp.clip_index) >= 0)
        for i in range(len(sp)):
            w = sp.window_labels[sp.clip_windows(i)]
            assert np.isclose(sp.labels[i], w.mean(), atol=1e-6)
            assert sp.meta[i]["windows"] == len(w)
            assert 7.0 < len(sp.clip_audio(i)) / 16000 < 16.0


def test_tiny_corpus_splits_disjoint_by_sentence_and_voice(tiny):
    sents = {n: set() for n in corpus.SPLITS}
    voices = {n: set() for n in corpus.SPLITS}
    for name, sp in tiny.splits.items():
        for m in sp.meta:
            sents[name] |= set(m["sentences"]) | {t[0] for t in m["babble_talkers"]}
            voices[name] |= {m["voice"]} | {t[1] for t in m["babble_talkers"]}
        assert sents[name] <= set(corpus.SENTENCE_SPLIT[name])
        assert voices[name] <= set(corpus.VOICES[name])
    for a in corpus.SPLITS:
        for b in corpus.SPLITS:
            if a < b:
                assert not sents[a] & sents[b] and not voices[a] & voices[b]
                assert not set(corpus.SENTENCE_SPLIT[a]) & set(corpus.SENTENCE_SPLIT[b])
                assert not set(corpus.VOICES[a]) & set(corpus.VOICES[b])


def test_wide_recipe_adds_training_voices_and_keeps_the_held_out_clips():
    """The ``wide`` size only adds training speech: its validation and test clips are planned
    exactly as the default's (so their figures compare row for row), the other sizes' recipes
    (and so their cache keys) are as before, and no added training voice shares a variant (its
    timbre) with a held-out one."""
    wide, default = corpus.recipe("wide"), corpus.recipe("default")
    assert "train_pitch" not in default and set(wide) - set(default) == {"train_pitch"}
    assert default["voices"] == corpus.VOICES and corpus.recipe("large")["voices"] == corpus.VOICES
    train = wide["voices"]["train"]
    assert train[:len(corpus.VOICES["train"])] == corpus.VOICES["train"]
    assert len(set(train)) == len(train) == 16
    assert all(speech.check_params(TEXT, v, 170, 50) is None for v in train)
    held_out = corpus.VOICES["val"] + corpus.VOICES["test"]
    assert not {v.split("+")[1] for v in train if "+" in v} & {v.split("+")[1] for v in held_out}

    def held_out_plans(rec):   # arrays as lists, so that == compares every field
        return [{k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in p.items()}
                for p in corpus._plan_clean_clips(rec) if p["split"] != "train"]
    assert held_out_plans(wide) == held_out_plans(default)
    pitches = [p["pitch"] for p in corpus._plan_clean_clips(wide) if p["split"] == "train"]
    assert min(pitches) < corpus.PITCH_RANGE[0] and max(pitches) > corpus.PITCH_RANGE[1]
    assert 20 <= min(pitches) and max(pitches) <= 80


def test_clip_plans_are_drawn_from_the_recipe():
    """Everything a clip plan draws comes from the recipe (whose hash is the cache key), not
    from module constants: a recipe with other ranges and another seed gives other plans."""
    rec = corpus.recipe("default")
    other = dict(rec, rate=(150, 150), pitch=(41, 41), gap_s=(0.5, 0.5), edge_s=(0.25, 0.25),
                 sentences_per_clip=[3, 3])
    plans = corpus._plan_clean_clips(other)
    assert {(p["rate"], p["pitch"]) for p in plans} == {(150, 41)}
    assert all(len(p["candidates"]) == 3 and np.all(p["gaps"] == 0.5)
               and np.all(p["edges"] == 0.25) for p in plans)
    reseeded = [p["candidates"] for p in corpus._plan_clean_clips(dict(rec, seed=rec["seed"] + 1))]
    assert reseeded != [p["candidates"] for p in corpus._plan_clean_clips(rec)]


def test_tiny_labels_match_teacher(tiny):
    sp = tiny.test
    i = len(sp) - 1
    feats = features.clip_features(sp.clip_audio(i))
    assert np.array_equal(feats, sp.features[sp.clip_windows(i)])
    scores = teacher.score_onnx(feats)
    assert np.allclose(scores, sp.window_labels[sp.clip_windows(i)], atol=1e-5)
    assert np.isclose(scores.mean(), sp.labels[i], atol=1e-5)


def test_teacher_ranks_clean_above_noise(tiny):
    clean, noisy = [], []
    for sp in tiny.splits.values():
        for m, lab in zip(sp.meta, sp.labels):
            if m["kind"] == "clean":
                clean.append(lab)
            elif m["kind"] == "white" and m["degradation"]["snr_db"] == 0.0:
                noisy.append(lab)
    assert clean and noisy
    assert np.mean(clean) > np.mean(noisy) + 0.5
    assert 3.0 < np.mean(clean) < 4.5 and 1.5 < np.mean(noisy) < 3.2


def test_tiny_corpus_cached_and_deterministic(cache, tiny):
    again = corpus.build_corpus("tiny", progress=False)
    assert again.load_seconds > 0 and again.key == tiny.key
    assert again.path is not None and again.path.parent == cache / "dnsmos_corpus"
    # Rebuilt serially: the default build forks a worker per core, and must not depend on it.
    assert tiny.timings["workers"] == (os.cpu_count() or 1)
    rebuilt = corpus.build_corpus("tiny", cache=False, progress=False, workers=1)
    for name in corpus.SPLITS:
        a, b, c = tiny.splits[name], again.splits[name], rebuilt.splits[name]
        assert np.array_equal(a.features, b.features) and np.array_equal(a.features, c.features)
        assert np.array_equal(a.labels, c.labels) and np.array_equal(a.audio, c.audio)
        assert a.meta == b.meta == c.meta


def test_corpus_rejects_bad_size():
    with pytest.raises(QhwInputError, match="size"):
        corpus.build_corpus("huge")
    with pytest.raises(QhwInputError, match="workers"):
        corpus.build_corpus("tiny", workers=0)
