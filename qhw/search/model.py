"""The GRU classifier of the format search: float training, calibrated binary points, QAT with
per-operator formats, and the integer evaluation on the golden GRU (needs PyTorch).

Model
-----
One GRU layer (PyTorch semantics, gate order r, z, n; :data:`MODELS`: hidden 48 for ``kws``,
32 for ``digits``) over the whole sequence, then a dense classifier over the final hidden state
(no dense layer in front: the GRU reads the features directly, I = 40 or 8).

1. **Float training** (:func:`train_float`): ``torch.nn.GRU`` + ``torch.nn.Linear``,
   cross-entropy, Adam with a cosine learning-rate decay to zero, batch 64, gradient norm clipped
   at 1, one CPU thread, seeded; budgets in :data:`FLOAT_BUDGET`. The result is cached
   (:func:`prepare`).
2. **Calibration** (:func:`calibrate`): the float model runs, in float64 with every GRU
   operator computed separately (the structure of :mod:`qhw.golden.gru`), on a calibration batch
   (:data:`CALIBRATION` = the first 512 training sequences, or all if fewer), and every value of
   every format name is recorded over the batch and all steps: ``input`` (the features),
   ``weight`` (W_ih and W_hh), ``bias`` (b_ih and b_hh), ``state`` (h after every step) and the
   17 operators' exact real values (``mm_ir`` = W_ir x + b_ir, ..., ``add_h``); likewise the
   classifier's weight (``head_weight``). Per name its *range* R = 2^k with k the smallest
   integer such that at most :data:`OUTLIERS` = 0.1 % of the values have |v| > 2^k (0 when all
   are 0; k = ceil(log2 max |v|) when no value may be left out, as for the 288 biases). The
   pre-activations are capped at the activation's table range, since the activation saturates
   them there anyway: R(add_r), R(add_z) <= ``sigmoid_range`` (8), R(add_n) <= ``tanh_range``
   (4). (The plain maximum instead, measured: homogeneous 4-bit KWS at 78 % validation error
   after 100 QAT steps against 23 % with this rule, 6-bit 4.6 % against 2.8 %: a few large
   pre-activations cost every other value its resolution.)
3. **Binary points** (:func:`binary_point`): a format of t total bits for a name of range R gets
   k = ceil(log2 R) integer bits (exactly, with ``math.frexp``; R is a power of two here, so
   k = log2 R) and f = t - 1 - k fractional bits, clamped to [-32, t] (the GRU config's limits;
   R = 0 gives f = t). The format covers [-2^k, 2^k - 2^-f]: on the calibration data at most
   0.1 % of a name's values saturate (those beyond 2^k, or beyond the activation's range for the
   capped pre-activations), and a value within half an LSB below 2^k (1.0 itself for the gates,
   tanh and the state, whose float values reach 1.0) rounds to 2^k and saturates to the top
   code, an error of at most one LSB. :func:`formats_for_widths` turns a width per format name
   (the search's genes) into the GRU config's ``formats`` dict with these binary points.
4. **QAT** (:func:`qat`): :class:`qhw.golden.gru_torch.QuantGRU` initialised from the float GRU
   with the candidate's formats (every operator output rounded and saturated in the forward,
   straight-through gradients), the classifier's weight fake-quantized into (8, f_w) with f_w
   from its calibrated range and its bias into (32, f_w + f_state); Adam, cosine decay to zero,
   batch 64, seeded, float32, one thread.
5. **Integer evaluation** (:class:`IntegerModel`): the features quantized into the ``input``
   format (its rounding, saturating), :func:`qhw.golden.gru.reference` (bit-exact, output
   ``last``) gives the final state codes h (state format), then the classifier in integers:
   logits = W_codes h + b_codes, exact (int64, scale 2^-(f_w + f_state)), class = argmax (the
   first of equal maxima). The error is 1 - accuracy of this integer model; the torch forward is
   used for training only. In float64 :class:`QuantNet`'s logits equal it exactly (a test).

The GRU's activations are 256-entry tables (:data:`GRU_OPTIONS`: ``lut_bits`` 8, sigmoid input
over [-8, 8), tanh over [-4, 4)), the same for every candidate: the 21 formats are the genes.

Candidate evaluation (the search's objective)
---------------------------------------------
``evaluate_candidate(task, formats, steps=100, ...)`` -> dict with ``val_error``: QAT for
``steps`` Adam steps from the cached float model, then the integer golden model on the
validation split. See :data:`CANDIDATE_BUDGET` and docs/search.md for the cost.

Public API
----------
MODELS, FLOAT_BUDGET, CANDIDATE_BUDGET, GRU_OPTIONS, HEAD_BITS, FloatNet, QuantNet,
IntegerModel, Prepared, train_float, calibrate, binary_point, formats_for_widths,
homogeneous_widths, check_formats, gru_config, qat, prepare, evaluate_candidate
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time

import numpy as np

from ..torch_extra import import_torch

torch = import_torch()      # TorchMissing (an ImportError) says how to install it
from torch import nn  # noqa: E402

from ..config import check_choice, check_int
from ..errors import QhwInputError
from ..golden import gru as g
from ..golden import gru_torch as gt
from . import tasks

__all__ = ["MODEL_VERSION", "MODELS", "FLOAT_BUDGET", "CANDIDATE_BUDGET", "GRU_OPTIONS",
           "HEAD_BITS", "HEAD_BIAS_BITS", "CALIBRATION", "OUTLIERS", "CAPS", "FloatNet",
           "QuantNet", "IntegerModel", "Prepared", "train_float", "calibrate", "binary_point",
           "formats_for_widths",
           "homogeneous_widths", "check_formats", "gru_config", "qat", "prepare",
           "evaluate_candidate", "accuracy"]

MODEL_VERSION = 2
MODELS = {"kws": {"hidden_size": 48}, "digits": {"hidden_size": 32}}
#: Float training: epochs over the training split, batch, peak learning rate (Adam, cosine).
FLOAT_BUDGET = {"kws": {"epochs": 30, "batch": 64, "lr": 3e-3},
                "digits": {"epochs": 60, "batch": 64, "lr": 1e-2}}
#: The candidate's QAT fine-tune (the search's default): Adam steps, batch, peak learning rate.
CANDIDATE_BUDGET = {"steps": 100, "batch": 64, "lr": 1e-3}
GRU_OPTIONS = {"activation": "lut", "lut_bits": 8, "sigmoid_range": 8, "tanh_range": 4}
HEAD_BITS = 8
HEAD_BIAS_BITS = 32
CALIBRATION = 512
#: At most this fraction of a name's calibration values may lie beyond its range.
OUTLIERS = 1e-3
#: The pre-activations' ranges are capped at the activation's table range.
CAPS = {"add_r": GRU_OPTIONS["sigmoid_range"], "add_z": GRU_OPTIONS["sigmoid_range"],
        "add_n": GRU_OPTIONS["tanh_range"]}
SEED = 14


@contextlib.contextmanager
def _threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise QhwInputError(f"threads: must be a positive integer, got {threads!r}")
    return threads


# ----------------------------------------------------------------------------------- formats


def binary_point(max_abs, total):
    """Fractional bits for a ``total``-bit format of values with calibrated max |v| =
    ``max_abs``: total - 1 - ceil(log2 max_abs), clamped to [MIN_FRAC, total] (module
    docstring, step 3)."""
    m = float(max_abs)
    if not math.isfinite(m) or m < 0:
        raise QhwInputError(f"max_abs: must be a finite number >= 0, got {max_abs!r}")
    if m == 0:
        return int(total)
    mant, e = math.frexp(m)   # m = mant * 2^e, 0.5 <= mant < 1
    k = e - 1 if mant == 0.5 else e     # ceil(log2 m), exactly
    return int(min(max(total - 1 - k, g.MIN_FRAC), total))


def _check_names(field, mapping, what):
    if not isinstance(mapping, dict):
        raise QhwInputError(f"{field}: must be an object mapping each of the {len(g.FORMAT_NAMES)}"
                            f" format names to {what}, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(g.FORMAT_NAMES))
    if unknown:
        raise QhwInputError(f"{field}: unknown name {unknown[0]!r}; allowed: "
                            f"{', '.join(g.FORMAT_NAMES)}")
    for name in g.FORMAT_NAMES:
        if name not in mapping:
            raise QhwInputError(f"{field}.{name}: missing; a candidate gives all "
                                f"{len(g.FORMAT_NAMES)} formats ({', '.join(g.FORMAT_NAMES)})")


def homogeneous_widths(bits):
    """The same width for all 21 format names."""
    return {name: bits for name in g.FORMAT_NAMES}


def formats_for_widths(ranges, widths, rounding="nearest_even"):
    """The GRU config's ``formats`` from a width per format name (all 21) and the calibrated
    ranges (:func:`calibrate`'s ``ranges``): [width, :func:`binary_point`, rounding]."""
    _check_names("widths", widths, "a total width in bits")
    check_choice("rounding", rounding, g.ROUNDINGS)
    out = {}
    for name in g.FORMAT_NAMES:
        check_int(f"widths.{name}", widths[name], low=1, high=g.MAX_BITS)
        out[name] = [int(widths[name]), binary_point(ranges[name], int(widths[name])), rounding]
    return out


def check_formats(formats):
    """A candidate's ``formats``: all 21 names, each as the GRU config allows; the full lists."""
    _check_names("formats", formats, "[total_bits, frac_bits(, rounding)]")
    return {name: g._check_format(name, formats[name]) for name in g.FORMAT_NAMES}


def gru_config(input_size, hidden_size, formats):
    """The :class:`qhw.golden.gru.GruConfig` of a candidate (output ``last``)."""
    return g.GruConfig(input_size=input_size, hidden_size=hidden_size,
                       formats=check_formats(formats), output="last", **GRU_OPTIONS)


# ------------------------------------------------------------------------------------ models


class FloatNet(nn.Module):
    """``torch.nn.GRU`` (batch first) -> ``torch.nn.Linear`` over the final hidden state."""

    def __init__(self, input_size, hidden_size, classes):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, classes)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[0])


