"""Helpers of the units' operation counts (``Unit.operations``, priced by
:func:`qhw.synth.energy.operation_energy`; docs/energy.md states the conventions).

A count is ``{"inferences": n, "inference": what one is, "ops": [...], "notes": [...]}`` where each
op is ``{"op": kind, "bits": width or [a, b], "count": how many, "what": which operation}``.
"""

import numpy as np


def op(kind, bits, count, what):
    """One entry of ``ops``: ``count`` operations ``kind`` of width ``bits``."""
    bits = [int(b) for b in bits] if isinstance(bits, (tuple, list)) else int(bits)
    return {"op": kind, "bits": bits, "count": int(count), "what": what}


def counts(inferences, inference, ops, notes=()):
    """The dict ``Unit.operations`` returns; entries with a zero count are dropped."""
    return {"inferences": int(inferences), "inference": inference,
            "ops": [o for o in ops if o["count"] > 0], "notes": list(notes)}


def frames_count(frames):
    """An int frame count (first element of a tuple)."""
    return int(frames[0]) if isinstance(frames, (tuple, list)) else int(frames)


def batch_size(inputs, key=None):
    """N of batched inputs (an array, or a dict whose ``key`` array is batched)."""
    x = inputs[key] if key is not None else inputs
    return int(np.asarray(x).shape[0])


def aligned_add_bits(a, b):
    """Width of the exact sum of two fixed-point formats (total, frac): binary points aligned,
    one carry bit."""
    (ta, fa), (tb, fb) = a, b
    frac = max(fa, fb)
    return max(ta - fa, tb - fb) + frac + 1
