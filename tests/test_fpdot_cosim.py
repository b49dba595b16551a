"""RTL of ``fpdot`` (conventional float dot product) against its golden model, cocotb + Verilator.

* Every registered regression config: bit-exact, cycles and latency equal to the cost model with
  no stalls; bit-exact under random input idles and output back-pressure.
* Adder stress: weights 1.0, so the products are the activations and the adders see operand pairs
  chosen to make them cancel, carry, tie and align over the whole shifter range.
* Directed special values through the pipeline (overflow, inf - inf, NaN, signed zeros, flushes).
* Structured exhaustive simulation of the adder (compiled Verilator harness,
  :mod:`qhw.cosim.exhaustive`): a 2-lane fp16 ``fpdot`` with weights 1.0 gets every fp16 value x0
  paired with 256 partners derived from it (every exponent distance 0..31, both signs, mantissa
  equal, +-1 ulp or complemented): 2^24 sums, all equal to the golden model.
* The default configuration and more operand pairs behind ``-m slow``.
"""

import numpy as np
import pytest
from amaranth import Cat, Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from qhw import flow, registry
from qhw.cosim.exhaustive import run_exhaustive
from qhw.hdl.common import to_verilog
from qhw.hdl.fpdot import FpDot
from qhw.config import config_from_dict
from qhw.golden import expmul as gexp
from qhw.golden import fpdot as g

UNIT = registry.get("fpdot")
CASES = sorted(UNIT.regression)


def _check(cfg, params, x, run):
    expected = UNIT.golden(cfg, params, x)
    message = flow.first_mismatch(UNIT, run, expected)
    assert message is None, message


def _case(name, seed, vectors=16):
    cfg = config_from_dict(UNIT.config, UNIT.regression[name])
    rng = np.random.default_rng(seed)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    return cfg, params, UNIT.random_inputs(cfg, rng, vectors)


@pytest.mark.parametrize("name", CASES)
def test_bit_exact_and_cycles(name):
    cfg, params, x = _case(name, seed=1)
    run = flow.rtlsim(UNIT, cfg, params, x)
    _check(cfg, params, x, run)
    model = UNIT.cost_model(cfg, x.shape[0])
    assert run.cycles == model.expected, f"measured {run.cycles} cycles, model {model.expected}"
    assert run.latency == model.latency


@pytest.mark.parametrize("name", CASES)
def test_bit_exact_under_stalls(name):
    cfg, params, x = _case(name, seed=2)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.4, stall_out=0.5, seed=9)
    _check(cfg, params, x, run)
    assert run.cycles >= UNIT.cost_model(cfg, x.shape[0]).expected


def stress_vectors(fmt, rng, vectors, lanes):
    """Activations whose sums stress the adders: each lane is derived from the previous one
    (its exact negation, or exponents 0..mbits+6 apart and now and then much further, with
    mantissas equal, a few ulps apart, short or random, either sign), with a few zeros,
    subnormals and infinities."""
    top = fmt.width - 1
    x = np.empty((vectors, lanes), dtype=np.int64)
    x[:, 0] = (rng.integers(0, 2, vectors) << top) | (
        (fmt.bias + rng.integers(-8, 9, vectors)) << fmt.mbits) | rng.integers(
            0, 1 << fmt.mbits, vectors)
    for k in range(1, lanes):
        prev = x[:, k - 1]
        e0, m0 = (prev >> fmt.mbits) & fmt.emask, prev & fmt.mmask
        d = np.where(rng.random(vectors) < 0.9,
                     rng.integers(-fmt.mbits - 6, fmt.mbits + 7, vectors),
                     rng.integers(-40, 41, vectors))
        e = np.clip(e0 + d, 1, fmt.emask - 1)
        kind = rng.integers(0, 4, vectors)
        m = np.select([kind == 0, kind == 1, kind == 2],
                      [m0, (m0 + rng.integers(-3, 4, vectors)) & fmt.mmask,
                       rng.integers(0, 8, vectors) << (fmt.mbits - 3)],
                      rng.integers(0, 1 << fmt.mbits, vectors))
        x[:, k] = np.where(rng.random(vectors) < 0.2, prev ^ (1 << top),
                           (rng.integers(0, 2, vectors) << top) | (e << fmt.mbits) | m)
    pick = rng.random(x.shape) < 0.03
    x[pick] = rng.choice(gexp.special_values(fmt), size=int(pick.sum()))
    return x


def _ones(cfg):
    return {"weights": np.full(cfg.lanes, cfg.fmt.bias << cfg.fmt.mbits, dtype=np.int64)}


@pytest.mark.parametrize("fmt_name", ["fp32", "fp16"])
def test_adder_stress(fmt_name):
    cfg = g.FpDotConfig(lanes=4, simd=2, act_format=fmt_name)
    x = stress_vectors(cfg.fmt, np.random.default_rng(3), 1500, cfg.lanes)
    run = flow.rtlsim(UNIT, cfg, _ones(cfg), x, stall_in=0.1, stall_out=0.1, seed=4)
    _check(cfg, _ones(cfg), x, run)
    assert (run.outputs == 0).any()  # exact cancellations happened


