"""The trainable BinaryConv2d against the unit's bit-exact reference, and that it trains."""

import numpy as np
import pytest
import torch

from qhw.golden import binconv as bc
from qhw.golden.binconv import BinConvConfig
from qhw.golden.binconv_torch import BinaryConv2d, from_bits, sign_ste, to_bits


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run torch single-threaded: these convolutions are tiny, and on a loaded 2-core machine
    intra-op threads made them 10-30x slower. Restored afterwards for other tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

CONFIGS = [
    BinConvConfig(c_in=3, c_out=8, height=6, width=7, kernel=(3, 3), padding="same", pad_bit=0,
                  output="threshold"),
    BinConvConfig(c_in=2, c_out=6, height=5, width=9, kernel=(2, 4), padding="same", pad_bit=1,
                  output="threshold", pe=3, simd=4),
    BinConvConfig(c_in=4, c_out=5, height=6, width=6, kernel=(3, 2), padding="valid",
                  output="threshold"),
    BinConvConfig(c_in=5, c_out=7, height=1, width=12, kernel=(1, 3), padding="same", pad_bit=1,
                  output="threshold"),
    BinConvConfig(c_in=3, c_out=4, height=5, width=6, kernel=(3, 3), padding="same", pad_bit=1,
                  output="popcount"),
    BinConvConfig(c_in=2, c_out=3, height=4, width=8, kernel=(4, 1), padding="valid",
                  output="popcount"),
    BinConvConfig(c_in=6, c_out=2, height=1, width=10, kernel=(1, 4), padding="same", pad_bit=0,
                  output="popcount"),
]


def cfg_id(cfg):
    return f"{cfg.output}-{cfg.padding}{cfg.pad_bit}-{cfg.kernel[0]}x{cfg.kernel[1]}"


def random_pm1(shape, gen):
    return torch.randint(0, 2, shape, generator=gen).float() * 2 - 1


def nchw_shape(cfg, n):
    return (n, cfg.c_in, cfg.height, cfg.width)


def train_a_little(layer, cfg, gen, steps=5):
    """A few Adam steps on random data, so that weights and running statistics move."""
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    layer.train()
    for _ in range(steps):
        x = random_pm1(nchw_shape(cfg, 4), gen)
        y = layer(x)
        loss = (y - random_pm1(y.shape, gen)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        layer.clip_weights_()


def randomise_bn(layer, gen):
    """Random eval statistics; channel 0 gets gamma 0, channels 1, 3, 5... negative gamma."""
    bn, c, k = layer.bn, layer.c_out, layer.k
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=gen) * k ** 0.5)
        bn.running_var.copy_(torch.rand(c, generator=gen) * k + 0.1)
        gamma = torch.rand(c, generator=gen) + 0.2
        gamma[1::2] *= -1
        gamma[0] = 0.0
        bn.weight.copy_(gamma)
        bn.bias.copy_(torch.randn(c, generator=gen))


def fold_margin(layer):
    """Smallest distance between a reachable dot product and a channel's real threshold tau.

    The layer's float32 batch norm and the float64 fold may round differently only when this is
    tiny, so the exact comparison below is meaningful only when it is not.
    """
    bn = layer.bn
    g = bn.weight.detach().double().numpy()
    mu, beta = bn.running_mean.double().numpy(), bn.bias.detach().double().numpy()
    sigma = np.sqrt(bn.running_var.double().numpy() + bn.eps)
    tau = mu - beta * sigma / np.where(g == 0, 1, g)
    d = np.arange(-layer.k, layer.k + 1, 2)
    return np.abs(d[None, :] - tau[g != 0, None]).min()


@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_export_matches_reference_after_training(cfg):
    gen = torch.Generator().manual_seed(1234)
    torch.manual_seed(1234)
    layer = BinaryConv2d.from_config(cfg)
    train_a_little(layer, cfg, gen)
    if cfg.output == "threshold":
        randomise_bn(layer, gen)
        assert fold_margin(layer) > 1e-4
    with torch.no_grad():
        # A latent weight of exactly 0 (either sign of zero) must binarise to +1 in both paths.
        layer.weight[0, 0, 0, 0] = 0.0
        layer.weight[-1, -1, -1, -1] = -0.0
    layer.eval()
    x_bits = bc.random_inputs(cfg, np.random.default_rng(5), frames=6)
    with torch.no_grad():
        y = layer(from_bits(x_bits))
    assert tuple(y.shape) == (6, cfg.c_out, cfg.out_height, cfg.out_width)
    params = layer.export()
    assert params["weights"][0, 0, 0, 0] == 1 and params["weights"][-1, -1, -1, -1] == 1
    want = bc.reference(cfg, params, x_bits)
    got = layer.unit_output(y)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
    if cfg.output == "threshold":
        # Channel 0 has gamma == 0: a constant output decided by the sign of beta.
        assert (got[..., 0] == int(layer.bn.bias[0] >= 0)).all()
        assert set(np.unique(params["directions"][1::2])) == {-1}
        assert np.abs(params["thresholds"]).max() <= cfg.k + 1


