"""Compiler wrapper that caches Verilator's runtime objects between model builds.

Every Verilator model links the same runtime (``verilated.cpp``, ``verilated_vpi.cpp``, ...),
and compiling it takes ~17 s of the ~20 s a small model needs. Verilator's makefile runs every
compile as ``$(OBJCACHE) $(CXX) ...``; :mod:`qhw.cosim.runner` sets ``OBJCACHE`` to this script
(no ccache on these machines). Compiles of sources under ``$VERILATOR_ROOT/include`` are looked
up in ``$QHW_OBJCACHE_DIR`` by a hash of the command line, the source text and the compiler;
all other compiles (the design, cocotb's ``verilator.cpp`` that includes the design's header)
run unchanged.

Usage (by make): ``python _objcache.py c++ <args...> -c -o X.o SRC.cpp``
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def _compile(argv):
    return subprocess.call(argv)


def main(argv):
    root = os.environ.get("VERILATOR_ROOT")
    store = os.environ.get("QHW_OBJCACHE_DIR")
    if not argv:
        return 2
    if not root or not store or "-c" not in argv or "-o" not in argv:
        return _compile(argv)
    out = argv[argv.index("-o") + 1]
    src = argv[-1]
    include = os.path.join(os.path.realpath(root), "include") + os.sep
    if not (src.endswith(".cpp") and os.path.realpath(src).startswith(include)
            and os.sep not in out):
        return _compile(argv)
    h = hashlib.sha256("\0".join(argv).encode())
    with open(src, "rb") as f:
        h.update(f.read())
    # Headers change only with the Verilator installation; its main header's identity and the
    # compiler's stand for them.
    for path in (os.path.join(include, "verilated.h"), shutil.which(argv[0]) or argv[0]):
        try:
            st = os.stat(path)
            h.update(f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            pass
    entry = os.path.join(store, h.hexdigest()[:32])
    dep = out[:-2] + ".d" if out.endswith(".o") else None
    names = [out] + ([dep] if dep else [])
    if all(os.path.exists(os.path.join(entry, os.path.basename(n))) for n in names):
        for n in names:
            shutil.copyfile(os.path.join(entry, os.path.basename(n)), n)
        return 0
    rc = _compile(argv)
    if rc == 0:
        os.makedirs(store, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="tmp-", dir=store)
        try:
            for n in names:
                if os.path.exists(n):
                    shutil.copyfile(n, os.path.join(tmp, os.path.basename(n)))
            os.rename(tmp, entry)  # atomic; fails harmlessly if another build stored it first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
