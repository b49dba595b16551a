"""Reports in a real browser (qhw.explore.browser): headless Chromium finds overflowing tables and
images, broken images and unrendered Markdown in hand-written pages, takes screenshots and
prints PDFs; then the real sweep report (a 3-point sweep) and, under ``slow``, the demo's.

Chromium is Debian's ``chromium``, installed here by :func:`browser.ensure_chromium` when missing
(root with apt-get, as in CI); where it cannot be had the browser tests are skipped and say why.
"""

import base64
import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qhw import cli  # noqa: E402
from qhw.explore import browser  # noqa: E402


@pytest.fixture(scope="module")
def chromium():
    found = browser.ensure_chromium()
    if not found.path:
        pytest.skip(f"no Chromium for the browser tests: {found.reason}")
    return found.path


def png_bytes(width, height, color):
    """A PNG of one colour, made with matplotlib (its own encoder, not hand-written bytes)."""
    buffer = io.BytesIO()
    plt.imsave(buffer, np.tile(np.array(color, float), (height, width, 1)), format="png")
    return buffer.getvalue()


def data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode()


def page(tmp_path, body, name="page.html", style=""):
    path = tmp_path / name
    path.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>"
                    f"<style>body{{font-family:sans-serif}}{style}</style></head>"
                    f"<body>{body}</body></html>")
    return path


def kinds(findings):
    return sorted((o["kind"], o["element"]) for o in findings["overflowing"])


def wide_table(columns):
    cells = "".join(f"<td>column_{i}_with_a_long_value</td>" for i in range(columns))
    return f"<table><tr>{cells}</tr></table>"


# Finding Chromium ---------------------------------------------------------------------------------

def test_a_bad_qhw_chromium_is_named_in_the_reason_and_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("QHW_CHROMIUM", str(tmp_path / "nowhere"))
    found = browser.ensure_chromium()
    assert found.path is None and "QHW_CHROMIUM" in found.reason and "nowhere" in found.reason
    with pytest.raises(browser.BrowserError, match="QHW_CHROMIUM"):
        browser.inspect_html(page(tmp_path, "<p>x</p>"))


