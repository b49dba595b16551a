"""A small offline speech-quality corpus labelled by DNSMOS P.808, for distilling a student.

Recipe (:data:`RECIPE_VERSION`; every figure below is part of the cache key):

1. **Speech.** :data:`SENTENCES` (40 built-in English sentences) spoken by eSpeak NG
   (:mod:`qhw.dnsmos.speech`) in :data:`VOICES` (12 voices and variants), at a rate of 130..200
   words per minute and a pitch of 30..70 drawn per clip. A clean clip joins 2-4 sentences of one
   voice with 0.2-0.6 s silences (plus 0.1-0.3 s at each end) until it is about 9.5 s long, so
   most clips give one or two 9.01 s DNSMOS windows.
2. **Degradations** (:mod:`qhw.dnsmos.degrade`), each clean clip gets several copies: ``clean``;
   ``white``, ``pink``, ``babble`` noise at an SNR drawn from -5..30 dB; ``clip`` (hard clipping
   at 3..50 % of the peak); ``lowpass`` (300..4000 Hz, log-uniform); ``reverb`` (RT60
   0.2..1.5 s); ``reverb+noise`` (a chain). Babble is 3-6 other utterances of the same split in
   other voices. The degraded audio is stored as int16 and its features are computed from
   exactly those samples.
3. **Labels.** P.808 of each window (:func:`qhw.dnsmos.teacher.score_onnx` on
   :func:`qhw.dnsmos.features.clip_features`): ``window_labels``, the distillation target; a
   clip's label is their mean, as DNSMOS scores a clip.
4. **Splits by sentence and voice.** Sentences and voices are each partitioned into train,
   validation and test sets, and a clip uses only its split's sentences and voice (babble
   talkers too), so test sentences and voices are never heard in training.

The built corpus is cached under ``<qhw cache>/dnsmos_corpus/<key>/`` (the cache root honours
``$QHW_CACHE_DIR``): per split ``<split>_features.npy`` (float32), ``<split>_audio.npy`` (int16,
all clips end to end), ``<split>_arrays.npz`` (indices and labels), and ``meta.json``.

Public API
----------
build_corpus(size="default"|"large"|"wide"|"tiny", cache=True, progress=True, workers=None)
    -> Corpus (``large``: 4x the training speech; ``wide``: 16 training voices instead of 7
    (:data:`EXTRA_TRAIN_VOICES`), 2x the speech, training pitches 20..80; both keep the
    default's validation and test clips)
Corpus.train / .val / .test : Split with features (N_windows, 900, 120) float32,
    clip_index (N_windows,) int32 -> clip, labels (N_clips,) float32, window_labels
    (N_windows,) float32, meta (list of dicts), audio / audio_offsets, clip_audio(i),
    clip_windows(i)
``python -m qhw.dnsmos.corpus [--size tiny|default|large|wide] [--no-cache] [--workers N]``
prints a summary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import QhwInputError
from . import degrade, features, speech

__all__ = ["RECIPE_VERSION", "SENTENCES", "VOICES", "EXTRA_TRAIN_VOICES", "SPLITS", "SIZES",
           "Split", "Corpus", "recipe", "corpus_key", "cache_dir", "build_corpus", "summary"]

RECIPE_VERSION = 1
SEED = 808
SPLITS = ("train", "val", "test")

#: The built-in sentences (index = sentence id). Split by id: see :data:`SENTENCE_SPLIT`.
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "Please call Stella and ask her to bring the map.",
    "The train to Boston leaves at seven fifteen tomorrow morning.",
    "My grandmother grew tomatoes and beans behind the old barn.",
    "Can you tell me where the nearest post office is?",
    "We measured the voltage twice before we replaced the fuse.",
    "The committee will announce its decision after the holidays.",
    "Heavy rain flooded the valley road for three days.",
    "She plays the violin every evening after dinner.",
    "Turn left at the second light and park near the fountain.",
    "Our flight was delayed because of fog over the harbor.",
    "The museum opens at ten and closes early on Sundays.",
    "A quiet library is a good place to read and think.",
    "He fixed the bicycle chain with a small pair of pliers.",
    "The children built a sandcastle with a deep moat.",
    "Fresh bread and warm soup were waiting on the table.",
    "Remember to save your work before you shut down the computer.",
    "The orchestra rehearsed the final movement one more time.",
    "Thick clouds covered the mountain peaks all afternoon.",
    "Why did the old clock on the tower stop at noon?",
    "The engineer checked every weld on the new bridge.",
    "Six thin strips of copper were laid across the board.",
    "The farmer sold apples, pears and honey at the market.",
    "Please speak slowly so that everyone can follow the story.",
    "The kitten chased a yellow ball under the sofa.",
    "A cold wind blew across the frozen lake at dawn.",
    "They painted the kitchen a bright shade of green.",
    "The doctor said the results would arrive next week.",
    "Seven students finished the exam before the bell rang.",
    "The lighthouse keeper watched the ships sail past the rocks.",
    "Nobody expected the small team to win the championship.",
)

#: Sentence ids per split: 26 / 6 / 8.
_order = np.random.default_rng(SEED).permutation(len(SENTENCES))
SENTENCE_SPLIT = {"train": tuple(sorted(int(i) for i in _order[:26])),
                  "val": tuple(sorted(int(i) for i in _order[26:32])),
                  "test": tuple(sorted(int(i) for i in _order[32:]))}
del _order

#: Voices per split (eSpeak NG names; variants of one base voice count as different voices).
#: en+f3, en-us+f2 and en+f5 are breathy variants (speech.BREATHY_VARIANTS): their audio differs
#: on every cold synthesis, so a corpus built on another machine differs in those clips (its
#: labels are the teacher's scores of the audio it has, so it stays consistent). The next recipe
#: version should replace them; that changes the corpus and needs the student retrained.
VOICES = {"train": ("en-us", "en", "en+f3", "en-us+m3", "en+m1", "en-us+f2", "en+m4"),
          "val": ("en-us+f4", "en+m2"),
          "test": ("en-us+m7", "en+f5", "en-us+f1")}

#: Sizes: clean clips per split and the degradation plan for each clean clip.
SIZES = {
    "default": {"clean_clips": {"train": 64, "val": 10, "test": 13}, "plan": "full"},
    # Four times the training speech (more rates, pitches, sentence orders and degradations of
    # the same training sentences and voices); validation and test are the default's clips.
    "large": {"clean_clips": {"train": 256, "val": 10, "test": 13}, "plan": "full"},
    "tiny": {"clean_clips": {"train": 2, "val": 1, "test": 1}, "plan": "tiny"},
    # More speakers: the default's 7 training voices plus :data:`EXTRA_TRAIN_VOICES` (16 in all),
    # twice the training speech and a wider training pitch range; validation and test are the
    # default's clips, so its figures compare with the default's row for row.
    "wide": {"clean_clips": {"train": 128, "val": 10, "test": 13}, "plan": "full",
             "extra_train_voices": True, "train_pitch": (20, 80)},
}

#: The training voices the ``wide`` size adds: every ``en`` / ``en-us`` variant whose variant
#: (``m1``..``m7``, ``f1``..``f5``) no validation or test voice uses, so the held-out voices'
#: timbres stay unheard. ``en+f2`` and ``en-us+f3`` are breathy (see the note on VOICES).
EXTRA_TRAIN_VOICES = ("en-us+m1", "en+m3", "en-us+m4", "en+m5", "en-us+m5", "en+m6",
                      "en-us+m6", "en+f2", "en-us+f3")

RATE_RANGE = (130, 200)
PITCH_RANGE = (30, 70)
TARGET_SECONDS = 9.5
MIN_SENTENCES, MAX_SENTENCES = 2, 4
GAP_RANGE = (0.2, 0.6)
EDGE_RANGE = (0.1, 0.3)
FULL_PLAN = ("clean", "white", "pink", "babble", "clip", "lowpass", "reverb", "reverb+noise")
TINY_PLAN = ("clean", "white0", "babble")


def recipe(size="default"):
    """Everything that decides the corpus of a size (its cache key is a hash of this)."""
    if size not in SIZES:
        raise QhwInputError(f"size: must be one of {', '.join(SIZES)}, got {size!r}")
    s = SIZES[size]
    voices = VOICES
    if s.get("extra_train_voices"):
        voices = {**VOICES, "train": VOICES["train"] + EXTRA_TRAIN_VOICES}
    rec = {"version": RECIPE_VERSION, "seed": SEED, "size": size,
           "clean_clips": s["clean_clips"],
           "plan": list(FULL_PLAN if s["plan"] == "full" else TINY_PLAN),
           "sentences": list(SENTENCES), "sentence_split": SENTENCE_SPLIT, "voices": voices,
           "rate": RATE_RANGE, "pitch": PITCH_RANGE, "target_s": TARGET_SECONDS,
           "sentences_per_clip": [MIN_SENTENCES, MAX_SENTENCES], "gap_s": GAP_RANGE,
           "edge_s": EDGE_RANGE, "espeak": speech.espeak_version(),
           "teacher": _teacher_digest()}
    if "train_pitch" in s:   # only where set, so the other sizes keep their cache keys
        rec["train_pitch"] = s["train_pitch"]
    return rec


def _teacher_digest():
    from . import teacher
    try:
        with open(teacher.onnx_path(), "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:16]
    except OSError:
        return "missing"


def corpus_key(size="default"):
    """The cache key of a size's corpus: a hash of its :func:`recipe`."""
    return hashlib.sha256(json.dumps(recipe(size), sort_keys=True).encode()).hexdigest()[:20]


