"""Base for the frozen, validated configuration dataclasses of the units.

A unit's config is a frozen dataclass whose ``__post_init__`` validates every field and raises
:class:`~qhw.errors.QhwInputError` naming the field and what is allowed. :func:`config_from_dict`
turns a JSON object into one, rejecting unknown and missing keys.
"""

import dataclasses
import json
import tomllib
from pathlib import Path

from .errors import QhwInputError


def config_from_dict(cls, data, *, where="config"):
    """Build the dataclass ``cls`` from a mapping, rejecting unknown and missing keys."""
    if not isinstance(data, dict):
        raise QhwInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise QhwInputError(
            f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(fields)}")
    missing = [name for name, f in fields.items()
               if name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise QhwInputError(f"{where}: missing key {missing[0]!r} (required: {', '.join(missing)})")
    values = {}
    for name, value in data.items():
        # JSON has no tuples; the dataclasses keep tuples so that they stay hashable.
        values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def config_to_dict(config):
    """The JSON-ready mapping of a config (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def to_toml(data, comment=""):
    """A config mapping as TOML text: scalars and tables inline, a list of tables (a network's
    ``layers``) as an array of tables; ``None`` values are left out (TOML has no null).
    ``comment`` lines go first as ``#`` comments."""
    lines = [f"# {line}".rstrip() for line in comment.strip().splitlines()]
    lines += [""] if lines else []
    arrays = {k: v for k, v in data.items() if isinstance(v, (list, tuple)) and v
              and all(isinstance(x, dict) for x in v)}
    for key, value in data.items():
        if key not in arrays and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, tables in arrays.items():
        for table in tables:
            lines += ["", f"[[{key}]]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()
                                          if v is not None]
    return "\n".join(lines) + "\n"


def read_input_text(field, path):
    """The text of a file the user named; a missing or unreadable one is an input error."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise QhwInputError(f"{field}: file not found: {path}") from None
    except OSError as e:
        raise QhwInputError(f"{field}: cannot read {path}: {e.strerror}") from None


def parse_config_text(text, path):
    """A config file's mapping: TOML for ``.toml`` files, JSON otherwise."""
    path = Path(path)
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise QhwInputError(f"--config: {path} is not valid TOML ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise QhwInputError(f"--config: {path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def load_config(cls, path):
    """Read a config file (JSON, or TOML when it ends in ``.toml``) into ``cls``."""
    path = Path(path)
    data = parse_config_text(read_input_text("--config", path), path)
    return config_from_dict(cls, data, where=f"config {path.name}")


# Field validators: each raises QhwInputError naming the field and what is allowed.

def check_int(field, value, *, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise QhwInputError(f"{field}: must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in {low}..{high}"
        raise QhwInputError(f"{field}: must be {allowed}, got {value}")


def check_choice(field, value, choices):
    if value not in choices:
        raise QhwInputError(
            f"{field}: must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def check_divides(field, value, total, total_name):
    if total % value != 0:
        divisors = [d for d in range(1, total + 1) if total % d == 0]
        shown = ", ".join(map(str, divisors[:12])) + (", ..." if len(divisors) > 12 else "")
        raise QhwInputError(
            f"{field}: must divide {total_name} = {total}, got {value} (allowed: {shown})")


def check_pair(field, value):
    if (not isinstance(value, tuple) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise QhwInputError(f"{field}: must be a pair of integers >= 1, got {value!r}")
