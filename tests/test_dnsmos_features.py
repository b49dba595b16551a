"""qhw.dnsmos.features against the outside oracles: librosa (the library DNSMOS's reference
scorer calls) and speechmos's own ``DNSMOS.audio_melspec``, on noise, tones, quiet and silent
stretches, a short clip repeated and a long clip of several windows; the window count and the
repetition against speechmos's ``DNSMOS.__call__``; a clip's P.808 score against
``speechmos.dnsmos.run``."""

import numpy as np
import pytest

from qhw.dnsmos import features, teacher

librosa = pytest.importorskip("librosa")
sm = pytest.importorskip("speechmos.dnsmos")

FS = 16000
TOL = 1e-5


def _speech_like(seed, seconds):
    rng = np.random.default_rng(seed)
    t = np.arange(int(FS * seconds)) / FS
    f0 = 110 + 50 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = np.clip(np.sin(2 * np.pi * (2.5 + seed % 3) * t), 0, None) ** 2
    return np.clip(0.25 * voiced * envelope + rng.normal(0, 0.003 * (1 + seed), len(t)), -1, 1)


def _tones(seconds, freqs_amps):
    t = np.arange(int(FS * seconds)) / FS
    return sum(a * np.sin(2 * np.pi * f * t + f) for f, a in freqs_amps)


def _signals():
    rng = np.random.default_rng(0)
    gated = rng.normal(0, 0.1, FS * 10)
    gated[FS * 2:FS * 5] = 0.0                      # digital silence: amin and top_db at work
    return {
        "white_noise": rng.normal(0, 0.1, int(FS * 9.5)),
        "tone_1k": _tones(9.5, [(1000, 0.5)]),
        # a loud tone and one 100 dB below it: the 80 dB floor (top_db) clips the quiet one
        "tones_top_db": _tones(9.5, [(220, 0.4), (3100, 0.2), (6000, 4e-6)]),
        "gated_noise": gated,
        "speech_like": _speech_like(1, 10.2),
        "short_repeated": _speech_like(2, 0.4),       # 0.4 s -> 12.8 s: 3 windows
        "long_4_windows": _speech_like(3, 13.5),
        "float32": _speech_like(4, 9.2).astype(np.float32),
    }


SIGNALS = _signals()


def _librosa_features(segment):
    """The oracle, written from DNSMOS's description with librosa's own functions."""
    mel = librosa.feature.melspectrogram(y=segment, sr=FS, n_fft=321, hop_length=160,
                                         n_mels=120, center=True, pad_mode="constant",
                                         window="hann", power=2.0, htk=False, norm="slaney")
    return ((librosa.power_to_db(mel, ref=np.max, amin=1e-10, top_db=80.0) + 40) / 40).T


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_features_equal_librosa_and_speechmos(name):
    audio = SIGNALS[name]
    got = features.clip_features(audio)
    wins = features.windows(audio)
    assert got.shape == (len(wins), features.N_FRAMES, features.N_MELS)
    assert got.dtype == np.float32
    for i, w in enumerate(wins):
        segment = w[:-160].astype(audio.dtype)       # what DNSMOS feeds its mel spectrogram
        ref = _librosa_features(segment)
        ref_sm = sm.DNSMOS.audio_melspec(None, audio=segment)     # speechmos's own code
        assert ref.shape == ref_sm.shape == got[i].shape
        assert np.abs(got[i] - ref).max() < TOL, (name, i, np.abs(got[i] - ref).max())
        assert np.abs(got[i] - ref_sm).max() < TOL, (name, i, np.abs(got[i] - ref_sm).max())
    if name == "tones_top_db":                       # the floor is reached: (-80 + 40) / 40
        assert got.min() == pytest.approx(-1.0)
    if name == "long_4_windows":
        assert len(wins) == 4
    if name == "short_repeated":
        assert len(wins) == 3


def test_mel_filterbank_equals_librosa():
    ref = librosa.filters.mel(sr=FS, n_fft=321, n_mels=120, dtype=np.float64)
    got = features.mel_filterbank()
    assert got.shape == ref.shape == (120, 161)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
    assert np.count_nonzero(got) == np.count_nonzero(ref)


