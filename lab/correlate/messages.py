"""Happened-before arrows between the two ends of each connection.

An `Arrow` leaves one node at `sent` (its clock) and arrives at another at
`received` (the other's clock). Three kinds, all certain for TCP:

- data: a receive returned bytes of a send, so it ended after that send
  began (streams.py matches each send to its receives);
- handshake: accept() returned the connection after the client's connect()
  began (its SYN); and, closer to the wire, the server's kernel moved the
  connection from SYN_RECV to ESTABLISHED on the handshake's last ACK, which
  the client's kernel sent once it had itself reached ESTABLISHED; when the
  SYN-ACK is traced (`tcp_v4_send_synack`), it left after the client's move
  to SYN_SENT (the SYN's) and before the client's move to ESTABLISHED;
- close: the FIN of one end's close() or shutdown() reached the other end
  (`tcp_fin` there, the state change it makes, or a read that returned 0)
  after it left, that is after the closing end's move to FIN_WAIT1 or
  LAST_ACK, or at least after the call began; and the ACK of that FIN, which
  the other end sends once it has taken the FIN in (its move to CLOSE_WAIT or
  CLOSING), moves the closing end from FIN_WAIT1 to FIN_WAIT2 (or, when both
  ends closed at once, out of CLOSING); the ACK of the second FIN, sent as the
  first closer's `tcp_fin` takes it in, moves the second out of LAST_ACK.

The kernel-level arrows (state changes, `tcp_fin`) bound the clocks far more
tightly than system calls do, which also wait for the scheduler.

TCP arrows are the constraints of clock alignment (`sync_messages`).
Datagrams are matched by size and order, which a lost datagram can fool, so
UDP arrows are drawn but never constrain the clocks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter, indexOf

import msgspec

from lab.correlate.pairing import Connection, Endpoint
from lab.correlate.streams import (
    RECEIVES,
    SENDS,
    Call,
    Transfer,
    datagram_transfers,
    stream_transfers,
    syscalls,
)
from lab.correlate.sync import Message
from lab.events import Event

CONNECTS = frozenset({"connect"})
ACCEPTS = frozenset({"accept", "accept4"})
CLOSES = frozenset({"close", "shutdown"})
RECEIVE_PATH = frozenset({"tcp_v4_do_rcv", "tcp_v6_do_rcv", "tcp_rcv_state_process"})
# The state changes only `tcp_fin` makes, as it takes a FIN in: they stand in for a
# `tcp_fin` probe hit that was missed. (It also takes FIN_WAIT2 to CLOSE, but so does
# a close() in FIN_WAIT2, which 6.1 runs after the system call has returned.)
FIN_ARRIVALS = frozenset({("TCP_ESTABLISHED", "TCP_CLOSE_WAIT"),
                          ("TCP_FIN_WAIT1", "TCP_CLOSING")})
_NAME = attrgetter("name")


class Link(StrEnum):
    DATA = "data"
    HANDSHAKE = "handshake"
    CLOSE = "close"


class Arrow(msgspec.Struct, frozen=True, gc=False):
    kind: Link
    sender: str  # node
    receiver: str
    sent: int  # on the sender's clock
    received: int  # on the receiver's clock
    size: int = 0  # bytes of the send it belongs to (data)
    sender_tid: int = 0  # the threads that sent and received it
    receiver_tid: int = 0
    label: str = ""  # for people: "connect → accept", "ACK", "FIN", "ACK of FIN", "5 bytes"


@dataclass
class Flow:
    """One connection's traffic: each end's calls, each direction's transfers, the arrows."""

    connection: Connection
    tracers: list[str]  # per end, in the order of connection.ends: whose system calls count
    calls: list[list[Call]]  # per end: that tracer's system calls
    transfers: list[list[Transfer]]  # [0]: ends[0] → ends[1], [1]: the other way
    arrows: list[Arrow]

    def directions(self) -> Iterator[tuple[Endpoint, Endpoint, list[Transfer]]]:
        """Each way's transfers, with the end that sent them and the end that took them
        (none for a one-sided connection)."""
        ends = self.connection.ends
        yield from ((sender, receiver, moved) for (sender, receiver), moved in zip(
            ((ends[0], ends[-1]), (ends[-1], ends[0])), self.transfers, strict=False))