def cache_dir():
    """``<qhw cache>/dnsmos_corpus``."""
    from ..synth_flow import cache_root
    return cache_root().parent / "dnsmos_corpus"


@dataclasses.dataclass
class Split:
    """One split. Windows of a clip are contiguous and in order: ``clip_windows(i)``."""
    name: str
    features: np.ndarray        # (N_windows, 900, 120) float32
    clip_index: np.ndarray      # (N_windows,) int32: the clip of each window
    labels: np.ndarray          # (N_clips,) float32: P.808 clip score (mean over its windows)
    window_labels: np.ndarray   # (N_windows,) float32: P.808 score of each window
    meta: list                  # per clip: dict (sentence ids, voice, rate, pitch, degradation)
    audio: np.ndarray           # int16, all clips end to end (16 kHz)
    audio_offsets: np.ndarray   # (N_clips + 1,) int64

    def __len__(self):
        return len(self.labels)

    @property
    def n_windows(self):
        return len(self.window_labels)

    def clip_audio(self, i):
        """Clip i's audio, float64 in [-1, 1] at 16 kHz (the samples its features came from)."""
        a, b = int(self.audio_offsets[i]), int(self.audio_offsets[i + 1])
        return self.audio[a:b].astype(np.float64) / 32767.0

    def clip_windows(self, i):
        """The slice of ``features`` / ``window_labels`` that holds clip i's windows."""
        idx = np.flatnonzero(self.clip_index == i)
        return slice(int(idx[0]), int(idx[-1]) + 1)


