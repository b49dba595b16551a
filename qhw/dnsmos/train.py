"""Distil DNSMOS P.808 into its binary-activation student (and the 8-bit-activation comparison).

    python -m qhw.dnsmos.train [--student binary|int8] [--minutes 45] [--threads 1] [-o DIR]

Trains on the offline corpus (:mod:`qhw.dnsmos.corpus`), CPU only, within a wall-clock budget,
with the teacher's P.808 score as the target (mean squared error):

* **Random time crops labelled on the fly.** Most steps train on random crops of the training
  windows (``--crop``, 200-450 frames by default; the network is fully convolutional with a
  global max pool, so it scores any length), each labelled by the teacher's forward on the same
  crop, so the label is exact for what the student sees; a crop step costs a fraction of a
  full-window step, so many more steps fit in the budget. Optionally ``--mixup`` (a share of the
  batch is a convex mix of two windows' features, which the teacher labels) and ``--warp``
  (vocal tract length perturbation: each window's spectrum warped along frequency by a random
  factor, :func:`warp_features`, and labelled by the teacher as warped). The last
  ``--full-frac`` of the budget trains on the full 900-frame windows (their stored labels; the
  teacher's where they are warped or mixed).
* **Per-tensor learning rates** (``--lr-mode relative``, the default): each weight tensor's Adam
  step is ``--lr`` times its initial mean magnitude (conv1's weights are ~100x smaller than
  conv5's, as the teacher-derived init scales each layer's inputs), biases and thresholds the
  same times ``--bias-lr``; linear warm-up (``--warmup``) and cosine decay to ``--final-lr``
  times the peak over the budget; optional gradient-norm clipping (``--clip``).
* **Mixed precision** (``--precision bfloat16``, binary student only): the student's forward
  and backward in the training steps run under bfloat16 autocast (weights, Adam, the teacher's
  labels and the loss stay float32). Binary maps and 8-bit features are exact in bfloat16; the
  fake-quantized weights and the thresholds are rounded to 8 significant bits, which can flip a
  unit whose sum lies very near its threshold in a training step (never in validation or the
  export, which are exact). About 1.5x the steps per second on a CPU with AVX-512 BF16.
* **Validation every ``--val-every`` steps** on the full validation windows (clip scores), on
  the exported integers (exact, float32: every partial sum is an integer below 2**24, so it equals
  the eval forward); the state with the best validation RMSE is kept.
* **The dense stage** (``--no-refit`` to skip). At the end, conv5's globally pooled maximum
  accumulators of all full training windows are computed once; from them the 64 pooled bits for
  any conv5 thresholds are exact. Two variants: the trained thresholds, and a coordinate search
  over them (cross-validated MSE of a linear read-out, ``--no-tune`` to skip). For each, dense1
  ... dense3 are trained on the fixed bits (``--head-steps``, milliseconds a step) with a
  least-squares dense3 at each check; the variant is kept if it validates better. (The joint
  head adapts to crops, whose global max pools see fewer positions; fitted on full windows the
  read-out is far better: the least-squares head on all 824 training windows alone takes the
  teacher-initialized student from test PCC 0.77 to 0.85.)

The binary student's integer export (``dnsmos_bam.npz``, ``dnsmos_bam.json`` with the MOS scale,
the command line, the options and the history) is written to the output folder; the 8-bit
student's is ``dnsmos_int8.npz`` (int8 weights, float32 per-channel weight scales, biases and
activation scales; :func:`int8_forward` scores with it) and ``dnsmos_int8.json``. Figures: Pearson
correlation (PCC) and RMSE in MOS against the teacher on the test clips (a clip's score is the mean
over its windows, as DNSMOS scores clips).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np

from ..torch_extra import exit_if_missing, import_torch

if __name__ == "__main__":
    exit_if_missing()  # without PyTorch: one line on stderr, exit status 2
import_torch()  # imported as a module without PyTorch: TorchMissing, which says how to get it

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from ..golden.bamconv_torch import _RoundSTE  # noqa: E402
from . import student as S  # noqa: E402

__all__ = ["Int8P808", "int8_forward", "warp_positions", "warp_features", "clip_scores",
           "evaluate", "voice_offsets", "split_figures", "evaluate_export", "window_scores",
           "train", "main", "DEFAULTS"]

CONV_NAMES = tuple(n for n, _, _ in S.CONV_LAYERS)
HIDDEN_DENSE = ("dense1", "dense2")

#: The training options of :func:`train` (and the command line) and their defaults.
DEFAULTS = {"lr": 3e-3, "lr_mode": "relative", "bias_lr": 1.0, "batch": 8, "crop": (200, 450),
            "full_frac": 0.15, "mixup": 0.0, "warp": 0.0, "warmup": 0.03, "final_lr": 0.05,
            "clip": 0.0, "val_every": 250, "refit_head": True, "tune_thresholds": True,
            "head_steps": 3000, "head_lr": 1e-2,
            "beta": None, "distill": 0.0, "distill_layers": CONV_NAMES, "ema": 0.0,
            "train_on_val": False, "precision": "float32"}


class _FakeQuantAct(torch.autograd.Function):
    """Unsigned 8-bit activation fake quantization with a straight-through gradient inside
    the range (clamped outside)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x, scale)
        return torch.clamp(torch.round(x / scale), 0, 255) * scale

    @staticmethod
    def backward(ctx, grad):
        x, scale = ctx.saved_tensors
        inside = (x >= 0) & (x <= 255 * scale)
        return grad * inside, None


