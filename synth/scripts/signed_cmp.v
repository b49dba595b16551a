// qhw: techmap rules applied before synth_ecp5 (ecp5.ys, ecp5_fmax.ys).
//
// Why: synth_ecp5 maps a comparison against a constant with `techmap -map +/cmp2lut.v
// -D LUT_WIDTH=4`, and in Yosys 0.58 cmp2lut builds the truth table of a *signed* $lt/$le/$gt/$ge
// as if both operands were unsigned (YosysHQ/yosys#6085, fixed upstream after 0.58). Nothing warns;
// the wrong LUT is then constant-folded by ordinary, correct passes. A saturation such as
// `x > 7 ? 7 : x < -8 ? -8 : x` on a 4-bit signed x becomes a constant, and all logic feeding only
// it disappears from the resource counts (the GRU's all-4-bit datapath lost ~95% of its cells).
// synth_xilinx is not affected: its cmp2lcu rule takes these cells first and handles the sign.
//
// The rule: a signed comparison with a constant operand becomes the unsigned comparison of the
// operands sign-extended to a common width W with bit W-1 inverted (two's complement to offset
// binary preserves order). cmp2lut handles unsigned comparisons correctly, and the inversion of a
// constant folds away. Comparisons of two variables, or unsigned ones, are left as they are.

(* techmap_celltype = "$lt $le $gt $ge" *)
module _qhw_signed_const_cmp (A, B, Y);

parameter A_SIGNED = 0;
parameter B_SIGNED = 0;
parameter A_WIDTH = 0;
parameter B_WIDTH = 0;
parameter Y_WIDTH = 0;

(* force_downto *)
input [A_WIDTH-1:0] A;
(* force_downto *)
input [B_WIDTH-1:0] B;
(* force_downto *)
output [Y_WIDTH-1:0] Y;

parameter _TECHMAP_CELLTYPE_ = "";
parameter _TECHMAP_CONSTMSK_A_ = 0;
parameter _TECHMAP_CONSTMSK_B_ = 0;

generate
    if (!(A_SIGNED && B_SIGNED) || !(&_TECHMAP_CONSTMSK_A_ || &_TECHMAP_CONSTMSK_B_))
        wire _TECHMAP_FAIL_ = 1;
    else begin
        localparam W = A_WIDTH > B_WIDTH ? A_WIDTH : B_WIDTH;
        localparam [W-1:0] MSB = {1'b1, {(W-1){1'b0}}};
        (* force_downto *)
        wire [W-1:0] AA = {{(W-A_WIDTH){A[A_WIDTH-1]}}, A} ^ MSB;
        (* force_downto *)
        wire [W-1:0] BB = {{(W-B_WIDTH){B[B_WIDTH-1]}}, B} ^ MSB;
        if (_TECHMAP_CELLTYPE_ == "$lt")
            assign Y = AA < BB;
        else if (_TECHMAP_CELLTYPE_ == "$le")
            assign Y = AA <= BB;
        else if (_TECHMAP_CELLTYPE_ == "$gt")
            assign Y = AA > BB;
        else
            assign Y = AA >= BB;
    end
endgenerate

endmodule
