"""The binary-activation student of DNSMOS P.808 and its export to a qhw network.

The student has the teacher's topology (:mod:`qhw.dnsmos.teacher`) with the arithmetic of the
binary-activation-map paper (arXiv 2407.04578):

* input: the features quantized to signed 8 bits, ``x_q = clamp(round(127 * x), -127, 127)``
  (the features lie in [-1, 1]);
* conv1: 8-bit per-channel weights times the 8-bit input (``macconv``), thresholded to a binary
  map; conv2 ... conv5: binary maps times 8-bit weights, i.e. sums of the weights whose input is
  1 (``bamconv``), thresholded; max pools of binary maps are ORs;
* global max pool of conv5's binary map (an OR over all positions): 64 bits;
* dense1, dense2: 64 -> 64 ``bamconv`` dense layers, thresholded; dense3: 64 -> 1 integer sum;
  the MOS is ``scale * sum`` (``mos_scale`` in the export).

This module is the part that needs no PyTorch (the demo and ``qhw score`` use it on the shipped
weights): the input quantization, the MOS of dense3's sum, the network description and the
design points. The PyTorch part, the QAT module :class:`BinaryP808`, :func:`init_from_teacher`,
:func:`export_params` and the integer oracle :func:`integer_forward`, lives in
:mod:`qhw.dnsmos.student_torch` (the ``train`` extra) and is reachable from here too: the first
use of one of those names imports it (:class:`qhw.torch_extra.TorchMissing` without PyTorch).
"""

from __future__ import annotations

import numpy as np

from .teacher import CONV_LAYERS, DENSE_LAYERS, teacher_weights

__all__ = ["INPUT_SCALE", "quantize_features", "BinaryP808", "init_from_teacher",
           "export_params", "integer_forward", "network_description", "mos_from_sum",
           "design_point_config"]

#: The features (in [-1, 1]) times 127, rounded: the accelerator's signed 8-bit input.
INPUT_SCALE = 127
BETA = 5.0

#: The names that :mod:`qhw.dnsmos.student_torch` defines (imported on first use).
_TORCH_NAMES = frozenset({"BinaryP808", "init_from_teacher", "export_params", "integer_forward",
                          "BamConv2d", "heaviside_superspike", "max_pool2x2"})


def __getattr__(name):
    if name in _TORCH_NAMES:
        from ..torch_extra import import_torch
        import_torch()
        from . import student_torch
        return getattr(student_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def quantize_features(features):
    """Features (..., 900, 120) in [-1, 1] -> signed 8-bit integers (int64 array)."""
    x = np.rint(np.asarray(features, dtype=np.float64) * INPUT_SCALE)
    return np.clip(x, -INPUT_SCALE, INPUT_SCALE).astype(np.int64)


def mos_from_sum(total, mos_scale):
    """The MOS of dense3's integer sum (the accelerator's output word)."""
    return np.asarray(total, dtype=np.float64) * mos_scale



def network_description(frames=900, folding=None, name="dnsmos_bam"):
    """The qhw network description (a dict, as a TOML file holds it) of the student for inputs of
    ``frames`` x 120 features. ``folding``: {layer: {"pe": .., "simd": ..}}, or a ``target``
    table under the key "target" (the folding solver then chooses)."""
    folding = dict(folding or {})
    target = folding.pop("target", None)
    layers = []
    for lname, _, pool in CONV_LAYERS:
        c_out = teacher_weights()[f"{lname}.weight"].shape[0]
        layer = {"name": lname, "kind": "macconv" if lname == "conv1" else "bamconv",
                 "c_out": int(c_out), "kernel": [3, 3], "padding": "same",
                 "weight_bits": 8, "output": "threshold", **folding.get(lname, {})}
        layers.append(layer)
        if pool:
            layers.append({"name": f"pool{lname[-1]}", "kind": "maxpool", "kernel": [2, 2]})
    layers.append({"name": "gpool", "kind": "globalpool", "mode": "max"})
    for lname, _ in DENSE_LAYERS:
        n_out = teacher_weights()[f"{lname}.weight"].shape[0]
        layers.append({"name": lname, "kind": "dense", "arith": "bam", "outputs": int(n_out),
                       "weight_bits": 8, "output": "sum" if lname == "dense3" else "threshold",
                       **folding.get(lname, {})})
    desc = {"name": name,
            "input": {"height": int(frames), "width": 120, "channels": 1, "bits": 8,
                      "signed": True},
            "layers": layers}
    if target is not None:
        desc["target"] = target
    return desc


#: The two design points (docs/dnsmos.md): the throughput target of each, in windows of 9.01 s
#: per second times the real-time factor, at the clock the target part reaches.
DESIGN_POINTS = {
    "dnsmos_ecp5": {"part": "Lattice ECP5-25F", "target": "ecp5",
                    "spec": {"clock_mhz": 50, "frame_rate_hz": 1 / 9.01, "realtime_factor": 10}},
    "dnsmos_ice40": {"part": "Lattice iCE40 UP5K", "target": "ice40",
                     "spec": {"clock_mhz": 24, "frame_rate_hz": 1 / 9.01, "realtime_factor": 1}},
}


def network_toml(desc, comment=""):
    """The description as a TOML network file (what examples/networks/ holds)."""
    from ..config import to_toml
    return to_toml(desc, comment)


def design_point_description(name, frames=900):
    """The network description of a design point: the student with its throughput target,
    folded by FINN's SetFolding (a greedy walk that needs no synthesis; docs/folding.md)."""
    point = DESIGN_POINTS[name]
    desc = network_description(frames, {"target": dict(point["spec"])}, name=name)
    desc["folding"] = "finn"
    return desc


def design_point_config(name, frames=None):
    """The network config of a shipped design point (``examples/networks/<name>.toml``), or,
    with ``frames``, the same network folded as for the full window on an input of ``frames``
    frames (shorter inputs of the same hardware, for quick RTL runs; at least 8 frames survive
    the three 2 x 2 pools)."""
    import tomllib
    from pathlib import Path

    from .. import registry
    from ..config import config_from_dict
    unit = registry.get("network")
    path = Path(__file__).resolve().parents[2] / "examples" / "networks" / f"{name}.toml"
    desc = tomllib.loads(path.read_text())
    cfg = config_from_dict(unit.config, desc)
    if frames is None:
        return cfg
    folds = {layer.name: (layer.config.pe, layer.config.simd) for layer in cfg.resolved
             if hasattr(layer.config, "simd")}
    desc.pop("target", None), desc.pop("folding", None)
    for layer in desc["layers"]:
        if layer["name"] in folds:
            layer["pe"], layer["simd"] = folds[layer["name"]]
    desc["input"]["height"] = frames
    desc["name"] = f"{name}_{frames}"
    return config_from_dict(unit.config, desc)
