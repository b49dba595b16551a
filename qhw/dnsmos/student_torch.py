"""The PyTorch part of the binary-activation student of DNSMOS P.808 (needs the ``train``
extra; :mod:`qhw.dnsmos.student` is the part that needs no PyTorch, and reaches these names too).

Every thresholded layer is a :class:`qhw.golden.bamconv_torch.BamConv2d` (Heaviside with the
SuperSpike surrogate, beta = 5 as in the paper's code), whose eval-mode output equals the
exported integer layer bit for bit. In training the max pools are taken on the pre-activations,
before the Heaviside: ``max(H(p)) == H(max(p))`` for a monotone step, so the forward is the
same, and the gradient reaches the maximum's position through the surrogate.

Initialization from the teacher (:func:`init_from_teacher`): the teacher's weights, each layer's
input scaled by the previous layer's typical "on" activation, and thresholds placed so that a
unit fires where the teacher's activation is above its typical positive value.

:func:`integer_forward` is the student's integer arithmetic written with PyTorch on the exported
integers: the outside oracle of the network golden model (the tests, and the demo's scores when
PyTorch is installed).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..golden.bamconv import MacConvConfig
from ..golden.bamconv_torch import BamConv2d, heaviside_superspike
from .student import BETA, INPUT_SCALE
from .teacher import CONV_LAYERS, DENSE_LAYERS, teacher_weights

__all__ = ["BinaryP808", "init_from_teacher", "export_params", "integer_forward", "BamConv2d",
           "heaviside_superspike", "max_pool2x2"]


def max_pool2x2(x):
    """``F.max_pool2d(x, 2)`` (stride 2, the odd last row and column dropped) as two pairwise
    maxima: the same values, about ten times faster on the CPU for these maps (PyTorch's
    ``max_pool2d`` also computes the indices for its gradient). For forwards without a gradient
    (the teacher's labels, the integer forward): ``torch.maximum`` splits the gradient of ties,
    where ``max_pool2d`` gives it to each window's first maximum, so training keeps the latter."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    rows = torch.maximum(x[..., 0:h:2, :w], x[..., 1:h:2, :w])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class _FirstConv(BamConv2d):
    """conv1: the bamconv QAT layer on signed 8-bit integer inputs (the unit is ``macconv``):
    the accumulator range (and so the export's threshold search) is macconv's."""

    def _geometry_cfg(self):
        kh, kw = self.kernel
        return MacConvConfig(c_in=self.c_in, c_out=self.c_out, height=kh, width=kw,
                             kernel=self.kernel, act_bits=8, weight_bits=self.weight_bits)


class BinaryP808(nn.Module):
    """The binary-activation P.808 student: [N, T, 120] quantized features -> [N] MOS.

    Parameters
    ----------
    beta : float
        SuperSpike surrogate sharpness.

    Members
    -------
    conv1 ... conv5, dense1 ... dense3 : BamConv2d
        The layers; conv1 has 8-bit inputs, the others binary inputs. dense layers are 1x1
        convolutions on the 1 x 1 x 64 pooled map.
    """

    def __init__(self, beta=BETA):
        super().__init__()
        w = teacher_weights()
        for name, _, _ in CONV_LAYERS:
            c_out, c_in = w[f"{name}.weight"].shape[:2]
            cls = _FirstConv if name == "conv1" else BamConv2d
            setattr(self, name, cls(c_in, c_out, (3, 3), "same", 8, "threshold", beta=beta))
        for name, _ in DENSE_LAYERS:
            n_out, n_in = w[f"{name}.weight"].shape
            out = "sum" if name == "dense3" else "threshold"
            setattr(self, name, BamConv2d(n_in, n_out, (1, 1), "valid", 8, out, beta=beta))

    def train_forward(self, xq, collect=False):
        """The training forward: Heaviside with the surrogate gradient, the max pools on the
        pre-activations (the same forward, a gradient to the maximum's position). With
        ``collect`` also returns each thresholded layer's pre-activation, pooled as its output
        is (the intermediate distillation's input)."""
        pre = {}
        h = xq.unsqueeze(1)
        for name, _, pool in CONV_LAYERS:
            layer = getattr(self, name)
            # The padding and the bias in the convolution itself: one pass over the map fewer.
            p = F.conv2d(h, layer.fake_weight(), layer.bias, padding=layer.padding)
            if pool:
                p = F.max_pool2d(p, 2)
            elif name == "conv5":
                p = p.amax(dim=(2, 3), keepdim=True)
            pre[name] = p
            h = heaviside_superspike(p, layer.beta)
        for name, _ in DENSE_LAYERS[:-1]:
            layer = getattr(self, name)
            p = F.conv2d(h, layer.fake_weight(), layer.bias)
            pre[name] = p
            h = heaviside_superspike(p, layer.beta)
        out = self.dense3(h).flatten()
        return (out, pre) if collect else out

    def forward(self, xq):
        """MOS of each window; ``xq`` (N, T, 120) quantized features (float tensor of integers).
        In training mode :meth:`train_forward`; in eval mode each layer's exact integer
        forward."""
        if self.training:
            return self.train_forward(xq)
        h = xq.unsqueeze(1)
        for name, _, pool in CONV_LAYERS:
            h = getattr(self, name)(h)
            if pool:
                h = F.max_pool2d(h, 2)
            elif name == "conv5":
                h = h.amax(dim=(2, 3), keepdim=True)
        for name, _ in DENSE_LAYERS[:-1]:
            h = getattr(self, name)(h)
        return self.dense3(h).flatten()


@torch.no_grad()
def init_from_teacher(student, features, quantile=0.5):
    """Initialize ``student`` from the teacher on calibration ``features`` (N, 900, 120).

    For each layer: weights = the teacher's, times the typical "on" value of each input channel
    (so binary inputs stand in for the teacher's activations); bias = the teacher's minus a
    per-channel threshold, the ``quantile`` of the teacher's positive activations (for conv5 the
    quantile of its per-window global maxima, so each of the 64 pooled bits is informative).
    """
    from .teacher import TeacherP808
    teacher = TeacherP808()
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))
    # Teacher activations (ReLU outputs) per layer, pooled where the teacher pools.
    acts, h = {}, x.unsqueeze(1)
    for name, _, pool in CONV_LAYERS:
        h = torch.relu(getattr(teacher, name)(h))
        acts[name] = h.amax(dim=(2, 3)) if name == "conv5" else h
        if pool:
            h = F.max_pool2d(h, 2)
    h = h.amax(dim=(2, 3))
    for name, _ in DENSE_LAYERS[:-1]:
        h = torch.relu(getattr(teacher, name)(h))
        acts[name] = h

    def stats(a):
        """Per channel: threshold (quantile of the positive values) and mean above it."""
        a = a.transpose(0, 1).reshape(a.shape[1], -1).double()
        theta, on = torch.zeros(a.shape[0]), torch.ones(a.shape[0])
        for c in range(a.shape[0]):
            pos = a[c][a[c] > 0]
            if len(pos):
                theta[c] = float(torch.quantile(pos, quantile))
                above = pos[pos >= theta[c]]
                on[c] = float(above.mean()) if len(above) else float(pos.mean())
        return theta, on

    in_scale = torch.full((1,), 1.0 / INPUT_SCALE)
    layers = [n for n, _, _ in CONV_LAYERS] + [n for n, _ in DENSE_LAYERS]
    for name in layers:
        t_layer, s_layer = getattr(teacher, name), getattr(student, name)
        w = t_layer.weight.detach().clone()
        if w.ndim == 2:
            w = w.view(*w.shape, 1, 1)
        s_layer.weight.copy_(w * in_scale.view(1, -1, 1, 1).to(w.dtype))
        if name == "dense3":
            s_layer.bias.copy_(t_layer.bias)
            break
        theta, on = stats(acts[name])
        s_layer.bias.copy_(t_layer.bias - theta)
        in_scale = on
    return student