def flows(connections: Iterable[Connection]) -> list[Flow]:
    return [_flow(c) for c in connections]


def sync_messages(all_flows: Iterable[Flow]) -> dict[tuple[str, str], list[Message]]:
    """The arrows that constrain clocks: TCP only, by (sender, receiver) node; none
    within a node (over loopback), whose clock is one."""
    found: dict[tuple[str, str], list[Message]] = defaultdict(list)
    for flow in all_flows:
        if flow.connection.proto == "tcp":
            for a in flow.arrows:
                if a.sender != a.receiver:
                    found[(a.sender, a.receiver)].append(Message(a.sent, a.received))
    return dict(found)


def _flow(connection: Connection) -> Flow:
    chosen = [syscalls(end.events) for end in connection.ends]
    tracers, calls = [tracer for tracer, _ in chosen], [calls for _, calls in chosen]
    if not connection.paired:
        return Flow(connection, tracers, calls, [], [])
    match = stream_transfers if connection.proto == "tcp" else datagram_transfers
    a, b = connection.ends
    flow = Flow(connection, tracers, calls,
                [match(_moving(calls[0], SENDS), _moving(calls[1], RECEIVES)),
                 match(_moving(calls[1], SENDS), _moving(calls[0], RECEIVES))], [])
    flow.arrows = [Arrow(Link.DATA, sender.node, receiver.node, t.send.start, r.end, t.size,
                         t.send.tid, r.tid)
                   for sender, receiver, moved in flow.directions()
                   for t in moved if t.send.start is not None for r in t.receives]
    if connection.proto == "tcp":
        flow.arrows += [
            *_handshake(a, calls[0], b, calls[1]), *_handshake(b, calls[1], a, calls[0]),
            *_close(a, calls[0], b, calls[1]), *_close(b, calls[1], a, calls[0])]
    return flow


def _moving(calls: Sequence[Call], names: frozenset[str]) -> list[Call]:
    """The calls of `names` that take bytes from the stream (a peek leaves them)."""
    return [c for c in calls if c.name in names and not c.peek]


def _handshake(client: Endpoint, client_calls: list[Call], server: Endpoint,
               server_calls: list[Call]) -> list[Arrow]:
    connect = next((c for c in client_calls if c.name in CONNECTS and c.start is not None), None)
    accepted = next((c for c in server_calls if c.name in ACCEPTS), None)
    if connect is None or connect.start is None or accepted is None:
        return []
    # Not the SYN's flight: when it reached the server is not traced by default (the
    # listening socket's tcp_conn_request), only that accept() returned after it left.
    arrows = [Arrow(Link.HANDSHAKE, client.node, server.node, connect.start, accepted.end,
                    sender_tid=connect.tid, receiver_tid=accepted.tid,
                    label="connect → accept")]
    acked = _state(client, "TCP_SYN_SENT", {"TCP_ESTABLISHED"})
    # With the SYN-ACK traced (a function added), the SYN's flight is bounded too: the
    # client's move to SYN_SENT comes before the SYN leaves, the SYN-ACK answers it.
    synack = _first(server, "tcp_v4_send_synack") or _first(server, "tcp_v6_send_synack")
    syn_sent = _state(client, None, {"TCP_SYN_SENT"})
    if synack is not None and syn_sent is not None:
        arrows.append(Arrow(Link.HANDSHAKE, client.node, server.node, syn_sent.ts, synack[0],
                            sender_tid=syn_sent.tid, receiver_tid=synack[1], label="SYN"))
    if synack is not None and acked is not None:
        # It arrives where the client's receive path first runs after its SYN left.
        after = acked.ts if syn_sent is None else syn_sent.ts
        taken = next((e for e in client.events
                      if e.name in RECEIVE_PATH and after <= e.ts <= acked.ts), acked)
        arrows.append(Arrow(Link.HANDSHAKE, server.node, client.node, synack[0], taken.ts,
                            sender_tid=synack[1], receiver_tid=taken.tid, label="SYN-ACK"))
    established = _state(server, "TCP_SYN_RECV", {"TCP_ESTABLISHED"})
    if acked is not None and established is not None:
        arrows.append(Arrow(Link.HANDSHAKE, client.node, server.node, acked.ts,
                            established.ts, sender_tid=acked.tid,
                            receiver_tid=established.tid, label="ACK"))
    return arrows


