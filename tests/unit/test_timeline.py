"""timeline.txt from real captures: both sides merged on the client's clock."""

from __future__ import annotations

import re

import pytest

from lab.correlate.correlation import correlate
from lab.correlate.sync.fit import duration
from lab.events import Event, Kind
from lab.export.arguments import shown
from lab.export.timeline import timeline
from tests.unit.test_correlate_pairing import ftrace_nodes, ftrace_run


def test_classic_calls_of_both_sides_in_causal_order() -> None:
    events = [e for e in ftrace_run("linux-6.1", "replyhi") if e.comm in ("hello", "replyhi")]
    result = correlate(events, reference="client")
    text = timeline(result)
    lines = text.splitlines()
    assert lines[0].startswith("# times in seconds on client's clock")
    assert lines[1].startswith("# server vs client:")
    events = [line for line in lines if not line.startswith("#")]
    calls = [re.sub(r"^\s*[-+]\d+\.\d+\s+", "", line) for line in events]

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
    times = [float(line.split()[0]) for line in events]
    assert times == sorted(times)


def test_a_function_probed_without_a_return_nests_nothing() -> None:
    """move_addr_to_user (entry only) inside each receive: every receive of the UDP server
    starts at the same depth, however many came before."""
    text = timeline(correlate(ftrace_nodes("linux-6.1", "udp2", ["alice", "bob", "server"])))
    receives = [line for line in text.splitlines() if " server " in line and "→ recvfrom" in line]
    assert len(receives) >= 6
    assert len({line.index("→") for line in receives}) == 1
    entered = [line for line in text.splitlines() if "move_addr_to_user(" in line]
    assert entered and all("↦ move_addr_to_user(" in line for line in entered)
    assert text.startswith("# times in seconds on ") and "↦ a function entered (its return " \
        "is not traced)" in text.splitlines()[0]


def test_a_datagram_s_source_is_shown_where_the_receive_returns_it() -> None:
    """recvfrom() is given a buffer for the source address and returns it filled: the
    address is not an argument of its entry, but what its return brought."""
    text = timeline(correlate(ftrace_nodes("linux-6.1", "udp2", ["alice", "bob", "server"])))
    alice = [line for line in text.splitlines() if " alice " in line]
    entries = [line for line in alice if "→ recvfrom(" in line or "→ udp_recvmsg(" in line]
    assert entries and not any("uaddr" in line for line in entries)
    assert any(line.endswith("← recvfrom = 6 (from 10.0.1.10:7778)") for line in alice)
    sends = [line for line in alice if "→ udp_sendmsg(" in line]
    assert sends and all("uaddr=10.0.1.10:7778" in line for line in sends)  # given


def test_arguments_read_as_in_the_classic_lab() -> None:
    """Constants by name, pointers in hex; an IPv6 4-tuple with its brackets, and a
    tracepoint's IPv4 fields of an IPv6 socket left out."""
    text = timeline(correlate(ftrace_run("linux-6.1", "replyhi6"), reference="client"))
    assert "→ socket(family=AF_INET6, type=SOCK_STREAM, protocol=IPPROTO_TCP)" in text
    assert re.search(r"→ sendto\(fd=3, buff=0x[0-9a-f]+, len=5, flags=MSG_NOSIGNAL, "
                     r"addr=NULL, addr_len=0\)", text)
    assert "→ __sys_sendto(fd=3, len=5, flags=MSG_NOSIGNAL)" in text
    assert re.search(r"accept\(fd=3, upeer_sockaddr=0x[0-9a-f]+, upeer_addrlen=0x[0-9a-f]+\)",
                     text)
    assert re.search(r"TCP_SYN_SENT  \(\[fd00:0:0:1::1\]:\d+ > \[fd00:0:0:1::10\]:7777\)",
                     text)
    destroyed = [line for line in text.splitlines() if "tcp_destroy_sock(" in line]
    assert destroyed and not any("saddr" in line or "0.0.0.0" in line for line in destroyed)


