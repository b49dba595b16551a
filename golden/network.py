"""Whole networks: a chain of registered units, described once, with shapes flowing from the input.

A network description (TOML or JSON) holds the input feature map, an ordered list of layers and,
optionally, a throughput target::

    name = "bnn_pool"
    input = { height = 8, width = 8, channels = 4, bits = 1 }

    [[layers]]
    name = "conv1"
    kind = "binconv"
    c_out = 8
    kernel = [3, 3]
    padding = "same"
    output = "threshold"
    pe = 2
    simd = 12

    [[layers]]
    name = "pool1"
    kind = "maxpool"
    kernel = [2, 2]

Every layer's input height, width and channels (and, for integer layers, its element width) come
from the previous layer's output; the user writes only what the layer itself decides. A layer is
one registered unit (:mod:`qhw.registry`), so its arithmetic, hardware, timing and cost are that
unit's:

==============  ==================================================================================
kind            unit and input
==============  ==================================================================================
``binconv``     XNOR-popcount convolution on a 1-bit (bipolar) map
``bamconv``     binary-activation convolution on a {0,1} map (optional channel gating)
``macconv``     multiply-accumulate convolution on a signed integer map (sum or threshold output:
                a first layer on an 8-bit feature map that makes the binary map)
``maxpool``     k_h x k_w max pooling, stride = kernel, floor (OR on 1-bit maps)
``globalpool``  global max / sum / average over all positions
``requant``     per-channel fixed-point scaling of signed sums to (unsigned) activation codes:
                the step between two layers of an 8-bit-activation network
``dense``       fully connected: the convolution of the chosen ``arith`` (``xnor``: binconv,
                ``bam``: bamconv, ``mac``: macconv) whose kernel covers the whole input map
``gru``         a GRU over the frames of each sequence (one signed vector per frame)
``expdot``      ``outputs`` exponent-adder dot products of one vector per frame (float bit
                patterns or signed fixed point in; sign-exponent weights)
``fpdot``       ``outputs`` conventional float dot products of one vector per frame (IEEE
                multipliers, rounding adder tree and accumulator): expdot's float counterpart
==============  ==================================================================================

A dense layer's weights are ``(outputs, H*W*C)`` in the map's row-major (row, column, channel)
flatten order, which is the order of PyTorch's ``flatten`` on an NHWC tensor.

The weight file of a network is one ``.npz`` whose arrays are named ``<layer>.<array>`` (for
example ``conv2.weights``, ``conv2.thresholds``); its inputs are the activations of the first
layer and, for every gated layer, ``<layer>.gates``.

This module is the single definition of the network's shapes, formats and arithmetic: the golden
model is the composition of the layers' golden models (:func:`trace`).
"""

import dataclasses
import re
from typing import NamedTuple

import numpy as np

from ..config import check_choice, check_int, config_from_dict
from ..errors import QhwInputError
from .conv import check_int_array, pack_fields

__all__ = ["NetworkConfig", "Layer", "Format", "LAYER_KINDS", "check_params", "random_params",
           "check_inputs", "random_inputs", "trace", "reference", "pack_inputs",
           "unpack_outputs", "output_words", "layer_params", "layer_inputs", "load_words"]


FLOATS = {"fp32": 32, "fp16": 16, "bf16": 16}


class Format(NamedTuple):
    """The element format of a feature map stream: bits per channel value, two's complement?,
    and ``kind``: 'int', or a float format ('fp32', 'fp16', 'bf16': IEEE bit patterns)."""
    bits: int
    signed: bool
    kind: str = "int"

    def describe(self):
        if self.kind != "int":
            return f"{self.kind} bit patterns"
        if self.bits == 1 and not self.signed:
            return "1-bit map"
        return f"{'signed' if self.signed else 'unsigned'} {self.bits}-bit"

    def range(self):
        if self.kind != "int":
            return 0, (1 << self.bits) - 1
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1


@dataclasses.dataclass(frozen=True)
class Layer:
    """One resolved layer: the unit that implements it, with every size derived.

    Members
    -------
    name, kind : str
        As written in the description.
    unit : str
        The registered unit (``dense`` layers become a convolution unit).
    config : dataclass
        The unit's validated config.
    spec : dict
        The fields the user wrote (name and kind excluded).
    in_shape, out_shape : (H, W, C)
    in_format, out_format : Format
    gated : bool
        The layer takes a gate stream (bamconv channel gating).
    in_steps, out_steps : int
        Map frames per sequence at the layer's input and output (``input.steps``; 1 after a GRU
        that outputs only the last step).
    """

    name: str
    kind: str
    unit: str
    config: object
    spec: dict
    in_shape: tuple
    out_shape: tuple
    in_format: Format
    out_format: Format
    gated: bool = False
    in_steps: int = 1
    out_steps: int = 1

    @property
    def kind_adapter(self):
        return _kind_of(self)

    def unit_frames(self, sequences):
        """The unit's ``frames`` for ``sequences`` network frames (sequences of steps)."""
        return self.kind_adapter.unit_frames(self, sequences)

    def unit_inputs(self, activations, gates=None):
        """The unit's input for this layer's (F, H, W, C) input maps."""
        x = self.kind_adapter.to_unit_inputs(self, activations)
        return {"activations": x, "gates": gates} if self.gated else x

    def maps(self, unit_outputs):
        """The unit's output as (F, H, W, C) maps, the next layer's input."""
        return self.kind_adapter.from_unit_outputs(self, unit_outputs)


def _shape_text(shape):
    return "x".join(map(str, shape))


def _kernel_pair(kernel):
    """A well-formed (kh, kw) from a description, else None (the unit's own check reports it)."""
    if (isinstance(kernel, (list, tuple)) and len(kernel) == 2
            and all(isinstance(k, int) and not isinstance(k, bool) for k in kernel)):
        return tuple(kernel)
    return None


