"""The chosen GRU classifier as a qhw network (issue 14; docs/search.md, "The chosen
configuration as a network").

The search's integer classifier (:class:`qhw.search.model.IntegerModel`: features quantized into
the ``input`` format -> the golden GRU with output ``last`` -> logits = W h + b in exact integers)
is exactly a two-layer qhw network (docs/networks.md):

``input``
    one 1 x 1 x I map of signed ``input``-format codes per step, ``steps`` = T steps per
    utterance (a network frame is one utterance);
``gru``
    the ``gru`` unit with the candidate's 21 formats, the search's activation tables and
    ``output = "last"``, folded onto ``macs`` multipliers;
``head``
    a ``dense`` layer, ``arith = "mac"``: the classifier's 8-bit weight codes times the final
    state codes plus the bias codes, ``output = "sum"``: the class scores, bit for bit the
    integer model's logits (scale 2^-(f_w + f_state)); the class is their argmax.

So the network's golden model (:func:`qhw.golden.network.reference`) and its RTL compute the
integer model's logits exactly; the tests check both. The head's bias must fit macconv's bias
range (its accumulator width); an exported model whose bias does not is refused in one line.

This module needs no PyTorch, except :func:`trained_model` and :func:`export_chosen` (QAT of a
configuration). Public API: :func:`network_description`, :func:`network_params`,
:func:`network_inputs`, :func:`logits_of`, :func:`write_network`, :func:`choose`,
:func:`trained_model`, :func:`export_chosen` (``qhw search --export-network``),
:func:`summary_text`, :func:`head_simd`, :func:`check_name`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import QhwInputError
from ..golden import gru as g

__all__ = ["GRU_LAYER", "HEAD_LAYER", "network_description", "network_params", "network_inputs",
           "logits_of", "write_network", "choose", "trained_model", "export_chosen",
           "summary_text", "head_simd", "check_name"]

#: Layer names in the exported network (the weight file's keys are ``<layer>.<array>``).
GRU_LAYER = "gru"
HEAD_LAYER = "head"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_name(name, field="--export-network"):
    """A network name that is also a file stem and a Verilog identifier."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise QhwInputError(f"{field}: must be a name of letters, digits and _ (a letter or _ "
                            f"first, at most 63 characters), got {name!r}")
    return name


def head_simd(hidden_size, macs):
    """The head's SIMD: the largest divisor of H that is at most ``macs`` (PE 1), so that the
    head has no more multipliers than the GRU. Its cycles per utterance, C x H / SIMD, are a
    few dozen against the GRU's thousands."""
    return max(d for d in range(1, min(hidden_size, macs) + 1) if hidden_size % d == 0)


def network_description(model, steps, *, macs=8, name="gru_classifier"):
    """The qhw network description (a dict, as the TOML holds it) of an integer classifier.

    Parameters
    ----------
    model : qhw.search.model.IntegerModel
        Its GRU config (formats, activation options), classifier codes and formats.
    steps : int
        Steps per utterance (T): the network's ``input.steps``.
    macs : int
        The GRU's multipliers (clipped to max(I, H)); the head gets :func:`head_simd`.
    name : str
        The network's name.

    Returns
    -------
    dict
        ``name``, ``input`` and ``layers`` (``gru``, ``head``).
    """
    cfg = model.cfg
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise QhwInputError(f"steps: must be a positive integer (steps per utterance), got "
                            f"{steps!r}")
    if isinstance(macs, bool) or not isinstance(macs, (int, np.integer)) or macs < 1:
        raise QhwInputError(f"macs: must be a positive integer, got {macs!r}")
    macs = int(min(macs, max(cfg.input_size, cfg.hidden_size)))
    classes = int(np.asarray(model.head_weight).shape[0])
    gru = {"name": GRU_LAYER, "kind": "gru", "hidden_size": cfg.hidden_size,
           "formats": {n: list(cfg.formats[n]) for n in g.FORMAT_NAMES},
           "activation": cfg.activation, "lut_bits": cfg.lut_bits,
           "sigmoid_range": cfg.sigmoid_range, "tanh_range": cfg.tanh_range,
           "macs": macs, "output": "last"}
    if cfg.activation == "pwl":
        gru["pwl_segments"] = cfg.pwl_segments
    head = {"name": HEAD_LAYER, "kind": "dense", "arith": "mac", "outputs": classes,
            "weight_bits": int(model.head_weight_format.total), "output": "sum",
            "pe": 1, "simd": head_simd(cfg.hidden_size, macs)}
    return {"name": name,
            "input": {"height": 1, "width": 1, "channels": cfg.input_size,
                      "bits": cfg.fmt("input").total, "signed": True, "steps": int(steps)},
            "layers": [gru, head]}


