"""FINN's own RTL (from the ``finn-plus`` wheel) prepared for the open Yosys flow.

Used by ``bench/bench_finn_rtl.py``. Nothing of FINN is vendored: the wheel is fetched at run time
with ``pip download --no-deps finn-plus==VERSION`` into ``~/.cache/qhw/finn-plus`` (or
``$QHW_CACHE_DIR/finn-plus``), and the sources are read from it. FINN's RTL library is
``finn/finn-rtllib/`` of the wheel (Xilinx/finn and its fork finn-plus, BSD-3-Clause, AMD).

What happens to FINN's sources here, all as string edits that raise :class:`FinnSourceError`
when the expected text is missing (a new FINN version must be looked at, not silently
mis-patched); behaviour is unchanged:

- ``thresholding/hdl/thresholding.sv``: the scope test ``p.ptr[M-1:SN+1]`` is a reversed range at
  stage 0 (where it is never used: ``SCOPE_REDUCE == 0`` selects the constant 1) and is rewritten
  as a shift and mask; three ``foreach`` loops become ``for`` loops.
- ``swg/swg_template_wrapper.v``: its ports use parameters declared later in the module body;
  they move into a ``#()`` header.

The sliding-window generator's templates are filled in by FINN's own code generator: the methods
``select_impl_style``, ``get_buffer_depth``, ``get_exp_cycles``, ``prepare_codegen_default`` and
``prepare_codegen_parallel`` of ``ConvolutionInputGenerator_rtl`` (and
``get_1d_conv_attrs_normalized`` of its parent class) are taken from the wheel's Python source and
run on a stand-in node that answers ``get_nodeattr``; the substitution loop is that of its
``generate_hdl``. The thresholding wrapper template is filled in with the values its
``prepare_codegen_rtl_values`` computes for the configuration (see :func:`thresholding_sources`).
"""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np

FINN_PLUS_VERSION = "1.6.1"
RTLLIB = "finn/finn-rtllib/"
SWG_PY = "finn/custom_op/fpgadataflow/rtl/convolutioninputgenerator_rtl.py"
SWG_PARENT_PY = "finn/custom_op/fpgadataflow/convolutioninputgenerator.py"


class FinnUnavailable(Exception):
    """The finn-plus wheel could not be fetched (no network, no such version)."""


class FinnSourceError(Exception):
    """FINN's sources are not what the mechanical fixes expect."""


