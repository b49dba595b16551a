"""PyTorch GRU with per-operator fake quantization (straight-through), for training, and its
export into the ``gru`` unit's weight file.

:class:`QuantGRU` computes PyTorch's GRU (gate order r, z, n; arXiv 2402.12263) with
every operator's output rounded and saturated into its format exactly as
:func:`qhw.golden.gru.gru_step` does. Gradients pass straight through every quantizer (the
identity, STE); through an activation they are the derivative of the real sigmoid/tanh at the
quantized input, while the forward value comes from the unit's own table or PWL segments
(:func:`qhw.golden.gru.activation`), so that the forward pass in float64 equals the integer
reference bit for bit (every intermediate of formats up to 16 bits is exact in float64; see
docs/gru.md).
"""

import math

import numpy as np
import torch
from torch import nn

from . import gru as g

__all__ = ["QuantGRU", "fake_quant"]


def _round(v, rounding):
    return torch.round(v) if rounding == "nearest_even" else torch.floor(v)


def fake_quant(v, fmt):
    """Round (the format's rounding) and saturate ``v`` onto the grid of ``fmt``; STE gradient."""
    fmt = g.Format(*fmt)
    scale = 2.0 ** fmt.frac
    q = torch.clamp(_round(v * scale, fmt.rounding), fmt.lo, fmt.hi) / scale
    return v + (q - v).detach()


class QuantGRU(nn.Module):
    """One GRU layer (batch first) with the fake-quantized arithmetic of a :class:`GruConfig`.

    Parameters are float tensors named like ``torch.nn.GRU``'s (without the ``_l0`` suffix);
    :meth:`export` quantizes them into the weight file of the ``gru`` unit.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h, i = cfg.hidden_size, cfg.input_size
        k = 1.0 / math.sqrt(h)
        self.weight_ih = nn.Parameter(torch.empty(3 * h, i).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(3 * h, h).uniform_(-k, k))
        self.bias_ih = nn.Parameter(torch.empty(3 * h).uniform_(-k, k))
        self.bias_hh = nn.Parameter(torch.empty(3 * h).uniform_(-k, k))

    @classmethod
    def from_torch(cls, cfg, gru):
        """Copy the weights of a one-layer ``torch.nn.GRU``."""
        m = cls(cfg)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(m, name).copy_(getattr(gru, f"{name}_l0"))
        return m

    def _fq(self, v, name):
        return fake_quant(v, self.cfg.fmt(name))

    def _act(self, v, name):
        cfg = self.cfg
        kind = "tanh" if name == "tanh_n" else "sig"
        src = {"sig_r": "add_r", "sig_z": "add_z", "tanh_n": "add_n"}[name]
        f_src = cfg.fmt(src).frac
        codes = torch.round(v.detach() * 2.0 ** f_src).to(torch.int64).cpu().numpy()
        out = g.activation(cfg, kind, name, codes, f_src).astype(np.float64)
        q = torch.as_tensor(out, dtype=v.dtype, device=v.device) * 2.0 ** -cfg.fmt(name).frac
        # Gradient: the real function at the quantized activation input (its own STE).
        v_in = fake_quant(v, g.act_input_format(cfg, name))
        real = torch.sigmoid(v_in) if kind == "sig" else torch.tanh(v_in)
        return real + (q - real).detach()

    def quantized_weights(self):
        return {name: self._fq(getattr(self, name), "weight" if "weight" in name else "bias")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def forward(self, x, h0=None):
        """x: (N, T, I) real inputs (quantized into the input format here). Returns the states
        (N, T, H), all on the state format's grid, and the last state (N, H)."""
        cfg, hs = self.cfg, self.cfg.hidden_size
        w = self.quantized_weights()
        x = self._fq(x, "input")
        n, t, _ = x.shape
        h = x.new_zeros(n, hs) if h0 is None else self._fq(h0, "state")
        outs = []
        for s in range(t):
            gi = x[:, s] @ w["weight_ih"].T + w["bias_ih"]
            gh = h @ w["weight_hh"].T + w["bias_hh"]
            mm = {}
            for k, gate in enumerate(g.GATES):
                mm[f"mm_i{gate}"] = self._fq(gi[:, k * hs:(k + 1) * hs], f"mm_i{gate}")
                mm[f"mm_h{gate}"] = self._fq(gh[:, k * hs:(k + 1) * hs], f"mm_h{gate}")
            add_r = self._fq(mm["mm_ir"] + mm["mm_hr"], "add_r")
            add_z = self._fq(mm["mm_iz"] + mm["mm_hz"], "add_z")
            r = self._act(add_r, "sig_r")
            z = self._act(add_z, "sig_z")
            mul_rn = self._fq(r * mm["mm_hn"], "mul_rn")
            add_n = self._fq(mm["mm_in"] + mul_rn, "add_n")
            nn_ = self._act(add_n, "tanh_n")
            sub_z = self._fq(1.0 - z, "sub_z")
            mul_n = self._fq(sub_z * nn_, "mul_n")
            mul_zh = self._fq(z * h, "mul_zh")
            add_h = self._fq(mul_n + mul_zh, "add_h")
            h = self._fq(add_h, "state")
            outs.append(h)
        return torch.stack(outs, dim=1), h

    def export(self):
        """The weight file: int64 codes of the weight and bias formats (the formats' rounding)."""
        out = {}
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            fmt = self.cfg.fmt("weight" if "weight" in name else "bias")
            v = getattr(self, name).detach().double() * 2.0 ** fmt.frac
            out[name] = torch.clamp(_round(v, fmt.rounding), fmt.lo, fmt.hi).to(torch.int64).numpy()
        return out

    def quantize_inputs(self, x):
        """Real inputs -> integer codes of the input format (what the unit's stream carries)."""
        fmt = self.cfg.fmt("input")
        v = torch.as_tensor(x, dtype=torch.float64) * 2.0 ** fmt.frac
        return torch.clamp(_round(v, fmt.rounding), fmt.lo, fmt.hi).to(torch.int64).numpy()
