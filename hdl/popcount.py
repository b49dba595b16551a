"""Pipelined popcount as a compressor tree of full adders or 6:3 counters.

The bits to count are arranged in columns by weight (all weight 1 at first). Each level of the
tree replaces groups of bits in a column by their count: a full adder (3:2) turns three bits of
weight 2^i into one of weight 2^i and one of weight 2^(i+1); a 6:3 generalized parallel counter
turns six into three bits of weights 2^i, 2^(i+1), 2^(i+2). Every full adder removes exactly one
bit, so no tree of full adders beats N - floor(log2 N) - 1 of them (a full adder removes one bit of the count).
A register follows every level; once every column holds at most two bits, one short
carry-propagate adder gives the count.

Why 6:3 counters: on LUT6 FPGAs each output bit of a 6:3 counter is one LUT6, so a counter removes
three bits with three LUTs, where three full adders on plain bits need six LUT3s. The first level
is made of full adders anyway when its inputs are XNORs of bit pairs: a full adder of three XNORs
has six inputs, one LUT6 per output bit.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PopCount", "tree_levels", "full_adder_bound"]


def full_adder_bound(n):
    """Full adders of an optimal compressor tree for an n-bit popcount: n - floor(log2 n) - 1."""
    return n - (n.bit_length() - 1) - 1 if n >= 1 else 0


def _reduce(columns, counter, first, fa, gpc):
    """One tree level: groups of each column go through counters; the rest passes through.

    ``columns`` maps weight index -> list of items; ``fa`` and ``gpc`` build cells from items and
    return their outputs (lists of items, lowest weight first). Generic over items, so that the
    same code plans the tree (items are None) and builds it (items are signals).
    """
    out = {}
    for col in sorted(columns):
        bits = list(columns[col])
        if counter == "gpc63" and not first:
            while len(bits) >= 6:
                for i, o in enumerate(gpc(bits[:6])):
                    out.setdefault(col + i, []).append(o)
                bits = bits[6:]
        while len(bits) >= 3:
            for i, o in enumerate(fa(bits[:3])):
                out.setdefault(col + i, []).append(o)
            bits = bits[3:]
        out.setdefault(col, []).extend(bits)
    return out


def _done(columns):
    return all(len(bits) <= 2 for bits in columns.values())


def tree_levels(n, counter="gpc63"):
    """Counter levels of the tree for an n-bit popcount (each level ends in a register)."""
    columns = {0: [None] * n}
    levels = 0
    while not _done(columns):
        columns = _reduce(columns, counter, levels == 0,
                          lambda b: [None, None], lambda b: [None, None, None])
        levels += 1
    return levels


class PopCount(wiring.Component):
    """Pipelined popcount of ``width`` bits.

    Parameters
    ----------
    width : int
        Number of bits to count.
    counter : 'fa' or 'gpc63'
        The tree's cell: full adders only, or full adders on the first level and 6:3 counters
        after it.

    Members
    -------
    bits : In(width)
        The bits, sampled every cycle (the pipeline never stalls; its users plan for the latency).
    count : Out(range(width + 1))
        The number of ones among ``bits`` from ``latency`` cycles earlier.

    Attributes
    ----------
    latency : int
        Register stages from ``bits`` to ``count``: one per counter level plus one after the final
        adder.
    """

    def __init__(self, width, counter="gpc63"):
        if width < 1:
            raise ValueError("width must be >= 1")
        if counter not in ("fa", "gpc63"):
            raise ValueError("counter must be 'fa' or 'gpc63'")
        self.width = width
        self.counter = counter
        self.levels = tree_levels(width, counter)
        self.latency = self.levels + 1
        super().__init__({"bits": In(width), "count": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        names = iter(range(1 << 30))

        def reg(value):
            r = Signal(len(value), name=f"pc_r{next(names)}", reset_less=True)
            m.d.sync += r.eq(value)
            return r

        def fa(b):
            a, c, d = b
            return [a ^ c ^ d, (a & c) | (a & d) | (c & d)]

        def gpc(b):
            # 6:3 counter from two full adders and a third on their carries; after flattening,
            # each output is a function of the six inputs alone, one LUT6 apiece.
            s0, c0 = fa(b[0:3])
            s1, c1 = fa(b[3:6])
            t = s0 & s1
            s2, c2 = fa([c0, c1, t])
            return [s0 ^ s1, s2, c2]

        columns = {0: [self.bits[i] for i in range(self.width)]}
        level = 0
        while not _done(columns):
            columns = _reduce(columns, self.counter, level == 0, fa, gpc)
            columns = {col: [reg(b) for b in bits] for col, bits in columns.items()}
            level += 1
        assert level == self.levels
        rows = [Cat(*[(bits[r] if r < len(bits) else Const(0, 1))
                      for _, bits in sorted(columns.items())]) for r in range(2)]
        # The columns run contiguously from weight 0, so each row is a plain binary number.
        assert sorted(columns) == list(range(len(columns)))
        m.d.sync += self.count.eq(rows[0] + rows[1])
        return m
