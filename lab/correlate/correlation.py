"""A run's events correlated: connections paired, clocks aligned, sends matched, latencies.

The one entry point of correlation, used by `lab run` and `lab report`:

    events ─ pair (pairing.py) ─ flows (messages.py, streams.py)
           ─ align clocks (sync/) ─ latencies, on the reference node's clock

Every output (connections.json, timeline.txt, trace.json, report.html)
is drawn from a `Correlation`.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import groupby
from operator import attrgetter

from lab.correlate.messages import Arrow, Flow, Link, flows, sync_messages
from lab.correlate.pairing import Endpoint, Pairing, pair
from lab.correlate.sync import ClockFit, Quality, align
from lab.correlate.sync.fit import identity
from lab.correlate.sync.host import RoundTrip, RoundTrips, host_messages, through_host
from lab.events import Event

_Clocks = Mapping[str, Callable[[int], int]]  # node → its timestamps on the reference clock
_NODE, _TS = attrgetter("node"), attrgetter("ts")


@dataclass(frozen=True)
class Latencies:
    """One connection's latencies in ns on the reference clock (None: not seen)."""

    connect_to_accept: int | None
    send_to_receive: list[int]  # each send that was received, to its last byte's receive
    # Each way, "client→server" (by roles; by nodes when alike), from the first send to
    # the last receive.
    first_to_last_byte: dict[str, int]
    # The same sends by direction, named alike: a request and its reply take unlike
    # times (one may wait for an accept()).
    send_to_receive_by_direction: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """As connections.json and report.html give it."""
        return {"connect_to_accept": self.connect_to_accept,
                "send_to_receive": self.send_to_receive,
                "send_to_receive_by_direction": self.send_to_receive_by_direction,
                "first_to_last_byte": self.first_to_last_byte}


UNMEASURED = Latencies(None, [], {})  # the ends' clocks are not aligned


@dataclass(frozen=True)
class Summary:
    """What a person or a script wants to know of a correlation first: summary.json,
    the terminal and the head of every report say it."""

    paired: int
    unpaired: int
    inversions: int  # messages still received before they were sent, once aligned
    clocks: dict[str, str]  # node → its clock fit in brief (the reports explain it whole)
    latency_ns: dict[str, dict[str, int] | None]  # run_statistics
    unattributed: dict[str, int]  # why events fit no connection → how many
    unaligned: list[str] = field(default_factory=list)  # nodes whose clocks nothing aligns
    # How far a latency between two nodes may be off, by the offsets the clock fits
    # allow (None: one node, or a fit whose offset is not bounded on both sides).
    clock_error_ns: int | None = None


@dataclass
class Correlation:
    events: list[Event]  # sorted by node, then time
    pairing: Pairing
    flows: list[Flow]  # one per connection, in the same order
    reference: str
    fits: dict[str, ClockFit]  # every node but the reference (no-data when nothing aligns it)
    latencies: list[Latencies] = field(default_factory=list)  # one per flow
    inversions: list[Arrow] = field(default_factory=list)  # still backwards once aligned

    @cached_property
    def nodes(self) -> list[str]:
        """Every node with events, the reference first."""
        return sorted(self.pairing.nodes, key=lambda n: (n != self.reference, n))

    @cached_property
    def times(self) -> list[int]:
        """Each event's time on the reference clock, in the order of `events`."""
        times: list[int] = []
        for node, run in groupby(self.events, _NODE):
            times += map(self.clock(node), map(_TS, run))
        return times

    @cached_property
    def origin(self) -> int:
        """The run's first event, on the reference clock: where reports count from."""
        return min(self.times, default=0)

    @cached_property
    def summary(self) -> Summary:
        connections = self.pairing.connections
        paired = sum(c.paired for c in connections)
        reasons = Counter(u.reason for u in self.pairing.unattributed)
        return Summary(paired, len(connections) - paired, len(self.inversions),
                       {node: fit.brief() for node, fit in sorted(self.fits.items())},
                       dict(run_statistics(self.latencies)), dict(sorted(reasons.items())),
                       sorted(n for n, fit in self.fits.items()
                              if fit.quality is Quality.NO_DATA),
                       _clock_error(self.fits.values()))

    def clock(self, node: str) -> Callable[[int], int]:
        """`node`'s timestamps onto the reference clock: `result.clock(node)(ts)`."""
        fit = self.fits.get(node)
        return _unchanged if fit is None else fit.to_reference


def _unchanged(ts: int) -> int:
    return ts


def _clock_error(fits: Iterable[ClockFit]) -> int | None:
    """How far a latency between two nodes may be off: the half-ranges of the offsets
    their fits allow, added up for the two widest (between two nodes that are not the
    reference, both are off). None when a fit's offset is not bounded on both sides
    (one-sided, contradictory): nothing can be promised then."""
    # Not measured at all (no-data): its latencies are not given.
    halves = [_half_range(fit) for fit in fits if fit.quality is not Quality.NO_DATA]
    if not halves or math.inf in halves:
        return None
    return round(sum(sorted(halves)[-2:]))


def correlate(events: Iterable[Event], reference: str | None = None,
              round_trips: Mapping[str, Sequence[RoundTrip]] = {}) -> Correlation:
    """Correlate `events` on `reference`'s clock (see `choose_reference`). The controller's
    `round_trips` to each node align the clocks of nodes no TCP traffic links."""
    with no_gc_pauses():
        return _correlate(events, reference, round_trips)


