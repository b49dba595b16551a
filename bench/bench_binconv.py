"""Benchmarks of ``binconv``: LUTs and transistors of the XNOR-popcount datapath, ECP5 Fmax of the
default configuration, and measured cycles against the cost model for every regression config.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_binconv.py [--quick]``). Writes
``build/bench/binconv.json`` and ``build/bench/binconv.md``; docs/benchmarks.md records a run.
Comparisons are made side by side in one run, since the machines are noisy; none of these
figures depends on timing except the Yosys/nextpnr run times, which are not reported.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from qhw import flow, registry, synth_flow
from qhw.config import config_from_dict
from qhw.hdl.common import to_verilog
from qhw.hdl.popcount import PopCount, full_adder_bound
from qhw.synth.baselines import xnor_popcount_baseline_verilog

from _report import table, write_results

LANES = (16, 64, 256, 1024)
FRAMES = 4


class XnorPopCountDatapath(wiring.Component):
    """The unit's datapath for one PE: registered a, b -> XNOR -> compressor tree -> count.

    Same registers at the boundary as the Yosys baseline, so the LUTs between them compare.
    """

    def __init__(self, lanes, counter):
        self.lanes, self.counter = lanes, counter
        super().__init__({"a": In(lanes), "b": In(lanes), "count": Out(range(lanes + 1))})

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(self.lanes), Signal(self.lanes)
        m.d.sync += [a.eq(self.a), b.eq(self.b)]
        m.submodules.tree = tree = PopCount(self.lanes, self.counter)
        m.d.comb += [tree.bits.eq(~(a ^ b)), self.count.eq(tree.count)]
        return m


def finn_lut_estimate(lanes, pe=1, weight_bits=1, act_bits=1, signed=True):
    """FINN-R's LUT estimate of an MVAU with SIMD = MW = lanes (Blott et al., "FINN-R", ACM TRETS 2018,
    arXiv 1809.04570: c0 = 300, c1 = 1.1)."""
    wa = weight_bits + act_bits
    mult = lanes * (2 * math.ceil(wa / 6) - 1) * wa
    addertree = wa * (2 * lanes - 1)
    a = math.log2(lanes) + weight_bits + act_bits - 1 - int(signed)
    acc_bits = math.ceil(a + math.log2(1 + 2 ** -a) + 1)
    return 300 + 1.1 * pe * (mult + addertree + acc_bits)


def _cell_transistors(expr_verilog):
    """Transistors of a one-cell combinational module in the generic flow."""
    r = synth_flow.synthesize_verilog(expr_verilog, "cell", "generic")
    return r["figures"]["transistors"]


def datapath_rows(lanes_list):
    fa_t = _cell_transistors(
        "module cell(input a, b, c, output s, co); assign s = a ^ b ^ c; "
        "assign co = (a & b) | (a & c) | (b & c); endmodule\n")
    xnor_t = _cell_transistors("module cell(input a, b, output y); assign y = ~(a ^ b); endmodule\n")
    rows = []
    for lanes in lanes_list:
        row = {"lanes": lanes, "fa_bound": full_adder_bound(lanes)}
        for counter in ("gpc63", "fa"):
            v = to_verilog(XnorPopCountDatapath(lanes, counter), "dp")
            xc7 = synth_flow.synthesize_verilog(v, "dp", "xc7")["figures"]
            gen = synth_flow.synthesize_verilog(v, "dp", "generic")["figures"]
            row[counter] = {"lut": xc7["LUT"], "lut6": xc7["LUT6"], "ff": xc7["FF"],
                            "carry4": xc7["CARRY4"], "transistors": gen["transistors"]}
        v, top = xnor_popcount_baseline_verilog(lanes)
        xc7 = synth_flow.synthesize_verilog(v, top, "xc7")["figures"]
        gen = synth_flow.synthesize_verilog(v, top, "generic")["figures"]
        row["yosys"] = {"lut": xc7["LUT"], "ff": xc7["FF"], "carry4": xc7["CARRY4"],
                        "transistors": gen["transistors"]}
        row["finn_lut"] = round(finn_lut_estimate(lanes))
        row["bound_transistors"] = row["fa_bound"] * fa_t + lanes * xnor_t
        row["cell_transistors"] = {"full_adder": fa_t, "xnor": xnor_t}
        rows.append(row)
        print(f"  K={lanes}: ours {row['gpc63']['lut']} LUT, Yosys {row['yosys']['lut']} LUT",
              flush=True)
    return rows


def fmax_default():
    unit = registry.get("binconv")
    cfg = config_from_dict(unit.config, unit.default_config)
    params = flow.read_params(unit, cfg, None, seed=0)
    result = synth_flow.synthesize_unit(unit, cfg, params, "ecp5", fmax=True)
    return {"config": unit.default_config, "figures": result["figures"],
            "fmax": result.get("fmax", {})}


def cycle_rows():
    unit = registry.get("binconv")
    rows = []
    for name, cfg_dict in sorted(unit.regression.items()):
        cfg = config_from_dict(unit.config, cfg_dict)
        params = flow.read_params(unit, cfg, None, seed=0)
        x = unit.random_inputs(cfg, np.random.default_rng(0), FRAMES)
        run = flow.rtlsim(unit, cfg, params, x)
        model = unit.cost_model(cfg, FRAMES)
        out_times = next(iter(run.sim.out_times.values()))
        per_frame = cfg.out_height * cfg.out_width
        steady = out_times[FRAMES * per_frame - 1] - out_times[(FRAMES - 1) * per_frame - 1]
        top, bottom, left, right = cfg.pads
        rows.append({
            "config": name, "frames": FRAMES, "measured": run.cycles, "model": model.expected,
            "formula": model.formula, "latency": model.latency,
            "formula_plus_latency": model.formula + model.latency,
            "ratio": run.cycles / (model.formula + model.latency),
            "steady_per_frame": steady, "formula_per_frame": model.formula // FRAMES,
            "steps_per_frame": (cfg.height + bottom) * (cfg.width + right),
            "bit_exact": flow.first_mismatch(unit, run.outputs, unit.golden(cfg, params, x)) is None,
        })
        print(f"  {name}: {run.cycles} cycles (model {model.expected})", flush=True)
    return rows


def markdown(res):
    rows = []
    for r in res["datapath"]:
        g, y = r["gpc63"], r["yosys"]
        rows.append([r["lanes"], f"{g['lut']} ({g['lut'] / r['lanes']:.2f})", r["fa"]["lut"],
                     f"{y['lut']} ({y['lut'] / r['lanes']:.2f})", f"{y['lut'] / g['lut']:.2f}x",
                     f"{r['finn_lut']} ({r['finn_lut'] / r['lanes']:.2f})",
                     f"{g['transistors']} (fa: {r['fa']['transistors']})", y["transistors"],
                     f"{r['fa_bound']}; {r['bound_transistors']}"])
    out = ["### XNOR-popcount datapath, Xilinx 7-series (`synth_xilinx`) and generic CMOS", ""]
    out += table(["K", "ours gpc63 LUT (per lane)", "ours fa LUT", "Yosys plain LUT (per lane)",
                  "Yosys / ours", "FINN estimate LUT (per lane)", "ours transistors",
                  "Yosys transistors", "FA bound (FAs; transistors)"], rows)
    f = res.get("fmax")
    if f:
        out += ["", "### ECP5 Fmax of the default configuration", "",
                f"Config `{json.dumps(f['config'])}`: **{f['figures']['fmax_mhz']:.1f} MHz** "
                f"({f['fmax'].get('device', '?')} {f['fmax'].get('package', '')}, speed grade "
                f"{f['fmax'].get('speed', '?')}, seed {f['fmax'].get('seed', '?')}); "
                f"LUT4 {f['figures']['LUT4']}, FF {f['figures']['FF']}, CCU2C "
                f"{f['figures']['CCU2C']}, DP16KD {f['figures']['DP16KD']}, "
                f"LUTRAM {f['figures']['LUTRAM']}."]
    if res.get("cycles"):
        out += ["", f"### Cycles, {FRAMES} frames back to back, no stalls", ""]
        out += table(
            ["config", "measured", "model", "formula + latency", "measured / (formula + latency)",
             "steady cycles per frame", "formula per frame", "grid steps per frame", "bit-exact"],
            ([r["config"], r["measured"], r["model"], r["formula_plus_latency"],
              f"{r['ratio']:.3f}", r["steady_per_frame"], r["formula_per_frame"],
              r["steps_per_frame"], r["bit_exact"]] for r in res["cycles"]))
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="K = 16, 64, 256 only; no 1024")
    p.add_argument("--skip", nargs="*", default=[], choices=["datapath", "fmax", "cycles"])
    p.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = p.parse_args(argv)
    res = {}
    if "datapath" not in args.skip:
        print("datapath LUTs and transistors:", flush=True)
        res["datapath"] = datapath_rows(LANES[:3] if args.quick else LANES)
    if "fmax" not in args.skip:
        print("ECP5 Fmax of the default configuration:", flush=True)
        res["fmax"] = fmax_default()
    if "cycles" not in args.skip:
        print("cycles of the regression configurations:", flush=True)
        res["cycles"] = cycle_rows()
    res.setdefault("datapath", [])
    write_results(args.output, "binconv", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
