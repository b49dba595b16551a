"""bench/_report.command: the command line a bench run records is the one that reproduces it
(the interpreter as the docs write it, the script from the repository root, the arguments
quoted so that a shell splits them back)."""

import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402


def test_command_names_the_repository_venv_only_when_it_ran(monkeypatch):
    script = ROOT / "bench" / "bench_dnsmos.py"
    monkeypatch.setattr(sys, "prefix", str(ROOT / ".venv"))
    assert _report.command(script, ["--whole", "-o", "docs"]) == \
        ".venv/bin/python bench/bench_dnsmos.py --whole -o docs"
    monkeypatch.setattr(sys, "prefix", "/opt/elsewhere")
    assert _report.command(script, []) == "python bench/bench_dnsmos.py"


def test_command_quotes_arguments_so_a_shell_splits_them_back(monkeypatch):
    argv = ["--networks", "a b", "--docs", "", "--x=$HOME"]
    line = _report.command(ROOT / "bench" / "bench_network_folding.py", argv)
    assert shlex.split(line)[2:] == argv


def test_command_defaults_to_this_process_arguments(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench/bench_finn_rtl.py", "--jobs", "2"])
    assert _report.command(ROOT / "bench" / "bench_finn_rtl.py").endswith(
        "bench/bench_finn_rtl.py --jobs 2")
