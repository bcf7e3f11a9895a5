"""Correlation end to end on synthetic runs whose true clocks are known, and on captures."""

from __future__ import annotations

import dataclasses
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from lab.correlate.correlation import (
    Correlation,
    _clock_error,
    correlate,
    run_statistics,
    summarise,
)
from lab.correlate.messages import Link
from lab.correlate.pairing import LISTENING
from lab.correlate.streams import Call, datagram_transfers, stream_transfers, syscalls
from lab.correlate.sync import Quality
from lab.correlate.sync.fit import duration, identity
from lab.correlate.sync.host import HOST, RoundTrip
from lab.correlate.synthetic import SyntheticRun, synthetic_run
from lab.events import Event, Kind
from lab.export.outputs import summary_lines
from lab.playbook import evaluate, load_playbook
from lab.topology import load_topology
from tests.unit.test_correlate_pairing import ftrace_nodes, ftrace_run, strace_run

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(("offset_ns", "drift_ppm", "connections"), [
    (0, 0.0, 20), (3_000_000, 0.0, 20), (-75_000_000, 0.0, 200),
    (1_000_000_000, 40.0, 3000), (-2_500_000, -120.0, 3000)])
def test_known_offset_and_drift_are_recovered_within_the_reported_bounds(
        offset_ns: int, drift_ppm: float, connections: int) -> None:
    run = synthetic_run(connections, offset_ns=offset_ns, drift_ppm=drift_ppm)
    result = correlate(run.events, reference="client")
    fit = result.fits["server"]
    assert fit.quality == Quality.BOUNDED, fit.explain()
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    true_offset = run.server_clock(fit.ref_time) - fit.ref_time
    assert fit.ref_offset_min <= true_offset <= fit.ref_offset_max, fit.explain()
    # The bounds are as tight as the network allows: its delays are 50-300 µs.
    assert fit.ref_offset_max - fit.ref_offset_min < 600_000
    if fit.drift_min is not None and fit.drift_max is not None and fit.drift != 1:
        assert fit.drift_min <= 1 + drift_ppm / 1e6 <= fit.drift_max
    assert not result.inversions
    assert [c.paired for c in result.pairing.connections] == [True] * connections


def test_the_summary_says_how_far_latencies_between_nodes_may_be_off() -> None:
    run = synthetic_run(50, offset_ns=-4_000_000)
    result = correlate(run.events, reference="client")
    fit, error = result.fits["server"], result.summary.clock_error_ns
    assert error is not None and 0 < error < 300_000, fit.explain()
    # The estimate's offset (what every latency between the nodes is computed with)
    # is within the error of the true one.
    true_offset = run.server_clock(fit.ref_time) - fit.ref_time
    assert abs(fit.ref_offset - true_offset) <= error
    line = next(line for line in summary_lines(result.summary) if line.startswith("latency"))
    assert line.endswith(f"(clocks aligned within ±{duration(error)})")
    # One node alone: nothing to align, nothing to say.
    alone = correlate([e for e in run.events if e.node == "client"], reference="client")
    assert alone.summary.clock_error_ns is None


def test_with_symmetric_delays_the_latencies_are_the_network_delay() -> None:
    delay = 120_000
    run = synthetic_run(30, offset_ns=42_000_000, min_delay_ns=delay, max_delay_ns=delay)
    result = correlate(run.events, reference="client")
    stats = run_statistics(result.latencies)
    # The request and the reply each reach a reader that is already waiting.
    assert stats["send_to_receive"] == {"count": 60, "min": delay, "median": delay,
                                        "p90": delay, "max": delay}
    # connect() starts 6 µs before its SYN leaves; the SYN, SYN-ACK and ACK each take
    # one delay; accept() returns 11 µs after the ACK.
    assert stats["connect_to_accept"] is not None
    assert stats["connect_to_accept"]["median"] == 3 * delay + 6_000 + 11_000


