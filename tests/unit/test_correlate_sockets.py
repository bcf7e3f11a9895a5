"""Socket identity on one node: descriptors, kernel socks and 4-tuples tied together.

Run on the ftrace captures of real guests (replyhi/hello, Linux 5.10 and 6.1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec.structs import replace

from lab.correlate.sockets import annotate_sockets
from lab.events import Event, Kind, SocketId
from lab.tracers.ftrace import parse_trace
from lab.tracers.strace import parse_strace
from lab.tracers.strace.clock import ClockSample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ftrace"
ADDRESSES = {"replyhi": ("10.0.1.10", "10.0.1.1"), "replyhi6": ("fd00:0:0:1::10", "fd00:0:0:1::1")}


def annotated(kernel: str, run: str, side: str, *, without: str = "") -> list[Event]:
    """A capture's events; `without` a probe, as if the playbook had not added it."""
    text = (FIXTURES / kernel / f"{run}-{side}.trace").read_text().splitlines()
    return annotate_sockets([e for e in parse_trace(text, node=side, kernel=kernel).events
                             if e.name != without])


def connected(events: list[Event]) -> list[Event]:
    """The events of the connection (not of the listening socket or stdout)."""
    return [e for e in events if e.sock is not None and e.sock.daddr is not None]


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
@pytest.mark.parametrize("run", ["replyhi", "replyhi6"])
# tcp_set_state, when a playbook adds it, names the sock of each state change; without
# it an IPv6 connection's sock is known by its ports only (its functions show no address).
@pytest.mark.parametrize("without", ["", "tcp_set_state"])
def test_every_event_of_the_connection_carries_its_four_tuple(kernel: str, run: str,
                                                              without: str) -> None:
    server_addr, client_addr = ADDRESSES[run]
    server = annotated(kernel, run, "server", without=without)
    client = annotated(kernel, run, "client", without=without)
    (tuple_s,) = {(e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport)
                  for e in connected(server) if e.sock}
    (tuple_c,) = {(e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport)
                  for e in connected(client) if e.sock}
    assert tuple_s[:3] == (server_addr, 7777, client_addr)
    assert tuple_c == (tuple_s[2], tuple_s[3], tuple_s[0], tuple_s[1])  # the same connection
    # Every event on the connected socket's descriptor or sock carries it.
    for events, tuple_ in ((server, tuple_s), (client, tuple_c)):
        sks = {e.sock.sk for e in connected(events) if e.sock}
        fds = {e.sock.fd for e in connected(events) if e.sock and e.comm in ("replyhi", "hello")}
        concerned = [e for e in events if e.sock and (e.sock.sk in sks or (
            e.sock.fd in fds and e.comm in ("replyhi", "hello")))]
        assert len(concerned) > 15
        for e in concerned:
            assert e.sock is not None
            assert (e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport) == tuple_, e


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_descriptor_sock_and_tuple_are_one_socket(kernel: str) -> None:
    server = annotated(kernel, "replyhi", "server")
    accept_ret = next(e for e in server if e.name == "__sys_accept4" and e.kind == Kind.FUNC_RETURN)
    assert accept_ret.sock is not None
    assert accept_ret.sock.fd == accept_ret.ret == 4
    kernel_side = [e for e in server if e.sock and e.sock.sk == accept_ret.sock.sk]
    assert {e.sock.fd for e in kernel_side if e.sock and e.comm == "replyhi"} == {4}
    # Softirq events of the connection (wrong comm) still find it through the sock.
    softirq = [e for e in kernel_side if e.comm != "replyhi"]
    assert softirq and all(e.sock and e.sock.dport == accept_ret.sock.dport for e in softirq)
    listening = next(e for e in server if e.name == "__sys_listen" and e.kind == Kind.FUNC_ENTRY)
    assert listening.sock == SocketId(fd=3, sk=listening.sock.sk if listening.sock else None,
                                      proto="tcp", family="inet", saddr="10.0.1.10", sport=7777)


def test_a_descriptor_that_is_no_socket_is_left_alone() -> None:
    server = annotated("linux-6.1", "replyhi", "server")
    write = next(e for e in server if e.name == "write" and e.kind == Kind.SYSCALL_ENTRY)
    assert write.sock == SocketId(fd=1)


def test_a_socket_on_descriptor_0_is_a_socket() -> None:
    """A daemon with its stdin closed gets 0 from socket(): strace traces no function."""
    base = Event(node="n", kernel="k", tracer="strace", ts=1, pid=1, tid=1, comm="c",
                 kind=Kind.SYSCALL_ENTRY, name="socket", args={"domain": "AF_INET"})
    sock = SocketId(fd=0, proto="tcp", family="inet", saddr="10.0.0.1", sport=1000,
                    daddr="10.0.0.2", dport=80)
    events = [base, replace(base, ts=2, kind=Kind.SYSCALL_EXIT, ret=0, sock=sock),
              replace(base, ts=3, name="close", args={"fd": 0}, sock=SocketId(fd=0))]
    assert [e.sock for e in annotate_sockets(events)] == [sock] * 3


def test_a_descriptor_given_again_without_a_traced_close_is_a_new_socket() -> None:
    """strace -e trace=%network traces no close(): the next socket() on descriptor 3
    is another socket all the same, and lends the first none of its ports."""
    lines = [
        "150   100.000001 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3<TCP:[1001]> <0.000010>",
        '150   100.000100 sendto(3<TCP:[10.0.1.1:40000->10.0.1.10:7777]>, "hi", 2, 0, NULL, 0)'
        " = 2 <0.000010>",
        "150   100.001001 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3<TCP:[1002]> <0.000010>",
        '150   100.001200 sendto(3<TCP:[10.0.1.1:40002->10.0.1.10:7777]>, "hi", 2, 0, NULL, 0)'
        " = 2 <0.000010>"]
    parsed = parse_strace(lines, node="n", kernel="k", clocks=ClockSample(0, 0))
    ports = [(e.name, e.sock.sport if e.sock else None) for e in annotate_sockets(parsed.events)]
    assert ports == [("socket", 40000)] * 2 + [("sendto", 40000)] * 2 + [
        ("socket", 40002)] * 2 + [("sendto", 40002)] * 2


