"""connections.json on traces captured from real guests."""

from __future__ import annotations

import pytest

from lab.correlate.correlation import correlate
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
