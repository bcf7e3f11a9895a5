"""connections.json on traces captured from real guests."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from lab.correlate.correlation import correlate
from lab.correlate.synthetic import synthetic_run
from lab.events import Event, Kind
from lab.export.connections import connections_report
from tests.unit.test_correlate_pairing import ftrace_run, strace_run


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_replyhi_bytes_each_way_and_lifecycle(kernel: str) -> None:
    result = correlate(ftrace_run(kernel, "replyhi"))
    report = connections_report(result)
    assert (report["paired"], report["unpaired"]) == (1, 0)
    # How far its latencies may be off, as the terminal says it.
    assert report["clock_error_ns"] == result.summary.clock_error_ns > 0
    client, server = report["connections"][0]["ends"]
    # "hello" one way, "hi" the other, seen identically from both ends.
    assert (client["bytes_sent"], client["bytes_received"]) == (5, 2)
    assert (server["bytes_sent"], server["bytes_received"]) == (2, 5)
    assert (client["local"], client["remote"]) == (server["remote"], server["local"])
    client_steps = [m["event"] for m in client["lifecycle"]]
    server_steps = [m["event"] for m in server["lifecycle"]]
    assert client_steps[:4] == ["socket", "connect", "TCP_SYN_SENT", "TCP_ESTABLISHED"]
    # The server's socket is born in SYN_RECV, cloned from the listener (which stays in
    # LISTEN) as the handshake's last ACK comes in.
    assert server_steps[:2] == ["TCP_SYN_RECV", "TCP_ESTABLISHED"]
    assert "accept" in server_steps and server_steps[-1] == "TCP_CLOSE"
    assert report["unattributed"] == [
        {"reason": "listening or unconnected socket (no peer)", "events": 26}]


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_concurrent_connections_all_paired_with_their_bytes(kernel: str) -> None:
    report = connections_report(correlate(strace_run(kernel, "concurrent")))
    assert (report["paired"], report["unpaired"]) == (5, 0)
    for connection in report["connections"]:
        client, server = connection["ends"]
        assert client["bytes_sent"] == server["bytes_received"] > 0
        assert server["bytes_sent"] == client["bytes_received"] > 0


def test_bytes_received_are_those_taken_from_the_socket() -> None:
    """A receive that failed (EAGAIN) or peeked (MSG_PEEK) took none: counted, bytes
    would be more than were sent, and the send matched to the wrong receive."""
    events = synthetic_run(1).events
    read = next(e for e in events if e.node == "server" and e.name == "read"
                and e.kind is Kind.SYSCALL_EXIT and e.ret)
    def receive(at: int, flags: int, ret: int) -> list[Event]:
        entry = replace(read, ts=at, kind=Kind.SYSCALL_ENTRY, name="recvfrom",
                        args={"fd": 4, "flags": flags}, ret=None)
        return [entry, replace(entry, ts=at + 100, kind=Kind.SYSCALL_EXIT, args={}, ret=ret)]
    tries = receive(read.ts - 3_000, 0x40, -11) + receive(read.ts - 2_000, 0x2, read.ret or 0)
    report = connections_report(correlate(sorted(events + tries, key=lambda e: e.ts)))
    [connection] = report["connections"]
    client, server = connection["ends"]
    assert client["bytes_sent"] == server["bytes_received"] == 5
    [request] = [t for t in connection["transfers"] if t["to"] == "server"]
    assert [r["name"] for r in request["receives"]] == ["read"]
