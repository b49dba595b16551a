"""Folding solvers: choose PE and SIMD for every layer of a chain to meet a throughput target.

A chain of streaming layers (a dataflow pipeline, as in FINN) runs at the rate of its slowest
layer, so a throughput target is a bound on every layer's cycles per frame. Two solvers:

:func:`finn_set_folding`
    FINN's ``SetFolding`` transformation (Xilinx/finn,
    ``src/finn/transformation/fpgadataflow/set_folding.py``), step for step: per layer, raise
    SIMD through the divisors of MW (= K = C_in*kh*kw) until the layer meets the target or the
    weight stream grows wider than ``mvau_wwidth_max`` bits, then PE through the divisors of MH
    (= C_out); if the chain misses the target, run again with the target relaxed to the
    bottleneck's cycles. It uses no area model.
:func:`min_area_folding`
    Per layer, the (PE, SIMD) that meets the target with the least area under a given area model
    (``qhw.synth.area_model``: exact synthesis, or a model fitted on synthesized points).

Cycles come from each unit's own cost model (:func:`layer_cycles`), which is exact, input-bound
rows included, not from FINN's (C_out/PE)*(K/SIMD)*H_out*W_out alone. See docs/folding.md.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

from . import registry
from .config import config_from_dict
from .errors import QhwInputError

__all__ = [
    "FOLDABLE_UNITS", "FINN_MVAU_WWIDTH_MAX", "METRICS",
    "FoldingLayer", "LayerFolding", "Folding",
    "divisors", "candidates", "layer_cycles", "layer_bound", "weight_bits",
    "target_cycles_from", "target_cycles_from_spec",
    "finn_set_folding", "min_area_folding", "solve", "check_reachable", "metric_value",
]

#: Units whose PE (divides c_out) and SIMD (divides c_in*kh*kw) a solver chooses.
FOLDABLE_UNITS = ("binconv", "bamconv", "macconv")

#: FINN's default ``mvau_wwidth_max`` (SetFolding's initializer): weight stream bits per PE.
FINN_MVAU_WWIDTH_MAX = 36


@dataclasses.dataclass(frozen=True)
class FoldingLayer:
    """One layer of a chain.

    Members
    -------
    name : str
        The layer's name, used in messages and as the key of the folding config.
    unit : str
        A registered unit name. ``binconv``, ``bamconv`` and ``macconv`` are foldable (PE divides
        c_out, SIMD divides c_in*kh*kw); any other unit is fixed (its config is used as given).
    config : dict
        The unit's JSON-style config; for a foldable unit its ``pe`` and ``simd`` (if present)
        are ignored: they are what the solver chooses.
    """

    name: str
    unit: str
    config: dict = dataclasses.field(hash=False)  # a dict: hash by name and unit

    @property
    def foldable(self):
        return self.unit in FOLDABLE_UNITS


@dataclasses.dataclass(frozen=True)
class LayerFolding:
    """The folding chosen for one layer.

    ``pe``/``simd`` are None for a fixed layer without them; ``bound`` is what sets the cycles
    (:func:`layer_bound`: ``"compute"``, ``"input"``, ``"mixed"`` or ``"fixed"``); ``area`` is
    the area model's figures (None when no model was given)."""

    name: str
    unit: str
    pe: int | None
    simd: int | None
    cycles: int
    bound: str
    config: dict
    area: dict | None = None