def test_without_chromium_the_reason_says_what_was_looked_for_and_why_no_install(monkeypatch):
    monkeypatch.delenv("QHW_CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "CANDIDATES", ("no-such-browser-qhw",))
    found = browser.ensure_chromium(install=False)
    assert found.path is None and "no-such-browser-qhw" in found.reason
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    found = browser.ensure_chromium()
    assert found.path is None and "not root" in found.reason and "chromium" in found.reason


# The checks, on pages whose faults are known -----------------------------------------------------

def test_the_base_goes_into_the_head_or_after_the_doctype_and_the_script_last():
    base, script = b'<base href="file:///r/">', b"<script>"
    with_head = browser._with_inspector(b"<!DOCTYPE html><html><HEAD lang=en><p>x", "file:///r/")
    assert with_head.startswith(b"<!DOCTYPE html><html><HEAD lang=en>" + base + b"<p>x" + script)
    # No <head> (and a <header> is none): after the doctype, which must stay first (quirks mode).
    bare = browser._with_inspector(b"\n<!doctype html><header>h</header>", "file:///r/")
    assert bare.startswith(b"\n<!doctype html>" + base + b"<header>h</header>" + script)
    assert browser._with_inspector(b"<p>x</p>", "file:///r/").startswith(base + b"<p>x</p>")


def test_a_clean_page_has_no_findings(chromium, tmp_path):
    figure = data_uri(png_bytes(3000, 40, (0.2, 0.4, 0.8)))
    body = ("<h1>Report</h1><p>A <strong>bold</strong> word and <code>`code` with **stars**</code>"
            "</p><pre>| a | b |\n# not a heading\n[x](y)</pre>"
            "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
            # wider than the page, but inside a box that scrolls sideways: allowed
            f"<div style='overflow-x:auto'>{wide_table(40)}</div>"
            # 3000 px wide, scaled down to the page by max-width
            f"<img style='max-width:100%' src='{figure}' alt='figure'>")
    findings = browser.inspect_html(page(tmp_path, body))
    assert browser.problems(findings) == []
    assert not findings["page_overflow"]
    assert findings["scroll_width"] == findings["viewport_width"] <= 1280
    assert findings["counts"]["tables"] == 2 and findings["counts"]["images"] == 1


def test_overflowing_tables_and_images_are_found(chromium, tmp_path):
    figure = data_uri(png_bytes(1600, 20, (0.9, 0.1, 0.1)))
    body = (f"<div id='loose'>{wide_table(40)}</div>"
            # fits the 1280 px page but not the 500 px column it is in
            "<main id='column' style='max-width:500px'>"
            "<table id='narrow' style='width:900px'><tr><td>x</td></tr></table></main>"
            f"<img id='huge' src='{figure}' alt='too wide'>")
    findings = browser.inspect_html(page(tmp_path, body), width=1280)
    assert kinds(findings) == [("image", "img#huge"), ("page", "html"),
                               ("table", "div#loose > table"), ("table", "table#narrow")]
    narrow = next(o for o in findings["overflowing"] if o["element"] == "table#narrow")
    assert narrow["container"] == "main#column" and narrow["container_width"] == 500
    assert narrow["excess"] == pytest.approx(400, abs=1)
    assert findings["page_overflow"] and findings["scroll_width"] > 1280
    page_finding = next(o for o in findings["overflowing"] if o["kind"] == "page")
    assert "div#loose > table" in page_finding["culprits"]
    assert findings["broken_images"] == [] and findings["literal_markdown"] == []


def test_broken_images_are_found_and_relative_ones_resolve_from_the_pages_folder(chromium,
                                                                              tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "ok.png").write_bytes(png_bytes(20, 20, (0, 0.5, 0)))
    body = ("<img id='ok' src='figures/ok.png'>"
            "<img id='missing' src='figures/missing.png'>"
            "<img id='corrupt' src='data:image/png;base64,iVBORw0KGgoAAAAA'>"
            "<img id='remote' src='http://example.com/figure.png'>"  # not self-contained
            f"<img id='good' src='{data_uri(png_bytes(20, 20, (0, 0, 1)))}'>"
            "<div style='height:5000px'></div>"
            "<img id='lazy-missing' loading='lazy' src='figures/lazy.png'>"
            "<img id='lazy-ok' loading='lazy' src='figures/ok.png'>")
    findings = browser.inspect_html(page(tmp_path, body))
    broken = sorted(b["element"] for b in findings["broken_images"])
    assert broken == ["img#corrupt", "img#lazy-missing", "img#missing", "img#remote"]
    assert findings["counts"]["images"] == 7 and findings["overflowing"] == []


def test_literal_markdown_is_found_outside_code(chromium, tmp_path):
    body = ("<p id='bold'>a **bold** word</p>"
            "<p id='tick'>run `qhw sweep` first</p>"
            "<p id='link'>see [the docs](docs/sweeps.md)</p>"
            "<p id='heading'>## Headline</p>"
            "<p id='row'>| design | transistors |</p>"
            "<p id='fine'>2 * 3 = 6, a # in a sentence and a | b</p>"
            "<pre>**kept** `as` [is](x)\n# in pre</pre><p><code>`x` **y**</code></p>"
            "<p style='display:none'>**hidden**</p>")
    findings = browser.inspect_html(page(tmp_path, body))
    found = sorted((m["element"], m["marker"]) for m in findings["literal_markdown"])
    assert found == [("p#bold", "**"), ("p#heading", "# heading"), ("p#link", "]("),
                     ("p#row", "| table row"), ("p#tick", "`")]
    assert "**bold**" in next(m["text"] for m in findings["literal_markdown"]
                              if m["element"] == "p#bold")
    assert len(browser.problems(findings)) == 5


def fake_chromium(tmp_path, monkeypatch, script):
    """QHW_CHROMIUM set to a shell script around the real Chromium; it records its process id."""
    path = tmp_path / "fake-chromium"
    path.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\n{script}\n")
    path.chmod(0o755)
    monkeypatch.setenv("QHW_CHROMIUM", str(path))
    return tmp_path / "pid"


def assert_ended(pid_file):
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_chromium_that_hangs_after_its_result_is_ended_and_the_result_used(
        chromium, tmp_path, monkeypatch):
    pid = fake_chromium(tmp_path, monkeypatch, f'{chromium} "$@"\nsleep 300')
    monkeypatch.setattr(browser, "EXIT_GRACE_S", 0.5)
    path = page(tmp_path, "<p>a **bold** word</p>")
    findings = browser.inspect_html(path, timeout=60)
    assert [m["marker"] for m in findings["literal_markdown"]] == ["**"]
    assert_ended(pid)
    shot = browser.screenshot(path, tmp_path / "shot.png", full_page=False, height=300, timeout=60)
    assert (shot["width"], shot["height"]) == (1280, 300)
    assert_ended(pid)


def test_a_chromium_that_hangs_before_its_result_is_ended_tried_again_and_reported(
        chromium, tmp_path, monkeypatch):
    pid = fake_chromium(tmp_path, monkeypatch, "sleep 300")
    with pytest.raises(browser.BrowserError, match="took over 1 s, 2 times"):
        browser.inspect_html(page(tmp_path, "<p>x</p>"), timeout=1)
    assert_ended(pid)


# Screenshots and PDF -----------------------------------------------------------------------------

def test_screenshots_show_the_top_or_the_whole_page(chromium, tmp_path):
    # Red band at the top, blue band at the very bottom of a 3000 px page.
    body = ("<div style='height:100px;background:#f00'></div><div style='height:2800px'></div>"
            "<div style='height:100px;background:#00f'></div>")
    path = page(tmp_path, body, style="body{margin:0}")
    top = browser.screenshot(path, tmp_path / "top.png", width=1000, full_page=False, height=600)
    assert (top["width"], top["height"], top["cropped"]) == (1000, 600, False)
    whole = browser.screenshot(path, tmp_path / "whole.png", width=1000)
    assert (whole["width"], whole["height"], whole["page_height"]) == (1000, 3000, 3000)
    pixels = plt.imread(tmp_path / "whole.png")[..., :3]
    assert pixels.shape == (3000, 1000, 3)
    assert np.allclose(pixels[50, 500], (1, 0, 0)) and np.allclose(pixels[2950, 500], (0, 0, 1))
    cut = browser.screenshot(path, tmp_path / "cut.png", width=1000, max_height=1200)
    assert (cut["height"], cut["page_height"], cut["cropped"]) == (1200, 3000, True)
    # A height the caller measured is used as given (here a wrong one, to tell it from a measure).
    given = browser.screenshot(path, tmp_path / "given.png", width=1000, page_height=1500)
    assert (given["height"], given["page_height"], given["cropped"]) == (1500, 1500, False)


def test_printing_to_pdf_counts_the_pages(chromium, tmp_path):
    one = page(tmp_path, "<p>one page</p>", name="one.html")
    three = page(tmp_path, "<section>1</section><section>2</section><section>3</section>",
                 name="three.html",
                 style="section{break-after:page}section:last-child{break-after:auto}")
    assert browser.print_pdf(one, tmp_path / "one.pdf") == 1
    assert browser.print_pdf(three, tmp_path / "three.pdf") == 3


# The real reports ---------------------------------------------------------------------------------

# Two exponent-adder multipliers and the bf16 IEEE baseline that the sweep adds: generic synthesis
# only, no energy, no stalls (about 20 s on 2 cores with warm Verilator and synthesis caches).
TINY_SWEEP = """
name = "tiny"
[settings]
targets = ["generic"]
fmax = false
energy = false
stall = 0
[[sweep]]
unit = "expmul"
[sweep.grid]
act_format = ["fp16", "bf16"]
"""


def assert_renders_cleanly(report_html, width):
    findings = browser.inspect_html(report_html, width=width)
    assert browser.problems(findings) == [], f"at {width} px"
    # Something was examined: the checks are not vacuous.
    assert findings["counts"]["images"] >= 1 and findings["counts"]["tables"] >= 1
    return findings


def test_the_sweep_report_renders_without_overflow_broken_images_or_literal_markdown(chromium,
                                                                                     tmp_path):
    # One test for the whole sweep report, so that pytest-xdist's workers do not each sweep.
    (tmp_path / "tiny.toml").write_text(TINY_SWEEP)
    code = cli.main(["sweep", str(tmp_path / "tiny.toml"), "-o", str(tmp_path / "results"),
                     "--no-progress", "-j", "2", "--report", str(tmp_path / "report")])
    assert code == 0
    report_html = tmp_path / "report" / "report.html"
    for width in (1280, 800):  # a desktop window, and half of one (wide tables must scroll)
        assert_renders_cleanly(report_html, width)
    assert browser.print_pdf(report_html, tmp_path / "report.pdf") >= 1


@pytest.mark.slow
def test_the_demo_report_renders_cleanly_and_prints(chromium, tmp_path):
    # A quick demo of its own (about a minute): the default suite's demo run is in another module.
    assert cli.main(["demo", "--quick", "-o", str(tmp_path / "demo"), "--no-progress"]) == 0
    report_html = tmp_path / "demo" / "report" / "report.html"
    for width in (1280, 800):
        assert_renders_cleanly(report_html, width)
    assert browser.print_pdf(report_html, tmp_path / "demo.pdf") >= 1
