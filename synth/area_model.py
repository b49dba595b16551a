"""Area figures of a unit at a given config, for the folding solvers (``qhw.folding``).

Two models, both callable as ``area(unit, config) -> dict of figures``:

:class:`SynthArea`
    Exact: synthesizes the unit at that config (``qhw.synth_flow.synthesize_unit``, cached on
    disk by the Verilog text, target and tool versions) and returns the target's figures
    (ecp5: ``LUT4``, ``FF``, ``CCU2C``, ``DP16KD``, ...; generic: ``transistors``, ...).
:class:`FittedArea`
    A least-squares model per figure, fitted on a few synthesized (PE, SIMD) points of one base
    config, on physically meaningful features (:func:`features`); it reports its error on the
    training points and on held-out points, caches the fit on disk, and warns (or raises) when a
    query lies outside the fitted range instead of extrapolating silently.

Weights are part of the design (they are baked into the unit's memories, and a small memory
becomes LUT logic whose size depends on the bits), so both models synthesize with the unit's
random weights from a fixed seed (``seed``, default 0), the same weights ``qhw synth`` uses
without ``--weights``. See docs/folding.md.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from .. import registry
from ..config import config_from_dict
from ..errors import QhwInputError

__all__ = ["SynthArea", "FittedArea", "AreaFit", "AreaExtrapolationWarning", "features",
           "FEATURES", "design_points", "cache_root", "MODEL_VERSION"]

#: Bumped whenever the features or the fitting change (part of the cache key).
MODEL_VERSION = 1

#: Feature names, in the order of the fitted coefficients.
FEATURES = ("lane_bits", "acc_bits", "weight_words", "const")

_FOLDABLE = ("binconv", "bamconv", "macconv")


def cache_root():
    env = os.environ.get("QHW_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "qhw") / "area_model"


def _config(unit, config, where=None):
    u = registry.get(unit)
    if not isinstance(config, dict):
        raise QhwInputError(f"{where or unit + ' config'}: expected a JSON object (dict), got "
                            f"{type(config).__name__}")
    return u, config_from_dict(u.config, config, where=where or f"{unit} config")


# Exact: synthesis ---------------------------------------------------------------------------------

def _synth_figures(unit, config, target, fmax, seed):
    from .. import flow, synth_flow
    u, cfg = _config(unit, config)
    params = flow.read_params(u, cfg, None, seed=seed)
    result = synth_flow.synthesize_unit(u, cfg, params, target, fmax=fmax)
    return dict(result["figures"])


class SynthArea:
    """Exact area: synthesize ``unit`` at ``config`` for ``target`` and return its figures.

    Parameters
    ----------
    target : str
        A ``synth.flows`` target (``"ecp5"``, ``"generic"``, ``"xc7"``, ...).
    fmax : bool
        ecp5: also place and route for ``fmax_mhz`` (slow; not needed for area).
    seed : int
        Seed of the unit's random weights.
    jobs : int
        Processes :meth:`prefetch` synthesizes in parallel.

    Results are cached on disk by ``qhw.synth_flow`` (``$QHW_CACHE_DIR/synth``) and in memory
    here, so asking again costs nothing. The figures are the target's own dict, unchanged (read
    them by key: targets differ in what they report).
    """

    def __init__(self, target="ecp5", fmax=False, *, seed=0, jobs=1):
        if not isinstance(target, str) or not target:
            raise QhwInputError(f"target: must be a synthesis target name, got {target!r}")
        self.target, self.fmax, self.seed, self.jobs = target, bool(fmax), seed, max(1, int(jobs))
        self._memo = {}

    def _key(self, unit, config):
        return unit, json.dumps(config, sort_keys=True)

    def __call__(self, unit, config):
        key = self._key(unit, config)
        if key not in self._memo:
            self._memo[key] = _synth_figures(unit, dict(config), self.target, self.fmax,
                                             self.seed)
        return dict(self._memo[key])

    def prefetch(self, queries):
        """Synthesize every ``(unit, config)`` not yet known, ``jobs`` at a time."""
        todo = {}
        for unit, config in queries:
            key = self._key(unit, config)
            if key not in self._memo:
                _config(unit, dict(config))  # bad configs fail here, before any tool runs
                todo[key] = (unit, dict(config))
        if self.jobs <= 1 or len(todo) <= 1:
            for key, (unit, config) in todo.items():
                self._memo[key] = _synth_figures(unit, config, self.target, self.fmax, self.seed)
            return
        with concurrent.futures.ProcessPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(_synth_figures, unit, config, self.target, self.fmax,
                                   self.seed): key for key, (unit, config) in todo.items()}
            for future in concurrent.futures.as_completed(futures):
                self._memo[futures[future]] = future.result()

    def __repr__(self):
        return f"SynthArea(target={self.target!r}, fmax={self.fmax})"


# Fitted: least squares on synthesized points ------------------------------------------------------

class AreaExtrapolationWarning(UserWarning):
    """A :class:`FittedArea` query outside the range of the points it was fitted on."""


def features(unit, cfg):
    """The fitted model's features of a foldable conv config (a config object).

    ``lane_bits``
        PE*SIMD lanes times the bits one lane's arithmetic handles: 1 for binconv (XNOR and a
        popcount input), the weight bits for bamconv (a masked add of a k-bit weight), act bits
        x weight bits for macconv (a multiplier).
    ``acc_bits``
        PE accumulators times the accumulator width (popcount bits, or the signed sum's width).
    ``weight_words``
        Depth of the weight memory, (C_out/PE)*(K/SIMD): its address counter and, in LUTs, the
        read multiplexers (its total bits C_out*K*weight_bits do not depend on the folding).
    ``const``
        1: the window generator, line buffer, control and everything else the folding leaves.
    """
    if unit not in _FOLDABLE:
        raise QhwInputError(f"unit: FittedArea models the foldable units ({', '.join(_FOLDABLE)}),"
                            f" not {unit!r}")
    if unit == "binconv":
        lane, acc = 1, cfg.popcount_bits
    else:
        from ..golden import bamconv as golden
        lane = cfg.weight_bits * cfg.act_bits  # bamconv: 1-bit activations
        acc = golden.acc_bits(cfg)
    return {"lane_bits": cfg.pe * cfg.simd * lane, "acc_bits": cfg.pe * acc,
            "weight_words": cfg.neuron_fold * cfg.synapse_fold, "const": 1}


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _pick(values, frac):
    return values[round(frac * (len(values) - 1))]


#: Where training and held-out points fall in the (PE, SIMD) divisor grid, as fractions of the
#: way along each axis's divisor list: corners and centre first, then edge midpoints.
_TRAIN_FRACS = ((0, 0), (1, 1), (0, 1), (1, 0), (.5, .5), (.5, 0), (0, .5), (1, .5), (.5, 1),
                (.25, .25), (.75, .75))
_HOLDOUT_FRACS = ((1 / 3, 2 / 3), (2 / 3, 1 / 3), (1 / 3, 1 / 3), (2 / 3, 2 / 3),
                  (.25, .75), (.75, .25))


def _check_range(field, rng, values):
    if rng is None:
        return values
    if (not isinstance(rng, (tuple, list)) or len(rng) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)):
        raise QhwInputError(f"{field}: must be a (low, high) pair of integers, got {rng!r}")
    kept = [v for v in values if rng[0] <= v <= rng[1]]
    if not kept:
        raise QhwInputError(f"{field}: no divisor in {list(rng)} (divisors: {values})")
    return kept


def design_points(c_out, k, *, train=6, holdout=2, pe_range=None, simd_range=None):
    """Training and held-out (pe, simd) points on the divisor grid of c_out x k.

    Training points take the corners of the grid (so the fitted range is the whole box), the
    centre and edge midpoints; held-out points are interior points not among them. Returns
    ``(train_points, holdout_points)``."""
    pes = _check_range("pe_range", pe_range, _divisors(c_out))
    simds = _check_range("simd_range", simd_range, _divisors(k))
    chosen = []
    for fp, fs in _TRAIN_FRACS:
        point = (_pick(pes, fp), _pick(simds, fs))
        if point not in chosen:
            chosen.append(point)
        if len(chosen) == train:
            break
    held = []
    rest = [(p, s) for p in pes for s in simds if (p, s) not in chosen]
    for fp, fs in _HOLDOUT_FRACS:
        point = (_pick(pes, fp), _pick(simds, fs))
        if point not in chosen and point not in held:
            held.append(point)
        if len(held) == holdout:
            break
    for point in rest:  # small grids: any other point
        if len(held) >= holdout:
            break
        if point not in held:
            held.append(point)
    return chosen, held


def _numeric(figures):
    return {k: float(v) for k, v in figures.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _errors(actual, predicted):
    """{figure: {"rms", "max_abs", "max_rel"}} over points (lists of dicts)."""
    out = {}
    for name in (actual[0] if actual else {}):
        a = np.array([p[name] for p in actual], dtype=float)
        b = np.array([p[name] for p in predicted], dtype=float)
        err = b - a
        rel = np.abs(err)[a != 0] / np.abs(a[a != 0])
        out[name] = {"rms": float(np.sqrt(np.mean(err ** 2))),
                     "max_abs": float(np.max(np.abs(err))),
                     "max_rel": float(np.max(rel)) if rel.size else 0.0}
    return out


@dataclasses.dataclass
class AreaFit:
    """A fitted area model of one unit and base config (everything but pe and simd).

    Members
    -------
    unit : str
    base : dict
        The config without ``pe`` and ``simd``.
    target : str
    features : tuple of str
    coef : dict
        ``{figure: [coefficient per feature]}``.
    train, holdout : list
        ``[{"pe", "simd", "figures"}]``: the synthesized points, fitted on / held out.
    train_error, holdout_error : dict
        ``{figure: {"rms", "max_abs", "max_rel"}}`` of the model on those points.
    rank : int
        Rank of the training design matrix (less than the feature count: some coefficients are
        not determined by the points, and the fit is the minimum-norm one).
    ranges : dict
        ``{"pe": [lo, hi], "simd": [lo, hi], feature: [lo, hi]}`` over the training points.
    """

    unit: str
    base: dict
    target: str
    features: tuple
    coef: dict
    train: list
    holdout: list
    train_error: dict
    holdout_error: dict
    rank: int
    ranges: dict

    def _config(self, pe, simd):
        return _config(self.unit, {**self.base, "pe": pe, "simd": simd})[1]

    def outside(self, pe, simd):
        """None inside the fitted range, else a phrase saying where the query leaves it."""
        cfg = self._config(pe, simd)
        values = {"pe": pe, "simd": simd, **features(self.unit, cfg)}
        for name, (lo, hi) in self.ranges.items():
            v = values[name]
            if v < lo or v > hi:
                return f"{name}={v} outside the fitted [{lo}, {hi}]"
        return None

    def predict(self, pe, simd):
        """Predicted figures (floats, clipped at 0: counts cannot be negative)."""
        x = features(self.unit, self._config(pe, simd))
        row = np.array([x[f] for f in self.features], dtype=float)
        return {name: max(0.0, float(row @ np.array(c))) for name, c in self.coef.items()}

    def report(self, metric=None):
        """A few lines: the points, the rank, and the errors (of ``metric`` only, if given)."""
        names = [metric] if metric else sorted(self.coef)
        lines = [f"{self.unit} fit on {len(self.train)} points "
                 f"{[(p['pe'], p['simd']) for p in self.train]}, rank {self.rank} of "
                 f"{len(self.features)}; held out {[(p['pe'], p['simd']) for p in self.holdout]}"]
        for name in names:
            tr, ho = self.train_error.get(name), self.holdout_error.get(name)
            if tr is None:
                continue
            text = f"  {name}: train rms {tr['rms']:.1f} (max {100 * tr['max_rel']:.1f}%)"
            if ho:
                text += f", held-out rms {ho['rms']:.1f} (max {100 * ho['max_rel']:.1f}%)"
            lines.append(text)
        return "\n".join(lines)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(**{**d, "features": tuple(d["features"])})


def _hdl_fingerprint():
    """Hash of the generators' sources: a change to them must invalidate cached fits."""
    from .. import hdl
    h = hashlib.sha256()
    for path in sorted(Path(hdl.__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class FittedArea:
    """Area predicted by a linear model fitted on synthesized points, per (unit, base config).

    On the first query for a unit and base config (the config minus ``pe`` and ``simd``), it
    synthesizes ``train + holdout`` points of the (PE, SIMD) divisor grid
    (:func:`design_points`: corners, centre and edge midpoints to fit on, interior points held
    out), fits each numeric figure by least squares (``numpy.linalg.lstsq``) on
    :data:`FEATURES`, and caches the fit on disk (``$QHW_CACHE_DIR/area_model``, default
    ``~/.cache/qhw/area_model``), keyed by the unit, base config, target, points, the tool
    versions, the flows' scripts and the generators' sources.

    Parameters
    ----------
    target, fmax, seed, jobs
        As for :class:`SynthArea` (used when ``synth`` is not given).
    synth : callable(unit, config) -> figures, optional
        What gives the measured figures (default ``SynthArea(target, fmax, seed, jobs)``).
    train, holdout : int
        Points fitted on and held out (default 6 and 2).
    pe_range, simd_range : (low, high), optional
        Limit the design to these PE / SIMD values (default: all divisors). Queries outside the
        training points' range are extrapolations (see ``on_extrapolate``).
    on_extrapolate : 'warn', 'raise' or 'ignore'
        A query outside the fitted range: an :class:`AreaExtrapolationWarning` naming the layer
        values and the range, a :class:`QhwInputError`, or nothing (default 'warn').
    cache : bool or None
        Cache fits on disk. Default: on with the default synthesis, off with a custom ``synth``
        (whose results the cache key cannot see) unless ``cache_key`` names it.
    cache_key : str, optional
        Identifies a custom ``synth`` in the cache key.
    """

    def __init__(self, target="ecp5", *, fmax=False, seed=0, jobs=1, synth=None, train=6,
                 holdout=2, pe_range=None, simd_range=None, on_extrapolate="warn", cache=None,
                 cache_key=None, cache_dir=None):
        if on_extrapolate not in ("warn", "raise", "ignore"):
            raise QhwInputError(f"on_extrapolate: must be one of 'warn', 'raise', 'ignore', got "
                                f"{on_extrapolate!r}")
        if not isinstance(train, int) or train < len(FEATURES):
            raise QhwInputError(f"train: must be an integer >= {len(FEATURES)} (one point per "
                                f"feature at least), got {train!r}")
        if not isinstance(holdout, int) or holdout < 0:
            raise QhwInputError(f"holdout: must be an integer >= 0, got {holdout!r}")
        self.target, self.fmax, self.seed = target, bool(fmax), seed
        self.synth = synth if synth is not None else SynthArea(target, fmax, seed=seed, jobs=jobs)
        self.train, self.holdout = train, holdout
        self.pe_range, self.simd_range = pe_range, simd_range
        self.on_extrapolate = on_extrapolate
        self.cache = (synth is None or cache_key is not None) if cache is None else bool(cache)
        self.cache_key = cache_key if synth is not None else f"synth:{target}:{fmax}:{seed}"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._fits = {}

    @staticmethod
    def _base(config):
        return {k: v for k, v in sorted(config.items()) if k not in ("pe", "simd")}

    def _cache_path(self, unit, base, points):
        from .. import toolchain
        from . import flows
        scripts = [flows.SCRIPTS[name].read_text()
                   for name in getattr(flows, "TARGET_SCRIPTS", {}).get(self.target, ())
                   if name in flows.SCRIPTS]
        key = hashlib.sha256(json.dumps(
            [MODEL_VERSION, unit, base, self.target, self.fmax, self.cache_key, points,
             toolchain.versions(), scripts, _hdl_fingerprint()], sort_keys=True).encode()
        ).hexdigest()[:24]
        return (self.cache_dir or cache_root()) / f"{unit}-{key}.json"

    def fit(self, unit, config):
        """The :class:`AreaFit` for ``unit`` and the base of ``config`` (fitted if not known)."""
        if unit not in _FOLDABLE:
            registry.get(unit)  # an unknown unit is named as such
            raise QhwInputError(f"unit: FittedArea models the foldable units "
                                f"({', '.join(_FOLDABLE)}), not {unit!r}; use SynthArea")
        u, cfg = _config(unit, {**config, "pe": 1, "simd": 1}, where=f"{unit} config")
        base = self._base(config)
        memo = (unit, json.dumps(base, sort_keys=True))
        if memo in self._fits:
            return self._fits[memo]
        train, held = design_points(cfg.c_out, cfg.k, train=self.train, holdout=self.holdout,
                                    pe_range=self.pe_range, simd_range=self.simd_range)
        if len(train) < len(FEATURES):
            raise QhwInputError(
                f"{unit} config: its (pe, simd) grid has only {len(train)} distinct design "
                f"points in range, fewer than the {len(FEATURES)} features; use SynthArea")
        path = self._cache_path(unit, base, [train, held]) if self.cache else None
        if path is not None and path.is_file():
            fit = AreaFit.from_dict(json.loads(path.read_text()))
        else:
            fit = self._fit(unit, base, train, held)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(fit.to_dict(), indent=1) + "\n")
                os.replace(tmp, path)
        self._fits[memo] = fit
        return fit

    def _measure(self, unit, base, points):
        queries = [(unit, {**base, "pe": p, "simd": s}) for p, s in points]
        if hasattr(self.synth, "prefetch"):
            self.synth.prefetch(queries)
        return [{"pe": p, "simd": s, "figures": _numeric(self.synth(u, c))}
                for (p, s), (u, c) in zip(points, queries)]

    def _fit(self, unit, base, train, held):
        train_pts = self._measure(unit, base, train)
        held_pts = self._measure(unit, base, held)
        names = sorted(set.intersection(*(set(p["figures"]) for p in train_pts)))
        rows = []
        for p in train_pts:
            x = features(unit, _config(unit, {**base, "pe": p["pe"], "simd": p["simd"]})[1])
            rows.append([x[f] for f in FEATURES])
        a = np.array(rows, dtype=float)
        y = np.array([[p["figures"][n] for n in names] for p in train_pts], dtype=float)
        coef, _, rank, _ = np.linalg.lstsq(a, y, rcond=None)
        ranges = {"pe": [min(train)[0], max(train)[0]],
                  "simd": [min(s for _, s in train), max(s for _, s in train)]}
        for j, f in enumerate(FEATURES):
            ranges[f] = [float(a[:, j].min()), float(a[:, j].max())]
        fit = AreaFit(unit=unit, base=base, target=self.target, features=FEATURES,
                      coef={n: [float(c) for c in coef[:, i]] for i, n in enumerate(names)},
                      train=train_pts, holdout=held_pts, train_error={}, holdout_error={},
                      rank=int(rank), ranges=ranges)
        for pts, field in ((train_pts, "train_error"), (held_pts, "holdout_error")):
            if pts:
                actual = [{n: p["figures"][n] for n in names if n in p["figures"]} for p in pts]
                predicted = [fit.predict(p["pe"], p["simd"]) for p in pts]
                common = [n for n in names if all(n in a_ for a_ in actual)]
                setattr(fit, field, _errors([{n: a_[n] for n in common} for a_ in actual],
                                            [{n: p_[n] for n in common} for p_ in predicted]))
        if fit.rank < len(FEATURES):
            warnings.warn(f"{unit}: the design points determine only {fit.rank} of "
                          f"{len(FEATURES)} area-model coefficients (minimum-norm fit)",
                          AreaExtrapolationWarning, stacklevel=3)
        return fit

    def __call__(self, unit, config):
        config = dict(config)
        if "pe" not in config or "simd" not in config:
            raise QhwInputError(f"{unit} config: FittedArea needs 'pe' and 'simd'")
        fit = self.fit(unit, config)
        where = fit.outside(config["pe"], config["simd"])
        if where is not None and self.on_extrapolate != "ignore":
            msg = (f"area model: {unit} at pe={config['pe']}, simd={config['simd']} is an "
                   f"extrapolation ({where}; fitted on pe {fit.ranges['pe']}, simd "
                   f"{fit.ranges['simd']})")
            if self.on_extrapolate == "raise":
                raise QhwInputError(msg)
            warnings.warn(msg, AreaExtrapolationWarning, stacklevel=2)
        return fit.predict(config["pe"], config["simd"])

    def __repr__(self):
        return f"FittedArea(target={self.target!r}, train={self.train}, holdout={self.holdout})"
