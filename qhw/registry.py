"""The unit registry: the one place where a unit kind's pieces are put together.

A unit kind is one frozen config dataclass, one generator, one golden model, one testbench and one
cost model. The command line, the regression, sweeps and reports look units up here by name and
never special-case one.
"""

import dataclasses
from typing import Callable

from .errors import QhwInputError


@dataclasses.dataclass(frozen=True)
class CycleEstimate:
    """What the cost model predicts for a run of ``frames`` input frames with no stalls.

    Members
    -------
    formula : int
        The folding formula alone (FINN's (C_out/PE)*(K/SIMD)*H_out*W_out for convolutions).
    latency : int
        Pipeline latency: cycles from the input transfer that completes the first item of work to
        the first output transfer.
    expected : int
        Cycles from the first input transfer to the last output transfer, input always valid and
        output always ready. This is what the cosimulation measures.
    first_input : int
        Index of the input transfer that completes the first item of work (``latency`` counts
        from it).
    notes : str
        How ``expected`` relates to ``formula`` (fill, input-bound rows, ...).
    """

    formula: int
    latency: int
    expected: int
    first_input: int
    notes: str = ""


@dataclasses.dataclass(frozen=True)
class Unit:
    """A registered unit kind.

    Members
    -------
    name : str
        The name used on the command line (``qhw generate NAME``).
    summary : str
        One line for ``qhw --help`` and reports.
    config : type
        The frozen, validated config dataclass.
    generator : callable(config, params) -> amaranth.lib.wiring.Component
        Builds the hardware; weights are baked into its memories.
    golden : callable(config, params, inputs) -> numpy.ndarray
        The bit-exact reference.
    testbench : str
        The cocotb test module that drives the unit's streams in Verilator.
    cost_model : callable(config, frames, inputs=None) -> CycleEstimate
        ``inputs`` (the batched input array) makes the estimate exact for units whose cycles
        depend on the data (gated convolutions skip gated-off channels); without it, the
        estimate is the data-independent upper bound.
    check_params, random_params : callables
        Validate a weight-file mapping; draw random parameters from a ``numpy.random.Generator``.
    check_inputs, random_inputs : callables
        Validate an input array (returning the batched form); draw random inputs for ``frames``.
    pack_inputs : callable(config, inputs) -> dict[str, list[int]]
        Input stream words per input stream name.
    unpack_outputs : callable(config, dict[str, list[int]], frames) -> numpy.ndarray
    output_words : callable(config, frames) -> dict[str, int]
        How many words each output stream carries for ``frames`` frames.
    output_axes : tuple of str, or callable(config) -> tuple of str
        Names of the output array's axes, for mismatch messages (a callable when the output's
        shape depends on the config).
    describe : callable(config) -> dict
        Unit-specific manifest entries: derived sizes, stream payload layouts, memories.
    default_config : dict
        The configuration that ``qhw demo`` uses.
    regression : dict
        Named configurations (JSON-style dicts) that the cosimulation regression and the cycle
        benchmark run.
    baseline : callable(config) -> (unit name, config dict) or None, optional
        The conventional design this one is compared with in sweeps and reports (a bamconv
        against the 8 x 8 MAC convolution of the same geometry and folding, an exponent-adder
        multiplier against the IEEE multiplier of its activation format, ...).
    frames : callable(config, batched inputs) -> frames, optional
        The ``frames`` value that ``cost_model``, ``output_words`` and ``unpack_outputs`` get for
        an input array; default ``inputs.shape[0]`` (a GRU gives (sequences, steps)).
    operations : callable(config, frames, inputs=None) -> dict, optional
        Operation counts for ``frames`` (priced by :func:`qhw.synth.energy.operation_energy` with
        the Horowitz 45 nm table): ``{"inferences": int, "inference": str, "ops": [{"op": kind,
        "bits": int or [a, b], "count": int, "what": str}, ...], "notes": [str, ...]}``, kinds
        ``add``, ``mul``, ``fadd``, ``fmul``, ``bitop``, ``shift``, ``sram_read`` (docs/energy.md).
        ``inputs`` (batched) makes data-dependent counts exact (gated channels).
    timing : callable(config, avail, inputs=None, start=0) -> (take, out, needs), optional
        The exact transfer times when input word ``j`` can first be taken at cycle
        ``avail[j]`` (and none before cycle ``start``) and the output is always ready: the cycle
        of every input transfer, of every output transfer, and for every output the index of the
        last input word it depends on. What lets a network compose its layers' cost models
        exactly (docs/networks.md).
    startup : callable(config) -> int, optional
        Cycles after reset before the unit can take its first input (default 0).
    parts : callable(config, params) -> list of dict, optional
        A composite unit's parts, each ``{"name", "unit", "config", "params"}`` (a network's
        layers): synthesis reports each part's area beside the whole's.
    load_words : callable(config, params) -> list of int, optional
        For configs with ``weights = 'port'``: the words of the weight-load stream ``wl`` that
        write the memories at run time (the simulation drives them beside the inputs).
    locate : callable(config, params, inputs, *, stall_in, stall_out, seed) -> str or None,
        optional
        After an output mismatch: re-run with internal probes and name the first part whose
        output differs (a network's first differing layer), with position, expected and got.
    """

    name: str
    summary: str
    config: type
    generator: Callable
    golden: Callable
    testbench: str
    cost_model: Callable
    check_params: Callable
    random_params: Callable
    check_inputs: Callable
    random_inputs: Callable
    pack_inputs: Callable
    unpack_outputs: Callable
    output_words: Callable
    output_axes: tuple
    describe: Callable
    default_config: dict = dataclasses.field(default_factory=dict)
    regression: dict = dataclasses.field(default_factory=dict)
    frames: Callable = None
    baseline: Callable = None
    operations: Callable = None
    timing: Callable = None
    startup: Callable = None
    parts: Callable = None
    locate: Callable = None
    load_words: Callable = None

    def axes(self, cfg):
        """The output array's axis names for ``cfg``."""
        return self.output_axes(cfg) if callable(self.output_axes) else self.output_axes


_UNITS: dict = {}


def register(unit):
    if unit.name in _UNITS:
        raise ValueError(f"unit {unit.name!r} registered twice")
    _UNITS[unit.name] = unit
    return unit


def _load_builtin_units():
    from . import units  # noqa: F401  (registers the built-in units on import)


def get(name):
    """The unit called ``name``; a clear error lists the known ones."""
    _load_builtin_units()
    try:
        return _UNITS[name]
    except KeyError:
        raise QhwInputError(f"unit: unknown unit {name!r}; known units: {', '.join(sorted(_UNITS))}") from None


def names():
    _load_builtin_units()
    return sorted(_UNITS)
