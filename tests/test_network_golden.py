"""The network golden model against PyTorch, shapes flowing from the input, and bad descriptions.

The oracle below is written from the layer definitions alone (torch conv2d / max_pool2d / amax /
sum / linear on the integers, in float64, which is exact at these magnitudes); it uses none of
qhw's golden code, only the weight files' documented layouts.
"""

import dataclasses
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qhw import registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError

UNIT = registry.get("network")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "networks"


def _pads(kernel, padding):
    if padding == "valid":
        return (0, 0, 0, 0)
    kh, kw = kernel
    # F.pad order: (left, right, top, bottom); 'same' puts the odd extra after, like PyTorch
    return ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2, kh - 1 - (kh - 1) // 2)


def _threshold(s, p):
    t = torch.as_tensor(p["thresholds"], dtype=torch.float64).view(1, -1, 1, 1)
    d = torch.as_tensor(p["directions"]).view(1, -1, 1, 1)
    return torch.where(d > 0, s >= t, s <= t).to(torch.float64)


def _conv(x, p, kind, kernel, padding, output, pad_bit=0, gates=None, gating="none"):
    """x: NCHW float64 integers. binconv: bits as +-1, padding holds the pad bit's +-1."""
    w = torch.as_tensor(np.asarray(p["weights"]), dtype=torch.float64)
    if kind == "binconv":
        x, w, pad_value = 2 * x - 1, 2 * w - 1, 2 * pad_bit - 1
    else:
        pad_value = 0
    x = F.pad(x, _pads(kernel, padding), value=float(pad_value))
    s = F.conv2d(x, w)
    if kind != "binconv":
        s = s + torch.as_tensor(p["bias"], dtype=torch.float64).view(1, -1, 1, 1)
    if output == "threshold":
        s = _threshold(s, p)
    if gating != "none":
        g = torch.as_tensor(np.asarray(gates), dtype=torch.float64)
        if gating == "mask":
            mask = g.permute(0, 3, 1, 2)
        else:
            mask = (torch.arange(s.shape[1]).view(1, -1, 1, 1) < g.unsqueeze(1)).to(s.dtype)
        s = s * mask
    return s


def torch_gru(fmt, steps, x, p, hidden):
    """torch.nn.GRU on the dequantized codes (fmt(name) -> (total, frac)): (F, C) frames in
    sequences of ``steps`` -> (F, H) real states."""
    ref = torch.nn.GRU(x.shape[1], hidden, batch_first=True).double()
    scale = {name: 2.0 ** -fmt(name)[1] for name in ("input", "weight", "bias")}
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            kind = "weight" if name.startswith("weight") else "bias"
            getattr(ref, f"{name}_l0").copy_(torch.as_tensor(p[name] * scale[kind]))
        seq = torch.as_tensor(x.reshape(-1, steps, x.shape[1]) * scale["input"])
        return ref(seq)[0].reshape(-1, hidden)


def check_expdot_fp16(x_bits, weight_codes, got_bits, exp_bits, bias):
    """Sign-exponent dot products on fp16 against IEEE float16 arithmetic in NumPy and exact
    rational sums: for every vector whose inputs and products are normal (or zero) and whose
    exact sum lies in the normal range, the result must be that sum rounded to nearest even
    (float64 of the exact Fraction, then float16). Returns how many results were checked."""
    from fractions import Fraction
    x = x_bits.astype(np.uint16).view(np.float16).astype(np.float64)
    f = weight_codes & ((1 << exp_bits) - 1)
    sign = np.where((weight_codes >> exp_bits) & 1, -1.0, 1.0)
    w = np.where(f == 0, 0.0, sign * np.exp2(f.astype(np.float64) - bias))
    got = got_bits.astype(np.uint16).view(np.float16).astype(np.float64)
    tiny, huge = 2.0 ** -14, 65504.0
    checked = 0
    for v in range(x.shape[0]):
        if not np.all(np.isfinite(x[v])) or np.any((x[v] != 0) & (np.abs(x[v]) < tiny)):
            continue
        for m in range(w.shape[0]):
            products = x[v] * w[m]  # exact in float64: a power of two times an fp16 value
            nonzero = products[products != 0]
            if np.any((np.abs(nonzero) < tiny) | (np.abs(nonzero) > huge)):
                continue
            exact = sum((Fraction(float(p)) for p in products), Fraction(0))
            if exact != 0 and not tiny <= abs(exact) <= huge:
                continue
            want = np.float16(float(exact))
            assert got[v, m] == want, (v, m, float(exact), got[v, m], want)
            checked += 1
    return checked


