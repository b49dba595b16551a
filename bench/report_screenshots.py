"""Screenshots of reports for the docs, taken in headless Chromium (qhw.explore.browser).

    .venv/bin/python bench/report_screenshots.py [NAME=REPORT_DIR ...] [-o docs/img]
        [--width 1280] [--top-height 900] [--max-height 6000] [--max-kb 600]

For each report folder (default: ``demo=build/demo/report`` from ``make demo`` and
``conv_bits=build/reports/conv_bits`` from explore/sweeps/conv_bits.toml; a relative
REPORT_DIR is taken from the repository root) writes, from its ``report.html``:

- ``report_<NAME>_top.png``: the top of the page, ``--width`` x ``--top-height`` pixels;
- ``report_<NAME>.png``: the whole page, cut to its top ``--max-height`` pixels when longer.

Each PNG is re-encoded with Pillow (optimised, then reduced to a 256-colour palette, then to
64 colours, until it is under ``--max-kb``). The script also prints what the browser checks find
(overflowing tables or images, broken images, literal Markdown) at ``--width`` and the page count
of the PDF print, so that a look at the pictures comes with the figures behind them.

Without a Chromium it installs Debian's, as the browser test does
(:func:`qhw.explore.browser.ensure_chromium`: apt-get, when run as root), or stops saying why.
"""

import argparse
import re
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qhw.explore import browser  # noqa: E402

DEFAULT_REPORTS = ["demo=build/demo/report", "conv_bits=build/reports/conv_bits"]
NAME = re.compile(r"[A-Za-z0-9_-]+")


def fail(message):
    """Bad input or no browser: one line, exit status 2, nothing written."""
    print(f"report_screenshots.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_reports(items):
    """``NAME=DIR`` arguments as (name, report.html path) pairs, all checked before any work.

    Parameters
    ----------
    items : list of str

    Returns
    -------
    list of (str, Path)
    """
    reports = []
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not NAME.fullmatch(name) or not folder:
            fail(f"report '{item}': expected NAME=REPORT_DIR, NAME of letters, digits, _ and -")
        page = ROOT / folder / "report.html"  # an absolute folder stays as it is
        if not page.is_file():
            fail(f"report '{item}': no report.html in {page.parent}")
        reports.append((name, page))
    return reports


def compress(source, target, max_kb):
    """Re-encode a PNG with Pillow until it is under ``max_kb`` kilobytes.

    Parameters
    ----------
    source, target : Path
        The PNG to read and the one to write.
    max_kb : float
        The size to get under (kB of 1000 bytes).

    Returns
    -------
    str
        How it was encoded: "RGB", "256 colours" or "64 colours" (the last even when still over).
    """
    image = Image.open(source).convert("RGB")
    for colours in (None, 256, 64):
        encoded = image if colours is None else image.quantize(colors=colours)
        encoded.save(target, optimize=True)
        if target.stat().st_size <= max_kb * 1000:
            break
    return "RGB" if colours is None else f"{colours} colours"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reports", nargs="*", default=DEFAULT_REPORTS, metavar="NAME=REPORT_DIR")
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--top-height", type=int, default=900)
    ap.add_argument("--max-height", type=int, default=6000)
    ap.add_argument("--max-kb", type=float, default=600)
    args = ap.parse_args(argv)
    for field in ("width", "top_height", "max_height", "max_kb"):
        if getattr(args, field) <= 0:
            fail(f"--{field.replace('_', '-')}: must be positive, got {getattr(args, field)}")
    reports = parse_reports(args.reports)
    found = browser.ensure_chromium()
    if not found.path:
        fail(found.reason)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name, page in reports:
            findings = browser.inspect_html(page, width=args.width)
            issues = browser.problems(findings)
            pages = browser.print_pdf(page, scratch / f"{name}.pdf")
            print(f"{name}: {page}: {findings['scroll_width']} x {findings['scroll_height']} px "
                  f"at a {findings['viewport_width']} px viewport, {pages} PDF pages, "
                  f"{len(issues)} browser findings")
            for line in issues:
                print(f"  {line}")
            shots = [(f"report_{name}_top.png",
                      dict(full_page=False, height=args.top_height)),
                     # the height measured above, at the same width: no second measuring run
                     (f"report_{name}.png", dict(full_page=True, max_height=args.max_height,
                                                 page_height=findings["scroll_height"]))]
            for filename, options in shots:
                raw = scratch / filename
                shot = browser.screenshot(page, raw, width=args.width, **options)
                encoding = compress(raw, output / filename, args.max_kb)
                size = (output / filename).stat().st_size / 1000
                cut = f" (cut from {shot['page_height']} px)" if shot["cropped"] else ""
                print(f"  wrote {output / filename}: {shot['width']} x {shot['height']} px{cut}, "
                      f"{encoding}, {size:.0f} kB")


if __name__ == "__main__":
    main()
