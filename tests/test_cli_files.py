"""File handling of the command line: bad input and output paths end with one line naming the
option, exit status 2, before any work, with nothing written and existing files untouched; and
output files get the permissions of the user's umask."""

import json
import os
import stat

import numpy as np
import pytest

from qhw import cli, registry
from qhw.config import config_from_dict

UNIT = registry.get("requant")


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config_from_dict(UNIT.config, UNIT.default_config)
    (tmp_path / "c.json").write_text(json.dumps(UNIT.default_config))
    np.savez(tmp_path / "w.npz", **UNIT.random_params(cfg, np.random.default_rng(0)))
    np.save(tmp_path / "x.npy", UNIT.random_inputs(cfg, np.random.default_rng(1), 1))
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "w.npz").read_bytes()[:60])
    (tmp_path / "adir").mkdir()
    return tmp_path


def _fails(capsys, argv, *words):
    before = sorted(os.listdir("."))
    code = cli.main(argv)
    out = capsys.readouterr()
    assert code == 2, out
    assert out.err.count("\n") == 1 and out.err.startswith("qhw: error: "), out.err
    for w in words:
        assert w in out.err, out.err
    assert sorted(os.listdir(".")) == before  # nothing written
    assert open("afile").read() == "keep me"


GEN = ["generate", "requant", "--config", "c.json"]
GOLD = ["golden", "requant", "--config", "c.json", "--weights", "w.npz"]


@pytest.mark.parametrize("argv, words", [
    (GEN + ["--weights", "empty.npz", "-o", "g"], ["--weights", "empty"]),
    (GEN + ["--weights", "trunc.npz", "-o", "g"], ["--weights", "not a readable"]),
    (GEN + ["--weights", "adir", "-o", "g"], ["--weights", "is a directory"]),
    (GEN + ["--weights", "missing.npz", "-o", "g"], ["--weights", "not found"]),
    (GEN + ["-o", "afile"], ["-o", "not a folder"]),
    (GEN + ["-o", "afile/sub"], ["-o", "under afile", "a file"]),
    (GOLD + ["--inputs", "empty.npy", "-o", "y.npy"], ["--inputs", "empty"]),
    (GOLD + ["--inputs", "adir", "-o", "y.npy"], ["--inputs", "is a directory"]),
    (GOLD + ["--inputs", "x.npy", "-o", "adir"], ["-o", "is a folder"]),
    (GOLD + ["--inputs", "x.npy", "-o", "afile/y.npy"], ["-o", "under afile"]),
    (["rtlsim", "requant", "--config", "c.json", "--weights", "w.npz", "--inputs", "x.npy",
      "-o", "adir"], ["-o", "is a folder"]),
    (["synth", "requant", "--config", "c.json", "--target", "generic", "--json", "adir"],
     ["--json", "is a folder"]),
])
def test_bad_paths_are_one_line_exit_2_nothing_written(work, capsys, argv, words):
    _fails(capsys, argv, *words)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_output_folder(work, capsys):
    (work / "ro").mkdir()
    os.chmod(work / "ro", 0o555)
    try:
        _fails(capsys, GEN + ["-o", "ro/g"], "-o", "cannot write")
    finally:
        os.chmod(work / "ro", 0o755)


def test_outputs_follow_the_umask_and_parents_are_created(work, capsys):
    old = os.umask(0o022)
    try:
        assert cli.main(GOLD + ["--inputs", "x.npy", "-o", "new/deeper/y.npy"]) == 0
        assert cli.main(GEN + ["-o", "gen"]) == 0
    finally:
        os.umask(old)
    for f in [work / "new" / "deeper" / "y.npy", *(work / "gen").iterdir()]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
