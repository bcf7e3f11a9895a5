"""What each end sent and received: its system calls, and each send matched to its receives.

A TCP end's sends write consecutive ranges of one byte stream and the peer's
receives read consecutive ranges of the same stream, so a send is matched to
every receive whose range overlaps its own: the receive that returned its
last byte is the one that ends its journey. Datagrams (UDP) are matched one
send to one receive of the same size, in order; a send with no such receive
was lost (or is still queued).

Only one tracer's system calls per end are used, so no byte counts twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from operator import attrgetter

import msgspec

from lab.events import Event, Kind

SENDS = frozenset({"sendto", "sendmsg", "write", "writev"})
RECEIVES = frozenset({"recvfrom", "recvmsg", "read", "readv"})
MSG_PEEK = 0x2
UDP_WINDOW = 64  # receives looked ahead for a datagram's match (the rest were lost)
_TRACER = attrgetter("tracer")


# Calls, transfers and arrows are made by the hundred thousand: msgspec structs
# are built several times faster than frozen dataclasses.
class Call(msgspec.Struct, frozen=True, gc=False):
    """One system call of one thread: entered at `start` (None when its entry is not
    in the trace or concerned another socket, as accept()'s does) and left at `end`."""

    name: str
    tid: int
    start: int | None
    end: int
    ret: int | None
    peek: bool = False  # a receive with MSG_PEEK: it left the bytes it returned queued

    @property
    def moved(self) -> int:
        """Bytes this call sent or took (0 for errors, end of file and a peek)."""
        return self.ret if self.ret is not None and self.ret > 0 and not self.peek else 0


class Transfer(msgspec.Struct, frozen=True, gc=False):
    """One send, and the receives that returned its bytes [offset, offset + size)."""

    send: Call
    receives: tuple[Call, ...]
    offset: int
    size: int
    whole: bool = True  # the receives returned every byte (not when the trace ends first)

    @property
    def delivered(self) -> Call | None:
        """The receive that returned the send's last byte, if any did."""
        return self.receives[-1] if self.receives and self.whole else None


def syscalls(events: Sequence[Event]) -> tuple[str, list[Call]]:
    """The system calls of one end, in the order they returned, and the tracer they are
    of: when more than one traced the end, the one that saw most returns."""
    tracers = set(map(_TRACER, events))
    if len(tracers) > 1:  # rare: keep the main tracer's only
        counts = Counter(e.tracer for e in events if e.kind is Kind.SYSCALL_EXIT)
        tracer: str = counts.most_common(1)[0][0] if counts else events[0].tracer
        events = [e for e in events if e.tracer == tracer]
    else:  # nearly always: one tracer per end
        tracer = tracers.pop() if tracers else ""
    entry, exit_ = Kind.SYSCALL_ENTRY, Kind.SYSCALL_EXIT  # this loop sees every event
    entered: dict[tuple[int, str], int] = {}
    peeking: set[tuple[int, str]] = set()
    calls: list[Call] = []
    for e in events:
        kind = e.kind
        if kind is entry:
            entered[(e.tid, e.name)] = e.ts
            if e.name in RECEIVES and _peeks(e.args.get("flags")):
                peeking.add((e.tid, e.name))
        elif kind is exit_:
            key = (e.tid, e.name)
            peek = key in peeking
            if peek:
                peeking.remove(key)
            calls.append(Call(e.name, e.tid, entered.pop(key, None), e.ts, e.ret, peek))
    return tracer, calls


def _peeks(flags: object) -> bool:
    """Whether a receive's flags have MSG_PEEK: a number (ftrace), or names (strace)."""
    if isinstance(flags, int):
        return bool(flags & MSG_PEEK)
    return isinstance(flags, str) and "MSG_PEEK" in flags.split("|")


def stream_transfers(sends: Sequence[Call], receives: Sequence[Call]) -> list[Transfer]:
    """Each send of a byte stream with the receives that read any of its bytes."""
    out: list[Transfer] = []
    k = 0  # the first receive that may still hold bytes of the current send
    read_before_k = 0  # stream offset where receive k starts
    offset = 0
    for send in sends:
        size = send.moved
        if not size:
            continue
        end = offset + size
        while k < len(receives) and read_before_k + receives[k].moved <= offset:
            read_before_k += receives[k].moved
            k += 1
        got: list[Call] = []
        j, at = k, read_before_k
        while j < len(receives) and at < end:
            if receives[j].moved:
                got.append(receives[j])
            at += receives[j].moved
            j += 1
        out.append(Transfer(send, tuple(got), offset, size, whole=at >= end))
        offset = end
    return out


def datagram_transfers(sends: Sequence[Call], receives: Sequence[Call]) -> list[Transfer]:
    """Each datagram sent with the receive of the same size that took it, in order."""
    out: list[Transfer] = []
    k = 0
    offset = 0
    for send in sends:
        if send.ret is None or send.ret < 0:
            continue
        match = next((j for j in range(k, min(k + UDP_WINDOW, len(receives)))
                      if receives[j].ret == send.ret), None)
        receives_of: tuple[Call, ...] = ()
        if match is not None:
            receives_of, k = (receives[match],), match + 1
        out.append(Transfer(send, receives_of, offset, send.ret))
        offset += send.ret
    return out
