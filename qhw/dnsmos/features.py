"""DNSMOS P.808's input features, in NumPy and SciPy.

The pipeline of DNSMOS's reference scorer (``dnsmos.py`` in the ``speechmos`` package and in
microsoft/DNS-Challenge, which call librosa), rebuilt without librosa and checked against it in
tests/test_dnsmos_features.py:

1. audio at 16 kHz in [-1, 1]; a clip shorter than 9.01 s is repeated (appended to itself) until
   it is at least that long;
2. windows of 9.01 s (144,160 samples) every 1 s; their count is ``int(floor(len / fs) - 9.01) + 1``;
3. per window, the first 144,000 samples (the last 160 are dropped): a power spectrogram with
   n_fft = 321 (161 bins), hop 160, a periodic Hann window, frames centred with zero padding of
   160 samples on each side -> 900 frames;
4. a 120-band mel filterbank on the Slaney mel scale with Slaney (area) normalisation,
   0 Hz to 8 kHz;
5. ``power_to_db(S, ref=max, amin=1e-10, top_db=80)``, then ``(dB + 40) / 40``; transposed to
   900 frames x 120 bands.

The front end stays in software; :func:`operations` counts its arithmetic per window, so the gap
to a whole-hardware scorer is visible.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["SAMPLE_RATE", "WINDOW_SECONDS", "WINDOW_SAMPLES", "HOP_SAMPLES", "N_FFT",
           "FRAME_HOP", "N_MELS", "N_FRAMES", "hz_to_mel", "mel_to_hz", "mel_points",
           "mel_filterbank", "repeat_to_window", "window_starts", "windows", "log_mel",
           "clip_features", "operations"]

SAMPLE_RATE = 16000
WINDOW_SECONDS = 9.01
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)     # 144,160
HOP_SAMPLES = SAMPLE_RATE                              # windows every second
N_FFT = 321
FRAME_HOP = 160
N_MELS = 120
N_FRAMES = 900
AMIN = 1e-10
TOP_DB = 80.0


# Slaney's mel scale (Auditory Toolbox): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(f):
    """Slaney's mel value of frequencies ``f`` in Hz (float64 array; librosa's default scale)."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-300) / _MIN_LOG_HZ)
                    / _LOGSTEP, f / _F_SP)


def mel_to_hz(m):
    """The frequency in Hz of Slaney mel values ``m`` (float64 array): :func:`hz_to_mel`'s
    inverse."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)),
                    _F_SP * m)


def mel_points(n_mels=N_MELS, sr=SAMPLE_RATE):
    """The n_mels + 2 points of the filterbank, uniform in Slaney's mel scale from 0 Hz to the
    Nyquist frequency (mel units): band ``k`` rises from point ``k``, peaks at ``k + 1`` (its
    centre) and falls to ``k + 2``."""
    return np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2)


@functools.lru_cache(maxsize=4)
def mel_filterbank(n_mels=N_MELS, n_fft=N_FFT, sr=SAMPLE_RATE):
    """The (n_mels, 1 + n_fft // 2) Slaney mel filterbank with area normalisation (float64)."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)    # k * sr / n_fft: n_fft = 321 is odd
    mel_f = mel_to_hz(mel_points(n_mels, sr))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights.setflags(write=False)
    return weights


def repeat_to_window(audio):
    """The clip repeated (appended to itself, as DNSMOS does) until it holds one 9.01 s window."""
    audio = np.asarray(audio)
    if len(audio) == 0:
        from ..errors import QhwInputError
        raise QhwInputError("audio: the clip is empty; DNSMOS needs at least one sample to repeat")
    while len(audio) < WINDOW_SAMPLES:
        audio = np.append(audio, audio)
    return audio


def window_starts(n_samples):
    """Start samples of the 9.01 s windows of a clip of n_samples (already repeated)."""
    count = int(np.floor(n_samples / SAMPLE_RATE) - WINDOW_SECONDS) + 1
    # DNSMOS cuts window i as audio[int(i*fs) : int((i + 9.01)*fs)] and skips a cut shorter than
    # 144,160 samples; float rounding makes that cut one sample short for some i (7..23 and
    # 119..122 at 16 kHz), so those windows are not scored. Keep the same windows.
    return [i * HOP_SAMPLES for i in range(count)
            if int((i + WINDOW_SECONDS) * SAMPLE_RATE) - i * HOP_SAMPLES >= WINDOW_SAMPLES]


def windows(audio):
    """The clip's analysis windows, (n, 144160) float64: DNSMOS's repetition and 1 s hop."""
    audio = repeat_to_window(np.asarray(audio, dtype=np.float64))
    return np.stack([audio[s:s + WINDOW_SAMPLES] for s in window_starts(len(audio))])


@functools.lru_cache(maxsize=1)
def _hann():
    from scipy.signal import get_window
    return get_window("hann", N_FFT, fftbins=True)    # periodic, as librosa's stft uses


def log_mel(window):
    """The 900 x 120 features of one 9.01 s window (144,160 samples), float32."""
    window = np.asarray(window, dtype=np.float64)
    if window.shape != (WINDOW_SAMPLES,):
        raise ValueError(f"a window holds {WINDOW_SAMPLES} samples, got shape {window.shape}")
    y = np.pad(window[:-FRAME_HOP], N_FFT // 2)            # centred frames, zero padding
    n_frames = 1 + (len(y) - N_FFT) // FRAME_HOP
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::FRAME_HOP][:n_frames]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=1)) ** 2   # (900, 161)
    mel = power @ mel_filterbank().T                               # (900, 120)
    db = 10.0 * np.log10(np.maximum(AMIN, mel))
    db -= 10.0 * np.log10(max(AMIN, float(mel.max())))
    db = np.maximum(db, db.max() - TOP_DB)
    return ((db + 40.0) / 40.0).astype(np.float32)


def clip_features(audio):
    """Features of every window of a 16 kHz clip: (n_windows, 900, 120) float32."""
    return np.stack([log_mel(w) for w in windows(audio)])


def operations():
    """Arithmetic of the software front end per 9.01 s window, by kind (counts, not cycles):
    the window multiply, a radix-2-equivalent FFT estimate (5 N log2 N real operations per
    frame, the usual figure for a complex FFT of N points), |X|^2, the mel filterbank's nonzero
    weights and the logarithms."""
    bins = 1 + N_FFT // 2
    nonzero = int(np.count_nonzero(mel_filterbank()))
    return {
        "frames": N_FRAMES,
        "window_multiplies": N_FRAMES * N_FFT,
        "fft_real_ops": int(N_FRAMES * 5 * N_FFT * math.log2(N_FFT)),
        "power_ops": N_FRAMES * bins * 3,
        "mel_macs": N_FRAMES * nonzero,
        "logarithms": N_FRAMES * N_MELS,
    }
