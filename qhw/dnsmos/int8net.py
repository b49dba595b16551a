"""The 8-bit-activation student of DNSMOS P.808 as an integer qhw network: the comparison point
of the binary-activation accelerator (docs/dnsmos.md).

The 8-bit student (:class:`qhw.dnsmos.train.Int8P808`, export ``examples/networks/dnsmos_int8
.npz``) has per-channel int8 weights ``q`` with scales ``s_w``, float biases ``b`` and unsigned
8-bit activations of per-layer scale ``a`` (the input: ``1 / 127``). In integers, layer k with
input codes of scale ``a_in`` computes the accumulator ``acc = sum q * x``; its real
pre-activation is ``s_w[c] * a_in * acc + b[c]``, and its output code is that divided by
``a_out``, rounded and clamped to [0, 255] (the clamp at 0 is the ReLU). The network does it in
each ``macconv`` layer (``output = "requant"``, the requantization fused at the PE outputs)::

    s = acc + B_c,  B_c = round(b[c] / (s_w[c] * a_in))
    y = clamp(floor((s * M_c + 2**(shift-1)) / 2**shift), 0, 255),
        M_c / 2**shift ~ s_w[c] * a_in / a_out with 16-bit M_c

or, with ``fused=False``, as a ``macconv`` with sum output followed by a separate ``requant``
layer ``q<layer>`` (the same integers: the comparison of the two in docs/dnsmos.md), with the max
pools between (max commutes with the monotone requantization), the global max pool
of conv5's codes, and dense1..dense3 as ``mac`` dense layers; dense3's sum times
``s_w * a_in`` is the MOS. Rounding the bias and the scales to integers changes the float
student's scores by a few thousandths of a MOS (measured in the tests and docs/dnsmos.md).

:func:`integer_forward` is the same integer arithmetic written with PyTorch's conv2d /
max_pool2d / linear in float64 (exact at these magnitudes): the outside oracle of the network
golden model; it imports PyTorch when called (the ``train`` or ``test`` extra), the rest of the
module needs none.
"""

from __future__ import annotations

import numpy as np

from ..golden import requant
from . import student as S
from .teacher import CONV_LAYERS, DENSE_LAYERS, teacher_weights

__all__ = ["MULT_BITS", "integer_params", "network_description", "integer_forward",
           "mos_from_sum", "design_point_description", "load_export", "requant_pe"]

#: Width of the requantization multipliers (the relative scale error is below 2**-15 for the
#: largest channel of a layer).
MULT_BITS = 16

_NAMES = [n for n, _, _ in CONV_LAYERS] + [n for n, _ in DENSE_LAYERS]


def load_export(path=None):
    """The shipped 8-bit student's export (``examples/networks/dnsmos_int8.npz``)."""
    from pathlib import Path
    path = path or Path(__file__).resolve().parents[2] / "examples" / "networks" / \
        "dnsmos_int8.npz"
    return dict(np.load(path))


def _input_scales(export):
    """The scale of each layer's input codes: 1/127 for conv1, else the previous layer's
    activation scale (pools keep it)."""
    act = np.asarray(export["act_scale"], dtype=np.float64)
    return {n: (1.0 / S.INPUT_SCALE if k == 0 else float(act[k - 1]))
            for k, n in enumerate(_NAMES)}


