"""Happened-before constraints between nodes, read off paired connections.

Bytes returned by a receive were sent before it returned: for every receive
on one end that returned bytes up to offset y of its stream, the send on the
other end that carried byte y-1 started before the receive returned. Each
such pair is a `Message` (sent on the sender's clock, received on the
receiver's) for clock alignment (sync/). Only one tracer's system calls per
endpoint are used, so no byte is counted twice.
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
        found[(a.node, b.node)] += _stream(a, b)
        found[(b.node, a.node)] += _stream(b, a)
    return dict(found)


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
