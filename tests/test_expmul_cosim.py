"""RTL of ``expmul``, ``expdot`` and the ``mulbase`` baselines against their golden models.

* cocotb + Verilator over every registered regression config: bit-exact, cycles and latency equal
  to the cost model with no stalls; bit-exact under random input idles and output back-pressure.
* expdot at the extremes of its accumulator (every lane at the largest product of one sign,
  cancellation to exactly zero, results below the smallest normal, infinities and NaNs).
* Exhaustive simulation (compiled Verilator harness, :mod:`qhw.cosim.exhaustive`) of the generated
  fp16 and bf16 ``expmul`` Verilog and of the int8 baseline: every input word, compared with the
  golden model; more weight formats behind ``-m slow``.
* Synthesis: the exponent-adder multiplier uses no DSP or hard multiplier.
* The command line on the new units.
"""

import json

import numpy as np
import pytest

from qhw import cli, flow, registry, synth_flow
from qhw.config import config_from_dict
from qhw.cosim.exhaustive import run_exhaustive
from qhw.golden import expmul as g

UNITS = ("expmul", "expdot", "mulbase")
CASES = [(u, name) for u in UNITS for name in sorted(registry.get(u).regression)]
WORDS = {"expmul": 150, "mulbase": 150, "expdot": 12}  # products / vectors per run


def _case(unit_name, name, seed):
    unit = registry.get(unit_name)
    cfg = config_from_dict(unit.config, unit.regression[name])
    rng = np.random.default_rng(seed)
    params = unit.check_params(cfg, unit.random_params(cfg, rng))
    x = unit.random_inputs(cfg, rng, WORDS[unit_name])
    return unit, cfg, params, x


def _check(unit, cfg, params, x, run):
    expected = unit.golden(cfg, params, x)
    message = flow.first_mismatch(unit, run, expected)
    assert message is None, message


@pytest.mark.parametrize("unit_name, name", CASES)
def test_bit_exact_and_cycles(unit_name, name):
    unit, cfg, params, x = _case(unit_name, name, seed=1)
    run = flow.rtlsim(unit, cfg, params, x)
    _check(unit, cfg, params, x, run)
    model = unit.cost_model(cfg, x.shape[0])
    assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
    assert run.latency == model.latency


@pytest.mark.parametrize("unit_name, name", CASES)
def test_bit_exact_under_stalls(unit_name, name):
    unit, cfg, params, x = _case(unit_name, name, seed=2)
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.4, stall_out=0.5, seed=9)
    _check(unit, cfg, params, x, run)
    assert run.cycles >= unit.cost_model(cfg, x.shape[0]).expected


def _extreme_vectors(cfg, w):
    """Activations that drive every lane's product to an extreme, one case per vector."""
    fmt, n = cfg.fmt, cfg.lanes
    top = 1 << (fmt.width - 1)
    # x such that x * w is the largest finite product (or beyond it) for each lane's weight
    big = g.max_finite(fmt)
    d = (w & ((1 << cfg.weight_exp_bits) - 1)) - cfg.weight_bias
    sign_w = (w >> cfg.weight_exp_bits) & 1
    x_max = [(int(sw) << (fmt.width - 1)) | ((fmt.emask - 1 - max(int(dd), 0)) << fmt.mbits)
             | fmt.mmask for dd, sw in zip(d, sign_w)]  # products of + sign, near the top
    x_min = [v ^ top for v in x_max]
    x_tiny = [(int(sw) << (fmt.width - 1)) | ((max(1, 1 - int(dd))) << fmt.mbits)
              for dd, sw in zip(d, sign_w)]
    alt = [v if i % 2 else v ^ top for i, v in enumerate(x_max)]
    one = fmt.bias << fmt.mbits
    rows = [x_max, x_min, x_tiny, [v ^ top for v in x_tiny], alt,
            [big] * n, [big | top] * n, [0] * n, [top] * n, [1] * n,  # zeros, subnormals
            [one] * (n - 1) + [fmt.emask << fmt.mbits],                # an infinity
            [fmt.emask << fmt.mbits] + [(fmt.emask << fmt.mbits) | top] * (n - 1),  # +inf, -inf
            [g.qnan(fmt)] + [one] * (n - 1)]
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize("fmt_name, overflow", [("fp32", "saturate"), ("fp16", "inf"),
                                                ("bf16", "inf")])