class QuantNet(nn.Module):
    """:class:`qhw.golden.gru_torch.QuantGRU` -> the classifier with fake-quantized weight
    (HEAD_BITS, f_w) and bias (HEAD_BIAS_BITS, f_w + f_state)."""

    def __init__(self, cfg, classes, head_frac):
        super().__init__()
        self.cfg = cfg
        self.gru = gt.QuantGRU(cfg)
        self.head = nn.Linear(cfg.hidden_size, classes)
        self.head_weight_format = g.Format(HEAD_BITS, int(head_frac))
        self.head_bias_format = g.Format(HEAD_BIAS_BITS,
                                         int(head_frac) + cfg.fmt("state").frac)

    @classmethod
    def from_float(cls, net, cfg, head_frac):
        m = cls(cfg, net.head.out_features, head_frac)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(m.gru, name).copy_(getattr(net.gru, f"{name}_l0"))
            m.head.weight.copy_(net.head.weight)
            m.head.bias.copy_(net.head.bias)
        return m

    def forward(self, x):
        _, h = self.gru(x)
        w = gt.fake_quant(self.head.weight, self.head_weight_format)
        b = gt.fake_quant(self.head.bias, self.head_bias_format)
        return h @ w.T + b

    def export(self):
        """The integer model: the GRU's weight file (:meth:`QuantGRU.export`) and the
        classifier's codes."""
        def codes(v, fmt):
            q = np.rint(v.detach().double().cpu().numpy() * 2.0 ** fmt.frac)
            return np.clip(q, fmt.lo, fmt.hi).astype(np.int64)
        return IntegerModel(self.cfg, self.gru.export(),
                            codes(self.head.weight, self.head_weight_format),
                            codes(self.head.bias, self.head_bias_format),
                            self.head_weight_format, self.head_bias_format)


