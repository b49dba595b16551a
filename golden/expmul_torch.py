"""PyTorch quantizer to sign-exponent-only weights (SEOFP-NET) with a straight-through estimator,
and the export of trained weights in the ``expmul``/``expdot`` weight-code format.

Quantization rounds in the log domain (as DeepShift does, arXiv 1905.13298): a weight w
becomes sign(w) * 2^d with d = round(log2 |w|) (``torch.round``: ties to even), clamped to the
format's exponents d_min..d_max (d = f - weight_bias, f = 1..2^E - 1). Below the smallest power
the weight becomes 0 if |w| < 2^(d_min - 1) (nearer to 0 than to 2^d_min in the linear domain),
else 2^d_min. A weight of exactly 0 stays 0 (with its sign: -0.0 gives the -0 code).

The straight-through estimator passes the gradient unchanged (``w + (q - w).detach()``), so the
latent float weights keep training while the forward pass sees only representable weights.
"""

import numpy as np
import torch
from torch import nn

from .expmul import ExpDotConfig, encode_weights

__all__ = ["seofp_quantize", "seofp_ste", "SEOFPLinear", "export_codes"]


def seofp_quantize(w, cfg):
    """The nearest (log-domain) sign-exponent-only value of every element of ``w`` (no gradient).

    Parameters
    ----------
    w : torch.Tensor
        Float weights.
    cfg : ExpMulConfig or ExpDotConfig
        Gives ``weight_exp_bits`` and ``weight_bias``.
    """
    d_min, d_max = cfg.d_range
    mag = w.detach().abs().to(torch.float64)
    safe = torch.where(mag > 0, mag, torch.ones_like(mag))
    d = torch.round(torch.log2(safe)).clamp(d_min, d_max)
    q = torch.where(mag >= 2.0 ** (d_min - 1), torch.exp2(d), torch.zeros_like(mag))
    q = torch.where(mag > 0, q, torch.zeros_like(mag))
    sign = torch.where(torch.signbit(w.detach()), -1.0, 1.0).to(torch.float64)
    return (sign * q).to(w.dtype)


def seofp_ste(w, cfg):
    """Quantized forward, identity backward (straight-through estimator)."""
    return w + (seofp_quantize(w, cfg) - w).detach()


def export_codes(w, cfg):
    """Weight codes (int64, same shape) of the quantized ``w``: the units' weight format."""
    q = seofp_quantize(w, cfg).detach().to(torch.float64).cpu().numpy()
    return encode_weights(cfg, q)


class SEOFPLinear(nn.Module):
    """A bias-free linear layer whose weights are sign-exponent-only in the forward pass.

    Row r of the layer is one ``expdot`` unit with ``lanes = in_features``:
    ``export()["weights"][r]`` is its weight file.

    Parameters
    ----------
    in_features, out_features : int
    cfg : ExpDotConfig
        The unit format (``lanes`` must equal ``in_features``).
    """

    def __init__(self, in_features, out_features, cfg):
        super().__init__()
        if cfg.lanes != in_features:
            raise ValueError(f"cfg.lanes = {cfg.lanes} must equal in_features = {in_features}")
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1.0, 1.0)

    @classmethod
    def from_config(cls, cfg, out_features=1):
        return cls(cfg.lanes, out_features, cfg)

    def quantized_weight(self):
        return seofp_ste(self.weight, self.cfg)

    def forward(self, x):
        return x @ self.quantized_weight().t()

    def export(self):
        """``{"weights": codes}`` with codes (out_features, lanes); row r is one expdot file."""
        return {"weights": export_codes(self.weight, self.cfg)}

    def export_row(self, row=0):
        """The ``expdot`` weight file of output row ``row``."""
        return {"weights": np.ascontiguousarray(self.export()["weights"][row])}


def default_config(lanes):
    return ExpDotConfig(lanes=lanes, simd=1)