def test_every_send_is_matched_to_the_receive_that_returned_it() -> None:
    result = correlate(synthetic_run(50, offset_ns=-9_000_000).events, reference="client")
    for flow in result.flows:
        request, reply = flow.transfers
        assert [(t.size, len(t.receives)) for t in request] == [(5, 1)]
        assert [(t.size, len(t.receives)) for t in reply] == [(2, 1)]
        kinds = sorted(a.kind for a in flow.arrows)
        # connect → accept, and the last ACK of the handshake between the kernels; the
        # server's FIN, and the client's ACK of it
        assert kinds == sorted([Link.HANDSHAKE, Link.HANDSHAKE, Link.DATA, Link.DATA,
                                Link.CLOSE, Link.CLOSE])


def test_connections_are_in_the_order_they_began_on_the_reference_clock() -> None:
    """A one-sided connection has only its node's clock, 10 s ahead here: it began
    first all the same, and reports list (and draw) it first."""
    run = synthetic_run(3, offset_ns=10_000_000_000)
    events = [e for e in run.events  # the client's view of the first one is not traced
              if not (e.node == "client" and e.sock and e.sock.sport == 32768)]
    result = correlate(events, reference="client")
    began = [min(result.clock(end.node)(end.first) for end in c.ends)
             for c in result.pairing.connections]
    assert began == sorted(began)
    assert [c.paired for c in result.pairing.connections] == [False, True, True]
    assert [f.connection for f in result.flows] == result.pairing.connections


def test_both_ends_on_one_node_are_one_connection_on_its_one_clock() -> None:
    """A client and a server on one node (over loopback, or the node's own address):
    paired, with latencies each way, and no clock to fit."""
    run = synthetic_run(2)  # the server's clock is the client's: one node's
    on_one = [replace(e, node="client") for e in run.events]
    result = correlate(on_one, reference="client")
    assert [[(end.node, end.role) for end in c.ends] for c in result.pairing.connections] == [
        [("client", "client"), ("client", "server")]] * 2
    assert (result.fits, result.summary.inversions) == ({}, 0)
    for latency in result.latencies:
        assert latency.connect_to_accept is not None and latency.connect_to_accept > 0
        assert set(latency.first_to_last_byte) == {"client→server", "server→client"}
        assert len(latency.send_to_receive) == 2


@pytest.mark.parametrize("missed", [(), ("tcp_fin",), ("tcp_fin", "inet_sock_set_state")])
def test_a_fin_arrives_at_the_first_sign_of_it(missed: tuple[str, ...]) -> None:
    """tcp_fin takes it in; then the state change it makes; at the latest a read
    returns the end of file. A probe hit missed (softirq), the next sign counts."""
    events = [e for e in synthetic_run(1).events
              if not (e.node == "server" and e.name in missed and e.ts > 900_000)]
    server = [e for e in events if e.node == "server" and e.ts > 900_000]
    signs = [e.ts for e in server if e.name == "tcp_fin"] + [
        e.ts for e in server if e.args.get("newstate") == "TCP_CLOSE_WAIT"] + [
        e.ts for e in server if e.name == "read" and e.kind is Kind.SYSCALL_EXIT and e.ret == 0]
    [flow] = correlate(events, reference="client").flows
    [fin] = [a for a in flow.arrows if a.label == "FIN" and a.receiver == "server"]
    assert fin.received == min(signs) and len(signs) == 3 - len(missed)


def test_latency_statistics_take_the_nearest_rank() -> None:
    assert summarise(range(1, 11)) == {"count": 10, "min": 1, "median": 5, "p90": 9, "max": 10}
    assert summarise([7, 3]) == {"count": 2, "min": 3, "median": 3, "p90": 7, "max": 7}
    assert summarise([]) is None


def call(name: str, ret: int, at: int) -> Call:
    return Call(name, tid=1, start=at, end=at + 1, ret=ret)


