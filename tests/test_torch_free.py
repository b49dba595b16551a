"""qhw's core runs without PyTorch (issue 12): every core module imports, generate / config /
golden, the shipped DNSMOS network's golden model, the demo's scoring on the shipped weights and
``qhw score`` work with torch made unimportable; training stops with one line and exit status 2.

Each check runs in a fresh Python whose ``sys.meta_path`` starts with a finder that refuses
``torch`` and its submodules (as on a machine without PyTorch) and records every attempt: an
unguarded import on one of these paths fails the command, and the attempts are checked too
(none at all for generate, config and golden; the demo's scoring only asks whether PyTorch is
there, to decide on its optional oracle check).
"""

import ast
import importlib
import json
import pathlib
import pkgutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from qhw.torch_extra import MESSAGE

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "networks"

#: The packages qhw installs (pyproject's [tool.setuptools] packages; the data folders among
#: them hold no modules).
CORE_PACKAGES = tuple(tomllib.loads((ROOT / "pyproject.toml").read_text())
                      ["tool"]["setuptools"]["packages"])
#: The modules that are PyTorch's by design: training and the test oracles (the train extra).
TORCH_MODULES = {"qhw.golden.bamconv_torch", "qhw.golden.binconv_torch",
                 "qhw.golden.expmul_torch", "qhw.golden.gru_torch",
                 "qhw.dnsmos.student_torch", "qhw.dnsmos.train", "qhw.search.model"}
#: Where a core module may import PyTorch (or a torch module) inside a function: only code
#: that trains, rebuilds the teacher in PyTorch, or is an oracle (module, function).
LAZY_TORCH_IMPORTS = {("qhw.torch_extra", "import_torch"),
                      ("qhw.dnsmos.teacher", "_torch_module"),
                      ("qhw.dnsmos.teacher", "score_torch"),
                      ("qhw.dnsmos.student", "__getattr__"),
                      ("qhw.dnsmos.int8net", "integer_forward")}

PRELUDE = '''
import json, sys
ATTEMPTS = []

class _NoTorch:
    """PyTorch is not installed (as far as this Python can tell)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            ATTEMPTS.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, _NoTorch())

def report(**extra):
    """The last line of stdout: what the checks below read."""
    print(json.dumps({"attempts": ATTEMPTS, "torch_loaded": "torch" in sys.modules, **extra}))
'''