def memo(frozen, name, compute):
    """``compute()`` once per frozen config or layer object (their fields hold dicts, so they
    cannot key an lru_cache); what the timing derives is asked for by the generator, the
    manifest and the cost model alike."""
    cache = frozen.__dict__.setdefault("_memo", {})
    if name not in cache:
        cache[name] = compute()
    return cache[name]


# Layer kinds ---------------------------------------------------------------------------------------
#
# A kind says which unit implements it, which fields the user may write, how the derived fields
# (input sizes, element widths) are filled in, which input format it accepts and what it outputs.

_DERIVED = ("c_in", "height", "width")


class _MapKind:
    """A layer whose unit works on (F, H, W, C) maps, one map frame per frame: F = sequences x
    steps.

    ``has_weights``: the layer has parameters; ``port_weights``: they can be loaded at run time
    (the network's ``weights = 'port'``), else ``no_port`` says why not."""

    raw_output = None
    has_weights = True
    port_weights = False
    no_port = "its weights are constants in the logic, not memories"

    def unit_frames(self, layer, sequences):
        return sequences * layer.in_steps

    def to_unit_inputs(self, layer, activations):
        return activations

    def from_unit_outputs(self, layer, outputs):
        return outputs

    def generator(self, layer, params):
        from .. import registry
        return registry.get(layer.unit).generator(layer.config, params)

    # What the network asks of a layer's unit; a layer of several units (expdot) overrides them.
    def golden(self, layer, params, inputs):
        from .. import registry
        return registry.get(layer.unit).golden(layer.config, params, inputs)

    def check_params(self, layer, params):
        from .. import registry
        return registry.get(layer.unit).check_params(layer.config, params)

    def random_params(self, layer, rng):
        from .. import registry
        return registry.get(layer.unit).random_params(layer.config, rng)

    def timing(self, layer, avail, inputs, start):
        from .. import registry
        return registry.get(layer.unit).timing(layer.config, avail, inputs, start=start)

    def output_words(self, layer, frames):
        from .. import registry
        return registry.get(layer.unit).output_words(layer.config, layer.unit_frames(frames))["o"]

    def unpack(self, layer, words, frames):
        from .. import registry
        return registry.get(layer.unit).unpack_outputs(layer.config, {"o": words},
                                                       layer.unit_frames(frames))

    def operations(self, layer, frames, inputs):
        from .. import registry
        unit = registry.get(layer.unit)
        if unit.operations is None:
            return None
        return unit.operations(layer.config, frames, inputs)

    def out_steps(self, cfg, in_steps):
        return in_steps

    def out_shape(self, cfg):
        return tuple(cfg.output_shape())

    def to_unit_params(self, cfg, params):
        return params

    def from_unit_params(self, cfg, params):
        return params

    def timing_inputs(self, layer, maps, gates):
        """What the unit's ``timing`` needs for ``maps`` input map frames: the gates of a gated
        layer (None: every channel on)."""
        if gates is None:
            return None
        return layer.unit_inputs(np.zeros((maps,) + tuple(layer.in_shape), dtype=np.int64),
                                 gates)


class _ConvKind(_MapKind):
    """binconv / bamconv / macconv: the unit itself, geometry from the previous layer."""

    port_weights = True

    def __init__(self, unit, raw_output):
        self.unit = unit
        self.raw_output = raw_output  # the output mode that gives the pre-threshold value

    def user_fields(self, unit_cls):
        # 'weights' (baked or port) is the network's option, not a layer's.
        return [f.name for f in dataclasses.fields(unit_cls)
                if f.name not in _DERIVED + ("weights",)]

    def unit_config(self, layer_name, spec, in_shape, in_format, source):
        h, w, c = in_shape
        data = dict(spec)
        if self.unit in ("binconv", "bamconv"):
            if in_format != Format(1, False):
                raise QhwInputError(
                    f"layer {layer_name!r} ({self.unit}): needs a 1-bit map, but its input "
                    f"({source}, {_shape_text(in_shape)}) is {in_format.describe()}")
        else:  # macconv: integer activations of the incoming width and signedness
            if in_format.kind != "int" or not 2 <= in_format.bits <= 16:
                raise QhwInputError(
                    f"layer {layer_name!r} (macconv): needs 2..16-bit integer activations, but "
                    f"its input ({source}, {_shape_text(in_shape)}) is {in_format.describe()}")
            if "act_bits" in data and data["act_bits"] != in_format.bits:
                raise QhwInputError(
                    f"layer {layer_name!r} (macconv): act_bits = {data['act_bits']} but its "
                    f"input ({source}) is {in_format.describe()}")
            if "act_signed" in data and data["act_signed"] != in_format.signed:
                raise QhwInputError(
                    f"layer {layer_name!r} (macconv): act_signed = {data['act_signed']} but its "
                    f"input ({source}) is {in_format.describe()}")
            data["act_signed"] = in_format.signed
            data["act_bits"] = in_format.bits
        kernel = _kernel_pair(data.get("kernel", (3, 3)))
        if (kernel is not None and data.get("padding", "valid") == "valid"
                and (kernel[0] > h or kernel[1] > w)):
            raise QhwInputError(
                f"layer {layer_name!r} ({self.unit}): kernel {kernel[0]}x{kernel[1]} does not fit "
                f"its {_shape_text(in_shape)} input ({source}) with padding 'valid' (use "
                f"padding 'same' or a smaller kernel)")
        data.update(c_in=c, height=h, width=w)
        return data

    def out_format(self, cfg):
        if cfg.output == "requant":
            return Format(cfg.out_bits, False)
        if cfg.output in ("popcount", "sum"):
            if self.unit == "binconv":
                return Format(cfg.dot_bits, True)
            from . import bamconv
            return Format(bamconv.sum_bits(cfg), True)
        return Format(1, False)

    def to_unit_params(self, cfg, params):
        return params

    def from_unit_params(self, cfg, params):
        return params