@dataclasses.dataclass
class Corpus:
    train: Split
    val: Split
    test: Split
    key: str
    path: Path | None
    recipe: dict
    build_seconds: float        # the cold build's time (stored with the corpus)
    timings: dict = dataclasses.field(default_factory=dict)   # the build's phases (seconds)
    load_seconds: float = 0.0   # this call's load time (0 if built now)

    @property
    def splits(self):
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self):
        return summary(self)


# --------------------------------------------------------------------------------- building


def _clip_rng(rec, split, i, step):
    """Clip ``i`` of ``split``'s own random stream (``step`` 0: its plan, 1: its copies)."""
    return np.random.default_rng([rec["seed"], SPLITS.index(split), i, step])


def _plan_clean_clips(rec):
    """(split, i, voice, rate, pitch, candidate sentence ids, gaps, edges) per clean clip,
    all drawn from the ranges of the recipe ``rec`` (:func:`recipe`)."""
    plans = []
    most = rec["sentences_per_clip"][1]
    for split in SPLITS:
        voices = rec["voices"][split]
        sents = list(rec["sentence_split"][split])
        for i in range(rec["clean_clips"][split]):
            rng = _clip_rng(rec, split, i, 0)
            voice = voices[i % len(voices)]
            rate = int(rng.integers(rec["rate"][0], rec["rate"][1] + 1))
            lo, hi = rec.get(f"{split}_pitch", rec["pitch"])
            pitch = int(rng.integers(lo, hi + 1))
            cand = [int(s) for s in rng.permutation(sents)[:most]]
            gaps = rng.uniform(*rec["gap_s"], size=most - 1)
            edges = rng.uniform(*rec["edge_s"], size=2)
            plans.append({"split": split, "i": i, "voice": voice, "rate": rate,
                          "pitch": pitch, "candidates": cand, "gaps": gaps, "edges": edges})
    return plans