def test_directed_special_values():
    cfg = g.FpDotConfig(lanes=4, simd=2, act_format="fp32")
    one, neg, inf, big = 0x3F800000, 1 << 31, 0x7F800000, 0x7F7FFFFF
    x = np.array([
        [inf, one, one, one], [inf, one, inf | neg, one], [inf, inf | neg, one, one],
        [0xFFC00123, one, one, one], [big, big, big | neg, big | neg], [big, big | neg, big, 0],
        [neg, neg, neg, neg], [0, neg, neg, neg], [one, 0x33800000, 0x33800000, 0],
        [0x00C00000, neg | 0x00800000, neg | 0x00C00000, 0x00800000],   # flushed results
        [1, neg | 1, 2, 3],                                              # subnormal inputs
    ])
    params = _ones(cfg)
    run = flow.rtlsim(UNIT, cfg, params, x)
    _check(cfg, params, x, run)
    # spot checks by IEEE rules: inf + 1, NaN, +0 + -0, -0 sums, 1 + 2^-24 rounding to even
    assert [int(v) for v in run.outputs[[0, 1, 6, 7, 8, 9]]] == [
        inf, gexp.qnan(cfg.fmt), neg, 0, one, 0]


def partner(fmt, x0, k):
    """The partner x1 of x0 chosen by the 8-bit k: exponent e0 - k[0:5] (0 below the range),
    sign flipped by k[5], mantissa by k[6:8]: m0, m0 + 1, m0 - 1 (mod 2^mbits), ~m0."""
    e0, m0, s0 = (x0 >> fmt.mbits) & fmt.emask, x0 & fmt.mmask, x0 >> (fmt.width - 1)
    ds, flip, mode = k & 31, (k >> 5) & 1, k >> 6
    e1 = np.where(e0 > ds, e0 - ds, 0)
    m1 = np.select([mode == 0, mode == 1, mode == 2], [m0, m0 + 1, m0 - 1], ~m0) & fmt.mmask
    return ((s0 ^ flip) << (fmt.width - 1)) | (e1 << fmt.mbits) | m1


class PairHarness(wiring.Component):
    """A 2-lane, 1-fold ``fpdot`` (weights 1.0) whose 16 + 8-bit input word is x0 and the k of
    :func:`partner`; the harness feeds it every word in order."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({"i": In(stream.Signature(cfg.x_bits + 8)),
                          "o": Out(stream.Signature(cfg.x_bits))})

    def elaborate(self, platform):
        m = Module()
        fmt, xb = self.cfg.fmt, self.cfg.x_bits
        m.submodules.dot = dot = FpDot(self.cfg, _ones(self.cfg))
        x0, k = self.i.payload[:xb], self.i.payload[xb:]
        e0, m0 = x0[fmt.mbits:xb - 1], x0[:fmt.mbits]
        ds = k[:5]
        e1 = Mux(e0 > ds, e0 - ds, 0)[:fmt.ebits]
        m1 = Mux(k[7], Mux(k[6], ~m0, m0 - 1), Mux(k[6], m0 + 1, m0))[:fmt.mbits]
        x1 = Cat(m1, e1, x0[xb - 1] ^ k[5])
        m.d.comb += [dot.i.valid.eq(self.i.valid), self.i.ready.eq(dot.i.ready),
                     dot.i.payload.eq(Cat(x0, x1))]
        wiring.connect(m, dot.o, wiring.flipped(self.o))
        return m


def _exhaustive_pairs(fmt_name):
    cfg = g.FpDotConfig(lanes=2, simd=2, act_format=fmt_name)
    got = run_exhaustive(to_verilog(PairHarness(cfg), "pairs"), "pairs", cfg.x_bits + 8)
    assert got.size == 1 << 24
    chunk = 1 << 21  # keeps the reference's temporaries small
    for start in range(0, 1 << 24, chunk):
        words = np.arange(start, start + chunk, dtype=np.int64)
        x0, k = words & 0xFFFF, words >> 16
        x = np.stack([x0, partner(cfg.fmt, x0, k)], axis=1)
        expected = g.fpdot_ref(cfg, x, _ones(cfg)["weights"])
        bad = np.flatnonzero(got[start:start + chunk] != expected)
        assert bad.size == 0, (f"{bad.size} mismatches; first: x0={x[bad[0], 0]:#x} "
                               f"x1={x[bad[0], 1]:#x} expected {expected[bad[0]]:#x} "
                               f"got {got[start + bad[0]]:#x}")


def test_adder_exhaustive_pairs_fp16():
    _exhaustive_pairs("fp16")


@pytest.mark.slow
def test_adder_exhaustive_pairs_bf16():
    _exhaustive_pairs("bf16")


@pytest.mark.slow
def test_default_config_many_vectors():
    cfg = config_from_dict(UNIT.config, UNIT.default_config)
    rng = np.random.default_rng(7)
    params = UNIT.check_params(cfg, UNIT.random_params(cfg, rng))
    x = UNIT.random_inputs(cfg, rng, 300)
    run = flow.rtlsim(UNIT, cfg, params, x, stall_in=0.2, stall_out=0.3, seed=5)
    _check(cfg, params, x, run)
    run = flow.rtlsim(UNIT, cfg, params, x[:40])
    assert run.cycles == UNIT.cost_model(cfg, 40).expected


@pytest.mark.slow
@pytest.mark.parametrize("fmt_name, lanes, simd", [("fp32", 8, 8), ("bf16", 6, 3),
                                                   ("fp16", 12, 2)])
def test_adder_stress_more(fmt_name, lanes, simd):
    cfg = g.FpDotConfig(lanes=lanes, simd=simd, act_format=fmt_name)
    x = stress_vectors(cfg.fmt, np.random.default_rng(lanes), 6000, cfg.lanes)
    run = flow.rtlsim(UNIT, cfg, _ones(cfg), x, stall_in=0.1, stall_out=0.1, seed=6)
    _check(cfg, _ones(cfg), x, run)