def torch_forward(spec, params, inputs, gru=None, expdot=None):
    """The network of description ``spec`` in PyTorch, from the description and weights alone.

    ``gru(name, x, p)`` stands in for a GRU layer: integer GRUs round every operator, so they
    are not bit-exact to torch.nn.GRU; the caller compares them within a tolerance and returns
    the codes the layers after it get. ``expdot(name, x, p)`` likewise for float dot products,
    checked against exact sums (:func:`check_expdot_fp16`)."""
    x = torch.as_tensor(np.asarray(inputs["activations"]), dtype=torch.float64).permute(0, 3, 1, 2)
    for layer in spec["layers"]:
        name, kind = layer["name"], layer["kind"]
        p = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(name + ".")}
        if kind in ("binconv", "bamconv", "macconv"):
            x = _conv(x, p, kind, tuple(layer.get("kernel", (3, 3))),
                      layer.get("padding", "valid"),
                      layer.get("output", "popcount" if kind == "binconv" else "sum"),
                      layer.get("pad_bit", 0), inputs.get(f"{name}.gates"),
                      layer.get("gating", "none"))
        elif kind == "maxpool":
            k = tuple(layer.get("kernel", (2, 2)))
            x = F.max_pool2d(x, k, stride=k, ceil_mode=False)
        elif kind == "requant":  # x * M / 2**shift rounded half up, saturated (exact in float64)
            m = torch.as_tensor(np.asarray(p["multipliers"]), dtype=torch.float64)
            v = x * m.view(1, -1, 1, 1) / 2.0 ** layer["shift"]
            bits = layer.get("out_bits", 8)
            lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if layer.get("out_signed")
                      else (0, (1 << bits) - 1))
            x = torch.clamp(torch.floor(v + 0.5) if layer["shift"] else v, lo, hi)
        elif kind == "globalpool":
            mode = layer["mode"]
            if mode == "max":
                x = torch.amax(x, dim=(2, 3), keepdim=True)
            else:
                total = torch.sum(x, dim=(2, 3), keepdim=True)
                x = total if mode == "sum" else torch.div(
                    total, x.shape[2] * x.shape[3], rounding_mode="floor")
        elif kind == "dense":
            flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NHWC row-major flatten
            w = torch.as_tensor(np.asarray(p["weights"]), dtype=torch.float64)
            if layer["arith"] == "xnor":
                y = F.linear(2 * flat - 1, 2 * w - 1)
                out = layer.get("output", "popcount")
            else:
                y = F.linear(flat, w) + torch.as_tensor(p["bias"], dtype=torch.float64)
                out = layer.get("output", "sum")
            y = y.view(y.shape[0], -1, 1, 1)
            x = _threshold(y, p) if out == "threshold" else y
        elif kind == "expdot":
            codes = expdot(name, x.reshape(x.shape[0], -1).numpy().astype(np.int64), p)
            x = torch.as_tensor(codes, dtype=torch.float64).reshape(x.shape[0], -1, 1, 1)
        elif kind == "gru":
            codes = gru(name, x.reshape(x.shape[0], -1).numpy(), p)
            x = torch.as_tensor(codes, dtype=torch.float64).reshape(x.shape[0], -1, 1, 1)
        else:
            raise AssertionError(kind)
    return x.permute(0, 2, 3, 1).numpy()