def test_expdot_extremes(fmt_name, overflow):
    """The accumulator at its limits: N largest products of one sign must not overflow it."""
    unit = registry.get("expdot")
    cfg = g.ExpDotConfig(lanes=4, simd=2, act_format=fmt_name, weight_exp_bits=3,
                         weight_bias=3, overflow=overflow)
    # non-zero weights of both signs, so every lane's product can reach the extremes
    params = {"weights": np.array([1, 3 | 8, 7, 4], dtype=np.int64)}
    x = _extreme_vectors(cfg, params["weights"])
    expected = unit.golden(cfg, params, x)
    fmt = cfg.fmt
    # the first two vectors overflow the format (infinity or saturation), not the accumulator
    want_big = ((fmt.emask << fmt.mbits) if overflow == "inf" else g.max_finite(fmt))
    assert int(expected[0]) == want_big and int(expected[1]) == want_big | (1 << fmt.width - 1)
    run = flow.rtlsim(unit, cfg, params, x, stall_in=0.2, stall_out=0.3, seed=3)
    _check(unit, cfg, params, x, run)


def test_expdot_fixed_extremes():
    unit = registry.get("expdot")
    cfg = g.ExpDotConfig(lanes=4, simd=4, act_format="fixed", act_bits=6, weight_exp_bits=3,
                         weight_bias=3)
    params = {"weights": np.array([3, 3, 7, 7 | 8], dtype=np.int64)}  # 1, 1, 16, -16
    x = np.array([[-32] * 4, [31] * 4, [-32, -32, -32, 31], [0, 0, 0, 0], [1, -1, 1, 1]])
    expected = unit.golden(cfg, params, x)
    # every product saturates to -32: the sum is the accumulator's most negative value
    assert cfg.acc_bits == 8 and expected[2] == -128 and expected[1] == 31 + 31 + 31 - 32
    run = flow.rtlsim(unit, cfg, params, x)
    _check(unit, cfg, params, x, run)


# Exhaustive equivalence --------------------------------------------------------------------------

def _exhaustive_expmul(cfg):
    unit = registry.get("expmul")
    gen = flow.generate(unit, cfg, {})
    bits = cfg.x_bits + cfg.w_bits
    got = run_exhaustive(gen.verilog, gen.top, bits)
    assert got.size == 1 << bits
    chunk = 1 << 22  # keeps the reference's temporaries to a few hundred MB
    for start in range(0, 1 << bits, chunk):
        words = np.arange(start, start + chunk, dtype=np.int64)
        expected = g.expmul_ref(cfg, words & ((1 << cfg.x_bits) - 1), words >> cfg.x_bits)
        bad = np.flatnonzero(got[start:start + chunk] != expected)
        assert bad.size == 0, (
            f"{bad.size} mismatches; first: x={words[bad[0]] & 0xFFFF:#x} "
            f"w={words[bad[0]] >> cfg.x_bits:#x} expected {expected[bad[0]]:#x} "
            f"got {got[start + bad[0]]:#x}")
    return got


@pytest.mark.parametrize("fmt_name, overflow", [("fp16", "inf"), ("bf16", "saturate")])
def test_expmul_exhaustive_e5(fmt_name, overflow):
    """Every activation x every weight code (2^22 vectors) of the generated Verilog."""
    cfg = g.ExpMulConfig(act_format=fmt_name, weight_exp_bits=5, weight_bias=15,
                         overflow=overflow)
    got = _exhaustive_expmul(cfg)
    # not vacuous: the other overflow mode's reference differs from these outputs
    other = g.ExpMulConfig(act_format=fmt_name, weight_exp_bits=5, weight_bias=15,
                           overflow="saturate" if overflow == "inf" else "inf")
    words = np.arange(1 << 22, dtype=np.int64)
    assert (got != g.expmul_ref(other, words & 0xFFFF, words >> 16)).any()


@pytest.mark.slow
@pytest.mark.parametrize("fmt_name", ["fp16", "bf16"])
@pytest.mark.parametrize("e_bits, bias, overflow", [(8, 127, "inf"), (8, 140, "saturate"),
                                                    (2, -3, "inf"), (4, 0, "saturate")])
def test_expmul_exhaustive_more_formats(fmt_name, e_bits, bias, overflow):
    _exhaustive_expmul(g.ExpMulConfig(act_format=fmt_name, weight_exp_bits=e_bits,
                                      weight_bias=bias, overflow=overflow))


