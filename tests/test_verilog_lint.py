"""Every generated core passes ``verilator --lint-only -Wall`` with the shipped waiver file
(``hdl/lint_waivers.vlt``, docs/lint.md): every registered regression configuration of every
unit kind and network, one configuration of each behind the AXI4-Stream wrapper, and every
configuration of the folded convolutions and of the networks with run-time weights
(``weights = "port"``; the networks that take it).

The waivers are not a blanket: a width-truncating assignment, a width-extending one and an unused
register are still reported with the file, and the two UNUSEDSIGNAL waivers that no signal-name
pattern can narrow (whole named signals unused; zero-width signals) are checked here signal by
signal: each signal they cover must be an alias wire (``assign name = <nets, slices,
constants>;``), a ``[-1:0]`` declaration, or an AXI4-Stream tlast that the wrapper ignores.
"""

import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qhw import flow, registry
from qhw.config import config_from_dict
from qhw.errors import QhwInputError
from qhw.hdl.common import LINT_WAIVERS
from qhw.toolchain import tool_env

# The waivers this file checks structurally, by their -match strings.
CHECKED = {"Signal is not used: '*'": "alias", "Signal is not driven, nor used: '*'": "zero-width"}


def _has_port_weights(unit):
    return any(f.name == "weights" for f in dataclasses.fields(unit.config))


def _takes_port_weights(unit, config):
    """Whether the configuration builds with ``weights = "port"`` (a network with a layer that
    cannot load its weights, a GRU or a requant layer, refuses it)."""
    try:
        config_from_dict(unit.config, dict(unit.regression[config], weights="port"))
    except QhwInputError:
        return False
    return True


def _cases():
    for name in registry.names():
        unit = registry.get(name)
        configs = sorted(unit.regression)
        yield from ((name, config, "") for config in configs)
        yield name, configs[0], "axis"
        if _has_port_weights(unit):
            port = [config for config in configs if _takes_port_weights(unit, config)]
            yield from ((name, config, "port") for config in port)
            yield name, port[0], "port+axis"


CASES = list(_cases())


def _generate(name, config, variant):
    unit = registry.get(name)
    desc = dict(unit.regression[config], **({"weights": "port"} if "port" in variant else {}))
    cfg = config_from_dict(unit.config, desc)
    params = unit.check_params(cfg, unit.random_params(cfg, np.random.default_rng(0)))
    return flow.generate(unit, cfg, params, axis="axis" in variant)


def _lint(path, top, waivers):
    """Verilator's warnings: (rule, message, instance or None) for each."""
    run = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top,
                          str(waivers), str(path)], env=tool_env(), cwd=path.parent,
                         capture_output=True, text=True)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "%Error" not in out, out[-3000:]
    found = re.findall(r"^%Warning-(\w+): (?:\S+:\d+:\d+: )?(.*)\n(?:\s*: \.\.\. note: In "
                       r"instance '([^']+)')?", out, re.M)
    return [(rule, message, instance or None) for rule, message, instance in found], out


def _shown(out, n=12):
    lines = [line for line in out.splitlines() if line.startswith("%Warning")]
    return "\n".join(lines[:n]) + (f"\n... {len(lines) - n} more" if len(lines) > n else "")


def _without_checked(tmp_path):
    """The shipped waivers less the structurally checked ones."""
    kept = [line for line in LINT_WAIVERS.read_text().splitlines()
            if not any(f'-match "{match}"' in line for match in CHECKED)]
    path = tmp_path / "unchecked.vlt"
    path.write_text("\n".join(kept) + "\n")
    return path


# ---- a small reader of Yosys's write_verilog output ---------------------------------------------

_ID = r"(?:\\\S+|[A-Za-z_][A-Za-z0-9_$]*)"
_WIRING = re.compile(r"\s*(?:" + _ID + r"(?:\s*\[\d+(?::\d+)?\])?|\d+'[bhd][0-9a-fA-FxzXZ_]+|"
                     r"[{},])\s*")


def _modules(text):
    return {m.group(1).lstrip("\\"): m.group(0)
            for m in re.finditer(r"^module (\S+)\s*\(.*?^endmodule", text, re.M | re.S)}


def _ref(name):
    """A signal's reference as write_verilog spells it: plain or escaped (\\name )."""
    return r"(?:\\" + re.escape(name) + r" |(?<![\w\\$])" + re.escape(name) + r"(?![\w$]))"