def _clip_length(plan, utts, k):
    sr = features.SAMPLE_RATE
    n = sum(len(utts[(s, plan["voice"], plan["rate"], plan["pitch"])])
            for s in plan["candidates"][:k])
    return (n + sr * (sum(plan["gaps"][:k - 1]) + sum(plan["edges"]))) / sr


def _synthesize_clean(plans, rec, progress, workers=2):
    """Synthesise the utterances round by round: the recipe's fewest sentences per clip (2),
    then one more (up to its most, 4) for clips still shorter than its target length. Returns
    the utterances and sentence count per clip."""
    utts = {}
    counts = [0] * len(plans)
    k, most = rec["sentences_per_clip"]
    need = list(range(len(plans)))
    while need and k <= most:
        todo = []
        for j in need:
            p = plans[j]
            for s in p["candidates"][:k]:
                item = (s, p["voice"], p["rate"], p["pitch"])
                if item not in utts and item not in todo:
                    todo.append(item)
        audio = speech.synthesize_many([(rec["sentences"][s], v, r, q) for s, v, r, q in todo],
                                       workers=max(2, workers), progress=progress,
                                       desc=f"speech ({k} sentences)")
        utts.update(zip(todo, audio))
        for j in need:
            counts[j] = k
        need = [j for j in need if _clip_length(plans[j], utts, k) < rec["target_s"]]
        k += 1
    return utts, counts


def _assemble(plan, utts, count):
    sr = features.SAMPLE_RATE
    parts = [np.zeros(int(round(plan["edges"][0] * sr)))]
    for n, s in enumerate(plan["candidates"][:count]):
        if n:
            parts.append(np.zeros(int(round(plan["gaps"][n - 1] * sr))))
        parts.append(utts[(s, plan["voice"], plan["rate"], plan["pitch"])])
    parts.append(np.zeros(int(round(plan["edges"][1] * sr))))
    return np.concatenate(parts)


def _collect(d, copies):
    """Append one clean clip's degraded copies to a split's lists, numbering the clips."""
    for q, feats, wl, meta in copies:
        ci = len(d["labels"])
        d["audio"].append(q)
        d["features"].append(feats)
        d["window_labels"].append(wl)
        d["clip_index"].append(np.full(len(wl), ci, np.int32))
        d["labels"].append(float(np.mean(wl.astype(np.float64))))
        d["meta"].append({"clip": ci, **meta})