class Int8P808(nn.Module):
    """The comparison student: the teacher's topology with 8-bit per-channel weights and unsigned
    8-bit activations (ReLU outputs fake-quantized with a per-layer scale calibrated on the
    teacher's activations: the 99.9th percentile / 255; for conv5, whose map is globally max
    pooled, the largest per-window maximum, so the pooled values are not clipped), on the same
    8-bit input. Weights: ``q = clamp(round(w / s), -127, 127)``, ``s = max|w_c| / 127`` per
    output channel (straight-through rounding), so ``q * s`` is exactly what the export holds."""

    def __init__(self, features):
        super().__init__()
        from .teacher import CONV_LAYERS, DENSE_LAYERS, TeacherP808
        self.teacher_layers = [n for n, _, _ in CONV_LAYERS] + [n for n, _ in DENSE_LAYERS]
        self.pools = {n: p for n, _, p in CONV_LAYERS}
        t = TeacherP808()
        for name in self.teacher_layers:
            setattr(self, name, getattr(t, name))
        scales, h = {}, torch.from_numpy(np.asarray(features, np.float32)).unsqueeze(1)
        with torch.no_grad():
            for name, _, pool in CONV_LAYERS:
                h = torch.relu(getattr(t, name)(h))
                if name == "conv5":
                    scales[name] = float(h.amax(dim=(2, 3)).max()) / 255 or 1.0
                else:
                    scales[name] = float(torch.quantile(h.flatten()[::97], 0.999)) / 255 or 1.0
                h = F.max_pool2d(h, 2) if pool else h
            h = h.amax(dim=(2, 3))
            for name, _ in DENSE_LAYERS[:-1]:
                h = torch.relu(getattr(t, name)(h))
                scales[name] = float(torch.quantile(h.flatten(), 0.999)) / 255 or 1.0
        self.register_buffer("act_scale", torch.tensor([scales.get(n, 1.0)
                                                        for n in self.teacher_layers]))

    @staticmethod
    def _wscale(w):
        dims = tuple(range(1, w.ndim))
        return (w.detach().abs().amax(dim=dims, keepdim=True) / 127).clamp_min(1e-12)

    @classmethod
    def _qweight(cls, w):
        s = cls._wscale(w)
        return torch.clamp(_RoundSTE.apply(w / s), -127, 127) * s

    def forward(self, xq):
        h = (xq / S.INPUT_SCALE).unsqueeze(1)
        for i, name in enumerate(self.teacher_layers):
            layer = getattr(self, name)
            w = self._qweight(layer.weight)
            if name.startswith("conv"):
                h = F.conv2d(h, w, layer.bias, padding=1)
            else:
                if h.ndim == 4:
                    h = h.amax(dim=(2, 3))
                h = F.linear(h, w, layer.bias)
            if name == "dense3":
                return h.flatten()
            h = _FakeQuantAct.apply(torch.relu(h), self.act_scale[i])
            if self.pools.get(name):
                h = F.max_pool2d(h, 2)

    @torch.no_grad()
    def export(self):
        """The arrays of the 8-bit student: ``<layer>.weights`` int8 (C_out, C_in, 3, 3) or
        (out, in), ``<layer>.scale`` float32 (C_out,), ``<layer>.bias`` float32, and
        ``act_scale`` float32 (one per layer, in order; dense3's unused)."""
        out = {"act_scale": self.act_scale.numpy().astype(np.float32)}
        for name in self.teacher_layers:
            w = getattr(self, name).weight.detach()
            s = self._wscale(w)
            out[f"{name}.weights"] = torch.clamp(torch.round(w / s), -127, 127).numpy().astype(
                np.int8)
            out[f"{name}.scale"] = s.flatten().numpy().astype(np.float32)
            out[f"{name}.bias"] = getattr(self, name).bias.detach().numpy().astype(np.float32)
        return out


@torch.no_grad()
def int8_forward(params, xq, batch=16):
    """The 8-bit student's MOS of quantized windows ``xq`` (N, T, 120) from its export
    (:meth:`Int8P808.export`): the same float32 operations as its forward."""
    from .teacher import CONV_LAYERS, DENSE_LAYERS
    names = [n for n, _, _ in CONV_LAYERS] + [n for n, _ in DENSE_LAYERS]
    pools = {n: p for n, _, p in CONV_LAYERS}
    act = torch.from_numpy(np.asarray(params["act_scale"], np.float32))
    layers = {}
    for n in names:
        q = torch.from_numpy(np.asarray(params[f"{n}.weights"]).astype(np.float32))
        s = torch.from_numpy(np.asarray(params[f"{n}.scale"], np.float32))
        layers[n] = (q * s.view(-1, *([1] * (q.ndim - 1))),
                     torch.from_numpy(np.asarray(params[f"{n}.bias"], np.float32)))
    out = []
    for i in range(0, len(xq), batch):
        h = (torch.from_numpy(np.asarray(xq[i:i + batch], np.float32)) / S.INPUT_SCALE)
        h = h.unsqueeze(1)
        for k, n in enumerate(names):
            w, b = layers[n]
            if n.startswith("conv"):
                h = F.conv2d(h, w, b, padding=1)
            else:
                if h.ndim == 4:
                    h = h.amax(dim=(2, 3))
                h = F.linear(h, w, b)
            if n == "dense3":
                out.append(h.flatten().double().numpy())
                break
            a = act[k]
            h = torch.clamp(torch.round(torch.relu(h) / a), 0, 255) * a
            if pools.get(n):
                h = F.max_pool2d(h, 2)
    return np.concatenate(out)


def clip_scores(window_scores, clip_index):
    """Mean of the window scores of each clip (clip_index: the clip of each window)."""
    clip_index = np.asarray(clip_index)
    n = int(clip_index.max()) + 1
    return np.bincount(clip_index, weights=window_scores, minlength=n) / np.bincount(
        clip_index, minlength=n)