def run_without_torch(code, tmp_path):
    """Run ``code`` after the prelude in a fresh Python; (returncode, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def core_modules():
    names = []
    for pkg in CORE_PACKAGES:
        for info in pkgutil.iter_modules(importlib.import_module(pkg).__path__):
            if not info.ispkg:   # subpackages are listed in CORE_PACKAGES themselves
                names.append(f"{pkg}.{info.name}")
    return sorted(names)


def test_core_modules_import_without_torch(tmp_path):
    modules = core_modules()
    assert TORCH_MODULES <= set(modules)   # the list above names real modules
    core = [m for m in modules if m not in TORCH_MODULES]
    rc, out, err = run_without_torch(f'''
import importlib
failed, refused = {{}}, []
for name in {core!r}:
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = f"{{type(e).__name__}}: {{e}}"
core_attempts = list(ATTEMPTS)
for name in {sorted(TORCH_MODULES)!r}:   # the blocker works: these need PyTorch
    try:
        importlib.import_module(name)
    except ImportError:
        refused.append(name)
report(failed=failed, refused=refused, core_attempts=core_attempts)
''', tmp_path)
    assert rc == 0, err
    result = last_json(out)
    assert result["failed"] == {}
    assert result["core_attempts"] == []
    assert sorted(result["refused"]) == sorted(TORCH_MODULES)
    assert not result["torch_loaded"]


def _is_torch(module):
    """torch, a ``*_torch`` module or function (``qhw.torch_extra.import_torch`` too), or the
    DNSMOS training module."""
    parts = [p for p in module.split(".") if p]
    return bool(parts) and (parts[0] == "torch" or
                            any(p.endswith("_torch") or p == "train" for p in parts))


def _torch_imports(tree):
    """(enclosing function or None, module) of every import of torch or a torch module."""
    found = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((func, a.name) for a in child.names if _is_torch(a.name))
            elif isinstance(child, ast.ImportFrom):
                found.extend((func, f"{child.module or ''}.{a.name}") for a in child.names
                             if _is_torch(f"{child.module or ''}.{a.name}"))
            inner = child.name if isinstance(child, (ast.FunctionDef,
                                                      ast.AsyncFunctionDef)) else func
            visit(child, inner)

    visit(tree, None)
    return found


def test_no_torch_import_hides_in_core_functions():
    """Paths not run above (rtlsim, synth, sweep, report, the whole demo) import no PyTorch
    either: the only torch imports in core modules are the lazy ones of LAZY_TORCH_IMPORTS."""
    seen = set()
    for name in core_modules():
        if name in TORCH_MODULES:
            continue
        path = importlib.util.find_spec(name).origin
        for func, mod in _torch_imports(ast.parse(pathlib.Path(path).read_text())):
            assert func is not None, f"{name} imports {mod} at module level"
            assert (name, func) in LAZY_TORCH_IMPORTS, f"{name}.{func} imports {mod}"
            seen.add((name, func))
    assert seen == LAZY_TORCH_IMPORTS


def test_generate_config_golden_without_torch(tmp_path):
    rc, out, err = run_without_torch(f'''
import numpy as np
from qhw import cli, registry
from qhw.config import config_from_dict
from qhw.golden import binconv
codes = {{}}
codes["generate"] = cli.main(["generate", "binconv", "-o", "gen"])
codes["config"] = cli.main(["config", "binconv", "--explain"])
unit = registry.get("binconv")
cfg = config_from_dict(unit.config, unit.default_config)
np.save("x.npy", binconv.random_inputs(cfg, np.random.default_rng(0), 2))
codes["golden"] = cli.main(["golden", "binconv", "--weights", "gen/weights.npz",
                            "--inputs", "x.npy", "-o", "y.npy"])
xq = np.random.default_rng(1).integers(-127, 128, size=(1, 900, 120, 1))
np.save("xn.npy", xq)
codes["network"] = cli.main(["golden", "network", "--config", {str(EXAMPLES / "dnsmos_ecp5.toml")!r},
                             "--weights", {str(EXAMPLES / "dnsmos_bam.npz")!r},
                             "--inputs", "xn.npy", "-o", "yn.npy"])
report(codes=codes)
''', tmp_path)
    assert rc == 0, err
    result = last_json(out)
    assert result["codes"] == {"generate": 0, "config": 0, "golden": 0, "network": 0}, err
    assert result["attempts"] == [] and not result["torch_loaded"]
    assert len(list((tmp_path / "gen").glob("binconv_*.v"))) == 1
    assert np.load(tmp_path / "y.npy").shape[0] == 2
    assert np.load(tmp_path / "yn.npy").size == 1


def _one_window_clip():
    from dnsmos_clips import speech_like
    from qhw.dnsmos import features
    return speech_like(3, seconds=features.WINDOW_SAMPLES / features.SAMPLE_RATE)


def test_demo_scoring_on_shipped_weights_without_torch(tmp_path):
    """The demo's scoring (network from the shipped weights, onnxruntime teacher, golden
    student) and ``qhw score``, which runs the same code on WAV files."""
    from qhw.dnsmos import audio
    audio.write_clip(tmp_path / "clip.wav", _one_window_clip())
    rc, out, err = run_without_torch('''
import json
import numpy as np
from qhw import cli
from qhw.dnsmos import audio, demo
clip, _ = audio.read_clip("clip.wav")
mos_scale = json.loads(demo.TRAINING.read_text())["mos_scale"]
rows, windows = demo.score_clips([{"name": "c", "voice": None, "condition": None,
                                   "audio": clip}], demo._params(), mos_scale, progress=False)
code = cli.main(["score", "clip.wav", "--json", "scores.json"])
report(rows=rows, code=code)
''', tmp_path)
    assert rc == 0, err
    result = last_json(out)
    assert result["code"] == 0
    [row] = result["rows"]
    assert row["windows"] == 1 and row["oracle_checked"] is False
    assert 1 < row["teacher_mos"] < 5 and 1 < row["student_mos"] < 5
    [scored] = json.loads((tmp_path / "scores.json").read_text())
    assert scored["student_mos"] == row["student_mos"]
    # Only the demo's question "is PyTorch there?" (for its optional oracle check).
    assert set(result["attempts"]) == {"torch"} and not result["torch_loaded"]


def test_demo_scoring_checks_the_oracle_with_torch():
    pytest.importorskip("torch")
    import json as _json
    from qhw.dnsmos import demo, student, student_torch
    assert student.integer_forward is student_torch.integer_forward
    rows, _ = demo.score_clips([{"name": "c", "voice": None, "condition": None,
                                 "audio": _one_window_clip()}], demo._params(),
                               _json.loads(demo.TRAINING.read_text())["mos_scale"],
                               progress=False)
    assert rows[0]["oracle_checked"] is True


def test_training_without_torch_says_how_to_install_it(tmp_path):
    rc, out, err = run_without_torch('''
import runpy
sys.argv = ["python -m qhw.dnsmos.train", "--minutes", "1", "-o", "out"]
runpy.run_module("qhw.dnsmos.train", run_name="__main__", alter_sys=True)
''', tmp_path)
    assert rc == 2
    assert out == "" and err == MESSAGE + "\n"
    assert MESSAGE.startswith('qhw: training needs PyTorch: pip install "qhw[train]" (CPU wheel: ')
    assert not (tmp_path / "out").exists()
    # As a library: an ImportError that says the same.
    rc, out, err = run_without_torch('''
import importlib
from qhw.torch_extra import TorchMissing
from qhw.dnsmos import student
caught = {}
try:
    importlib.import_module("qhw.dnsmos.train")
except TorchMissing as e:
    caught["train"] = str(e)
try:
    student.BinaryP808
except TorchMissing as e:
    caught["BinaryP808"] = str(e)
report(caught=caught)
''', tmp_path)
    assert rc == 0, err
    assert last_json(out)["caught"] == {"train": MESSAGE, "BinaryP808": MESSAGE}