def network_params(model, desc=None):
    """The weight file of the network (``layer.field`` keys): ``gru.weight_ih``,
    ``gru.weight_hh``, ``gru.bias_ih``, ``gru.bias_hh`` (the GRU's codes) and ``head.weights``
    (C, H), ``head.bias`` (C,) (the classifier's codes). With ``desc``, the head's bias is
    checked against the range the dense layer holds (its accumulator width)."""
    params = {f"{GRU_LAYER}.{k}": np.asarray(v, dtype=np.int64) for k, v in model.params.items()}
    params[f"{HEAD_LAYER}.weights"] = np.asarray(model.head_weight, dtype=np.int64)
    params[f"{HEAD_LAYER}.bias"] = np.asarray(model.head_bias, dtype=np.int64)
    if desc is not None:
        from .. import registry
        from ..config import config_from_dict
        from ..golden import bamconv
        cfg = config_from_dict(registry.get("network").config, desc)
        head = cfg.layer(HEAD_LAYER).config
        bits = bamconv.acc_bits(head)
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        b = params[f"{HEAD_LAYER}.bias"]
        if b.size and (b.min() < lo or b.max() > hi):
            raise QhwInputError(
                f"head.bias: the classifier's bias codes reach {int(np.abs(b).max())}, beyond "
                f"the dense layer's {bits}-bit bias range [{lo}, {hi}] (its accumulator width "
                f"for {head.k} products of {head.act_bits}-bit states and {head.weight_bits}-bit "
                f"weights); the network cannot hold this model bit-exactly")
    return params


def network_inputs(model, x):
    """Real features (N, T, I) -> the network's input maps (N x T, 1, 1, I) of input codes
    (quantized as the integer model does: the input format's rounding, saturating)."""
    codes = model.input_codes(x)
    n, t, i = codes.shape
    return codes.reshape(n * t, 1, 1, i)


def logits_of(outputs):
    """The network's outputs (N, 1, 1, C) -> logits (N, C) (int64)."""
    y = np.asarray(outputs)
    return y.reshape(y.shape[0], -1).astype(np.int64)


def write_network(model, steps, out, name, *, macs=8, x=None, info=None):
    """Write a classifier's network files, each atomically.

    Parameters
    ----------
    model : qhw.search.model.IntegerModel
    steps : int
        Steps per utterance (T).
    out : path
        The folder (created if missing).
    name : str
        The network's name and the files' stem (:func:`check_name`).
    macs : int
        The GRU's multipliers.
    x : array (N, T, I), optional
        Real features: written as ``<name>.inputs.npy``, their input maps (what ``qhw rtlsim
        network --inputs`` takes).
    info : dict, optional
        Written as ``<name>.json``.

    Returns
    -------
    dict
        ``config`` (``<name>.toml``), ``weights`` (``<name>.npz``, keys ``layer.field``) and,
        as given, ``inputs`` and ``info``: the paths written.
    """
    from .. import flow
    from ..config import to_toml
    check_name(name)
    desc = network_description(model, steps, macs=macs, name=name)
    params = network_params(model, desc)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"config": out / f"{name}.toml", "weights": out / f"{name}.npz"}
    comment = (f"{name}: a GRU classifier exported by qhw.search.export (docs/search.md)\n"
               f"qhw rtlsim network --config {name}.toml --weights {name}.npz "
               f"--inputs {name}.inputs.npy -o y.npy --check")
    with flow.atomic_file(paths["config"]) as tmp:
        Path(tmp).write_text(to_toml(desc, comment))
    with flow.atomic_file(paths["weights"]) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **params)
    if x is not None:
        paths["inputs"] = out / f"{name}.inputs.npy"
        with flow.atomic_file(paths["inputs"]) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, network_inputs(model, x))
    if info is not None:
        paths["info"] = out / f"{name}.json"
        flow.write_json(paths["info"], info)
    return paths