def _case(name, seed=0, frames=3):
    spec = UNIT.regression[name]
    cfg = config_from_dict(UNIT.config, spec)
    rng = np.random.default_rng(seed)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    inputs = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, rng, frames))
    return spec, cfg, params, inputs


@pytest.mark.parametrize("name", sorted(UNIT.regression))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_golden_equals_pytorch(name, seed):
    from qhw.golden.network import trace
    spec, cfg, params, inputs = _case(name, seed)
    got = UNIT.golden(cfg, params, inputs)
    maps = dict(zip([layer.name for layer in cfg.resolved], trace(cfg, params, inputs)))

    def gru(layer_name, x, p):
        layer = cfg.layer(layer_name)
        fmt = layer.config.fmt
        codes = maps[layer_name].reshape(x.shape[0], -1)
        real = torch_gru(fmt, layer.in_steps, x, p, layer.config.hidden_size).numpy()
        err = np.abs(codes * 2.0 ** -fmt("state")[1] - real)
        # 8-bit formats (Q?.frac state): within a few state LSBs of the float GRU on average
        assert err.mean() < 8 * 2.0 ** -fmt("state")[1] and err.max() < 0.25, (err.mean(),
                                                                               err.max())
        return codes

    checked = []

    def expdot(layer_name, x, p):
        layer = cfg.layer(layer_name)
        codes = maps[layer_name].reshape(x.shape[0], -1)
        checked.append(check_expdot_fp16(x, np.asarray(p["weights"]), codes,
                                         layer.config.weight_exp_bits, layer.config.weight_bias))
        return codes

    want = torch_forward(spec, params, inputs, gru, expdot)
    assert got.shape == want.shape == cfg.output_shape(3)
    assert np.array_equal(got.astype(np.float64), want)


def test_expdot_layers_against_exact_sums():
    """seq_expdot on data in the normal range (inputs N(0, 4) in fp16, weights 2^0 .. 2^-4), so
    that most results are checked against exact sums rounded by NumPy's float16."""
    spec, cfg, params, inputs = _case("seq_expdot", 0, frames=8)
    rng = np.random.default_rng(5)
    bias = cfg.layer("e1").config.weight_bias
    for name in ("e1", "e2"):
        w = params[f"{name}.weights"]
        f = rng.integers(bias - 4, bias + 1, size=w.shape)
        params[f"{name}.weights"] = (rng.integers(0, 2, size=w.shape) << 5) | f
    x = rng.normal(0, 4, size=inputs["activations"].shape).astype(np.float16)
    inputs = {"activations": x.view(np.uint16).astype(np.int64)}
    from qhw.golden.network import trace
    maps = trace(cfg, params, inputs)
    first = check_expdot_fp16(inputs["activations"].reshape(32, 8), params["e1.weights"],
                              maps[0].reshape(32, 6), 5, bias)
    second = check_expdot_fp16(maps[0].reshape(32, 6), params["e2.weights"],
                               maps[1].reshape(32, 3), 5, bias)
    assert first > 150 and second > 70, (first, second)  # of 192 and 96 results


def test_intermediate_maps_are_not_constant():
    """Thresholds at the median keep binary maps balanced, so the checks above see variety."""
    from qhw.golden.network import trace
    for name in UNIT.regression:
        _, cfg, params, inputs = _case(name, 0, frames=4)
        for layer, out in zip(cfg.resolved, trace(cfg, params, inputs)):
            if layer.kind in ("binconv", "bamconv", "macconv") and layer.out_format.bits == 1:
                assert 0.2 < out.mean() < 0.8, (name, layer.name, out.mean())


def test_examples_are_the_regression_networks():
    """Every example network is a regression network, except the DNSMOS design points
    (full-size flagship networks, tested in tests/test_dnsmos_network.py)."""
    files = sorted(f for f in EXAMPLES.glob("*.toml") if not f.stem.startswith("dnsmos_"))
    assert {f.stem for f in files} == set(UNIT.regression)
    for f in files:
        assert tomllib.loads(f.read_text()) == UNIT.regression[f.stem], f.name