@dataclasses.dataclass(frozen=True)
class Folding:
    """A solver's result for a chain.

    Members
    -------
    solver : str
        ``"finn_set_folding"`` or ``"min_area"``.
    target_cycles : int
        The target asked for (cycles per frame).
    layers : tuple of LayerFolding
    bottleneck : str
        The layer with the most cycles per frame (FINN's ``max_cycles_node_name``).
    bottleneck_cycles : int
        Its cycles (FINN's ``max_cycles``): the chain's steady-state cycles per frame.
    met : bool
        Every layer takes at most ``target_cycles``.
    relaxed_target : int or None
        FINN's second pass: the target it re-ran with (the first pass's bottleneck cycles).
    metric : str or None
        The area metric the areas are summed in.
    notes : tuple of str
    """

    solver: str
    target_cycles: int
    layers: tuple
    bottleneck: str
    bottleneck_cycles: int
    met: bool
    relaxed_target: int | None = None
    metric: str | None = None
    notes: tuple = ()

    def layer(self, name):
        for lf in self.layers:
            if lf.name == name:
                return lf
        raise KeyError(name)

    @property
    def total_area(self):
        """Sum of the layers' metric values, or None without an area model."""
        if self.metric is None or any(lf.area is None for lf in self.layers):
            return None
        return sum(metric_value(lf.area, self.metric, lf.name) for lf in self.layers)

    def folding_config(self):
        """FINN's ``auto_folding_config.json`` form: ``{"Defaults": {}, layer: {"PE", "SIMD"}}``."""
        cfg = {"Defaults": {}}
        for lf in self.layers:
            if lf.pe is not None:
                cfg[lf.name] = {"PE": lf.pe, "SIMD": lf.simd}
        return cfg

    def configs(self):
        """Each layer's full unit config with the chosen pe and simd: ``{layer: config}``."""
        return {lf.name: dict(lf.config) for lf in self.layers}

    def with_area(self, area, metric="ecp5_lut4"):
        """The same folding with every layer's area from ``area(unit, config)`` (for comparing
        solvers under one model)."""
        layers = tuple(dataclasses.replace(lf, area=dict(area(lf.unit, dict(lf.config))))
                       for lf in self.layers)
        for lf in layers:
            metric_value(lf.area, metric, lf.name)  # fail here, naming the layer, not later
        return dataclasses.replace(self, layers=layers, metric=_metric_name(metric))

    def to_dict(self):
        """JSON-ready, in FINN's vocabulary where it fits (``folding_config`` as FINN's
        ``auto_folding_config.json``; ``max_cycles``/``max_cycles_node_name`` as in its
        ``estimate_network_performance.json``; per-layer cycles as ``estimate_layer_cycles``)."""
        out = {
            "solver": self.solver,
            "target_cycles_per_frame": self.target_cycles,
            "met": self.met,
            "max_cycles": self.bottleneck_cycles,
            "max_cycles_node_name": self.bottleneck,
            "relaxed_target_cycles_per_frame": self.relaxed_target,
            "folding_config": self.folding_config(),
            "estimate_layer_cycles": {lf.name: lf.cycles for lf in self.layers},
            "layers": [{"name": lf.name, "unit": lf.unit, "PE": lf.pe, "SIMD": lf.simd,
                        "cycles": lf.cycles, "bound": lf.bound, "config": dict(lf.config),
                        **({"area": dict(lf.area)} if lf.area is not None else {})}
                       for lf in self.layers],
            "notes": list(self.notes),
        }
        if self.metric is not None:
            out["metric"] = self.metric
            out["total_area"] = self.total_area
        return out


# Layers, candidates and cycles --------------------------------------------------------------------

def divisors(n):
    """Divisors of ``n``, ascending (FINN's ``divisors``)."""
    return [d for d in range(1, n + 1) if n % d == 0]