def test_fold_exact_ties_and_zero_gamma():
    # Dyadic batch-norm parameters (eps 0, var 4 -> sigma 2) make y exactly 0 at d == tau, so the
    # ceil/floor choice and sign(0) = +1 are tested on the tie itself, not near it.
    cfg = BinConvConfig(c_in=2, c_out=10, height=3, width=4, kernel=(1, 1), output="threshold")
    layer = BinaryConv2d.from_config(cfg, bn_eps=0.0)
    #          gamma, beta,  mean   -> tau = mean - beta*2/gamma
    table = [(1.0, 0.0, 0.0),      # d >= 0
             (-1.0, 0.0, 0.0),     # d <= 0
             (1.0, 0.25, 0.5),     # tau 0 with beta != 0
             (-1.0, 0.25, -0.5),   # tau 0, negative gamma
             (2.0, 0.0, -2.0),     # tau -K
             (-2.0, 0.0, 2.0),     # tau K
             (0.5, 0.0, 1.0),      # tau 1: between reachable values (parity of K is even)
             (0.0, 0.5, 7.0),      # gamma 0, beta > 0: always 1
             (0.0, -0.5, 7.0),     # gamma 0, beta < 0: never
             (0.0, 0.0, 7.0)]      # gamma 0, beta 0: y == 0 -> +1 -> always 1
    with torch.no_grad():
        g, b, m = (torch.tensor(col) for col in zip(*table))
        layer.bn.weight.copy_(g)
        layer.bn.bias.copy_(b)
        layer.bn.running_mean.copy_(m)
        layer.bn.running_var.fill_(4.0)
    layer.eval()
    params = layer.export()
    k = cfg.k
    assert params["thresholds"].tolist() == [0, 0, 0, 0, -2, 2, 1, -(k + 1), k + 1, -(k + 1)]
    assert params["directions"].tolist() == [1, -1, 1, -1, 1, -1, 1, 1, 1, 1]
    # Every pixel row holds all four 2-channel inputs, so d takes each of -2, 0, 2.
    x_bits = np.stack([np.array(list(np.ndindex(2, 2)), np.uint8).reshape(1, 4, 2)] * 3, axis=1)
    with torch.no_grad():
        y = layer(from_bits(x_bits))
    got = layer.unit_output(y)
    assert np.array_equal(got, bc.reference(cfg, params, x_bits))
    d = bc.reference(BinConvConfig(c_in=2, c_out=10, height=3, width=4, kernel=(1, 1)),
                     {"weights": params["weights"]}, x_bits)
    assert (d == 0).any() and (d == 2).any() and (d == -2).any()  # the ties were exercised
    assert got[..., 7].all() and not got[..., 8].any() and got[..., 9].all()


def test_threshold_without_batch_norm_is_sign_of_dot():
    cfg = BinConvConfig(c_in=2, c_out=4, height=4, width=4, kernel=(2, 2), padding="same",
                        output="threshold")
    layer = BinaryConv2d.from_config(cfg, batch_norm=False)
    params = layer.export()
    assert params["thresholds"].tolist() == [0] * 4 and params["directions"].tolist() == [1] * 4
    x = bc.random_inputs(cfg, np.random.default_rng(0), frames=3)
    with torch.no_grad():
        got = layer.unit_output(layer(from_bits(x)))
    assert np.array_equal(got, bc.reference(cfg, params, x))


def test_binarize_input_accepts_real_values():
    cfg = BinConvConfig(c_in=3, c_out=2, height=5, width=5, kernel=(3, 3), padding="same",
                        pad_bit=1, output="popcount")
    layer = BinaryConv2d.from_config(cfg, binarize_input=True)
    x = torch.randn(2, 3, 5, 5)
    x[0, 0, 0, 0] = 0.0  # sign(0) = +1 for activations too
    with torch.no_grad():
        got = layer.unit_output(layer(x))
    want = bc.reference(cfg, layer.export(), to_bits(torch.where(x >= 0, 1.0, -1.0)))
    assert np.array_equal(got, want)


