"""The sequence-classification tasks of the format search, behind one container (no PyTorch).

A task is a :class:`TaskData`: three :class:`Split` (train, val, test) of real-valued sequences
``x`` (N, T, I) float32 and class indices ``y`` (N,) int64, the class names, and a ``key`` that
changes whenever the data would (the cache key of anything trained on it).

=========  =========================================  ==========  ==========================
task       data                                        T x I       classes
=========  =========================================  ==========  ==========================
``kws``    synthetic keyword spotting (:mod:`.kws`)    49 x 40     10 keywords, unknown, silence
``digits`` scikit-learn's digits by rows (:mod:`.digits`) 8 x 8    the digits 0-9
=========  =========================================  ==========  ==========================

Public API
----------
TASKS, SIZES, Split, TaskData, load_task(name, size="default", cache=True, progress=True),
check_task(name), check_size(size)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import QhwInputError

__all__ = ["TASKS", "SIZES", "Split", "TaskData", "check_task", "check_size", "load_task",
           "cache_root"]

TASKS = ("kws", "digits")
SIZES = ("default", "tiny")


def cache_root():
    """``<qhw cache>/search`` (the cache root honours ``$QHW_CACHE_DIR``, as synthesis does)."""
    from ..synth_flow import cache_root as synth_root
    return synth_root().parent / "search"


@dataclasses.dataclass
class Split:
    """One split: ``x`` (N, T, I) float32, ``y`` (N,) int64 class indices, ``meta`` one dict
    per sequence (where it came from)."""
    name: str
    x: np.ndarray
    y: np.ndarray
    meta: list

    def __len__(self):
        return len(self.y)


@dataclasses.dataclass
class TaskData:
    name: str                   # "kws" or "digits"
    size: str                   # "default" or "tiny"
    train: Split
    val: Split
    test: Split
    classes: tuple              # class names, index = label
    key: str                    # hash of everything that decides the data
    info: dict = dataclasses.field(default_factory=dict)    # build figures, normalisation, path

    @property
    def splits(self):
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def steps(self):
        return int(self.train.x.shape[1])

    @property
    def input_size(self):
        return int(self.train.x.shape[2])

    def summary(self):
        lines = [f"task {self.name} ({self.size}, key {self.key}): {len(self.classes)} classes, "
                 f"sequences of {self.steps} steps x {self.input_size} features"]
        for s, sp in self.splits.items():
            counts = np.bincount(sp.y, minlength=len(self.classes))
            lines.append(f"  {s:5} {len(sp):6d} sequences; per class min {counts.min()} "
                         f"max {counts.max()}")
        return "\n".join(lines)


def check_task(name):
    if not isinstance(name, str) or name not in TASKS:
        raise QhwInputError(f"task: must be one of {', '.join(TASKS)}, got {name!r}")
    return name


def check_size(size):
    if not isinstance(size, str) or size not in SIZES:
        raise QhwInputError(f"size: must be one of {', '.join(SIZES)}, got {size!r}")
    return size


def load_task(name, size="default", *, cache=True, progress=True):
    """The data of task ``name`` ("kws" or "digits") at ``size`` ("default" or "tiny"), built or
    loaded from the cache (``<qhw cache>/search/...``)."""
    check_task(name)
    check_size(size)
    if name == "kws":
        from . import kws
        return kws.load(size, cache=cache, progress=progress)
    from . import digits
    return digits.load(size)


def _atomic_dir(path: Path):
    """A fresh temporary folder beside ``path`` to fill and then ``os.replace`` into place."""
    import os
    import shutil
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _publish(tmp: Path, path: Path):
    import os
    import shutil
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    try:
        os.replace(tmp, path)
    except OSError:     # another process stored it first
        shutil.rmtree(tmp, ignore_errors=True)