def _correlate(events: Iterable[Event], reference: str | None,
               round_trips: RoundTrips) -> Correlation:
    pairing = pair(events)
    ordered = pairing.events
    found = flows(pairing.connections)
    nodes = pairing.nodes
    reference = choose_reference(nodes, reference)
    tcp = sync_messages(found)
    fits = {node: fit for node, fit in align(reference, tcp).items()
            if node in nodes and node != reference}
    # The controller's round trips only align the nodes no TCP traffic reaches: a fit
    # through the host knows nothing of the TCP messages, and could put a receive
    # before its send.
    unreached = {n for n in nodes if n != reference and _unaligned(fits.get(n))}
    trips = through_host(reference, unreached, tcp, round_trips) if unreached else {}
    if trips:
        via_host = align(reference, {**tcp, **host_messages(trips)})
        fits |= {n: fit for n, fit in via_host.items()
                 if n in unreached and not _unaligned(fit)}
    for node in nodes:
        if node != reference and node not in fits:
            fits[node] = identity(Quality.NO_DATA, reference, node,
                                  note="no TCP traffic with another node")
    result = Correlation(ordered, pairing, found, reference, fits)
    clocks = {node: result.clock(node) for node in nodes}
    # Pairing could only order the connections by each node's own clock.
    found.sort(key=lambda flow: min(clocks[end.node](end.first) for end in flow.connection.ends))
    pairing.connections[:] = [flow.connection for flow in found]
    # Between nodes whose clocks could not be aligned a latency would only show the
    # clocks' difference: not measured.
    aligned = {n for n in nodes if n not in fits or fits[n].quality is not Quality.NO_DATA}
    result.latencies = [_latencies(flow, clocks) if _measurable(flow, aligned) else UNMEASURED
                        for flow in found]
    # TCP messages bound the clocks: none of them may arrive before it left. Datagrams
    # do not (nor is their pairing certain): one is an inversion only when no offset
    # the fits allow would put its arrival after its departure.
    slack = {node: _half_range(fits.get(node)) for node in nodes}
    result.inversions = [
        a for flow in found if _measurable(flow, aligned) for a in flow.arrows
        if _late(a, clocks) < (0 if flow.connection.proto == "tcp" else
                               -(slack[a.sender] + slack[a.receiver]))]
    return result


def _half_range(fit: ClockFit | None) -> float:
    """Half the range of offsets `fit` allows (0 for the reference, inf when open)."""
    if fit is None:
        return 0
    if fit.ref_offset_min is None or fit.ref_offset_max is None:
        return math.inf
    return float(fit.ref_offset_max - fit.ref_offset_min) / 2


def choose_reference(nodes: Sequence[str], preferred: str | None) -> str:
    """The node whose clock a run is shown on: `preferred` (the topology's first node)
    when it has events, else the first node by name that has some."""
    if preferred in nodes or not nodes:
        return preferred or ""
    return min(nodes)


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Correlation and its reports allocate millions of objects that form no
    reference cycle; the cycle collector would only walk them again and again (a
    third to a half of the time on a million events). It runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _unaligned(fit: ClockFit | None) -> bool:
    return fit is None or fit.quality is Quality.NO_DATA


def _measurable(flow: Flow, aligned: set[str]) -> bool:
    ends = {end.node for end in flow.connection.ends}
    return len(ends) == 1 or ends <= aligned


def _late(a: Arrow, clocks: _Clocks) -> int:
    return clocks[a.receiver](a.received) - clocks[a.sender](a.sent)


def _latencies(flow: Flow, clocks: _Clocks) -> Latencies:
    handshake = next((a for a in flow.arrows if a.kind == Link.HANDSHAKE), None)
    per_send: list[int] = []
    by_direction: dict[str, list[int]] = {}
    first_to_last: dict[str, int] = {}
    for sender, receiver, moved in flow.directions():
        sent, received = clocks[sender.node], clocks[receiver.node]
        pairs = [(sent(t.send.start), received(t.delivered.end)) for t in moved
                 if t.send.start is not None and t.delivered is not None]
        per_send += [b - a for a, b in pairs]
        if pairs:
            direction = _direction(sender, receiver)
            by_direction[direction] = [b - a for a, b in pairs]
            first_to_last[direction] = max(b for _, b in pairs) - pairs[0][0]
    return Latencies(None if handshake is None else _late(handshake, clocks),
                     per_send, first_to_last, by_direction)


def _direction(sender: Endpoint, receiver: Endpoint) -> str:
    """"client→server": by roles, which runs of many connections share; by nodes when
    the two ends have one role (peers)."""
    if sender.role != receiver.role:
        return f"{sender.role}→{receiver.role}"
    return f"{sender.node}→{receiver.node}"


def summarise(values: Sequence[int]) -> dict[str, int] | None:
    """count, min, median, p90 and max of latencies (nearest rank), or None."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    return {"count": n, "min": ordered[0], "median": ordered[(n - 1) // 2],
            "p90": ordered[max(0, -(-9 * n // 10) - 1)], "max": ordered[-1]}


def run_statistics(latencies: Sequence[Latencies]) -> Mapping[str, dict[str, int] | None]:
    """The run's latencies: connect_to_accept, send_to_receive (each way, then
    "send_to_receive client→server" and so on, one by direction) and first_to_last_byte."""
    directions: dict[str, list[int]] = {}
    for x in latencies:
        for direction, values in x.send_to_receive_by_direction.items():
            directions.setdefault(direction, []).extend(values)
    return {
        "connect_to_accept": summarise([x.connect_to_accept for x in latencies
                                         if x.connect_to_accept is not None]),
        "send_to_receive": summarise([v for x in latencies for v in x.send_to_receive]),
        **{f"send_to_receive {direction}": summarise(values)
           for direction, values in sorted(directions.items())},
        "first_to_last_byte": summarise([v for x in latencies
                                          for v in x.first_to_last_byte.values()]),
    }
