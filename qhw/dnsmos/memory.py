"""Memory bits of DNSMOS P.808 in three number formats, counted two ways.

What is counted (docs/dnsmos.md):

``weights``
    Every parameter at its stored width: conv and dense weights (8 bits, or 32 for fp32), biases
    and thresholds at the accumulator width of the qhw unit (32 bits for fp32).
``line_buffers``
    Streaming hardware (qhw, FINN): what a sliding-window generator holds, (k_h - 1) rows of the
    input map plus k_w pixels, for every 3x3 convolution and every 2x2 pool, times the element
    width (1 bit for binary maps, 8 for 8-bit activations, 32 for fp32).
``fifos``
    The inter-layer FIFOs of the generated network (depth x word width, from the manifest); the
    same depths scaled to the element width for the other formats.
``frame_buffer``
    The other way, as a layer-by-layer (non-streaming) accelerator or a CPU runs the model: the
    largest input + output feature-map pair of any layer held whole (in fp32, pool1's
    32 x 900 x 120 input and 32 x 450 x 60 output), in place of the line buffers and FIFOs.

The binary-activation paper's "25x less memory at inference" (arXiv 2407.04578) compares fp32
weights and activations with 8-bit weights and binary activations; :func:`memory_table` gives
both counts so the claim can be checked against each.
"""

from __future__ import annotations

__all__ = ["memory_table"]


def memory_table(cfg, params, fifos):
    """{scheme: {category: bits}} for scheme in binary (the qhw network as generated), int8
    (the same network with 8-bit activations) and fp32 (the float teacher).

    Parameters
    ----------
    cfg : NetworkConfig
        The binary student's network (full 900-frame input).
    params : dict
        Its weight file (``<layer>.<array>``).
    fifos : list of dict
        The manifest's ``fifos`` (``depth``, ``width`` in bits of the binary network's words).
    """
    from ..golden.bamconv import acc_bits
    out = {}
    for scheme in ("binary", "int8", "fp32"):
        weights = line = 0
        largest = 0
        for layer in cfg.resolved:
            h, w, c = layer.in_shape
            in_bits = layer.in_format.bits if scheme == "binary" else (
                8 if scheme == "int8" else 32)
            oh, ow, oc = layer.out_shape
            out_bits = layer.out_format.bits if scheme == "binary" else (8 if scheme == "int8"
                                                                         else 32)
            if layer.unit in ("binconv", "bamconv", "macconv"):
                wb = 32 if scheme == "fp32" else 8
                n_w = params[f"{layer.name}.weights"].size
                # biases and thresholds: at the unit's accumulator width in the binary
                # network, 32-bit biases (no thresholds) in the int8 and fp32 ones
                extra_bits = (acc_bits(layer.config) * sum(
                    params[f"{layer.name}.{k}"].size for k in ("bias", "thresholds")
                    if f"{layer.name}.{k}" in params)
                    if scheme == "binary" else 32 * layer.config.c_out)
                weights += n_w * wb + extra_bits
            if layer.kind in ("macconv", "bamconv", "binconv", "maxpool"):
                kh, kw = layer.config.kernel
                line += ((kh - 1) * w + kw) * c * in_bits
            largest = max(largest, h * w * c * in_bits + oh * ow * oc * out_bits)
        fifo_bits = 0
        for f in fifos:
            width = f["width"]
            fifo_bits += f["depth"] * (width if scheme == "binary" else width * (
                8 if scheme == "int8" else 32))
        out[scheme] = {"weights": int(weights), "line_buffers": int(line),
                       "fifos": int(fifo_bits), "streaming_total": int(weights + line + fifo_bits),
                       "frame_buffer": int(largest),
                       "frame_buffered_total": int(weights + largest)}
    return out