@dataclasses.dataclass
class IntegerModel:
    """The integer classifier: the golden GRU and an exact integer dense layer."""
    cfg: g.GruConfig
    params: dict                 # the GRU's weight file (int64 codes)
    head_weight: np.ndarray      # (C, H) codes of head_weight_format
    head_bias: np.ndarray        # (C,) codes of head_bias_format
    head_weight_format: g.Format
    head_bias_format: g.Format

    def input_codes(self, x):
        """Real features (N, T, I) -> codes of the input format (its rounding, saturating)."""
        fmt = self.cfg.fmt("input")
        v = np.asarray(x, dtype=np.float64) * 2.0 ** fmt.frac
        q = np.rint(v) if fmt.rounding == "nearest_even" else np.floor(v)
        return np.clip(q, fmt.lo, fmt.hi).astype(np.int64)

    def states(self, x, trace=None):
        """Final state codes (N, H) of the golden GRU (:func:`qhw.golden.gru.reference`)."""
        return g.reference(self.cfg, self.params, self.input_codes(x), trace=trace)

    def logits(self, x):
        """Integer logits (N, C), scale 2^-(f_w + f_state)."""
        return self.states(x) @ self.head_weight.T + self.head_bias

    def predict(self, x):
        return np.argmax(self.logits(x), axis=1)

    @property
    def logit_scale(self):
        return 2.0 ** -self.head_bias_format.frac