def cache_dir():
    base = os.environ.get("QHW_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "qhw") / "finn-plus"


def fetch_wheel(version=FINN_PLUS_VERSION, cache=None):
    """Path of the finn-plus wheel, downloaded with pip into the cache if not there yet."""
    cache = Path(cache) if cache else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"finn_plus-{version}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                "--retries", "2", "--timeout", "30",
                f"finn-plus=={version}", "-d", str(cache)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FinnUnavailable(f"pip download finn-plus=={version} failed: {exc}") from None
        found = sorted(cache.glob(pattern))
        if proc.returncode != 0 or not found:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise FinnUnavailable(f"pip download finn-plus=={version} failed "
                                  f"(exit {proc.returncode}): {last[0]}")
    return found[-1]


class FinnSources:
    """Text files of the wheel (read lazily, by path inside the wheel)."""

    def __init__(self, wheel):
        self.wheel = Path(wheel)
        self.version = self.wheel.name.split("-")[1]
        self._zip = zipfile.ZipFile(self.wheel)

    def read(self, path):
        try:
            return self._zip.read(path).decode()
        except KeyError:
            raise FinnSourceError(f"{path} is not in {self.wheel.name}") from None

    def rtl(self, rel):
        return self.read(RTLLIB + rel)


def replace_once(text, old, new, *, count=1, what):
    """``text`` with ``old`` replaced by ``new``; ``old`` must occur exactly ``count`` times."""
    found = text.count(old)
    if found != count:
        raise FinnSourceError(f"{what}: expected {count} occurrence(s) of {old!r}, found {found}")
    return text.replace(old, new)


# ------------------------------------------------------------------------------------------------
# Thresholding


def fixed_thresholding_sv(src):
    """thresholding.sv with the fixes yosys-slang needs (see the module docstring)."""
    what = "thresholding.sv"
    text = src.rtl("thresholding/hdl/thresholding.sv")
    text = replace_once(
        text, "p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE",
        "((p.ptr >> (SN+1)) & ((1 << (M-SN-1)) - 1)) < 2**stage - SCOPE_REDUCE", what=what)
    text = replace_once(text, "foreach(cfg_sel[pe]) begin",
                        "for(int unsigned pe = 0; pe < PE; pe++) begin", what=what)
    text = replace_once(text, "foreach(pipe[pe]) begin",
                        "for(int unsigned pe = 0; pe < PE; pe++) begin", what=what)
    text = replace_once(text, "foreach(pipe[pe])  ADat[0][pe] <= pipe[pe][M].ptr;",
                        "for(int unsigned pe = 0; pe < PE; pe++)  ADat[0][pe] <= pipe[pe][M].ptr;",
                        what=what)
    if "foreach" in text:
        raise FinnSourceError(f"{what}: a foreach is left after the fixes")
    return text


def thresholding_sources(src, workdir, *, channels, pe, in_bits, n_thresholds=1, signed=True,
                         deep_pipeline=1, top="finn_thresholding", thresholds_path=""):
    """Write FINN's thresholding (wrapper, thresholding_axi, thresholding, axilite) into workdir.

    The wrapper's values are those of ``Thresholding_rtl.prepare_codegen_rtl_values`` for an
    integer input of ``in_bits`` bits with thresholds of the same type, per-channel thresholds,
    no runtime-writeable weights (``USE_AXILITE = 0``, FINN's default), FINN's default
    ``deep_pipeline = 1``, no URAM/BRAM depth triggers, activation bias 0 and no threshold file
    (the memories' contents are set in Yosys, see ``bench_finn_rtl.py``); a simulation may give
    ``thresholds_path``, the prefix of FINN's ``threshs_<pe>_<stage>.dat`` files.

    Returns (files, top, info).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bias = 0
    o_bits = math.ceil(math.log2(n_thresholds + bias + 1))
    values = {
        "$MODULE_NAME_AXI_WRAPPER$": top, "$WI$": in_bits, "$WT$": in_bits, "$N$": n_thresholds,
        "$C$": channels, "$PE$": pe, "$SIGNED$": int(signed), "$FPARG$": 0, "$BIAS$": bias,
        "$SETS$": 1, "$THRESHOLDS_PATH$": f'"{thresholds_path}"', "$USE_AXILITE$": 0,
        "$DEPTH_TRIGGER_URAM$": 0, "$DEPTH_TRIGGER_BRAM$": 0, "$DEEP_PIPELINE$": deep_pipeline,
        "$O_BITS$": o_bits,
    }
    wrapper = src.rtl("thresholding/hdl/thresholding_template_wrapper.v")
    for key, value in values.items():
        wrapper = replace_once(wrapper, key, str(value), count=wrapper.count(key) or 1,
                               what="thresholding_template_wrapper.v")
    if "$" in wrapper.replace("$clog2", ""):
        raise FinnSourceError("thresholding_template_wrapper.v: a placeholder is left unfilled")
    files = {
        "axilite.sv": src.rtl("axi/hdl/axilite.sv"),
        "thresholding.sv": fixed_thresholding_sv(src),
        "thresholding_axi.sv": src.rtl("thresholding/hdl/thresholding_axi.sv"),
        f"{top}.v": wrapper,
    }
    for name, text in files.items():
        (workdir / name).write_text(text)
    info = {"parameters": {k.strip("$"): v for k, v in values.items()},
            "stages": math.ceil(math.log2(n_thresholds + 1)), "o_bits": o_bits,
            "channel_fold": channels // pe}
    return list(files), top, info


# ------------------------------------------------------------------------------------------------
# Sliding-window generator


def _qonnx_conv_output_dim(ifm_dim, k, stride, total_pad=0, dilation=1):
    """qonnx.custom_op.general.im2col.compute_conv_output_dim."""
    if ifm_dim == 1:
        return 1
    return int(((ifm_dim + total_pad - dilation * (k - 1) - 1) / stride) + 1)


def _roundup(x, factor):
    """qonnx.util.basic.roundup_to_integer_multiple."""
    return int(math.ceil(x / factor) * factor)


def _methods(text, cls_name, names, filename):
    tree = ast.parse(text, filename=filename)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name]
    if not classes:
        raise FinnSourceError(f"{filename}: class {cls_name} not found")
    funcs = [f for f in classes[0].body if isinstance(f, ast.FunctionDef) and f.name in names]
    missing = set(names) - {f.name for f in funcs}
    if missing:
        raise FinnSourceError(f"{filename}: {cls_name} has no {', '.join(sorted(missing))}")
    return funcs


def finn_swg_codegen(src, attrs, rtllib_dir):
    """Run FINN's own SWG code generator on a stand-in node; returns (impl style, template path
    inside rtllib, code_gen_dict, expected cycles per frame)."""
    funcs = _methods(src.read(SWG_PY), "ConvolutionInputGenerator_rtl",
                     ["select_impl_style", "get_buffer_depth", "get_exp_cycles",
                      "prepare_codegen_default", "prepare_codegen_parallel"], SWG_PY)
    funcs += _methods(src.read(SWG_PARENT_PY), "ConvolutionInputGenerator",
                      ["get_1d_conv_attrs_normalized"], SWG_PARENT_PY)
    namespace = {
        "math": math, "np": np, "os": os, "Literal": Literal,
        "im2col": SimpleNamespace(compute_conv_output_dim=_qonnx_conv_output_dim),
        "compute_conv_output_dim": _qonnx_conv_output_dim,
        "roundup_to_integer_multiple": _roundup,
        "get_settings": lambda: SimpleNamespace(finn_rtllib=str(rtllib_dir)),
    }
    exec(compile(ast.Module(body=funcs, type_ignores=[]), SWG_PY, "exec"), namespace)
    h, w = attrs["IFMDim"]
    folded_in = h * w * (attrs["IFMChannels"] // attrs["SIMD"])

    class Node:
        def get_nodeattr(self, name):
            return attrs[name]

        def get_number_input_values(self):  # np.prod(folded input shape[:-1])
            return folded_in

    for f in funcs:
        setattr(Node, f.name, namespace[f.name])
    node = Node()
    style = node.select_impl_style()
    if style == "default":
        path, gen = node.prepare_codegen_default()
    else:
        path, gen = node.prepare_codegen_parallel()
    return style, Path(path).relative_to(rtllib_dir).as_posix(), gen, node.get_exp_cycles()


def fixed_swg_wrapper(src):
    """swg_template_wrapper.v with its parameters moved into a ``#()`` header."""
    what = "swg_template_wrapper.v"
    text = src.rtl("swg/swg_template_wrapper.v")
    params = ["BIT_WIDTH = $BIT_WIDTH$", "SIMD = $SIMD$", "MMV_IN = $MMV_IN$",
              "MMV_OUT = $MMV_OUT$", "IN_WIDTH_PADDED = $IN_WIDTH_PADDED$",
              "OUT_WIDTH_PADDED = $OUT_WIDTH_PADDED$"]
    for p in params:
        text = replace_once(text, f"parameter {p};\n", "", what=what)
    header = "#(\n" + ",\n".join(f"\tparameter {p}" for p in params) + "\n) ("
    return replace_once(text, "module $TOP_MODULE_NAME$ (", "module $TOP_MODULE_NAME$ " + header,
                        what=what)


