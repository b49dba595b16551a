"""qhw.dnsmos.audio: every bad-input rule of read_clip / check_clip raises QhwInputError with a
one-line message naming the file and the problem; resampling to 16 kHz on request; the
write_clip / read_clip round trip; WAV decoding agrees with librosa.load (what DNSMOS's own
scorer reads files with)."""

import numpy as np
import pytest
from scipy.io import wavfile

from qhw.dnsmos import audio, features
from qhw.errors import QhwInputError


def _noise(n, seed=0, scale=0.1):
    return np.clip(np.random.default_rng(seed).normal(0, scale, n), -1, 1)


def _int16(x):
    return np.round(np.asarray(x) * 32767).astype(np.int16)


def _raises(path_or_call, *words, **kw):
    """read_clip(path) (or the callable) raises QhwInputError; its message is one line, names
    the file and holds every word."""
    call = path_or_call if callable(path_or_call) else (lambda: audio.read_clip(path_or_call,
                                                                               **kw))
    with pytest.raises(QhwInputError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg
    if not callable(path_or_call):
        assert str(path_or_call) in msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_corrupt_and_non_wav_files(tmp_path):
    good = tmp_path / "good.wav"
    wavfile.write(good, 16000, _int16(_noise(16000)))
    raw = good.read_bytes()
    (tmp_path / "garbage.wav").write_bytes(b"this is not a wav file at all" * 20)
    _raises(tmp_path / "garbage.wav", "not a readable WAV file")
    (tmp_path / "zero_bytes.wav").write_bytes(b"")
    _raises(tmp_path / "zero_bytes.wav", "not a readable WAV file")
    (tmp_path / "header_only.wav").write_bytes(raw[:30])
    _raises(tmp_path / "header_only.wav", "not a readable WAV file")
    (tmp_path / "truncated.wav").write_bytes(raw[:1000])
    _raises(tmp_path / "truncated.wav", "truncated")
    _raises(tmp_path / "missing.wav", "no such file")
    _raises(tmp_path, "folder")


def test_empty_short_and_silent_clips(tmp_path):
    wavfile.write(tmp_path / "empty.wav", 16000, np.zeros(0, np.int16))
    _raises(tmp_path / "empty.wav", "empty", "321")
    wavfile.write(tmp_path / "short.wav", 16000, _int16(_noise(100)))
    _raises(tmp_path / "short.wav", "100 samples", "321")
    wavfile.write(tmp_path / "frame.wav", 16000, _int16(_noise(audio.MIN_SAMPLES)))
    x, info = audio.read_clip(tmp_path / "frame.wav")       # exactly one frame is enough
    assert x.shape == (audio.MIN_SAMPLES,) and info["seconds"] == pytest.approx(321 / 16000)
    wavfile.write(tmp_path / "zeros.wav", 16000, np.zeros(16000, np.int16))
    _raises(tmp_path / "zeros.wav", "silent")
    wavfile.write(tmp_path / "tiny.wav", 16000, np.full(16000, 1e-7, np.float32))
    _raises(tmp_path / "tiny.wav", "silent", "1e-06")
    one = np.zeros(16000, np.int16)
    one[5000] = 1                                            # one LSB is not silence
    wavfile.write(tmp_path / "lsb.wav", 16000, one)
    assert audio.read_clip(tmp_path / "lsb.wav")[0].max() == pytest.approx(1 / 32768)


def test_float_range_and_finiteness(tmp_path):
    x = np.zeros(16000, np.float32)
    x[10] = 1.5
    wavfile.write(tmp_path / "loud.wav", 16000, x)
    _raises(tmp_path / "loud.wav", "[-1, 1]", "1.5")
    x[10] = np.nan
    wavfile.write(tmp_path / "nan.wav", 16000, x)
    _raises(tmp_path / "nan.wav", "NaN")
    x[10] = -np.inf
    wavfile.write(tmp_path / "inf.wav", 16000, x)
    _raises(tmp_path / "inf.wav", "infinite")
    x[10] = -1.0                                              # the bounds themselves are fine
    x[11] = 1.0
    y, _ = audio.read_clip(_write(tmp_path, x))
    assert y[10] == -1.0 and y[11] == 1.0


def _write(tmp_path, x, name="ok.wav", rate=16000):
    p = tmp_path / name
    wavfile.write(p, rate, x)
    return p


def test_sample_rate_is_refused_by_default(tmp_path):
    p = _write(tmp_path, _int16(_noise(8000)), "8k.wav", 8000)
    _raises(p, "8000 Hz", "16000 Hz", "resample=True")
    _raises(lambda: audio.check_clip(_noise(4410), 44100, where="clip"), "clip:", "44100 Hz",
            "16000")
    for bad in (0, -16000, 16000.5, "16k", True):
        _raises(lambda: audio.check_clip(_noise(1000), bad), "sample rate", "positive integer")


@pytest.mark.parametrize("rate, n", [(8000, 8000), (22050, 22050), (22050, 10000),
                                     (44100, 44100 * 2), (48000, 4800)])
def test_resample_to_16k(tmp_path, rate, n):
    t = np.arange(n) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    p = _write(tmp_path, _int16(tone), f"{rate}.wav", rate)
    x, info = audio.read_clip(p, resample=True)
    expected_len = int(np.ceil(n * 16000 / rate))            # resample_poly's output length
    assert x.shape == (expected_len,) and x.dtype == np.float64
    assert info["resampled"] and info["sample_rate"] == rate
    assert any("resampled" in s for s in info["notes"])
    assert info["seconds"] == pytest.approx(n / rate, abs=1 / 16000)
    # the 440 Hz tone is still a 440 Hz tone of amplitude 0.5 (away from the filter's edges)
    t16 = np.arange(expected_len) / 16000
    mid = slice(200, expected_len - 200)
    np.testing.assert_allclose(x[mid], 0.5 * 32767 / 32768 * np.sin(2 * np.pi * 440 * t16[mid]),
                               atol=2e-3)


def test_resample_too_short_after_resampling(tmp_path):
    p = _write(tmp_path, _int16(_noise(100)), "8k_short.wav", 8000)
    _raises(p, "200 samples", "100 at 8000 Hz", "321", resample=True)


def test_resample_overshoot_is_clipped():
    square = np.where(np.arange(8000) % 40 < 20, 1.0, -1.0)    # full-scale: Gibbs overshoot
    x, info = audio.check_clip(square, 8000, resample=True)
    assert np.abs(x).max() <= 1.0 and info["clipped"] > 0
    assert "clipped" in info["notes"][-1]


def test_channels_are_mixed_by_mean(tmp_path):
    left, right = _int16(_noise(16000, 1)), _int16(_noise(16000, 2))
    p = _write(tmp_path, np.stack([left, right], axis=1), "stereo.wav")
    x, info = audio.read_clip(p)
    assert info["channels"] == 2 and info["mixed_to_mono"]
    assert "mixed 2 channels to mono" in info["notes"][0]
    np.testing.assert_array_equal(x, (left.astype(np.float64) + right) / 2 / 32768)


@pytest.mark.parametrize("dtype", ["int16", "int32", "uint8", "float32"])
def test_sample_types_scale_as_libsndfile(tmp_path, dtype):
    """read_clip decodes every sample type as librosa.load does (libsndfile's scaling), so a
    file gives the same audio here and in DNSMOS's own scorer."""
    librosa = pytest.importorskip("librosa")
    x = _noise(4000, 3, 0.3)
    data = {"int16": lambda: _int16(x), "int32": lambda: np.round(x * 2 ** 31 * 0.999).astype(
        np.int32), "uint8": lambda: np.round(x * 127 + 128).astype(np.uint8),
        "float32": lambda: x.astype(np.float32)}[dtype]()
    for channels in (1, 3):
        d = data if channels == 1 else np.stack([data, data[::-1], data], axis=1)
        p = _write(tmp_path, d, f"{dtype}_{channels}.wav")
        got, info = audio.read_clip(p)
        ref, sr = librosa.load(p, sr=None, mono=True)
        assert sr == 16000 and info["dtype"] == dtype and info["channels"] == channels
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7)


