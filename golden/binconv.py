"""XNOR-popcount binary convolution: configuration, data formats and the bit-exact reference.

This module is the single definition of the ``binconv`` unit's arithmetic. The Amaranth generator
(:mod:`qhw.hdl.binconv`) builds its memories with the packing functions here, the cosimulation
packs and unpacks streams with them, and the tests check :func:`reference` against PyTorch's
``conv2d`` on +-1 tensors.

Encoding: a bit 1 stands for +1, a bit 0 for -1 (FINN's bipolar convention). With K = C_in*kh*kw
inputs of a window and P = popcount(XNOR(x, w)), the dot product is ``2P - K``.

Thresholds are given in the dot-product domain: output channel c is 1 when ``d >= t[c]``
(direction +1) or ``d <= t[c]`` (direction -1). Batch norm with a positive scale folds into
direction +1, with a negative scale into direction -1 (see :mod:`qhw.golden.binconv_torch`).
The hardware compares the popcount P instead: :func:`popcount_thresholds` is that rewrite, and the
reference uses it too, so the two cannot drift apart.
"""

import dataclasses

import numpy as np

from ..config import check_choice, check_int
from ..errors import QhwInputError
from .conv import ConvGeometry, sliding_windows, window_order


@dataclasses.dataclass(frozen=True)
class BinConvConfig(ConvGeometry):
    """Configuration of one XNOR-popcount convolution layer.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    height, width : int
        Input feature-map size (time x frequency for spectrograms; 1-D convolution is height 1).
    kernel : (int, int)
        Kernel height and width.
    padding : 'valid' or 'same'
        'same' pads like PyTorch: (k-1)//2 before, the rest after.
    pad_bit : 0 or 1
        The bit that padded positions hold (0 -> -1, 1 -> +1).
    pe : int
        Output channels computed in parallel; divides ``c_out``.
    simd : int
        Input lanes per cycle; divides ``c_in*kh*kw``.
    output : 'popcount' or 'threshold'
        'popcount' gives the signed dot product ``2P - K`` per channel; 'threshold' one bit per
        channel from a per-channel threshold and direction.
    counter : 'fa' or 'gpc63'
        Compressor-tree cell: 3:2 full adders, or 6:3 generalized parallel counters (one LUT6 per
        output bit) after a first level of full adders.
    weights : 'baked' or 'port'
        'baked' (default): the weights and thresholds are the memories' initial contents, fixed
        in the bitstream; 'port': the memories start empty and a weight-load stream ``wl``
        writes them (every weight word, then every auxiliary word, in memory order), so one
        bitstream serves retrained models; no window is computed until a whole load has arrived
        (the window generator may take the first pixels meanwhile).
    """

    pad_bit: int = 0
    output: str = "popcount"
    counter: str = "gpc63"

    def __post_init__(self):
        self.check_geometry()
        check_int("pad_bit", self.pad_bit, low=0, high=1)
        check_choice("output", self.output, ("popcount", "threshold"))
        check_choice("counter", self.counter, ("fa", "gpc63"))

    @property
    def popcount_bits(self):
        """Width of the popcount P in [0, K]: cannot overflow by construction."""
        return self.k.bit_length()

    @property
    def dot_bits(self):
        """Signed width of the dot product 2P - K in [-K, K]."""
        return self.k.bit_length() + 1

    @property
    def threshold_bits(self):
        """Width of a popcount-domain threshold in [0, K+1]."""
        return (self.k + 1).bit_length()

    @property
    def out_element_bits(self):
        return self.dot_bits if self.output == "popcount" else 1


# Parameters (the weight file) ---------------------------------------------------------------------

def param_shapes(cfg):
    """Names, shapes and meaning of the arrays in a ``binconv`` weight file (.npz)."""
    kh, kw = cfg.kernel
    shapes = {"weights": ((cfg.c_out, cfg.c_in, kh, kw), "bits {0,1}, PyTorch order (out, in, kh, kw)")}
    if cfg.output == "threshold":
        shapes["thresholds"] = ((cfg.c_out,), "integers, dot-product domain")
        shapes["directions"] = ((cfg.c_out,), "+1 (d >= t) or -1 (d <= t)")
    return shapes


