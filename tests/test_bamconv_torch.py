"""The trainable BamConv2d against the unit's bit-exact reference, and that it trains."""

import numpy as np
import pytest
import torch

from qhw.golden import bamconv as bm
from qhw.golden.bamconv import BamConvConfig
from qhw.golden.bamconv_torch import (BamConv2d, count_gates, from_bits, heaviside_superspike,
                                      to_bits)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CONFIGS = [
    BamConvConfig(c_in=3, c_out=8, height=6, width=7, kernel=(3, 3), padding="same",
                  weight_bits=2, output="threshold"),
    BamConvConfig(c_in=2, c_out=6, height=5, width=9, kernel=(2, 4), padding="same",
                  weight_bits=4, output="threshold", pe=3, simd=4),
    BamConvConfig(c_in=4, c_out=5, height=6, width=6, kernel=(3, 2), padding="valid",
                  weight_bits=8, output="threshold"),
    BamConvConfig(c_in=5, c_out=4, height=1, width=12, kernel=(1, 3), padding="same",
                  weight_bits=8, output="threshold", gating="mask"),
    BamConvConfig(c_in=3, c_out=4, height=5, width=6, kernel=(3, 3), padding="same",
                  weight_bits=4, output="sum"),
    BamConvConfig(c_in=2, c_out=3, height=4, width=8, kernel=(4, 1), padding="valid",
                  weight_bits=2, output="sum", gating="count"),
    BamConvConfig(c_in=6, c_out=2, height=1, width=10, kernel=(1, 4), padding="same",
                  weight_bits=8, output="sum"),
]


def cfg_id(cfg):
    return f"{cfg.output}-{cfg.padding}-k{cfg.weight_bits}-{cfg.kernel[0]}x{cfg.kernel[1]}-{cfg.gating}"


def random_bits(shape, gen, p=0.5):
    return (torch.rand(shape, generator=gen) < p).float()


def perturb(layer, gen):
    """Random latent weights and biases (biases on the scale of the pre-activation)."""
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.3)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * layer.k ** 0.5 * 0.2)


def gates_for(cfg, n, gen):
    """(torch NCHW mask, unit gates array) or (None, None)."""
    shape = (n, cfg.out_height, cfg.out_width)
    if cfg.gating == "mask":
        g = random_bits((n, cfg.c_out) + shape[1:], gen)
        return g, g.numpy().astype(np.int64).transpose(0, 2, 3, 1)
    if cfg.gating == "count":
        counts = torch.randint(0, cfg.c_out + 1, shape, generator=gen).numpy()
        return count_gates(counts, cfg.c_out), counts
    return None, None


@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_export_reproduces_eval_output(cfg):
    gen = torch.Generator().manual_seed(CONFIGS.index(cfg))
    layer = BamConv2d.from_config(cfg)
    for trial in range(4):
        perturb(layer, gen)
        if trial == 3:  # a short training burst moves weights off the init distribution
            train(layer, teacher_fn(cfg, gen), gen, steps=5, batch=4, size=(cfg.height, cfg.width))
        layer.eval()
        params = layer.export()
        x = random_bits((3, cfg.c_in, cfg.height, cfg.width), gen, p=float(torch.rand(1, generator=gen)))
        g, unit_gates = gates_for(cfg, 3, gen)
        y = layer(x, g)
        inputs = {"activations": to_bits(x)} if g is None else \
            {"activations": to_bits(x), "gates": unit_gates}
        ref = bm.reference(cfg, params, inputs)
        assert np.array_equal(layer.unit_output(y), ref), (cfg, trial)
        if cfg.output == "threshold":
            assert set(np.unique(y.numpy())) <= {0.0, 1.0}
        else:
            # Exactly the unit's sums times the per-channel scale.
            want = torch.from_numpy(ref.transpose(0, 3, 1, 2).astype(np.float64)) \
                * layer.scale().double().view(1, -1, 1, 1)
            assert torch.equal(y, want.float())


def test_export_at_exact_ties():
    # Dyadic scale and bias: the pre-activation is exactly 0 for some acc; H(0) = 1 there.
    cfg = BamConvConfig(c_in=4, c_out=3, height=1, width=1, kernel=(1, 1), weight_bits=3,
                        output="threshold")
    layer = BamConv2d.from_config(cfg)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3, 1, -2, 0], [3, 3, 3, 3], [-3, -1, 2, 2]],
                                        dtype=torch.float32).view(3, 4, 1, 1) * 0.25)
        layer.bias.copy_(torch.tensor([-0.5, -0.75, 100.0]))
    layer.eval()
    params = layer.export()
    assert params["weights"].reshape(3, 4).tolist() == [[3, 1, -2, 0], [3, 3, 3, 3], [-3, -1, 2, 2]]
    assert layer.scale().tolist() == [0.25, 0.25, 0.25]
    lo, _ = bm.acc_range(cfg)
    assert params["thresholds"].tolist() == [2, 3, lo]  # acc*0.25 - 0.5 >= 0 <=> acc >= 2
    for bits in np.ndindex(2, 2, 2, 2):
        x = torch.tensor(bits, dtype=torch.float32).view(1, 4, 1, 1)
        assert np.array_equal(layer.unit_output(layer(x)),
                              bm.reference(cfg, params, to_bits(x)))
    # Beyond reach the other way: never on.
    with torch.no_grad():
        layer.bias.fill_(-1e6)
    _, hi = bm.acc_range(cfg)
    assert layer.export()["thresholds"].tolist() == [hi + 1] * 3


