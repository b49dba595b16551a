"""The ``fpdot`` layer kind: a conventional float dense layer in the network flow, the
counterpart of an ``expdot`` layer.

The golden model is checked against NumPy float16 / float32 arithmetic doing the same sequence
of operations (every product and every addition rounded by NumPy, IEEE round to nearest even)
on every vector where no subnormal or infinite value occurs (the unit flushes subnormals); the
RTL of a small network with an expdot layer feeding an fpdot layer is bit-exact with and
without stalls, its cycles equal to the composed cost model; bad descriptions and weight files
end in one line naming the layer and the field.
"""

import copy

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.golden import fpdot as gf
from qhw.golden.network import trace

UNIT = registry.get("network")
NATIVE = {"fp16": (np.float16, np.uint16), "fp32": (np.float32, np.uint32)}


def _spec(fmt, steps=1):
    return {"name": "fpdot_dense",
            "input": {"height": 1, "width": 1, "channels": 12, "format": fmt,
                      **({"steps": steps} if steps > 1 else {})},
            "layers": [
                # fold 3 of a 2-level tree, then an odd tree (5 lanes: 3 levels, one fold)
                {"name": "f1", "kind": "fpdot", "outputs": 5, "simd": 4},
                {"name": "f2", "kind": "fpdot", "outputs": 3, "simd": 5},
            ]}


def numpy_fpdot(x, w, simd, native):
    """Dot products of (V, N) activations with (M, N) weights in NumPy's ``native`` float type,
    in fpdot's documented order: products; per fold a pairwise tree (v0+v1, v2+v3, ..., the odd
    last passed up); acc = tree(fold 0), then acc = acc + tree(fold f). Returns the (V, M)
    results and a (V, M) mask of the results where some operand or intermediate value is
    subnormal, infinite or NaN (where the unit's flushing may differ from IEEE)."""
    x = x.astype(native)
    w = w.astype(native)
    tiny = np.finfo(native).tiny

    def bad(v):
        v = np.asarray(v)
        return ~np.isfinite(v) | ((v != 0) & (np.abs(v) < tiny))

    with np.errstate(over="ignore", invalid="ignore"):
        p = (x[:, None, :] * w[None, :, :]).astype(native)          # (V, M, N), each rounded
        flag = bad(x).any(axis=1)[:, None] | bad(w).any(axis=1)[None, :] | bad(p).any(axis=2)
        folds = p.reshape(p.shape[0], p.shape[1], -1, simd)
        level = [folds[..., s] for s in range(simd)]
        while len(level) > 1:
            nxt = [(level[i] + level[i + 1]).astype(native) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
            flag |= np.any([bad(v).any(axis=2) for v in level], axis=0)
        t = level[0]
        acc = t[..., 0]
        for f in range(1, t.shape[-1]):
            acc = (acc + t[..., f]).astype(native)
            flag |= bad(acc)
    return acc, flag


def _case(fmt, seed, frames=64):
    cfg = config_from_dict(UNIT.config, _spec(fmt))
    rng = np.random.default_rng(seed)
    native, uint = NATIVE[fmt]
    params = {f"{layer.name}.weights": rng.normal(0, 1, size=(layer.spec["outputs"],
                                                              layer.in_shape[2]))
              .astype(native).view(uint).astype(np.int64) for layer in cfg.resolved}
    params = UNIT.check_params(cfg, params)
    x = rng.normal(0, 2, size=cfg.input_shape(frames)).astype(native)
    inputs = UNIT.check_inputs(cfg, {"activations": x.view(uint).astype(np.int64)})
    return cfg, params, inputs


@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_fpdot_layers_against_numpy_float(fmt):
    """Each layer's output is NumPy's float arithmetic in the same order, bit for bit, on every
    result free of subnormals and infinities (nearly all of them on this data)."""
    cfg, params, inputs = _case(fmt, 0)
    native, uint = NATIVE[fmt]
    maps = trace(cfg, params, inputs)
    layer_in = inputs["activations"].reshape(64, -1)
    for layer, out in zip(cfg.resolved, maps):
        assert layer.unit == "fpdot" and layer.out_format.kind == fmt
        x = layer_in.astype(uint).view(native)
        w = params[f"{layer.name}.weights"].astype(uint).view(native)
        want, flag = numpy_fpdot(x, w, layer.config.simd, native)
        got = out.reshape(64, -1)
        assert got.shape == want.shape
        ok = ~flag
        assert ok.mean() > 0.95, (layer.name, ok.mean())
        np.testing.assert_array_equal(got[ok], want.view(uint)[ok].astype(got.dtype))
        layer_in = got.astype(np.int64)
    # the order matters: a different pairing (a plain left-to-right sum) disagrees somewhere,
    # so the check above pins the tree and fold order
    x = inputs["activations"].reshape(64, -1).astype(uint).view(native)
    w = params["f1.weights"].astype(uint).view(native)
    serial = (x[:, None, :] * w[None]).astype(native)
    acc = serial[..., 0]
    for k in range(1, serial.shape[-1]):
        acc = (acc + serial[..., k]).astype(native)
    assert np.any(acc.view(uint) != maps[0].reshape(64, -1).astype(uint))


def test_fpdot_layer_outputs_are_the_units_per_output():
    """The layer's output m is the fpdot unit on weight row m (bf16, a format NumPy lacks)."""
    spec = _spec("bf16")
    cfg = config_from_dict(UNIT.config, spec)
    rng = np.random.default_rng(3)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    inputs = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, rng, 5))
    f1 = cfg.layer("f1").config
    assert (f1.lanes, f1.simd, f1.act_format) == (12, 4, "bf16")
    got = trace(cfg, params, inputs)[0].reshape(5, 5)
    x = inputs["activations"].reshape(5, 12)
    for m in range(5):
        np.testing.assert_array_equal(got[:, m], gf.fpdot_ref(f1, x, params["f1.weights"][m]))