def test_an_end_traced_twice_counts_the_calls_of_the_tracer_that_saw_most() -> None:
    """ftrace and a strace-wrapped command on one end: each byte is counted once, from
    the tracer that saw more of its calls."""
    events = synthetic_run(1).events
    straced = [replace(e, tracer="strace") for e in events
               if e.node == "client" and e.name == "sendto"]
    [flow] = correlate(sorted(events + straced, key=lambda e: e.ts), reference="client").flows
    assert flow.tracers == ["ftrace", "ftrace"]
    assert [c.name for c in flow.calls[0]] == ["socket", "connect", "sendto", "recvfrom", "close"]
    strace_only = [e for e in events if e.node == "server"] + [
        replace(e, tracer="strace") for e in events if e.node == "client"]
    [flow] = correlate(strace_only, reference="client").flows
    assert flow.tracers == ["strace", "ftrace"]


def test_a_stream_send_is_matched_to_every_receive_holding_its_bytes() -> None:
    sends = [call("write", 5, 0), call("write", 10, 10), call("write", -11, 15),
             call("write", 3, 20)]
    receives = [call("read", 7, 0), call("read", 8, 10), call("read", 3, 20), call("read", 0, 30)]
    transfers = stream_transfers(sends, receives)
    assert [(t.offset, t.size, [r.start for r in t.receives]) for t in transfers] == [
        (0, 5, [0]), (5, 10, [0, 10]), (15, 3, [20])]
    assert transfers[1].delivered == receives[1]


def test_bytes_never_read_leave_a_send_without_receive() -> None:
    transfers = stream_transfers([call("write", 4, 0), call("write", 4, 1)], [call("read", 4, 0)])
    assert [len(t.receives) for t in transfers] == [1, 0]
    assert transfers[1].delivered is None


def test_a_send_read_in_part_is_not_delivered() -> None:
    """The trace ended (or the reader stopped) before its last byte was read: its
    latency is not known, though the read bounds the clocks (its arrow is kept)."""
    [transfer] = stream_transfers([call("write", 100, 0)], [call("read", 50, 5)])
    assert [r.ret for r in transfer.receives] == [50]
    assert transfer.delivered is None


@pytest.mark.parametrize("flags", [0x2 | 0x40, "MSG_PEEK|MSG_DONTWAIT"])  # ftrace, strace
def test_a_peek_takes_no_bytes_from_the_stream(flags: int | str) -> None:
    """recv(MSG_PEEK) returns bytes and leaves them queued: the read after it takes
    them. Were the peek counted, the next send would be matched to the read before it
    was sent, and bound the clocks wrongly."""
    def syscall(kind: Kind, name: str, ts: int, **more: Any) -> Event:
        return Event(node="s", kernel="k", tracer="ftrace", ts=ts, pid=1, tid=1, comm="c",
                     kind=kind, name=name, **more)
    _, receives = syscalls([
        syscall(Kind.SYSCALL_ENTRY, "recvfrom", 2, args={"fd": 3, "flags": flags}),
        syscall(Kind.SYSCALL_EXIT, "recvfrom", 10, ret=5),
        syscall(Kind.SYSCALL_ENTRY, "recvfrom", 11, args={"fd": 3, "flags": 0}),
        syscall(Kind.SYSCALL_EXIT, "recvfrom", 20, ret=5),
        syscall(Kind.SYSCALL_ENTRY, "recvfrom", 1500, args={"fd": 3, "flags": 0}),
        syscall(Kind.SYSCALL_EXIT, "recvfrom", 1510, ret=5)])
    assert [(c.peek, c.moved) for c in receives] == [(True, 0), (False, 5), (False, 5)]
    sends = [call("sendto", 5, 0), call("sendto", 5, 1000)]
    transfers = stream_transfers(sends, receives)
    assert [[r.end for r in t.receives] for t in transfers] == [[20], [1510]]


def test_a_lost_datagram_is_skipped_and_the_next_one_matched_by_size() -> None:
    sends = [call("sendto", 10, 0), call("sendto", 20, 1), call("sendto", 10, 2)]
    receives = [call("recvfrom", 10, 0), call("recvfrom", 10, 1)]
    transfers = datagram_transfers(sends, receives)
    assert [[r.start for r in t.receives] for t in transfers] == [[0], [], [1]]


