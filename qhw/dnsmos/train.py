"""Distil DNSMOS P.808 into its binary-activation student (and the 8-bit-activation comparison).

    python -m qhw.dnsmos.train [--minutes 40] [--student binary|int8] [-o examples/networks]

Trains on the offline corpus (:mod:`qhw.dnsmos.corpus`) with the teacher's per-window P.808
score as the target (mean squared error), CPU only, within a wall-clock budget. The binary
student's integer export (``dnsmos_bam.npz``, ``dnsmos_bam.json`` with the MOS scale and the
figures) is written to the output folder; the demo uses the shipped copy, so it needs no
training. Figures: Pearson correlation (PCC) and RMSE in MOS against the teacher on the test
clips (a clip's score is the mean over its windows, as DNSMOS scores clips).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import student as S

__all__ = ["Int8P808", "clip_scores", "evaluate", "train", "main"]


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
    teacher's activations), on the same 8-bit input."""

    def __init__(self, features):
        super().__init__()
        from .teacher import CONV_LAYERS, DENSE_LAYERS, TeacherP808
        self.teacher_layers = [n for n, _, _ in CONV_LAYERS] + [n for n, _ in DENSE_LAYERS]
        self.pools = {n: p for n, _, p in CONV_LAYERS}
        t = TeacherP808()
        for name in self.teacher_layers:
            setattr(self, name, getattr(t, name))
        # Activation scales: the 99.9th percentile of the teacher's activation / 255.
        scales, h = {}, torch.from_numpy(np.asarray(features, np.float32)).unsqueeze(1)
        with torch.no_grad():
            for name, _, pool in CONV_LAYERS:
                h = torch.relu(getattr(t, name)(h))
                scales[name] = float(torch.quantile(h.flatten()[::97], 0.999)) / 255 or 1.0
                h = F.max_pool2d(h, 2) if pool else h
            h = h.amax(dim=(2, 3))
            for name, _ in DENSE_LAYERS[:-1]:
                h = torch.relu(getattr(t, name)(h))
                scales[name] = float(torch.quantile(h.flatten(), 0.999)) / 255 or 1.0
        self.register_buffer("act_scale", torch.tensor([scales.get(n, 1.0)
                                                        for n in self.teacher_layers]))

    @staticmethod
    def _qweight(w):
        dims = tuple(range(1, w.ndim))
        s = (w.detach().abs().amax(dim=dims, keepdim=True) / 127).clamp_min(1e-12)
        q = torch.clamp(w / s + (torch.round(w / s) - w / s).detach(), -127, 127)
        return q * s

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


def clip_scores(window_scores, clip_index):
    """Mean of the window scores of each clip (clip_index: the clip of each window)."""
    clip_index = np.asarray(clip_index)
    n = int(clip_index.max()) + 1
    return np.bincount(clip_index, weights=window_scores, minlength=n) / np.bincount(
        clip_index, minlength=n)


@torch.no_grad()
def predict(model, xq, batch=16):
    model.eval()
    out = [model(torch.from_numpy(xq[i:i + batch]).float()).double().numpy()
           for i in range(0, len(xq), batch)]
    return np.concatenate(out)


def evaluate(pred_clips, teacher_clips):
    """PCC and RMSE (MOS) of clip scores against the teacher's."""
    pred, ref = np.asarray(pred_clips, float), np.asarray(teacher_clips, float)
    return {"pcc": float(np.corrcoef(pred, ref)[0, 1]),
            "rmse": float(np.sqrt(np.mean((pred - ref) ** 2))), "clips": int(len(ref))}


def _split(corpus, name):
    part = getattr(corpus, name)
    xq = S.quantize_features(part.features).astype(np.float32)
    return xq, np.asarray(part.window_labels, np.float64), np.asarray(part.clip_index), \
        np.asarray(part.labels, np.float64)


@torch.no_grad()
def _fit_head(model, xq, labels, ridge=1e-2):
    """Least-squares dense3 (weights and bias) on the binary dense2 outputs of ``xq``: the
    teacher-initialized hidden layers keep their bits, the head starts at the best linear
    read-out of them instead of the teacher's (which expects real-valued inputs)."""
    model.eval()
    h = torch.from_numpy(xq).float().unsqueeze(1)
    for name, _, pool in S.CONV_LAYERS:
        kind = "2x2" if pool else ("global" if name == "conv5" else None)
        h = model._conv_eval(getattr(model, name), h, kind)
    for name in ("dense1", "dense2"):
        h = getattr(model, name)(h)
    a = h.flatten(1).double().numpy()
    a1 = np.hstack([a, np.ones((len(a), 1))])
    coef = np.linalg.solve(a1.T @ a1 + ridge * np.eye(a1.shape[1]), a1.T @ labels)
    model.dense3.weight.copy_(torch.from_numpy(coef[:-1]).view(1, -1, 1, 1).float())
    model.dense3.bias.copy_(torch.tensor([coef[-1]]).float())