def test_thresholds_match_eval_arithmetic_on_every_acc_near_ties():
    # Biases at -m*scale (rounded to float32): the float64 pre-activation lands on or next to 0.
    # The exported threshold must agree with the eval arithmetic for every accumulator value.
    gen = torch.Generator().manual_seed(7)
    cfg = BamConvConfig(c_in=3, c_out=16, height=3, width=3, kernel=(3, 3), weight_bits=8,
                        output="threshold")
    lo, hi = bm.acc_range(cfg)
    acc = torch.arange(lo, hi + 1, dtype=torch.float64).view(-1, 1)
    layer = BamConv2d.from_config(cfg)
    for _ in range(10):
        perturb(layer, gen)
        with torch.no_grad():
            m = torch.randint(lo // 4, hi // 4, (16,), generator=gen).float()
            layer.bias.copy_(-m * layer.scale() + torch.randint(-1, 2, (16,), generator=gen) * 1e-7)
        t = torch.from_numpy(layer.export()["thresholds"])
        on = (acc * layer.scale().double() + layer.bias.detach().double()) >= 0
        assert torch.equal(on, acc >= t.double())


def test_superspike_gradient():
    x = torch.tensor([-1.0, -0.1, 0.0, 0.05, 2.0], requires_grad=True)
    y = heaviside_superspike(x, beta=10.0)
    assert y.tolist() == [0, 0, 1, 1, 1]
    y.sum().backward()
    torch.testing.assert_close(x.grad, 1 / (10 * x.detach().abs() + 1) ** 2)
    assert heaviside_superspike(torch.tensor([-0.0])).item() == 1.0


def test_weights_quantized_per_channel_and_ste():
    layer = BamConv2d(2, 3, (1, 1), weight_bits=4)
    q = layer.int_weight()
    assert q.abs().max() <= 7 and (q.abs().amax(dim=(1, 2, 3)) == 7).all()
    w = layer.fake_weight()
    w.sum().backward()
    assert torch.equal(layer.weight.grad, torch.ones_like(layer.weight))


# Training on a toy task ------------------------------------------------------------------------

def teacher_fn(cfg, gen):
    """A random integer-weight threshold conv (the same geometry) producing binary maps."""
    kh, kw = cfg.kernel
    w = torch.randint(-3, 4, (cfg.c_out, cfg.c_in, kh, kw), generator=gen).double()
    t = w.sum(dim=(1, 2, 3)) / 2  # roughly half the outputs on for p = 0.5 inputs
    pads = (0, 0, 0, 0) if cfg.padding == "valid" else \
        ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2, kh - 1 - (kh - 1) // 2)

    def f(x):
        acc = torch.nn.functional.conv2d(torch.nn.functional.pad(x.double(), pads), w)
        return (acc >= t.view(1, -1, 1, 1)).float()
    return f


def train(layer, teacher, gen, steps, batch, size, lr=0.02):
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    layer.train()
    losses = []
    for _ in range(steps):
        x = random_bits((batch, layer.c_in) + tuple(size), gen)
        y = layer(x)
        loss = (y - teacher(x)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_training_reduces_loss():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cfg = BamConvConfig(c_in=4, c_out=4, height=8, width=8, kernel=(3, 3), padding="same",
                        weight_bits=4, output="threshold")
    layer = BamConv2d.from_config(cfg)
    losses = train(layer, teacher_fn(cfg, gen), gen, steps=200, batch=16, size=(8, 8))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"training loss: first 10 steps {first:.3f}, last 10 steps {last:.3f}")
    assert last < 0.5 * first, (first, last)
    # The exported integer layer keeps what was learned: eval error rate on fresh data.
    layer.eval()
    x = random_bits((64, 4, 8, 8), gen)
    teacher = teacher_fn(cfg, torch.Generator().manual_seed(0))
    err = (layer(x) - teacher(x)).abs().mean().item()
    assert err < 0.5 * first, (first, err)
    ref = bm.reference(cfg, layer.export(), to_bits(x))
    assert np.array_equal(ref, to_bits(layer(x)))


# Export file ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_export_checks_and_round_trips_npz(cfg, tmp_path):
    gen = torch.Generator().manual_seed(3)
    layer = BamConv2d.from_config(cfg)
    perturb(layer, gen)
    params = layer.export()
    checked = bm.check_params(cfg, params)
    assert set(params) == set(bm.param_shapes(cfg))
    for k, v in checked.items():
        assert np.array_equal(v, params[k])
    wlo, whi = bm.weight_range(cfg)
    assert wlo < params["weights"].min() and params["weights"].max() <= whi
    path = tmp_path / "w.npz"
    layer.save_npz(path)
    with np.load(path) as f:
        loaded = {k: f[k] for k in f.files}
    assert set(loaded) == set(params)
    for k in params:
        assert np.issubdtype(loaded[k].dtype, np.integer)
        assert np.array_equal(loaded[k], params[k])
    bm.check_params(cfg, loaded)
    x = random_bits((2, cfg.c_in, cfg.height, cfg.width), gen)
    inputs = {"activations": to_bits(x)}
    if cfg.gating != "none":
        inputs["gates"] = gates_for(cfg, 2, gen)[1]
    assert np.array_equal(bm.reference(cfg, loaded, inputs), bm.reference(cfg, params, inputs))


def test_bits_helpers():
    b = np.random.default_rng(0).integers(0, 2, (2, 3, 4, 5)).astype(np.uint8)
    assert np.array_equal(to_bits(from_bits(b)), b)
    with pytest.raises(ValueError):
        to_bits(torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError):
        BamConv2d(2, 2, weight_bits=9)