# Probes in softirq context miss hits under load: state changes must come out the same
# from the tracepoint alone (tcp_set_state is off by default), and FIN arrivals from
# the state changes they make when the tcp_fin hit was missed.
SOFTIRQ_PROBES = [(), ("tcp_set_state",), ("tcp_set_state", "tcp_fin")]


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_captured_datagrams_of_two_clients_matched_each_with_its_echo(kernel: str) -> None:
    result = correlate(ftrace_nodes(kernel, "udp2", ["alice", "bob", "server"]),
                       reference="server")
    assert len(result.flows) == 2
    for flow in result.flows:
        assert [[(t.size, len(t.receives)) for t in d] for d in flow.transfers] == [
            [(6, 1)] * 3, [(6, 1)] * 3]


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
@pytest.mark.parametrize("without", SOFTIRQ_PROBES)
def test_captured_replyhi_is_one_connection_with_no_inversion(kernel: str,
                                                              without: tuple[str, ...]) -> None:
    result = correlate(ftrace_run(kernel, "replyhi", without=without), reference="client")
    assert len(result.flows) == 1 and not result.inversions
    (flow,) = result.flows
    kinds = [(a.kind, a.sender) for a in flow.arrows if a.kind != Link.DATA]
    # The server closes first: the client's move to CLOSE_WAIT says when that FIN came
    # in, and the client's ACK of it moves the server to FIN_WAIT2. The client's FIN
    # then takes the server to CLOSE, as a close() in FIN_WAIT2 would: only tcp_fin
    # tells when it came, and so when the server's ACK of it left, which takes the
    # client out of LAST_ACK.
    closes = [(Link.CLOSE, "client"), (Link.CLOSE, "client"), (Link.CLOSE, "server"),
              (Link.CLOSE, "server")]
    if "tcp_fin" in without:
        closes.remove((Link.CLOSE, "client"))
        closes.remove((Link.CLOSE, "server"))
    assert sorted(kinds) == [*closes, (Link.HANDSHAKE, "client"), (Link.HANDSHAKE, "client")]
    # Messages both ways, interleaved in time: the ACK leaves the client after tcp_fin
    # there took the FIN in. Without tcp_fin on either side, they meet at one instant.
    quality = Quality.BOUNDED if "tcp_fin" not in without else Quality.PARTIAL
    assert result.fits["server"].quality == quality, result.fits["server"].explain()
    states = [e for end in flow.connection.ends for _, _, e in end.changes]
    assert len(states) >= 6 and all(e.sock and e.sock.dport for e in states)
    (latency,) = result.latencies
    assert latency.connect_to_accept is not None and latency.connect_to_accept >= 0
    assert len(latency.send_to_receive) == 2 and min(latency.send_to_receive) >= 0
    assert set(latency.first_to_last_byte) == {"client→server", "server→client"}
    assert sorted(latency.send_to_receive) == sorted(
        v for values in latency.send_to_receive_by_direction.values() for v in values)
    assert set(latency.send_to_receive_by_direction) == {"client→server", "server→client"}


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_captured_concurrent_sends_all_matched(kernel: str) -> None:
    result = correlate(strace_run(kernel, "concurrent"), reference="client")
    assert len(result.flows) == 5 and not result.inversions
    for flow in result.flows:
        for direction in flow.transfers:
            assert direction and all(t.receives for t in direction)


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
@pytest.mark.parametrize(("run", "datagrams"), [("udp", 3), ("udp6", 2)])
def test_captured_datagrams_all_matched_both_ways(kernel: str, run: str,
                                                  datagrams: int) -> None:
    result = correlate(strace_run(kernel, run), reference="client")
    (flow,) = result.flows
    # udpsend sends its datagrams and udpecho returns each; receives that name no peer
    # (their entries) still belong to the flow, as the socket talks to one peer only.
    assert [[(t.size, len(t.receives)) for t in d] for d in flow.transfers] == [
        [(6, 1)] * datagrams, [(6, 1)] * datagrams]
    assert result.pairing.unattributed == []  # socket() too: it made the flow's socket


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
@pytest.mark.parametrize("without", SOFTIRQ_PROBES)
def test_captured_concurrent_ftrace_50_connections_each_send_matched(
        kernel: str, without: tuple[str, ...]) -> None:
    # Softirqs that handle one connection's SYN-ACK while another's connect() is in
    # progress on the same thread must not mix the two up.
    result = correlate(ftrace_run(kernel, "concurrent", without=without), reference="client")
    assert len(result.flows) == 50 and not result.inversions
    assert all(flow.connection.paired for flow in result.flows)
    assert len({flow.connection.ends[0].local for flow in result.flows}) == 50
    for flow in result.flows:
        request, reply = flow.transfers
        assert [(t.size, len(t.receives)) for t in request] == [(5, 1)], flow.connection.id
        assert [(t.size, len(t.receives)) for t in reply] == [(2, 1)], flow.connection.id