SEOFP_INTO_FLOAT = {
    "name": "seofp_into_fpdot",
    "input": {"height": 1, "width": 1, "channels": 8, "format": "fp16", "steps": 2},
    "layers": [
        {"name": "e1", "kind": "expdot", "outputs": 4, "simd": 4, "weight_exp_bits": 5,
         "weight_bias": 15, "pipeline": "deep"},
        {"name": "f2", "kind": "fpdot", "outputs": 3, "simd": 2},
    ],
}


def test_fpdot_layer_rtl_bit_exact_cycles_and_stalls():
    """An expdot layer feeding an fpdot layer (fp16, 2-frame sequences): the RTL equals the
    golden model, its cycles and latency the composed model, also under stalls."""
    cfg = config_from_dict(UNIT.config, SEOFP_INTO_FLOAT)
    rng = np.random.default_rng(1)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    frames = 4
    inputs = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, rng, frames))
    run, mismatch = flow.check_rtl(UNIT, cfg, params, inputs)
    assert mismatch is None, mismatch
    model = UNIT.cost_model(cfg, frames, inputs)
    assert run.cycles == model.expected, (run.cycles, model.expected)
    assert run.latency == model.latency
    # f2's latency comes from the fpdot unit's cost model: 3 + ceil(log2 simd) stages
    from qhw.hdl import fpdot as hf
    from qhw.hdl.network import network_timing
    timing = network_timing(cfg, frames, inputs)
    take, out = timing.layers[1]
    f2 = cfg.layer("f2").config
    assert [o - t for t, o in zip(take, out)] == [f2.fold + hf.stages(f2)] * len(take)
    want = UNIT.golden(cfg, params, inputs)
    stalled = flow.rtlsim(UNIT, cfg, params, inputs, stall_in=0.4, stall_out=0.4, seed=5)
    message = flow.first_mismatch(UNIT, stalled, want)
    assert message is None, message


