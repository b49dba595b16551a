"""Shared output of the bench scripts: markdown tables and the ``<name>.json``/``<name>.md`` pair.

The scripts run as ``python bench/bench_x.py``, so ``bench/`` is on ``sys.path`` and they import
this module as ``_report``.
"""

import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def row(cells):
    """One markdown table line: ``| a | b | c |``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header, rows):
    """Lines of a markdown table: the header, the ``|---|`` separator, one line per row.

    ``header`` is the column names, ``rows`` an iterable of cell lists (cells go through
    ``str``; format numbers before passing them).
    """
    return [row(header), "|" + "---|" * len(header)] + [row(r) for r in rows]


def write_results(output, name, res, md, json_default=None):
    """Write ``output/<name>.json`` (``res``, indent 2) and ``output/<name>.md`` (``md``), and
    print ``md``."""
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(res, indent=2, default=json_default) + "\n")
    (output / f"{name}.md").write_text(md)
    print(md)


def command(script, argv=None):
    """The command line that reproduces a bench run, as the docs record it: the interpreter
    (``.venv/bin/python`` when it is this repository's virtual environment, which the README's
    commands install, else ``python``), the script's path from the repository root, and its
    arguments shell-quoted (``argv``: ``sys.argv[1:]`` when None)."""
    in_venv = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
    path = Path(script).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join([".venv/bin/python" if in_venv else "python", shlex.quote(str(shown))]
                    + [shlex.quote(str(a)) for a in args])