def test_without_aligned_clocks_no_cross_node_latency_is_claimed() -> None:
    # UDP never aligns clocks: the server's clock is 40 ms ahead and stays so.
    events = strace_run("linux-5.10", "udp")
    shifted = [replace(e, ts=e.ts + 40_000_000) if e.node == "server" else e for e in events]
    result = correlate(shifted, reference="client")
    assert result.fits["server"].quality is Quality.NO_DATA
    (flow,) = result.flows
    assert flow.transfers[0] and flow.transfers[1]  # the datagrams are still matched
    assert run_statistics(result.latencies) == {
        "connect_to_accept": None, "send_to_receive": None, "first_to_last_byte": None}


HOST_AHEAD = 7_200_000_000_000  # the controller's clock, far ahead of any guest's


def round_trips(run: SyntheticRun, rounds: int = 8) -> dict[str, list[RoundTrip]]:
    """The controller's round trips to both nodes of `run`, before its first event and
    after its last, each way 0.3 to 2 ms (QEMU's user-mode network)."""
    rng = random.Random(7)
    times = [e.ts for e in run.events if e.node == "client"]  # the client's clock is true
    trips: dict[str, list[RoundTrip]] = {"client": [], "server": []}
    for start in (times[0] - 50_000_000, times[-1] + 10_000_000):
        for k in range(rounds):
            for node, clock in (("client", int), ("server", run.server_clock)):
                sent = start + k * 5_000_000
                answered = sent + rng.randint(300_000, 2_000_000)
                back = answered + rng.randint(300_000, 2_000_000)
                trips[node].append(RoundTrip(sent + HOST_AHEAD, clock(answered),
                                             back + HOST_AHEAD))
    return trips


def test_round_trips_align_nodes_that_no_tcp_traffic_links() -> None:
    """The server's traffic seen from another address: nothing pairs, and the clocks are
    aligned through the host, within the bounds the round trips allow."""
    run = synthetic_run(20, offset_ns=-31_000_000, drift_ppm=20)
    moved = [replace(e, sock=replace(e.sock, daddr="10.0.9.9"))
             if e.node == "server" and e.sock and e.sock.daddr else e for e in run.events]
    alone = correlate(moved, reference="client")
    assert alone.fits["server"].quality is Quality.NO_DATA
    result = correlate(moved, reference="client", round_trips=round_trips(run))
    assert not any(c.paired for c in result.pairing.connections)
    fit = result.fits["server"]
    assert fit.quality is Quality.BOUNDED and fit.path == ("client", HOST, "server")
    assert "via client → (host) → server (no TCP traffic reaches it; datagrams" in fit.brief()
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    true_offset = run.server_clock(fit.ref_time) - fit.ref_time
    assert fit.ref_offset_min <= true_offset <= fit.ref_offset_max, fit.explain()
    assert fit.ref_offset_max - fit.ref_offset_min < 5_000_000  # two round trips' worth
    assert set(result.fits) == {"server"}  # the host is no node of the run


