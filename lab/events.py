"""One event schema for every tracer: what `events.jsonl` holds, one event per line.

Every parser (ftrace, strace, and later the gdbstub tracer) turns its raw
output into `Event`s; correlation and reports read nothing else.

    {"node": "server", "kernel": "5.10.0-32-amd64", "tracer": "ftrace",
     "ts": 1234567890, "pid": 311, "tid": 311, "comm": "replyhi",
     "kind": "func_entry", "name": "__sys_accept4", "args": {"fd": 3},
     "ret": null, "sock": {"fd": 3, "sk": "ffff8880046a8000", "proto": "tcp",
     "family": "inet", "saddr": "10.0.1.10", "sport": 7777,
     "daddr": "10.0.1.1", "dport": 40312}, "irq": null}

Events are msgspec structs: a run holds hundreds of thousands of them, and
msgspec decodes a line straight into a typed event about twenty times faster
than `json` plus a dataclass (bench/correlate.py), and keeps them out of the
garbage collector's way (`gc=False`: an event refers to no other event).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from itertools import groupby, islice
from operator import attrgetter, gt
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from lab.errors import InputError, InputIssue


class Kind(StrEnum):
    SYSCALL_ENTRY = "syscall_entry"  # a system call starts (name: "accept4", "sendto")
    SYSCALL_EXIT = "syscall_exit"  # ... and returns (ret set)
    FUNC_ENTRY = "func_entry"  # a kernel function is entered (kprobe)
    FUNC_RETURN = "func_return"  # ... and returns (kretprobe; ret set)
    SOCK_STATE = "sock_state"  # TCP state change (args: oldstate, newstate)
    TRACEPOINT = "tracepoint"  # any other kernel tracepoint (name: "tcp:tcp_probe")


# Closed vocabularies are Literals: besides checking input, msgspec then returns one
# shared string object instead of a new one per event, which halves the decoding
# time of a large run (fewer allocations, less memory touched; bench/correlate.py).
Tracer = Literal["ftrace", "strace"]
# What the kernel was doing when it ran an event's code, if not a task's own work:
# handling a packet in a softirq (under whatever task it interrupted), an interrupt.
Irq = Literal["softirq", "hardirq", "nmi"]
Proto = Literal["tcp", "udp"]
Family = Literal["inet", "inet6"]
# An argument as a tracer gives it: a number, a name or an address (text), or NULL.
Arg = int | str | None
# CLOCK_MONOTONIC in ns: never negative, and within the kernel's signed 64 bits.
Nanoseconds = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]


class SocketId(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What identifies the socket an event concerns, as far as the event knows."""

    fd: int | None = None
    sk: str | None = None  # kernel `struct sock *`, hex without 0x
    proto: Proto | None = None
    family: Family | None = None
    saddr: str | None = None
    sport: int | None = None
    daddr: str | None = None
    dport: int | None = None


class Event(msgspec.Struct, frozen=True, gc=False):
    node: str
    kernel: str
    tracer: Tracer
    ts: Nanoseconds  # guest CLOCK_MONOTONIC
    pid: int
    tid: int
    comm: str
    kind: Kind
    name: str
    args: dict[str, Arg] = {}
    ret: int | None = None
    sock: SocketId | None = None
    irq: Irq | None = None  # None: the task's own work (a system call, its kernel code)

    def to_json(self) -> str:
        return _ENCODER.encode(self).decode()

    @classmethod
    def from_json(cls, line: str | bytes) -> Event:
        return _DECODER.decode(line)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Event)
_TS = attrgetter("ts")
_NODE = attrgetter("node")
BLOCK = 1 << 22  # bytes of events.jsonl decoded at once


def write_events(path: Path, events: Iterable[Event]) -> int:
    count = 0
    buffer = bytearray()
    with path.open("wb") as f:
        for event in events:
            _ENCODER.encode_into(event, buffer, -1)
            buffer += b"\n"
            count += 1
            if len(buffer) > 1 << 20:
                f.write(buffer)
                buffer.clear()
        f.write(buffer)
    return count


def read_events(path: Path, *, skipped: list[InputIssue] | None = None) -> Iterator[Event]:
    """The events of an `events.jsonl`. A line that is not one (a run cut short
    leaves half a line) stops with its place, or, given `skipped`, is noted there
    and left out.

    Whole blocks of lines are decoded at once (msgspec's `decode_lines`), which
    is a third faster than line by line; a block that fails is read again line
    by line to find the lines at fault.
    """
    line = 1
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            block += f.readline()  # end on a line boundary
            try:
                yield from _DECODER.decode_lines(block)
            except msgspec.DecodeError:
                yield from _decode_each(path, block, line, skipped)
            line += block.count(b"\n")


def by_node(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Each node's events in time order, nodes by name.

    Grouped first, so that a sort compares plain integers; runs of one node's
    events are taken whole, and a node's events already in time order (as a
    tracer writes them) are not sorted at all: one pass over the run.
    """
    grouped: dict[str, list[Event]] = {}
    for node, same_node in groupby(events, _NODE):
        grouped.setdefault(node, []).extend(same_node)
    for one_node in grouped.values():
        times = list(map(_TS, one_node))
        if any(map(gt, times, islice(times, 1, None))):
            one_node.sort(key=_TS)
    return dict(sorted(grouped.items()))


def _decode_each(path: Path, block: bytes, first_line: int,
                 skipped: list[InputIssue] | None) -> Iterator[Event]:
    for number, line in enumerate(block.splitlines(), first_line):
        if line.strip():
            try:
                yield _DECODER.decode(line)
            except msgspec.DecodeError as exc:
                if skipped is None:
                    raise InputError([_issue(path, number, exc)]) from None
                skipped.append(_issue(path, number, exc))


def _issue(path: Path, line: int, exc: msgspec.DecodeError) -> InputIssue:
    """msgspec says "Expected `int`, got `str` - at `$.sock.sport`": field first (of a
    mapping's value, "$.args[...]", only the mapping: msgspec does not say the key)."""
    message, _, where = str(exc).partition(" - at `$")
    field = where.rstrip("`").lstrip(".").removesuffix("[...]")
    if message[1:2].islower():  # "Expected" → "expected", but "JSON" stays
        message = message[:1].lower() + message[1:]
    return InputIssue(path, line, field, message,
                      hint="each line must be one event of the schema in lab/events.py")