def test_shapes_flow_from_the_input():
    cfg = config_from_dict(UNIT.config, UNIT.regression["odd_floor"])
    shapes = [(layer.name, layer.in_shape, layer.out_shape) for layer in cfg.resolved]
    assert shapes == [("conv1", (7, 9, 2), (7, 9, 4)),
                      ("pool1", (7, 9, 4), (3, 4, 4)),      # floor: 7 -> 3, 9 -> 4
                      ("conv2", (3, 4, 4), (2, 3, 4)),
                      ("pool2", (2, 3, 4), (2, 1, 4)),
                      ("gsum", (2, 1, 4), (1, 1, 4))]
    # The integer sum of conv2 (4-bit weights, K = 16: |s| <= 16*8 + bias) and its pooled sum.
    assert cfg.layer("pool2").in_format.signed and cfg.layer("gsum").out_format.bits > \
        cfg.layer("gsum").in_format.bits


def test_dense_weights_are_the_flattened_conv_weights():
    """A dense layer is the convolution over the whole map: its (outputs, H*W*C) weights are
    the conv weights in (row, column, channel) order."""
    from qhw.golden.network import LAYER_KINDS
    cfg = config_from_dict(UNIT.config, UNIT.regression["bnn_pool"])
    fc = cfg.layer("fc")
    assert fc.config.kernel == (2, 2) and fc.config.padding == "valid"
    rng = np.random.default_rng(0)
    conv = rng.integers(0, 2, size=(4, 8, 2, 2))
    dense = LAYER_KINDS["dense"].from_unit_params(fc.config, {"weights": conv})["weights"]
    assert dense.shape == (4, 32)
    assert dense[1, (1 * 2 + 0) * 8 + 5] == conv[1, 5, 1, 0]
    back = LAYER_KINDS["dense"].to_unit_params(fc.config, {"weights": dense})["weights"]
    assert np.array_equal(back, conv)


def _spec(**changes):
    spec = {"name": "t", "input": {"height": 6, "width": 6, "channels": 2, "bits": 1},
            "layers": [{"name": "c1", "kind": "binconv", "c_out": 4, "kernel": [3, 3],
                        "output": "threshold", "pe": 2, "simd": 6},
                       {"name": "p1", "kind": "maxpool", "kernel": [2, 2]}]}
    spec.update(changes)
    return spec


