"""A trainable PyTorch binary convolution that exports the ``binconv`` unit's weight file.

:class:`BinaryConv2d` is the training-time twin of :func:`qhw.golden.binconv.reference`: it keeps
float latent weights, binarises them with ``sign`` and a straight-through estimator, pads like the
unit's :class:`~qhw.golden.binconv.BinConvConfig` and, in threshold mode, applies a
``BatchNorm2d`` followed by ``sign``. :meth:`BinaryConv2d.export` turns a trained layer into the
arrays of the unit's weight file, folding the eval-mode batch norm into integer thresholds and
directions, so that ``reference(cfg, layer.export(), to_bits(x))`` equals the layer's eval-mode
output bit for bit.

Conventions (shared with :mod:`qhw.golden.binconv`):

* A bit 1 stands for +1 and a bit 0 for -1.
* ``sign(0)`` is +1 everywhere: a latent weight of exactly 0 binarises to +1 (bit 1), and a batch
  norm output of exactly 0 (or -0.0) gives the output +1 (bit 1). The thresholds are folded with
  the same rule, which is why a positive scale gives ``d >= ceil(tau)`` and a negative one
  ``d <= floor(tau)`` (both include the tie ``d == tau``).
* Tensors are NCHW float (+-1 or integer-valued dot products); the unit's arrays are
  (N, H, W, C) integers. :func:`to_bits`, :func:`from_bits` and :meth:`BinaryConv2d.unit_output`
  convert between the two.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .binconv import BinConvConfig, check_params

__all__ = ["SignSTE", "sign_ste", "BinaryConv2d", "to_bits", "from_bits", "same_pads"]


class SignSTE(torch.autograd.Function):
    """``sign`` with ``sign(0) = +1`` forward, clipped identity (straight-through) backward.

    The backward pass lets the gradient through where ``|x| <= 1`` and blocks it elsewhere
    (BinaryNet's "hard tanh" estimator): inputs far outside the switching region would otherwise
    keep growing without ever changing the binarised value.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        # torch.sign maps 0 to 0, which is not a bipolar value; ">= 0" makes 0 (and -0.0) +1.
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x):
    """Apply :class:`SignSTE`: +-1 forward (``sign(0) = +1``), clipped identity backward.

    Parameters
    ----------
    x : torch.Tensor
        Any float tensor.
    """
    return SignSTE.apply(x)


def same_pads(kernel):
    """(top, bottom, left, right) of PyTorch-style 'same' padding: (k-1)//2 before, rest after.

    Parameters
    ----------
    kernel : (int, int)
        Kernel height and width.
    """
    kh, kw = kernel
    return ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)


def to_bits(x):
    """Convert a +-1 NCHW tensor into the unit's (N, H, W, C) uint8 bit array (1 = +1, 0 = -1).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Shape (N, C, H, W) (or (C, H, W) for one frame) holding only +1 and -1.

    Raises
    ------
    ValueError
        If ``x`` holds anything other than +-1 (a silent rounding here would hide a missing
        binarisation upstream).
    """
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"to_bits: expected (N, C, H, W) or (C, H, W), got shape {a.shape}")
    if a.size and not np.isin(a, (-1, 1)).all():
        raise ValueError(f"to_bits: values must be +1 or -1, found {a[~np.isin(a, (-1, 1))].flat[0]}")
    return (a > 0).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def from_bits(bits, dtype=torch.float32):
    """Convert the unit's (N, H, W, C) bits into a +-1 NCHW tensor (1 -> +1, 0 -> -1).

    Parameters
    ----------
    bits : array_like
        Shape (N, H, W, C) or (H, W, C), values 0/1 (bool accepted).
    dtype : torch.dtype
        Float type of the result.
    """
    b = np.asarray(bits)
    if b.ndim == 3:
        b = b[None]
    if b.ndim != 4:
        raise ValueError(f"from_bits: expected (N, H, W, C) or (H, W, C), got shape {b.shape}")
    if b.size and not np.isin(b, (0, 1)).all():
        raise ValueError(f"from_bits: values must be 0 or 1, found {b[~np.isin(b, (0, 1))].flat[0]}")
    t = torch.from_numpy(b.astype(np.float64).transpose(0, 3, 1, 2).copy())
    return (2 * t - 1).to(dtype)


