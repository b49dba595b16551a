"""Reports in a real browser: headless Chromium checks a page's own layout, takes screenshots and
prints it to PDF.

The checks run as JavaScript inside Chromium, on the layout the browser computed, not on the HTML
text: a table is too wide when the browser lays it out wider than its container, an image is
broken when the browser failed to decode it. Chromium is driven through its own command line
(``--headless --dump-dom``, ``--screenshot``, ``--print-to-pdf``), so nothing beyond Debian's
``chromium`` package is needed: :func:`inspect_html` renders a copy of the page with a script
added at its end, which writes its findings as JSON into an attribute of the ``<html>`` element,
and reads them back from the DOM that Chromium dumps once the page has loaded.

Chromium is looked for as ``$QHW_CHROMIUM``, ``chromium``, ``chromium-browser``,
``google-chrome`` (:func:`find_chromium`); :func:`ensure_chromium` installs Debian's package with
apt-get when it is missing and this process may (root, apt-get present), and otherwise says why
it cannot.
"""

import fcntl
import html.parser
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

#: Executable names tried in order after ``$QHW_CHROMIUM``.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Debian's package that :func:`ensure_chromium` installs.
DEBIAN_PACKAGE = "chromium"
#: Installed with it: a font, since Chromium only recommends one and a bare image may have none
#: (text would then not render at all).
DEBIAN_FONT_PACKAGE = "fonts-dejavu-core"
#: The findings' attribute on ``<html>``; the script builds the name from two halves so that its
#: own source text never contains it.
FINDINGS_ATTRIBUTE = "data-qhw-findings"
#: Virtual milliseconds Chromium lets the page run before it dumps the DOM, takes the screenshot
#: or prints. Virtual time stands still while resources are loading, so this bounds the page's
#: own timers and scripts, not the loading of large embedded figures.
VIRTUAL_TIME_MS = 5000
#: The tallest full-page screenshot taken; longer pages are cut to their top this many pixels.
MAX_SCREENSHOT_HEIGHT = 16384
#: Seconds Chromium gets to exit by itself once its result is written, before it is ended.
EXIT_GRACE_S = 3

# Headless flags common to every run. --no-sandbox: Chromium refuses to start as root with its
# sandbox, and the sandbox cannot start in most containers; the pages are the project's own local
# reports. The host-resolver rule makes every remote address fail to resolve, so a report that
# is not self-contained shows its remote images as broken instead of depending on the network.
# --run-all-compositor-stages-before-draw: without it a screenshot on a loaded machine sometimes
# catches the page half rasterized (blank below some line; 1 in 12 at a load of 11 on 2 cores,
# none in 20 with it).
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--mute-audio", "--force-device-scale-factor=1", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--run-all-compositor-stages-before-draw",
)

