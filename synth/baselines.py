"""Yosys-only baselines for the benchmarks: plain behavioural Verilog, mapped by Yosys alone.

A qhw unit's figures mean something only next to what the toolchain does by itself with the
obvious description. An earlier measurement quotes Yosys 0.23 on "a plain XNOR + sum-of-bits
description" (``synth_xilinx``: N=64 -> 167 LUT + 2 CARRY4, N=256 -> 698 LUT + 3 CARRY4);
:func:`xnor_popcount_baseline_verilog` is that description, so the same measurement can be
repeated with the pinned Yosys through :func:`qhw.synth.flows.synthesize`.
"""

from qhw.errors import QhwInputError

__all__ = ["xnor_popcount_baseline_verilog", "MAX_BASELINE_K"]

#: Largest lane count accepted; far above any unit qhw builds, small enough to keep Yosys quick.
MAX_BASELINE_K = 65536


def xnor_popcount_baseline_verilog(k):
    """Behavioural XNOR-popcount of two k-bit vectors, between input and output registers.

    ``count <= sum over i of ~(a[i] ^ b[i])``, written as a plain ``for`` loop of additions, with
    no hand-built adder tree: whatever structure appears is Yosys's own. Inputs ``a``, ``b`` are
    registered and so is ``count``, so the logic between them is purely combinational and the
    design has register-to-register paths for timing. There is no reset (none is needed for the
    cost figures, and a reset would add muxes or reset logic on every register).

    Parameters
    ----------
    k : int
        Number of lanes, 1 <= k <= MAX_BASELINE_K.

    Returns
    -------
    (str, str)
        Verilog text and its top module name, ``xnor_popcount_baseline_k{k}``. Ports: ``clk``,
        ``a[k-1:0]``, ``b[k-1:0]``, ``count[W-1:0]`` with W = floor(log2 k) + 1.

    Raises
    ------
    QhwInputError
        ``k`` is not an integer in range.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_BASELINE_K:
        raise QhwInputError(f"k: must be an integer from 1 to {MAX_BASELINE_K}, got {k!r}")
    width = k.bit_length()  # floor(log2 k) + 1 bits hold 0..k
    top = f"xnor_popcount_baseline_k{k}"
    text = f"""\
// Yosys-only baseline (qhw.synth.baselines): plain XNOR + sum of bits, k = {k}.
module {top} (
  input wire clk,
  input wire [{k - 1}:0] a,
  input wire [{k - 1}:0] b,
  output reg [{width - 1}:0] count
);
  reg [{k - 1}:0] a_q;
  reg [{k - 1}:0] b_q;
  wire [{k - 1}:0] agree = ~(a_q ^ b_q);
  reg [{width - 1}:0] sum;
  integer i;
  always @* begin
    sum = {width}'d0;
    for (i = 0; i < {k}; i = i + 1)
      sum = sum + agree[i];
  end
  always @(posedge clk) begin
    a_q <= a;
    b_q <= b;
    count <= sum;
  end
endmodule
"""
    return text, top
