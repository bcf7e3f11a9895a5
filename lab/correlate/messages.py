"""Happened-before constraints between nodes, read off paired connections.

Each is a `Message` (sent on the sender's clock, received on the receiver's)
for clock alignment (sync/). Three kinds, all certain:

- bytes: a receive that returned bytes up to offset y of its stream came
  after the start of the send on the other end that carried byte y-1;
- handshake: accept() returned a connection after the client's connect()
  started (its SYN);
- close: the FIN of one end's close() or shutdown() reached the other end
  after that call started (`tcp_fin` there, or a read that returned 0).

Only one tracer's system calls per endpoint are used, so no byte counts twice.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

from lab.correlate.pairing import Connection, Endpoint
from lab.correlate.report import RECEIVES, SENDS, main_tracer
from lab.correlate.sync import Message
from lab.events import Kind


def messages(connections: Iterable[Connection]) -> dict[tuple[str, str], list[Message]]:
    found: dict[tuple[str, str], list[Message]] = defaultdict(list)
    for connection in connections:
        if not connection.paired or connection.proto != "tcp":
            continue  # datagrams may be lost or reordered: no byte stream to follow
        a, b = connection.ends
        for sender, receiver in ((a, b), (b, a)):
            found[(sender.node, receiver.node)] += [
                *_stream(sender, receiver), *_handshake(sender, receiver),
                *_close(sender, receiver)]
    return dict(found)


def _first(end: Endpoint, kind: Kind, names: set[str], *, ret: int | None = None) -> int | None:
    tracer = main_tracer(end.events)
    for e in end.events:
        if e.tracer == tracer and e.kind == kind and e.name in names \
                and (ret is None or e.ret == ret):
            return e.ts
    return None


def _handshake(client: Endpoint, server: Endpoint) -> list[Message]:
    connect = _first(client, Kind.SYSCALL_ENTRY, {"connect"})
    accepted = _first(server, Kind.SYSCALL_EXIT, {"accept", "accept4"})
    if connect is None or accepted is None:
        return []
    return [Message(sent=connect, received=accepted)]


def _close(closer: Endpoint, peer: Endpoint) -> list[Message]:
    closed = _first(closer, Kind.SYSCALL_ENTRY, {"close", "shutdown"})
    if closed is None:
        return []
    fin = [e.ts for e in peer.events if e.kind == Kind.FUNC_ENTRY and e.name == "tcp_fin"]
    eof = _first(peer, Kind.SYSCALL_EXIT, RECEIVES, ret=0)
    arrived = min([*fin, *([eof] if eof is not None else [])], default=None)
    return [] if arrived is None else [Message(sent=closed, received=arrived)]


def _stream(sender: Endpoint, receiver: Endpoint) -> list[Message]:
    """Messages for the bytes `sender` wrote and `receiver` read, in stream order."""
    starts, ends = _sends(sender)
    out: list[Message] = []
    received = 0
    tracer = main_tracer(receiver.events)
    for e in receiver.events:
        if e.tracer == tracer and e.kind == Kind.SYSCALL_EXIT and e.name in RECEIVES \
                and e.ret and e.ret > 0:
            received += e.ret
            k = bisect.bisect_left(ends, received)  # the send holding byte received-1
            if k < len(starts):
                out.append(Message(sent=starts[k], received=e.ts))
    return out


def _sends(end: Endpoint) -> tuple[list[int], list[int]]:
    """Each send's start time and the stream offset just past its last byte."""
    tracer = main_tracer(end.events)
    started: dict[int, int] = {}  # tid → entry time of its send in progress
    starts: list[int] = []
    ends: list[int] = []
    total = 0
    for e in end.events:
        if e.tracer != tracer or e.name not in SENDS:
            continue
        if e.kind == Kind.SYSCALL_ENTRY:
            started[e.tid] = e.ts
        elif e.kind == Kind.SYSCALL_EXIT and e.ret and e.ret > 0 and e.tid in started:
            total += e.ret
            starts.append(started.pop(e.tid))
            ends.append(total)
    return starts, ends
