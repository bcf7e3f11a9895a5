"""timeline.txt from real captures: both sides merged on the client's clock."""

from __future__ import annotations

import re

from lab.correlate.correlation import correlate
from lab.export.timeline import timeline
from tests.unit.test_correlate_pairing import ftrace_nodes, ftrace_run


def test_classic_calls_of_both_sides_in_causal_order() -> None:
    events = [e for e in ftrace_run("linux-6.1", "replyhi") if e.comm in ("hello", "replyhi")]
    result = correlate(events, reference="client")
    text = timeline(result)
    lines = text.splitlines()
    assert lines[0].startswith("# times in seconds on client's clock")
    assert lines[1].startswith("# server vs client:")
    calls = [re.sub(r"^\s*[-+]\d+\.\d+\s+", "", line) for line in lines[2:]]

    def at(node: str, call: str) -> int:
        return next(i for i, c in enumerate(calls) if c.startswith(node) and call in c)

    # hello's bytes reach replyhi, and "hi" comes back, in that order on one clock.
    assert at("client", "→ __sys_sendto") < at("server", "← __sys_recvfrom = 5")
    assert at("server", "→ __sys_sendto") < at("client", "← __sys_recvfrom = 2")
    # Calls nest per thread, in the classic lab's style.
    assert any(re.search(r"hello\[\d+\]\s+→ connect\(", c) for c in calls)
    assert any(re.search(r"hello\[\d+\]\s{3,}→ __sys_connect\(fd=3, uaddr=10\.0\.1\.10:7777\)", c)
               for c in calls)
    assert any("← inet_csk_accept = sock " in c for c in calls)
    times = [float(line.split()[0]) for line in lines[2:]]
    assert times == sorted(times)


def test_a_function_probed_without_a_return_nests_nothing() -> None:
    """move_addr_to_user (entry only) inside each receive: every receive of the UDP server
    starts at the same depth, however many came before."""
    text = timeline(correlate(ftrace_nodes("linux-6.1", "udp2", ["alice", "bob", "server"])))
    receives = [line for line in text.splitlines() if " server " in line and "→ recvfrom" in line]
    assert len(receives) >= 6
    assert len({line.index("→") for line in receives}) == 1