def _accuracy(record):
    return 1.0 - record["val_error"]


def choose(result, *, reference_bits=8, within=0.01):
    """The chosen configuration of a search result: the front point with the least area whose
    validation accuracy is at least the homogeneous ``reference_bits``-bit configuration's less
    ``within`` (default 1 point). Area is the synthesized transistors where the front was
    synthesized (``synth``), else the area model's.

    Returns ``(record, reference record, what the area is)``."""
    ref = [h for h in result["homogeneous"] if set(h["widths"].values()) == {reference_bits}]
    if not ref:
        raise QhwInputError(f"search.homogeneous: the chosen configuration is measured against "
                            f"homogeneous {reference_bits}-bit, which this search did not "
                            f"evaluate; add {reference_bits} to homogeneous")
    ref = ref[0]
    floor = _accuracy(ref) - within
    eligible = [r for r in result["front"] if _accuracy(r) >= floor - 1e-12]
    if not eligible:   # the front dominates the reference, so this cannot happen; be explicit
        raise QhwInputError(f"no front point within {100 * within:g} points of homogeneous "
                            f"{reference_bits}-bit")
    # a failed synthesis ({"error": ...}) leaves the choice to the model's figures
    synthesized = all(isinstance(r.get("synth", {}).get("generic", {}).get("transistors"),
                                 (int, float)) for r in eligible)

    def area(r):
        return r["synth"]["generic"]["transistors"] if synthesized else r["transistors"]
    best = min(eligible, key=lambda r: (area(r), r["val_error"]))
    return best, ref, ("synthesized transistors" if synthesized else "area-model transistors")


def trained_model(task, size, widths, *, steps, batch, lr, seed, test=True):
    """QAT of the configuration ``widths`` (a width per format name; binary points from the
    task's calibrated ranges) with the search's candidate budget and seed: the same model the
    search evaluated (deterministic), so its validation error equals the search's record.
    Needs PyTorch. Returns (:class:`~qhw.search.model.IntegerModel`, the evaluation dict,
    the :class:`~qhw.search.model.Prepared` task)."""
    from . import model as M
    prepared = M.prepare(task, size, progress=False)
    r = M.evaluate_candidate(prepared, prepared.formats(widths), steps=steps, batch=batch,
                             lr=lr, seed=seed, test=test)
    return r.pop("model"), r, prepared


def _search_record(result, widths):
    """The search's record of the configuration ``widths`` (front, homogeneous or candidates);
    None if the search did not evaluate it."""
    for r in result["front"] + result["homogeneous"] + result["candidates"]:
        if r["widths"] == widths:
            return r
    return None


