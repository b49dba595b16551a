"""Shared output of the bench scripts: markdown tables and the ``<name>.json``/``<name>.md`` pair.

The scripts run as ``python bench/bench_x.py``, so ``bench/`` is on ``sys.path`` and they import
this module as ``_report``.
"""

import json


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