def test_write_read_round_trip(tmp_path):
    x = np.concatenate([np.clip(_noise(20000, 4, 0.3), -0.999, 0.999),
                        [1.0, -1.0, 0.0, 0.5, -0.5]])
    p = audio.write_clip(tmp_path / "demo.wav", x)
    rate, raw = wavfile.read(p)
    assert rate == 16000 and raw.dtype == np.int16 and raw.ndim == 1
    y, info = audio.read_clip(p)
    assert y.shape == x.shape and not info["notes"]
    err = np.abs(y - x)
    assert err[:-5].max() <= 0.5 / 32768 + 1e-12           # rounding
    assert err.max() <= 1 / 32768 + 1e-12                   # +1.0 is clipped to 32767
    np.testing.assert_array_equal(y[-4:], [-1.0, 0.0, 0.5, -0.5])    # exact in 16 bits
    # 16-bit quantization (-98 dBFS noise) barely moves the features of loud noise
    assert np.abs(features.log_mel(features.windows(y)[0])
                  - features.log_mel(features.windows(x)[0])).max() < 5e-3


def test_write_clip_refuses_bad_audio(tmp_path):
    _raises(lambda: audio.write_clip(tmp_path / "a.wav", np.full(1000, 2.0)), "[-1, 1]")
    _raises(lambda: audio.write_clip(tmp_path / "b.wav", np.zeros((1000, 2))), "1-D")
    _raises(lambda: audio.write_clip(tmp_path / "c.wav", np.zeros(1000, np.int16)), "float")
    _raises(lambda: audio.write_clip(tmp_path / "d.wav", np.zeros(1000)), "silent")
    assert not any(tmp_path.iterdir())


def test_check_clip_on_arrays():
    x, info = audio.check_clip(_noise(5000).astype(np.float32), 16000, where="audio")
    assert x.dtype == np.float64 and x.shape == (5000,) and info["notes"] == []
    _raises(lambda: audio.check_clip(np.zeros((2, 2, 2)), 16000), "1-D", "2-D")
    _raises(lambda: audio.check_clip(np.zeros((100, 0)), 16000), "no channels")
    _raises(lambda: audio.check_clip(np.array(["a"] * 400), 16000), "not audio")
    _raises(lambda: audio.check_clip(np.ones(400, np.complex64), 16000), "not audio")
    _raises(lambda: audio.check_clip([], 16000, where="my_array"), "my_array:", "empty")
