"""Every node's clock on the reference's: pairwise fits chained along a spanning tree."""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from fractions import Fraction

from lab.correlate.sync.fit import ClockFit, Message, Quality, identity, synchronise


def align(reference: str,
          messages: Mapping[tuple[str, str], Sequence[Message]]) -> dict[str, ClockFit]:
    """Fit every node's clock to `reference`'s.

    `messages[(src, dst)]` are the messages src sent to dst (sent on src's clock,
    received on dst's). Nodes that exchanged messages are linked; each node is
    reached along the path whose worst link is best (then the shortest), so one
    contradictory or one-sided pair is only used when nothing better reaches the
    node. A node no path reaches gets `Quality.NO_DATA` and the identity.
    """
    neighbours: dict[str, set[str]] = defaultdict(set)
    nodes = {reference}
    for (src, dst), sent in messages.items():
        if src == dst:
            raise ValueError(f"messages from {src!r} to itself cannot align clocks")
        nodes |= {src, dst}
        if sent:
            neighbours[src].add(dst)
            neighbours[dst].add(src)

    fits: dict[str, ClockFit] = {}
    links: dict[tuple[str, str], ClockFit] = {}
    order = itertools.count()  # tie-breaker: heap entries never compare names
    heap: list[tuple[int, int, int, str, str]] = [(0, 0, next(order), reference, reference)]
    while heap:
        worst, hops, _, node, parent = heapq.heappop(heap)
        if node in fits:
            continue
        fits[node] = (identity(Quality.REFERENCE, reference, reference) if node == parent
                      else compose(fits[parent], links[parent, node]))
        for peer in sorted(neighbours[node] - fits.keys()):
            link = links.get((node, peer))
            if link is None:
                link = links[node, peer] = synchronise(
                    messages.get((node, peer), ()), messages.get((peer, node), ()),
                    reference=node, other=peer)
            rank = max(worst, link.quality.rank)
            heapq.heappush(heap, (rank, hops + 1, next(order), peer, node))
    for node in sorted(nodes - fits.keys()):
        fits[node] = identity(Quality.NO_DATA, reference, node,
                              note="no chain of messages reaches the reference")
    return fits


def compose(base: ClockFit, link: ClockFit) -> ClockFit:
    """Chain `base` (P against R) and `link` (C against P) into C against R.

    The estimate composes exactly. The bounds are a box around every pair of
    feasible lines: C's offset at R's time τ0 is P's offset there plus C's offset
    against P at P's time τ0 + offset_P, which is C's bounded offset at `link`'s
    reference time moved by a bounded drift over a bounded interval.
    """
    if base.quality is Quality.REFERENCE:
        return link
    chain = (*(base.links or (base,)), *(link.links or (link,)))
    quality = max(base.quality, link.quality, key=lambda q: q.rank)
    drift: tuple[Fraction | None, Fraction | None] = (None, None)
    offset = drift
    base_drift = _interval(base.drift_min, base.drift_max)
    link_drift = _interval(link.drift_min, link.drift_max)
    base_off = _interval(base.ref_offset_min, base.ref_offset_max)
    link_off = _interval(link.ref_offset_min, link.ref_offset_max)
    if base_drift and link_drift and min(base_drift[0], link_drift[0]) > 0:
        drift = (base_drift[0] * link_drift[0], base_drift[1] * link_drift[1])
        if base_off and link_off:
            span = [base.ref_time + o - link.ref_time for o in base_off]
            spread = [(d - 1) * t for d in link_drift for t in span]
            offset = (base_off[0] + link_off[0] + min(spread),
                      base_off[1] + link_off[1] + max(spread))
    return ClockFit(quality, link.drift * base.drift, link.drift * base.offset + link.offset,
                    base.reference, link.other, ref_time=base.ref_time,
                    ref_offset_min=offset[0], ref_offset_max=offset[1],
                    drift_min=drift[0], drift_max=drift[1],
                    inverted=sum(fit.inverted for fit in chain), links=chain)


def _interval(lo: Fraction | None, hi: Fraction | None) -> tuple[Fraction, Fraction] | None:
    return None if lo is None or hi is None else (lo, hi)
