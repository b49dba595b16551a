"""Offline English speech from libespeak-ng (through ctypes, from the ``espeakng-loader`` package).

eSpeak NG is a formant synthesiser: robotic but clean, deterministic speech that DNSMOS P.808
scores about 3.6-4.0, which is enough to build a teacher-labelled quality corpus without any
recorded data (:mod:`qhw.dnsmos.corpus`).

The library has one quirk that shapes this module: within one process only the first utterance
after start is reproducible; every later one differs from run to run, even after a reseed. So
each utterance is synthesised in its own fresh process (``python -m qhw.dnsmos.speech``, which
writes raw int16 at 22,050 Hz to stdout), and the waveform is cached on disk under
``$QHW_CACHE_DIR/speech`` (default ``~/.cache/qhw/speech``) keyed by a hash of the text, voice,
rate, pitch and eSpeak NG version. :func:`synthesize_many` runs a small pool of such processes.

Not even a fresh process makes the voice variants with breath noise reproducible: ``f2``, ``f3``
and ``f5`` (their variant files set ``breath``) give a different waveform on every run, of the
same length (measured: two fresh syntheses of one sentence with ``en+f5`` differ in over 90% of
their samples; ``en-us+f1``, ``en-us+f4``, ``en+m2`` and the ``m`` variants are bit-identical).
:data:`BREATHY_VARIANTS` names them; the cache freezes the first waveform made, so runs on one
machine agree, but a cold cache elsewhere makes other audio for those voices.

Public API
----------
synthesize(text, voice, rate, pitch) -> float64 [n] at 16 kHz in [-1, 1]
synthesize_many(items, workers=2, progress=True) -> list of such arrays
synthesize_native(...) -> int16 [n] at 22,050 Hz (the raw library output, cached)
espeak_version(), VOICES, resample_to_16k(int16 at 22,050 Hz)
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import QhwInputError

__all__ = ["NATIVE_RATE", "SAMPLE_RATE", "VOICES", "BREATHY_VARIANTS", "RATE_RANGE",
           "PITCH_RANGE", "espeak_version",
           "check_params", "cache_dir", "synthesize_native", "synthesize", "synthesize_many",
           "resample_to_16k"]

NATIVE_RATE = 22050
SAMPLE_RATE = 16000
#: Voices known to work (base ``en`` is British, ``en-us`` American; ``+mN`` / ``+fN`` variants).
VOICES = ("en", "en-us") + tuple(f"{b}+{v}" for b in ("en", "en-us")
                                 for v in [f"m{i}" for i in range(1, 8)]
                                 + [f"f{i}" for i in range(1, 6)])
#: Variants whose breath noise is random on every run, even in a fresh process (see above).
BREATHY_VARIANTS = ("f2", "f3", "f5")
RATE_RANGE = (80, 450)      # words per minute, eSpeak NG's espeakRATE limits
PITCH_RANGE = (0, 99)       # espeakPITCH base pitch, 0..100 (50 is the voice default)
MAX_TEXT = 2000

_VOICE_RE = re.compile(r"^(en|en-us)(\+(m[1-7]|f[1-5]))?$")

# espeak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_SYNTH_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


def check_params(text, voice, rate, pitch):
    """Validate one utterance's parameters; raise :class:`QhwInputError` naming the field."""
    if not isinstance(text, str) or not text.strip():
        raise QhwInputError("text: must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise QhwInputError(f"text: at most {MAX_TEXT} characters, got {len(text)}")
    if not isinstance(voice, str) or not _VOICE_RE.match(voice):
        raise QhwInputError(f"voice: must be 'en' or 'en-us', optionally with +m1..+m7 or "
                            f"+f1..+f5 (e.g. 'en-us+f2'), got {voice!r}")
    for name, value, (lo, hi) in (("rate", rate, RATE_RANGE), ("pitch", pitch, PITCH_RANGE)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not lo <= int(value) <= hi:
            raise QhwInputError(f"{name}: must be an integer in {lo}..{hi}, got {value!r}")


@functools.lru_cache(maxsize=1)
def _library():
    import espeakng_loader
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    return lib


@functools.lru_cache(maxsize=1)
def espeak_version():
    """The eSpeak NG library's version string (e.g. ``1.52.0``); part of the cache key."""
    info = _library().espeak_Info(None)
    return info.decode() if info else "unknown"


def _synthesize_in_process(text, voice, rate, pitch):
    """Run the library once in this process: int16 [n] at 22,050 Hz. Reproducible only as the
    first utterance of a fresh process (see the module docstring)."""
    import espeakng_loader
    lib = _library()
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                               espeakng_loader.get_data_path().encode(), 0)
    if sr != NATIVE_RATE:
        raise RuntimeError(f"espeak_Initialize returned {sr}, expected {NATIVE_RATE}")
    chunks = []

    def callback(wav, n, events):
        if n > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    cb = _SYNTH_CB(callback)
    lib.espeak_SetSynthCallback(cb)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"eSpeak NG rejected voice {voice!r}")
    lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
    lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
    data = text.encode("utf-8")
    err = lib.espeak_Synth(ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1), 0,
                           _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
    if err != 0:
        raise RuntimeError(f"espeak_Synth failed with status {err}")
    lib.espeak_Synchronize()
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def cache_dir():
    """``<qhw cache>/speech`` (the cache root honours ``$QHW_CACHE_DIR``, as synthesis does)."""
    from ..synth_flow import cache_root
    return cache_root().parent / "speech"


