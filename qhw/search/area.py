"""Area model of the GRU datapath over its 21 format widths (issue 14, part B; docs/search.md).

The search asks for the area of hundreds of width vectors; one synthesis of the KWS-size GRU
takes about 50 s per target on the shared 2-core machine. So a least-squares model per figure
(generic ``transistors``, counting flip-flops and memory bits; ECP5 ``LUT4``) is fitted on
synthesized configurations (the homogeneous ones and random width vectors, synthesized with
:class:`qhw.synth.area_model.SynthArea`, cached on disk by ``qhw.synth_flow``) on physically
meaningful features of the datapath (:func:`features`), and its error is reported on held-out
synthesized configurations (:class:`GruAreaFit`).

Size and folding are fixed (:data:`KWS_SIZE`: the KWS model's GRU, I = 40, H = 48, 8 MACs per
cycle); the binary points follow the calibrated ranges (:data:`KWS_RANGES`, the table of
docs/search.md, or a task's own ``prepared.ranges``), so a width vector is a whole config. No
PyTorch is needed here.

Public API
----------
KWS_SIZE, KWS_RANGES, WIDTH_BOUNDS, FEATURES, FIGURES, gru_unit_config, features,
model_size_bits, random_widths, design_widths, GruAreaFit, fit_area_model
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from ..errors import QhwInputError
from ..golden import gru as g

__all__ = ["KWS_SIZE", "KWS_RANGES", "WIDTH_BOUNDS", "FEATURES", "FIGURES", "gru_unit_config",
           "features", "model_size_bits", "random_widths", "design_widths", "GruAreaFit",
           "fit_area_model", "AREA_MODEL_VERSION"]

AREA_MODEL_VERSION = 1

#: The KWS model's GRU (qhw.search.model.MODELS["kws"]: I = 40 log-mel bands, H = 48) folded
#: onto 8 multipliers: 3H(ceil(I/8) + ceil(H/8)) = 1,584 issue cycles per step.
KWS_SIZE = {"input_size": 40, "hidden_size": 48, "macs": 8}

#: Calibrated ranges R of the KWS model (docs/search.md, "The calibrated ranges").
KWS_RANGES = {"input": 4, "weight": 1, "bias": 1, "state": 1, "mm_ir": 8, "mm_hr": 8,
              "mm_iz": 8, "mm_hz": 16, "mm_in": 8, "mm_hn": 8, "add_r": 8, "add_z": 8,
              "add_n": 4, "sig_r": 1, "sig_z": 1, "tanh_n": 1, "mul_rn": 8, "sub_z": 1,
              "mul_n": 1, "mul_zh": 1, "add_h": 1}

#: Width bounds of every gene (format name): the area model is fitted within them and the
#: search searches within them.
WIDTH_BOUNDS = (3, 12)

#: Figures modelled: (target, figure).
FIGURES = (("generic", "transistors"), ("ecp5", "LUT4"))

#: GRU options shared with the search's model (qhw.search.model.GRU_OPTIONS).
GRU_OPTIONS = {"activation": "lut", "lut_bits": 8, "sigmoid_range": 8, "tanh_range": 4}

FEATURES = ("mac_mult", "mac_sum", "weight_bits", "bias_bits", "vector_regs", "ew_mult",
            "ew_width", "table_bits", "const")


def _binary_point(r, total):
    if r == 0:
        return total
    mant, e = math.frexp(float(r))
    k = e - 1 if mant == 0.5 else e
    return int(min(max(total - 1 - k, g.MIN_FRAC), total))


def _check_widths(widths):
    if not isinstance(widths, dict):
        raise QhwInputError(f"widths: must be an object mapping the {len(g.FORMAT_NAMES)} "
                            f"format names to widths, got {type(widths).__name__}")
    unknown = sorted(set(widths) - set(g.FORMAT_NAMES))
    if unknown:
        raise QhwInputError(f"widths: unknown name {unknown[0]!r}; allowed: "
                            f"{', '.join(g.FORMAT_NAMES)}")
    for name in g.FORMAT_NAMES:
        v = widths.get(name)
        if v is None:
            raise QhwInputError(f"widths.{name}: missing")
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= g.MAX_BITS:
            raise QhwInputError(f"widths.{name}: must be an integer 1..{g.MAX_BITS}, got {v!r}")
    return {name: int(widths[name]) for name in g.FORMAT_NAMES}


def gru_unit_config(widths, size=None, ranges=None):
    """The ``gru`` unit's config dict for a width per format name (binary points from
    ``ranges``, default :data:`KWS_RANGES`, by the rule of ``qhw.search.model.binary_point``)."""
    widths = _check_widths(widths)
    size = dict(KWS_SIZE if size is None else size)
    ranges = KWS_RANGES if ranges is None else ranges
    formats = {n: [w, _binary_point(ranges[n], w), "nearest_even"] for n, w in widths.items()}
    return {**size, "formats": formats, "output": "last", **GRU_OPTIONS}


def features(widths, size=None, ranges=None):
    """The fitted model's features of a width vector (dict of floats):

    ``mac_mult``
        M multipliers of weight x operand bits (operand = max(input, state) width).
    ``mac_sum``
        The adder tree of M products (M x (w + o) bits) plus the accumulator, 5 row and 6
        snapshot registers of the MAC sum's width (13 x mac bits).
    ``weight_bits``
        Weight memory bits, 3H(ceil(I/M) + ceil(H/M)) x M x weight width (a ROM of random
        weights: logic in the generic netlist, block RAM on the ECP5).
    ``bias_bits``
        Bias memory bits, H x 6 x bias width.
    ``vector_regs``
        The rotating x and h operand registers and the h, h' registers (bits).
    ``ew_mult``
        The element-wise multipliers: sig_r x mm_hn (mul_rn), sig_z x state (mul_zh), sub_z x
        tanh_n (mul_n) operand bit products.
    ``ew_width``
        Sum of the 17 operators' widths: their narrowing, adders and pipeline registers.
    ``table_bits``
        The three activation tables, 2^lut_bits x output width.
    ``const``
        Control, counters, FIFO: what no width changes.
    """
    cfg_dict = gru_unit_config(widths, size, ranges)
    cfg = g.GruConfig(**cfg_dict)
    w = {n: cfg.fmt(n).total for n in g.FORMAT_NAMES}
    i, h, m = cfg.input_size, cfg.hidden_size, cfg.macs
    op = max(w["input"], w["state"])
    mac = max(g.sum_bits(cfg, "i"), g.sum_bits(cfg, "h"))
    return {
        "mac_mult": float(m * w["weight"] * op),
        "mac_sum": float(m * (w["weight"] + op) + 13 * mac),
        "weight_bits": float(3 * h * (cfg.chunks_i + cfg.chunks_h) * m * w["weight"]),
        "bias_bits": float(6 * h * w["bias"]),
        "vector_regs": float(cfg.chunks_i * m * w["input"] + cfg.chunks_h * m * w["state"]
                             + 2 * h * w["state"]),
        "ew_mult": float(w["sig_r"] * w["mm_hn"] + w["sig_z"] * w["state"]
                         + w["sub_z"] * w["tanh_n"]),
        "ew_width": float(sum(w[n] for n in g.OPERATORS)),
        "table_bits": float((1 << cfg.lut_bits) * (w["sig_r"] + w["sig_z"] + w["tanh_n"])),
        "const": 1.0,
    }


def model_size_bits(widths, input_size, hidden_size):
    """Model size as the paper counts it: weights x weight width + biases x bias width, of the
    GRU layer alone (3H(I+H) weights, 6H biases; the 8-bit classifier is the same for all)."""
    widths = _check_widths(widths)
    return (3 * hidden_size * (input_size + hidden_size) * widths["weight"]
            + 6 * hidden_size * widths["bias"])


def random_widths(rng, bounds=WIDTH_BOUNDS):
    lo, hi = bounds
    return {n: int(rng.integers(lo, hi + 1)) for n in g.FORMAT_NAMES}


def design_widths(train=9, holdout=4, *, homogeneous=(4, 6, 8, 12), seed=14,
                  bounds=WIDTH_BOUNDS):
    """Training widths (the homogeneous ones, then ``train`` random vectors) and ``holdout``
    further random vectors, uniform per gene within ``bounds``, from a seeded generator."""
    rng = np.random.default_rng(seed)
    tr = [{n: b for n in g.FORMAT_NAMES} for b in homogeneous]
    tr += [random_widths(rng, bounds) for _ in range(train)]
    ho = [random_widths(rng, bounds) for _ in range(holdout)]
    return tr, ho


def _errors(actual, predicted):
    a, b = np.asarray(actual, float), np.asarray(predicted, float)
    rel = np.abs(b - a) / np.maximum(np.abs(a), 1e-12)
    return {"mean_rel": float(rel.mean()) if rel.size else 0.0,
            "max_rel": float(rel.max()) if rel.size else 0.0,
            "rms": float(np.sqrt(np.mean((b - a) ** 2))) if rel.size else 0.0}


@dataclasses.dataclass
class GruAreaFit:
    """Least squares per figure on :data:`FEATURES`, non-negative coefficients (scipy's NNLS: a
    bit more of any resource never makes the design smaller), with its error on the training and
    held-out configurations. ``points``: [{"widths", "figures", "role": train|holdout}]."""

    size: dict
    ranges: dict
    coef: dict
    points: list
    train_error: dict
    holdout_error: dict
    seconds: float = 0.0

    def predict(self, widths):
        x = features(widths, self.size, self.ranges)
        row = np.array([x[f] for f in FEATURES])
        return {name: float(row @ np.array(c)) for name, c in self.coef.items()}

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d):
        return cls(**d)

    def report(self):
        n_tr = sum(p["role"] == "train" for p in self.points)
        n_ho = len(self.points) - n_tr
        lines = [f"GRU area model: {n_tr} training, {n_ho} held-out synthesized configurations "
                 f"(I={self.size['input_size']}, H={self.size['hidden_size']}, "
                 f"M={self.size['macs']})"]
        for name in self.coef:
            tr, ho = self.train_error[name], self.holdout_error[name]
            lines.append(f"  {name}: train mean {100 * tr['mean_rel']:.2f} % max "
                         f"{100 * tr['max_rel']:.2f} %; held-out mean {100 * ho['mean_rel']:.2f}"
                         f" % max {100 * ho['max_rel']:.2f} %")
        return "\n".join(lines)


def _cache_path(key):
    from ..synth.area_model import cache_root
    return cache_root() / f"gru-formats-{key}.json"


def fit_area_model(train, holdout, *, size=None, ranges=None, figures=FIGURES, jobs=1,
                   synth=None, cache=True, progress=False):
    """Synthesize every configuration (cached), fit, report held-out error.

    ``train``, ``holdout``: lists of width dicts (:func:`design_widths`); ``synth``: a callable
    ``(target, [config, ...]) -> [figures, ...]`` (default: :class:`SynthArea` per target,
    ``jobs`` processes). The fit is cached on disk by the points, size, ranges and figures."""
    from scipy.optimize import nnls
    size = dict(KWS_SIZE if size is None else size)
    ranges = dict(KWS_RANGES if ranges is None else ranges)
    train = [_check_widths(w) for w in train]
    holdout = [_check_widths(w) for w in holdout]
    if len(train) < 2:
        raise QhwInputError("train: at least 2 configurations to fit on")
    key = hashlib.sha256(json.dumps([AREA_MODEL_VERSION, train, holdout, size, ranges,
                                     [list(f) for f in figures], FEATURES],
                                    sort_keys=True).encode()).hexdigest()[:20]
    path = _cache_path(key)
    if cache and synth is None and path.is_file():
        return GruAreaFit.from_json(json.loads(path.read_text()))
    t0 = time.perf_counter()
    configs = [gru_unit_config(w, size, ranges) for w in train + holdout]
    figs = [{} for _ in configs]
    for target, figure in figures:
        if synth is not None:
            got = synth(target, configs)
        else:
            from ..synth.area_model import SynthArea
            sa = SynthArea(target, jobs=jobs)
            sa.prefetch([("gru", c) for c in configs])
            got = [sa("gru", c) for c in configs]
        for f, res in zip(figs, got):
            f[figure] = float(res[figure])
    X = np.array([[features(w, size, ranges)[f] for f in FEATURES] for w in train + holdout])
    n = len(train)
    coef, tr_err, ho_err = {}, {}, {}
    for _, figure in figures:
        y = np.array([f[figure] for f in figs])
        scale = np.maximum(np.abs(X[:n]).max(axis=0), 1e-12)
        # relative least squares: each point weighted by 1/y, so small designs count as much
        wgt = 1.0 / np.maximum(y[:n], 1e-12)
        c, _ = nnls((X[:n] / scale) * wgt[:, None], y[:n] * wgt)
        c = c / scale
        coef[figure] = [float(v) for v in c]
        tr_err[figure] = _errors(y[:n], X[:n] @ c)
        ho_err[figure] = _errors(y[n:], X[n:] @ c)
    points = ([{"widths": w, "figures": f, "role": "train"} for w, f in zip(train, figs[:n])]
              + [{"widths": w, "figures": f, "role": "holdout"}
                 for w, f in zip(holdout, figs[n:])])
    fit = GruAreaFit(size, ranges, coef, points, tr_err, ho_err,
                     round(time.perf_counter() - t0, 1))
    if cache and synth is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fit.to_json(), indent=1))
    return fit


def default_fit_path():
    """Where bench/bench_search_area.py stores the KWS-size fit the search uses by default: in
    the package (package data), so that an installed qhw, not only a checkout, has it."""
    return Path(__file__).resolve().parent / "area_fit.json"
