"""Helpers shared by the command-line tests."""

from qhw import cli


def run(argv, capsys):
    """Run ``qhw`` in-process; returns (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, err, *words):
    """Bad input: exit 2 and exactly one line ``qhw: error: ...`` containing every word."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qhw: error: "), err
    for word in words:
        assert word in lines[0], lines[0]
