"""Seeded speech degradations for a teacher-labelled quality corpus (:mod:`qhw.dnsmos.corpus`).

Every function takes 16 kHz float audio in [-1, 1] and returns float64 audio of the same length
in [-1, 1]. Where a degradation would leave that range (noise added at a low SNR, a reverberant
tail that piles up), the whole output is scaled down by one factor so its peak is 1.0; the
scaling does not change an SNR, and DNSMOS's features are normalised to the loudest bin, so a
gain changes (almost) nothing that the teacher sees. Random parts come from a caller's
``numpy.random.Generator`` so a recipe is reproducible.

Functions
---------
white_noise(n, rng), pink_noise(n, rng)             unit-RMS noise
mix_at_snr(speech, noise, snr_db)                    speech + noise scaled to the SNR
add_white / add_pink (x, snr_db, rng)                additive noise at an SNR (-5..30 dB)
babble_noise(n, talkers, rng), add_babble(x, talkers, snr_db, rng)
clip(x, level)                                       hard clipping at level x peak (0 < level <= 1)
lowpass(x, cutoff_hz)                                Butterworth, zero phase (sosfiltfilt)
reverb_ir(rt60, rng), reverb(x, rt60, rng)           exponentially decaying noise impulse response
apply(x, spec, rng, talkers=None)                    one degradation from a dict {"kind": ...}
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import QhwInputError

__all__ = ["SAMPLE_RATE", "SNR_RANGE", "CUTOFF_RANGE", "RT60_RANGE", "KINDS", "white_noise",
           "pink_noise", "mix_at_snr", "add_white", "add_pink", "babble_noise", "add_babble",
           "clip", "lowpass", "reverb_ir", "reverb", "apply", "snr_db"]

SAMPLE_RATE = 16000
SNR_RANGE = (-5.0, 30.0)
CUTOFF_RANGE = (200.0, 7900.0)
RT60_RANGE = (0.05, 3.0)
LOWPASS_ORDER = 8
KINDS = ("clean", "white", "pink", "babble", "clip", "lowpass", "reverb")


def _audio(x, name="x"):
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise QhwInputError(f"{name}: must be a non-empty 1-D audio array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise QhwInputError(f"{name}: must hold finite samples")
    return a


def _number(value, name, lo, hi, *, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise QhwInputError(f"{name}: must be a number in {lo}..{hi}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v <= lo):
        where = f"({lo}, {hi}]" if lo_open else f"{lo}..{hi}"
        raise QhwInputError(f"{name}: must be in {where}, got {value!r}")
    return v


def _rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise QhwInputError(f"rng: must be a numpy.random.Generator (np.random.default_rng(seed)),"
                            f" got {type(rng).__name__}")
    return rng


def _fit(y):
    """Scale down to peak 1.0 if the signal leaves [-1, 1]."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y / peak if peak > 1.0 else y


def _rms(x):
    return math.sqrt(float(np.mean(np.square(x))))


def snr_db(speech, noise):
    """10 log10 of the speech-to-noise energy ratio."""
    return 10.0 * math.log10(float(np.sum(np.square(speech))) / float(np.sum(np.square(noise))))


def white_noise(n, rng):
    """Gaussian white noise of n samples scaled to RMS 1."""
    w = _rng(rng).standard_normal(int(n))
    return w / _rms(w)


def pink_noise(n, rng):
    """Pink (1/f power) noise of n samples, RMS 1: white noise shaped in the frequency domain by
    1/sqrt(f) amplitude (the DC bin is set to zero)."""
    n = int(n)
    spec = np.fft.rfft(_rng(rng).standard_normal(n))
    f = np.fft.rfftfreq(n)
    shape = np.zeros_like(f)
    shape[1:] = 1.0 / np.sqrt(f[1:])
    p = np.fft.irfft(spec * shape, n)
    return p / _rms(p)


def mix_at_snr(speech, noise, snr, *, return_parts=False):
    """speech + noise, the noise scaled so the energy ratio is ``snr`` dB (-5..30), the mixture
    scaled down (both parts by one factor) if it would leave [-1, 1]. With ``return_parts`` it
    returns (mixture, speech part, noise part), the parts as they are inside the mixture."""
    s = _audio(speech, "speech")
    n = _audio(noise, "noise")
    snr = _number(snr, "snr_db", *SNR_RANGE)
    if n.shape != s.shape:
        raise QhwInputError(f"noise: must have the speech's length {len(s)}, got {len(n)}")
    es, en = float(np.sum(s * s)), float(np.sum(n * n))
    if es <= 0:
        raise QhwInputError("speech: must not be silent (zero energy)")
    if en <= 0:
        raise QhwInputError("noise: must not be silent (zero energy)")
    n = n * math.sqrt(es / (en * 10.0 ** (snr / 10.0)))
    y = s + n
    peak = float(np.max(np.abs(y)))
    g = 1.0 / peak if peak > 1.0 else 1.0
    if return_parts:
        return y * g, s * g, n * g
    return y * g


def add_white(x, snr, rng, *, return_parts=False):
    """x plus white Gaussian noise at ``snr`` dB (-5..30)."""
    x = _audio(x)
    return mix_at_snr(x, white_noise(len(x), rng), snr, return_parts=return_parts)