def integer_params(export, fused=True):
    """(params, shifts, mos_scale): the network's weight-file arrays (``<layer>.weights``,
    ``<layer>.bias``, ``<layer>.multipliers``, or ``q<layer>.multipliers`` for the separate
    requant layers with ``fused=False``), the requantization shift of every layer but dense3,
    and the float that turns dense3's sum into the MOS."""
    act = np.asarray(export["act_scale"], dtype=np.float64)
    a_in = _input_scales(export)
    params, shifts = {}, {}
    for k, name in enumerate(_NAMES):
        q = np.asarray(export[f"{name}.weights"]).astype(np.int64)
        s_w = np.asarray(export[f"{name}.scale"], dtype=np.float64)
        b = np.asarray(export[f"{name}.bias"], dtype=np.float64)
        acc_scale = s_w * a_in[name]
        params[f"{name}.weights"] = q
        params[f"{name}.bias"] = np.rint(b / acc_scale).astype(np.int64)
        if name == "dense3":
            mos_scale = float(acc_scale[0])
            continue
        mult, shift = requant.multipliers_for(acc_scale / act[k], MULT_BITS)
        params[f"{name}.multipliers" if fused else f"q{name}.multipliers"] = mult
        shifts[name] = shift
    return params, shifts, mos_scale


def mos_from_sum(total, mos_scale):
    """The MOS of dense3's integer sum (its bias included)."""
    return np.asarray(total, dtype=np.float64) * mos_scale


def network_description(shifts, frames=900, folding=None, name="dnsmos_int8", fused=True):
    """The qhw network description of the 8-bit student for ``frames`` x 120 inputs.

    ``folding``: {layer: {"pe": .., "simd": ..}} for the convolutions and dense layers (the
    binary design point's, for a same-folding comparison) and, with ``fused=False``,
    {"q<layer>": {"pe": ..}} for the separate requantization layers (default: the fewest
    multipliers that keep up with the layer before, :func:`requant_pe`)."""
    folding = dict(folding or {})
    layers = []

    def requant_fields(lname):
        return ({"output": "requant", "out_bits": 8, "mult_bits": MULT_BITS,
                 "shift": int(shifts[lname])} if fused else {"output": "sum"})

    def add_requant(lname, channels, conv_cycles_per_pixel):
        if fused:
            return
        pe = folding.get(f"q{lname}", {}).get("pe", requant_pe(channels, conv_cycles_per_pixel))
        layers.append({"name": f"q{lname}", "kind": "requant", "out_bits": 8,
                       "mult_bits": MULT_BITS, "shift": int(shifts[lname]), "pe": pe})

    for lname, _, pool in CONV_LAYERS:
        c_out, c_in = teacher_weights()[f"{lname}.weight"].shape[:2]
        fold = folding.get(lname, {})
        layers.append({"name": lname, "kind": "macconv", "c_out": int(c_out), "kernel": [3, 3],
                       "padding": "same", "weight_bits": 8, **requant_fields(lname), **fold})
        add_requant(lname, int(c_out), _cycles_per_pixel(int(c_out), int(c_in) * 9, fold))
        if pool:
            layers.append({"name": f"pool{lname[-1]}", "kind": "maxpool", "kernel": [2, 2]})
    layers.append({"name": "gpool", "kind": "globalpool", "mode": "max"})
    for lname, _ in DENSE_LAYERS:
        n_out, n_in = teacher_weights()[f"{lname}.weight"].shape[:2]
        fold = folding.get(lname, {})
        layers.append({"name": lname, "kind": "dense", "arith": "mac", "outputs": int(n_out),
                       "weight_bits": 8,
                       **(requant_fields(lname) if lname != "dense3" else {"output": "sum"}),
                       **fold})
        if lname != "dense3":
            add_requant(lname, int(n_out), _cycles_per_pixel(int(n_out), int(n_in), fold))
    return {"name": name,
            "input": {"height": int(frames), "width": 120, "channels": 1, "bits": 8,
                      "signed": True},
            "layers": layers}


