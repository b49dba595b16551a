"""qhw.dnsmos.teacher: the PyTorch rebuild of DNSMOS P.808 against onnxruntime on real features
(MOS and the 64-channel embedding), its layer shapes against the ONNX initializers, and the
shipped ONNX graph against the exact op sequence the rebuild assumes (so a changed file in the
speechmos package is caught)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from qhw.dnsmos import features, teacher  # noqa: E402

#: The graph of model_v8.onnx, node by node: (op, the attributes the rebuild relies on).
CONV = ("Conv", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1],
                 "dilations": [1, 1], "group": 1})
POOL = ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]})
RELU = ("Relu", {})
EXPECTED_GRAPH = [
    ("Unsqueeze", {"axes": [3]}), ("Transpose", {"perm": [0, 3, 1, 2]}),
    CONV, RELU, POOL,                   # conv1, pool1
    CONV, RELU, POOL,                   # conv2, pool2
    CONV, RELU,                         # conv3
    CONV, RELU, POOL,                   # conv4, pool3
    CONV, RELU,                         # conv5
    ("Transpose", {"perm": [0, 2, 3, 1]}), ("ReduceMax", {"axes": [1, 2], "keepdims": 0}),
    ("MatMul", {}), ("Add", {}), RELU,  # dense1
    ("MatMul", {}), ("Add", {}), RELU,  # dense2
    ("MatMul", {}), ("Add", {}),        # dense3
]
EMBEDDING = "mos_estimator_small_1/global_max_pooling2d_1/Max:0"


def _clip(seed, seconds):
    """A deterministic speech-like clip: voiced harmonics on a gliding f0, a syllable envelope,
    noise of a seed-dependent level."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 110 + 50 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = np.clip(np.sin(2 * np.pi * (2.5 + seed % 3) * t), 0, None) ** 2
    noise = rng.normal(0, 0.002 * 4 ** seed, len(t))
    return np.clip(0.25 * voiced * envelope + noise, -1, 1)


@pytest.fixture(scope="module")
def windows():
    """Five windows of varied quality: clean-ish to noisy speech-like clips, plain noise."""
    feats = [features.clip_features(_clip(s, 10.5)) for s in range(3)]   # one window each
    feats.append(features.clip_features(_clip(3, 11.2)))                 # two windows
    noise = np.random.default_rng(9).normal(0, 0.05, 16000 * 5)          # repeated to 10 s
    feats.append(features.clip_features(noise))
    x = np.concatenate(feats)
    assert x.shape == (6, 900, 120) and x.dtype == np.float32
    return x


@pytest.fixture(scope="module")
def module():
    return teacher.TeacherP808()


def test_torch_rebuild_equals_onnxruntime(windows, module):
    ref = teacher.score_onnx(windows)
    got = teacher.score_torch(windows, module, batch=3)
    assert ref.shape == got.shape == (len(windows),)
    assert np.abs(got - ref).max() < 1e-5, np.abs(got - ref).max()
    # the windows are not all alike: the check is not of one constant output
    assert np.ptp(ref) > 0.3, ref
    assert np.all((ref > 1) & (ref < 5)), ref


def test_embedding_equals_onnx_global_max(windows, module):
    """The 64 globally max-pooled conv5 channels agree too (an intermediate of the graph made an
    extra output), so the dense layers do not mask an error in the convolutions."""
    import onnxruntime as ort
    model = onnx.load(teacher.onnx_path())
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        EMBEDDING, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    x = windows[:3]
    ref = sess.run([EMBEDDING], {"input_1": x})[0]
    with torch.no_grad():
        got = module.embedding(torch.from_numpy(x)).numpy()
    assert ref.shape == got.shape == (3, 64)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_layer_shapes_match_onnx_initializers(module):
    from onnx import numpy_helper
    init = {t.name: numpy_helper.to_array(t)
            for t in onnx.load(teacher.onnx_path()).graph.initializer}
    assert len(init) == 2 * (len(teacher.CONV_LAYERS) + len(teacher.DENSE_LAYERS))
    expected_conv = {"conv1": (32, 1), "conv2": (32, 32), "conv3": (32, 32),
                     "conv4": (32, 32), "conv5": (64, 32)}
    for name, stem, _ in teacher.CONV_LAYERS:
        layer = getattr(module, name)
        kernel, bias = init[f"{stem}/kernel:0"], init[f"{stem}/bias:0"]
        assert tuple(layer.weight.shape) == kernel.shape == expected_conv[name] + (3, 3)
        assert tuple(layer.bias.shape) == bias.shape == (expected_conv[name][0],)
        assert layer.padding == (1, 1) and layer.stride == (1, 1)
        np.testing.assert_array_equal(layer.weight.detach().numpy(), kernel)
        np.testing.assert_array_equal(layer.bias.detach().numpy(), bias)
    expected_dense = {"dense1": (64, 64), "dense2": (64, 64), "dense3": (1, 64)}
    for name, stem in teacher.DENSE_LAYERS:
        layer = getattr(module, name)
        w = init[f"mos_estimator_small_1/{stem}/MatMul/ReadVariableOp/resource:0"]
        b = init[f"mos_estimator_small_1/{stem}/BiasAdd/ReadVariableOp/resource:0"]
        assert tuple(layer.weight.shape) == expected_dense[name] == w.T.shape
        assert tuple(layer.bias.shape) == b.shape == (expected_dense[name][0],)
        np.testing.assert_array_equal(layer.weight.detach().numpy(), w.T)
        np.testing.assert_array_equal(layer.bias.detach().numpy(), b)
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params == sum(v.size for v in init.values()) == 54_945


def test_onnx_graph_is_the_expected_op_sequence():
    model = onnx.load(teacher.onnx_path())
    g = model.graph
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [12]
    got = []
    for node in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        got.append((node.op_type, attrs))
    assert [op for op, _ in got] == [op for op, _ in EXPECTED_GRAPH]
    for i, ((op, attrs), (_, want)) in enumerate(zip(got, EXPECTED_GRAPH)):
        for k, v in want.items():
            assert attrs.get(k, [1, 1] if k == "dilations" else None) == v, (i, op, k, attrs)
        if op == "MaxPool":          # floor mode, no padding (torch max_pool2d's default)
            assert attrs.get("ceil_mode", 0) == 0 and not any(attrs.get("pads", [0]))
            assert attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    # the convolutions and matmuls read the initializers in CONV_LAYERS / DENSE_LAYERS order
    convs = [n.input[1] for n in g.node if n.op_type == "Conv"]
    assert convs == [f"{stem}/kernel:0" for _, stem, _ in teacher.CONV_LAYERS]
    pools_after = [g.node[i + 2].op_type == "MaxPool" for i, n in enumerate(g.node)
                   if n.op_type == "Conv"]
    assert pools_after == [pool for _, _, pool in teacher.CONV_LAYERS]
    mats = [n.input[1] for n in g.node if n.op_type == "MatMul"]
    assert mats == [f"mos_estimator_small_1/{stem}/MatMul/ReadVariableOp/resource:0"
                    for _, stem in teacher.DENSE_LAYERS]
    # the interface: [N, 900, 120] features in, [N, 1] MOS out
    (inp,) = g.input
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input_1" and dims[1:] == [features.N_FRAMES, features.N_MELS]
    assert [o.name for o in g.output] == ["Identity:0"]