def _check_binary(name, array):
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise QhwInputError(f"{name}: dtype must be an integer or bool type holding 0/1, got {array.dtype}")
    if array.size and not np.isin(array, (0, 1)).all():
        bad = array[~np.isin(array, (0, 1))].flat[0]
        raise QhwInputError(f"{name}: values must be 0 or 1, found {bad}")
    return array.astype(np.uint8)


def check_params(cfg, params):
    """Validate a weight-file mapping against ``cfg`` and return normalised arrays."""
    shapes = param_shapes(cfg)
    unknown = sorted(set(params) - set(shapes))
    if unknown:
        raise QhwInputError(f"weights file: unknown array {unknown[0]!r}; expected: {', '.join(shapes)}")
    out = {}
    for name, (shape, meaning) in shapes.items():
        if name not in params:
            raise QhwInputError(f"weights file: missing array {name!r} (shape {shape}, {meaning})")
        array = np.asarray(params[name])
        if array.shape != shape:
            raise QhwInputError(f"{name}: shape must be {shape} ({meaning}), got {array.shape}")
        if name == "weights":
            out[name] = _check_binary(name, array)
        else:
            if not np.issubdtype(array.dtype, np.integer):
                raise QhwInputError(f"{name}: dtype must be integer, got {array.dtype}")
            if name == "directions" and not np.isin(array, (-1, 1)).all():
                raise QhwInputError(f"directions: values must be +1 or -1, found {array[~np.isin(array, (-1, 1))].flat[0]}")
            if name == "thresholds":
                # Beyond +-(K+1) every threshold acts alike (d lies in [-K, K]); clamping first
                # keeps huge or unsigned values from wrapping when converted to int64.
                bound = cfg.k + 1
                array = np.where(array > bound, bound, np.where(array < -bound, -bound, array))
            out[name] = array.astype(np.int64)
    return out