def swg_sources(src, workdir, *, channels, element_bits, height, width, kernel, simd,
                parallel_window, ram_style="auto", top="finn_swg"):
    """Write FINN's sliding-window generator for one configuration into workdir.

    FINN attributes: IFMChannels, IFMDim, ConvKernelDim, SIMD, stride 1, dilation 1, not
    depthwise, M = 1, dynamic_mode 0, parallel_window, ram_style (FINN's default is
    "distributed"; "auto" lets the synthesis tool choose, as it does for qhw's memories).
    Padding is not part of FINN's SWG (a separate FMPadding node), so the window is 'valid'.

    Returns (files, top, info) with info: impl style, output elements per transfer, cycles per
    frame by FINN's own formula (get_exp_cycles), buffer depth, the code-generation values.
    """
    kh, kw = kernel
    oh = _qonnx_conv_output_dim(height, kh, 1)
    ow = _qonnx_conv_output_dim(width, kw, 1)
    attrs = {"IFMChannels": channels, "IFMDim": [height, width], "OFMDim": [oh, ow],
             "ConvKernelDim": [kh, kw], "Stride": [1, 1], "Dilation": [1, 1], "depthwise": 0,
             "SIMD": simd, "M": 1, "parallel_window": int(parallel_window), "dynamic_mode": 0,
             "ram_style": ram_style}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rtllib_dir = workdir / "finn-rtllib"  # only for path arithmetic in FINN's code
    style, template_rel, gen, exp_cycles = finn_swg_codegen(src, attrs, rtllib_dir)
    mmv_out = int(gen["$MMV_OUT$"][0])
    gen["$TOP_MODULE_NAME$"] = [top]
    gen["$BIT_WIDTH$"] = [str(element_bits)]
    in_width = simd * element_bits
    out_width = in_width * mmv_out
    gen["$IN_WIDTH_PADDED$"] = [str(_roundup(in_width, 8))]
    gen["$OUT_WIDTH_PADDED$"] = [str(_roundup(out_width, 8))]
    gen["$RAM_STYLE$"] = [f'"{ram_style}"']
    template = src.rtl(template_rel)
    wrapper = fixed_swg_wrapper(src)
    for key, lines in gen.items():  # as in ConvolutionInputGenerator_rtl.generate_hdl
        line = "\n".join(lines)
        template = template.replace(key, line)
        wrapper = wrapper.replace(key, line)
    for name, text in (("impl", template), ("wrapper", wrapper)):
        left = [t for t in text.split("$") if t.isupper() and t.replace("_", "").isalpha()]
        if left:
            raise FinnSourceError(f"swg {name}: placeholders left unfilled: {left[:5]}")
    files = {
        "swg_pkg.sv": src.rtl("swg/swg_pkg.sv"),
        f"{top}_wrapper.v": wrapper,
        f"{top}_impl.sv": template,
        "swg_common.sv": src.rtl("swg/swg_common.sv"),
    }
    for name, text in files.items():
        (workdir / name).write_text(text)
    info = {"impl_style": style, "template": template_rel, "mmv_out": mmv_out,
            "out_bits": out_width, "in_bits": in_width,
            "exp_cycles": exp_cycles, "buffer_depth": int(gen["$BUF_ELEM_TOTAL$"][0]),
            "ram_style": ram_style, "attrs": attrs,
            "codegen": {k.strip("$"): v for k, v in gen.items() if len(v) == 1 and len(v[0]) < 40}}
    return list(files), top, info
