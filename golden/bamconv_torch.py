"""A trainable PyTorch binary-activation convolution that exports the ``bamconv`` weight file.

:class:`BamConv2d` is the training-time twin of :func:`qhw.golden.bamconv.reference`
(arXiv 2407.04578): inputs are {0, 1} activation maps, weights are per-output-channel
signed k-bit fake-quantized (straight-through estimator), and in threshold mode the output is the
Heaviside step of the pre-activation with the SuperSpike surrogate gradient.

Conventions
-----------
* Tensors are NCHW float; the unit's arrays are (N, H, W, C) integers (:func:`to_bits`,
  :func:`from_bits`, :meth:`BamConv2d.unit_output`). Padding ('same', PyTorch's split:
  (k-1)//2 before, the rest after) holds activation 0.
* Weight quantization, per output channel c: ``scale_c = max|w_c| / Q`` with ``Q = 2**(k-1) - 1``
  (symmetric: the code -2**(k-1) is never used), ``q = clamp(round(w / scale_c), -Q, Q)`` with
  round-half-to-even (``torch.round``), fake weight ``q * scale_c``. A channel whose latent
  weights are all 0 gets ``scale_c = 1`` (q = 0). The scale is treated as a constant in the
  backward pass; the rounding passes gradients straight through.
* Heaviside: ``H(p) = 1 if p >= 0 else 0`` (a pre-activation of exactly 0, or -0.0, gives 1).
  Backward (SuperSpike): ``dH/dp ~ 1 / (beta*|p| + 1)**2``.
* Threshold mode: ``p_c = scale_c * acc + b_c`` with the integer ``acc = sum q*x``; output
  ``H(p_c)``. Export: bias 0, direction +1 and the integer threshold ``t_c`` = the smallest
  accumulator value whose pre-activation is >= 0, so the unit computes ``acc >= t_c``.
* Sum mode: the bias is fake-quantized on the same scale, ``b_c = round(b_c / scale_c)`` clamped
  to the unit's bias range; the output is ``scale_c * (acc + bias_int_c)``; export has the integer
  weights and ``bias_int``, and the unit's sum times ``scale_c`` is the module's output.

Exactness of the eval-mode output
---------------------------------
The train-mode forward runs in float32 (``conv2d`` of the fake weights). The eval-mode forward is
defined on the integers instead: ``acc = conv2d(x, q)`` in float64 (exact: the integers stay far
below 2**53), then in threshold mode ``p = acc * scale + b`` in float64, two separately rounded
operations, and ``H(p)``. Both are monotone in ``acc`` (IEEE rounding is monotone), so the set of
accumulator values with ``p >= 0`` is an up-set, and :meth:`BamConv2d.export` finds its least
element by bisection with exactly the same float64 expression. Hence
``reference(cfg, layer.export(), to_bits(x))`` equals the eval-mode output bit for bit, ties
included. (Train and eval outputs can differ where the float32 pre-activation lies within
rounding of 0.)

Gating
------
``forward(x, gates=None)``: ``gates`` a (N, C_out, H_out, W_out) 0/1 tensor (the unit's 'mask'
gates, NCHW); gated-off channels output 0 as in the unit. :func:`count_gates` turns per-position
counts into such a mask ('count' gating).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .bamconv import BamConvConfig, acc_bits, acc_range, check_params

__all__ = ["SuperSpike", "heaviside_superspike", "BamConv2d", "to_bits", "from_bits",
           "count_gates", "same_pads"]


class SuperSpike(torch.autograd.Function):
    """Heaviside ``x >= 0 -> 1, else 0`` forward; ``grad / (beta*|x| + 1)**2`` backward."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = float(beta)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (ctx.beta * x.abs() + 1.0) ** 2, None


def heaviside_superspike(x, beta=10.0):
    """Apply :class:`SuperSpike` (Heaviside with the SuperSpike surrogate gradient).

    Parameters
    ----------
    x : torch.Tensor
        Pre-activation (any float tensor).
    beta : float
        Surrogate sharpness (> 0); larger means a narrower gradient around 0.
    """
    return SuperSpike.apply(x, beta)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def same_pads(kernel):
    """(top, bottom, left, right) of PyTorch-style 'same' padding: (k-1)//2 before, rest after."""
    kh, kw = kernel
    return ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)


def to_bits(x):
    """{0,1} NCHW tensor/array -> the unit's (N, H, W, C) uint8 array (ValueError otherwise)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"to_bits: expected (N, C, H, W) or (C, H, W), got shape {a.shape}")
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(f"to_bits: values must be 0 or 1, found {a[~np.isin(a, (0, 1))].flat[0]}")
    return a.astype(np.uint8).transpose(0, 2, 3, 1).copy()


def from_bits(bits, dtype=torch.float32):
    """The unit's (N, H, W, C) (or (H, W, C)) 0/1 array -> a {0,1} NCHW float tensor."""
    b = np.asarray(bits)
    if b.ndim == 3:
        b = b[None]
    if b.ndim != 4:
        raise ValueError(f"from_bits: expected (N, H, W, C) or (H, W, C), got shape {b.shape}")
    if b.size and not np.isin(b, (0, 1)).all():
        raise ValueError(f"from_bits: values must be 0 or 1, found {b[~np.isin(b, (0, 1))].flat[0]}")
    return torch.from_numpy(b.astype(np.float64).transpose(0, 3, 1, 2).copy()).to(dtype)


