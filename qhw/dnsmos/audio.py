"""Reading, checking and writing the clips that qhw scores with DNSMOS.

DNSMOS scores 16 kHz audio in [-1, 1]. :func:`read_clip` reads a WAV file (``scipy.io.wavfile``)
and :func:`check_clip` checks an array, with the same rules; bad input raises
:class:`qhw.errors.QhwInputError` with a one-line message that names the file (or the array's
name) and the problem:

* the file is missing, unreadable, not a (PCM or IEEE float) WAV file, or truncated (its data
  ends before the size its header states: scipy would read the part that is there);
* the clip is empty, or shorter than one analysis frame, :data:`MIN_SAMPLES` = 321 samples at
  16 kHz (n_fft of the features). Longer clips that are shorter than a 9.01 s window are fine:
  :func:`qhw.dnsmos.features.repeat_to_window` repeats them, as DNSMOS does;
* the clip is silent: its peak ``|sample|`` is below :data:`SILENCE_PEAK` = 1e-6 (-120 dBFS;
  every sample 0 included). DNSMOS's features are relative to the clip's loudest mel bin, so
  a silent clip gives constant features and a meaningless score. Any nonzero 16-bit sample
  (>= 1/32768) passes;
* float samples outside [-1, 1], NaN or infinity (DNSMOS's own scorer refuses values outside
  [-1, 1] too);
* a sample rate other than 16000 Hz, unless ``resample=True``: then the clip is resampled with
  ``scipy.signal.resample_poly`` (up / down = 16000 / rate over their gcd; e.g. 8000 Hz -> 2 / 1,
  22050 Hz -> 320 / 441) and clipped to [-1, 1] (the filter may overshoot). The default is an
  error because DNSMOS's reference scorer (``speechmos.dnsmos.run``) refuses other rates, and a
  silent resampling would change the score.

Integer PCM is scaled as libsndfile (and so ``librosa.load``) does: int16 / 32768,
int32 / 2**31 (24-bit WAV arrives from scipy as left-justified int32), uint8 (x - 128) / 128.
Several channels are mixed to mono by their mean (as ``librosa.load`` does), and ``info`` says so.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from ..errors import QhwInputError
from . import features

__all__ = ["SAMPLE_RATE", "MIN_SAMPLES", "SILENCE_PEAK", "read_clip", "check_clip",
           "write_clip", "pcm_to_float"]

SAMPLE_RATE = features.SAMPLE_RATE       # 16000 Hz, what DNSMOS takes
MIN_SAMPLES = features.N_FFT             # 321 samples: one analysis frame at 16 kHz
SILENCE_PEAK = 1e-6                      # peak |sample| below this (-120 dBFS) is silence

_PCM_SCALE = {np.dtype(np.int16): (0.0, 32768.0), np.dtype(np.int32): (0.0, 2.0 ** 31),
              np.dtype(np.int64): (0.0, 2.0 ** 63), np.dtype(np.uint8): (128.0, 128.0)}


def pcm_to_float(data, where="audio"):
    """Samples of any WAV sample type as float64 (integers scaled to [-1, 1), floats as they are).

    Parameters
    ----------
    data : numpy.ndarray
        int16, int32, int64 or uint8 PCM, or float32 / float64 samples.
    where : str
        The name used in error messages (a file path or an argument name).

    Returns
    -------
    numpy.ndarray
        float64, same shape.
    """
    data = np.asarray(data)
    if data.dtype in _PCM_SCALE:
        offset, scale = _PCM_SCALE[data.dtype]
        return (data.astype(np.float64) - offset) / scale
    if data.dtype.kind == "f":
        return data.astype(np.float64)
    raise QhwInputError(f"{where}: samples of type {data.dtype} are not audio; allowed: int16, "
                        "int32, uint8 PCM or float32/float64 in [-1, 1]")


def check_clip(audio, sample_rate, where="audio", resample=False):
    """Check a clip against DNSMOS's rules and return it as 16 kHz mono float64 in [-1, 1].

    Parameters
    ----------
    audio : array_like
        Samples, 1-D, or 2-D (samples, channels) as ``scipy.io.wavfile`` returns them; several
        channels are mixed to mono by their mean. Integer PCM is scaled as in
        :func:`pcm_to_float`; float samples must be finite and in [-1, 1].
    sample_rate : int
        The clip's sample rate in Hz.
    where : str
        The name used in error messages (a file path or an argument name).
    resample : bool
        Resample another rate to 16 kHz (``scipy.signal.resample_poly``) instead of refusing it.

    Returns
    -------
    audio : numpy.ndarray
        1-D float64 at 16 kHz, in [-1, 1].
    info : dict
        ``sample_rate`` (the given rate), ``channels``, ``dtype``, ``n_samples`` (given, per
        channel), ``seconds`` (of the returned clip), ``resampled``, ``mixed_to_mono``,
        ``clipped`` (samples clipped to [-1, 1] after resampling) and ``notes`` (one line per
        change made, e.g. "mixed 2 channels to mono by their mean").

    Raises
    ------
    QhwInputError
        Empty, too short, silent, non-finite or out-of-range samples, a bad shape or sample
        type, or a sample rate other than 16000 Hz without ``resample``.
    """
    a = np.asarray(audio)
    if a.ndim not in (1, 2):
        raise QhwInputError(f"{where}: audio must be 1-D (samples) or 2-D (samples, channels), "
                            f"got shape {a.shape}")
    if a.ndim == 2 and a.shape[1] == 0:
        raise QhwInputError(f"{where}: audio has no channels (shape {a.shape})")
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate,
                                                                  (int, np.integer)):
        if isinstance(sample_rate, (float, np.floating)) and float(sample_rate).is_integer():
            sample_rate = int(sample_rate)
        else:
            raise QhwInputError(f"{where}: sample rate must be a positive integer in Hz, got "
                                f"{sample_rate!r}")
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise QhwInputError(f"{where}: sample rate must be a positive integer in Hz, got "
                            f"{sample_rate}")
    channels = 1 if a.ndim == 1 else int(a.shape[1])
    info = {"sample_rate": sample_rate, "channels": channels, "dtype": str(a.dtype),
            "n_samples": int(a.shape[0]), "resampled": False, "mixed_to_mono": False,
            "clipped": 0, "notes": []}
    if a.shape[0] == 0:
        raise QhwInputError(f"{where}: the clip is empty (0 samples); DNSMOS needs at least "
                            f"{MIN_SAMPLES} samples at {SAMPLE_RATE} Hz")
    x = pcm_to_float(a, where)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise QhwInputError(f"{where}: {int(bad.sum())} sample(s) are NaN or infinite (the "
                                f"first at flat index {i}); samples must be finite, in [-1, 1]")
        peak = float(np.abs(x).max())
        if peak > 1.0:
            raise QhwInputError(f"{where}: float samples must be in [-1, 1], got a peak "
                                f"|sample| of {peak:.6g}")
    if x.ndim == 2:
        if channels > 1:
            info["mixed_to_mono"] = True
            info["notes"].append(f"mixed {channels} channels to mono by their mean")
        x = x.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        if not resample:
            raise QhwInputError(f"{where}: sample rate {sample_rate} Hz; DNSMOS requires "
                                f"{SAMPLE_RATE} Hz (resample the clip, or pass resample=True)")
        from scipy.signal import resample_poly
        g = math.gcd(SAMPLE_RATE, sample_rate)
        up, down = SAMPLE_RATE // g, sample_rate // g
        x = resample_poly(x, up, down)
        over = int(np.count_nonzero(np.abs(x) > 1.0))
        if over:
            x = np.clip(x, -1.0, 1.0)
        info.update(resampled=True, clipped=over)
        info["notes"].append(f"resampled {sample_rate} Hz -> {SAMPLE_RATE} Hz (resample_poly "
                             f"up {up}, down {down})"
                             + (f"; clipped {over} samples to [-1, 1]" if over else ""))
    if len(x) < MIN_SAMPLES:
        at = (f" ({a.shape[0]} at {sample_rate} Hz)" if sample_rate != SAMPLE_RATE else "")
        raise QhwInputError(f"{where}: the clip has {len(x)} samples at {SAMPLE_RATE} Hz{at}; "
                            f"DNSMOS needs at least one analysis frame, {MIN_SAMPLES} samples "
                            f"({MIN_SAMPLES / SAMPLE_RATE * 1000:.2f} ms)")
    peak = float(np.abs(x).max())
    if peak < SILENCE_PEAK:
        raise QhwInputError(f"{where}: the clip is silent (peak |sample| {peak:.3g} < "
                            f"{SILENCE_PEAK:g}); DNSMOS cannot score silence")
    info["seconds"] = len(x) / SAMPLE_RATE
    return np.ascontiguousarray(x, dtype=np.float64), info


def read_clip(path, resample=False):
    """Read a WAV file as a checked 16 kHz mono clip.

    Parameters
    ----------
    path : str or os.PathLike
        A WAV file: int16, int32 (or 24-bit), uint8 PCM or float32/float64, any channel count.
    resample : bool
        Resample another sample rate to 16 kHz instead of refusing it (see :func:`check_clip`).

    Returns
    -------
    audio : numpy.ndarray
        1-D float64 in [-1, 1] at 16 kHz.
    info : dict
        As :func:`check_clip`, plus ``path``; warnings of ``scipy.io.wavfile`` (e.g. unknown
        chunks it skipped) are added to ``notes``.

    Raises
    ------
    QhwInputError
        A missing, unreadable, corrupt or non-WAV file, or a clip that breaks a rule of
        :func:`check_clip`.
    """
    from scipy.io import wavfile
    where = os.fspath(path)
    if not os.path.exists(where):
        raise QhwInputError(f"{where}: no such file; give a WAV file (16 kHz PCM or float)")
    if os.path.isdir(where):
        raise QhwInputError(f"{where}: is a folder; give a WAV file (16 kHz PCM or float)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, data = wavfile.read(where, mmap=False)
        except OSError as e:
            raise QhwInputError(f"{where}: cannot read the file ({e.strerror or e})") from None
        except Exception as e:   # ValueError, EOFError, struct.error, ...: not a valid WAV
            msg = " ".join(str(e).split()) or type(e).__name__
            raise QhwInputError(f"{where}: not a readable WAV file ({msg}); allowed: RIFF WAV "
                                "with int16, int32, uint8 PCM or float samples") from None
    for w in caught:   # scipy reads what is there of a truncated file, with only a warning
        if "EOF" in str(w.message):
            raise QhwInputError(f"{where}: truncated or corrupt WAV file "
                                f"({' '.join(str(w.message).split())})")
    audio, info = check_clip(data, rate, where=where, resample=resample)
    info["path"] = where
    info["notes"] = [f"wavfile: {' '.join(str(w.message).split())}" for w in caught] + \
        info["notes"]
    return audio, info


def write_clip(path, audio):
    """Write a 16 kHz mono clip as a 16-bit PCM WAV file (for demo clips).

    Samples are scaled by 32768 and rounded, then clipped to int16's range (so +1.0 becomes
    32767); :func:`read_clip` gives them back within 1/32768 (0.5/32768 below +1.0 - 0.5/32768).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (overwritten).
    audio : array_like
        1-D float samples in [-1, 1] at 16 kHz, finite, at least :data:`MIN_SAMPLES` long and not
        silent (the rules of :func:`check_clip`).

    Returns
    -------
    str
        The path written.
    """
    from scipy.io import wavfile
    where = os.fspath(path)
    a = np.asarray(audio)
    if a.ndim != 1 or a.dtype.kind != "f":
        raise QhwInputError(f"write_clip: audio must be a 1-D float array in [-1, 1], got "
                            f"shape {a.shape} of {a.dtype}")
    x, _ = check_clip(a, SAMPLE_RATE, where=f"write_clip {where}")
    q = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    wavfile.write(where, SAMPLE_RATE, q)
    return where
