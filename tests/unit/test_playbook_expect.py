"""Expectations evaluated on events: filters, each check, one outcome per node."""

from __future__ import annotations

from lab.events import Event, Kind
from lab.playbook import Absent, Count, Expectation, InOrder, Present, evaluate
from lab.playbook.plan import DEFAULT_KINDS, Bound, Check


def ev(node: str, ts: int, name: str, *, comm: str = "replyhi", kind: Kind = Kind.FUNC_ENTRY,
       tracer: str = "ftrace") -> Event:
    return Event(node=node, kernel="5.10", tracer=tracer, ts=ts, pid=1, tid=1, comm=comm,
                 kind=kind, name=name)


SERVER = [
    ev("server", 30, "__sys_listen"),
    ev("server", 10, "__sys_socket"),  # out of file order: sorted by ts
    ev("server", 11, "__sys_socket", kind=Kind.FUNC_RETURN),
    ev("server", 20, "__sys_bind"),
    ev("server", 40, "__sys_accept4"),
    ev("server", 50, "__sys_accept4"),
    ev("server", 45, "__sys_socket", comm="dropbear"),
    ev("server", 46, "accept4", kind=Kind.SYSCALL_ENTRY, tracer="strace"),
]
CLIENT = [ev("client", 5, "__sys_connect", comm="hello")]


def expectation(check: Check, *nodes: str, comm: str | None = "replyhi",
                kinds: tuple[Kind, ...] = DEFAULT_KINDS, tracer: str | None = None) -> Expectation:
    return Expectation(index=0, name="x", line=1, nodes=nodes or ("server",), comm=comm,
                       kinds=kinds, tracer=tracer, check=check)


def outcome(e: Expectation) -> tuple[bool, str]:
    [result] = evaluate([e], SERVER + CLIENT)
    return result.ok, result.detail


def test_in_order() -> None:
    names = ("__sys_socket", "__sys_bind", "__sys_listen", "__sys_accept4")
    assert outcome(expectation(InOrder(names))) == (True, "all 4 in order")
    assert outcome(expectation(InOrder(("__sys_bind", "__sys_socket")))) == (
        False, "after __sys_bind: no __sys_socket (it occurs, but not after them) "
               "(6 events checked)")
    assert outcome(expectation(InOrder(("__sys_connect",)))) == (
        False, "after nothing: no __sys_connect (6 events checked)")


def test_present_and_absent() -> None:
    assert outcome(expectation(Present(("__sys_accept4", "__sys_bind")))) == (
        True, "__sys_accept4 x2, __sys_bind x1")
    assert outcome(expectation(Present(("__sys_bind", "tcp_close")))) == (
        False, "missing tcp_close (6 events checked)")
    assert outcome(expectation(Absent(("__sys_connect",)))) == (
        True, "none of them (6 events checked)")
    assert outcome(expectation(Absent(("__sys_connect", "__sys_accept4")))) == (
        False, "found __sys_accept4 x2")


def test_count_once_per_call_by_default() -> None:
    bounds = (Bound("__sys_socket", 1, 1), Bound("__sys_accept4", 2, None))
    assert outcome(expectation(Count(bounds))) == (True, "__sys_socket x1, __sys_accept4 x2")
    # with returns too, __sys_socket is seen twice; without comm, dropbear's as well
    every = expectation(Count(bounds), kinds=tuple(Kind), comm=None)
    assert outcome(every) == (False, "__sys_socket x3, expected 1")
    wrong = expectation(Count((Bound("__sys_accept4", 3, 5), Bound("__sys_bind", 0, 0))))
    assert outcome(wrong) == (False, "__sys_accept4 x2, expected 3 to 5; "
                                     "__sys_bind x1, expected 0")


def test_tracer_filter() -> None:
    check = Present(("accept4",))
    assert outcome(expectation(check, tracer="strace"))[0]
    assert not outcome(expectation(check, tracer="ftrace"))[0]


def test_one_outcome_per_node() -> None:
    e = expectation(Present(("__sys_connect",)), "client", "server", comm=None)
    results = evaluate([e], SERVER + CLIENT)
    assert [(r.node, r.ok) for r in results] == [("client", True), ("server", False)]
    assert str(results[1]) == "x [server]: FAILED: missing __sys_connect (7 events checked)"
    assert evaluate([expectation(Present(("a",)), "router")], [])[0].detail == \
        "missing a (0 events checked)"


def test_events_at_the_same_time_keep_their_file_order() -> None:
    events = [ev("server", 20, "b"), ev("server", 10, "a"), ev("server", 20, "c")]
    [result] = evaluate([expectation(InOrder(("a", "b", "c")))], events)
    assert result.ok, result.detail
