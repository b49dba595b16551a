"""What ``qhw config KIND`` prints: a unit's default configuration and every key explained.

One source of truth: the keys, types and defaults come from the unit's config dataclass, each
key's meaning from that dataclass's docstring (its Parameters section), and the allowed values
from the dataclass's own validation: each key is given a value no validator accepts and the
message the validator gives is what ``--explain`` prints (so it cannot drift from the checks).
"""

import dataclasses
import json
import re

from .config import config_from_dict, config_to_dict, to_toml
from .errors import QhwInputError

__all__ = ["default_config", "explain", "explain_text", "default_text"]

# Values that no field accepts: a probe of each kind finds the validator's message.
_PROBES = (-(10 ** 9), "?not-a-value?", 10 ** 9)


def default_config(unit):
    """The full default configuration of ``unit``: its default_config with every defaulted
    field filled in (a network: its default description as written)."""
    data = dict(unit.default_config)
    cfg = config_from_dict(unit.config, data)
    if unit.name == "network":
        return {k: v for k, v in data.items()}
    out = config_to_dict(cfg)
    return {k: v for k, v in out.items() if not k.startswith("_")}


def _docstring_entries(cls):
    """{field: (type text, meaning)} from a numpy-style Parameters section; an entry naming
    several fields ("c_in, c_out : int") applies to each."""
    doc = cls.__doc__ or ""
    match = re.search(r"Parameters\n\s*-+\n(.*?)(\n\s*\n\s*[A-Z][a-z]+\n\s*-+\n|\Z)", doc,
                      re.S)
    if not match:
        return {}
    lines = match.group(1).splitlines()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    entries, current = {}, None
    for line in lines:
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) == indent:
            head = line.strip()
            names, _, kind = head.partition(" : ")
            current = ([n.strip() for n in names.split(",")], kind.strip(), [])
            for n in current[0]:
                entries[n] = current
        elif current is not None:
            current[2].append(line.strip())
    return {n: (kind, " ".join(text)) for n, (_, kind, text) in entries.items()}


def _allowed(unit, base, name):
    """The validator's own words for ``name``: the message of the first probe it rejects."""
    for probe in _PROBES:
        try:
            config_from_dict(unit.config, {**base, name: probe})
        except QhwInputError as e:
            text = str(e)
            if text.startswith(f"{name}:"):
                text = re.sub(r",? got .*$", "", text[len(name) + 1:].strip())
                return text.removeprefix("must ").removeprefix("be ")
        except Exception:  # a probe of a type the validator does not expect: try the next
            continue
    return ""


def explain(unit):
    """[{key, type, default, meaning, allowed}] for every field of the unit's config."""
    base = default_config(unit)
    docs = _docstring_entries(unit.config)
    rows = []
    for f in dataclasses.fields(unit.config):
        if f.name.startswith("_"):
            continue
        kind, meaning = docs.get(f.name, ("", ""))
        kind = kind or (f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append({"key": f.name, "type": kind, "required": default is None
                     and f.default is dataclasses.MISSING,
                     "default": list(default) if isinstance(default, tuple) else default,
                     "meaning": meaning,
                     "allowed": "" if unit.name == "network" else _allowed(unit, base, f.name)})
    return rows


def explain_text(unit):
    """``--explain``'s text: one block per key."""
    lines = [f"{unit.name}: {unit.summary}", ""]
    for row in explain(unit):
        default = "required" if row["required"] else f"default {json.dumps(row['default'])}"
        lines.append(f"{row['key']} ({row['type'] or 'value'}; {default})")
        if row["meaning"]:
            lines.append(f"    {row['meaning']}")
        if row["allowed"]:
            lines.append(f"    allowed: {row['allowed']}")
    if unit.name == "network":
        from .golden.network import LAYER_KINDS
        from . import registry
        lines += ["", "layer kinds (each layer: name, kind and the kind's fields):"]
        for kind_name, kind in LAYER_KINDS.items():
            if kind_name == "dense":
                fields = "outputs, arith (xnor, bam or mac), and that unit's fields"
            else:
                fields = ", ".join(kind.user_fields(registry.get(kind.unit).config))
            lines.append(f"    {kind_name}: {fields}")
        lines.append("    (qhw config UNIT --explain for each unit's fields)")
    return "\n".join(lines) + "\n"


def default_text(unit, toml=False):
    """The default configuration as JSON (or TOML)."""
    data = default_config(unit)
    if toml:
        return to_toml(data)
    return json.dumps(data, indent=2) + "\n"
