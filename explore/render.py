"""Report blocks and their two renderings, shared by every qhw report (sweeps, the demo).

A report is a list of blocks (headings, paragraphs, lists, tables, figures). It is written as
Markdown (``report.md``, the figures as PNG files beside it) and that same Markdown is rendered
to HTML by markdown-it-py (CommonMark plus tables), so the two files cannot say different things
and the HTML never shows literal Markdown (asterisks, backticks). The HTML page is
self-contained: figures are embedded as data URIs, the style sheet is inline, tables sit in a
horizontally scrolling box so that a wide table never widens the page, and a print style sheet
makes it PDF-friendly.

Headings get GitHub's anchors (:func:`slug`), so a link ``[table](#against-the-baselines)``
works in the HTML page and in report.md on GitHub alike.

Also here: how ratios and figures are worded (:func:`ratio_phrase`, :func:`fmt`), the same in
every report.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import re
from pathlib import Path

from markdown_it import MarkdownIt

__all__ = ["Heading", "Para", "Bullets", "Table", "Figure", "Finding", "slug", "to_markdown",
           "to_html", "ratio", "ratio_phrase", "SAME_WITHIN", "fmt", "md_escape", "plain_text",
           "value"]


# Blocks -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Heading:
    text: str
    level: int = 2

    @property
    def anchor(self):
        return slug(self.text)


@dataclasses.dataclass
class Para:
    """A paragraph of Markdown text (inline markup: ``**bold**``, ```code```, links)."""
    text: str


@dataclasses.dataclass
class Bullets:
    """A list of Markdown items, numbered when ``ordered``."""
    items: list
    ordered: bool = False


@dataclasses.dataclass
class Table:
    """A table; cells are values (formatted by :func:`fmt`) or Markdown strings."""
    header: list
    rows: list


@dataclasses.dataclass
class Figure:
    """A PNG figure. ``points`` is how many data points it plots (the tests compare it with the
    results), None where counting does not apply."""
    path: Path
    caption: str
    points: int | None = None


@dataclasses.dataclass
class Finding:
    """One headline finding: a sentence in Markdown (with its link to the table behind it).
    :func:`plain_text` gives the terminal's version."""
    text: str

    @property
    def plain(self):
        return plain_text(self.text)