def _degradation_specs(plan_name, rng):
    """The degradation specs of one clean clip (dicts for :func:`degrade.apply`)."""
    specs = []
    for name in plan_name:
        if name == "clean":
            specs.append({"kind": "clean"})
        elif name in ("white", "pink", "babble"):
            specs.append({"kind": name, "snr_db": round(float(rng.uniform(-5, 30)), 2)})
        elif name == "white0":
            specs.append({"kind": "white", "snr_db": 0.0})
        elif name == "clip":
            specs.append({"kind": "clip", "level": round(float(rng.uniform(0.03, 0.5)), 3)})
        elif name == "lowpass":
            specs.append({"kind": "lowpass",
                          "cutoff_hz": round(float(math.exp(rng.uniform(math.log(300),
                                                                        math.log(4000)))), 1)})
        elif name == "reverb":
            specs.append({"kind": "reverb", "rt60": round(float(rng.uniform(0.2, 1.5)), 3)})
        elif name == "reverb+noise":
            noise = ("white", "pink", "babble")[int(rng.integers(0, 3))]
            specs.append({"kind": "chain", "steps": [
                {"kind": "reverb", "rt60": round(float(rng.uniform(0.2, 1.0)), 3)},
                {"kind": noise, "snr_db": round(float(rng.uniform(0, 25)), 2)}]})
        else:   # pragma: no cover - recipe constants
            raise AssertionError(name)
    return specs


def _kind_name(spec):
    if spec["kind"] == "chain":
        return "+".join(s["kind"] for s in spec["steps"])
    return spec["kind"]


def _uses_babble(spec):
    return spec["kind"] == "babble" or any(s["kind"] == "babble" for s in spec.get("steps", ()))


#: The clean utterances of a build, inherited by the forked degradation workers (a fork shares
#: them copy-on-write instead of pickling hundreds of MB to each process).
_UTTS = {}


def _degrade_clean_clip(job):
    """Every degraded copy of one clean clip: ``(int16 audio, features, window labels, meta)``
    per degradation. Deterministic from the clip's own random stream, so a parallel build
    equals a serial one."""
    from . import teacher

    plan, count, rec = job
    utts = _UTTS
    split = plan["split"]
    clean = _assemble(plan, utts, count)
    used = set(plan["candidates"][:count])
    rng = _clip_rng(rec, split, plan["i"], 1)
    # Babble talkers: utterances of the same split, other voices (other sentences when the
    # split has enough of them).
    pool = sorted(k for k in utts if k[1] != plan["voice"]
                  and k[0] in rec["sentence_split"][split])
    pool_other = [k for k in pool if k[0] not in used] or pool
    if not pool_other:
        pool_other = sorted(k for k in utts if k[0] in rec["sentence_split"][split]
                            and k[1] in rec["voices"][split])
    copies = []
    for spec in _degradation_specs(rec["plan"], rng):
        talkers, talker_keys = None, []
        if _uses_babble(spec):
            n_t = min(len(pool_other), int(rng.integers(3, 7)))
            pick = rng.choice(len(pool_other), size=n_t, replace=False)
            talker_keys = [pool_other[int(p)] for p in sorted(pick)]
            talkers = [utts[k] for k in talker_keys]
        y = degrade.apply(clean, spec, rng, talkers)
        q = np.clip(np.round(y * 32767.0), -32767, 32767).astype(np.int16)
        feats = features.clip_features(q.astype(np.float64) / 32767.0)
        wl = teacher.score_onnx(feats).astype(np.float32)
        copies.append((q, feats, wl, {
            "clean_clip": plan["i"],
            "sentences": list(plan["candidates"][:count]),
            "voice": plan["voice"], "rate": plan["rate"], "pitch": plan["pitch"],
            "kind": _kind_name(spec), "degradation": spec,
            "babble_talkers": [[int(k[0]), k[1]] for k in talker_keys],
            "seconds": round(len(q) / features.SAMPLE_RATE, 3), "windows": int(len(wl)),
            "label": float(np.mean(wl.astype(np.float64)))}))
    return copies