class BinaryConv2d(nn.Module):
    """Binary (XNOR-popcount) convolution with latent float weights, for training.

    Forward pass, for an input ``x`` of shape (N, C_in, H, W):

    1. ``xb = sign_ste(x)`` if ``binarize_input`` else ``x``. With ``binarize_input=False`` (the
       default) the input must already be +-1 -- e.g. the output of a previous threshold-mode
       layer -- and is not checked, to keep the training step cheap. Set it to True to feed
       real-valued activations; they are binarised with the same sign/STE as the weights.
    2. Pad with the constant ``+1`` (``pad_bit`` 1) or ``-1`` (``pad_bit`` 0); ``conv2d`` itself
       would pad with 0, which the unit cannot represent.
    3. ``d = conv2d(xb, sign_ste(weight))``: the integer dot product 2P - K, exact in float32
       while K < 2**24.
    4. 'popcount' output: return ``d``. 'threshold' output: return ``sign_ste(bn(d))`` (+-1) when
       ``batch_norm`` is on, else ``sign_ste(d)`` (i.e. threshold 0, direction +1).

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel : (int, int)
        Kernel height and width.
    padding : 'valid' or 'same'
        As in :class:`~qhw.golden.binconv.BinConvConfig`.
    pad_bit : 0 or 1
        Bit held by padded positions (0 -> -1, 1 -> +1).
    output : 'popcount' or 'threshold'
        What the unit emits, see above.
    batch_norm : bool or None
        Use a ``BatchNorm2d`` before the output sign. None means "on in threshold mode". Not
        allowed in popcount mode: the unit emits the raw dot product there, so a batch norm on
        it belongs to the next layer.
    binarize_input : bool
        Binarise the input with :func:`sign_ste` (see step 1).
    init_scale : float
        Latent weights start uniform in [-init_scale, init_scale]; small values let early
        updates flip signs, and staying inside [-1, 1] keeps the STE gradient on.
    bn_eps, bn_momentum : float
        Passed to ``BatchNorm2d``.
    """

    def __init__(self, c_in, c_out, kernel=(3, 3), padding="valid", pad_bit=0, output="popcount",
                 batch_norm=None, binarize_input=False, init_scale=0.1, bn_eps=1e-5,
                 bn_momentum=0.1):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding: must be 'valid' or 'same', got {padding!r}")
        if pad_bit not in (0, 1):
            raise ValueError(f"pad_bit: must be 0 or 1, got {pad_bit!r}")
        if output not in ("popcount", "threshold"):
            raise ValueError(f"output: must be 'popcount' or 'threshold', got {output!r}")
        if batch_norm is None:
            batch_norm = output == "threshold"
        if batch_norm and output != "threshold":
            raise ValueError("batch_norm: only available with output 'threshold' (the unit emits "
                             "raw dot products in 'popcount' mode)")
        kh, kw = kernel
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), (int(kh), int(kw))
        self.padding, self.pad_bit, self.output = padding, int(pad_bit), output
        self.binarize_input = bool(binarize_input)
        self.weight = nn.Parameter(torch.empty(self.c_out, self.c_in, kh, kw))
        nn.init.uniform_(self.weight, -init_scale, init_scale)
        self.bn = nn.BatchNorm2d(self.c_out, eps=bn_eps, momentum=bn_momentum) if batch_norm else None

    @classmethod
    def from_config(cls, cfg, **kwargs):
        """Build the layer matching a unit configuration.

        ``pe``, ``simd`` and ``counter`` only shape the hardware and do not matter here; the
        config's ``height``/``width`` are not enforced either (the layer is fully convolutional),
        but :meth:`export` with a config checks the arrays against it.

        Parameters
        ----------
        cfg : BinConvConfig
            The unit configuration.
        **kwargs
            Further keyword arguments of :class:`BinaryConv2d` (``batch_norm``,
            ``binarize_input``, ``init_scale``, ``bn_eps``, ``bn_momentum``).
        """
        if not isinstance(cfg, BinConvConfig):
            raise TypeError(f"from_config: expected a BinConvConfig, got {type(cfg).__name__}")
        layer = cls(cfg.c_in, cfg.c_out, cfg.kernel, cfg.padding, cfg.pad_bit, cfg.output, **kwargs)
        layer.config = cfg
        return layer

    # Derived sizes -----------------------------------------------------------------------------

    @property
    def k(self):
        """Synapses per output, C_in*kh*kw: the dot product lies in [-K, K]."""
        return self.c_in * self.kernel[0] * self.kernel[1]

    @property
    def pads(self):
        """(top, bottom, left, right) padding, as ``BinConvConfig.pads``."""
        return (0, 0, 0, 0) if self.padding == "valid" else same_pads(self.kernel)

    # Forward -----------------------------------------------------------------------------------

    def binary_weight(self):
        """The +-1 weights used in the forward pass (``sign(0) = +1``), with the STE attached."""
        return sign_ste(self.weight)

    def dot(self, x):
        """The dot products ``2P - K`` as a float (N, C_out, H_out, W_out) tensor.

        Parameters
        ----------
        x : torch.Tensor
            (N, C_in, H, W) input, +-1 unless ``binarize_input``.
        """
        if self.binarize_input:
            x = sign_ste(x)
        top, bottom, left, right = self.pads
        if top or bottom or left or right:
            # F.pad takes the last dimension first: (left, right, top, bottom).
            x = F.pad(x, (left, right, top, bottom), value=1.0 if self.pad_bit else -1.0)
        return F.conv2d(x, self.binary_weight())

    def forward(self, x):
        """Dot products (popcount mode) or +-1 outputs (threshold mode), NCHW.

        Parameters
        ----------
        x : torch.Tensor
            (N, C_in, H, W) input, +-1 unless ``binarize_input``.
        """
        d = self.dot(x)
        if self.output == "popcount":
            return d
        return sign_ste(self.bn(d) if self.bn is not None else d)

    @torch.no_grad()
    def clip_weights_(self):
        """Clamp the latent weights to [-1, 1] in place (call after each optimiser step).

        Outside [-1, 1] the STE blocks the gradient, so a weight that drifted there could never
        flip again (BinaryConnect's clipping).
        """
        self.weight.clamp_(-1.0, 1.0)

    def unit_output(self, y):
        """Convert a :meth:`forward` output into the array :func:`~qhw.golden.binconv.reference`
        returns: (N, H_out, W_out, C_out) int32 dot products or uint8 bits.

        Parameters
        ----------
        y : torch.Tensor
            Output of :meth:`forward`, (N, C_out, H_out, W_out).
        """
        if self.output == "threshold":
            return to_bits(y)
        a = y.detach().cpu().numpy()
        r = np.rint(a)
        if not np.array_equal(r, a):
            raise ValueError("unit_output: dot products are not integers (was binarize_input off "
                             "with real-valued inputs?)")
        return r.astype(np.int32).transpose(0, 2, 3, 1).copy()

    # Export ------------------------------------------------------------------------------------

    @torch.no_grad()
    def export(self, cfg=None):
        """The unit's weight-file mapping (see :func:`~qhw.golden.binconv.param_shapes`).

        ``weights`` are the bits of ``sign(latent)`` (latent 0 -> +1 -> bit 1). In threshold mode
        the eval-mode batch norm ``y = gamma*(d - mu)/sigma + beta``, ``sigma = sqrt(var + eps)``,
        is folded into an integer threshold ``t`` and direction per channel so that the bit is 1
        exactly when ``y >= 0`` (``sign(0) = +1``). With ``tau = mu - beta*sigma/gamma``:

        * ``gamma > 0``: ``y >= 0  <=>  d >= tau  <=>  d >= ceil(tau)``: direction +1, t = ceil(tau);
        * ``gamma < 0``: ``y >= 0  <=>  d <= tau  <=>  d <= floor(tau)``: direction -1,
          t = floor(tau);
        * ``gamma == 0``: ``y = beta``: always 1 if ``beta >= 0`` (direction +1, t = -(K+1)),
          never if ``beta < 0`` (direction +1, t = K+1).

        Thresholds are clamped to [-(K+1), K+1], which changes no output since ``d`` lies in
        [-K, K]. The fold is computed in float64 from the float32 parameters; the float32 batch
        norm of the forward pass can disagree with it only when ``d`` lies within float32
        rounding of ``tau`` and ``tau`` is not exactly representable (exact ties, e.g. dyadic
        parameters, fold the same way). Without batch norm the output is ``sign(d)``: t = 0,
        direction +1.

        Parameters
        ----------
        cfg : BinConvConfig or None
            Check the result with :func:`~qhw.golden.binconv.check_params` against this config
            (default: the config given to :meth:`from_config`, if any).

        Returns
        -------
        dict
            ``weights`` (C_out, C_in, kh, kw) uint8, and in threshold mode ``thresholds`` and
            ``directions`` (C_out,) int64.
        """
        params = {"weights": (self.weight.detach().cpu() >= 0).numpy().astype(np.uint8)}
        if self.output == "threshold":
            params["thresholds"], params["directions"] = self._fold_thresholds()
        cfg = cfg if cfg is not None else getattr(self, "config", None)
        if cfg is not None:
            params = check_params(cfg, params)
        return params

    def _fold_thresholds(self):
        k = self.k
        if self.bn is None:
            return np.zeros(self.c_out, np.int64), np.ones(self.c_out, np.int64)
        bn = self.bn
        if not bn.track_running_stats or bn.running_mean is None:
            raise ValueError("export: batch norm needs running statistics to fold into thresholds")
        n = self.c_out
        gamma = bn.weight.detach().cpu().double().numpy() if bn.affine else np.ones(n)
        beta = bn.bias.detach().cpu().double().numpy() if bn.affine else np.zeros(n)
        mu = bn.running_mean.detach().cpu().double().numpy()
        var = bn.running_var.detach().cpu().double().numpy()
        sigma = np.sqrt(var + bn.eps)
        for name, arr in (("gamma", gamma), ("beta", beta), ("running_mean", mu), ("sigma", sigma)):
            if not np.isfinite(arr).all():
                raise ValueError(f"export: batch norm {name} is not finite")
        thresholds = np.empty(n, np.int64)
        directions = np.ones(n, np.int64)
        bound = k + 1
        for c in range(n):
            if gamma[c] == 0:
                thresholds[c] = -bound if beta[c] >= 0 else bound
                continue
            # beta*sigma/gamma may overflow to +-inf for a tiny gamma: the output is then
            # constant, and the clamp below turns the infinite threshold into +-(K+1).
            tau = mu[c] - beta[c] * sigma[c] / gamma[c]
            if gamma[c] > 0:
                t = math.ceil(tau) if math.isfinite(tau) else tau
            else:
                t, directions[c] = (math.floor(tau) if math.isfinite(tau) else tau), -1
            thresholds[c] = int(min(max(t, -bound), bound))
        return thresholds, directions

    def save_npz(self, path, cfg=None):
        """Write :meth:`export`'s arrays to an uncompressed .npz weight file.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file.
        cfg : BinConvConfig or None
            As in :meth:`export`.
        """
        np.savez(path, **self.export(cfg))