def test_a_socket_made_below_a_call_whose_exit_was_missed_lends_itself_to_no_later_call(
        ) -> None:
    """`__sys_socket` returned 3 but socket()'s exit was not recorded; later, with
    close() not traced either, accept4() returns 3: another socket."""
    base = Event(node="n", kernel="k", tracer="ftrace", ts=1, pid=1, tid=1, comm="c",
                 kind=Kind.FUNC_RETURN, name="__sys_socket", ret=3)
    first = SocketId(sk="aaaa", proto="tcp", family="inet", saddr="10.0.0.1", sport=1000,
                     daddr="10.0.0.2", dport=80)
    events = [base,
              replace(base, ts=2, kind=Kind.FUNC_ENTRY, name="__sys_sendto", ret=None,
                      sock=SocketId(fd=3)),
              replace(base, ts=3, kind=Kind.FUNC_ENTRY, name="tcp_sendmsg", ret=None,
                      sock=first),
              replace(base, ts=4, kind=Kind.FUNC_RETURN, name="__sys_sendto", ret=5),
              replace(base, ts=5, kind=Kind.SYSCALL_EXIT, name="sendto", ret=5),
              replace(base, ts=6, kind=Kind.SYSCALL_EXIT, name="accept4", ret=3)]
    out = annotate_sockets(events)
    assert out[0].sock is not None and out[0].sock.sport == 1000
    assert out[5].sock is not None and out[5].sock.sport is None  # not the first's 1000


def test_a_reused_descriptor_is_a_new_socket() -> None:
    base = Event(node="n", kernel="k", tracer="ftrace", ts=0, pid=1, tid=1, comm="c",
                 kind=Kind.FUNC_RETURN, name="__sys_socket", ret=3)

    def at(ts: int, **kw: object) -> Event:
        return replace(base, ts=ts, **kw)

    sock_a = SocketId(sk="aaaa", proto="tcp", family="inet", saddr="10.0.0.1", sport=1000,
                      daddr="10.0.0.2", dport=80)
    sock_b = SocketId(sk="bbbb", proto="tcp", family="inet", saddr="10.0.0.1", sport=1001,
                      daddr="10.0.0.2", dport=80)
    events = [
        at(1),
        at(2, kind=Kind.FUNC_ENTRY, name="__sys_connect", ret=None, sock=SocketId(fd=3)),
        at(3, kind=Kind.FUNC_ENTRY, name="tcp_v4_connect", ret=None, sock=sock_a),
        at(4, kind=Kind.FUNC_RETURN, name="__sys_connect", ret=0),
        at(5, kind=Kind.SYSCALL_ENTRY, name="close", ret=None, sock=SocketId(fd=3)),
        at(6),
        at(7, kind=Kind.FUNC_ENTRY, name="__sys_connect", ret=None, sock=SocketId(fd=3)),
        at(8, kind=Kind.FUNC_ENTRY, name="tcp_v4_connect", ret=None, sock=sock_b),
    ]
    out = annotate_sockets(events)
    assert [e.sock.sport if e.sock else None for e in out] == [
        1000, 1000, 1000, 1000, 1000, 1001, 1001, 1001]


@pytest.mark.parametrize("family", ["inet", "inet6"])
def test_a_sock_address_reused_by_the_next_accepted_connection_is_a_new_socket(
        family: str) -> None:
    """The kernel hands a closed connection's struct sock to the next one; IPv6
    functions show its ports only, its state change (in a softirq) the 4-tuple."""
    server, peer = ("10.0.0.1", "10.0.0.2") if family == "inet" else ("fd00::1", "fd00::2")
    base = Event(node="n", kernel="k", tracer="ftrace", ts=0, pid=1, tid=1, comm="c",
                 kind=Kind.FUNC_ENTRY, name="__sys_accept4", sock=SocketId(fd=3))

    def connection(t: int, port: int) -> list[Event]:
        full = SocketId(proto="tcp", family=family, saddr=server, sport=80, daddr=peer,
                        dport=port)
        seen = replace(full, sk="ffff0001", saddr=None, daddr=None) if family == "inet6" \
            else replace(full, sk="ffff0001")
        return [
            replace(base, ts=t),
            replace(base, ts=t + 1, tid=0, kind=Kind.SOCK_STATE, name="inet_sock_set_state",
                    args={"oldstate": "TCP_SYN_RECV", "newstate": "TCP_ESTABLISHED"},
                    sock=full),
            replace(base, ts=t + 2, kind=Kind.FUNC_RETURN, name="inet_csk_accept", sock=seen),
            replace(base, ts=t + 3, kind=Kind.FUNC_RETURN, ret=4, sock=None),
            replace(base, ts=t + 4, kind=Kind.FUNC_ENTRY, name="tcp_recvmsg", sock=seen),
            replace(base, ts=t + 5, kind=Kind.SYSCALL_ENTRY, name="close", sock=SocketId(fd=4)),
        ]
    out = annotate_sockets(connection(10, 5000) + connection(20, 5001))
    assert [(e.ts, e.sock.dport) for e in out if e.sock and e.sock.fd == 4] == [
        *((t, 5000) for t in range(11, 16)), *((t, 5001) for t in range(21, 26))]
