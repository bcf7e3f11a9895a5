"""Entries and returns paired into slices, as trace.json and report.html draw them,
for traces that begin or end inside a call."""

from __future__ import annotations

from lab.events import Event, Kind
from lab.export.slices import slices


def event(ts: int, kind: Kind, name: str, ret: int | None = None) -> Event:
    return Event(node="n", kernel="k", tracer="ftrace", ts=ts, pid=1, tid=1, comm="c",
                 kind=kind, name=name, ret=ret)


def drawn(events: list[Event]) -> list[tuple[str, int, int, int, bool]]:
    """(name, start, end, depth, returned) of each slice."""
    found, _ = slices(events)
    return [(s.name, s.start, s.end, s.depth, s.exit is not None) for s in found]


def test_calls_the_trace_began_or_ended_inside_are_cut_at_its_edges() -> None:
    """A return whose entry came before the trace starts where it ends; an entry that
    never returned ends at its thread's last event."""
    assert drawn([event(5, Kind.FUNC_RETURN, "__sys_accept4", ret=3),
                  event(10, Kind.SYSCALL_ENTRY, "accept4"),
                  event(20, Kind.FUNC_ENTRY, "__sys_accept4"),
                  event(60, Kind.SOCK_STATE, "inet_sock_set_state")]) == [
        ("__sys_accept4", 5, 5, 0, True), ("accept4", 10, 60, 0, False),
        ("__sys_accept4", 20, 60, 1, False)]


def test_a_return_closes_what_its_call_left_open_above_it() -> None:
    """A function probed on entry whose return was missed: the call's return ends it."""
    assert drawn([event(10, Kind.SYSCALL_ENTRY, "connect"),
                  event(20, Kind.FUNC_ENTRY, "__sys_connect"),
                  event(30, Kind.FUNC_ENTRY, "tcp_v4_connect"),
                  event(40, Kind.FUNC_RETURN, "__sys_connect", ret=0),
                  event(50, Kind.SYSCALL_EXIT, "connect", ret=0),
                  event(55, Kind.FUNC_RETURN, "tcp_v4_connect", ret=0)]) == [
        ("connect", 10, 50, 0, True), ("__sys_connect", 20, 40, 1, True),
        ("tcp_v4_connect", 30, 40, 2, False), ("tcp_v4_connect", 55, 55, 0, True)]