def _key(text, voice, rate, pitch):
    blob = json.dumps([text, voice, int(rate), int(pitch), espeak_version()])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _run_fresh_process(text, voice, rate, pitch):
    cmd = [sys.executable, "-m", "qhw.dnsmos.speech", "--voice", voice, "--rate", str(int(rate)),
           "--pitch", str(int(pitch))]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, env=env,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"speech synthesis process failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.int16)


def synthesize_native(text, voice="en-us", rate=175, pitch=50, *, cache=True):
    """The library's output for one utterance: int16 [n] at 22,050 Hz, made in a fresh process
    and cached under :func:`cache_dir` (``cache=False`` always synthesises and writes nothing)."""
    check_params(text, voice, rate, pitch)
    path = cache_dir() / f"{_key(text, voice, rate, pitch)}.npy"
    if cache and path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):
            pass    # a damaged file: make it again
    audio = _run_fresh_process(text, voice, rate, pitch)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{id(audio)}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, audio)
        os.replace(tmp, path)
    return audio


def resample_to_16k(native):
    """int16 at 22,050 Hz -> float64 at 16 kHz in [-1, 1] (``resample_poly`` 320/441, clipped to
    the range, since the polyphase filter may overshoot by a little)."""
    from scipy.signal import resample_poly
    x = np.asarray(native, dtype=np.float64) / 32768.0
    if len(x) == 0:
        return x
    return np.clip(resample_poly(x, 320, 441), -1.0, 1.0)


def synthesize(text, voice="en-us", rate=175, pitch=50, *, cache=True):
    """One utterance as float64 [n] at 16 kHz in [-1, 1]; rate in words per minute (80..450),
    pitch 0..99; voice from :data:`VOICES`. Bit-identical across runs (fresh process each), except
    for the :data:`BREATHY_VARIANTS`."""
    return resample_to_16k(synthesize_native(text, voice, rate, pitch, cache=cache))


def check_workers(workers):
    """A worker count: a positive integer (not a bool), else one-line QhwInputError."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise QhwInputError(f"workers: must be a positive integer, got {workers!r}")
    return workers


def synthesize_many(items, *, workers=2, progress=True, cache=True, desc="speech"):
    """Synthesise many utterances, ``items`` an iterable of (text, voice, rate, pitch), with a
    pool of ``workers`` fresh processes at a time; returns the 16 kHz float64 arrays in order.
    Cached utterances cost no process."""
    items = [tuple(it) for it in items]
    check_workers(workers)
    for it in items:
        if len(it) != 4:
            raise QhwInputError(f"items: each must be (text, voice, rate, pitch), got {it!r}")
        check_params(*it)
    from concurrent.futures import ThreadPoolExecutor
    from tqdm import tqdm
    # Threads only wait on the child processes; the GIL is not the limit here.
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(items), desc=desc, disable=not progress, leave=False) as bar:
        def one(it):
            out = synthesize(*it, cache=cache)
            bar.update(1)
            return out
        return list(pool.map(one, items))


def _main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(
        prog="python -m qhw.dnsmos.speech",
        description="Synthesise the text on stdin (one utterance) with eSpeak NG; raw little-"
                    "endian int16 at 22,050 Hz goes to stdout (or --out).")
    ap.add_argument("--voice", default="en-us")
    ap.add_argument("--rate", type=int, default=175)
    ap.add_argument("--pitch", type=int, default=50)
    ap.add_argument("--text", default=None, help="the text (default: read stdin)")
    ap.add_argument("--out", default=None, help="a file for the samples (default: stdout)")
    args = ap.parse_args(argv)
    text = args.text if args.text is not None else sys.stdin.buffer.read().decode("utf-8")
    try:
        check_params(text, args.voice, args.rate, args.pitch)
    except QhwInputError as exc:
        print(f"qhw: error: {exc}", file=sys.stderr)
        return 2
    data = _synthesize_in_process(text, args.voice, args.rate, args.pitch).astype("<i2").tobytes()
    if args.out:
        Path(args.out).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