# The inspection, evaluated in the page once it has loaded (and its images decoded or failed).
_INSPECT_JS = r"""
(function () {
  "use strict";
  const ATTRIBUTE = "data-qhw-" + "findings";
  const TOLERANCE = 1;  // CSS pixels: sub-pixel rounding of box edges is no overflow
  const root = document.documentElement;

  function describe(element) {
    // A CSS-like path that names the element, e.g. "body > main > table:nth-of-type(2)".
    const parts = [];
    for (let e = element; e && e.nodeType === 1 && e !== root; e = e.parentElement) {
      let part = e.localName;
      if (e.id) { parts.unshift(part + "#" + e.id); break; }
      const parent = e.parentElement;
      const same = parent ? Array.from(parent.children).filter(c => c.localName === e.localName)
                          : [];
      if (same.length > 1) part += ":nth-of-type(" + (same.indexOf(e) + 1) + ")";
      parts.unshift(part);
    }
    return parts.join(" > ") || "html";
  }
  function scrollsHorizontally(e) {
    // html and body scrolling is the page itself scrolling sideways: that is the overflow.
    if (e === root || e === document.body) return false;
    const o = getComputedStyle(e).overflowX;
    return o === "auto" || o === "scroll";
  }
  function insideScroller(e) {
    for (let a = e.parentElement; a; a = a.parentElement) if (scrollsHorizontally(a)) return true;
    return false;
  }
  function boxless(e) {
    const d = getComputedStyle(e).display;
    return d === "inline" || d === "contents";
  }
  function source(img) {
    const s = img.currentSrc || img.getAttribute("src") || "";
    if (!s.startsWith("data:") || s.length <= 60) return s;
    return s.slice(0, 40) + "... (" + s.length + " characters)";
  }
  function snippet(text, at) {
    const start = Math.max(0, at - 40);
    return text.slice(start, at + 40).replace(/\s+/g, " ").trim();
  }

  async function inspect() {
    const viewportWidth = root.clientWidth;
    const overflowing = [];

    // The page wider than the viewport, and the outermost elements that stick out of it.
    const scrollWidth = root.scrollWidth;
    if (scrollWidth > viewportWidth) {
      const culprits = [];
      for (const e of document.body.querySelectorAll("*")) {
        const r = e.getBoundingClientRect();
        const parent = e.parentElement.getBoundingClientRect();
        if (r.right > viewportWidth + TOLERANCE && parent.right <= viewportWidth + TOLERANCE
            && !insideScroller(e)) culprits.push(describe(e));
        if (culprits.length >= 10) break;
      }
      overflowing.push({kind: "page", element: "html", width: scrollWidth,
                        container_width: viewportWidth, excess: scrollWidth - viewportWidth,
                        culprits: culprits});
    }

    // Tables wider than a box they sit in, up to the first box that scrolls sideways.
    const tables = Array.from(document.querySelectorAll("table"));
    for (const t of tables) {
      const r = t.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;  // not rendered (display: none)
      for (let a = t.parentElement; a; a = a.parentElement) {
        if (boxless(a)) continue;
        if (scrollsHorizontally(a)) break;
        const left = a.getBoundingClientRect().left + a.clientLeft;
        const right = left + a.clientWidth;
        if (r.right > right + TOLERANCE || r.left < left - TOLERANCE) {
          overflowing.push({kind: "table", element: describe(t), width: r.width,
                            container: describe(a), container_width: a.clientWidth,
                            excess: Math.max(r.right - right, left - r.left)});
          break;
        }
      }
    }

    // Images wider than the page; images that failed to load or decode.
    const images = Array.from(document.images);
    // After the load event every image has loaded or failed, except lazy ones off screen: those
    // are made eager and awaited. (img.decode() never settles under Chromium's virtual time.)
    await Promise.all(images.filter(img => !img.complete).map(img => new Promise(done => {
      img.addEventListener("load", done);
      img.addEventListener("error", done);
      img.loading = "eager";
      setTimeout(done, 3000);  // virtual ms; one still incomplete then counts as broken
    })));
    const broken = [];
    images.forEach(img => {
      const r = img.getBoundingClientRect();
      if (r.width > viewportWidth + TOLERANCE)
        overflowing.push({kind: "image", element: describe(img), width: r.width,
                          container_width: viewportWidth, excess: r.width - viewportWidth});
      if (!img.complete || img.naturalWidth === 0)
        broken.push({element: describe(img), src: source(img)});
    });

    // Visible text with Markdown markup left as it was. Code keeps its characters literally.
    const verbatim = "script, style, code, pre, kbd, samp, textarea, noscript, template";
    const markers = [
      ["**", t => t.indexOf("**")],
      ["`", t => t.indexOf("`")],
      ["](", t => t.indexOf("](")],
      ["# heading", t => t.search(/^[ \t]*#{1,6} /m)],
      ["| table row", t => t.search(/^[ \t]*\| /m)],
    ];
    const literal = [];
    let textNodes = 0;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest(verbatim)) continue;
      if (parent.getClientRects().length === 0) continue;  // not rendered
      const text = node.nodeValue;
      if (!text.trim()) continue;
      textNodes += 1;
      for (const [marker, find] of markers) {
        const at = find(text);
        if (at >= 0)
          literal.push({marker: marker, text: snippet(text, at), element: describe(parent)});
      }
    }

    return {
      viewport_width: viewportWidth,
      scroll_width: scrollWidth,
      scroll_height: root.scrollHeight,
      page_overflow: scrollWidth > viewportWidth,
      overflowing: overflowing,
      broken_images: broken,
      literal_markdown: literal,
      counts: {tables: tables.length, images: images.length, text_nodes: textNodes},
    };
  }

  async function run() {
    let findings;
    try {
      if (document.fonts) await document.fonts.ready;
      findings = await inspect();
    } catch (error) {
      findings = {error: String(error && error.stack || error)};
    }
    root.setAttribute(ATTRIBUTE, JSON.stringify(findings));
  }
  if (document.readyState === "complete") run();
  else window.addEventListener("load", run);
})();
"""