class _DenseKind(_ConvKind):
    """A fully connected layer: the convolution whose kernel is the whole input map."""

    ARITH = {"xnor": ("binconv", "popcount"), "bam": ("bamconv", "sum"), "mac": ("macconv", "sum")}
    GEOMETRY = ("c_in", "c_out", "height", "width", "kernel", "padding")

    def __init__(self):
        super().__init__(None, None)

    def for_arith(self, spec, layer_name):
        arith = spec.get("arith")
        if arith is None:
            raise QhwInputError(f"layer {layer_name!r} (dense): missing field 'arith' "
                                f"(one of {', '.join(map(repr, self.ARITH))})")
        if arith not in self.ARITH:
            raise QhwInputError(f"layer {layer_name!r} (dense): arith must be one of "
                                f"{', '.join(map(repr, self.ARITH))}, got {arith!r}")
        unit, raw = self.ARITH[arith]
        return _ConvKind(unit, raw)

    def user_fields(self, unit_cls):
        return (["outputs", "arith"]
                + [f.name for f in dataclasses.fields(unit_cls)
                   if f.name not in self.GEOMETRY + ("act_bits", "weights")])

    def unit_config(self, layer_name, spec, in_shape, in_format, source):
        conv = self.for_arith(spec, layer_name)
        h, w, _ = in_shape
        data = {k: v for k, v in spec.items() if k not in ("outputs", "arith")}
        if "outputs" not in spec:
            raise QhwInputError(f"layer {layer_name!r} (dense): missing field 'outputs' "
                                f"(the number of output features)")
        data.update(c_out=spec["outputs"], kernel=(h, w), padding="valid")
        return conv.unit_config(layer_name, data, in_shape, in_format, source)

    @staticmethod
    def to_unit_params(cfg, params):
        out = dict(params)
        if "weights" in out:
            w = np.asarray(out["weights"])
            expected = (cfg.c_out, cfg.height * cfg.width * cfg.c_in)
            if w.shape != expected:
                raise QhwInputError(f"weights: shape must be {expected} (outputs, H*W*C in "
                                    f"row-major (row, column, channel) order), got {w.shape}")
            out["weights"] = w.reshape(cfg.c_out, cfg.height, cfg.width, cfg.c_in).transpose(
                0, 3, 1, 2)
        return out

    @staticmethod
    def from_unit_params(cfg, params):
        out = dict(params)
        out["weights"] = np.asarray(params["weights"]).transpose(0, 2, 3, 1).reshape(
            cfg.c_out, -1)
        return out


class _PoolKind(_MapKind):
    """maxpool / globalpool: sizes and element format from the previous layer."""

    has_weights = False

    def __init__(self, unit):
        self.unit = unit

    def user_fields(self, unit_cls):
        return [f.name for f in dataclasses.fields(unit_cls)
                if f.name not in _DERIVED + ("element_bits", "signed")]

    def unit_config(self, layer_name, spec, in_shape, in_format, source):
        h, w, c = in_shape
        if in_format.kind != "int":
            raise QhwInputError(f"layer {layer_name!r} ({self.unit}): pools integer maps, but "
                                f"its input ({source}) is {in_format.describe()}")
        kernel = _kernel_pair(spec.get("kernel"))
        if self.unit == "maxpool" and kernel is not None and (kernel[0] > h or kernel[1] > w):
            raise QhwInputError(
                f"layer {layer_name!r} (maxpool): kernel {kernel[0]}x{kernel[1]} is larger than "
                f"its {_shape_text(in_shape)} input ({source})")
        return {**spec, "c_in": c, "height": h, "width": w, "element_bits": in_format.bits,
                "signed": in_format.signed}

    def out_format(self, cfg):
        from . import pool
        return Format(pool.out_element_bits(cfg), bool(pool.out_signed(cfg)))

    def to_unit_params(self, cfg, params):
        return params

    def from_unit_params(self, cfg, params):
        return params


class _RequantKind(_MapKind):
    """requant: per-channel fixed-point scaling of the previous layer's signed sums to codes
    (a quantized network's activations); sizes and the input width from the previous layer."""

    unit = "requant"
    no_port = ("its multipliers are constants in the logic, not a memory (a convolution with "
               "output = 'requant' keeps them in its loadable auxiliary memory)")

    def user_fields(self, unit_cls):
        return [f.name for f in dataclasses.fields(unit_cls)
                if f.name not in _DERIVED + ("in_bits",)]

    def unit_config(self, layer_name, spec, in_shape, in_format, source):
        h, w, c = in_shape
        if in_format.kind != "int" or not in_format.signed or not 2 <= in_format.bits <= 48:
            raise QhwInputError(
                f"layer {layer_name!r} (requant): needs signed 2..48-bit sums, but its input "
                f"({source}, {_shape_text(in_shape)}) is {in_format.describe()}")
        return {**spec, "c_in": c, "height": h, "width": w, "in_bits": in_format.bits}

    def out_format(self, cfg):
        return Format(cfg.out_bits, bool(cfg.out_signed))