@torch.no_grad()
def predict(model, xq, batch=16):
    """The model's eval-mode forward on quantized windows (float64 MOS)."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model(torch.from_numpy(np.asarray(xq[i:i + batch], np.float32)).to(dev)).double()
           .cpu().numpy() for i in range(0, len(xq), batch)]
    return np.concatenate(out)


#: Where :func:`_integer_forward32` runs: the CPU, or the training GPU (set by :func:`train`).
_EVAL_DEVICE = [torch.device("cpu")]


@torch.no_grad()
def _integer_forward32(params, xq, batch=16, upto=None):
    """:func:`qhw.dnsmos.student.integer_forward` in float32 (exact: every product and partial
    sum is an integer of magnitude below 2**24, conv1's 9 * 127 * 127 the largest), in batches.
    On a GPU (``_EVAL_DEVICE``) with TF32 off; cuDNN may still pick FFT or Winograd
    convolutions, which round, so figures meant to be exact are recomputed on the CPU.
    Returns dense3's sums (int64), or with ``upto="conv5"`` / ``"dense2"`` that layer's
    (globally pooled) bits (N, 64) float32, or with ``upto="conv5acc"`` the global maximum of
    each channel of conv5's accumulator (N, 64) int64 (its bit: ``>= thresholds - bias``)."""
    dev = _EVAL_DEVICE[0]
    if dev.type != "cpu":
        batch = max(batch, 64)

    def as_t(a):
        return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(dev)
    conv = [(n, as_t(params[f"{n}.weights"]),
             as_t(np.asarray(params[f"{n}.thresholds"]) - np.asarray(params[f"{n}.bias"])).view(
                 1, -1, 1, 1), pool) for n, _, pool in S.CONV_LAYERS]
    dense = [(n, as_t(params[f"{n}.weights"]), as_t(params[f"{n}.bias"]),
              as_t(params[f"{n}.thresholds"]) if n != "dense3" else None)
             for n, _ in S.DENSE_LAYERS]
    out = []
    for i in range(0, len(xq), batch):
        h = as_t(xq[i:i + batch]).unsqueeze(1)
        for n, w, t, pool in conv:
            acc = F.conv2d(h, w, padding=1)
            if upto == "conv5acc" and n == "conv5":
                h = acc
                break
            h = (acc >= t).float()
            if pool:
                h = S.max_pool2x2(h)
        h = h.amax(dim=(2, 3))
        for n, w, b, t in dense:
            if upto in ("conv5", "conv5acc") or (n == "dense3" and upto == "dense2"):
                break
            acc = h @ w.T + b
            if n == "dense3":
                h = acc[:, 0]
                break
            h = (acc >= t).float()
        h = h.cpu()
        out.append(h.numpy() if upto in ("conv5", "dense2") else
                   h.double().numpy().astype(np.int64))
    return np.concatenate(out)


def voice_offsets(pred_clips, teacher_clips, voices):
    """Mean error (student - teacher, MOS) of the clips of each voice, and the RMSE left once
    each clip's voice offset is taken out: how much of a split's error is a per-voice bias."""
    err = np.asarray(pred_clips, float) - np.asarray(teacher_clips, float)
    voices = np.asarray(voices)
    offsets = {str(v): float(err[voices == v].mean()) for v in sorted(set(voices.tolist()))}
    rest = err - np.array([offsets[str(v)] for v in voices])
    return offsets, float(np.sqrt(np.mean(rest ** 2)))


def split_figures(pred_clips, teacher_clips, part):
    """:func:`evaluate` of a split's clip scores, with :func:`voice_offsets` (``voice_offsets``,
    ``rmse_without_voice_offsets``) where the split's clips name their voices (``part.meta``,
    one per clip: not in a run on the first windows only)."""
    out = evaluate(pred_clips, teacher_clips)
    meta = getattr(part, "meta", None)
    if meta and len(meta) == out["clips"]:
        offsets, rest = voice_offsets(pred_clips, teacher_clips, [m["voice"] for m in meta])
        out.update(voice_offsets=offsets, rmse_without_voice_offsets=rest)
    return out


def evaluate_export(npz_path, splits=("val", "test"), corpus=None, corpus_size="default"):
    """PCC and RMSE against the teacher of a binary student's integer export (``dnsmos_bam.npz``
    with ``mos_scale`` in the ``.json`` beside it) on this machine's corpus, on the CPU in exact
    float32: how a student trained elsewhere (another machine's corpus differs in the breathy
    voices' clips) is scored before it is shipped. Figures: :func:`split_figures`."""
    npz_path = os.fspath(npz_path)
    with np.load(npz_path) as f:
        params = {k: f[k] for k in f.files}
    with open(os.path.splitext(npz_path)[0] + ".json") as f:
        scale = float(json.load(f)["mos_scale"])
    if corpus is None:
        from .corpus import build_corpus
        corpus = build_corpus(size=corpus_size, progress=False)
    saved, _EVAL_DEVICE[0] = _EVAL_DEVICE[0], torch.device("cpu")
    try:
        out = {}
        for name in splits:
            _, xq, _, clip, labels = _split(corpus, name)
            pred = clip_scores(S.mos_from_sum(_integer_forward32(params, xq), scale), clip)
            out[name] = split_figures(pred, labels, getattr(corpus, name))
    finally:
        _EVAL_DEVICE[0] = saved
    return out


def window_scores(model, xq):
    """Eval-mode MOS of each quantized window: the binary student through its exported integers
    (:func:`_integer_forward32`, equal to its eval forward), the 8-bit one by its forward."""
    was_training = model.training
    if isinstance(model, S.BinaryP808):
        params, scale = S.export_params(model)
        out = S.mos_from_sum(_integer_forward32(params, xq), scale)
    else:
        out = predict(model, xq)
    model.train(was_training)
    return out


def evaluate(pred_clips, teacher_clips):
    """PCC and RMSE (MOS) of clip scores against the teacher's (PCC 0 for a constant
    prediction)."""
    pred, ref = np.asarray(pred_clips, float), np.asarray(teacher_clips, float)
    constant = np.ptp(pred) == 0 or np.ptp(ref) == 0
    return {"pcc": 0.0 if constant else float(np.corrcoef(pred, ref)[0, 1]),
            "rmse": float(np.sqrt(np.mean((pred - ref) ** 2))), "clips": int(len(ref))}


def _split(corpus, name, limit=None):
    part = getattr(corpus, name)
    feats = np.asarray(part.features[:limit] if limit else part.features, np.float32)
    clip = np.asarray(part.clip_index[:limit] if limit else part.clip_index)
    labels = np.asarray(part.labels, np.float64)
    if limit:
        clip, labels = _renumber(clip, labels)
    wl = np.asarray(part.window_labels[:len(feats)], np.float64)
    return feats, S.quantize_features(feats).astype(np.float32), wl, clip, labels


def _renumber(clip, labels):
    """Clips present in a truncated split, renumbered 0..K-1 (a truncated clip keeps its label,
    the mean of all its windows; only for quick runs)."""
    keep, inv = np.unique(clip, return_inverse=True)
    return inv.astype(np.int64), labels[keep]


def _ridge_head(a, labels, ridge=1e-2):
    a1 = np.hstack([np.asarray(a, np.float64), np.ones((len(a), 1))])
    return np.linalg.solve(a1.T @ a1 + ridge * np.eye(a1.shape[1]), a1.T @ labels)


@torch.no_grad()
def _set_head(model, coef):
    model.dense3.weight.copy_(torch.from_numpy(coef[:-1]).view(1, -1, 1, 1).float())
    model.dense3.bias.copy_(torch.tensor([coef[-1]]).float())


@torch.no_grad()
def _fit_head(model, xq, labels, ridge=1e-2):
    """Least-squares dense3 (weights and bias) on the binary dense2 outputs of ``xq``: the
    hidden layers keep their bits, the head becomes the best linear read-out of them."""
    was_training = model.training
    params, _ = S.export_params(model)
    _set_head(model, _ridge_head(_integer_forward32(params, xq, upto="dense2"), labels, ridge))
    model.train(was_training)





@torch.no_grad()
def _dense_eval(model, bits, upto=None):
    """Eval forward of the dense layers on conv5's pooled bits (N, 64): the MOS (float64), or
    with ``upto="dense2"`` dense2's bits. Equal to the exported integers' (BamConv2d eval)."""
    was_training = model.training
    model.eval()
    h = torch.from_numpy(np.asarray(bits, np.float32)).view(len(bits), -1, 1, 1)
    for name in HIDDEN_DENSE:
        h = getattr(model, name)(h)
    out = h.flatten(1).numpy() if upto == "dense2" else \
        model.dense3(h).flatten().double().numpy()
    model.train(was_training)
    return out


def _dense_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k.split(".")[0] in HIDDEN_DENSE + ("dense3",)}