def test_mulbase_int8_exhaustive():
    unit = registry.get("mulbase")
    cfg = g.MulBaseConfig("int8")
    gen = flow.generate(unit, cfg, {})
    got = run_exhaustive(gen.verilog, gen.top, 16).astype(np.int64)
    words = np.arange(1 << 16)
    a, b = (words & 0xFF) ^ 0x80, (words >> 8) ^ 0x80  # two's complement -> signed
    expected = ((a - 0x80) * (b - 0x80)) & 0xFFFF
    np.testing.assert_array_equal(got, expected)


# Synthesis ------------------------------------------------------------------------------------------

def test_expmul_uses_no_multiplier():
    unit = registry.get("expmul")
    cfg = config_from_dict(unit.config, unit.default_config)
    xc7 = synth_flow.synthesize_unit(unit, cfg, {}, "xc7")["figures"]
    assert xc7["DSP"] == 0 and xc7["LUT"] > 0
    ecp5 = synth_flow.synthesize_unit(unit, cfg, {}, "ecp5", fmax=False)["figures"]
    assert ecp5["MULT18X18D"] == 0 and ecp5["LUT4"] > 0


# Command line ----------------------------------------------------------------------------------------

def test_cli_generate_golden_rtlsim(tmp_path, capsys):
    cfg = {"lanes": 6, "simd": 2, "act_format": "fp16", "weight_exp_bits": 4, "weight_bias": 8}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert cli.main(["generate", "expdot", "--config", str(tmp_path / "cfg.json"), "-o",
                     str(tmp_path / "gen")]) == 0
    manifest = json.loads((tmp_path / "gen" / "manifest.json").read_text())
    assert manifest["derived"]["acc_bits"] == 10 + 31 + 3
    assert manifest["latency"] == 5 and manifest["cycles"]["expected"] == 3 + 5
    c = config_from_dict(g.ExpDotConfig, cfg)
    x = np.random.default_rng(0).random((5, 6)).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    common = ["--config", str(tmp_path / "cfg.json"), "--weights",
              str(tmp_path / "gen" / "weights.npz"), "--inputs", str(tmp_path / "x.npy")]
    assert cli.main(["golden", "expdot", *common, "-o", str(tmp_path / "g.npy")]) == 0
    assert cli.main(["rtlsim", "expdot", *common, "-o", str(tmp_path / "r.npy")]) == 0
    golden_y, rtl_y = np.load(tmp_path / "g.npy"), np.load(tmp_path / "r.npy")
    assert golden_y.dtype == np.uint16 and (golden_y == rtl_y).all()
    with np.load(tmp_path / "gen" / "weights.npz") as w:
        ref = np.array([np.float16(v) for v in x.astype(np.float64)
                        @ g.decode_weights(c, w["weights"])])
    # fp16 sums of products near 1 with exact accumulation: within half an ulp of float64
    assert np.allclose(golden_y.view(np.float16).astype(np.float64), ref, rtol=2 ** -10, atol=2 ** -6)


@pytest.mark.parametrize("unit_name, cfg, words", [
    ("expmul", {"act_format": "fp8"}, ["act_format", "'bf16'"]),
    ("expmul", {"act_format": "fixed", "overflow": "inf"}, ["overflow", "'saturate'"]),
    ("expdot", {"lanes": 6, "simd": 4}, ["simd", "must divide lanes = 6"]),
    ("expdot", {"lanes": 4, "weight_exp_bits": 1}, ["weight_exp_bits", "2..8"]),
    ("mulbase", {"kind": "int4"}, ["kind", "'int8'"]),
])
def test_cli_bad_config_one_line_exit_2(tmp_path, capsys, unit_name, cfg, words):
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    code = cli.main(["generate", unit_name, "--config", str(tmp_path / "bad.json"), "-o",
                     str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("qhw: error: ")
    for word in words:
        assert word in err[0]
    assert not (tmp_path / "out").exists()


def test_cli_bad_inputs_exit_2(tmp_path, capsys):
    (tmp_path / "cfg.json").write_text(json.dumps({"act_format": "fp16", "weight_exp_bits": 3,
                                                   "weight_bias": 3}))
    np.save(tmp_path / "x.npy", np.array([[1, 99]]))
    np.savez(tmp_path / "w.npz")
    code = cli.main(["golden", "expmul", "--config", str(tmp_path / "cfg.json"), "--weights",
                     str(tmp_path / "w.npz"), "--inputs", str(tmp_path / "x.npy"), "-o",
                     str(tmp_path / "y.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "weight codes" in err and "0..15" in err
    assert not (tmp_path / "y.npy").exists()