def slug(text):
    """GitHub's heading anchor: lower case, punctuation dropped (hyphens and underscores kept),
    spaces to hyphens."""
    text = plain_text(text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def plain_text(markdown):
    """Markdown inline text as plain text: links keep their words, emphasis and code marks go."""
    text = re.sub(r"(?<!\\)\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"(?<![\w*\\])\*(?!\s)([^*]+)(?<![\s\\])\*(?![\w*])", r"\1", text)
    return re.sub(r"\\([\\`*_\[\]|<>#])", r"\1", text)  # backslash escapes


def md_escape(text):
    """Text that must appear literally in Markdown (a config value, a file name, an error).
    Underscores stay: inside words (``act_format``) CommonMark never reads them as emphasis."""
    return re.sub(r"([\\`*\[\]|<>#])", r"\\\1", str(text))


# Numbers and ratios -----------------------------------------------------------------------------

def value(record, path):
    """``record['a']['b']`` for path ``'a.b'`` (a sweep point's record, a results dictionary);
    None where missing."""
    node = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def fmt(v, digits=3):
    """A value for a table cell or a sentence: thousands separated, whole numbers and anything
    from 10^digits up without decimals, ``digits`` significant digits below (never an exponent
    from 1 up), "–" for a missing value, yes/NO for booleans."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if (v == int(v) and abs(v) >= 1) or abs(v) >= 10 ** digits:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def ratio(design, baseline):
    """baseline / design, or None where either is missing or not positive."""
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
             for v in (design, baseline))
    return baseline / design if ok else None


#: Ratios within this of 1 are "the same": neither side wins.
SAME_WITHIN = 0.005


def _times(r):
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:,.0f}x"


def ratio_phrase(design, baseline, fewer="fewer", more="more"):
    """How the design compares with its baseline on a smaller-is-better quantity, worded so it
    reads right: "3.10x fewer" when the design needs less, "82.0x more" when it needs more
    (never "0.0122x fewer"), "the same" within 0.5 %. None where a value is missing."""
    r = ratio(design, baseline)
    if r is None:
        return None
    if abs(r - 1) < SAME_WITHIN:
        return "the same"
    return f"{_times(r)} {fewer}" if r > 1 else f"{_times(1 / r)} {more}"


# Rendering --------------------------------------------------------------------------------------

def _cell_md(v):
    text = v if isinstance(v, str) else fmt(v)
    # A pipe ends a cell unless escaped; one already escaped (md_escape) stays as it is.
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " ")) or " "


def to_markdown(blocks, title):
    out = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [(f"{i + 1}. " if b.ordered else "- ") + item
                    for i, item in enumerate(b.items)] + [""]
        elif isinstance(b, Table):
            out += ["| " + " | ".join(_cell_md(h) for h in b.header) + " |",
                    "|" + "---|" * len(b.header)]
            out += ["| " + " | ".join(_cell_md(v) for v in row) + " |" for row in b.rows]
            out += [""]
        elif isinstance(b, Figure):
            alt = plain_text(b.caption).split(". ")[0]
            out += [f"![{alt}]({b.path.parent.name}/{b.path.name})", "",
                    f"*{b.caption}*" if "*" not in b.caption else b.caption, ""]
        else:
            raise TypeError(f"not a report block: {b!r}")
    return "\n".join(out) + "\n"


_CSS = """
:root{--ink:#222;--muted:#555;--rule:#d0d0d0;--head:#f2f4f7}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1.2em;color:var(--ink);line-height:1.45}
h1{font-size:1.7em;margin-bottom:.3em}h2{margin-top:1.8em;border-bottom:1px solid var(--rule);
padding-bottom:.2em}h3{margin-top:1.4em}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse;font-size:88%;font-variant-numeric:tabular-nums}
td,th{border:1px solid var(--rule);padding:3px 7px;text-align:right;vertical-align:top}
th{background:var(--head);text-align:center}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto}p>img{display:block;margin:1.2em 0 .3em}
em{color:var(--muted)}code{background:#f3f3f3;padding:0 3px;border-radius:3px;font-size:90%}
ol>li,ul>li{margin:.35em 0}
@media print{body{max-width:none;margin:0;font-size:10pt}
.scroll{overflow:visible}table{font-size:8pt;page-break-inside:auto}tr{page-break-inside:avoid}
h2,h3{page-break-after:avoid}img{page-break-inside:avoid;max-height:24cm}a{color:inherit}}
"""


def _markdown_it(images):
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def heading_open(self, tokens, idx, options, env):
        tokens[idx].attrSet("id", slug(tokens[idx + 1].content))
        return md.renderer.renderToken(tokens, idx, options, env)

    def table_open(self, tokens, idx, options, env):
        return '<div class="scroll">' + md.renderer.renderToken(tokens, idx, options, env)

    def table_close(self, tokens, idx, options, env):
        return md.renderer.renderToken(tokens, idx, options, env) + "</div>"

    default_image = md.renderer.rules["image"]

    def image(self, tokens, idx, options, env):
        src = tokens[idx].attrGet("src")
        if src in images:
            tokens[idx].attrSet("src", images[src])
        return default_image(tokens, idx, options, env)

    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("table_open", table_open)
    md.add_render_rule("table_close", table_close)
    md.add_render_rule("image", image)
    return md


def to_html(blocks, title):
    """One self-contained page: the Markdown of :func:`to_markdown` rendered, figures embedded."""
    images = {}
    for b in blocks:
        if isinstance(b, Figure):
            data = base64.b64encode(Path(b.path).read_bytes()).decode()
            images[f"{b.path.parent.name}/{b.path.name}"] = f"data:image/png;base64,{data}"
    body = _markdown_it(images).render(to_markdown(blocks, title))
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}"
            f"</body></html>\n")