@torch.no_grad()
def export_params(student):
    """The network's weight-file arrays (``<layer>.<array>``, integers) and ``mos_scale``, the
    float by which dense3's integer sum is multiplied to give the MOS."""
    student = student.eval()
    params = {}
    for name, _, _ in CONV_LAYERS:
        for k, v in getattr(student, name).export().items():
            params[f"{name}.{k}"] = v
    for name, _ in DENSE_LAYERS:
        for k, v in getattr(student, name).export().items():
            params[f"{name}.{k}"] = v.reshape(v.shape[0], -1) if k == "weights" else v
    scale = float(student.dense3.scale().double()[0])
    return params, scale


def integer_forward(params, xq):
    """The student's integer forward written with PyTorch's conv2d / max_pool2d / matmul on the
    exported integers (float64, exact): the outside oracle of the network golden model.

    Parameters
    ----------
    params : dict
        :func:`export_params`'s arrays.
    xq : array (N, T, 120)
        Quantized features.

    Returns
    -------
    (N,) int64: dense3's sums.
    """
    h = torch.from_numpy(np.asarray(xq, dtype=np.float64)).unsqueeze(1)
    for name, _, pool in CONV_LAYERS:
        w = torch.from_numpy(np.asarray(params[f"{name}.weights"], dtype=np.float64))
        acc = F.conv2d(F.pad(h, (1, 1, 1, 1)), w) + torch.from_numpy(
            np.asarray(params[f"{name}.bias"], dtype=np.float64)).view(1, -1, 1, 1)
        t = torch.from_numpy(np.asarray(params[f"{name}.thresholds"], dtype=np.float64))
        h = (acc >= t.view(1, -1, 1, 1)).double()
        if pool:
            h = F.max_pool2d(h, 2)
    h = h.amax(dim=(2, 3))
    for name, _ in DENSE_LAYERS:
        w = torch.from_numpy(np.asarray(params[f"{name}.weights"], dtype=np.float64))
        acc = h @ w.T + torch.from_numpy(np.asarray(params[f"{name}.bias"], dtype=np.float64))
        if name == "dense3":
            return acc[:, 0].numpy().astype(np.int64)
        t = torch.from_numpy(np.asarray(params[f"{name}.thresholds"], dtype=np.float64))
        h = (acc >= t).double()