def test_nodes_linked_by_tcp_are_aligned_by_it_behind_the_host() -> None:
    """The reference talks to no one; client and server talk TCP. The host reaches
    the client, and the server is placed by its TCP traffic with the client, which a
    path of its own through the host would ignore."""
    run = synthetic_run(20, offset_ns=-31_000_000, drift_ppm=20)
    first = run.events[0]
    alone = replace(first, node="a", sock=None, name="getpid", args={})
    trips = round_trips(run)
    trips["a"] = trips["client"]  # a's clock is the client's, for the test
    result = correlate([alone, *run.events], reference="a", round_trips=trips)
    assert result.fits["client"].path == ("a", HOST, "client")
    assert result.fits["server"].path == ("a", HOST, "client", "server")
    assert not result.inversions


def test_tcp_traffic_aligns_better_than_round_trips() -> None:
    run = synthetic_run(20, offset_ns=-31_000_000, drift_ppm=20)
    fit = correlate(run.events, reference="client", round_trips=round_trips(run)).fits["server"]
    assert fit.quality is Quality.BOUNDED and fit.path == ("client", "server")


@pytest.mark.parametrize("without", SOFTIRQ_PROBES)
def test_a_simultaneous_close_gives_each_fin_and_its_ack(without: tuple[str, ...]) -> None:
    # Captured on 6.1: the server closed while the client's FIN was on its way, so
    # each end went FIN_WAIT1 → CLOSING and left CLOSING on the ACK of its own FIN.
    result = correlate(ftrace_run("linux-6.1", "replyhi-simultaneous", without=without),
                       reference="client")
    (flow,) = result.flows
    closes = sorted((a.sender, a.label) for a in flow.arrows if a.kind == Link.CLOSE)
    assert closes == [("client", "ACK of FIN"), ("client", "FIN"),
                      ("server", "ACK of FIN"), ("server", "FIN")]
    assert not result.inversions
    assert result.fits["server"].quality == Quality.BOUNDED, result.fits["server"].explain()


@pytest.mark.parametrize("without", [(), ("close",)])  # a close() not traced, too
@pytest.mark.parametrize("run", ["replyhi6-twice", "replyhi6-twice-udp"])
def test_a_socket_reusing_a_closed_ones_address_is_a_new_connection(
        run: str, without: tuple[str, ...]) -> None:
    # Captured on 6.1, two IPv6 connections one after the other. On the client, the
    # first connection's last ACK arrived (LAST_ACK → CLOSE, in a softirq) while the
    # second connect() ran on the same descriptor number; on the server (the second
    # run), the second connection's sock got the first one's freed address and
    # descriptor. Neither may lend the other its ports.
    result = correlate(ftrace_run("linux-6.1", run, without=without), reference="client")
    tcp = [c for c in result.pairing.connections if c.proto == "tcp"]
    assert [c.paired for c in tcp] == [True, True], [c.id for c in tcp]
    assert len({c.ends[0].local for c in tcp}) == 2
    for c in tcp:
        for end in c.ends:
            assert {(e.sock.sport, e.sock.dport) for e in end.events if e.sock} == {
                (end.local[1], end.remote[1])}, (c.id, end.node)
            begun = "TCP_SYN_SENT" if end.role == "client" else "TCP_ESTABLISHED"
            assert begun in {new for _, new, _ in end.changes}, (c.id, end.node)
    fit = result.fits["server"]
    # Without close() the FINs are not timed: the two directions of TCP messages then
    # never interleave, and the fit is partial; yet bounded on both sides.
    partial = without and run == "replyhi6-twice"
    assert fit.quality is (Quality.PARTIAL if partial else Quality.BOUNDED), fit.explain()
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    assert fit.drift == 1 and not result.inversions, fit.explain()