class _GruKind(_MapKind):
    """A GRU over the frames of each sequence (``input.steps`` frames): its input a vector per
    frame (a 1x1xC map of signed codes in its input format), its output the state after every
    step ('sequence') or after each sequence's last step ('last'). In hardware a step counter
    adds the unit's reset and last flags to the stream (:class:`qhw.hdl.network.SequenceGru`)."""

    unit = "gru"
    no_port = "its weight and bias memories have no load port"

    def user_fields(self, unit_cls):
        return [f.name for f in dataclasses.fields(unit_cls) if f.name != "input_size"]

    def unit_config(self, layer_name, spec, in_shape, in_format, source):
        h, w, c = in_shape
        if (h, w) != (1, 1):
            raise QhwInputError(
                f"layer {layer_name!r} (gru): needs one vector per frame (a 1x1xC map), but its "
                f"input ({source}) is {_shape_text(in_shape)}; put a globalpool or dense layer "
                f"before it")
        data = dict(spec, input_size=c)
        from .gru import GruConfig
        try:
            total = GruConfig(**{**data, "formats": dict(data.get("formats", {}))}).fmt(
                "input").total
        except QhwInputError:
            total = None  # the unit's own validation reports it
        if total is not None and (not in_format.signed or in_format.bits != total):
            raise QhwInputError(
                f"layer {layer_name!r} (gru): its input format is signed {total}-bit codes "
                f"(formats.input), but its input ({source}) is {in_format.describe()}")
        return data

    def out_format(self, cfg):
        return Format(cfg.fmt("state").total, True)

    def out_shape(self, cfg):
        return (1, 1, cfg.hidden_size)

    def out_steps(self, cfg, in_steps):
        return in_steps if cfg.output == "sequence" else 1

    def unit_frames(self, layer, sequences):
        return (sequences, layer.in_steps)

    def to_unit_inputs(self, layer, activations):
        a = np.asarray(activations)
        return a.reshape(a.shape[0] // layer.in_steps, layer.in_steps, a.shape[-1])

    def from_unit_outputs(self, layer, outputs):
        y = np.asarray(outputs)
        return y.reshape(-1, 1, 1, y.shape[-1])

    def timing_inputs(self, layer, maps, gates):
        """The sequence length is what the GRU's timing needs (the values do not matter)."""
        return np.zeros((maps // layer.in_steps, layer.in_steps, layer.in_shape[2]),
                        dtype=np.int64)

    def generator(self, layer, params):
        from ..hdl.network import SequenceGru
        return SequenceGru(layer.config, params, steps=layer.in_steps)

    def to_unit_params(self, cfg, params):
        return params

    def from_unit_params(self, cfg, params):
        return params


class _DotKind(_MapKind):
    """``outputs`` dot products of a vector per frame (a 1x1xC map): the dot-product unit
    ``unit`` once per output, all fed the same folds in lock step
    (:class:`qhw.hdl.network.DotDense`). Weights ``(outputs, C)``, one row per output in the
    unit's own weight format. The unit's config fields pass through (``simd``, the arithmetic
    options), except those the input decides (``derived``: the lanes and the activation format).

    Subclasses set ``unit``, ``derived``, ``weight_format`` (what a weight row holds, for
    messages) and :meth:`act_fields` (the unit's activation fields for the input format)."""

    unit = None
    derived = ("lanes", "act_format")
    weight_format = None
    no_port = "its weight memories are initialised from the weights, with no load port"

    def user_fields(self, unit_cls):
        return ["outputs"] + [f.name for f in dataclasses.fields(unit_cls)
                              if f.name not in self.derived]

    def act_fields(self, layer_name, in_format, source):
        raise NotImplementedError

    def unit_config(self, layer_name, spec, in_shape, in_format, source):
        h, w, c = in_shape
        if (h, w) != (1, 1):
            raise QhwInputError(
                f"layer {layer_name!r} ({self.unit}): needs one vector per frame (a 1x1xC map), "
                f"but its input ({source}) is {_shape_text(in_shape)}")
        if "outputs" not in spec:
            raise QhwInputError(f"layer {layer_name!r} ({self.unit}): missing field 'outputs' "
                                f"(the number of dot products per frame)")
        check_int(f"layer {layer_name!r} ({self.unit}): outputs", spec["outputs"], low=1,
                  high=1024)
        data = {k: v for k, v in spec.items() if k != "outputs"}
        data.update(self.act_fields(layer_name, in_format, source))
        return dict(data, lanes=c)

    def out_format(self, cfg):
        if cfg.is_float:
            return Format(cfg.x_bits, False, cfg.act_format)
        return Format(cfg.out_bits, True)

    def out_shape(self, cfg):
        return (1, 1, None)  # filled in from 'outputs' by the caller

    @staticmethod
    def outputs(layer):
        return layer.spec["outputs"]

    def to_unit_inputs(self, layer, activations):
        a = np.asarray(activations)
        return a.reshape(a.shape[0], -1)

    def from_unit_outputs(self, layer, outputs):
        y = np.asarray(outputs)
        return y.reshape(y.shape[0], 1, 1, -1)

    def _rows(self, layer, params):
        w = np.asarray(params["weights"])
        return [{"weights": w[m]} for m in range(self.outputs(layer))]

    def golden(self, layer, params, inputs):
        from .. import registry
        unit = registry.get(self.unit)
        return np.stack([unit.golden(layer.config, p, inputs)
                         for p in self._rows(layer, params)], axis=-1)

    def check_params(self, layer, params):
        from .. import registry
        unit = registry.get(self.unit)
        shape = (self.outputs(layer), layer.config.lanes)
        unknown = sorted(set(params) - {"weights"})
        if unknown:
            raise QhwInputError(f"weights file: unknown array {unknown[0]!r}; expected: weights")
        if "weights" not in params:
            raise QhwInputError(f"weights file: missing array 'weights' (shape {shape}, "
                                f"{self.weight_format(layer.config)}, one row per output)")
        w = np.asarray(params["weights"])
        if w.shape != shape:
            raise QhwInputError(f"weights: shape must be {shape} (outputs, lanes), got "
                                f"{w.shape}")
        rows = [unit.check_params(layer.config, p)["weights"] for p in self._rows(layer, params)]
        return {"weights": np.stack(rows)}

    def random_params(self, layer, rng):
        from .. import registry
        unit = registry.get(self.unit)
        return {"weights": np.stack([unit.random_params(layer.config, rng)["weights"]
                                     for _ in range(self.outputs(layer))])}

    def timing(self, layer, avail, inputs, start):
        """A vector is taken when the previous one's last fold goes out (F = lanes/simd folds,
        one per cycle, the first the cycle after the vector is taken); its results come F + L
        cycles after it is taken, L the unit's latency from its cost model (expdot:
        :func:`qhw.hdl.expdot.stages`, fpdot: :func:`qhw.hdl.fpdot.stages`)."""
        from .. import registry
        model = registry.get(self.unit).cost_model
        latency = model(layer.config, 1).latency
        fold = model(layer.config, 2).expected - model(layer.config, 1).expected
        take, t = [], None
        for a in avail:
            t = max(a, start) if t is None else max(a, t + fold)
            take.append(t)
        return take, [t + fold + latency for t in take], list(range(len(take)))

    def output_words(self, layer, frames):
        return frames * layer.in_steps

    def unpack(self, layer, words, frames):
        bits = layer.out_format.bits
        mask = (1 << bits) - 1
        values = np.array([[(w >> (m * bits)) & mask for m in range(self.outputs(layer))]
                           for w in words], dtype=np.int64).reshape(len(words), -1)
        if layer.out_format.signed:
            values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
        return values

    def operations(self, layer, frames, inputs):
        from .. import registry
        counts = registry.get(self.unit).operations(layer.config, frames, inputs)
        m = self.outputs(layer)
        counts = dict(counts)
        counts["ops"] = [{**op, "count": op["count"] * m} for op in counts["ops"]]
        return counts

    def generator(self, layer, params):
        from ..hdl.network import DotDense
        return DotDense(layer.config, params, outputs=self.outputs(layer), unit=self.unit)


class _ExpDotKind(_DotKind):
    """``outputs`` exponent-adder dot products of a vector per frame (a 1x1xC map of float bit
    patterns, or of signed integers as fixed point): the expdot unit once per output. Weights
    ``(outputs, C)`` sign-exponent codes."""

    unit = "expdot"
    derived = ("lanes", "act_format", "act_bits")

    @staticmethod
    def weight_format(cfg):
        return "sign-exponent codes"

    def act_fields(self, layer_name, in_format, source):
        if in_format.kind != "int":
            return {"act_format": in_format.kind}
        if in_format.signed:
            return {"act_format": "fixed", "act_bits": in_format.bits}
        raise QhwInputError(f"layer {layer_name!r} (expdot): needs float or signed "
                            f"activations, but its input ({source}) is "
                            f"{in_format.describe()}")


class _FpDotKind(_DotKind):
    """``outputs`` conventional float dot products of a vector per frame (a 1x1xC map of
    fp32/fp16/bf16 bit patterns): the fpdot unit (IEEE multipliers, a rounding adder tree and
    a rounding accumulator) once per output, the float counterpart of an expdot layer. Weights
    ``(outputs, C)`` bit patterns of the input's format."""

    unit = "fpdot"
    derived = ("lanes", "act_format")

    @staticmethod
    def weight_format(cfg):
        return f"{cfg.act_format} bit patterns"

    def act_fields(self, layer_name, in_format, source):
        if in_format.kind == "int":
            raise QhwInputError(
                f"layer {layer_name!r} (fpdot): needs float bit patterns (fp32, fp16 or bf16: "
                f"input.format, or an expdot/fpdot layer before it), but its input ({source}) "
                f"is {in_format.describe()}")
        return {"act_format": in_format.kind}


LAYER_KINDS = {
    "binconv": _ConvKind("binconv", "popcount"),
    "bamconv": _ConvKind("bamconv", "sum"),
    "macconv": _ConvKind("macconv", "sum"),
    "maxpool": _PoolKind("maxpool"),
    "globalpool": _PoolKind("globalpool"),
    "requant": _RequantKind(),
    "dense": _DenseKind(),
    "gru": _GruKind(),
    "expdot": _ExpDotKind(),
    "fpdot": _FpDotKind(),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _kind_of(layer):
    kind = LAYER_KINDS[layer.kind]
    return kind.for_arith(layer.spec, layer.name) if isinstance(kind, _DenseKind) else kind


# The description ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """A network description.

    Parameters
    ----------
    input : dict
        The input feature map: ``height``, ``width``, ``channels``, ``bits`` (default 1) and
        ``signed`` (default false; 1-bit maps are unsigned); for sequence models ``steps``, the
        frames per sequence (a GRU's state restarts at each sequence's first frame). A network
        "frame" (what the cost model, inputs and outputs count) is one sequence of ``steps``
        maps; without ``steps``, one map.
    layers : list of dict
        The layers in order, each with ``name`` (lower-case identifier), ``kind`` (see
        :data:`LAYER_KINDS`) and that kind's fields.
    name : str
        The network's name (reports, manifests).
    target : dict or None
        A throughput target, ``{clock_mhz, frame_rate_hz, realtime_factor}``: a folding solver
        picks PE and SIMD for the layers that do not give both (docs/networks.md).
    folding : 'min_area' or 'finn'
        The solver used with ``target``: the least-area folding that meets the target, or FINN's
        greedy SetFolding.
    weights : 'baked' or 'port'
        'baked' (default): every layer's weights are its memories' initial contents; 'port':
        the weighted layers (binconv, bamconv, macconv, dense) are built with run-time weights
        and one weight-load stream ``wl`` writes them all, layer after layer (the Verilog does
        not depend on the weights; a network with a layer that cannot load its weights, such
        as requant, gru, expdot or fpdot, is refused). No pixel is taken until a whole load has
        arrived, and a new load waits until no map is in the network.
    """

    input: dict
    layers: tuple
    name: str = "network"
    target: dict = None
    folding: str = "min_area"
    weights: str = "baked"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise QhwInputError(f"name: must be a non-empty string, got {self.name!r}")
        check_choice("folding", self.folding, ("min_area", "finn"))
        check_choice("weights", self.weights, ("baked", "port"))
        object.__setattr__(self, "_resolved", _resolve(self))
        object.__setattr__(self, "_solution", None)
        if self.target is not None:
            _solve_folding(self)

    @property
    def folding_solution(self):
        """The solver's result (:class:`qhw.folding.Folding`) when ``target`` chose the folding."""
        return self._solution

    @property
    def resolved(self):
        """The layers with every size derived (tuple of :class:`Layer`)."""
        return self._resolved

    @property
    def input_format(self):
        return Format(self.input["bits"], self.input["signed"], self.input.get("format", "int"))

    @property
    def steps(self):
        """Map frames per network frame (``input.steps``, default 1)."""
        return self.input.get("steps", 1)

    def input_shape(self, frames=None):
        """(H, W, C), or (frames x steps, H, W, C): the input maps of ``frames`` frames."""
        shape = (self.input["height"], self.input["width"], self.input["channels"])
        return shape if frames is None else (frames * self.steps,) + shape

    def output_shape(self, frames=None):
        shape = tuple(self.resolved[-1].out_shape)
        return shape if frames is None else (frames * self.resolved[-1].out_steps,) + shape

    @property
    def gated_layers(self):
        return [layer for layer in self.resolved if layer.gated]

    @property
    def port_layers(self):
        """The layers built with run-time weights (``weights = 'port'``), in network order."""
        return [layer for layer in self.resolved
                if getattr(layer.config, "weights", "baked") == "port"]

    def layer(self, name):
        for layer in self.resolved:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _check_input_spec(spec):
    if not isinstance(spec, dict):
        raise QhwInputError(f"input: must be a table {{height, width, channels, bits, signed}}, "
                            f"got {spec!r}")
    allowed = ("height", "width", "channels", "bits", "signed", "steps", "format")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise QhwInputError(f"input: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
    for key in ("height", "width", "channels"):
        if key not in spec:
            raise QhwInputError(f"input: missing key {key!r} (required: height, width, channels)")
        check_int(f"input.{key}", spec[key], low=1, high=1 << 16)
    kind = spec.get("format", "int")
    check_choice("input.format", kind, ("int",) + tuple(FLOATS))
    bits = spec.get("bits", FLOATS.get(kind, 1))
    check_int("input.bits", bits, low=1, high=32 if kind != "int" else 16)
    if kind != "int" and bits != FLOATS[kind]:
        raise QhwInputError(f"input.bits: {kind} has {FLOATS[kind]} bits, got {bits}")
    if kind != "int" and spec.get("signed", False):
        raise QhwInputError(f"input.signed: {kind} bit patterns carry their own sign (leave "
                            f"signed out)")
    signed = spec.get("signed", False)
    if not isinstance(signed, bool):
        raise QhwInputError(f"input.signed: must be true or false, got {signed!r}")
    if bits == 1 and signed:
        raise QhwInputError("input.signed: a 1-bit map is unsigned (bits = 1 needs signed = false)")
    steps = spec.get("steps", 1)
    check_int("input.steps", steps, low=1, high=1 << 20)
    out = {"height": spec["height"], "width": spec["width"], "channels": spec["channels"],
           "bits": bits, "signed": signed}
    if "steps" in spec:
        out["steps"] = steps
    if kind != "int":
        out["format"] = kind
    return out


def _unfolded(cfg):
    """Foldable layers whose description gives neither pe nor simd: the solver's to choose."""
    from ..folding import FOLDABLE_UNITS
    return [layer for layer in cfg.resolved
            if layer.unit in FOLDABLE_UNITS and "pe" not in layer.spec and "simd" not in layer.spec]


def _solve_folding(cfg):
    """Choose PE and SIMD for the layers that leave them open, to meet ``cfg.target``."""
    from .. import folding
    from ..config import config_to_dict

    target = folding.target_cycles_from_spec(cfg.target)
    open_layers = _unfolded(cfg)
    if not open_layers:
        raise QhwInputError("target: every foldable layer gives pe or simd, so the target "
                            "chooses nothing (leave out pe and simd of the layers to solve)")
    layers = [folding.FoldingLayer(name=layer.name, unit=layer.unit,
                                   config=config_to_dict(layer.config))
              for layer in open_layers]
    folding.check_reachable(layers, target)  # one line naming the layer and its best cycles
    if cfg.folding == "finn":
        solution = folding.finn_set_folding(layers, target)
    else:
        # Exact areas: every minimal candidate synthesized (cached); the fitted model is too
        # coarse to rank foldings of a bamconv (docs/folding.md).
        from ..synth.area_model import SynthArea
        solution = folding.min_area_folding(layers, target, SynthArea("ecp5"), "ecp5_lut4",
                                            monotone=True)
    chosen = {lf.name: (lf.pe, lf.simd) for lf in solution.layers}
    specs = [dict(spec, **({"pe": chosen[spec["name"]][0], "simd": chosen[spec["name"]][1]}
                           if spec.get("name") in chosen else {}))
             for spec in cfg.layers]
    object.__setattr__(cfg, "_resolved", _resolve(cfg, specs))
    object.__setattr__(cfg, "_solution", solution)


def _resolve(cfg, layer_specs=None):
    """Derive every layer's sizes from the input, checking that each layer fits the previous."""
    from .. import registry

    object.__setattr__(cfg, "input", _check_input_spec(cfg.input))
    cfg_steps = cfg.input.get("steps", 1)
    if not isinstance(cfg.layers, (list, tuple)) or not cfg.layers:
        raise QhwInputError("layers: a network needs at least one layer ([[layers]] tables)")
    shape = (cfg.input["height"], cfg.input["width"], cfg.input["channels"])
    fmt = Format(cfg.input["bits"], cfg.input["signed"], cfg.input.get("format", "int"))
    steps = cfg_steps
    source = "the network input"
    names, resolved = set(), []
    for index, spec in enumerate(cfg.layers if layer_specs is None else layer_specs):
        where = f"layers[{index}]"
        if not isinstance(spec, dict):
            raise QhwInputError(f"{where}: must be a table with name, kind and its fields")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise QhwInputError(f"{where}.name: must be a lower-case identifier (a-z, 0-9, _; "
                                f"up to 32 characters), got {name!r}")
        if name in names:
            raise QhwInputError(f"layer {name!r}: name used twice")
        names.add(name)
        kind_name = spec.get("kind")
        if kind_name not in LAYER_KINDS:
            raise QhwInputError(f"layer {name!r}: kind must be one of "
                                f"{', '.join(map(repr, LAYER_KINDS))}, got {kind_name!r}")
        kind = LAYER_KINDS[kind_name]
        fields = {k: (tuple(v) if isinstance(v, list) else v)
                  for k, v in spec.items() if k not in ("name", "kind")}
        unit_kind = kind.for_arith(fields, name) if isinstance(kind, _DenseKind) else kind
        unit = registry.get(unit_kind.unit)
        if "weights" in fields:
            raise QhwInputError(
                f"layer {name!r} ({kind_name}): 'weights' is the network's option, not a "
                f"layer's: write weights = {fields['weights']!r} at the top of the description "
                f"(it applies to every layer with weights)")
        if cfg.weights == "port" and unit_kind.has_weights and not unit_kind.port_weights:
            raise QhwInputError(
                f"layer {name!r} ({kind_name}): cannot take weights = 'port' (run-time "
                f"weights): {unit_kind.no_port}; only binconv, bamconv, macconv and dense "
                f"layers load theirs, so build this network with weights = 'baked'")
        allowed = kind.user_fields(unit.config)
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise QhwInputError(f"layer {name!r} ({kind_name}): unknown field {unknown[0]!r}; "
                                f"allowed: {', '.join(allowed)}")
        data = kind.unit_config(name, fields, shape, fmt, source)
        if cfg.weights == "port" and unit_kind.port_weights:
            data["weights"] = "port"
        try:
            ucfg = config_from_dict(unit.config, data, where=f"layer {name!r}")
        except QhwInputError as e:
            message = str(e)
            prefix = f"layer {name!r}"
            raise QhwInputError(message if message.startswith(prefix)
                                else f"{prefix} ({kind_name}): {message}") from None
        if kind_name == "gru" and cfg_steps == 1:
            raise QhwInputError(f"layer {name!r} (gru): needs sequences: set input.steps, the "
                                f"frames per sequence (the state restarts at each sequence)")
        if kind_name == "gru" and steps == 1:
            raise QhwInputError(f"layer {name!r} (gru): its input has one frame per sequence "
                                f"(after a GRU with output 'last'); nothing to recur over")
        out_shape = unit_kind.out_shape(ucfg)
        if out_shape[2] is None:  # expdot: one channel per output
            out_shape = (1, 1, fields["outputs"])
        resolved.append(Layer(
            name=name, kind=kind_name, unit=unit.name, config=ucfg, spec=fields,
            in_shape=shape, out_shape=out_shape, in_format=fmt,
            out_format=unit_kind.out_format(ucfg),
            gated=getattr(ucfg, "gating", "none") != "none",
            in_steps=steps, out_steps=unit_kind.out_steps(ucfg, steps)))
        steps = resolved[-1].out_steps
        shape, fmt, source = out_shape, resolved[-1].out_format, f"the output of layer {name!r}"
    return tuple(resolved)


# Parameters -----------------------------------------------------------------------------------------

def layer_params(cfg, params, layer):
    """The unit parameters of ``layer`` from a network weight mapping (keys ``<layer>.<array>``)."""
    prefix = layer.name + "."
    own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    return LAYER_KINDS[layer.kind].to_unit_params(layer.config, own)


def check_params(cfg, params):
    """Validate a network weight mapping; returns it with each layer's arrays normalised."""
    layer_names = [layer.name for layer in cfg.resolved]
    for key in sorted(params):
        head = key.split(".", 1)[0]
        if "." not in key or head not in layer_names:
            raise QhwInputError(
                f"weights file: unknown array {key!r}; arrays are named <layer>.<array> with "
                f"layer one of {', '.join(layer_names)}")
    out = {}
    for layer in cfg.resolved:
        try:
            checked = layer.kind_adapter.check_params(layer, layer_params(cfg, params, layer))
            checked = LAYER_KINDS[layer.kind].from_unit_params(layer.config, checked) \
                if "weights" in checked else checked
        except QhwInputError as e:
            raise QhwInputError(f"weights file: layer {layer.name!r}: "
                                f"{_prefix_arrays(str(e), layer.name)}") from None
        out.update({f"{layer.name}.{k}": v for k, v in checked.items()})
    return out


def _prefix_arrays(message, name):
    """A unit's weight-file message with its array names as the network file names them."""
    message = message.removeprefix("weights file: ")
    return re.sub(r"array '(\w+)'", lambda m: f"array '{name}.{m.group(1)}'", message)


def random_params(cfg, rng):
    """Random weights for every layer; thresholds set at each channel's median pre-activation on
    random inputs, so that the binary maps inside the network are balanced (a deep random
    network would otherwise have constant maps and test nothing)."""
    from .. import registry

    x = random_inputs(cfg, rng, max(1, 8 // cfg.steps))
    out = {}
    act = x["activations"]
    for layer in cfg.resolved:
        unit = registry.get(layer.unit)
        kind = layer.kind_adapter
        p = kind.random_params(layer, rng)
        ins = layer_inputs(cfg, x, layer, act)
        if "thresholds" in p and kind.raw_output is not None:
            raw_cfg = dataclasses.replace(layer.config, output=kind.raw_output)
            raw = unit.golden(raw_cfg, {k: v for k, v in p.items()
                                        if k not in ("thresholds", "directions")}, ins)
            pre = raw.reshape(-1, layer.config.c_out)
            p["thresholds"] = np.floor(np.median(pre, axis=0)).astype(np.int64)
        act = layer.maps(kind.golden(layer, p, ins))
        user = LAYER_KINDS[layer.kind].from_unit_params(layer.config, p) if "weights" in p else p
        out.update({f"{layer.name}.{k}": np.asarray(v) for k, v in user.items()})
    return out


def load_words(cfg, params):
    """The network's weight-load stream ``wl`` (``weights = 'port'``): every port-weight layer's
    own load words (:func:`qhw.golden.binconv.load_words`, :func:`qhw.golden.bamconv.load_words`:
    its weight words, then its auxiliary words), layer after layer in network order; each word
    goes in the low bits of the network's wider ``wl`` payload."""
    from .. import registry

    if cfg.weights != "port":
        raise QhwInputError("weights: the network has no weight-load stream (weights = "
                            "'baked'); set weights = 'port' to load its weights at run time")
    params = check_params(cfg, params)
    words = []
    for layer in cfg.port_layers:
        unit = registry.get(layer.unit)
        own = unit.check_params(layer.config, layer_params(cfg, params, layer))
        words += unit.load_words(layer.config, own)
    return words


# Inputs ---------------------------------------------------------------------------------------------

def _gate_dummy(layer, maps):
    """Zero input maps of ``layer`` for ``maps`` map frames (the gates' shapes come from them)."""
    return np.zeros((maps,) + tuple(layer.in_shape), dtype=np.int64)


def check_inputs(cfg, inputs):
    """Validate network inputs: an activation array, or a mapping with 'activations' and, for
    every gated layer, '<layer>.gates'. Returns the mapping with (F, H, W, C) activations, F the
    map frames (frames x ``input.steps``)."""
    from .. import registry

    gated = cfg.gated_layers
    if isinstance(inputs, dict):
        allowed = ["activations"] + [f"{layer.name}.gates" for layer in gated]
        unknown = sorted(set(inputs) - set(allowed))
        if unknown:
            raise QhwInputError(f"inputs: unknown array {unknown[0]!r}; expected: "
                                f"{', '.join(allowed)}")
        if "activations" not in inputs:
            raise QhwInputError("inputs: missing array 'activations'")
        x = inputs["activations"]
    else:
        x, inputs = inputs, {}
    x = np.asarray(x)
    shape = cfg.input_shape()
    if x.shape == shape:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != shape or x.shape[0] < 1:
        raise QhwInputError(f"activations: shape must be {shape} or (N, "
                            f"{', '.join(map(str, shape))}), got {x.shape}")
    if x.shape[0] % cfg.steps:
        raise QhwInputError(f"activations: {x.shape[0]} maps are not whole sequences of "
                            f"input.steps = {cfg.steps}")
    lo, hi = cfg.input_format.range()
    out = {"activations": check_int_array("activations", x, x.shape, lo, hi,
                                          cfg.input_format.describe())}
    sequences = x.shape[0] // cfg.steps
    for layer in gated:
        key = f"{layer.name}.gates"
        if key not in inputs:
            raise QhwInputError(f"inputs: layer {layer.name!r} is gated "
                                f"({layer.config.gating}) and needs an array {key!r} (give an "
                                f".npz with 'activations' and {key!r})")
        unit = registry.get(layer.unit)
        dummy = _gate_dummy(layer, sequences * layer.in_steps)
        try:
            out[key] = unit.check_inputs(layer.config, {"activations": dummy,
                                                        "gates": inputs[key]})["gates"]
        except QhwInputError as e:
            raise QhwInputError(f"{key}: {str(e).removeprefix('gates: ')}") from None
    return out


def random_inputs(cfg, rng, frames=1):
    """Random input maps of ``frames`` frames (and random gates for every gated layer)."""
    from .. import registry

    lo, hi = cfg.input_format.range()
    x = {"activations": rng.integers(lo, hi + 1, size=cfg.input_shape(frames))}
    for layer in cfg.gated_layers:  # the unit's own gate draw (random channel density)
        x[f"{layer.name}.gates"] = registry.get(layer.unit).random_inputs(
            layer.config, rng, frames * layer.in_steps)["gates"]
    return x


def layer_inputs(cfg, inputs, layer, activations):
    """What ``layer``'s unit gets for its (F, H, W, C) input maps: its own input form, with its
    gates when it is gated."""
    return layer.unit_inputs(activations, inputs.get(f"{layer.name}.gates"))


# The golden model -----------------------------------------------------------------------------------

def trace(cfg, params, inputs):
    """Every layer's output maps (F, H, W, C) for ``inputs``: the composition of the units'
    golden models."""
    inputs = check_inputs(cfg, inputs)
    params = check_params(cfg, params)
    act, outputs = inputs["activations"], []
    for layer in cfg.resolved:
        act = layer.maps(layer.kind_adapter.golden(layer, layer_params(cfg, params, layer),
                                                   layer_inputs(cfg, inputs, layer, act)))
        outputs.append(act)
    return outputs


def reference(cfg, params, inputs):
    """Bit-exact output of the network: the last layer's output maps, (F, H_out, W_out, C_out)."""
    return trace(cfg, params, inputs)[-1]


# Stream words ---------------------------------------------------------------------------------------

def pack_inputs(cfg, inputs):
    """'i': one input pixel per word (channel c at bits [c*E, (c+1)*E)); 'g_<layer>': the gates
    of each gated layer, in that unit's own gate format."""
    from .. import registry

    inputs = check_inputs(cfg, inputs)
    x = inputs["activations"]
    sequences = x.shape[0] // cfg.steps
    words = {"i": pack_fields(x.reshape(-1, cfg.input["channels"]), cfg.input["bits"])}
    for layer in cfg.gated_layers:
        dummy = _gate_dummy(layer, sequences * layer.in_steps)
        words[f"g_{layer.name}"] = registry.get(layer.unit).pack_inputs(
            layer.config, {"activations": dummy, "gates": inputs[f"{layer.name}.gates"]})["g"]
    return words


def output_words(cfg, frames):
    last = cfg.resolved[-1]
    h, w, _ = last.out_shape
    return {"o": frames * last.out_steps * h * w}


def layer_outputs(layer, words, frames):
    """A layer's output words for ``frames`` network frames as its (F, H, W, C) maps."""
    return layer.maps(layer.kind_adapter.unpack(layer, words, frames))


def layer_output_words(layer, frames):
    return layer.kind_adapter.output_words(layer, frames)


def unpack_outputs(cfg, words, frames):
    return layer_outputs(cfg.resolved[-1], words["o"], frames)


def frames(cfg, inputs):
    """Network frames of ``inputs``: sequences of ``input.steps`` maps (maps without steps)."""
    return check_inputs(cfg, inputs)["activations"].shape[0] // cfg.steps
