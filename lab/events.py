"""One event schema for every tracer: what `events.jsonl` holds, one event per line.

Every parser (ftrace, strace, and later the gdbstub tracer) turns its raw
output into `Event`s; correlation and reports read nothing else.

    {"node": "server", "kernel": "5.10.0-32-amd64", "tracer": "ftrace",
     "ts": 1234567890, "pid": 311, "tid": 311, "comm": "replyhi",
     "kind": "func_entry", "name": "__sys_accept4", "args": {"fd": 3},
     "ret": null, "sock": {"fd": 3, "sk": "ffff8880046a8000", "proto": "tcp",
     "family": "inet", "saddr": "10.0.1.10", "sport": 7777,
     "daddr": "10.0.1.1", "dport": 40312}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Kind(StrEnum):
    SYSCALL_ENTRY = "syscall_entry"  # a system call starts (name: "accept4", "sendto")
    SYSCALL_EXIT = "syscall_exit"  # ... and returns (ret set)
    FUNC_ENTRY = "func_entry"  # a kernel function is entered (kprobe)
    FUNC_RETURN = "func_return"  # ... and returns (kretprobe; ret set)
    SOCK_STATE = "sock_state"  # TCP state change (args: oldstate, newstate)
    TRACEPOINT = "tracepoint"  # any other kernel tracepoint (name: "tcp:tcp_probe")


@dataclass(frozen=True)
class SocketId:
    """What identifies the socket an event concerns, as far as the event knows."""

    fd: int | None = None
    sk: str | None = None  # kernel `struct sock *`, hex without 0x
    proto: str | None = None  # "tcp" or "udp"
    family: str | None = None  # "inet" or "inet6"
    saddr: str | None = None
    sport: int | None = None
    daddr: str | None = None
    dport: int | None = None


@dataclass(frozen=True)
class Event:
    node: str
    kernel: str
    tracer: str  # "ftrace" or "strace"
    ts: int  # guest CLOCK_MONOTONIC, nanoseconds
    pid: int
    tid: int
    comm: str
    kind: Kind
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    ret: int | None = None
    sock: SocketId | None = None

    def to_json(self) -> str:
        data = asdict(self)
        if self.sock is None:
            data["sock"] = None
        else:
            data["sock"] = {k: v for k, v in data["sock"].items() if v is not None}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Event:
        data = json.loads(line)
        sock = data.pop("sock", None)
        return cls(**{**data, "kind": Kind(data["kind"]),
                      "sock": SocketId(**sock) if sock is not None else None})


def write_events(path: Path, events: Iterable[Event]) -> int:
    count = 0
    with path.open("w") as f:
        for event in events:
            f.write(event.to_json() + "\n")
            count += 1
    return count


def read_events(path: Path) -> Iterator[Event]:
    with path.open() as f:
        for line in f:
            if line.strip():
                yield Event.from_json(line)
