"""Keyword spotting on offline synthetic speech: 10 keywords, "unknown" and "silence".

Recipe (:data:`RECIPE_VERSION`; every figure is part of the cache key):

1. **Speech.** eSpeak NG through :mod:`qhw.dnsmos.speech` (one fresh process per utterance,
   waveforms cached). A *take* is one utterance of one voice at one rate (110..230 words per
   minute) and pitch (20..80) drawn per take: the 10 :data:`KEYWORDS` and 3 words drawn from
   :data:`UNKNOWN_WORDS`, shuffled, each its own paragraph (``".\\n\\n"`` between them: eSpeak NG
   leaves a pause of 260 ms or more there). One process then yields 13 words instead of one
   (the process start, about 0.3 s, is the cost of an utterance).
2. **Words.** The take is cut at its 12 longest silences (10 ms frames with RMS below 1e-3,
   -60 dBFS), and each word is trimmed to its first and last non-silent frame. Measured over
   60 takes of all 20 voices at random rates: the shortest cut silence is 26 frames, the longest
   silence inside a word 10. A take whose cut is not clear (shortest cut below 15 frames or
   below 1.5 times the longest silence left) is not cut: its words are synthesised one by one
   instead (counted in ``info["fallback_takes"]``).
3. **Voices, split by voice.** The 20 voices of :data:`qhw.dnsmos.speech.VOICES` whose audio is
   reproducible (the breathy variants f2, f3, f5 are not: see that module) are partitioned into
   :data:`VOICE_SPLIT`: 14 for training, 3 for validation, 3 for testing, so test voices are never
   heard in training.
4. **Clips with augmentation.** Each word becomes ``copies`` 1 s clips at 16 kHz: the word at a
   random offset (cropped to its middle second if longer), its peak at a random level of -30..-3
   dBFS (gain), then with probability 0.8 white or pink noise at an SNR of 5..30 dB over the clip
   (:func:`qhw.dnsmos.degrade.mix_at_snr`), and always white dither at -80 dBFS RMS. "silence"
   clips are noise only (white or pink, -60..-20 dBFS RMS; one in five only the dither), as many
   per split as there are clips of one keyword. Every clip draws from its own random stream
   (seeded by split, voice, take, position and copy), so the corpus is deterministic.
5. **Features.** :func:`log_mel`: 49 frames x 40 mel bands of 1 s: 25 ms Hann windows (400
   samples) every 20 ms (320 samples), each inside a 512-point FFT frame (the window centred in
   it, as librosa places a window shorter than ``n_fft``; frame k covers samples
   [320k, 320k + 512), no centring padding), power spectrum, the 40-band Slaney mel filterbank of
   0..8 kHz (:func:`qhw.dnsmos.features.mel_filterbank`), 10 log10(max(1e-10, mel)). The same as
   ``librosa.feature.melspectrogram(n_fft=512, win_length=400, hop_length=320, center=False,
   n_mels=40)`` in dB (tests/test_search_tasks.py). Stored standardised by one mean and standard
   deviation over all training features (``info["norm"]``).

Sizes (:data:`SIZES`): ``default`` = 16 takes per training voice and 12 per validation and test
voice: 296 utterances, 3,848 words; 2 augmented copies of each training word: 5,824 training
clips + 448 silence, 468 + 36 validation and 468 + 36 test clips. ``tiny`` (tests) = one take of
3 training voices, 1 validation and 1 test voice (the default's first takes, so they share the
speech cache): 65 words, 70 clips.

Cached under ``<qhw cache>/search/kws/<size>-<key>/`` (the cache root honours
``$QHW_CACHE_DIR``).

Public API
----------
load(size="default", cache=True, progress=True, workers=2) -> TaskData
log_mel(clips) -> (N, 49, 40) float32 dB;  split_words(audio, n) -> list of n arrays or None
recipe(size), corpus_key(size), KEYWORDS, UNKNOWN_WORDS, CLASSES, VOICE_SPLIT, SIZES
``python -m qhw.search.kws [--size tiny|default] [--no-cache]`` prints a summary.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time

import numpy as np

from ..dnsmos import degrade, features, speech
from . import tasks

__all__ = ["RECIPE_VERSION", "KEYWORDS", "UNKNOWN_WORDS", "CLASSES", "VOICE_SPLIT", "SIZES",
           "CLIP_SAMPLES", "N_FFT", "WIN_LENGTH", "HOP", "N_MELS", "N_FRAMES", "recipe",
           "corpus_key", "cache_dir", "log_mel", "split_words", "load"]

RECIPE_VERSION = 1
SEED = 1414
SPLITS = ("train", "val", "test")

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: The "unknown" words (Speech Commands' auxiliary words).
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree",
                 "wow", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "learn", "follow", "forward", "backward", "visual")
CLASSES = KEYWORDS + ("unknown", "silence")
UNKNOWN, SILENCE = len(KEYWORDS), len(KEYWORDS) + 1

#: The reproducible voices (no breathy variant) by split.
VOICE_SPLIT = {
    "train": ("en", "en-us", "en+m1", "en+m3", "en+m4", "en+m6", "en+f1", "en-us+m1",
              "en-us+m2", "en-us+m4", "en-us+m5", "en-us+m7", "en-us+f1", "en-us+f4"),
    "val": ("en+m5", "en-us+m3", "en+f4"),
    "test": ("en+m2", "en+m7", "en-us+m6"),
}

SIZES = {
    "default": {"voices": {"train": 14, "val": 3, "test": 3},
                "takes": {"train": 16, "val": 12, "test": 12},
                "copies": {"train": 2, "val": 1, "test": 1}},
    "tiny": {"voices": {"train": 3, "val": 1, "test": 1},
             "takes": {"train": 1, "val": 1, "test": 1},
             "copies": {"train": 1, "val": 1, "test": 1}},
}

UNKNOWN_PER_TAKE = 3
RATE_RANGE = (110, 230)
PITCH_RANGE = (20, 80)
SEPARATOR = ".\n\n"
SILENT_RMS = 1e-3           # a 10 ms frame quieter than this is silence (segmentation)
MIN_CUT_FRAMES = 15
CUT_MARGIN = 1.5

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
GAIN_DB = (-30.0, -3.0)     # the word's peak, dBFS
NOISE_PROB = 0.8
SNR_DB = (5.0, 30.0)
DITHER_DB = -80.0           # white dither RMS, dBFS
SILENCE_DB = (-60.0, -20.0)
SILENCE_DITHER_ONLY = 0.2

N_FFT = 512
WIN_LENGTH = 400
HOP = 320
N_MELS = 40
N_FRAMES = 1 + (CLIP_SAMPLES - N_FFT) // HOP     # 49
AMIN = 1e-10


def recipe(size="default"):
    """Everything that decides the corpus of a size (its cache key is a hash of this)."""
    tasks.check_size(size)
    return {"version": RECIPE_VERSION, "seed": SEED, "size": size, **SIZES[size],
            "keywords": KEYWORDS, "unknown": UNKNOWN_WORDS, "voice_split": VOICE_SPLIT,
            "unknown_per_take": UNKNOWN_PER_TAKE, "rate": RATE_RANGE, "pitch": PITCH_RANGE,
            "separator": SEPARATOR, "silent_rms": SILENT_RMS, "cut": [MIN_CUT_FRAMES, CUT_MARGIN],
            "gain_db": GAIN_DB, "noise_prob": NOISE_PROB, "snr_db": SNR_DB,
            "dither_db": DITHER_DB, "silence_db": SILENCE_DB,
            "silence_dither_only": SILENCE_DITHER_ONLY,
            "features": [N_FFT, WIN_LENGTH, HOP, N_MELS, N_FRAMES, AMIN],
            "espeak": speech.espeak_version()}


def corpus_key(size="default"):
    return hashlib.sha256(json.dumps(recipe(size), sort_keys=True).encode()).hexdigest()[:20]


def cache_dir():
    """``<qhw cache>/search/kws``."""
    return tasks.cache_root() / "kws"


# ------------------------------------------------------------------------------------ features


@functools.lru_cache(maxsize=1)
def _window():
    from scipy.signal import get_window
    w = get_window("hann", WIN_LENGTH, fftbins=True)        # periodic, as librosa's
    pad = (N_FFT - WIN_LENGTH) // 2
    return np.pad(w, (pad, N_FFT - WIN_LENGTH - pad))


def log_mel(clips):
    """Log-mel features of 1 s clips (N, 16000) (or one clip (16000,)): (N, 49, 40) float32 in
    dB (see the module docstring, step 5)."""
    clips = np.asarray(clips, dtype=np.float64)
    one = clips.ndim == 1
    clips = np.atleast_2d(clips)
    if clips.shape[1] != CLIP_SAMPLES:
        raise ValueError(f"a clip holds {CLIP_SAMPLES} samples, got shape {clips.shape}")
    frames = np.lib.stride_tricks.sliding_window_view(clips, N_FFT, axis=1)[:, ::HOP][:, :N_FRAMES]
    power = np.abs(np.fft.rfft(frames * _window(), axis=-1)) ** 2      # (N, 49, 257)
    mel = power @ features.mel_filterbank(N_MELS, N_FFT, SAMPLE_RATE).T
    db = (10.0 * np.log10(np.maximum(AMIN, mel))).astype(np.float32)
    return db[0] if one else db


# -------------------------------------------------------------------------------- segmentation


def _frame_rms(audio):
    n = len(audio) // 160
    return np.sqrt(np.mean(np.square(audio[:n * 160].reshape(n, 160)), axis=1))


def split_words(audio, n):
    """Cut one take (16 kHz) into its ``n`` words at the n - 1 longest inner silences (see the
    module docstring, step 2); each word trimmed to its non-silent frames. None when the cut is
    not clear."""
    silent = _frame_rms(np.asarray(audio, dtype=np.float64)) < SILENT_RMS
    m = len(silent)
    edges = np.flatnonzero(np.diff(np.r_[0, silent.astype(np.int8), 0]))
    runs = [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if s > 0 and e < m]
    if n < 1 or len(runs) < n - 1:
        return None
    runs.sort(key=lambda r: (-(r[1] - r[0]), r[0]))
    cuts, rest = sorted(runs[:n - 1]), runs[n - 1:]
    if n > 1:
        shortest = min(e - s for s, e in cuts)
        longest_left = max((e - s for s, e in rest), default=0)
        if shortest < MIN_CUT_FRAMES or shortest < CUT_MARGIN * longest_left:
            return None
    bounds = [0] + [(s + e) // 2 for s, e in cuts] + [m]
    words = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        voiced = np.flatnonzero(~silent[a:b])
        if not len(voiced):
            return None
        lo, hi = a + int(voiced[0]), a + int(voiced[-1]) + 1
        words.append(np.asarray(audio[lo * 160:hi * 160], dtype=np.float64))
    return words


def _trim(audio):
    """A single word synthesised alone, trimmed to its non-silent frames."""
    return split_words(audio, 1)[0]


# ------------------------------------------------------------------------------------ building


def _plan(rec):
    """One dict per take: split, voice (and its index in the split), take, rate, pitch, words."""
    takes = []
    for si, split in enumerate(SPLITS):
        for vi, voice in enumerate(rec["voice_split"][split][:rec["voices"][split]]):
            for t in range(rec["takes"][split]):
                rng = np.random.default_rng([SEED, si, vi, t])
                rate = int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1))
                pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
                unk = [UNKNOWN_WORDS[int(i)] for i in
                       rng.choice(len(UNKNOWN_WORDS), UNKNOWN_PER_TAKE, replace=False)]
                words = [KEYWORDS[int(i)] if i < len(KEYWORDS) else unk[int(i) - len(KEYWORDS)]
                         for i in rng.permutation(len(KEYWORDS) + UNKNOWN_PER_TAKE)]
                takes.append({"split": split, "split_index": si, "voice": voice,
                              "voice_index": vi, "take": t, "rate": rate, "pitch": pitch,
                              "words": words})
    return takes


def _label(word):
    return KEYWORDS.index(word) if word in KEYWORDS else UNKNOWN


def _dither(rng):
    return degrade.white_noise(CLIP_SAMPLES, rng) * 10.0 ** (DITHER_DB / 20.0)


def _word_clip(word, rng):
    """One augmented 1 s clip of a word, and what was drawn."""
    if len(word) > CLIP_SAMPLES:
        a = (len(word) - CLIP_SAMPLES) // 2
        word = word[a:a + CLIP_SAMPLES]
    offset = int(rng.integers(0, CLIP_SAMPLES - len(word) + 1))
    gain_db = float(rng.uniform(*GAIN_DB))
    clip = np.zeros(CLIP_SAMPLES)
    clip[offset:offset + len(word)] = word / np.max(np.abs(word)) * 10.0 ** (gain_db / 20.0)
    meta = {"offset": offset, "gain_db": round(gain_db, 3), "noise": "none"}
    if rng.random() < NOISE_PROB:
        kind = "white" if rng.random() < 0.5 else "pink"
        snr = float(rng.uniform(*SNR_DB))
        noise = (degrade.white_noise if kind == "white" else degrade.pink_noise)(CLIP_SAMPLES, rng)
        clip = degrade.mix_at_snr(clip, noise, snr)
        meta.update(noise=kind, snr_db=round(snr, 3))
    return clip + _dither(rng), meta


def _silence_clip(rng):
    if rng.random() < SILENCE_DITHER_ONLY:
        return _dither(rng), {"noise": "dither"}
    kind = "white" if rng.random() < 0.5 else "pink"
    level = float(rng.uniform(*SILENCE_DB))
    noise = (degrade.white_noise if kind == "white" else degrade.pink_noise)(CLIP_SAMPLES, rng)
    return noise * 10.0 ** (level / 20.0) + _dither(rng), {"noise": kind,
                                                          "level_db": round(level, 3)}


def _synthesize(takes, progress, workers):
    """The words of every take: one utterance per take, cut into words; a take that does not cut
    cleanly is synthesised word by word. Returns (words per take, fallback takes)."""
    audio = speech.synthesize_many(
        [(SEPARATOR.join(t["words"]) + ".", t["voice"], t["rate"], t["pitch"]) for t in takes],
        workers=workers, progress=progress, desc="kws speech (takes)")
    words = [split_words(a, len(t["words"])) for a, t in zip(audio, takes)]
    failed = [i for i, w in enumerate(words) if w is None]
    if failed:
        items = [(w, takes[i]["voice"], takes[i]["rate"], takes[i]["pitch"])
                 for i in failed for w in takes[i]["words"]]
        single = iter(speech.synthesize_many(items, workers=workers, progress=progress,
                                             desc="kws speech (single words)"))
        for i in failed:
            words[i] = [_trim(next(single)) for _ in takes[i]["words"]]
    return words, len(failed)


def _build(rec, progress, workers):
    from tqdm import tqdm

    t0 = time.perf_counter()
    takes = _plan(rec)
    words, fallbacks = _synthesize(takes, progress, workers)
    timings = {"speech_s": round(time.perf_counter() - t0, 2), "utterances": len(takes),
               "words": sum(len(w) for w in words), "fallback_takes": fallbacks}
    t0 = time.perf_counter()
    out = {s: {"clips": [], "y": [], "meta": []} for s in SPLITS}
    total = sum(len(t["words"]) * rec["copies"][t["split"]] for t in takes)
    bar = tqdm(total=total, desc="kws clips", disable=not progress, leave=False)
    for take, ws in zip(takes, words):
        d = out[take["split"]]
        for pos, (word, audio) in enumerate(zip(take["words"], ws)):
            for copy in range(rec["copies"][take["split"]]):
                rng = np.random.default_rng([SEED, take["split_index"], take["voice_index"],
                                             take["take"], pos, copy, 1])
                clip, meta = _word_clip(audio, rng)
                d["clips"].append(clip.astype(np.float32))
                d["y"].append(_label(word))
                d["meta"].append({"word": word, "voice": take["voice"], "take": take["take"],
                                  "rate": take["rate"], "pitch": take["pitch"], "copy": copy,
                                  **meta})
                bar.update(1)
    for si, split in enumerate(SPLITS):
        d = out[split]
        n_sil = int(np.sum(np.asarray(d["y"]) == 0))     # as many as clips of one keyword
        for j in range(n_sil):
            clip, meta = _silence_clip(np.random.default_rng([SEED, si, 1_000_000 + j]))
            d["clips"].append(clip.astype(np.float32))
            d["y"].append(SILENCE)
            d["meta"].append({"word": None, "voice": None, "silence": j, **meta})
    bar.close()
    feats = {s: log_mel(np.stack(out[s]["clips"]).astype(np.float64)) for s in SPLITS}
    train = feats["train"].astype(np.float64)
    norm = {"mean": float(train.mean()), "std": float(train.std())}
    timings["clips_features_s"] = round(time.perf_counter() - t0, 2)
    splits = {s: tasks.Split(s, ((feats[s] - norm["mean"]) / norm["std"]).astype(np.float32),
                             np.asarray(out[s]["y"], dtype=np.int64), out[s]["meta"])
              for s in SPLITS}
    return splits, timings, norm


def _save(path, splits, info):
    tmp = tasks._atomic_dir(path)
    for s, sp in splits.items():
        np.save(tmp / f"{s}_x.npy", sp.x)
        np.save(tmp / f"{s}_y.npy", sp.y)
    (tmp / "meta.json").write_text(json.dumps(
        {"info": info, "meta": {s: sp.meta for s, sp in splits.items()}}, indent=1))
    tasks._publish(tmp, path)


def _load(path):
    blob = json.loads((path / "meta.json").read_text())
    splits = {s: tasks.Split(s, np.load(path / f"{s}_x.npy"), np.load(path / f"{s}_y.npy"),
                             blob["meta"][s]) for s in SPLITS}
    return splits, blob["info"]


def load(size="default", cache=True, progress=True, *, workers=2):
    """Build (or load from the cache) the keyword-spotting corpus of ``size``.

    ``workers``: speech processes at a time. ``cache=False`` builds from scratch and stores
    nothing (the speech cache is still used)."""
    tasks.check_size(size)
    speech.check_workers(workers)
    rec = recipe(size)
    key = corpus_key(size)
    path = cache_dir() / f"{size}-{key}"
    if cache and (path / "meta.json").is_file():
        t0 = time.perf_counter()
        try:
            splits, info = _load(path)
            info = {**info, "path": str(path), "load_s": round(time.perf_counter() - t0, 3)}
            return tasks.TaskData("kws", size, **splits, classes=CLASSES, key=key, info=info)
        except (OSError, ValueError, KeyError):
            pass    # a damaged entry: build again
    t0 = time.perf_counter()
    splits, timings, norm = _build(rec, progress, workers)
    info = {"build_s": round(time.perf_counter() - t0, 2), "timings": timings, "norm": norm}
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(path, splits, info)
    info = {**info, "path": str(path) if cache else None}
    return tasks.TaskData("kws", size, **splits, classes=CLASSES, key=key, info=info)


def _main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m qhw.search.kws",
                                 description="Build (or load) the keyword-spotting corpus and "
                                             "print a summary.")
    ap.add_argument("--size", default="default", choices=sorted(SIZES))
    ap.add_argument("--workers", type=int, default=2, help="speech processes at a time")
    ap.add_argument("--no-cache", action="store_true", help="build from scratch, store nothing")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data = load(args.size, cache=not args.no_cache, progress=not args.quiet,
                workers=args.workers)
    print(data.summary())
    print(json.dumps({k: v for k, v in data.info.items() if k != "norm"}))
    print(f"this call: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main())