def test_mel_scale_equals_librosa_and_round_trips():
    f = np.concatenate([np.linspace(0.0, 8000.0, 801), [999.0, 1000.0, 1001.0, 11025.0]])
    np.testing.assert_allclose(features.hz_to_mel(f), librosa.hz_to_mel(f, htk=False),
                               rtol=1e-12, atol=1e-12)
    m = features.hz_to_mel(f)
    np.testing.assert_allclose(features.mel_to_hz(m), librosa.mel_to_hz(m, htk=False),
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(features.mel_to_hz(m), f, rtol=1e-12, atol=1e-9)


def test_repeat_to_window_appends_the_clip_to_itself():
    x = np.arange(1000, dtype=np.float64)
    r = features.repeat_to_window(x)
    assert len(r) == 1000 * 2 ** 8 and len(r) >= features.WINDOW_SAMPLES > len(r) // 2
    np.testing.assert_array_equal(r, np.tile(x, 2 ** 8))
    one_window = np.ones(features.WINDOW_SAMPLES)
    assert len(features.repeat_to_window(one_window)) == features.WINDOW_SAMPLES


class _CountingP835:
    """Stands in for DNSMOS's P.835 session (sig/bak/ovr, not what qhw rebuilds) so that
    ``DNSMOS.__call__``'s own window logic runs without the big model; counts the windows."""

    def __init__(self):
        self.calls = 0

    def run(self, _outputs, feeds):
        assert feeds["input_1"].shape == (1, features.WINDOW_SAMPLES)
        self.calls += 1
        return [np.zeros((1, 3), np.float32)]


def _speechmos_windows(audio):
    """speechmos's DNSMOS.__call__ on audio with the real P.808 session: (p808 mean, windows)."""
    scorer = sm.DNSMOS.__new__(sm.DNSMOS)
    scorer.onnx_sess = _CountingP835()
    scorer.p808_onnx_sess = teacher.onnx_session()
    out = scorer(audio, FS, False)
    return float(out["p808_mos"]), scorer.onnx_sess.calls


def _speechmos_kept_starts(n_samples):
    """The window starts DNSMOS.__call__ scores, written out: it slices
    audio[int(i * fs): int((i + 9.01) * fs)] and skips slices shorter than 144160 samples,
    which float rounding makes happen for i = 7..23, 119..122, ..."""
    count = int(np.floor(n_samples / FS) - features.WINDOW_SECONDS) + 1
    return [i * FS for i in range(count)
            if int((i + features.WINDOW_SECONDS) * FS) - i * FS >= features.WINDOW_SAMPLES]


@pytest.mark.parametrize("seconds", [0.05, 0.4, 3.0, 9.01, 10.99, 12.5, 18.3])
def test_window_count_and_repetition_equal_speechmos(seconds):
    audio = _speech_like(5, seconds)
    n = len(features.repeat_to_window(audio))
    starts = features.window_starts(n)
    scores = teacher.score_onnx(features.clip_features(audio))
    assert len(scores) == len(starts)
    by_start = dict(zip(starts, scores.astype(np.float64)))
    kept = _speechmos_kept_starts(n)
    ref, ref_windows = _speechmos_windows(audio)
    assert ref_windows == len(kept)
    assert set(kept) <= set(by_start)
    assert abs(np.mean([by_start[s] for s in kept]) - ref) < 1e-5


def test_long_clip_windows_speechmos_skips():
    """From 17 s on, DNSMOS.__call__ drops windows 7..23 (and 119..122) because
    int((i + 9.01) * 16000) rounds down to a 144,159-sample slice, which it skips; qhw scores
    the same windows, so its clip score is DNSMOS's."""
    assert [i for i in range(130)
            if int((i + features.WINDOW_SECONDS) * FS) - i * FS < features.WINDOW_SAMPLES] == \
        list(range(7, 24)) + list(range(119, 123))
    n = FS * 18 + 300                                   # 18 s: 9 windows of which DNSMOS keeps 7
    assert len(_speechmos_kept_starts(n)) == 7
    assert len(features.window_starts(n)) == 7     # the windows DNSMOS scores (speechmos skips 2)


def test_clip_score_equals_speechmos_run():
    """The whole reference scorer (speechmos.dnsmos.run, which also runs P.835) on three clips:
    one window, a short clip repeated (2 windows), a 12.3 s clip (3 windows)."""
    for audio in (_speech_like(6, 10.5), _speech_like(7, 0.7), _speech_like(8, 12.3)):
        ours = float(teacher.score_onnx(features.clip_features(audio)).mean())
        ref = float(sm.run(audio, FS)["p808_mos"])
        assert abs(ours - ref) < 1e-4, (ours, ref)
        assert 1.0 < ours < 5.0


def test_operations_are_positive_counts():
    ops = features.operations()
    assert set(ops) >= {"frames", "window_multiplies", "fft_real_ops", "power_ops", "mel_macs",
                        "logarithms"}
    for k, v in ops.items():
        assert isinstance(v, int) and v > 0, (k, v)
    assert ops["frames"] == features.N_FRAMES
    assert ops["mel_macs"] == features.N_FRAMES * np.count_nonzero(
        librosa.filters.mel(sr=FS, n_fft=321, n_mels=120))
    assert ops["logarithms"] == features.N_FRAMES * features.N_MELS
