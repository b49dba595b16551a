"""The FuseSoC CAPI2 core file written beside a generated core: the pinned ``fusesoc`` reads it
and runs its ``lint`` target (Verilator ``--lint-only -Wall`` with the shipped waivers) clean, for
a unit, an AXI4-Stream-wrapped unit and a network; a core whose Verilog has a real defect fails
the same target, so the clean runs mean something."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qhw import cli
from qhw.toolchain import tool_env

FUSESOC = str(Path(sys.executable).parent / "fusesoc")
NETWORK = Path(__file__).parents[1] / "examples" / "networks" / "bnn_pool.toml"


def _write(tmp_path, argv):
    out = tmp_path / "core"
    assert cli.main(["generate", *argv, "-o", str(out)]) == 0
    (core,) = out.glob("*.core")
    return out, core


def _lint(tmp_path, out, core):
    vlnv = re.search(r'^name: "(.*)"$', core.read_text(), re.M).group(1)
    env = tool_env()
    # Keep FuseSoC's configuration and caches inside the test (it reads and writes them in
    # the user's XDG folders otherwise).
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[var] = str(tmp_path / var.lower())
    return subprocess.run([FUSESOC, "--cores-root", str(out), "run", "--build-root",
                           str(tmp_path / "fsbuild"), "--target", "lint", vlnv],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def _warnings(text):
    # FuseSoC passes a failed build's output on as "ERROR: <line>".
    return [line for line in text.splitlines() if "%Warning" in line]


@pytest.mark.parametrize("argv", [["bamconv"], ["binconv", "--axis"],
                                  ["network", "--config", str(NETWORK)]],
                         ids=["bamconv", "binconv-axis", "network"])
def test_core_file_lints_clean_in_fusesoc(tmp_path, argv):
    out, core = _write(tmp_path, argv)
    text = core.read_text()
    assert text.startswith("CAPI=2:\n")
    assert f"toplevel: \"{core.stem}\"" in text and f"- \"{core.stem}.v\"" in text
    run = _lint(tmp_path, out, core)
    assert run.returncode == 0, (_warnings(run.stdout + run.stderr)[:5]
                                 or (run.stdout + run.stderr)[-2000:])
    # What ran: Verilator's lint-only target over the waivers and the core, with -Wall (the
    # defect test below shows the same run failing on a real defect).
    (build,) = (tmp_path / "fsbuild").glob("*/lint-verilator")
    assert "VERILATOR_OPTIONS := -Wall" in (build / "config.mk").read_text()
    (vc,) = build.glob("*.vc")
    listed = vc.read_text().split()
    assert listed.index(next(f for f in listed if f.endswith("lint_waivers.vlt"))) < listed.index(
        next(f for f in listed if f.endswith(f"{core.stem}.v")))


def test_lint_target_catches_a_defect(tmp_path):
    out, core = _write(tmp_path, ["bamconv"])
    verilog = out / f"{core.stem}.v"
    text = verilog.read_text()
    # A truncating assignment inside the top module: WIDTHTRUNC, which no waiver covers.
    head, sep, tail = text.partition(f"module {core.stem}(")
    body_end = tail.index("endmodule")
    tail = tail[:body_end] + "  wire [1:0] qhw_defect = 3'd7;\n" + tail[body_end:]
    verilog.write_text(head + sep + tail)
    run = _lint(tmp_path, out, core)
    assert run.returncode != 0
    assert any("WIDTH" in w for w in _warnings(run.stdout + run.stderr))


def test_manifest_names_the_core_file(tmp_path):
    import json
    out, core = _write(tmp_path, ["binconv"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["fusesoc_core"] == core.name
    assert os.path.exists(out / manifest["files"]["verilog"])