def add_pink(x, snr, rng, *, return_parts=False):
    """x plus pink (1/f) noise at ``snr`` dB (-5..30)."""
    x = _audio(x)
    return mix_at_snr(x, pink_noise(len(x), rng), snr, return_parts=return_parts)


def babble_noise(n, talkers, rng):
    """Babble of n samples, RMS 1: the sum of the talkers (1-D arrays of other utterances), each
    repeated to length, started at a random offset and scaled to equal RMS."""
    rng = _rng(rng)
    if not isinstance(talkers, (list, tuple)) or len(talkers) < 1:
        raise QhwInputError("talkers: must be a non-empty list of 1-D audio arrays")
    out = np.zeros(int(n))
    for i, t in enumerate(talkers):
        t = _audio(t, f"talkers[{i}]")
        r = _rms(t)
        if r <= 0:
            raise QhwInputError(f"talkers[{i}]: must not be silent")
        reps = int(np.ceil((n + len(t)) / len(t)))
        start = int(rng.integers(0, len(t)))
        out += np.tile(t, reps)[start:start + n] / r
    r = _rms(out)
    if r <= 0:
        raise QhwInputError("talkers: their sum is silent")
    return out / r


def add_babble(x, talkers, snr, rng, *, return_parts=False):
    """x plus babble of the talkers (other utterances) at ``snr`` dB (-5..30)."""
    x = _audio(x)
    return mix_at_snr(x, babble_noise(len(x), talkers, rng), snr, return_parts=return_parts)


def clip(x, level):
    """Hard clipping at ``level`` (0 < level <= 1) times the signal's peak."""
    x = _audio(x)
    level = _number(level, "level", 0.0, 1.0, lo_open=True)
    cap = level * float(np.max(np.abs(x)))
    return np.clip(x, -cap, cap)


def lowpass(x, cutoff_hz, *, order=LOWPASS_ORDER, sr=SAMPLE_RATE):
    """Zero-phase Butterworth low-pass at ``cutoff_hz`` (200..7900 Hz at 16 kHz) of the given
    order (applied forwards and backwards, so the attenuation is squared)."""
    from scipy.signal import butter, sosfiltfilt
    x = _audio(x)
    cutoff = _number(cutoff_hz, "cutoff_hz", *CUTOFF_RANGE)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 16:
        raise QhwInputError(f"order: must be an integer in 1..16, got {order!r}")
    if cutoff >= sr / 2:
        raise QhwInputError(f"cutoff_hz: must be below the Nyquist frequency {sr / 2}")
    sos = butter(int(order), cutoff, btype="low", fs=sr, output="sos")
    return _fit(sosfiltfilt(sos, x))


def reverb_ir(rt60, rng, *, sr=SAMPLE_RATE):
    """A synthetic room impulse response: a unit direct path followed by Gaussian noise decaying
    60 dB in ``rt60`` seconds (0.05..3.0), 1.2 x rt60 long, normalised to unit energy."""
    rng = _rng(rng)
    rt60 = _number(rt60, "rt60", *RT60_RANGE)
    n = max(2, int(round(1.2 * rt60 * sr)))
    t = np.arange(n) / sr
    h = rng.standard_normal(n) * np.exp(-math.log(1000.0) * t / rt60)   # 60 dB amplitude decay
    h *= 0.3
    h[0] = 1.0
    return h / math.sqrt(float(np.sum(h * h)))


def reverb(x, rt60, rng):
    """x convolved with :func:`reverb_ir` (``fftconvolve``), cut to x's length (the tail past
    the end is dropped), scaled down if it leaves [-1, 1]."""
    from scipy.signal import fftconvolve
    x = _audio(x)
    h = reverb_ir(rt60, rng)
    return _fit(fftconvolve(x, h)[:len(x)])


def apply(x, spec, rng, talkers=None):
    """One degradation from a spec dict: ``{"kind": "clean"}``, ``{"kind": "white"|"pink",
    "snr_db": s}``, ``{"kind": "babble", "snr_db": s}`` (needs ``talkers``), ``{"kind": "clip",
    "level": l}``, ``{"kind": "lowpass", "cutoff_hz": f}``, ``{"kind": "reverb", "rt60": t}``, or
    ``{"kind": "chain", "steps": [spec, ...]}`` applied in order."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise QhwInputError("spec: must be a dict with a 'kind'")
    kind = spec["kind"]
    if kind == "clean":
        return _fit(_audio(x))
    if kind == "white":
        return add_white(x, spec.get("snr_db"), rng)
    if kind == "pink":
        return add_pink(x, spec.get("snr_db"), rng)
    if kind == "babble":
        return add_babble(x, talkers, spec.get("snr_db"), rng)
    if kind == "clip":
        return clip(x, spec.get("level"))
    if kind == "lowpass":
        return lowpass(x, spec.get("cutoff_hz"))
    if kind == "reverb":
        return reverb(x, spec.get("rt60"), rng)
    if kind == "chain":
        steps = spec.get("steps")
        if not isinstance(steps, (list, tuple)) or not steps:
            raise QhwInputError("spec.steps: a chain needs a non-empty list of specs")
        y = _audio(x)
        for s in steps:
            y = apply(y, s, rng, talkers)
        return y
    raise QhwInputError(f"spec.kind: must be one of {', '.join(KINDS + ('chain',))}, "
                        f"got {kind!r}")