def _train_dense(model, btr, ytr, bva, cva, lva, steps, lr, seed, batch=32, every=250,
                 ridge=1.0):
    """Train dense1 ... dense3 on fixed conv5 bits of the full training windows (``btr``, each
    step a few milliseconds), from the least-squares dense3; at every ``every`` steps the dense3
    is refitted by least squares for a check on the validation bits ``bva``, and the best
    check is kept (the model is left with it). Returns (validation figures, step)."""
    def check():
        return evaluate(clip_scores(_dense_eval(model, bva), cva), lva)

    _set_head(model, _ridge_head(_dense_eval(model, btr, "dense2"), ytr, ridge))
    v = check()
    best = (v, 0, _dense_state(model))
    if steps <= 0:
        return v, 0
    groups = [g for g in _param_groups(model, lr, "relative", 1.0)
              if g["name"].split(".")[0] in HIDDEN_DENSE + ("dense3",)]
    opt = torch.optim.Adam(groups)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.asarray(btr, np.float32)).view(len(btr), -1, 1, 1)
    y = torch.from_numpy(np.asarray(ytr, np.float32))
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * _lr_factor(step / steps, 0.03, 0.05)
        idx = torch.from_numpy(rng.choice(len(btr), min(batch, len(btr)), replace=False))
        model.train()
        h = x[idx]
        for name in HIDDEN_DENSE:
            layer = getattr(model, name)
            h = S.heaviside_superspike(F.conv2d(h, layer.fake_weight()) +
                                       layer.bias.view(1, -1, 1, 1), layer.beta)
        loss = F.mse_loss(model.dense3(h).flatten(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            live = _dense_state(model)
            _set_head(model, _ridge_head(_dense_eval(model, btr, "dense2"), ytr, ridge))
            v = check()
            if v["rmse"] < best[0]["rmse"]:
                best = (v, step, _dense_state(model))
            model.load_state_dict(live, strict=False)
    model.load_state_dict(best[2], strict=False)
    return best[0], best[1]


def _cv_mse(x, y, ridge=1.0, folds=5):
    """K-fold (interleaved) cross-validated MSE of the ridge read-out of ``x``."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    fold = np.arange(len(x)) % folds
    err = 0.0
    for f in range(folds):
        tr, te = fold != f, fold == f
        coef = np.linalg.solve(x1[tr].T @ x1[tr] + ridge * np.eye(x1.shape[1]),
                               x1[tr].T @ y[tr])
        err += float(np.sum((x1[te] @ coef - y[te]) ** 2))
    return err / len(x)


def _tune_thresholds(maxacc, y, thresholds, candidates=17, ridge=1.0):
    """One coordinate sweep over conv5's 64 integer thresholds: for each channel, the candidate
    (quantiles of its pooled maximum accumulator ``maxacc`` over the training windows, or the
    current one) whose bits give the least cross-validated MSE of a linear read-out. The pooled
    bit is ``maxacc >= threshold``, so this is exact for the full windows."""
    t = np.asarray(thresholds, np.int64).copy()
    x = (maxacc >= t).astype(np.float64)
    q = np.linspace(0.03, 0.97, candidates)
    for c in range(maxacc.shape[1]):
        best = (_cv_mse(x, y, ridge), t[c])
        for cand in np.unique(np.round(np.quantile(maxacc[:, c], q)).astype(np.int64)):
            x[:, c] = maxacc[:, c] >= cand
            e = _cv_mse(x, y, ridge)
            if e < best[0]:
                best = (e, cand)
        t[c] = best[1]
        x[:, c] = maxacc[:, c] >= t[c]
    return t


@torch.no_grad()
def _set_thresholds(layer, thresholds):
    """Bias of a threshold layer such that its exported integer thresholds are ``thresholds``
    (the pre-activation ``scale * acc + bias`` crosses 0 half-way between t - 1 and t)."""
    s = layer.scale().double()
    layer.bias.copy_((-(torch.as_tensor(thresholds, dtype=torch.float64) - 0.5) * s).float())


def _param_groups(model, lr, mode, bias_lr):
    """Adam groups: one per tensor, ``lr`` times its initial mean magnitude in relative mode,
    ``lr`` in absolute mode; biases times ``bias_lr``."""
    groups = []
    for name, p in model.named_parameters():
        base = lr * (float(p.detach().abs().mean()) or 1.0) if mode == "relative" else lr
        if name.endswith("bias"):
            base *= bias_lr
        groups.append({"params": [p], "lr": base, "base_lr": base, "name": name})
    return groups


def _lr_factor(frac, warmup, final):
    """Linear warm-up over ``warmup`` of the budget, then cosine decay to ``final``."""
    if warmup > 0 and frac < warmup:
        return max(frac / warmup, 1e-3)
    t = min(max((frac - warmup) / max(1 - warmup, 1e-9), 0.0), 1.0)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def _teacher_forward(teacher, x, collect=False):
    """The teacher's MOS of float features x (N, T, 120); with ``collect`` also each layer's
    pre-activation, max pooled where the student's is (max pool and ReLU commute)."""
    pre = {}
    h = x.unsqueeze(1)
    for name, _, pool in S.CONV_LAYERS:
        p = getattr(teacher, name)(h)
        if pool:
            p = S.max_pool2x2(p)
        elif name == "conv5":
            p = p.amax(dim=(2, 3), keepdim=True)
        pre[name] = p
        h = torch.relu(p)
    h = h.flatten(1)
    for name, _ in S.DENSE_LAYERS[:-1]:
        p = getattr(teacher, name)(h)
        pre[name] = p.view(*p.shape, 1, 1)
        h = torch.relu(p)
    out = teacher.dense3(h).flatten()
    return (out, pre) if collect else out


#: VTLP's boundary frequency (Hz; Jaitly & Hinton 2013, "Vocal tract length perturbation
#: (VTLP) improves speech recognition", ICML workshop, with 16 kHz audio as here): below it a
#: warp scales every frequency by alpha, above it a straight line keeps the Nyquist frequency.
WARP_F_HI = 4800.0


def warp_positions(alpha, f_hi=WARP_F_HI):
    """The fractional mel band that each band of a warped window reads, (len(alpha), N_MELS).

    VTLP maps frequency ``f`` to ``alpha f`` up to ``f_hi * min(alpha, 1) / alpha`` and then
    linearly to the Nyquist frequency; band ``k`` of the warped window holds the spectrum at the
    frequency that maps to its centre. The bands are uniform in Slaney's mel scale (the DNSMOS
    features', :mod:`qhw.dnsmos.features`), whose area-normalized filters measure power per Hz,
    so a band's value is (about) the spectrum at its centre."""
    from .features import N_MELS, SAMPLE_RATE, hz_to_mel, mel_points, mel_to_hz
    nyq = SAMPLE_RATE / 2
    mel = mel_points()[1:-1]  # the band centres
    centre = mel_to_hz(mel)[None, :]
    a = np.asarray(alpha, np.float64).reshape(-1, 1)
    bend = f_hi * np.minimum(a, 1.0)  # the bend, in warped frequency
    source = np.where(centre <= bend, centre / a,
                      nyq - (nyq - centre) * (nyq - bend / a) / (nyq - bend))
    return np.clip((hz_to_mel(source) - mel[0]) / (mel[1] - mel[0]), 0, N_MELS - 1)


def warp_features(x, alpha):
    """Windows ``x`` (B, frames, N_MELS) with each one's spectrum warped by its factor
    ``alpha[b]`` (:func:`warp_positions`), linearly interpolated between bands (float32)."""
    pos = warp_positions(alpha)
    lo = np.minimum(np.floor(pos).astype(np.int64), pos.shape[1] - 2)
    w = (pos - lo)[:, None, :]
    below = np.take_along_axis(x, lo[:, None, :], axis=2)
    above = np.take_along_axis(x, lo[:, None, :] + 1, axis=2)
    return (below * (1 - w) + above * w).astype(np.float32)


def _quantize_t(x):
    return torch.clamp(torch.round(x.double() * S.INPUT_SCALE), -S.INPUT_SCALE,
                       S.INPUT_SCALE).float()


#: The options of the dense stage (command-line flag, option name), which --train-on-val lacks.
DENSE_STAGE_OPTIONS = (("--head-steps", "head_steps"), ("--head-lr", "head_lr"),
                       ("--no-tune", "tune_thresholds"))


def _check_options(o, given, kind):
    """One-line QhwInputError for a bad option value (the names are the command line's).
    ``given``: the option names the caller set explicitly; ``kind``: the student."""
    from ..errors import QhwInputError

    def bad(flag, what, value):
        raise QhwInputError(f"{flag}: must be {what}, got {value!r}")

    if not (isinstance(o["lr"], (int, float)) and o["lr"] > 0 and math.isfinite(o["lr"])):
        bad("--lr", "a finite number > 0", o["lr"])
    if o["lr_mode"] not in ("relative", "absolute"):
        bad("--lr-mode", "'relative' or 'absolute'", o["lr_mode"])
    if not o["bias_lr"] > 0:
        bad("--bias-lr", "> 0", o["bias_lr"])
    if not (isinstance(o["batch"], int) and o["batch"] >= 1):
        bad("--batch", "an integer >= 1", o["batch"])
    lo, hi = o["crop"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 8 <= lo <= hi):
        bad("--crop", "two integers LO HI with 8 <= LO <= HI (frames)", list(o["crop"]))
    if not 0 <= o["full_frac"] <= 1:
        bad("--full-frac", "in [0, 1]", o["full_frac"])
    if not 0 <= o["mixup"] <= 1:
        bad("--mixup", "in [0, 1]", o["mixup"])
    if not 0 <= o["warp"] <= 0.3:
        bad("--warp", "in [0, 0.3] (the largest relative frequency warp)", o["warp"])
    if not 0 <= o["warmup"] < 1:
        bad("--warmup", "in [0, 1)", o["warmup"])
    if not 0 <= o["final_lr"] <= 1:
        bad("--final-lr", "in [0, 1]", o["final_lr"])
    if not o["clip"] >= 0:
        bad("--clip", ">= 0 (0: no clipping)", o["clip"])
    if not (isinstance(o["val_every"], int) and o["val_every"] >= 1):
        bad("--val-every", "an integer >= 1 (steps)", o["val_every"])
    if o["beta"] is not None and not o["beta"] > 0:
        bad("--beta", "> 0", o["beta"])
    if not (isinstance(o["head_steps"], int) and o["head_steps"] >= 0):
        bad("--head-steps", "an integer >= 0", o["head_steps"])
    if not o["head_lr"] > 0:
        bad("--head-lr", "> 0", o["head_lr"])
    if not o["distill_layers"] or set(o["distill_layers"]) - set(CONV_NAMES + HIDDEN_DENSE):
        bad("--distill-layers", "a comma list of " + ", ".join(CONV_NAMES + HIDDEN_DENSE),
            ",".join(o["distill_layers"]))
    if not o["distill"] >= 0:
        bad("--distill", ">= 0", o["distill"])
    if not 0 <= o["ema"] < 1:
        bad("--ema", "in [0, 1)", o["ema"])
    if o["precision"] not in ("float32", "bfloat16"):
        bad("--precision", "'float32' or 'bfloat16'", o["precision"])
    if o["precision"] != "float32" and kind != "binary":
        # The 8-bit student's activation fake quantization divides by its scale and rounds:
        # in bfloat16 (8 significant bits) codes above 128 would lose their last bit.
        raise QhwInputError(f"--precision: {o['precision']} is for --student binary only; the "
                            f"8-bit student trains in float32")
    if not isinstance(o["train_on_val"], bool):
        bad("--train-on-val", "True or False", o["train_on_val"])
    if o["train_on_val"]:
        # It has no dense stage (each variant is kept only if it validates better, and nothing
        # is held out): an option of that stage would be dropped without a word, even one
        # given at its default value.
        dense = [flag for flag, key in DENSE_STAGE_OPTIONS if key in given]
        if dense:
            raise QhwInputError(f"--train-on-val: has no dense stage, so it cannot be combined "
                                f"with {', '.join(dense)}")


def train(kind="binary", minutes=45.0, corpus=None, seed=0, lr=None, batch=None, progress=True,
          threads=1, log=print, max_windows=None, steps=None, device="cpu", corpus_size="default",
          **options):
    """Train a student within ``minutes`` of wall clock (or for ``steps`` steps); returns
    (model, figures).

    Parameters
    ----------
    kind : "binary" or "int8"
    minutes : float
        The budget: training, validations and the dense stage (the test scoring after it is
        not counted).
    corpus : object with .train/.val/.test splits, or None (the cached corpus of
        ``corpus_size``: "default", "large" or "wide", :data:`qhw.dnsmos.corpus.SIZES`)
    device : str
        Where the training steps run ("cpu", or "cuda" on a machine with a GPU). Validation,
        the dense stage and the test scoring always run on the CPU, in exact float32 (a GPU's
        TF32 convolutions would round the integer sums).
    threads : int or None
        ``torch.set_num_threads`` (None: leave PyTorch's setting).
    max_windows : int or None
        Use only the first windows of each split (quick runs and tests).
    steps : int or None
        A step budget instead of a time budget: exactly this many optimizer steps, the
        schedule (warmup, decay, the full-window phase) measured in steps, so a run does the
        same work on any machine. ``minutes`` then only caps the wall clock.
    options
        :data:`DEFAULTS`'s keys (``lr``, ``batch`` also positional): learning rate and mode,
        crops, mixup, frequency warp, schedule, clipping, validation interval, the dense stage
        (on/off, threshold search, steps, rate), surrogate beta (None: the student's), intermediate
        distillation weight and layers, EMA of the weights, ``train_on_val``, ``precision``
        of the binary student's training steps ("float32" or "bfloat16").

    The state with the best validation RMSE (clip scores) is kept: a validation during
    training, or the final state after the dense stage. With ``train_on_val`` the validation
    windows join the training windows (more voices and sentences to learn from, once a recipe
    has been chosen on the validation split): nothing is held out to choose a state by, so the
    final state (its EMA, if any) is kept and there is no dense stage; the validation figures
    are then figures on trained-on windows, and only the test split is unseen."""
    from tqdm import tqdm
    from .corpus import build_corpus
    from .teacher import TeacherP808
    from ..errors import QhwInputError
    o = dict(DEFAULTS)
    unknown = set(options) - set(o)
    if unknown:
        raise TypeError(f"train: unknown options {sorted(unknown)}")
    o.update(options)
    if lr is not None:
        o["lr"] = lr
    if batch is not None:
        o["batch"] = batch
    o["crop"] = tuple(o["crop"])
    if kind not in ("binary", "int8"):
        raise QhwInputError(f"--student: must be 'binary' or 'int8', got {kind!r}")
    if not minutes > 0:
        raise QhwInputError(f"--minutes: must be > 0, got {minutes!r}")
    if steps is not None and not (isinstance(steps, int) and steps >= 1):
        raise QhwInputError(f"--steps: must be an integer >= 1, got {steps!r}")
    # The options given by name are known here, so a dense-stage option given at its default
    # value is seen too (--train-on-val refuses it).
    _check_options(o, given=set(options), kind=kind)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    t_begin = time.monotonic()
    if corpus is None:
        corpus = build_corpus(size=corpus_size, progress=progress)
    else:
        corpus_size = "given"
    device = torch.device(device)
    if device.type == "cuda":
        # Plain float32 on the GPU too: TF32 would round the convolutions' sums.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    _EVAL_DEVICE[0] = device
    ftr, xtr, ytr, _, _ = _split(corpus, "train", max_windows)
    fva, xva, yva, cva, lva = _split(corpus, "val", max_windows)
    if o["train_on_val"]:
        ftr, xtr, ytr = (np.concatenate(pair) for pair in ((ftr, fva), (xtr, xva), (ytr, yva)))
        o["refit_head"] = False  # its variants are kept only if they validate better
    _, xte, _, cte, lte = _split(corpus, "test", max_windows)
    n, frames = len(xtr), xtr.shape[1]
    rng = np.random.default_rng(seed)
    calib = ftr[np.random.default_rng(seed).choice(n, min(32, n), False)]
    teacher = TeacherP808()
    for p in teacher.parameters():
        p.requires_grad_(False)
    if kind == "binary":
        model = S.init_from_teacher(S.BinaryP808(), calib)
        if o["beta"] is not None:
            for m in model.modules():
                if isinstance(m, S.BamConv2d):
                    m.beta = float(o["beta"])
        # Thresholds the init placed on the teacher's pre-activations (distillation targets).
        theta = {name: (getattr(teacher, name).bias - getattr(model, name).bias).detach()
                 .view(1, -1, 1, 1) for name in [c for c, _, _ in S.CONV_LAYERS] + [
                     d for d, _ in S.DENSE_LAYERS[:-1]]}
        fit = np.random.default_rng(seed + 1).choice(n, min(128, n), False)
        _fit_head(model, xtr[fit], ytr[fit], ridge=1.0)
    else:
        model = Int8P808(calib)
    model.to(device)
    teacher.to(device)
    if kind == "binary":
        theta = {k: t.to(device) for k, t in theta.items()}
    opt = torch.optim.Adam(_param_groups(model, o["lr"], o["lr_mode"], o["bias_lr"]))
    ema = ({k: v.detach().clone() for k, v in model.state_dict().items()}
           if o["ema"] else None)
    history, n_val = [], [0]

    def snapshot():
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def validate(state=None):
        t0 = time.monotonic()
        on_cpu = next(model.parameters()).device.type == "cpu"
        live = None
        if on_cpu:
            m = model
            if state is not None:
                live = snapshot()
                m.load_state_dict(state)
        else:  # a CPU copy (exact float32), the training state left where it is
            m = copy.deepcopy(model).to("cpu")
            if state is not None:
                m.load_state_dict(state)
        v = evaluate(clip_scores(window_scores(m, xva), cva), lva)
        if live is not None:
            model.load_state_dict(live)
        n_val[0] += 1
        return v, time.monotonic() - t0

    v, t_val = validate()
    init = {"val_pcc": v["pcc"], "val_rmse": v["rmse"]}
    history.append({"step": 0, "minutes": round((time.monotonic() - t_begin) / 60, 3),
                    "phase": "init", **{f"val_{k}": x for k, x in v.items()}})
    log(f"init: validation PCC {v['pcc']:.3f}, RMSE {v['rmse']:.3f} ({t_val:.1f} s)")
    init_state = snapshot()
    best = {"rmse": v["rmse"], "state": init_state, "step": 0, "source": "init"}
    budget = 60.0 * minutes
    # The dense stage at the end scores every training and validation window once (about
    # n / n_val + 1 validations) and trains the dense layers: keep time for it.
    reserve = (t_val * (len(xtr) / max(len(xva), 1) + 1.2) + 0.006 * o["head_steps"] * (
        2 if o["tune_thresholds"] else 1) + (0.07 * len(xtr) if o["tune_thresholds"] else 0)
               if kind == "binary" and o["refit_head"] else 0.0)
    train_end = t_begin + budget - reserve
    t_start = time.monotonic()
    span = max(train_end - t_start, 1e-6)
    bar = tqdm(total=int(budget), unit="s", disable=not progress, desc=f"train {kind}")
    step, seen, losses, order = 0, 0, [], np.empty(0, np.int64)
    phase = "crop"
    lo, hi = o["crop"]

    def next_indices(k):
        nonlocal order
        if len(order) < k:
            order = np.concatenate([order, rng.permutation(n)])
        idx, order = order[:k], order[k:]
        return idx

    def record(ph):
        src = ema if ema is not None else None
        v, _ = validate(src)
        entry = {"step": step, "minutes": round((time.monotonic() - t_begin) / 60, 3),
                 "phase": ph, "epochs": round(seen / n, 2),
                 "train_mse": float(np.mean(losses)) if losses else None,
                 "lr_factor": round(_lr_factor(progress_fraction(time.monotonic()),
                                               o["warmup"], o["final_lr"]), 4),
                 **{f"val_{k}": x for k, x in v.items()}}
        history.append(entry)
        log(f"step {step} ({ph}, {entry['minutes']:.1f} min): train MSE "
            f"{entry['train_mse'] if entry['train_mse'] is None else round(entry['train_mse'], 4)}"
            f", validation PCC {v['pcc']:.3f}, RMSE {v['rmse']:.3f}")
        if v["rmse"] < best["rmse"] and not o["train_on_val"]:
            best.update(rmse=v["rmse"], state=src if src is not None else snapshot(),
                        step=step, source="train")
            if src is not None:
                best["state"] = {k: x.clone() for k, x in src.items()}
        losses.clear()

    def progress_fraction(now):
        return step / steps if steps else (now - t_start) / span

    low_precision = o["precision"] == "bfloat16"
    model.train()
    while True:
        now = time.monotonic()
        if (steps and step >= steps) or (not steps and now >= train_end) or (
                steps and now >= t_begin + budget):
            break
        frac = progress_fraction(now)
        new_phase = "full" if frac >= 1 - o["full_frac"] or lo >= frames else "crop"
        if new_phase != phase and step > 0:
            record(phase)  # the end of the crop phase
        phase = new_phase
        factor = _lr_factor(frac, o["warmup"], o["final_lr"])
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
        idx = next_indices(o["batch"])
        if phase == "crop":
            length = int(rng.integers(lo, min(hi, frames) + 1))
            offs = rng.integers(0, frames - length + 1, size=len(idx))
            xf = torch.from_numpy(np.stack([ftr[i, s:s + length] for i, s in zip(idx, offs)]))
            xs = torch.from_numpy(np.stack([xtr[i, s:s + length] for i, s in zip(idx, offs)]))
        else:
            xf, xs = torch.from_numpy(ftr[idx]), torch.from_numpy(xtr[idx])
        warped = o["warp"] > 0
        if warped:
            xf = torch.from_numpy(warp_features(xf.numpy(), rng.uniform(
                1 - o["warp"], 1 + o["warp"], len(idx))))
            xs = _quantize_t(xf)
        xf, xs = xf.to(device), xs.to(device)
        relabel = warped  # features the stored labels do not describe: the teacher labels them
        if o["mixup"] > 0:
            mix = torch.from_numpy(rng.random(len(idx)) < o["mixup"]).to(device)
            if bool(mix.any()):
                lam = torch.from_numpy(rng.uniform(0.2, 0.8, len(idx)).astype(np.float32)
                                       ).to(device)
                partner = xf[torch.from_numpy(rng.permutation(len(idx))).to(device)]
                lam = torch.where(mix, lam, torch.ones_like(lam)).view(-1, 1, 1)
                xf = lam * xf + (1 - lam) * partner
                xs = torch.where(mix.view(-1, 1, 1), _quantize_t(xf), xs)
                relabel = True
        need_maps = kind == "binary" and o["distill"] > 0
        if phase == "crop" or relabel or need_maps:
            target = _teacher_forward(teacher, xf, collect=need_maps)
            if need_maps:
                target, tmaps = target
        else:
            target = torch.from_numpy(ytr[idx]).float().to(device)
        # The student's forward and backward in bfloat16 where asked (the teacher's labels,
        # the loss, the weights and their updates stay float32).
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low_precision):
            if need_maps:
                pred, smaps = model.train_forward(xs, collect=True)
            else:
                pred = model(xs)
        loss = F.mse_loss(pred.float(), target.float())
        total = loss
        if need_maps:
            aux = 0.0
            for name in o["distill_layers"]:
                p = smaps[name].float()
                bit = (tmaps[name] - theta[name] >= 0).float()
                aux = aux + F.binary_cross_entropy_with_logits(
                    p * getattr(model, name).beta, bit)
            total = loss + o["distill"] * aux / len(o["distill_layers"])
        opt.zero_grad(set_to_none=True)
        total.backward()
        if o["clip"] > 0:
            nn.utils.clip_grad_norm_(model.parameters(), o["clip"])
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].mul_(o["ema"]).add_(v.detach(), alpha=1 - o["ema"])
        step += 1
        seen += len(idx)
        losses.append(loss.item())
        bar.n = min(int(time.monotonic() - t_begin), bar.total)
        bar.set_postfix(step=step, phase=phase, loss=f"{np.mean(losses[-20:]):.3f}",
                        lr=f"{factor:.2f}")
        if step % o["val_every"] == 0:
            record(phase)
    if losses or step == 0:
        record(phase)
    if o["train_on_val"]:
        final = ema if ema is not None else snapshot()
        best.update(rmse=history[-1]["val_rmse"], step=step,
                    state={k: x.clone() for k, x in final.items()},
                    source="final (validation windows trained on)")
    # From here on everything runs on the CPU (exact float32 integer sums).
    model.to("cpu")
    best["state"] = {k: v.to("cpu") for k, v in best["state"].items()}
    head = None
    if kind == "binary" and o["refit_head"]:
        # The final state (the end of the decay): conv5's bits of the full training windows,
        # the dense layers trained on them (least-squares dense3); kept if it validates better.
        t0 = time.monotonic()
        params, _ = S.export_params(model)
        model.train()
        atr = _integer_forward32(params, xtr, upto="conv5acc")
        ava = _integer_forward32(params, xva, upto="conv5acc")
        trained_t = params["conv5.thresholds"] - params["conv5.bias"]
        variants = [("trained", trained_t)]
        if o["tune_thresholds"]:
            variants.append(("tuned", _tune_thresholds(atr, ytr, trained_t)))
        start, head = snapshot(), {}
        for label, thr in variants:
            model.load_state_dict(start)
            _set_thresholds(model.conv5, thr)
            v, hstep = _train_dense(model, (atr >= thr).astype(np.float32), ytr,
                                    (ava >= thr).astype(np.float32), cva, lva,
                                    o["head_steps"], o["head_lr"], seed)
            kept = v["rmse"] < best["rmse"]
            head[label] = {"val_pcc": v["pcc"], "val_rmse": v["rmse"], "dense_steps": hstep,
                           "kept": kept}
            log(f"conv5 thresholds {label}, dense layers on conv5 bits of {len(xtr)} training "
                f"windows ({hstep} steps kept): validation PCC {v['pcc']:.3f}, RMSE "
                f"{v['rmse']:.3f} ({'kept' if kept else 'not kept'})")
            if kept:
                for other in head.values():
                    other["kept"] = False
                head[label]["kept"] = True
                best.update(rmse=v["rmse"], state=snapshot(), step=step,
                            source=f"final+{label} thresholds+dense")
        head["seconds"] = round(time.monotonic() - t0, 1)
    model.load_state_dict(best["state"])
    bar.n = min(int(time.monotonic() - t_begin), bar.total)
    bar.close()
    train_minutes = (time.monotonic() - t_begin) / 60
    val, _ = validate()
    test = split_figures(clip_scores(window_scores(model, xte), cte), lte, corpus.test)
    final = snapshot()
    model.load_state_dict(init_state)
    t = evaluate(clip_scores(window_scores(model, xte), cte), lte)
    init.update(test_pcc=t["pcc"], test_rmse=t["rmse"])
    model.load_state_dict(final)
    figures = {"student": kind, "minutes": minutes, "step_budget": steps,
               "train_minutes": round(train_minutes, 3),
               "threads": torch.get_num_threads(), "device": str(device),
               "corpus": {"size": corpus_size, "key": getattr(corpus, "key", None)},
               "seed": seed, "steps": step,
               "epochs": round(seen / n, 2), "train_windows": int(n),
               "options": {k: (list(x) if isinstance(x, tuple) else x) for k, x in o.items()},
               "init": init, "best": {"step": best["step"], "source": best["source"]},
               "dense_stage": head, "test": test, "validation": val, "history": history}
    return model, figures


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``<prog>: error: <message>``, exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _parser():
    ap = _Parser(prog="python -m qhw.dnsmos.train", description=__doc__.split("\n\n")[0])
    d = DEFAULTS
    ap.add_argument("--student", choices=("binary", "int8"), default="binary")
    ap.add_argument("--minutes", type=float, default=45.0, help="wall-clock budget (45)")
    ap.add_argument("--steps", type=int, default=None,
                    help="a step budget instead (the same work on any machine; --minutes "
                         "then only caps the wall clock)")
    ap.add_argument("--lr", type=float, default=d["lr"],
                    help="peak learning rate; relative mode: a step of lr times each tensor's "
                         "initial mean magnitude (%(default)s)")
    ap.add_argument("--lr-mode", choices=("relative", "absolute"), default=d["lr_mode"])
    ap.add_argument("--bias-lr", type=float, default=d["bias_lr"],
                    help="biases/thresholds: this times the weights' rate (%(default)s)")
    ap.add_argument("--batch", type=int, default=d["batch"])
    ap.add_argument("--crop", type=int, nargs=2, default=list(d["crop"]), metavar=("LO", "HI"),
                    help="random crop length in frames (%(default)s)")
    ap.add_argument("--full-frac", type=float, default=d["full_frac"],
                    help="share of the budget on full 900-frame windows at the end "
                         "(%(default)s)")
    ap.add_argument("--mixup", type=float, default=d["mixup"],
                    help="share of each batch mixed with another window (%(default)s)")
    ap.add_argument("--warp", type=float, default=d["warp"],
                    help="frequency warp (VTLP): each window's spectrum scaled in frequency by "
                         "a factor in [1 - W, 1 + W], labelled by the teacher; 0: none "
                         "(%(default)s)")
    ap.add_argument("--warmup", type=float, default=d["warmup"],
                    help="share of the budget of linear warm-up (%(default)s)")
    ap.add_argument("--final-lr", type=float, default=d["final_lr"],
                    help="cosine decay to this times the peak (%(default)s)")
    ap.add_argument("--clip", type=float, default=d["clip"],
                    help="gradient-norm clipping, 0: none (%(default)s)")
    ap.add_argument("--val-every", type=int, default=d["val_every"],
                    help="validate every N steps (%(default)s)")
    ap.add_argument("--no-refit", dest="refit_head", action="store_false",
                    help="no dense stage at the end (dense layers on fixed conv5 bits)")
    ap.add_argument("--no-tune", dest="tune_thresholds", action="store_false",
                    default=argparse.SUPPRESS,
                    help="in the dense stage, keep conv5's trained thresholds only (default: "
                         "also a cross-validated coordinate search over them, kept if it "
                         "validates better)")
    ap.add_argument("--head-steps", type=int, default=argparse.SUPPRESS,
                    help="steps of the dense stage, 0: least-squares dense3 only "
                         f"({d['head_steps']})")
    ap.add_argument("--head-lr", type=float, default=argparse.SUPPRESS,
                    help=f"relative learning rate of the dense stage ({d['head_lr']})")
    ap.add_argument("--beta", type=float, default=d["beta"],
                    help="SuperSpike surrogate sharpness (default: the student's, 5)")
    ap.add_argument("--distill", type=float, default=d["distill"],
                    help="weight of the intermediate-map distillation loss: BCE of each "
                         "layer's bits against the teacher's map thresholded where the init "
                         "put the student's thresholds (%(default)s)")
    ap.add_argument("--distill-layers", type=lambda t: tuple(t.split(",")),
                    default=d["distill_layers"], help="layers distilled (%(default)s)")
    ap.add_argument("--ema", type=float, default=d["ema"],
                    help="EMA decay of the weights for validation, 0: none (%(default)s)")
    ap.add_argument("--train-on-val", action="store_true",
                    help="train on the training and validation windows, keep the final state "
                         "(its EMA with --ema), no dense stage (so none of --head-steps, "
                         "--head-lr, --no-tune): only the test split is unseen")
    ap.add_argument("--precision", choices=("float32", "bfloat16"), default=d["precision"],
                    help="the binary student's training forward and backward: float32, or "
                         "bfloat16 autocast (about 1.5x the steps per second measured on a CPU "
                         "with AVX-512 BF16; the labels, weights, validation and export stay "
                         "exact) (%(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (%(default)s)")
    ap.add_argument("--device", default="cpu",
                    help="where the training steps run: cpu, or cuda on a machine with a GPU "
                         "(validation and the dense stage stay on the CPU) (%(default)s)")
    ap.add_argument("--corpus", choices=("default", "large", "wide"), default="default",
                    help="the corpus size (qhw.dnsmos.corpus.SIZES; 'large': 4x the training "
                         "speech; 'wide': 16 training voices instead of 7 and 2x the speech; "
                         "both with the default's validation and test clips) (%(default)s)")
    ap.add_argument("--max-windows", type=int, default=None,
                    help="only the first N windows of each split (quick runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    ap.add_argument("-o", "--output", default="examples/networks")
    ap.add_argument("--evaluate", metavar="NPZ", default=None,
                    help="train nothing: score a binary export (and the .json beside it) on "
                         "this machine's default corpus, validation and test, on the CPU")
    return ap


def main(argv=None):
    from ..errors import QhwInputError
    ap = _parser()
    args = ap.parse_args(argv)
    if args.evaluate is not None:
        for name, v in evaluate_export(args.evaluate).items():
            print(f"{args.evaluate} on this machine's {name} split: PCC {v['pcc']:.4f}, RMSE "
                  f"{v['rmse']:.4f} MOS ({v['clips']} clips)")
            if "voice_offsets" in v:
                print("  mean error per voice (MOS): " + ", ".join(
                    f"{k} {e:+.3f}" for k, e in v["voice_offsets"].items())
                    + f"; RMSE without them {v['rmse_without_voice_offsets']:.4f}")
        return
    if not args.minutes > 0 or not math.isfinite(args.minutes):
        ap.error(f"--minutes: must be a finite number > 0, got {args.minutes!r}")
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps: must be an integer >= 1, got {args.steps!r}")
    if args.threads < 1:
        ap.error(f"--threads: must be an integer >= 1, got {args.threads!r}")
    if args.max_windows is not None and args.max_windows < 2:
        ap.error(f"--max-windows: must be an integer >= 2, got {args.max_windows!r}")
    # The dense-stage options default to "not given" (argparse.SUPPRESS), so that one given at
    # its default value is still seen.
    options = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    options["crop"] = tuple(args.crop)
    try:
        _check_options(dict(DEFAULTS, **options), set(options), args.student)
    except QhwInputError as e:
        ap.error(str(e))
    if args.device.split(":")[0] not in ("cpu", "cuda"):
        ap.error(f"--device: must be cpu or cuda[:N], got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device: {args.device} asked for, but PyTorch sees no CUDA device")
    model, figures = train(args.student, args.minutes, seed=args.seed, threads=args.threads,
                           progress=args.progress, max_windows=args.max_windows, steps=args.steps,
                           device=args.device, corpus_size=args.corpus, **options)
    figures["command"] = " ".join(["python -m qhw.dnsmos.train"] + list(
        sys.argv[1:] if argv is None else argv))
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, "dnsmos_bam" if args.student == "binary" else "dnsmos_int8")
    if args.student == "binary":
        params, scale = S.export_params(model)
        np.savez_compressed(stem + ".npz", **params)
        figures["mos_scale"] = scale
    else:
        np.savez_compressed(stem + ".npz", **model.export())
    with open(stem + ".json", "w") as f:
        json.dump(figures, f, indent=1)
    t = figures["test"]
    print(f"{args.student} student: test PCC {t['pcc']:.4f}, RMSE {t['rmse']:.4f} MOS "
          f"({t['clips']} clips); written {stem}.*")


if __name__ == "__main__":
    main()
