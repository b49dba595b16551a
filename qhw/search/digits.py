"""scikit-learn's handwritten digits read row by row: a sequence of 8 steps of 8 features.

``sklearn.datasets.load_digits`` ships the data (1,797 images of 8 x 8 pixels with values 0..16,
the UCI optical-digits test set; no network). Image n becomes the sequence x[n, t, j] =
(pixel[t, j] - 8) / 8 in [-1, 1]: step t is pixel row t, feature j its column.

Split (fixed, :data:`SEED`): per class, a seeded permutation of its images gives round(n/6) to
validation, round(n/6) to test and the rest to training: 1,199 / 299 / 299 images, every class in
every split in proportion. ``tiny`` keeps the first 200 / 100 / 100 of each split (for tests).

Public API
----------
load(size="default") -> TaskData;  CLASSES, SEED, STEPS, FEATURES
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from . import tasks

__all__ = ["CLASSES", "SEED", "STEPS", "FEATURES", "TINY", "load"]

CLASSES = tuple(str(d) for d in range(10))
SEED = 64
STEPS = FEATURES = 8
TINY = {"train": 200, "val": 100, "test": 100}


def _raw():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:     # pragma: no cover - scikit-learn is a dependency of the search
        from ..errors import QhwInputError
        raise QhwInputError('task digits: needs scikit-learn (pip install "qhw[train]")') from e
    d = load_digits()
    return np.asarray(d.images, dtype=np.float64), np.asarray(d.target, dtype=np.int64)


def _split_indices(y):
    rng = np.random.default_rng(SEED)
    parts = {"train": [], "val": [], "test": []}
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) / 6))
        parts["val"].extend(idx[:k])
        parts["test"].extend(idx[k:2 * k])
        parts["train"].extend(idx[2 * k:])
    # One more seeded shuffle so that a split's order (and a tiny prefix) mixes the classes.
    return {s: np.asarray(rng.permutation(v), dtype=np.int64) for s, v in parts.items()}


def load(size="default"):
    """The digits task: 8 steps x 8 features, 10 classes; ``size`` "default" or "tiny"."""
    tasks.check_size(size)
    images, y = _raw()
    x = ((images - 8.0) / 8.0).astype(np.float32)        # (1797, 8, 8): rows are steps
    idx = _split_indices(y)
    if size == "tiny":
        idx = {s: v[:TINY[s]] for s, v in idx.items()}
    digest = hashlib.sha256(images.tobytes() + y.tobytes()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps({"data": digest, "seed": SEED, "size": size,
                                     "scale": "(v - 8) / 8"}).encode()).hexdigest()[:20]
    splits = {s: tasks.Split(s, x[v], y[v], [{"index": int(i)} for i in v])
              for s, v in idx.items()}
    return tasks.TaskData("digits", size, **splits, classes=CLASSES, key=key,
                          info={"source": "sklearn.datasets.load_digits", "data_sha": digest})
