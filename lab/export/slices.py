"""Entries and returns paired into slices, per thread: what trace.json and report.html draw.

A system call or a probed kernel function is a slice from its entry to its
return, nested in whatever was running on the same thread. A function probed
without a return probe (`tcp_set_state`, `tcp_fin`...), a state change and any
other tracepoint are instants. A return whose entry is not in the trace (the
trace began inside the call) starts where it ends; an entry that never
returned (the trace ended inside it) ends at the thread's last event.
"""

from __future__ import annotations

import errno
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from lab.events import Event, Kind, by_node

MAX_ERRNO = 4095  # the kernel's: a return in [-4095, -1] is an error
ENTRIES = {Kind.SYSCALL_ENTRY: "syscall", Kind.FUNC_ENTRY: "function"}
RETURNS = {Kind.SYSCALL_EXIT: "syscall", Kind.FUNC_RETURN: "function"}
_ORDER = attrgetter("node", "start", "depth")


@dataclass(frozen=True, slots=True)
class Slice:
    node: str
    pid: int
    tid: int
    comm: str
    kind: str  # "syscall" or "function"
    name: str
    start: int  # the node's own clock, ns
    end: int
    depth: int  # 0 for a system call made by the program, +1 per level inside
    entry: Event | None  # None: the trace began inside the call
    exit: Event | None  # None: the trace ended inside it

    @property
    def ret(self) -> int | str | None:
        return None if self.exit is None else returned(self.exit)


def returned(exit_: Event) -> int | str | None:
    """What a call returned, as every report shows it: its value, an error with its
    name ("-111 ECONNREFUSED"), or for a function that returns a sock (inet_csk_accept)
    which one, "sock ffff…"; None if unknown."""
    if exit_.ret is not None:
        # The kernel returns an error as -errno, from system calls and functions alike.
        name = errno.errorcode.get(-exit_.ret) if -MAX_ERRNO <= exit_.ret < 0 else None
        return exit_.ret if name is None else f"{exit_.ret} {name}"
    sock = exit_.args.get("ret") or (exit_.sock.sk if exit_.sock else None)
    return None if sock is None else f"sock {sock}"


def slices(events: Iterable[Event]) -> tuple[list[Slice], list[Event]]:
    """Every slice of the run, and the events that are instants."""
    found: list[Slice] = []
    instants: list[Event] = []
    for node_events in by_node(events).values():
        _node_slices(node_events, found, instants)
    found.sort(key=_ORDER)
    return found, instants


def returning(events: Iterable[Event]) -> set[tuple[str, str]]:
    """(node, function) of the functions that return in the trace: the others were
    probed without a return probe (tcp_fin, move_addr_to_user...) and nest nothing."""
    return {(e.node, e.name) for e in events if e.kind is Kind.FUNC_RETURN}


def opens(e: Event, returns: set[tuple[str, str]]) -> bool:
    """Whether `e` begins a call that a later event of its thread ends."""
    return e.kind is Kind.SYSCALL_ENTRY or (
        e.kind is Kind.FUNC_ENTRY and (e.node, e.name) in returns)


def _node_slices(events: list[Event], found: list[Slice], instants: list[Event]) -> None:
    """One node's slices into `found`, its instants into `instants`."""
    returns = returning(events)
    stacks: dict[int, list[Event]] = defaultdict(list)  # by thread
    last: dict[int, int] = {}
    for e in events:
        last[e.tid] = e.ts
        stack = stacks[e.tid]
        if opens(e, returns):
            stack.append(e)
        elif e.kind in RETURNS:
            if stack and stack[-1].name == e.name:  # nearly always: the innermost call
                found.append(_slice(stack.pop(), e, len(stack), e.ts))
                continue
            names = [x.name for x in stack]
            if e.name in names:  # close it, and whatever it left open above it
                k = len(names) - 1 - names[::-1].index(e.name)
                for depth in range(len(stack) - 1, k, -1):
                    found.append(_slice(stack[depth], None, depth, e.ts))
                found.append(_slice(stack[k], e, k, e.ts))
                del stack[k:]
            else:
                found.append(_slice(None, e, len(stack), e.ts))
        else:
            instants.append(e)
    for tid, stack in stacks.items():
        found += [_slice(entry, None, depth, last[tid]) for depth, entry in enumerate(stack)]


def _slice(entry: Event | None, exit_: Event | None, depth: int, end: int) -> Slice:
    if entry is not None:
        some, kind = entry, ENTRIES[entry.kind]
    else:
        assert exit_ is not None
        some, kind = exit_, RETURNS[exit_.kind]
    return Slice(some.node, some.pid, some.tid, some.comm, kind, some.name,
                 entry.ts if entry else end, end, depth, entry, exit_)
