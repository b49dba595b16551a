"""Pipelined adder tree over signed terms (the masked adder tree of ``bamconv``, the MAC's sum)."""

from amaranth import Signal, signed

__all__ = ["adder_tree"]


def adder_tree(m, terms, name):
    """Sum ``terms`` (signed values) in a binary tree with a register after every level.

    Each level adds pairs and widens by one bit, so no level can overflow. Returns
    ``(sum, latency)``: the registered sum and its latency in cycles (0 for a single term, which
    is returned as it is).
    """
    level = 0
    while len(terms) > 1:
        width = max(len(t) for t in terms) + 1
        nxt = []
        for i in range(0, len(terms), 2):
            r = Signal(signed(width), name=f"{name}_l{level}_{i // 2}", reset_less=True)
            m.d.sync += r.eq(terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i])
            nxt.append(r)
        terms = nxt
        level += 1
    return terms[0], level