def _key(layer):
    if not isinstance(layer, FoldingLayer):
        raise QhwInputError(f"layers: expected FoldingLayer objects, got {type(layer).__name__}")
    if not isinstance(layer.config, dict):
        raise QhwInputError(f"layer {layer.name!r}: config must be a JSON object (dict), got "
                            f"{type(layer.config).__name__}")
    try:
        text = json.dumps(layer.config, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise QhwInputError(f"layer {layer.name!r}: config is not JSON-ready ({e})") from None
    return layer.name, layer.unit, text


def _config_dict(layer, pe, simd):
    cfg = dict(layer.config)
    if layer.foldable or pe is not None:
        cfg["pe"], cfg["simd"] = pe, simd
    return cfg


@functools.lru_cache(maxsize=None)
def _base_config(name, unit, text):
    """The validated config object with pe = simd = 1 (foldable) or as given (fixed)."""
    u = registry.get(unit)
    data = json.loads(text)
    if unit in FOLDABLE_UNITS:
        data = {**data, "pe": 1, "simd": 1}
    try:
        return config_from_dict(u.config, data, where=f"layer {name!r} config")
    except QhwInputError as e:
        msg = str(e)
        raise QhwInputError(msg if msg.startswith("layer ") else f"layer {name!r}: {msg}") from None


def _geometry(layer):
    cfg = _base_config(*_key(layer))
    return cfg.c_out, cfg.k


def candidates(layer):
    """Every (pe, simd) a solver may pick: divisors of c_out x divisors of k for a foldable layer
    (ascending pe, then simd); ``[(pe, simd)]`` as given, or ``[None]``, for a fixed one."""
    key = _key(layer)
    _base_config(*key)  # validates
    if layer.foldable:
        c_out, k = _geometry(layer)
        return [(p, s) for p in divisors(c_out) for s in divisors(k)]
    if "pe" in layer.config and "simd" in layer.config:
        return [(layer.config["pe"], layer.config["simd"])]
    return [None]


@functools.lru_cache(maxsize=None)
def _cycles(name, unit, text, pe, simd):
    u = registry.get(unit)
    data = json.loads(text)
    if unit in FOLDABLE_UNITS:
        base = _base_config(name, unit, text)
        if base.c_out % pe or base.k % simd:
            raise QhwInputError(
                f"layer {name!r}: pe={pe}, simd={simd} is not a folding of c_out={base.c_out}, "
                f"k={base.k} (pe must divide c_out, simd must divide c_in*kh*kw)")
        data = {**data, "pe": pe, "simd": simd}
    cfg = config_from_dict(u.config, data, where=f"layer {name!r} config")
    three, two = u.cost_model(cfg, 3), u.cost_model(cfg, 2)
    cycles = three.expected - two.expected
    formula = three.formula - two.formula
    return cycles, formula


def layer_cycles(layer, pe=None, simd=None):
    """Steady-state cycles per frame of ``layer`` folded as (pe, simd): the unit's cost model for
    3 frames minus that for 2 (``registry.get(unit).cost_model(cfg, frames).expected``), so it is
    exact, input-bound rows (one pixel per cycle over the padded grid) included. A fixed layer
    ignores pe and simd. Cached per (layer, pe, simd)."""
    if layer.foldable and (pe is None or simd is None):
        raise QhwInputError(f"layer {layer.name!r}: layer_cycles needs pe and simd")
    key = _key(layer)
    if layer.foldable:
        _check_int(f"layer {layer.name!r}: pe", pe)
        _check_int(f"layer {layer.name!r}: simd", simd)
        return _cycles(*key, pe, simd)[0]
    return _cycles(*key, None, None)[0]


def layer_bound(layer, pe=None, simd=None):
    """What sets :func:`layer_cycles`: ``"compute"`` (exactly FINN's (C_out/PE)*(K/SIMD) per
    output pixel), ``"input"`` (exactly one pixel per cycle over the padded grid), ``"mixed"``
    (compute-bound windows plus grid steps that make no window, such as the padding column and
    row) or ``"fixed"`` (not a foldable unit)."""
    if not layer.foldable:
        return "fixed"
    cycles, formula = _cycles(*_key(layer), pe, simd)
    if cycles <= formula:
        return "compute"
    cfg = _base_config(*_key(layer))
    _, bottom, _, right = cfg.pads
    return "input" if cycles == (cfg.height + bottom) * (cfg.width + right) else "mixed"


def _check_int(field, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QhwInputError(f"{field}: must be a positive integer, got {value!r}")


def weight_bits(layer):
    """Bits of one weight in the weight stream (FINN's ``get_weight_datatype().bitwidth()``):
    1 for binconv, the config's ``weight_bits`` (default 8) for bamconv and macconv."""
    if layer.unit == "binconv":
        return 1
    return int(layer.config.get("weight_bits", 8))


def _bound_note(layer, pe, simd, cycles):
    if not layer.foldable:
        return f"unit {layer.unit!r} is not foldable"
    bound = layer_bound(layer, pe, simd)
    if bound == "input":
        return "input-bound: one pixel per cycle over the padded grid"
    if bound == "mixed":
        return ("compute-bound windows plus grid steps that make no window: "
                "(C_out/PE)*(K/SIMD) cycles per output pixel and more")
    return "compute-bound: (C_out/PE)*(K/SIMD) cycles per output pixel"


def _unreachable(layer, target):
    if layer.foldable:
        c_out, k = _geometry(layer)
        best = layer_cycles(layer, c_out, k)
        return QhwInputError(
            f"target: layer {layer.name!r} cannot meet {target} cycles per frame; its fastest "
            f"folding (pe={c_out}, simd={k}) takes {best} cycles "
            f"({_bound_note(layer, c_out, k, best)})")
    best = layer_cycles(layer)
    return QhwInputError(
        f"target: layer {layer.name!r} cannot meet {target} cycles per frame; it takes {best} "
        f"cycles (unit {layer.unit!r} is not foldable: its config is used as given)")


def _check_layers(layers):
    layers = list(layers)
    if not layers:
        raise QhwInputError("layers: the chain has no layers")
    names = set()
    for layer in layers:
        key = _key(layer)
        if layer.name in names:
            raise QhwInputError(f"layers: layer name {layer.name!r} appears twice")
        names.add(layer.name)
        _base_config(*key)
    return layers


def _check_target(target_cycles):
    if isinstance(target_cycles, bool) or not isinstance(target_cycles, int) or target_cycles < 1:
        raise QhwInputError(f"target_cycles: must be a positive integer number of cycles per "
                            f"frame, got {target_cycles!r}")


def check_reachable(layers, target_cycles):
    """Raise the one-line :class:`QhwInputError` for the first layer that cannot meet
    ``target_cycles`` even fully unfolded (pe = c_out, simd = k); return None otherwise."""
    _check_target(target_cycles)
    for layer in _check_layers(layers):
        if layer.foldable:
            c_out, k = _geometry(layer)
            best = layer_cycles(layer, c_out, k)
        else:
            best = layer_cycles(layer)
        if best > target_cycles:
            raise _unreachable(layer, target_cycles)


# Targets ----------------------------------------------------------------------------------------

def _positive(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise QhwInputError(f"{field}: must be a positive number, got {value!r}")
    return float(value)


def target_cycles_from(clock_mhz, frame_rate_hz=None, realtime_factor=1.0, *, fps=None,
                       where="target"):
    """Cycles per frame for a clock and a frame rate: floor(clock_Hz / frames per second).

    Frames per second is ``fps`` if given, else ``frame_rate_hz * realtime_factor`` (the
    network spec's ``target = { clock_mhz = 24, realtime_factor = 1.0, frame_rate_hz = 100 }``:
    100 frames of audio per second, processed 1.0 times as fast as they arrive, gives 240,000
    cycles per frame). Rounded down: a frame must finish within its period. FINN's SetFolding
    target is the same: ``target_cycles_per_frame = clock_Hz / target_fps``.
    """
    clock = _positive(f"{where}.clock_mhz", clock_mhz)
    if fps is not None and frame_rate_hz is not None:
        raise QhwInputError(f"{where}: give either fps or frame_rate_hz (with realtime_factor), "
                            f"not both")
    if fps is not None:
        rate = _positive(f"{where}.fps", fps)
    elif frame_rate_hz is not None:
        rate = _positive(f"{where}.frame_rate_hz", frame_rate_hz) * \
            _positive(f"{where}.realtime_factor", realtime_factor)
    else:
        raise QhwInputError(f"{where}: needs frame_rate_hz (frames of audio per second) or fps")
    cycles = math.floor(clock * 1e6 / rate * (1 + 1e-12))  # 24e6/100 is 240000, not 239999
    if cycles < 1:
        raise QhwInputError(f"{where}: {clock:g} MHz at {rate:g} frames per second leaves less "
                            f"than one cycle per frame")
    return cycles


def target_cycles_from_spec(spec, where="target"):
    """:func:`target_cycles_from` for a spec table such as ``{"clock_mhz": 24,
    "realtime_factor": 1.0, "frame_rate_hz": 100}`` (or ``{"clock_mhz", "fps"}``); unknown keys
    are an error naming them."""
    if not isinstance(spec, dict):
        raise QhwInputError(f"{where}: expected a table, got {type(spec).__name__}")
    allowed = ("clock_mhz", "frame_rate_hz", "realtime_factor", "fps")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise QhwInputError(f"{where}: unknown key {unknown[0]!r}; allowed keys: "
                            f"{', '.join(allowed)}")
    if "clock_mhz" not in spec:
        raise QhwInputError(f"{where}: missing key 'clock_mhz'")
    if "fps" in spec and "realtime_factor" in spec:
        raise QhwInputError(f"{where}: realtime_factor applies to frame_rate_hz, not fps")
    return target_cycles_from(spec["clock_mhz"], spec.get("frame_rate_hz"),
                              spec.get("realtime_factor", 1.0), fps=spec.get("fps"), where=where)


# Area metrics -------------------------------------------------------------------------------------

def _need(figures, key, where):
    if key not in figures:
        raise QhwInputError(f"metric: {where}: the area figures have no {key!r} (have: "
                            f"{', '.join(sorted(figures)) or 'none'}); use an area model of the "
                            f"matching target")
    return figures[key]


#: Named metrics over an area model's figures. ``ecp5_lut4``: LUT4 cells (carry cells not
#: included); ``ecp5_lut4_sites``: LUT4 sites as ``synth.flows`` counts them when it picks a part
#: (LUT4 + 2 per CCU2C + 4 per distributed-RAM cell); ``transistors``: the generic target's
#: transistor estimate; ``xc7_lut``: all 7-series LUTs.
METRICS = {
    "ecp5_lut4": lambda f, w: _need(f, "LUT4", w),
    "ecp5_lut4_sites": lambda f, w: (_need(f, "LUT4", w) + 2 * f.get("CCU2C", 0)
                                     + 4 * f.get("LUTRAM", 0)),
    "ecp5_ff": lambda f, w: _need(f, "FF", w),
    "transistors": lambda f, w: _need(f, "transistors", w),
    "xc7_lut": lambda f, w: _need(f, "LUT", w),
}


def _metric_name(metric):
    return metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")


def metric_value(figures, metric, where="layer"):
    """The number ``metric`` picks from an area model's figures: a name in :data:`METRICS`, a key
    of the figures, or a callable ``figures -> number``."""
    if callable(metric):
        value = metric(figures)
    elif metric in METRICS:
        value = METRICS[metric](figures, where)
    elif isinstance(metric, str):
        value = _need(figures, metric, where)
    else:
        raise QhwInputError(f"metric: must be a name ({', '.join(METRICS)}), a figure key or a "
                            f"callable, got {metric!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QhwInputError(f"metric: {where}: {_metric_name(metric)!r} is not a number "
                            f"({value!r})")
    return value


# Solvers ----------------------------------------------------------------------------------------

def _layer_result(layer, pe, simd, area=None):
    cycles = layer_cycles(layer, pe, simd)
    return LayerFolding(name=layer.name, unit=layer.unit, pe=pe, simd=simd, cycles=cycles,
                        bound=layer_bound(layer, pe, simd), config=_config_dict(layer, pe, simd),
                        area=area)


def _fixed_folding(layer):
    given = candidates(layer)[0]
    pe, simd = given if given is not None else (None, None)
    return _layer_result(layer, pe, simd)


def _summary(solver, target, results, **kw):
    worst = max(results, key=lambda lf: lf.cycles)  # first of equals, as FINN's max
    return Folding(solver=solver, target_cycles=target, layers=tuple(results),
                   bottleneck=worst.name, bottleneck_cycles=worst.cycles,
                   met=worst.cycles <= target, **kw)


def _finn_pass(layers, target, mvau_wwidth_max):
    results = []
    for layer in layers:
        if not layer.foldable:
            results.append(_fixed_folding(layer))
            continue
        max_pe, max_simd = _geometry(layer)  # MH, MW
        wbits = weight_bits(layer)
        pe, simd = 1, 1
        # SetFolding, MVAU branch: increase SIMD until the target is met or the weight stream
        # (bitwidth * SIMD, PE still 1) becomes too wide; then PE until the target is met or
        # max PE is reached. FINN's test is a strict "cyc < target".
        for simd_val in divisors(max_simd):
            prev_simd, simd = simd, simd_val
            if layer_cycles(layer, pe, simd) < target:
                break
            if wbits * simd > mvau_wwidth_max:
                simd = prev_simd
                break
        for pe_val in divisors(max_pe):  # optimize_attribute_val(node, MH, "PE")
            pe = pe_val
            if layer_cycles(layer, pe, simd) < target:
                break
        results.append(_layer_result(layer, pe, simd))
    return results


def finn_set_folding(layers, target_cycles, *, mvau_wwidth_max=FINN_MVAU_WWIDTH_MAX,
                     two_pass_relaxation=True, strict=False, area=None, metric="ecp5_lut4"):
    """FINN's SetFolding (Xilinx/finn, ``set_folding.py``) on a chain, with qhw's exact cycles.

    For each foldable layer, in chain order, starting from PE = SIMD = 1:

    1. for SIMD in the divisors of K (FINN's MW), ascending: set it; stop if the layer's cycles
       are below the target (``cycles < target_cycles``, FINN's strict test); else, if the
       weight stream ``weight_bits * SIMD`` (PE is still 1) exceeds ``mvau_wwidth_max``, go back
       to the previous SIMD and stop;
    2. for PE in the divisors of C_out (FINN's MH), ascending: set it; stop if the cycles are
       below the target (so PE ends at C_out if it never is).

    Fixed layers keep their config. With ``two_pass_relaxation`` (FINN's default), if the slowest
    layer takes more than ``target_cycles``, the whole walk runs once more with the target
    relaxed to that layer's cycles (and no further relaxation), which balances the other layers
    against the bottleneck instead of unfolding them for a target the chain cannot reach.

    The result's ``met`` says whether every layer takes at most ``target_cycles``; with
    ``strict=True`` a missed target raises the one-line :class:`QhwInputError` (the layer, and
    its fastest folding's cycles, or the greedy's bottleneck when the target is reachable but
    the width limit kept FINN from it). ``area`` (optional, ``(unit, config) -> figures``) only
    annotates the result, for comparison with :func:`min_area_folding`; FINN has no area model.
    """
    layers = _check_layers(layers)
    _check_target(target_cycles)
    _check_int("mvau_wwidth_max", mvau_wwidth_max)
    results = _finn_pass(layers, target_cycles, mvau_wwidth_max)
    relaxed = None
    first = _summary("finn_set_folding", target_cycles, results)
    if two_pass_relaxation and first.bottleneck_cycles > target_cycles:
        relaxed = first.bottleneck_cycles
        results = _finn_pass(layers, relaxed, mvau_wwidth_max)
    notes = [f"FINN SetFolding: SIMD first (weight stream <= {mvau_wwidth_max} bits), then PE; "
             f"a layer stops at the first folding with cycles < target"]
    if relaxed is not None:
        notes.append(f"first pass missed the target: layer {first.bottleneck!r} is the "
                     f"bottleneck at {relaxed} cycles; second pass with the target relaxed to it")
    folding = _summary("finn_set_folding", target_cycles, results, relaxed_target=relaxed,
                       notes=tuple(notes))
    if strict and not folding.met:
        check_reachable(layers, target_cycles)  # raises for a truly unreachable target
        lf = folding.layer(folding.bottleneck)
        raise QhwInputError(
            f"target: FINN's greedy leaves layer {lf.name!r} at {lf.cycles} cycles per frame "
            f"(pe={lf.pe}, simd={lf.simd}), above {target_cycles}: the weight stream limit "
            f"mvau_wwidth_max={mvau_wwidth_max} stops its SIMD; raise it or use min_area_folding")
    if area is not None:
        folding = folding.with_area(area, metric)
    return folding


def _minimal(feasible):
    """The feasible (pe, simd) that no other feasible one is below in both pe and simd."""
    return [(p, s) for p, s in feasible
            if not any(q <= p and t <= s and (q, t) != (p, s) for q, t in feasible)]


def min_area_folding(layers, target_cycles, area, metric="ecp5_lut4", *, monotone=False):
    """Per layer, the folding that meets ``target_cycles`` with the least area.

    Why choosing per layer is optimal: a chain of streaming layers runs at the rate of its
    slowest layer, so "the chain takes at most T cycles per frame" is exactly "every layer takes
    at most T", a separate constraint on each layer's own (PE, SIMD). The chain's area is the sum
    of the layers' areas, each depending only on its own folding. So the constraint and the
    objective both separate, and minimizing each layer's area over its own feasible foldings
    minimizes the sum: no layer can trade slack with another, since any slack below T buys
    nothing. Per layer the search is exhaustive over the divisor pairs (or, with
    ``monotone=True``, over the minimal feasible pairs only, for an expensive area model: exact
    when area never decreases as PE or SIMD grows).

    What it ignores: anything whose area is not in ``area(unit, config)``. The stream FIFOs
    between layers and anything else outside the units, whose size here does not depend on the
    folding, add a constant to every choice; what does depend on it (the window generator, the
    weight and threshold memories, the output FIFO inside each unit) is counted when the area
    model synthesizes the whole unit, as ``qhw.synth.area_model.SynthArea`` does. Rate matching
    between layers (FIFO depths for bursts) and a finite area budget are not modelled.

    Ties in area go to fewer cycles, then to fewer lanes (pe*simd), then smaller pe. A target no
    folding of some layer meets raises the one-line :class:`QhwInputError` naming the layer and
    its fastest folding's cycles.

    Parameters
    ----------
    layers : iterable of FoldingLayer
    target_cycles : int
        Cycles per frame every layer must not exceed (:func:`target_cycles_from`).
    area : callable(unit, config dict) -> dict of figures
        ``qhw.synth.area_model.SynthArea`` or ``FittedArea``, or any such callable. If it has a
        ``prefetch(queries)`` method, it gets every (unit, config) first (to synthesize them in
        parallel).
    metric : str or callable
        A name in :data:`METRICS`, a figure key, or ``figures -> number``.
    """
    layers = _check_layers(layers)
    _check_target(target_cycles)
    if not callable(area):
        raise QhwInputError("area: must be a callable (unit, config) -> figures")
    if not (callable(metric) or isinstance(metric, str)):
        metric_value({}, metric)  # raises the metric error
    plans = []
    for layer in layers:
        if not layer.foldable:
            fixed = _fixed_folding(layer)
            if fixed.cycles > target_cycles:
                raise _unreachable(layer, target_cycles)
            plans.append((layer, [(fixed.pe, fixed.simd)]))
            continue
        feasible = [(p, s) for p, s in candidates(layer)
                    if layer_cycles(layer, p, s) <= target_cycles]
        if not feasible:
            raise _unreachable(layer, target_cycles)
        plans.append((layer, _minimal(feasible) if monotone else feasible))
    if hasattr(area, "prefetch"):
        area.prefetch([(layer.unit, _config_dict(layer, p, s)) for layer, options in plans
                       for p, s in options])
    results = []
    for layer, options in plans:
        scored = []
        for p, s in options:
            figures = dict(area(layer.unit, _config_dict(layer, p, s)))
            value = metric_value(figures, metric, f"layer {layer.name!r}")
            cycles = layer_cycles(layer, p, s)
            scored.append(((value, cycles, (p or 0) * (s or 0), p or 0), p, s, figures))
        _, p, s, figures = min(scored, key=lambda item: item[0])
        results.append(_layer_result(layer, p, s, area=figures))
    notes = (f"min-area: per layer, the least {_metric_name(metric)!r} among "
             f"{'minimal ' if monotone else ''}foldings with cycles <= target",)
    return _summary("min_area", target_cycles, results, metric=_metric_name(metric), notes=notes)


def solve(layers, target_cycles, solver="min_area", *, area=None, metric="ecp5_lut4", **kw):
    """Dispatch: ``solver`` is ``"min_area"`` (needs ``area``) or ``"finn"``."""
    if solver == "min_area":
        if area is None:
            raise QhwInputError("solver: 'min_area' needs an area model (area=...)")
        return min_area_folding(layers, target_cycles, area, metric, **kw)
    if solver in ("finn", "finn_set_folding"):
        return finn_set_folding(layers, target_cycles, area=area, metric=metric, **kw)
    raise QhwInputError(f"solver: must be one of 'min_area', 'finn', got {solver!r}")