def export_chosen(result, out, name, *, macs=None, test_sequences=8, widths=None):
    """Export a search's chosen configuration (``result["chosen"]``, :func:`choose`), or
    another configuration it evaluated (``widths``), as a network into the folder ``out``.

    The configuration is trained again with the search's candidate budget and seed (QAT is
    deterministic, so this is the model the search evaluated; its validation accuracy is
    checked against the search's record), exported (:func:`write_network`), and its network
    golden model is compared with the integer model on the whole test split (logits and
    classes, bit for bit). ``<name>.inputs.npy`` holds the first ``test_sequences`` test
    utterances' input maps (for ``qhw rtlsim network ... --check``).

    Parameters
    ----------
    result : dict
        :func:`qhw.search.search.run_search`'s result.
    out : path
        Folder for ``<name>.toml``, ``.npz``, ``.inputs.npy``, ``.json``.
    name : str
        The network's name and the files' stem.
    macs : int, optional
        The GRU's multipliers (default: the area model's folding, ``result["area_model"]``).
    test_sequences : int
        Test utterances written as inputs.
    widths : dict, optional
        A width per format name: a configuration the search evaluated, e.g. the homogeneous
        reference the chosen one is measured against (bench/bench_search_network.py). Default:
        the chosen configuration.

    Returns
    -------
    dict
        What ``<name>.json`` holds: the configuration (``widths``), the accuracies, the
        checks, the cost model's cycles per utterance and the paths.
    """
    from .. import registry
    from ..config import config_from_dict
    from ..hdl import network as hn
    check_name(name)
    if widths is None:
        chosen = result.get("chosen")
        if not chosen:
            raise QhwInputError("--export-network: the search has no chosen configuration (it "
                                "needs homogeneous 8-bit among search.homogeneous)")
        widths, search_val_accuracy = chosen["widths"], chosen["val_accuracy"]
    else:
        record = _search_record(result, widths)
        if record is None:
            raise QhwInputError("widths: not a configuration this search evaluated (its "
                                "validation accuracy is checked against the search's record)")
        search_val_accuracy = 1 - record["val_error"]
    s = result["settings"]
    if macs is None:
        macs = result["area_model"]["size"]["macs"]
    model, ev, prepared = trained_model(result["task"], result["size"], widths,
                                        steps=s["steps"], batch=s["batch"], lr=s["lr"],
                                        seed=s["eval_seed"])
    steps = int(prepared.data.test.x.shape[1])
    desc = network_description(model, steps, macs=macs, name=name)
    unit = registry.get("network")
    cfg = config_from_dict(unit.config, desc)
    params = unit.check_params(cfg, network_params(model, desc))
    test = prepared.data.test
    x = unit.check_inputs(cfg, network_inputs(model, test.x))
    logits = logits_of(unit.golden(cfg, params, x))
    expected = model.logits(test.x)
    same = bool(np.array_equal(logits, expected))
    one = hn.cost_model(cfg, 1)
    perf = registry.get("network").describe(cfg)["estimate_network_performance"]
    info = {
        "name": name, "task": result["task"], "size": result["size"],
        "widths": dict(widths), "formats": {n: list(model.cfg.formats[n])
                                            for n in g.FORMAT_NAMES},
        "search_val_accuracy": search_val_accuracy,
        "val_accuracy": ev["val_accuracy"], "test_accuracy": ev["test_accuracy"],
        "same_as_search": abs(ev["val_accuracy"] - search_val_accuracy) < 1e-12,
        "classes": list(prepared.data.classes), "steps_per_utterance": steps,
        "logit_scale": model.logit_scale,
        "golden_network_equals_integer_model": {
            "test_sequences": int(len(test)), "logits": same,
            "classes": bool(np.array_equal(np.argmax(logits, 1), np.argmax(expected, 1)))},
        "network_test_accuracy": float(np.mean(np.argmax(logits, 1) == test.y)),
        "cycles_per_utterance": {"model": perf["max_cycles"],
                                 "one_utterance_first_input_to_output": one.expected,
                                 "latency_from_last_frame": one.latency,
                                 "notes": one.notes},
        "gru_macs": cfg.layer(GRU_LAYER).config.macs,
    }
    if not same:   # nothing is written for a network that is not the model
        raise AssertionError(f"{name}: the network golden model differs from the integer "
                             f"classifier on the test split (an export bug)")
    paths = write_network(model, steps, out, name, macs=macs, x=test.x[:test_sequences],
                          info=info)
    info["paths"] = {k: str(v) for k, v in paths.items()}
    return info


def summary_text(info):
    """Lines for the command line: what was exported and its checks."""
    check = info["golden_network_equals_integer_model"]
    cyc = info["cycles_per_utterance"]
    lines = [
        f"exported the chosen configuration as network {info['name']!r}: "
        + ", ".join(info["paths"][k] for k in ("config", "weights", "inputs", "info")
                    if k in info["paths"]),
        f"  integer model: validation {100 * info['val_accuracy']:.1f} % (search: "
        f"{100 * info['search_val_accuracy']:.1f} %), test {100 * info['test_accuracy']:.1f} %; "
        f"network golden = integer model on {check['test_sequences']} test utterances: "
        f"logits {'bit-exact' if check['logits'] else 'DIFFER'}",
        f"  cycles per utterance ({info['steps_per_utterance']} steps, GRU on "
        f"{info['gru_macs']} MACs): {cyc['model']} (cost model); check the RTL with: qhw rtlsim "
        f"network --config {info['paths']['config']} --weights {info['paths']['weights']} "
        f"--inputs {info['paths'].get('inputs', 'X.npy')} -o y.npy --check"]
    if not info["same_as_search"]:
        lines.append("  note: the retrained model's validation accuracy differs from the "
                     "search's record (another PyTorch build or thread count?)")
    return "\n".join(lines)
