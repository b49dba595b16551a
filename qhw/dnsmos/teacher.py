"""The float DNSMOS P.808 model: read from the ONNX file of the ``speechmos`` package and rebuilt
as a PyTorch module from its initializers.

DNSMOS (Reddy, Gopal and Cutler, "DNSMOS: a non-intrusive perceptual objective speech quality
metric to evaluate noise suppressors", ICASSP 2021, arXiv 2010.15258) ships its P.808 model as
``model_v8.onnx`` (converted from Keras by keras2onnx, opset 12). Its graph, read from the file:

====================  ====================  =========================================
layer                 output C x T x F      operation
====================  ====================  =========================================
conv1                 32 x 900 x 120        3x3 conv, pad 1, + bias, ReLU
pool1                 32 x 450 x 60         2x2 max pool, stride 2, floor
conv2                 32 x 450 x 60         3x3 conv, pad 1, + bias, ReLU
pool2                 32 x 225 x 30
conv3, conv4          32 x 225 x 30         3x3 conv, pad 1, + bias, ReLU (each)
pool3                 32 x 112 x 15
conv5                 64 x 112 x 15         3x3 conv, pad 1, + bias, ReLU
global max            64                    ReduceMax over T and F
dense1, dense2        64                    MatMul + bias, ReLU (each)
dense3                1                     MatMul + bias: the MOS
====================  ====================  =========================================

The input is ``input_1`` [N, 900, 120] (frames x mel bands, :mod:`qhw.dnsmos.features`), the
output ``Identity:0`` [N, 1], the MOS of the window (a clip's score is the mean over its windows).
The rebuild is checked against onnxruntime on real features (tests/test_dnsmos_teacher.py).
"""

from __future__ import annotations

import functools
import os

import numpy as np

__all__ = ["ONNX_FILE", "CONV_LAYERS", "DENSE_LAYERS", "onnx_path", "teacher_weights",
           "TeacherP808", "load_teacher", "onnx_session", "score_onnx", "score_torch"]

ONNX_FILE = "model_v8.onnx"

#: The convolutions in order: (qhw layer name, ONNX initializer stem, pool after it?).
CONV_LAYERS = (("conv1", "conv2d_5", True), ("conv2", "conv2d_6", True),
               ("conv3", "conv2d_7", False), ("conv4", "conv2d_8", True),
               ("conv5", "conv2d_9", False))
#: The dense layers in order: (qhw layer name, ONNX initializer stem).
DENSE_LAYERS = (("dense1", "dense_3"), ("dense2", "dense_4"), ("dense3", "dense_5"))


def onnx_path():
    """The path of P.808's ONNX file inside the installed ``speechmos`` package."""
    import importlib.util
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the speechmos package (which ships DNSMOS's ONNX files) is not "
                           "installed: pip install speechmos==0.0.1.1")
    return os.path.join(list(spec.submodule_search_locations)[0], "dnsmos_models", ONNX_FILE)


@functools.lru_cache(maxsize=1)
def teacher_weights():
    """P.808's parameters by qhw layer name, in PyTorch layouts (float32 NumPy arrays):
    ``convN.weight`` (C_out, C_in, 3, 3), ``convN.bias``, ``denseN.weight`` (out, in),
    ``denseN.bias``."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(onnx_path())
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = {}
    for name, stem, _ in CONV_LAYERS:
        out[f"{name}.weight"] = init[f"{stem}/kernel:0"].astype(np.float32)
        out[f"{name}.bias"] = init[f"{stem}/bias:0"].astype(np.float32)
    for name, stem in DENSE_LAYERS:
        prefix = f"mos_estimator_small_1/{stem}"
        # ONNX MatMul computes x @ W with W (in, out); torch.nn.Linear holds (out, in).
        out[f"{name}.weight"] = init[f"{prefix}/MatMul/ReadVariableOp/resource:0"].T.astype(
            np.float32).copy()
        out[f"{name}.bias"] = init[f"{prefix}/BiasAdd/ReadVariableOp/resource:0"].astype(
            np.float32)
    return out


def _torch_module():
    import torch
    from torch import nn

    class TeacherP808(nn.Module):
        """DNSMOS P.808 as a PyTorch module: [N, 900, 120] features -> [N, 1] MOS.

        Members
        -------
        conv1 ... conv5 : torch.nn.Conv2d
            3x3, padding 1; the feature map is N x C x T x F (time rows, mel columns).
        dense1 ... dense3 : torch.nn.Linear
        """

        def __init__(self):
            super().__init__()
            w = teacher_weights()
            for name, _, _ in CONV_LAYERS:
                c_out, c_in = w[f"{name}.weight"].shape[:2]
                setattr(self, name, nn.Conv2d(c_in, c_out, 3, padding=1))
            for name, _ in DENSE_LAYERS:
                n_out, n_in = w[f"{name}.weight"].shape
                setattr(self, name, nn.Linear(n_in, n_out))
            self.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})

        def embedding(self, x):
            """The 64 globally max-pooled conv5 channels of features x [N, T, F]."""
            h = x.unsqueeze(1)
            for name, _, pool in CONV_LAYERS:
                h = torch.relu(getattr(self, name)(h))
                if pool:
                    h = torch.nn.functional.max_pool2d(h, 2)
            return h.amax(dim=(2, 3))

        def forward(self, x):
            h = self.embedding(x)
            h = torch.relu(self.dense1(h))
            h = torch.relu(self.dense2(h))
            return self.dense3(h)

    return TeacherP808


def TeacherP808():
    """A new :class:`TeacherP808` module holding P.808's weights (in eval mode)."""
    return _torch_module()().eval()


load_teacher = TeacherP808


@functools.lru_cache(maxsize=1)
def onnx_session():
    """An onnxruntime session of P.808's ONNX file (one thread: results do not depend on the
    machine's core count)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_path(), opts, providers=["CPUExecutionProvider"])


def score_onnx(features):
    """P.808's MOS of each window with onnxruntime: features [N, 900, 120] -> [N] float32."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    return onnx_session().run(None, {"input_1": x})[0][:, 0]


def score_torch(features, module=None, batch=8):
    """P.808's MOS of each window with the PyTorch rebuild: features [N, 900, 120] -> [N]."""
    import torch
    module = TeacherP808() if module is None else module
    x = np.asarray(features, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(module(torch.from_numpy(x[i:i + batch])).numpy()[:, 0])
    return np.concatenate(out)