def test_fpdot_layer_counts_and_parts():
    cfg = config_from_dict(UNIT.config, _spec("fp16"))
    ops = {op["what"]: op for op in UNIT.operations(cfg, 2)["ops"]}
    assert ops["f1: fp16 multiply"]["count"] == 2 * 5 * 12
    assert ops["f1: fp16 add"]["count"] == 2 * 5 * 11
    assert ops["f2: fp16 multiply"]["count"] == 2 * 3 * 5
    rng = np.random.default_rng(0)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    parts = UNIT.parts(cfg, params)
    assert [(p["unit"], p["copies"], p["cycles_per_frame"]) for p in parts] == [
        ("fpdot", 5, 3), ("fpdot", 3, 1)]


def _bad(mutate):
    spec = copy.deepcopy(_spec("fp16"))
    mutate(spec)
    with pytest.raises(QhwInputError) as e:
        config_from_dict(UNIT.config, spec)
    message = str(e.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("mutate, parts", [
    (lambda s: s["input"].update(format="int", bits=8, signed=True),
     ["layer 'f1' (fpdot)", "needs float bit patterns", "signed 8-bit"]),
    (lambda s: s["layers"][0].pop("outputs"), ["layer 'f1' (fpdot)", "missing field 'outputs'"]),
    (lambda s: s["layers"][0].update(outputs=0), ["layer 'f1' (fpdot): outputs", "0"]),
    (lambda s: s["layers"][0].update(simd=5), ["layer 'f1'", "simd", "divide"]),
    (lambda s: s["layers"][0].update(lanes=12), ["layer 'f1' (fpdot)", "unknown field 'lanes'"]),
    (lambda s: s["layers"][0].update(act_format="fp32"),
     ["layer 'f1' (fpdot)", "unknown field 'act_format'"]),
    (lambda s: s["layers"][0].update(weight_exp_bits=5),
     ["layer 'f1' (fpdot)", "unknown field 'weight_exp_bits'"]),
    (lambda s: s["input"].update(height=2),
     ["layer 'f1' (fpdot)", "one vector per frame", "2x1x12"]),
    (lambda s: s.update(weights="port"), ["layer 'f1' (fpdot)", "weights = 'port'"]),
])
def test_fpdot_layer_bad_description(mutate, parts):
    message = _bad(mutate)
    for part in parts:
        assert part in message, message


def test_fpdot_layer_bad_weights():
    cfg = config_from_dict(UNIT.config, _spec("fp16"))
    good = UNIT.random_params(cfg, np.random.default_rng(0))
    for change, part in [
            ({"f1.weights": good["f1.weights"][:, :6]},
             "layer 'f1': weights: shape must be (5, 12)"),
            ({"f2.weights": np.full((3, 5), 1 << 16)}, "layer 'f2'"),
            ({"f1.bias": np.zeros(5)}, "unknown array 'f1.bias'")]:
        with pytest.raises(QhwInputError) as e:
            UNIT.check_params(cfg, {**good, **change})
        assert part in str(e.value) and "\n" not in str(e.value), str(e.value)
    missing = {k: v for k, v in good.items() if k != "f2.weights"}
    with pytest.raises(QhwInputError, match=r"layer 'f2': missing array 'f2.weights' "
                                            r"\(shape \(3, 5\), fp16 bit patterns"):
        UNIT.check_params(cfg, missing)


def test_fpdot_layer_passes_the_units_pipeline_option():
    """The unit's own fields pass through: an fpdot layer with the unit's deep pipeline is
    bit-exact, its cycles and latency those of the composed model (from the unit's model)."""
    spec = {"name": "fpdot_deep", "input": {"height": 1, "width": 1, "channels": 8,
                                            "format": "fp16"},
            "layers": [{"name": "f1", "kind": "fpdot", "outputs": 3, "simd": 2,
                        "pipeline": "deep"}]}
    cfg = config_from_dict(UNIT.config, spec)
    assert cfg.layer("f1").config.pipeline == "deep"
    rng = np.random.default_rng(0)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    inputs = UNIT.check_inputs(cfg, UNIT.random_inputs(cfg, rng, 4))
    run, mismatch = flow.check_rtl(UNIT, cfg, params, inputs)
    assert mismatch is None, mismatch
    model = UNIT.cost_model(cfg, 4, inputs)
    assert (run.cycles, run.latency) == (model.expected, model.latency)