def random_params(cfg, rng):
    """Random weights; thresholds spread over the reachable dot-product range."""
    kh, kw = cfg.kernel
    params = {"weights": rng.integers(0, 2, size=(cfg.c_out, cfg.c_in, kh, kw), dtype=np.uint8)}
    if cfg.output == "threshold":
        # Mostly near zero (where outputs are balanced), some beyond +-K to reach the clamps.
        spread = max(1, cfg.k // 4)
        t = rng.integers(-spread, spread + 1, size=cfg.c_out)
        extreme = rng.random(cfg.c_out) < 0.1
        t[extreme] = rng.choice([-cfg.k - 3, cfg.k + 3], size=int(extreme.sum()))
        params["thresholds"] = t.astype(np.int64)
        params["directions"] = rng.choice(np.array([-1, 1], dtype=np.int64), size=cfg.c_out)
    return params


def check_inputs(cfg, x):
    """Validate an input array (H, W, C_in) or (N, H, W, C_in) of bits; return (N, H, W, C_in)."""
    x = np.asarray(x)
    if x.shape == cfg.input_shape():
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != cfg.input_shape() or x.shape[0] < 1:
        raise QhwInputError(
            f"inputs: shape must be {cfg.input_shape()} or (N, {', '.join(map(str, cfg.input_shape()))}), "
            f"got {x.shape}")
    return _check_binary("inputs", x)


def random_inputs(cfg, rng, frames=1):
    return rng.integers(0, 2, size=cfg.input_shape(frames), dtype=np.uint8)


# Hardware formats --------------------------------------------------------------------------------

def window_weights(cfg, params):
    """Weights as (C_out, K) bits in the unit's window order k = (ky*kw + kx)*C_in + ci."""
    return window_order(cfg, np.asarray(params["weights"], dtype=np.uint8))


def popcount_thresholds(cfg, params):
    """Rewrite dot-product thresholds onto the popcount P.

    Returns (T, ge) with T in [0, K+1] and ge in {0, 1}: the output bit is ``(P >= T) == ge``.
    d >= t  <=>  P >= ceil((t + K)/2);   d <= t  <=>  P < floor((t + K)/2) + 1.
    """
    k = cfg.k
    t = np.clip(np.asarray(params["thresholds"], dtype=np.int64), -k - 1, k + 1)
    d = np.asarray(params["directions"], dtype=np.int64)
    ge = (d > 0).astype(np.int64)
    tp = np.where(ge == 1, -((-(t + k)) // 2), (t + k) // 2 + 1)
    return np.clip(tp, 0, k + 1), ge


def weight_memory(cfg, params):
    """Contents of the weight memory: depth (C_out/PE)*(K/SIMD), PE*SIMD bits per word.

    Word ``nf*SF + sf`` holds, at bit ``p*SIMD + s``, the weight of output channel ``nf*PE + p``
    for window position ``sf*SIMD + s``.
    """
    w = window_weights(cfg, params).reshape(cfg.neuron_fold, cfg.pe, cfg.synapse_fold, cfg.simd)
    words = []
    for nf in range(cfg.neuron_fold):
        for sf in range(cfg.synapse_fold):
            words.append(_pack_bits(w[nf, :, sf, :].reshape(-1)))
    return words


def load_words(cfg, params):
    """The weight-load stream of ``weights = 'port'``: every weight word, then (threshold
    output) every threshold word, in memory order."""
    words = weight_memory(cfg, params)
    if cfg.output == "threshold":
        words += threshold_memory(cfg, params)
    return words


def threshold_memory(cfg, params):
    """Contents of the threshold memory: depth C_out/PE; per PE lane T (threshold_bits) then ge."""
    tp, ge = popcount_thresholds(cfg, params)
    lane_bits = cfg.threshold_bits + 1
    words = []
    for nf in range(cfg.neuron_fold):
        word = 0
        for p in range(cfg.pe):
            c = nf * cfg.pe + p
            word |= (int(tp[c]) | int(ge[c]) << cfg.threshold_bits) << (p * lane_bits)
        words.append(word)
    return words


def _pack_bits(bits):
    return int(sum(int(b) << i for i, b in enumerate(bits)))


def pack_inputs(cfg, x):
    """Input stream words: one per pixel, row-major; bit c of a word is channel c."""
    x = check_inputs(cfg, x)
    weights = 1 << np.arange(cfg.c_in, dtype=object)
    return [int(v) for v in (x.reshape(-1, cfg.c_in).astype(object) * weights).sum(axis=1)]


def unpack_outputs(cfg, words, frames):
    """Output stream words (one per output pixel, C_out fields) back into an array."""
    expected = frames * cfg.out_height * cfg.out_width
    if len(words) != expected:
        raise ValueError(f"output stream: expected {expected} words for {frames} frame(s), "
                         f"got {len(words)}")
    n = cfg.out_element_bits
    mask = (1 << n) - 1
    fields = np.array([[(w >> (c * n)) & mask for c in range(cfg.c_out)] for w in words],
                      dtype=np.int64).reshape(cfg.output_shape(frames))
    if cfg.output == "popcount":
        fields = np.where(fields >= 1 << (n - 1), fields - (1 << n), fields).astype(np.int32)
        return fields
    return fields.astype(np.uint8)


# Reference ---------------------------------------------------------------------------------------

def windows(cfg, x):
    """Sliding windows as (N, H_out, W_out, K) bits in window order, padding applied."""
    return sliding_windows(cfg, x, cfg.pad_bit)


def popcounts(cfg, params, x):
    """P = popcount(XNOR(window, weights)) as (N, H_out, W_out, C_out) int64."""
    win = windows(cfg, x).astype(np.int64)
    w = window_weights(cfg, params).astype(np.int64)
    # XNOR count = matches of ones + matches of zeros.
    return win @ w.T + (1 - win) @ (1 - w).T


def reference(cfg, params, x):
    """Bit-exact output of the unit for inputs (H, W, C_in) or (N, H, W, C_in).

    Returns int32 dot products (popcount mode) or uint8 bits (threshold mode) shaped
    (N, H_out, W_out, C_out).
    """
    x = check_inputs(cfg, x)
    params = check_params(cfg, params)
    p = popcounts(cfg, params, x)
    if cfg.output == "popcount":
        return (2 * p - cfg.k).astype(np.int32)
    tp, ge = popcount_thresholds(cfg, params)
    return ((p >= tp) == (ge == 1)).astype(np.uint8)