def train(kind="binary", minutes=40.0, corpus=None, seed=0, lr=3e-4, batch=8, progress=True,
          threads=None, log=print):
    """Train a student within ``minutes`` of wall clock; returns (model, figures).

    The model with the best validation RMSE (clip scores) is kept."""
    from tqdm import tqdm
    from .corpus import build_corpus
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    corpus = corpus or build_corpus(progress=progress)
    xtr, ytr, _, _ = _split(corpus, "train")
    xva, _, cva, lva = _split(corpus, "val")
    xte, _, cte, lte = _split(corpus, "test")
    calib = corpus.train.features[np.random.default_rng(seed).choice(len(xtr), 32, False)]
    if kind == "binary":
        model = S.init_from_teacher(S.BinaryP808(), calib)
        fit = np.random.default_rng(seed + 1).choice(len(xtr), min(128, len(xtr)), False)
        _fit_head(model, xtr[fit], ytr[fit])
    else:
        model = Int8P808(calib)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    deadline = time.monotonic() + 60.0 * minutes
    rng = np.random.default_rng(seed)
    best = (math.inf, None)
    history = []
    epoch = 0

    def validate():
        pred = clip_scores(predict(model, xva), cva)
        return evaluate(pred, lva)

    v = validate()
    history.append({"epoch": 0, **{f"val_{k}": x for k, x in v.items()}})
    log(f"init: validation PCC {v['pcc']:.3f}, RMSE {v['rmse']:.3f}")
    best = (v["rmse"], {k: p.detach().clone() for k, p in model.state_dict().items()})
    bar = tqdm(total=int(60 * minutes), unit="s", disable=not progress, desc=f"train {kind}")
    start = time.monotonic()
    while time.monotonic() < deadline:
        epoch += 1
        model.train()
        order = rng.permutation(len(xtr))
        losses = []
        for i in range(0, len(order) - batch + 1, batch):
            if time.monotonic() >= deadline:
                break
            idx = order[i:i + batch]
            pred = model(torch.from_numpy(xtr[idx]))
            loss = F.mse_loss(pred, torch.from_numpy(ytr[idx]).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            bar.n = min(int(time.monotonic() - start), bar.total)
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-20:]):.3f}")
        v = validate()
        history.append({"epoch": epoch, "train_mse": float(np.mean(losses)) if losses else None,
                        **{f"val_{k}": x for k, x in v.items()}})
        log(f"epoch {epoch}: train MSE {history[-1]['train_mse']}, validation PCC "
            f"{v['pcc']:.3f}, RMSE {v['rmse']:.3f}")
        if v["rmse"] < best[0]:
            best = (v["rmse"], {k: p.detach().clone() for k, p in model.state_dict().items()})
    bar.close()
    model.load_state_dict(best[1])
    test = evaluate(clip_scores(predict(model, xte), cte), lte)
    val = validate()
    figures = {"student": kind, "minutes": minutes, "epochs": epoch, "lr": lr, "batch": batch,
               "seed": seed, "train_windows": int(len(xtr)), "test": test, "validation": val,
               "history": history}
    return model, figures


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qhw.dnsmos.train", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--student", choices=("binary", "int8"), default="binary")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", default="examples/networks")
    args = ap.parse_args(argv)
    if not args.minutes > 0:
        ap.error("--minutes: must be > 0")
    model, figures = train(args.student, args.minutes, lr=args.lr, seed=args.seed)
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, "dnsmos_bam" if args.student == "binary" else "dnsmos_int8")
    if args.student == "binary":
        params, scale = S.export_params(model)
        np.savez_compressed(stem + ".npz", **params)
        figures["mos_scale"] = scale
    else:
        torch.save(model.state_dict(), stem + ".pt")
    with open(stem + ".json", "w") as f:
        json.dump(figures, f, indent=1)
    t = figures["test"]
    print(f"{args.student} student: test PCC {t['pcc']:.4f}, RMSE {t['rmse']:.4f} MOS "
          f"({t['clips']} clips); written {stem}.*")


if __name__ == "__main__":
    main()