BAD = {
    "unknown kind": (dict(layers=[{"name": "c1", "kind": "lstm"}]), ["c1", "kind", "binconv"]),
    "missing field": (dict(layers=[{"name": "c1", "kind": "binconv", "kernel": [3, 3]}]),
                      ["c1", "c_out"]),
    "unknown field": (dict(layers=[{"name": "c1", "kind": "binconv", "c_out": 2, "c_in": 2}]),
                      ["c1", "c_in"]),
    "format does not chain": (dict(layers=[
        {"name": "c1", "kind": "binconv", "c_out": 4, "output": "popcount"},
        {"name": "c2", "kind": "binconv", "c_out": 4}]),
        ["c2", "1-bit map", "c1", "signed"]),
    "kernel over a valid input": (dict(layers=[
        {"name": "c1", "kind": "binconv", "c_out": 4, "kernel": [3, 3], "output": "threshold"},
        {"name": "p1", "kind": "maxpool", "kernel": [2, 2]},
        {"name": "c2", "kind": "binconv", "c_out": 4, "kernel": [3, 3]}]),
        ["c2", "3x3", "2x2x4", "p1", "valid"]),
    "pool larger than input": (dict(layers=[{"name": "p1", "kind": "maxpool",
                                             "kernel": [7, 2]}]), ["p1", "7x2", "6x6x2"]),
    "folding does not divide": (dict(layers=[{"name": "c1", "kind": "binconv", "c_out": 4,
                                              "pe": 3}]), ["c1", "pe", "divide"]),
    "duplicate name": (dict(layers=[{"name": "c1", "kind": "maxpool"},
                                    {"name": "c1", "kind": "maxpool"}]), ["c1", "twice"]),
    "bad name": (dict(layers=[{"name": "Conv-1", "kind": "maxpool"}]), ["name", "identifier"]),
    "dense without arith": (dict(layers=[{"name": "fc", "kind": "dense", "outputs": 2}]),
                            ["fc", "arith"]),
    "macconv on bits": (dict(layers=[{"name": "m", "kind": "macconv", "c_out": 2}]),
                        ["m", "2..16-bit integer", "1-bit map"]),
    "requant on bits": (dict(layers=[{"name": "q", "kind": "requant", "shift": 4}]),
                        ["q", "requant", "signed 2..48-bit sums", "1-bit map"]),
    "requant in_bits": (dict(layers=[{"name": "c", "kind": "macconv", "c_out": 2,
                                      "kernel": [1, 1]},
                                     {"name": "q", "kind": "requant", "in_bits": 9}],
                             input={"height": 2, "width": 2, "channels": 1, "bits": 8,
                                    "signed": True}),
                        ["q", "in_bits"]),
    "input key": (dict(input={"height": 4, "width": 4}), ["input", "channels"]),
    "signed bit": (dict(input={"height": 4, "width": 4, "channels": 1, "signed": True}),
                   ["input.signed"]),
    "unreachable target": (dict(target={"clock_mhz": 1, "fps": 100000}, folding="finn",
                                layers=[{"name": "c1", "kind": "binconv", "c_out": 4,
                                         "kernel": [3, 3]}]),
                           ["target", "c1", "cycles"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_descriptions_name_the_layer_and_field(case):
    changes, words = BAD[case]
    with pytest.raises(QhwInputError) as e:
        config_from_dict(UNIT.config, _spec(**changes))
    message = str(e.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_weights_missing_for_a_layer():
    cfg = config_from_dict(UNIT.config, _spec())
    params = UNIT.random_params(cfg, np.random.default_rng(0))
    del params["c1.thresholds"]
    with pytest.raises(QhwInputError, match=r"layer 'c1'.*'c1\.thresholds'"):
        UNIT.check_params(cfg, params)
    with pytest.raises(QhwInputError, match="unknown array 'c9.weights'"):
        UNIT.check_params(cfg, {**UNIT.random_params(cfg, np.random.default_rng(0)),
                                "c9.weights": np.zeros(2)})


def test_gated_inputs_are_checked():
    spec, cfg, params, inputs = _case("gated")
    with pytest.raises(QhwInputError, match="conv1.gates"):
        UNIT.check_inputs(cfg, {"activations": inputs["activations"]})
    bad = dict(inputs)
    bad["conv2.gates"] = bad["conv2.gates"] + 7  # counts above C_out = 6
    with pytest.raises(QhwInputError, match="conv2.gates"):
        UNIT.check_inputs(cfg, bad)


def test_folding_solved_for_a_target():
    cfg = config_from_dict(UNIT.config, UNIT.regression["fold_solved"])
    target = 2000  # 1 MHz / 500 fps
    for layer in cfg.resolved:
        if layer.kind == "bamconv":
            cycles = registry.get(layer.unit).cost_model(layer.config, 3).expected - \
                registry.get(layer.unit).cost_model(layer.config, 2).expected
            assert cycles <= target
    explicit = config_from_dict(UNIT.config, UNIT.regression["fold_explicit"])
    assert [dataclasses.replace(a.config, pe=1, simd=1) for a in cfg.resolved
            if a.kind == "bamconv"] == [dataclasses.replace(b.config, pe=1, simd=1)
                                        for b in explicit.resolved if b.kind == "bamconv"]
    assert cfg.folding_solution.solver == "finn_set_folding"