def count_gates(counts, c_out, dtype=torch.float32):
    """'count' gates (N, H_out, W_out) -> a (N, C_out, H_out, W_out) 0/1 mask (first n on)."""
    counts = torch.as_tensor(np.asarray(counts))
    ch = torch.arange(c_out).view(1, c_out, 1, 1)
    return (ch < counts.unsqueeze(1)).to(dtype)


class BamConv2d(nn.Module):
    """Binary-activation convolution with fake-quantized k-bit weights, for training.

    Parameters
    ----------
    c_in, c_out : int
        Channels.
    kernel : (int, int)
        Kernel height and width.
    padding : 'valid' or 'same'
        'same' pads with activation 0, PyTorch's split.
    weight_bits : int
        Signed weight width k, 2..8.
    output : 'sum' or 'threshold'
        Threshold mode emits ``H(pre-activation)`` in {0,1}; sum mode the pre-activation.
    beta : float
        SuperSpike surrogate sharpness (default 10).
    init_scale : float or None
        Latent weights start uniform in [-init_scale, init_scale]; None: 1/sqrt(K).
    """

    def __init__(self, c_in, c_out, kernel=(3, 3), padding="valid", weight_bits=8,
                 output="threshold", beta=10.0, init_scale=None):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding: must be 'valid' or 'same', got {padding!r}")
        if output not in ("sum", "threshold"):
            raise ValueError(f"output: must be 'sum' or 'threshold', got {output!r}")
        if not (isinstance(weight_bits, int) and 2 <= weight_bits <= 8):
            raise ValueError(f"weight_bits: must be an integer in 2..8, got {weight_bits!r}")
        if not beta > 0:
            raise ValueError(f"beta: must be > 0, got {beta!r}")
        kh, kw = kernel
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), (int(kh), int(kw))
        self.padding, self.output = padding, output
        self.weight_bits, self.beta = int(weight_bits), float(beta)
        self.weight = nn.Parameter(torch.empty(self.c_out, self.c_in, kh, kw))
        bound = init_scale if init_scale is not None else self.k ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        self.bias = nn.Parameter(torch.zeros(self.c_out))
        self.config = None

    @classmethod
    def from_config(cls, cfg, **kwargs):
        """The layer matching a :class:`~qhw.golden.bamconv.BamConvConfig` (``pe``, ``simd``,
        ``gating``, height and width only shape the hardware; :meth:`export` checks against
        ``cfg``). ``kwargs``: ``beta``, ``init_scale``."""
        if not isinstance(cfg, BamConvConfig):
            raise TypeError(f"from_config: expected a BamConvConfig, got {type(cfg).__name__}")
        layer = cls(cfg.c_in, cfg.c_out, cfg.kernel, cfg.padding, cfg.weight_bits, cfg.output,
                    **kwargs)
        layer.config = cfg
        return layer

    # Sizes and quantization -------------------------------------------------------------------

    @property
    def k(self):
        return self.c_in * self.kernel[0] * self.kernel[1]

    @property
    def qmax(self):
        return (1 << (self.weight_bits - 1)) - 1

    def _geometry_cfg(self):
        """A config with this layer's arithmetic (for acc_range / acc_bits)."""
        kh, kw = self.kernel
        return BamConvConfig(c_in=self.c_in, c_out=self.c_out, height=kh, width=kw,
                             kernel=self.kernel, weight_bits=self.weight_bits)

    def scale(self):
        """Per-channel scale (C_out,) float32, detached: max|w_c| / Q (1 for an all-zero channel)."""
        m = self.weight.detach().abs().amax(dim=(1, 2, 3))
        return torch.where(m > 0, m / self.qmax, torch.ones_like(m))

    def int_weight(self):
        """Integer weights q (C_out, C_in, kh, kw) as int64, in [-Q, Q]."""
        s = self.scale().view(-1, 1, 1, 1)
        return torch.clamp(torch.round(self.weight.detach() / s), -self.qmax, self.qmax).long()

    def fake_weight(self):
        """q * scale with the straight-through estimator (gradient of identity)."""
        s = self.scale().view(-1, 1, 1, 1)
        q = torch.clamp(_RoundSTE.apply(self.weight / s), -self.qmax, self.qmax)
        return q * s

    def _bias_bounds(self):
        b = acc_bits(self._geometry_cfg())
        return -(1 << (b - 1)), (1 << (b - 1)) - 1

    def int_bias(self):
        """Sum mode: round(b / scale) clamped to the unit's bias range, int64."""
        lo, hi = self._bias_bounds()
        b = self.bias.detach().double() / self.scale().double()
        return torch.clamp(torch.round(b), lo, hi).long()

    def _pad(self, x):
        if self.padding == "same":
            top, bottom, left, right = same_pads(self.kernel)
            x = F.pad(x, (left, right, top, bottom), value=0.0)
        return x

    # Forward -----------------------------------------------------------------------------------

    def forward(self, x, gates=None):
        """Binary outputs (threshold) or pre-activations (sum), NCHW.

        Parameters
        ----------
        x : torch.Tensor
            (N, C_in, H, W) activations in {0, 1} (not checked).
        gates : torch.Tensor or None
            (N, C_out, H_out, W_out) 0/1 channel mask; gated-off channels output 0.
        """
        y = self._forward_train(x) if self.training else self._forward_eval(x)
        if gates is not None:
            y = y * gates.to(y.dtype)
        return y

    def _forward_train(self, x):
        s = self.scale()
        acc = F.conv2d(self._pad(x), self.fake_weight())
        if self.output == "threshold":
            return heaviside_superspike(acc + self.bias.view(1, -1, 1, 1), self.beta)
        lo, hi = self._bias_bounds()
        bq = torch.clamp(_RoundSTE.apply(self.bias / s), lo, hi) * s
        return acc + bq.view(1, -1, 1, 1)

    def integer_acc(self, x):
        """``acc = sum q*x`` as an exact float64 (N, C_out, H_out, W_out) tensor."""
        return F.conv2d(self._pad(x.detach().double()), self.int_weight().double())

    @torch.no_grad()
    def _forward_eval(self, x):
        acc = self.integer_acc(x)
        s = self.scale().double().view(1, -1, 1, 1)
        if self.output == "threshold":
            p = acc * s
            p = p + self.bias.detach().double().view(1, -1, 1, 1)
            return (p >= 0).to(x.dtype)
        return ((acc + self.int_bias().double().view(1, -1, 1, 1)) * s).to(x.dtype)

    def unit_output(self, y):
        """A forward output -> the unit's (N, H_out, W_out, C_out) array: bits (uint8, threshold
        mode) or, in sum mode, ``rint(y / scale)`` as int64 (the unit's sums for an eval-mode y)."""
        if self.output == "threshold":
            return to_bits(y)
        a = (y.detach().double() / self.scale().double().view(1, -1, 1, 1)).numpy()
        return np.rint(a).astype(np.int64).transpose(0, 2, 3, 1).copy()

    # Export ------------------------------------------------------------------------------------

    def _thresholds(self):
        """Per channel, the least acc in [lo, hi + 1] with ``fl(fl(acc*s) + b) >= 0`` (float64,
        as in the eval forward); hi + 1 when none (the output is constant 0)."""
        lo, hi = acc_range(self._geometry_cfg())
        s = self.scale().double().numpy()
        b = self.bias.detach().double().numpy()
        if not np.isfinite(b).all() or not np.isfinite(s).all():
            raise ValueError("export: bias or scale is not finite")
        t = np.empty(self.c_out, np.int64)
        for c in range(self.c_out):
            sc, bc = np.float64(s[c]), np.float64(b[c])

            def on(a):
                return (np.float64(a) * sc) + bc >= 0

            a_lo, a_hi = lo, hi + 1  # invariant: on(a_hi) or a_hi == hi + 1; not on(a_lo - 1)
            if on(lo):
                t[c] = lo
                continue
            while a_hi - a_lo > 1:  # not on(a_lo); answer in (a_lo, a_hi]
                mid = (a_lo + a_hi) // 2
                if on(mid):
                    a_hi = mid
                else:
                    a_lo = mid
            t[c] = a_hi
        return t

    @torch.no_grad()
    def export(self, cfg=None):
        """The unit's weight-file mapping (see :func:`~qhw.golden.bamconv.param_shapes`).

        ``weights``: the integer q (int64, in [-Q, Q]). Threshold mode: ``bias`` 0, ``thresholds``
        t_c (see the module docstring; within [acc_lo, acc_hi + 1]) and ``directions`` +1, so the
        unit's bit is ``acc >= t_c``, the eval-mode output. Sum mode: ``bias`` = :meth:`int_bias`.

        Parameters
        ----------
        cfg : BamConvConfig or None
            Check the arrays with :func:`~qhw.golden.bamconv.check_params` against it (default:
            the config given to :meth:`from_config`, if any).
        """
        params = {"weights": self.int_weight().numpy().astype(np.int64)}
        if self.output == "threshold":
            params["bias"] = np.zeros(self.c_out, np.int64)
            params["thresholds"] = self._thresholds()
            params["directions"] = np.ones(self.c_out, np.int64)
        else:
            params["bias"] = self.int_bias().numpy().astype(np.int64)
        cfg = cfg if cfg is not None else self.config
        if cfg is not None:
            params = check_params(cfg, params)
        return params

    def save_npz(self, path, cfg=None):
        """Write :meth:`export`'s arrays to an uncompressed .npz weight file."""
        np.savez(path, **self.export(cfg))
