"""Pairing both ends of each connection, on traces captured from real guests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from msgspec.structs import replace

from lab.correlate.correlation import correlate
from lab.correlate.pairing import LISTENING, pair
from lab.correlate.sockets import annotate_sockets
from lab.correlate.synthetic import synthetic_run
from lab.events import Event, Kind, SocketId
from lab.tracers.ftrace import parse_trace
from lab.tracers.strace import parse_strace, read_clocks_file

FIXTURES = Path(__file__).parents[1] / "fixtures"
KERNELS = ["linux-5.10", "linux-6.1"]


def ftrace_run(kernel: str, run: str, *, without: Sequence[str] = ()) -> list[Event]:
    """A captured run as `lab run` annotates it; `without`: as if these probes were off."""
    events: list[Event] = []
    for side in ("client", "server"):
        text = (FIXTURES / "ftrace" / kernel / f"{run}-{side}.trace").read_text()
        parsed = parse_trace(text.splitlines(), node=side, kernel=kernel).events
        events += annotate_sockets([e for e in parsed if e.name not in without])
    return events


def ftrace_nodes(kernel: str, run: str, nodes: Sequence[str]) -> list[Event]:
    """A captured run of any nodes, as `lab run` annotates it."""
    events: list[Event] = []
    for node in nodes:
        text = (FIXTURES / "ftrace" / kernel / f"{run}-{node}.trace").read_text()
        events += annotate_sockets(parse_trace(text.splitlines(), node=node,
                                               kernel=kernel).events)
    return events


def strace_run(kernel: str, run: str) -> list[Event]:
    events: list[Event] = []
    for side in ("client", "server"):
        path = FIXTURES / "strace" / kernel / f"{run}-{side}.strace"
        events += annotate_sockets(parse_strace(path.read_text().splitlines(), node=side,
                                                kernel=kernel,
                                                clocks=read_clocks_file(path)).events)
    return events


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("run", "client", "server"), [
    ("replyhi", "10.0.1.1", ("10.0.1.10", 7777)),
    ("replyhi6", "fd00:0:0:1::1", ("fd00:0:0:1::10", 7777)),
])
# tcp_set_state is a probe playbooks may add: without it, the kernel functions of an
# IPv6 connection show its ports but not its addresses.
@pytest.mark.parametrize("without", [(), ("tcp_set_state",)])
def test_one_tcp_connection_both_ends(kernel: str, run: str, client: str,
                                      server: tuple[str, int], without: tuple[str]) -> None:
    result = pair(ftrace_run(kernel, run, without=without))
    (connection,) = result.connections
    assert connection.paired
    near, far = connection.ends
    assert (near.node, near.role, far.node, far.role) == ("client", "client", "server", "server")
    assert near.local[0] == client and near.remote == server
    assert (far.local, far.remote) == (near.remote, near.local)
    names = {e.name for e in near.events} | {e.name for e in far.events}
    assert {"__sys_connect", "__sys_accept4", "tcp_sendmsg", "tcp_recvmsg"} <= names
    # What is left is the server's listening socket, reported with the reason.
    assert {(u.event.node, u.reason) for u in result.unattributed} == {
        ("server", "listening or unconnected socket (no peer)")}


@pytest.mark.parametrize("kernel", KERNELS)
def test_concurrent_connections_are_each_paired(kernel: str) -> None:
    result = pair(strace_run(kernel, "concurrent"))
    assert len(result.connections) == 5
    assert all(c.paired for c in result.connections)
    assert len({c.ends[0].local for c in result.connections}) == 5  # five client ports


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("run", "server"), [("udp", ("10.0.1.10", 7779)),
                                             ("udp6", ("fd00:0:0:1::10", 7784))])
def test_a_udp_flow_pairs_by_its_datagrams(kernel: str, run: str,
                                           server: tuple[str, int]) -> None:
    result = pair(strace_run(kernel, run))
    (flow,) = result.connections
    assert flow.paired and flow.proto == "udp"
    client, far = flow.ends
    assert (client.node, client.role, far.node, far.role) == ("client", "client", "server",
                                                               "server")
    assert client.remote == server and far.local == server
    # The client's socket was never bound: its address is the one the server saw.
    assert client.local == far.remote
    # Every call on either socket belongs to the flow, socket() included.
    assert result.unattributed == []
    assert [e.name for e in client.events[:2]] == ["socket", "socket"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_udp_server_answering_two_clients_has_a_flow_with_each(kernel: str) -> None:
    """One unconnected socket, two peers: each datagram's source (move_addr_to_user)
    and destination (udp_sendmsg) put every call of the server in its flow."""
    result = pair(ftrace_nodes(kernel, "udp2", ["alice", "bob", "server"]))
    assert [(c.proto, [e.node for e in c.ends]) for c in result.connections] == [
        ("udp", ["alice", "server"]), ("udp", ["bob", "server"])]
    for flow in result.connections:
        client, server = flow.ends
        assert server.remote == client.local and client.remote == server.local
        received = [e for e in server.events if e.name == "recvfrom" and e.ret]
        sent = [e for e in server.events if e.name == "sendto" and e.ret]
        assert (len(received), len(sent)) == (3, 3)  # each client's three, echoed
    # Only the server socket's own setup (socket, bind) belongs to no flow.
    assert {u.reason for u in result.unattributed} == {LISTENING}
    assert {u.event.name for u in result.unattributed} >= {"socket", "bind"}


def test_a_reused_port_is_a_new_connection() -> None:
    def state(node: str, ts: int, new: str, local: tuple[str, int],
              remote: tuple[str, int]) -> Event:
        return Event(node=node, kernel="k", tracer="ftrace", ts=ts, pid=1, tid=1, comm="c",
                     kind=Kind.SOCK_STATE, name="inet_sock_set_state",
                     args={"oldstate": "x", "newstate": new},
                     sock=SocketId(proto="tcp", family="inet", saddr=local[0], sport=local[1],
                                   daddr=remote[0], dport=remote[1]))
    a, b = ("10.0.0.1", 4000), ("10.0.0.2", 80)
    events = [state("c", 1, "TCP_SYN_SENT", a, b), state("s", 2, "TCP_SYN_RECV", b, a),
              state("c", 3, "TCP_CLOSE", a, b), state("s", 4, "TCP_CLOSE", b, a),
              state("c", 5, "TCP_SYN_SENT", a, b), state("s", 6, "TCP_SYN_RECV", b, a)]
    result = pair(events)
    assert [c.id for c in result.connections] == [
        "tcp 10.0.0.1:4000 > 10.0.0.2:80", "tcp 10.0.0.1:4000 > 10.0.0.2:80 #2"]
    assert all(c.paired for c in result.connections)
    assert [[e.ts for e in c.ends[0].events] for c in result.connections] == [[1, 3], [5]]


def test_a_reused_port_s_next_connection_keeps_the_calls_it_made_before_its_syn() -> None:
    """Its socket carries the 4-tuple from birth (sockets.py): socket() and connect()'s
    entry come before its first state change, yet are of the new connection."""
    def one_port(e: Event) -> Event:
        s = e.sock
        if s is None or 32769 not in (s.sport, s.dport):
            return e
        return replace(e, sock=replace(s, sport=32768 if s.sport == 32769 else s.sport,
                                       dport=32768 if s.dport == 32769 else s.dport))
    run = synthetic_run(2, spacing_ns=20_000_000)
    result = correlate([one_port(e) for e in run.events], reference="client")
    first, second = result.flows
    assert second.connection.id == first.connection.id + " #2"
    for flow in result.flows:
        assert [c.name for c in flow.calls[0]] == [
            "socket", "connect", "sendto", "recvfrom", "close"]
        assert [c.start is not None for c in flow.calls[0]] == [True] * 5
        assert {a.label for a in flow.arrows} >= {"connect → accept", "ACK", "FIN"}
    assert all(x.connect_to_accept is not None for x in result.latencies)


def test_a_udp_flow_ends_after_a_silence_not_after_a_while() -> None:
    """Datagrams every second for 10 s are one flow; 6 s of silence ends it."""
    client, server = ("10.0.0.1", 5000), ("10.0.0.2", 53)

    def sent(ts: int) -> Event:
        return Event(node="c", kernel="k", tracer="strace", ts=ts, pid=1, tid=1, comm="x",
                     kind=Kind.SYSCALL_EXIT, name="sendto", ret=8,
                     sock=SocketId(fd=3, proto="udp", family="inet", saddr=client[0],
                                   sport=client[1], daddr=server[0], dport=server[1]))
    second = 1_000_000_000
    steady = [sent(k * second) for k in range(11)]
    assert [len(e.events) for e in pair(steady).connections[0].ends] == [11]
    flows = pair([*steady, sent(16 * second)]).connections
    assert [[len(e.events) for e in c.ends] for c in flows] == [[11], [1]]


def test_a_silence_that_ends_a_udp_flow_on_one_side_only_splits_neither() -> None:
    """A heartbeat every 5 s: the client's clock sees 5.0001 s between two sends, the
    server's 4.99985 s between their receives. Paired flow by flow, the second send
    would meet the third receive; one flow each side, every datagram meets its own."""
    client, server = ("10.0.0.1", 5000), ("10.0.0.2", 53)

    def call(node: str, ts: int, name: str) -> Event:
        local, remote = (client, server) if node == "c" else (server, client)
        return Event(node=node, kernel="k", tracer="strace", ts=ts, pid=1, tid=1, comm="x",
                     kind=Kind.SYSCALL_EXIT, name=name, ret=8,
                     sock=SocketId(fd=3, proto="udp", family="inet", saddr=local[0],
                                   sport=local[1], daddr=remote[0], dport=remote[1]))
    sent = [1_000_000, 5_001_100_000, 35_001_100_000]
    received = [1_300_000, 5_001_150_000, 35_001_300_000]
    result = pair([*(call("c", t, "sendto") for t in sent),
                   *(call("s", t, "recvfrom") for t in received)])
    [flow] = result.connections
    assert flow.paired
    assert [[e.ts for e in end.events] for end in flow.ends] == [sent, received]


def test_a_node_s_udp_flows_to_two_peers_on_one_port_pair_with_those_peers() -> None:
    """Three nodes on port 9000, unbound (0.0.0.0): a's flows to b and to c match each
    other by port, but a flow pairs across nodes only (or, over loopback, exactly)."""
    ip = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}

    def call(node: str, peer: str, ts: int, name: str) -> Event:
        return Event(node=node, kernel="k", tracer="strace", ts=ts, pid=1, tid=1, comm="x",
                     kind=Kind.SYSCALL_EXIT, name=name, ret=8, args={"addr": f"{ip[peer]}:9000"},
                     sock=SocketId(fd=3, proto="udp", family="inet", saddr="0.0.0.0", sport=9000))
    flows = pair([call("a", "b", 1000, "sendto"), call("b", "a", 2000, "recvfrom"),
                  call("a", "c", 3000, "sendto"), call("c", "a", 4000, "recvfrom")]).connections
    assert [[end.node for end in flow.ends] for flow in flows] == [["a", "b"], ["a", "c"]]


def test_ipv4_mapped_addresses_pair_with_plain_ipv4() -> None:
    def sent(node: str, local: tuple[str, int], remote: tuple[str, int]) -> Event:
        return Event(node=node, kernel="k", tracer="ftrace", ts=1, pid=1, tid=1, comm="c",
                     kind=Kind.FUNC_ENTRY, name="tcp_sendmsg",
                     sock=SocketId(proto="tcp", saddr=local[0], sport=local[1],
                                   daddr=remote[0], dport=remote[1]))
    events = [sent("c", ("::ffff:10.0.0.1", 5), ("::ffff:10.0.0.2", 6)),
              sent("s", ("10.0.0.2", 6), ("10.0.0.1", 5))]
    assert pair(events).connections[0].paired