def _state(end: Endpoint, old: str | None, new: set[str],
           after: int | None = None) -> Event | None:
    """The end's first state change from `old` (any if None) to one of `new`."""
    for was, now, e in end.changes:
        if now in new and (old is None or was == old) and (after is None or e.ts >= after):
            return e
    return None


def _first(end: Endpoint, name: str) -> tuple[int, int] | None:
    """(time, thread) of the end's first event called `name`."""
    try:
        e = end.events[indexOf(map(_NAME, end.events), name)]
    except ValueError:
        return None
    return e.ts, e.tid


def _fin_arrival(end: Endpoint) -> tuple[int, int] | None:
    """(time, thread) of the state change the peer's FIN made on `end`, if it made one."""
    for was, now, e in end.changes:
        if (was, now) in FIN_ARRIVALS:
            return e.ts, e.tid
    return None


def _close(closer: Endpoint, closer_calls: list[Call], peer: Endpoint,
           peer_calls: list[Call]) -> list[Arrow]:
    closed = next((c for c in closer_calls if c.name in CLOSES and c.start is not None), None)
    if closed is None or closed.start is None:
        return []
    # The FIN arrives when the peer's kernel handles it (`tcp_fin` there, or the state
    # change it makes), or at the latest when a read there returns the end of file.
    fin = _first(peer, "tcp_fin")
    changed = _fin_arrival(peer)
    eof = next(((c.end, c.tid) for c in peer_calls if c.name in RECEIVES and c.ret == 0), None)
    if fin is None and changed is None and eof is None:
        return []
    arrived, tid = min(t for t in (fin, changed, eof) if t is not None)
    # The FIN leaves once the closing end has changed state, which comes after the call.
    change = _state(closer, None, {"TCP_FIN_WAIT1", "TCP_LAST_ACK"}, after=closed.start)
    sent, sender = (closed.start, closed.tid) if change is None else (change.ts, change.tid)
    arrows = [Arrow(Link.CLOSE, closer.node, peer.node, sent, arrived,
                    sender_tid=sender, receiver_tid=tid, label="FIN")]
    # Only the tracepoint, which never misses, on both ends: this arrow runs the
    # other way, and with it the clocks are bounded from both sides even when the
    # other FIN's `tcp_fin` hit was missed. When both ends closed at once, each was
    # in CLOSING when the ACK of its FIN came, which ends it.
    acked = _state(closer, "TCP_FIN_WAIT1", {"TCP_FIN_WAIT2"}) or \
        _state(closer, "TCP_CLOSING", {"TCP_TIME_WAIT", "TCP_CLOSE"})
    if changed is not None and acked is not None:
        arrows.append(Arrow(Link.CLOSE, peer.node, closer.node, changed[0], acked.ts,
                            sender_tid=changed[1], receiver_tid=acked.tid, label="ACK of FIN"))
    # The last ACK: the end that closed second leaves LAST_ACK when the ACK of its FIN
    # comes, which the peer sent after its `tcp_fin` took that FIN in (a read of the
    # end of file may come after the ACK left: it bounds nothing).
    last = _state(closer, "TCP_LAST_ACK", {"TCP_CLOSE"})
    if fin is not None and last is not None:
        arrows.append(Arrow(Link.CLOSE, peer.node, closer.node, fin[0], last.ts,
                            sender_tid=fin[1], receiver_tid=last.tid, label="ACK of FIN"))
    return arrows
