"""``qhw generate --name``: two cores of the same unit in one design. With the default name
their modules collide (Verilator: MODDUP); with different names every module of each is
prefixed by its name and Verilator accepts both in one build. A bad name is one line, exit 2."""

import re
import subprocess

from qhw import cli
from qhw.toolchain import tool_env


def _modules(text):
    return set(re.findall(r"^module (\S+?)\s*\(", text, re.M))


def _lint(files, top, tmp_path):
    wrapper = tmp_path / "both.v"
    wrapper.write_text(f"module {top}(); endmodule\n")
    return subprocess.run(["verilator", "--lint-only", "-Wno-fatal", "--top-module", top,
                           *map(str, files), str(wrapper)], env=tool_env(), cwd=tmp_path,
                          capture_output=True, text=True)


def test_two_named_cores_coexist(tmp_path, capsys):
    for name in ("layer_a", "layer_b", None):
        argv = ["generate", "bamconv", "-o", str(tmp_path / str(name))]
        assert cli.main(argv + (["--name", name] if name else [])) == 0
    a = (tmp_path / "layer_a" / "layer_a.v").read_text()
    b = (tmp_path / "layer_b" / "layer_b.v").read_text()
    ma, mb = _modules(a), _modules(b)
    assert "layer_a" in ma and all(m.lstrip("\\").startswith("layer_a") for m in ma)
    assert "layer_b" in mb and not ma & mb
    ok = _lint([tmp_path / "layer_a" / "layer_a.v", tmp_path / "layer_b" / "layer_b.v"],
               "both", tmp_path)
    assert "MODDUP" not in ok.stderr and ok.returncode == 0, ok.stderr[-2000:]
    # The same core twice under its default name is what --name avoids.
    clash = (tmp_path / "copy.v")
    clash.write_text((tmp_path / "None" / "bamconv.v").read_text())
    bad = _lint([tmp_path / "None" / "bamconv.v", clash], "both", tmp_path)
    assert "MODDUP" in bad.stderr or "Duplicate declaration" in bad.stderr, bad.stderr[-2000:]
    capsys.readouterr()


def test_bad_name_is_one_line(tmp_path, capsys):
    assert cli.main(["generate", "bamconv", "-o", str(tmp_path / "g"), "--name", "1x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--name" in err and not (tmp_path / "g").exists()