def _cycles_per_pixel(c_out, k, fold):
    pe, simd = fold.get("pe", 1), fold.get("simd", 1)
    return (c_out // pe) * (k // simd)


def requant_pe(channels, cycles_per_pixel):
    """The fewest lanes (a divisor of ``channels``) whose c / pe cycles per pixel do not exceed
    the cycles the layer before spends on a pixel."""
    return next(pe for pe in range(1, channels + 1)
                if channels % pe == 0 and channels // pe <= max(cycles_per_pixel, 1))


def design_point_description(binary_point="dnsmos_ecp5", export=None, frames=900, fused=True):
    """The 8-bit network folded as the binary design point ``binary_point`` (same PE and SIMD
    per convolution and dense layer: the same throughput class), named
    ``<binary_point>_int8`` (``<binary_point>_int8_unfused`` with separate requant layers)."""
    from .student import design_point_config
    cfg = design_point_config(binary_point)
    folding = {layer.name: {"pe": layer.config.pe, "simd": layer.config.simd}
               for layer in cfg.resolved if hasattr(layer.config, "simd")}
    _, shifts, _ = integer_params(export if export is not None else load_export())
    return network_description(shifts, frames, folding, fused=fused,
                               name=f"{binary_point}_int8" + ("" if fused else "_unfused"))


def integer_forward(params, shifts, xq):
    """dense3's sums (N,) int64 of quantized windows ``xq`` (N, T, 120), written with PyTorch
    (float64, exact: the largest product of a sum and a multiplier is below 2**45); ``params``
    fused or not."""
    from ..torch_extra import import_torch
    torch = import_torch()
    F = torch.nn.functional

    def requantize(acc, lname, view):
        key = f"{lname}.multipliers" if f"{lname}.multipliers" in params else \
            f"q{lname}.multipliers"
        m = torch.from_numpy(np.asarray(params[key], np.float64)).view(view)
        return torch.clamp(torch.floor(acc * m / 2.0 ** shifts[lname] + 0.5), 0, 255)

    def tensor(key):
        return torch.from_numpy(np.asarray(params[key], dtype=np.float64))

    h = torch.from_numpy(np.asarray(xq, dtype=np.float64)).unsqueeze(1)
    for lname, _, pool in CONV_LAYERS:
        acc = F.conv2d(F.pad(h, (1, 1, 1, 1)), tensor(f"{lname}.weights")) + tensor(
            f"{lname}.bias").view(1, -1, 1, 1)
        h = requantize(acc, lname, (1, -1, 1, 1))
        if pool:
            h = F.max_pool2d(h, 2)
    h = h.amax(dim=(2, 3))
    for lname, _ in DENSE_LAYERS:
        acc = h @ tensor(f"{lname}.weights").T + tensor(f"{lname}.bias")
        if lname == "dense3":
            return acc[:, 0].numpy().astype(np.int64)
        h = requantize(acc, lname, (1, -1))


def main(argv=None):
    """Write the 8-bit network's design point (``dnsmos_ecp5_int8.toml``, folded as the binary
    ECP5 design point) and its integer weights (``dnsmos_int8_net.npz``) from the 8-bit
    student's export."""
    import argparse
    import os
    ap = argparse.ArgumentParser(prog="python -m qhw.dnsmos.int8net",
                                 description=main.__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default="examples/networks")
    args = ap.parse_args(argv)
    params, _, mos_scale = integer_params(load_export())
    desc = design_point_description("dnsmos_ecp5")
    comment = (
        "dnsmos_ecp5_int8: DNSMOS P.808's 8-bit-activation student, folded as dnsmos_ecp5 "
        "(docs/dnsmos.md).\n"
        "Input: one 9.01 s window of DNSMOS features, 900 frames x 120 mel bands, signed 8 "
        "bits.\n"
        "Every convolution and dense layer has the PE and SIMD of the binary design point and "
        "requantizes its sums\n"
        "to unsigned 8-bit codes at its PE outputs (output = \"requant\").\n"
        f"Weights: dnsmos_int8_net.npz; the MOS is dense3's sum times {mos_scale!r}.\n"
        "Written by python -m qhw.dnsmos.int8net.")
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "dnsmos_ecp5_int8.toml"), "w") as f:
        f.write(S.network_toml(desc, comment))
    np.savez_compressed(os.path.join(args.output, "dnsmos_int8_net.npz"), **params)


if __name__ == "__main__":
    main()