def test_sign_ste_forward_and_gradient():
    w = torch.tensor([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = sign_ste(w)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1, 1]
    y.backward(torch.arange(1.0, 9.0))
    # Clipped identity: gradient passes where |w| <= 1, blocked outside.
    assert w.grad.tolist() == [0, 2, 3, 4, 5, 6, 7, 0]


def test_to_bits_from_bits_round_trip():
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, size=(3, 4, 5, 6), dtype=np.uint8)
    t = from_bits(bits)
    assert t.shape == (3, 6, 4, 5) and set(t.unique().tolist()) <= {-1.0, 1.0}
    assert t[1, 2, 3, 4] == 2 * int(bits[1, 3, 4, 2]) - 1
    assert np.array_equal(to_bits(t), bits)
    assert np.array_equal(to_bits(t[0]), bits[:1])
    with pytest.raises(ValueError, match="to_bits"):
        to_bits(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="from_bits"):
        from_bits(np.full((2, 2, 1), 2))


def test_padding_matches_config_and_torch():
    for kernel in [(1, 1), (2, 2), (3, 4), (4, 1)]:
        cfg = BinConvConfig(c_in=1, c_out=1, height=6, width=6, kernel=kernel, padding="same")
        layer = BinaryConv2d.from_config(cfg)
        assert layer.pads == cfg.pads
        x = random_pm1((1, 1, 6, 6), torch.Generator().manual_seed(0))
        assert layer(x).shape[-2:] == (cfg.out_height, cfg.out_width)


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_norm"):
        BinaryConv2d(2, 2, (3, 3), output="popcount", batch_norm=True)
    with pytest.raises(ValueError, match="padding"):
        BinaryConv2d(2, 2, (3, 3), padding="full")
    with pytest.raises(ValueError, match="pad_bit"):
        BinaryConv2d(2, 2, (3, 3), pad_bit=-1)
    with pytest.raises(TypeError):
        BinaryConv2d.from_config({"c_in": 2})


def test_export_to_npz_round_trip(tmp_path):
    for cfg in (CONFIGS[0], CONFIGS[4]):
        torch.manual_seed(0)
        layer = BinaryConv2d.from_config(cfg)
        if cfg.output == "threshold":
            randomise_bn(layer, torch.Generator().manual_seed(3))
        layer.eval()
        path = tmp_path / f"{cfg.output}.npz"
        layer.save_npz(path)
        with np.load(path) as f:
            loaded = {name: f[name] for name in f.files}
        assert sorted(loaded) == sorted(bc.param_shapes(cfg))
        checked = bc.check_params(cfg, loaded)
        exported = layer.export()
        for name in exported:
            assert np.array_equal(checked[name], exported[name])
            assert loaded[name].dtype == exported[name].dtype
        x = bc.random_inputs(cfg, np.random.default_rng(1), frames=2)
        with torch.no_grad():
            assert np.array_equal(layer.unit_output(layer(from_bits(x))), bc.reference(cfg, loaded, x))


def test_training_reduces_loss_on_teacher_task():
    # Teacher: a random binary conv with sign output; student: threshold mode with batch norm,
    # trained through both straight-through estimators. A learnable task (the student can
    # represent the teacher exactly), so the loss must fall clearly.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    cfg = BinConvConfig(c_in=4, c_out=4, height=8, width=8, kernel=(3, 3), padding="same",
                        pad_bit=0, output="threshold")
    teacher = BinaryConv2d.from_config(cfg, batch_norm=False, init_scale=1.0).eval()
    student = BinaryConv2d.from_config(cfg)
    opt = torch.optim.Adam(student.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        x = random_pm1(nchw_shape(cfg, 16), gen)
        with torch.no_grad():
            target = teacher(x)
        y = student(x)
        loss = (y - target).pow(2).mean() / 4  # = fraction of wrong output bits
        opt.zero_grad()
        loss.backward()
        opt.step()
        student.clip_weights_()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    # Seeds 0..5 all end below 1% wrong bits from about 20% over the first steps; 0.3 leaves
    # ample room while still demanding a clear fall.
    assert last < 0.3 * first, (first, last)
    # The exported student agrees with its own eval-mode forward on fresh data.
    student.eval()
    x = bc.random_inputs(cfg, np.random.default_rng(9), frames=4)
    with torch.no_grad():
        assert np.array_equal(student.unit_output(student(from_bits(x))),
                              bc.reference(cfg, student.export(), x))