def _build(rec, progress, workers=1):
    from tqdm import tqdm

    t0 = time.perf_counter()
    plans = _plan_clean_clips(rec)
    utts, counts = _synthesize_clean(plans, rec, progress, workers)
    timings = {"speech_s": time.perf_counter() - t0, "utterances": len(utts),
               "workers": workers}
    t0 = time.perf_counter()
    out = {s: {"audio": [], "features": [], "window_labels": [], "clip_index": [],
               "labels": [], "meta": []} for s in SPLITS}
    bar = tqdm(total=len(plans) * len(rec["plan"]), desc="degrade + features + teacher",
               disable=not progress, leave=False)
    jobs = [(plan, counts[j], rec) for j, plan in enumerate(plans)]
    _UTTS.clear()
    _UTTS.update(utts)
    try:
        if workers > 1:
            import concurrent.futures
            import multiprocessing
            with concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("fork")) as pool:
                results = pool.map(_degrade_clean_clip, jobs, chunksize=1)
                for plan, copies in zip(plans, results):
                    _collect(out[plan["split"]], copies)
                    bar.update(len(copies))
        else:
            for plan, job in zip(plans, jobs):
                copies = _degrade_clean_clip(job)
                _collect(out[plan["split"]], copies)
                bar.update(len(copies))
    finally:
        _UTTS.clear()
    bar.close()
    timings["degrade_features_teacher_s"] = time.perf_counter() - t0
    splits = {}
    for s in SPLITS:
        d = out[s]
        offsets = np.zeros(len(d["audio"]) + 1, np.int64)
        offsets[1:] = np.cumsum([len(a) for a in d["audio"]])
        splits[s] = Split(
            name=s,
            features=np.concatenate(d["features"]).astype(np.float32) if d["features"]
            else np.zeros((0, features.N_FRAMES, features.N_MELS), np.float32),
            clip_index=np.concatenate(d["clip_index"]) if d["clip_index"]
            else np.zeros(0, np.int32),
            labels=np.asarray(d["labels"], np.float32),
            window_labels=np.concatenate(d["window_labels"]) if d["window_labels"]
            else np.zeros(0, np.float32),
            meta=d["meta"],
            audio=np.concatenate(d["audio"]) if d["audio"] else np.zeros(0, np.int16),
            audio_offsets=offsets)
    return splits, timings


# ---------------------------------------------------------------------------------- storage


def _save(path, splits, rec, key, build_seconds, timings):
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for s, sp in splits.items():
        np.save(tmp / f"{s}_features.npy", sp.features)
        np.save(tmp / f"{s}_audio.npy", sp.audio)
        np.savez(tmp / f"{s}_arrays.npz", clip_index=sp.clip_index, labels=sp.labels,
                 window_labels=sp.window_labels, audio_offsets=sp.audio_offsets)
    (tmp / "meta.json").write_text(json.dumps(
        {"key": key, "recipe": rec, "build_seconds": build_seconds, "timings": timings,
         "meta": {s: sp.meta for s, sp in splits.items()}}, indent=1))
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    try:
        os.replace(tmp, path)
    except OSError:     # another process stored it first
        shutil.rmtree(tmp, ignore_errors=True)


def _load(path, mmap):
    info = json.loads((path / "meta.json").read_text())
    splits = {}
    for s in SPLITS:
        arr = np.load(path / f"{s}_arrays.npz")
        splits[s] = Split(
            name=s, features=np.load(path / f"{s}_features.npy",
                                     mmap_mode="c" if mmap else None),
            clip_index=arr["clip_index"], labels=arr["labels"],
            window_labels=arr["window_labels"], meta=info["meta"][s],
            audio=np.load(path / f"{s}_audio.npy", mmap_mode="c" if mmap else None),
            audio_offsets=arr["audio_offsets"])
    return splits, info