def _explained(kind, name, body):
    """Whether the signal ``name`` of module text ``body`` is what waiver ``kind`` says."""
    decl = re.search(r"^\s*(wire|reg|input|output)\b([^;]*?)\s*" + _ref(name) + r"\s*(?:=[^;]*)?;",
                     body, re.M)
    if decl is None:
        return False
    if kind == "zero-width":
        return "[-1:0]" in decl.group(2)
    if decl.group(1) == "input":
        return re.fullmatch(r"s_axis_\w+_tlast", name) is not None
    drivers = re.findall(r"^\s*assign\s+" + _ref(name) + r"\s*(?:\[[\d:]+\])?\s*=\s*([^;]*);",
                         body, re.M)
    return (decl.group(1) == "wire" and bool(drivers)
            and all(_WIRING.sub("", rhs) == "" for rhs in drivers))


def _unexplained(warnings, verilog, top):
    modules = _modules(verilog)
    bad = []
    for rule, message, instance in warnings:
        kind = next((k for match, k in CHECKED.items()
                     if rule == "UNUSEDSIGNAL" and re.fullmatch(
                         re.escape(match).replace(r"\*", ".*"), message)), None)
        name = re.search(r"'([^']*)'", message)
        body = modules.get(instance or top, "")
        if kind is None or name is None or not _explained(kind, name.group(1), body):
            bad.append(f"{rule}: {message} (in {instance})")
    return bad


@pytest.mark.parametrize("name, config, variant", CASES,
                         ids=[f"{n}-{c}{'-' + v if v else ''}" for n, c, v in CASES])
def test_generated_verilog_is_lint_clean(name, config, variant, tmp_path):
    generated = _generate(name, config, variant)
    path = tmp_path / f"{generated.top}.v"
    path.write_text(generated.verilog)
    warnings, out = _lint(path, generated.top, LINT_WAIVERS)
    assert not warnings, f"{len(warnings)} lint warnings:\n{_shown(out)}"
    # What the waivers that no name pattern narrows cover, signal by signal.
    warnings, _ = _lint(path, generated.top, _without_checked(tmp_path))
    bad = _unexplained(warnings, generated.verilog, generated.top)
    assert not bad, f"{len(bad)} unused signals that are not aliases:\n" + "\n".join(bad[:12])


BAD = """\
module bad(input clk, input [7:0] a, output [3:0] y, output [9:0] z, output q);
  wire [7:0] spare;
  reg [3:0] dead = 4'h0;
  reg q_r = 1'h0;
  assign spare = a;
  assign y = a;
  assign z = a;
  always @(posedge clk) dead <= a[3:0] + 4'h1;
  always @(posedge clk) q_r <= a[0];
  assign q = q_r;
endmodule
"""


def test_the_waivers_still_report_what_a_generator_could_get_wrong(tmp_path):
    """A truncating and an extending assignment are reported despite the waivers; an unused
    register and an alias are both waived by the file's whole-signal waiver, and the structural
    check tells them apart."""
    path = tmp_path / "bad.v"
    path.write_text(BAD)
    warnings, out = _lint(path, "bad", LINT_WAIVERS)
    rules = {rule for rule, _, _ in warnings}
    assert {"WIDTHTRUNC", "WIDTHEXPAND"} <= rules, out
    assert any("ASSIGNW" in message for _, message, _ in warnings), out
    unchecked, _ = _lint(path, "bad", _without_checked(tmp_path))
    bad = _unexplained(unchecked, BAD, "bad")
    assert any("'dead'" in b for b in bad) and not any("'spare'" in b for b in bad), bad


def test_the_waiver_file_ships_with_the_generators():
    """Beside the generators in the package (qhw.hdl), a Verilator configuration file whose
    every waiver has its rule and a comment saying why."""
    import qhw.hdl
    assert LINT_WAIVERS.parent == Path(qhw.hdl.__file__).parent and LINT_WAIVERS.is_file()
    text = LINT_WAIVERS.read_text()
    assert text.startswith("`verilator_config")
    for match in CHECKED:
        assert f'-match "{match}"' in text
    # Every waiver names its rule and says why (a comment block above it).
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("lint_off"):
            assert "-rule " in line
            j = i - 1
            while lines[j].startswith("lint_off"):
                j -= 1
            assert lines[j].startswith("//"), line