def misaligned_star() -> Correlation:
    """The captured star, its clocks aligned through round trips that put alice's clock
    10 s off what her traffic says: her datagrams one way arrive before they leave."""
    events = ftrace_nodes("linux-6.1", "udp2", ["alice", "bob", "server"])
    first = {n: min(e.ts for e in events if e.node == n) for n in ("alice", "bob", "server")}
    skew = {"alice": 10_000_000_000, "bob": 0, "server": 0}
    trips = {n: [RoundTrip(skew[n] + k * 1_000, first[n] - 1_000_000 + k * 1_000,
                           skew[n] + k * 1_000 + 500) for k in range(8)] for n in first}
    return correlate(events, reference="server", round_trips=trips)


def test_datagrams_received_before_they_were_sent_are_inversions() -> None:
    result = misaligned_star()  # the summary must say so
    assert result.fits["alice"].quality is Quality.BOUNDED
    alices = {(a.sender, a.receiver) for a in result.inversions} & {
        ("alice", "server"), ("server", "alice")}
    assert len(alices) == 1
    assert result.summary.inversions == len(result.inversions)


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_the_handshake_below_the_socket_calls_is_in_its_connection(kernel: str) -> None:
    # Captured with playbooks/handshake.yaml: the TCP functions of the receive path run
    # in softirq context, under whatever task it interrupted; filtered by port, traced,
    # and their sock puts them in the connection.
    events = ftrace_run(kernel, "handshake")
    book = load_playbook(ROOT / "playbooks" / "handshake.yaml",
                         load_topology(ROOT / "topologies" / "pair.yaml"))
    outcomes = evaluate(book.expect, events)
    assert all(o.ok for o in outcomes), [o.detail for o in outcomes if not o.ok]
    result = correlate(events, reference="client")
    [connection] = result.pairing.connections
    added = set(book.ftrace.functions.add)
    softirq = [e for end in connection.ends for e in end.events
               if e.name in added and e.irq == "softirq"]
    assert {"tcp_v4_do_rcv", "tcp_send_ack", "tcp_done"} <= {e.name for e in softirq}
    # The SYN comes to the listening socket: tcp_conn_request is that socket's. The
    # SYN-ACK it sends is the request's, which has the connection's 4-tuple.
    listener = {u.event.name for u in result.pairing.unattributed if u.event.name in added}
    assert "tcp_conn_request" in listener and "tcp_v4_send_synack" not in listener
    assert {u.reason for u in result.pairing.unattributed if u.event.name in added} == {
        LISTENING}
    client, server = connection.ends
    [synack] = [e for e in server.events if e.name == "tcp_v4_send_synack"]
    # Its flight bounds the clocks: after the client's SYN left, before the client's
    # receive path took it in.
    [flow] = result.flows
    arrows = {a.label: a for a in flow.arrows}
    assert (arrows["SYN"].sender, arrows["SYN"].received) == ("client", synack.ts)
    assert (arrows["SYN-ACK"].receiver, arrows["SYN-ACK"].sent) == ("client", synack.ts)
    taken = next(e for e in client.events if e.ts == arrows["SYN-ACK"].received)
    assert taken.name in ("tcp_v4_do_rcv", "tcp_rcv_state_process")
    assert not result.inversions


def test_the_clock_error_covers_a_latency_between_any_two_nodes() -> None:
    def fit(node: str, half: int, quality: Quality = Quality.BOUNDED) -> Any:
        return dataclasses.replace(identity(quality, "client", node),
                                   ref_offset_min=Fraction(-half), ref_offset_max=Fraction(half))
    # Between two nodes that are not the reference, both fits' errors add up.
    assert _clock_error([fit("a", 100), fit("b", 300), fit("c", 200)]) == 500
    assert _clock_error([fit("a", 100)]) == 100
    # A node nothing aligns has no latencies given: it does not count.
    assert _clock_error([fit("a", 100), identity(Quality.NO_DATA, "client", "z")]) == 100
    # An offset bounded on one side only: nothing can be promised.
    one_sided = dataclasses.replace(fit("b", 0, Quality.ONE_SIDED), ref_offset_max=None)
    assert _clock_error([fit("a", 100), one_sided]) is None
    assert _clock_error([]) is None