class BrowserError(RuntimeError):
    """Chromium is missing, failed, timed out, or gave no result."""


class ChromiumLookup(NamedTuple):
    """What :func:`ensure_chromium` found: ``path`` (None when there is none) and, then,
    ``reason``, one line saying why; ``installed`` is True when this call installed it."""

    path: str | None
    reason: str | None = None
    installed: bool = False


def find_chromium():
    """The Chromium executable to use.

    Returns
    -------
    str or None
        ``$QHW_CHROMIUM`` when set (even when it is not executable: :func:`ensure_chromium`
        then says so), else the first of :data:`CANDIDATES` on ``PATH`` or in ``/usr/bin``,
        else None.
    """
    chosen = os.environ.get("QHW_CHROMIUM")
    if chosen:
        return chosen
    for name in CANDIDATES:
        path = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if path:
            return path
    return None


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def ensure_chromium(install=True, timeout=900):
    """Find Chromium, installing Debian's ``chromium`` package with apt-get when it is missing.

    Installs only when ``install`` is true, the process runs as root and ``apt-get`` exists;
    runs ``apt-get update`` first, quietly, each step bounded by ``timeout``. Concurrent callers
    (pytest-xdist workers) take turns through a lock file, so apt never sees two installs.

    Parameters
    ----------
    install : bool
        Whether to try installing when Chromium is missing.
    timeout : float
        Seconds allowed to each apt-get command.

    Returns
    -------
    ChromiumLookup
        The executable's path, or None and the reason (one line) why there is none.
    """
    chosen = os.environ.get("QHW_CHROMIUM")
    if chosen:
        if _executable(chosen):
            return ChromiumLookup(chosen)
        return ChromiumLookup(None, f"QHW_CHROMIUM={chosen} is not an executable file")
    path = find_chromium()
    if path:
        return ChromiumLookup(path)
    looked = ", ".join(CANDIDATES)
    missing = f"no Chromium found (looked for $QHW_CHROMIUM, {looked})"
    if not install:
        return ChromiumLookup(None, missing)
    if os.geteuid() != 0:
        return ChromiumLookup(None, f"{missing} and not root, so apt-get cannot install Debian's "
                                    f"'{DEBIAN_PACKAGE}': install it or set QHW_CHROMIUM")
    apt = shutil.which("apt-get")
    if not apt:
        return ChromiumLookup(None, f"{missing} and no apt-get to install it with: install "
                                    f"Chromium or set QHW_CHROMIUM")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock_path = Path(tempfile.gettempdir()) / "qhw-chromium-install.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = find_chromium()  # another process may have installed it while this one waited
        if path:
            return ChromiumLookup(path)
        # DPkg::Lock::Timeout: wait for another apt run to finish instead of failing at once.
        steps = ([apt, "-qq", "update"],
                 [apt, "-qq", "-y", "-o", "DPkg::Lock::Timeout=120", "install",
                  "--no-install-recommends", DEBIAN_PACKAGE, DEBIAN_FONT_PACKAGE])
        for step in steps:
            try:
                done = subprocess.run(step, env=env, capture_output=True, text=True,
                                      timeout=timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return ChromiumLookup(None, f"'{' '.join(step)}' took over {timeout:g} s")
            if done.returncode != 0:
                last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
                return ChromiumLookup(None, f"'{' '.join(step)}' failed "
                                            f"(exit status {done.returncode}): {last}")
        path = find_chromium()
        if not path:
            return ChromiumLookup(None, f"apt-get installed '{DEBIAN_PACKAGE}' but none of "
                                        f"{looked} is on PATH")
        return ChromiumLookup(path, installed=True)


def _chromium():
    """The executable for a run, or a BrowserError saying why there is none (no install)."""
    found = ensure_chromium(install=False)
    if not found.path:
        raise BrowserError(found.reason)
    return found.path


def _run(arguments, timeout, finished, attempts=2):
    """Run Chromium with its own fresh profile; returns its standard output.

    Headless Chromium can hang after it has written its result (reported for the new headless
    mode: cypress-io/cypress#27264), and a screenshot run hung once here in about 50 on a loaded
    machine: once ``finished`` says the result is there, Chromium gets :data:`EXIT_GRACE_S` to
    exit and is then ended; a run past ``timeout`` is ended and tried again, up to ``attempts``
    runs. Chromium starts helper processes (zygote, renderers); they run in a new session, so
    that ending it ends all of them.

    Parameters
    ----------
    arguments : list of str
        Chromium's arguments after the common flags and the profile.
    timeout : float
        Seconds per run.
    finished : callable
        ``finished(stdout, stderr)``, the bytearrays read so far (not copied on each poll):
        whether the result has been written.
    attempts : int
        Runs before giving up.

    Returns
    -------
    str
        Chromium's standard output.
    """
    for _ in range(attempts):
        with tempfile.TemporaryDirectory(prefix="qhw-chromium-") as profile:
            command = [_chromium(), *_FLAGS, f"--user-data-dir={profile}", *arguments]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
            out, err = bytearray(), bytearray()
            readers = [threading.Thread(target=_drain, args=(pipe, sink), daemon=True)
                       for pipe, sink in ((process.stdout, out), (process.stderr, err))]
            for reader in readers:
                reader.start()
            deadline = time.monotonic() + timeout
            outcome = None
            while outcome is None:
                try:
                    process.wait(timeout=0.1)
                    outcome = "exited"
                except subprocess.TimeoutExpired:
                    if finished(out, err):
                        try:
                            process.wait(timeout=EXIT_GRACE_S)
                        except subprocess.TimeoutExpired:
                            pass
                        outcome = "finished"
                    elif time.monotonic() > deadline:
                        outcome = "timeout"
            _end(process)
            for reader in readers:
                reader.join(timeout=5)
            if outcome == "timeout":
                continue
            if outcome == "exited" and process.returncode != 0:
                tail = err.decode(errors="replace").strip().splitlines()[-3:]
                raise BrowserError(f"Chromium failed (exit status {process.returncode}): "
                                   + " / ".join(tail))
            return out.decode(errors="replace")
    raise BrowserError(f"Chromium took over {timeout:g} s, {attempts} times: {' '.join(arguments)}")


def _drain(pipe, sink):
    """Read a pipe to its end into a bytearray (a thread per pipe: neither can fill and block)."""
    for chunk in iter(lambda: pipe.read1(65536), b""):
        sink.extend(chunk)
    pipe.close()


def _end(process):
    """End a Chromium run still going, with its helpers (its process group). A run that exited
    by itself is left alone: its group id may already be free for reuse."""
    if process.poll() is None:  # alive (or a zombie, which keeps its group id ours)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wrote_file(out, err):
    """Chromium's own line (on stderr) once --screenshot or --print-to-pdf has written its file."""
    return b"bytes written to file" in err


def _dumped_dom(out, err):
    """The whole DOM is on stdout."""
    return out.rstrip().endswith(b"</html>")


def _page(path):
    path = Path(path).resolve()
    if not path.is_file():
        raise BrowserError(f"page: {path} is not a file")
    return path


class _FindingsParser(html.parser.HTMLParser):
    """Reads the findings attribute of the dumped page's ``<html>`` element."""

    def __init__(self):
        super().__init__()
        self.findings = None

    def handle_starttag(self, tag, attrs):
        if tag == "html" and self.findings is None:
            self.findings = dict(attrs).get(FINDINGS_ATTRIBUTE)


def _with_inspector(page_bytes, base_uri):
    """The page with a ``<base>`` (so that its relative URLs still resolve from the copy) and
    the inspection script at its end."""
    base = f'<base href="{base_uri}">'.encode()
    script = b"<script>" + _INSPECT_JS.encode() + b"</script>"
    head = re.search(rb"<head\b[^>]*>", page_bytes, re.IGNORECASE)
    if head:
        page_bytes = page_bytes[:head.end()] + base + page_bytes[head.end():]
    else:  # after a doctype, which must stay first (without it the page renders in quirks mode)
        doctype = re.match(rb"\s*<!doctype[^>]*>", page_bytes, re.IGNORECASE)
        at = doctype.end() if doctype else 0
        page_bytes = page_bytes[:at] + base + page_bytes[at:]
    return page_bytes + script


def inspect_html(path, width=1280, height=900, timeout=60):
    """Load a page in headless Chromium and check its layout there.

    The page is rendered from a temporary copy with the inspection script added (the original
    is not touched); its relative URLs resolve from the original's folder. Remote addresses do
    not resolve (a report must be self-contained). What the findings leave out: CSS background
    images, ``<object>``/``<iframe>`` content, and text clipped by ``overflow: hidden``.

    Parameters
    ----------
    path : str or Path
        The HTML file.
    width, height : int
        Browser window size in CSS pixels (device scale 1). The layout's viewport is ``width``
        wide less any vertical scrollbar.
    timeout : float
        Seconds per Chromium run; a run that takes longer is ended and tried once more, then
        BrowserError is raised.

    Returns
    -------
    dict
        ``viewport_width``, ``scroll_width`` and ``scroll_height`` (CSS pixels, as the page laid
        out); ``page_overflow`` (the page wider than the viewport); ``overflowing``: one
        ``{kind, element, width, container_width, excess, ...}`` (``excess``: the pixels it
        sticks out by) for the page wider than the viewport (``kind`` "page", with up to 10
        ``culprits`` that stick out of it), for each table that sticks out of a box it is in (up
        to the first box that scrolls sideways, which is allowed; ``container`` names the box)
        and for each image wider than the viewport; ``broken_images``: ``{element, src}`` for
        each image that failed to load or decode (naturalWidth 0, or still incomplete 3 virtual
        seconds after the load event); ``literal_markdown``: ``{marker, text, element}`` for
        each rendered text node outside code, pre, kbd, samp and textarea that holds ``**``, a
        backtick, ``](``, or a line starting with ``# `` (up to ``###### ``) or ``| ``;
        ``counts``: the tables, images and text nodes examined.

    Raises
    ------
    BrowserError
        No Chromium, Chromium failed or timed out, or the page never finished loading.
    """
    page = _page(path)
    with tempfile.TemporaryDirectory(prefix="qhw-inspect-") as folder:
        copy = Path(folder) / "page.html"
        copy.write_bytes(_with_inspector(page.read_bytes(), page.parent.as_uri() + "/"))
        dom = _run(["--dump-dom", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                    f"--window-size={width},{height}", copy.as_uri()], timeout, _dumped_dom)
    parser = _FindingsParser()
    parser.feed(dom)
    if parser.findings is None:
        raise BrowserError(f"{page}: the page did not finish loading in Chromium "
                           f"(no findings after {VIRTUAL_TIME_MS} virtual ms)")
    findings = json.loads(parser.findings)
    if "error" in findings:
        raise BrowserError(f"{page}: the inspection script failed: {findings['error']}")
    return findings


def problems(findings):
    """One line per problem in :func:`inspect_html`'s findings; empty when there are none.

    Parameters
    ----------
    findings : dict
        What :func:`inspect_html` returned.

    Returns
    -------
    list of str
    """
    lines = []
    for o in findings["overflowing"]:
        box = o.get("container", "the viewport")
        extra = f"; sticking out: {', '.join(o['culprits'])}" if o.get("culprits") else ""
        lines.append(f"{o['kind']} {o['element']} ({o['width']:.0f} px wide) sticks out of "
                     f"{box} ({o['container_width']:.0f} px) by {o['excess']:.0f} px{extra}")
    for b in findings["broken_images"]:
        lines.append(f"broken image {b['element']} ({b['src']})")
    for m in findings["literal_markdown"]:
        lines.append(f"literal Markdown {m['marker']!r} in {m['element']}: {m['text']!r}")
    return lines


def _png_size(path):
    """(width, height) from a PNG file's IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise BrowserError(f"{path}: Chromium wrote no PNG")
    return struct.unpack(">II", head[16:24])


def _write_with_chromium(page, target, option, arguments, timeout, what):
    """Have Chromium write a file of ``page`` (``--screenshot``, ``--print-to-pdf``).

    Parameters
    ----------
    page : Path
        The HTML file, checked by :func:`_page`.
    target : str or Path
        The file to write; its folder is created and an old copy removed first, so that a run
        that writes nothing cannot pass for one that did.
    option : str
        Chromium's option that writes the file: ``--screenshot`` or ``--print-to-pdf``.
    arguments : list of str
        Chromium's further arguments.
    timeout : float
        Seconds per Chromium run.
    what : str
        The file's kind for the error ("screenshot", "PDF").

    Returns
    -------
    Path
        The written file, resolved.
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    _run([f"{option}={target}", *arguments, f"--virtual-time-budget={VIRTUAL_TIME_MS}",
          page.as_uri()], timeout, _wrote_file)
    if not target.is_file():
        raise BrowserError(f"Chromium wrote no {what} of {page}")
    return target


def screenshot(path, png, width=1280, full_page=True, height=900,
               max_height=MAX_SCREENSHOT_HEIGHT, page_height=None, timeout=60):
    """A PNG screenshot of a page in headless Chromium, scrollbars hidden.

    Parameters
    ----------
    path : str or Path
        The HTML file.
    png : str or Path
        The PNG to write (its folder is created).
    width : int
        Window width in CSS pixels (and PNG pixels: device scale 1).
    full_page : bool
        True: the whole page, as tall as :func:`inspect_html` measures it (a window that tall,
        so that CSS ``vh`` units see that height), cut to ``max_height``. False: the top
        ``height`` pixels.
    height, max_height : int
        Window height for ``full_page=False``; the tallest full-page image.
    page_height : int or None
        For ``full_page``: the page's height when the caller has measured it already
        (``inspect_html(path, width=width)["scroll_height"]``), which saves a Chromium run;
        None: measured here.
    timeout : float
        Seconds per Chromium run.

    Returns
    -------
    dict
        ``width`` and ``height`` of the PNG, ``page_height`` (the page's own height; None when
        not measured) and ``cropped`` (True when the page is taller than the image).
    """
    page = _page(path)
    if full_page:
        if page_height is None:
            page_height = inspect_html(page, width=width, timeout=timeout)["scroll_height"]
        height = min(page_height, max_height)
    else:
        page_height = None
    png = _write_with_chromium(page, png, "--screenshot",
                               ["--hide-scrollbars", f"--window-size={width},{height}"], timeout,
                               "screenshot")
    got_width, got_height = _png_size(png)
    return {"width": got_width, "height": got_height, "page_height": page_height,
            "cropped": page_height is not None and page_height > got_height}


def print_pdf(path, pdf, timeout=60):
    """Print a page to PDF in headless Chromium (its print styles, no header or footer).

    Parameters
    ----------
    path : str or Path
        The HTML file.
    pdf : str or Path
        The PDF to write (its folder is created).
    timeout : float
        Seconds per Chromium run (one that takes longer is ended and tried once more).

    Returns
    -------
    int
        The number of pages, counted from the PDF's page objects (Chromium's PDF writer keeps
        object dictionaries uncompressed).

    Raises
    ------
    BrowserError
        Chromium failed, or wrote no PDF, or one with no page.
    """
    pdf = _write_with_chromium(_page(path), pdf, "--print-to-pdf", ["--no-pdf-header-footer"],
                               timeout, "PDF")
    data = pdf.read_bytes()
    if not data.startswith(b"%PDF-"):
        raise BrowserError(f"{pdf}: not a PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data))
    if pages == 0:
        raise BrowserError(f"{pdf}: a PDF with no page objects")
    return pages