def build_corpus(size="default", cache=True, progress=True, *, mmap=True, workers=None):
    """Build (or load from the cache) the corpus of ``size`` ("default", "large" or "tiny").

    ``workers``: processes for the build (speech synthesis, and degradation, features and
    teacher labels per clean clip); default: the machine's cores. The corpus does not depend
    on it (every clip draws from its own random stream).

    ``cache=False`` builds from scratch and stores nothing (the speech cache is still used).
    A cached corpus's features and audio are memory-mapped copy-on-write by default (numpy
    memmaps: writable, but writes never reach the files; a load takes milliseconds and pages
    are read on first use); ``mmap=False`` reads them into memory instead (~0.75 GB for the
    default size, a few seconds)."""
    if size not in SIZES:
        raise QhwInputError(f"size: must be one of {', '.join(SIZES)}, got {size!r}")
    if not isinstance(cache, bool):
        raise QhwInputError(f"cache: must be true or false, got {cache!r}")
    if not isinstance(mmap, bool):
        raise QhwInputError(f"mmap: must be true or false, got {mmap!r}")
    if workers is None:
        workers = os.cpu_count() or 1
    speech.check_workers(workers)
    rec = recipe(size)
    key = corpus_key(size)
    path = cache_dir() / f"{size}-{key}"
    if cache and (path / "meta.json").is_file():
        t0 = time.perf_counter()
        try:
            splits, info = _load(path, mmap)
            return Corpus(**splits, key=key, path=path, recipe=rec,
                          build_seconds=float(info["build_seconds"]),
                          timings=info.get("timings", {}),
                          load_seconds=time.perf_counter() - t0)
        except (OSError, ValueError, KeyError):
            pass    # a damaged cache entry: build again
    t0 = time.perf_counter()
    splits, timings = _build(rec, progress, workers)
    build_seconds = time.perf_counter() - t0
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(path, splits, rec, key, build_seconds, timings)
    return Corpus(**splits, key=key, path=path if cache else None, recipe=rec,
                  build_seconds=build_seconds, timings=timings)


def summary(corpus):
    """A text summary: clips and windows per split, label min/mean/max per degradation kind."""
    lines = [f"DNSMOS corpus {corpus.recipe['size']} (recipe v{corpus.recipe['version']}, "
             f"key {corpus.key})",
             f"built in {corpus.build_seconds:.1f} s" + (
                 f" (speech {corpus.timings['speech_s']:.1f} s for "
                 f"{corpus.timings['utterances']} utterances, degradations + features + "
                 f"teacher {corpus.timings['degrade_features_teacher_s']:.1f} s)"
                 if "speech_s" in corpus.timings else "") + (
                 f"; loaded in {corpus.load_seconds:.2f} s" if corpus.load_seconds else ""),
             f"{'split':6} {'clips':>6} {'windows':>8} {'sentences':>10} {'voices':>7} "
             f"{'label min':>10} {'mean':>6} {'max':>6}"]
    for s, sp in corpus.splits.items():
        sents = {i for m in sp.meta for i in m["sentences"]}
        voices = {m["voice"] for m in sp.meta}
        lab = sp.labels if len(sp) else np.zeros(1)
        lines.append(f"{s:6} {len(sp):6d} {sp.n_windows:8d} {len(sents):10d} {len(voices):7d} "
                     f"{lab.min():10.2f} {lab.mean():6.2f} {lab.max():6.2f}")
    lines.append("")
    lines.append(f"{'degradation':16} {'clips':>6} {'min':>6} {'mean':>6} {'max':>6}")
    kinds = {}
    for sp in corpus.splits.values():
        for m, lab in zip(sp.meta, sp.labels):
            kinds.setdefault(m["kind"], []).append(float(lab))
    for k in sorted(kinds, key=lambda k: -np.mean(kinds[k])):
        v = np.asarray(kinds[k])
        lines.append(f"{k:16} {len(v):6d} {v.min():6.2f} {v.mean():6.2f} {v.max():6.2f}")
    return "\n".join(lines)


def _main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m qhw.dnsmos.corpus",
                                 description="Build (or load) the DNSMOS distillation corpus "
                                             "and print a summary.")
    ap.add_argument("--size", default="default", choices=sorted(SIZES))
    ap.add_argument("--workers", type=int, default=None,
                    help="processes for the build (default: the machine's cores)")
    ap.add_argument("--no-cache", action="store_true", help="build from scratch, store nothing")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    corpus = build_corpus(args.size, cache=not args.no_cache, progress=not args.quiet,
                          workers=args.workers)
    print(summary(corpus))
    print(f"\nthis call: {time.perf_counter() - t0:.2f} s; cache: {corpus.path}")
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main())