def accuracy(model, split, batch=1024):
    """Fraction of ``split`` classified right by an :class:`IntegerModel` or a torch module."""
    if len(split) == 0:
        return float("nan")
    if isinstance(model, IntegerModel):
        pred = np.concatenate([model.predict(split.x[i:i + batch])
                               for i in range(0, len(split), batch)])
    else:
        with torch.no_grad():
            dtype = next(model.parameters()).dtype
            pred = np.concatenate([model(torch.as_tensor(split.x[i:i + batch], dtype=dtype))
                                   .argmax(1).numpy() for i in range(0, len(split), batch)])
    return float(np.mean(pred == split.y))


# ---------------------------------------------------------------------------------- training


def _fit(model, split, steps, batch, lr, seed):
    """Adam for ``steps`` steps on shuffled batches (epochs of a seeded permutation), cosine
    decay of the learning rate to zero, gradient norm clipped at 1. Returns the batch losses."""
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.as_tensor(split.x)
    y = torch.as_tensor(split.y)
    n = len(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses, order, pos = [], torch.randperm(n, generator=gen), 0
    for step in range(steps):
        if pos + min(batch, n) > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + batch]
        pos += len(idx)
        for grp in opt.param_groups:
            grp["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / max(1, steps)))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


def train_float(data, hidden_size, *, epochs, batch=64, lr=3e-3, seed=SEED, threads=1):
    """Float training of a :class:`FloatNet` on ``data.train``; returns (net, batch losses)."""
    _check_threads(threads)
    with _threads(threads):
        torch.manual_seed(seed)
        net = FloatNet(data.input_size, hidden_size, len(data.classes))
        steps = epochs * max(1, -(-len(data.train) // batch))
        losses = _fit(net, data.train, steps, batch, lr, seed)
    return net, losses


class _Tally:
    """Per name: the count of values, max |v| and a histogram of ceil(log2 |v|) (exact, from
    ``np.frexp``), enough to find the range rule's k without keeping the values."""
    LOW, HIGH = -80, 80

    def __init__(self):
        self.n, self.max = 0, 0.0
        self.hist = np.zeros(self.HIGH - self.LOW + 2, dtype=np.int64)   # [0]: v == 0

    def add(self, v):
        a = np.abs(np.asarray(v, dtype=np.float64)).ravel()
        if not a.size:
            return
        self.n += a.size
        self.max = max(self.max, float(a.max()))
        mant, e = np.frexp(a)
        k = np.where(mant == 0.5, e - 1, e)              # ceil(log2 a) for a > 0
        k = np.clip(k, self.LOW, self.HIGH) - self.LOW + 1
        k[a == 0] = 0
        self.hist += np.bincount(k, minlength=len(self.hist))

    def range(self, outliers, cap=None):
        """(R, fraction of values with |v| > R)."""
        allowed = int(math.floor(outliers * self.n))
        above = self.n - np.cumsum(self.hist)           # above[i]: values with bin > i
        i = int(np.argmax(above <= allowed))            # the first bin that leaves <= allowed
        r = 0.0 if i == 0 else 2.0 ** (i - 1 + self.LOW)
        if cap is not None and r > cap:
            r = float(cap)
        j = 0 if r == 0 else int(round(math.log2(r))) - self.LOW + 1
        return r, (int(above[j]) / self.n if self.n else 0.0)


def calibrate(net, x, outliers=OUTLIERS):
    """The calibration of a float model on inputs ``x`` (N, T, I) (module docstring, step 2):
    ``{"ranges": {name: R}, "max": {name: max |v|}, "beyond": {name: fraction of values with
    |v| > R}}`` for the 21 format names and ``head_weight``."""
    with torch.no_grad():
        gru = net.gru
        w_ih, w_hh = gru.weight_ih_l0.double(), gru.weight_hh_l0.double()
        b_ih, b_hh = gru.bias_ih_l0.double(), gru.bias_hh_l0.double()
        x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
        hs = gru.hidden_size
        tally = {name: _Tally() for name in (*g.FORMAT_NAMES, "head_weight")}
        tally["input"].add(x.numpy())
        tally["weight"].add(torch.cat([w_ih.flatten(), w_hh.flatten()]).numpy())
        tally["bias"].add(torch.cat([b_ih, b_hh]).numpy())
        tally["head_weight"].add(net.head.weight.detach().double().numpy())
        h = x.new_zeros(x.shape[0], hs)
        for t in range(x.shape[1]):
            gi = x[:, t] @ w_ih.T + b_ih
            gh = h @ w_hh.T + b_hh
            v = {}
            for k, gate in enumerate(g.GATES):
                v[f"mm_i{gate}"] = gi[:, k * hs:(k + 1) * hs]
                v[f"mm_h{gate}"] = gh[:, k * hs:(k + 1) * hs]
            v["add_r"] = v["mm_ir"] + v["mm_hr"]
            v["add_z"] = v["mm_iz"] + v["mm_hz"]
            v["sig_r"] = torch.sigmoid(v["add_r"])
            v["sig_z"] = torch.sigmoid(v["add_z"])
            v["mul_rn"] = v["sig_r"] * v["mm_hn"]
            v["add_n"] = v["mm_in"] + v["mul_rn"]
            v["tanh_n"] = torch.tanh(v["add_n"])
            v["sub_z"] = 1.0 - v["sig_z"]
            v["mul_n"] = v["sub_z"] * v["tanh_n"]
            v["mul_zh"] = v["sig_z"] * h
            v["add_h"] = v["mul_n"] + v["mul_zh"]
            for name, val in v.items():
                tally[name].add(val.numpy())
            h = v["add_h"]
            tally["state"].add(h.numpy())
    out = {"ranges": {}, "max": {}, "beyond": {}}
    for name, t in tally.items():
        r, beyond = t.range(outliers, CAPS.get(name))
        out["ranges"][name], out["max"][name], out["beyond"][name] = r, t.max, beyond
    return out


def qat(prepared, formats, *, steps, batch=64, lr=1e-3, seed=0, threads=1):
    """QAT of the candidate ``formats`` from the float model; returns (QuantNet, losses)."""
    _check_threads(threads)
    for field, value, low in (("steps", steps, 0), ("batch", batch, 1)):
        check_int(field, value, low=low, high=10 ** 7)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
        raise QhwInputError(f"lr: must be a number >= 0, got {lr!r}")
    data = prepared.data
    cfg = gru_config(data.input_size, prepared.hidden_size, formats)
    with _threads(threads):
        torch.manual_seed(seed)
        net = QuantNet.from_float(prepared.float_net(), cfg, prepared.head_frac)
        losses = _fit(net, data.train, steps, batch, lr, seed) if steps else []
    return net, losses


# ------------------------------------------------------------------------------- preparation


@dataclasses.dataclass
class Prepared:
    """A task with its trained float model and calibration: what every candidate starts from.
    Picklable (NumPy arrays); :func:`prepare` loads it from the cache in milliseconds."""
    task: str
    size: str
    data: tasks.TaskData
    hidden_size: int
    float_state: dict            # FloatNet state dict as NumPy arrays
    calibration: dict            # :func:`calibrate` of the float model
    metrics: dict                # float accuracy per split, training time and losses
    key: str

    @property
    def ranges(self):
        """Format name (and ``head_weight``) -> calibrated range R."""
        return self.calibration["ranges"]

    @property
    def head_frac(self):
        return binary_point(self.ranges["head_weight"], HEAD_BITS)

    def float_net(self):
        net = FloatNet(self.data.input_size, self.hidden_size, len(self.data.classes))
        net.load_state_dict({k: torch.as_tensor(v) for k, v in self.float_state.items()})
        return net

    def formats(self, widths, rounding="nearest_even"):
        """:func:`formats_for_widths` on this task's calibrated ranges."""
        return formats_for_widths(self.ranges, widths, rounding)


_PREPARED = {}


def _prepare_key(data, task):
    blob = {"version": MODEL_VERSION, "data": data.key, "model": MODELS[task],
            "budget": FLOAT_BUDGET[task], "seed": SEED, "calibration": CALIBRATION,
            "outliers": OUTLIERS, "caps": CAPS,
            "torch": torch.__version__.split("+")[0]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:20]


def prepare(task, size="default", *, cache=True, progress=True):
    """The task's data, its float model (trained once, then cached under
    ``<qhw cache>/search/models/``) and calibration; memoised in the process."""
    tasks.check_task(task)
    tasks.check_size(size)
    memo = (task, size, str(tasks.cache_root()))
    if cache and memo in _PREPARED:
        return _PREPARED[memo]
    data = tasks.load_task(task, size, cache=cache, progress=progress)
    key = _prepare_key(data, task)
    path = tasks.cache_root() / "models" / f"{task}-{size}-{key}"
    hidden = MODELS[task]["hidden_size"]
    if cache and (path / "prepared.json").is_file():
        try:
            info = json.loads((path / "prepared.json").read_text())
            with np.load(path / "float.npz") as z:
                state = {k: z[k] for k in z.files}
            p = Prepared(task, size, data, hidden, state, info["calibration"], info["metrics"],
                         key)
            _PREPARED[memo] = p
            return p
        except (OSError, ValueError, KeyError):
            pass
    t0 = time.perf_counter()
    budget = FLOAT_BUDGET[task]
    net, losses = train_float(data, hidden, epochs=budget["epochs"], batch=budget["batch"],
                              lr=budget["lr"])
    train_s = time.perf_counter() - t0
    calibration = calibrate(net, data.train.x[:CALIBRATION])
    metrics = {s: accuracy(net, sp) for s, sp in data.splits.items()}
    metrics = {"float_accuracy": metrics, "train_s": round(train_s, 2),
               "steps": len(losses), "loss_first": losses[0], "loss_last": losses[-1],
               "loss_curve": [float(np.mean(losses[i:i + 50])) for i in range(0, len(losses), 50)]}
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    p = Prepared(task, size, data, hidden, state, calibration, metrics, key)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tasks._atomic_dir(path)
        np.savez(tmp / "float.npz", **state)
        (tmp / "prepared.json").write_text(json.dumps(
            {"task": task, "size": size, "key": key, "calibration": calibration,
             "metrics": metrics},
            indent=1))
        tasks._publish(tmp, path)
        _PREPARED[memo] = p
    return p


# ------------------------------------------------------------------------- the search's call


def evaluate_candidate(task, formats, *, size="default", steps=CANDIDATE_BUDGET["steps"],
                       batch=CANDIDATE_BUDGET["batch"], lr=CANDIDATE_BUDGET["lr"], seed=0,
                       threads=1, test=False):
    """Validation error of the integer golden model of one candidate.

    ``task``: "kws", "digits" or a :class:`Prepared`; ``formats``: the GRU config's formats
    dict, all 21 names (``[total, frac]`` or ``[total, frac, rounding]``; e.g.
    ``prepared.formats(widths)``). QAT for ``steps`` Adam steps (0: no fine-tune) from the
    float model, then the integer evaluation on the validation split (and, with ``test``, the
    test split). Deterministic for a seed (and ``threads``).

    Returns a dict: ``val_error`` (1 - accuracy), ``val_accuracy``, ``test_accuracy`` (with
    ``test``), ``formats`` (the full lists), ``steps``, ``qat_loss`` (mean of the last 10 batch
    losses, None without steps), ``seconds`` (QAT and evaluation) and ``model`` (the
    :class:`IntegerModel`).
    """
    t0 = time.perf_counter()
    if isinstance(task, Prepared):
        prepared = task
    else:
        tasks.check_task(task)
        prepared = prepare(task, size, progress=False)
    formats = check_formats(formats)
    net, losses = qat(prepared, formats, steps=steps, batch=batch, lr=lr, seed=seed,
                      threads=threads)
    model = net.export()
    val = accuracy(model, prepared.data.val)
    out = {"task": prepared.task, "size": prepared.size, "val_error": 1.0 - val,
           "val_accuracy": val, "formats": model.cfg.formats, "steps": steps, "batch": batch,
           "lr": lr, "seed": seed,
           "qat_loss": float(np.mean(losses[-10:])) if losses else None}
    if test:
        out["test_accuracy"] = accuracy(model, prepared.data.test)
    out["seconds"] = time.perf_counter() - t0
    out["model"] = model
    return out