@pytest.mark.parametrize(("call", "key", "value", "text"), [
    ("socket", "type", 1 | 0o2000000, "SOCK_STREAM|SOCK_CLOEXEC"),
    ("socket", "protocol", 0, "0"),  # the family's default
    ("sendto", "flags", 0x4000 | 0x10000, "MSG_NOSIGNAL|0x10000"),  # an unnamed bit in hex
    ("recvfrom", "flags", 0, "0"),
    ("__sys_accept4", "flags", 0o4000, "SOCK_NONBLOCK"),
    ("__sys_sendto", "flags", "4000", "MSG_NOSIGNAL"),  # as x32 fetches gave it
    ("read", "count", 5, "5"),
    ("recvfrom", "addr", 0, "NULL"),
    ("inet_csk_accept", "ret", "ffff888004a8c000", "ffff888004a8c000"),
])
def test_an_argument_is_shown_by_its_meaning(call: str, key: str, value: object,
                                              text: str) -> None:
    assert shown(call, key, value) == text


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_kernel_code_run_in_a_softirq_is_marked(kernel: str) -> None:
    """The receive path runs under whatever task a packet interrupted (<idle>,
    ksoftirqd, or the program itself): the trace's context flag says which is which."""
    events = ftrace_run(kernel, "handshake")
    softirq = [e for e in events if e.irq == "softirq"]
    assert {"tcp_v4_do_rcv", "tcp_rcv_state_process", "tcp_send_ack"} <= {
        e.name for e in softirq}
    assert all(e.irq is None for e in events if e.kind.value.startswith("syscall"))
    lines = timeline(correlate(events, reference="client")).splitlines()
    # Each says the socket it worked on: a connection's, or for a SYN the listener's.
    assert any(re.search(r"<idle>\[0\] +↦ tcp_v4_do_rcv\(\)  \(10\.0\.1\.1:\d+ > "
                         r"10\.0\.1\.10:7777\)  \[softirq\]$", line) for line in lines)
    assert any(line.endswith("↦ tcp_conn_request()  (10.0.1.10:7777)  [softirq]")
               for line in lines)
    assert not any("[softirq]" in line for line in lines if "→ connect(" in line)


def test_the_head_says_how_far_the_order_across_nodes_is_known() -> None:
    result = correlate(ftrace_run("linux-6.1", "handshake"), reference="client")
    error = result.summary.clock_error_ns
    assert error is not None
    assert (f"# events of two nodes closer than {duration(error)} may have happened in "
            "either order: the clocks are aligned no better") in timeline(result).splitlines()


def test_an_error_is_shown_with_its_name() -> None:
    def event(ts: int, kind: Kind, name: str, ret: int | None = None) -> Event:
        return Event(node="client", kernel="6.1.0", tracer="ftrace", ts=ts, pid=7, tid=7,
                     comm="hello", kind=kind, name=name, ret=ret)

    text = timeline(correlate([event(1000, Kind.SYSCALL_ENTRY, "connect"),
                               event(2000, Kind.FUNC_ENTRY, "__sys_connect"),
                               event(3000, Kind.FUNC_RETURN, "__sys_connect", -111),
                               event(4000, Kind.SYSCALL_EXIT, "connect", -111),
                               event(5000, Kind.SYSCALL_EXIT, "recvfrom", -4096)]))
    assert "← __sys_connect = -111 ECONNREFUSED" in text
    assert "← connect = -111 ECONNREFUSED" in text
    assert "← recvfrom = -4096\n" in text  # not an error number: shown as it is


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_state_changes_say_what_their_states_do_not(kernel: str) -> None:
    """The server's sock is cloned from the listener at the handshake's last ACK (it is
    the connection's, not the listener's); the closer that took the last FIN goes on to
    TIME_WAIT in a time-wait sock, which the tracepoint never shows."""
    text = timeline(correlate(ftrace_run(kernel, "handshake"), reference="client"))
    [cloned] = [line for line in text.splitlines() if "TCP_LISTEN → TCP_SYN_RECV" in line]
    assert re.search(r" server .*\(10\.0\.1\.10:7777 > 10\.0\.1\.1:\d+\)  \(a new sock, "
                     r"cloned from the listener as the handshake's last ACK comes in; the "
                     r"listener stays in LISTEN\)", cloned)
    # tcp_close comes after close() returned: the socket goes as it returns.
    closes = [line for line in text.splitlines() if "↦ tcp_close()" in line]
    assert closes and all(line.endswith("(as close() returns to the program: its last "
                                        "reference to the socket went)") for line in closes)
    # (Both ends closed at once on 5.10: each goes through CLOSING.)
    waits = [line for line in text.splitlines()
             if re.search(r"TCP_(FIN_WAIT2|CLOSING) → TCP_CLOSE", line)]
    assert waits and all("(on to TIME_WAIT, in a time-wait sock the tracepoint does not "
                         "show)" in line for line in waits)
