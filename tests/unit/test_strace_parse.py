"""The strace tracer: its command line, its clock conversion (and the `clocks`
program), and its parser on traces captured from real guests (Linux 5.10 with
strace 5.10, Linux 6.1 with strace 6.1; tests/fixtures/strace/capture.py
recorded them).

Each fixture RUN-SIDE.strace is strace's raw output, RUN-SIDE.strace.clocks the
guest's clocks at collection, manifest.json the commands and their outcome.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lab.events import Event, Kind, SocketId
from lab.programs import build_program
from lab.ssh import NodeSession
from lab.tracers.strace import (
    ClockSample,
    StraceError,
    clocks_file,
    collect_strace,
    install_clocks,
    parse_clocks,
    parse_strace,
    read_clocks,
    read_clocks_file,
    realtime_to_monotonic,
    seconds_to_ns,
    syscall_set,
    wrap,
)
from lab.tracers.strace.syntax import annotated, descriptor, socket_id, split_call

if TYPE_CHECKING:
    from conftest import FakeGuest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "strace"
KERNELS = ["linux-5.10", "linux-6.1"]
TRACES = sorted(f"{p.parent.name}/{p.stem}" for p in FIXTURES.glob("linux-*/*.strace"))
SOCKET_CALLS = {"socket", "setsockopt", "getsockopt", "bind", "listen", "accept", "accept4",
                "connect", "sendto", "recvfrom", "shutdown", "close"}
SERVER_CLASSIC = ["socket", "setsockopt", "bind", "listen", "accept", "recvfrom", "sendto",
                  "close", "close"]
CLIENT_CLASSIC = ["socket", "connect", "sendto", "recvfrom", "close"]
ZERO = ClockSample(realtime_ns=0, monotonic_ns=0)


@cache
def manifest(kernel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / kernel / "manifest.json").read_text())
    return data


@cache
def events(kernel: str, name: str) -> list[Event]:
    trace = FIXTURES / kernel / f"{name}.strace"
    result = parse_strace(trace.read_text().splitlines(), node=name.split("-")[1],
                          kernel=manifest(kernel)["kernel"], clocks=read_clocks_file(trace))
    assert (result.unparsed, result.unparsed_samples) == (0, [])
    return result.events


def calls(evs: list[Event], kind: Kind, comm: str, names: set[str] = SOCKET_CALLS) -> list[Event]:
    return [e for e in evs if e.kind == kind and e.comm == comm and e.name in names]


def four(sock: SocketId | None) -> tuple[Any, ...]:
    assert sock is not None
    return sock.saddr, sock.sport, sock.daddr, sock.dport


# --- every fixture -------------------------------------------------------------


@pytest.mark.parametrize("trace", TRACES)
def test_every_line_of_every_fixture_is_understood(trace: str) -> None:
    kernel, name = trace.split("/")
    text = (FIXTURES / kernel / f"{name}.strace").read_text().splitlines()
    result = parse_strace(text, node="n", kernel="k", clocks=read_clocks_file(
        FIXTURES / kernel / f"{name}.strace"))
    assert (result.unparsed, result.unparsed_samples) == (0, [])
    calls_seen = sum(1 for line in text if "resumed>" not in line and " +++" not in line
                     and " --- " not in line)
    entries = [e for e in result.events if e.kind == Kind.SYSCALL_ENTRY]
    exits = [e for e in result.events if e.kind == Kind.SYSCALL_EXIT]
    assert len(entries) == calls_seen
    assert len(entries) - len(exits) == result.unfinished  # exit_group, and only it
    never_returned = {e.name for e in entries} - {e.name for e in exits}
    assert never_returned <= {"exit_group"}
    assert [e.ts for e in result.events] == sorted(e.ts for e in result.events)
    assert {e.tracer for e in result.events} == {"strace"}
    assert manifest(kernel)["runs"][name]["clocks"] == read_clocks_file(
        FIXTURES / kernel / f"{name}.strace").line()


@pytest.mark.parametrize("trace", TRACES)
def test_events_round_trip_through_json(trace: str) -> None:
    kernel, name = trace.split("/")
    for e in events(kernel, name):
        assert Event.from_json(e.to_json()) == e


# --- the classic sequences, and the 4-tuple ---------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("run", ["replyhi", "replyhi6"])
def test_the_classic_sequence_on_both_sides(kernel: str, run: str) -> None:
    server, client = events(kernel, f"{run}-server"), events(kernel, f"{run}-client")
    for kind in (Kind.SYSCALL_ENTRY, Kind.SYSCALL_EXIT):
        assert [e.name for e in calls(server, kind, "replyhi")] == SERVER_CLASSIC
        assert [e.name for e in calls(client, kind, "hello")] == CLIENT_CLASSIC


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("run", "family", "server", "client"), [
    ("replyhi", "inet", "10.0.1.10", "10.0.1.1"),
    ("replyhi6", "inet6", "fd00:0:0:1::10", "fd00:0:0:1::1"),
])
def test_the_four_tuple_on_connected_socket_calls(kernel: str, run: str, family: str,
                                                 server: str, client: str) -> None:
    srv = events(kernel, f"{run}-server")
    accepted = next(e for e in srv if e.name == "accept" and e.kind == Kind.SYSCALL_EXIT)
    assert accepted.ret == 4 and accepted.sock is not None
    assert (accepted.sock.fd, accepted.sock.proto, accepted.sock.family) == (4, "tcp", family)
    tuple_ = four(accepted.sock)
    assert tuple_[:3] == (server, 7777 + (run == "replyhi6"), client)
    on_connection = [e for e in srv if e.args.get("fd") == 4 and e.comm == "replyhi"]
    assert {e.name for e in on_connection} == {"recvfrom", "sendto", "close"}
    for e in on_connection:
        assert e.sock is not None and e.sock.fd == 4 and four(e.sock) == tuple_
    # The listening socket: its local side only.
    listening = next(e for e in srv if e.name == "accept" and e.kind == Kind.SYSCALL_ENTRY)
    assert four(listening.sock) == (server, tuple_[1], None, None)
    assert listening.args == {"fd": 3}  # the peer address is known at the exit only
    assert accepted.args == {"fd": 3, "upeer_sockaddr": (
        f"{client}:{tuple_[3]}" if family == "inet" else f"[{client}]:{tuple_[3]}")}
    # The client sees the same connection from its end.
    cli = events(kernel, f"{run}-client")
    for e in cli:
        if e.name in ("sendto", "recvfrom") and e.comm == "hello":
            assert four(e.sock) == (tuple_[2], tuple_[3], tuple_[0], tuple_[1])


@pytest.mark.parametrize("kernel", KERNELS)
def test_socket_arguments_by_the_kernel_names(kernel: str) -> None:
    srv = events(kernel, "replyhi-server")

    def entry(name: str) -> Event:
        return next(e for e in srv if e.name == name and e.kind == Kind.SYSCALL_ENTRY)

    assert entry("socket").args == {"family": "AF_INET", "type": "SOCK_STREAM",
                                    "protocol": "IPPROTO_TCP"}
    assert entry("socket").sock is None
    created = next(e for e in srv if e.name == "socket" and e.kind == Kind.SYSCALL_EXIT)
    assert (created.ret, created.sock) == (3, SocketId(fd=3, proto="tcp", family="inet"))
    assert entry("setsockopt").args == {"fd": 3, "level": "SOL_SOCKET",
                                        "optname": "SO_REUSEADDR", "optval": 1, "optlen": 4}
    assert entry("bind").args == {"fd": 3, "umyaddr": "10.0.1.10:7777", "addrlen": 16}
    assert entry("listen").args == {"fd": 3, "backlog": 1024}
    assert entry("recvfrom").args == {"fd": 4, "size": 63, "flags": 0}
    assert entry("sendto").args == {"fd": 4, "len": 2, "flags": "MSG_NOSIGNAL", "addr_len": 0}
    sent = next(e for e in srv if e.name == "sendto" and e.kind == Kind.SYSCALL_EXIT)
    assert sent.ret == 2
    # Descriptors that are not sockets carry no socket identity.
    write = next(e for e in srv if e.name == "write" and e.comm == "replyhi")
    assert write.args["fd"] == 1 and write.sock is None


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("run", "family", "server", "client"), [
    ("udp", "inet", "10.0.1.10:7779", "10.0.1.1"),
    ("udp6", "inet6", "[fd00:0:0:1::10]:7784", "[fd00:0:0:1::1]"),
])
def test_udp_datagrams_name_their_peer(kernel: str, run: str, family: str, server: str,
                                       client: str) -> None:
    srv, cli = events(kernel, f"{run}-server"), events(kernel, f"{run}-client")
    count = 3 if run == "udp" else 2
    received = calls(srv, Kind.SYSCALL_EXIT, "udpecho", {"recvfrom"})
    assert len(received) == count
    for e in received:
        assert e.sock is not None and (e.sock.proto, e.sock.family) == ("udp", family)
        assert e.args["addr"].startswith(client + ":")
        assert e.sock.sport == int(server.rsplit(":", 1)[1]) and e.sock.daddr is None
    sent = calls(cli, Kind.SYSCALL_ENTRY, "udpsend", {"sendto"})
    assert [e.args["addr"] for e in sent] == [server] * count
    assert [e.args["len"] for e in sent] == [6] * count  # "ping N"
    # Once the first datagram bound it, the client's socket shows its local port.
    port = int(received[0].args["addr"].rsplit(":", 1)[1])
    later = calls(cli, Kind.SYSCALL_ENTRY, "udpsend", {"recvfrom", "close"})
    assert {e.sock.sport for e in later if e.sock} == {port}


@pytest.mark.parametrize("kernel", KERNELS)
def test_concurrent_connections_each_with_its_tuple(kernel: str) -> None:
    cli, srv = events(kernel, "concurrent-client"), events(kernel, "concurrent-server")
    connects = calls(cli, Kind.SYSCALL_EXIT, "concurrent", {"connect"})
    assert [(e.ret, e.args["errno"]) for e in connects] == [(-115, "EINPROGRESS")] * 5
    assert [e.sock.fd for e in connects if e.sock] == [3, 4, 5, 6, 7]
    sockets = calls(cli, Kind.SYSCALL_EXIT, "concurrent", {"socket"})
    assert [e.args["type"] for e in sockets] == ["SOCK_STREAM|SOCK_NONBLOCK"] * 5
    checked = calls(cli, Kind.SYSCALL_EXIT, "concurrent", {"getsockopt"})
    assert [e.args["optval"] for e in checked] == [0] * 5  # SO_ERROR: every connect worked
    sends = calls(cli, Kind.SYSCALL_ENTRY, "concurrent", {"sendto"})
    client_ports = [e.sock.sport for e in sends if e.sock]
    assert len(set(client_ports)) == 5
    accepted = calls(srv, Kind.SYSCALL_EXIT, "replyhi", {"accept"})
    assert sorted(e.sock.dport for e in accepted if e.sock) == sorted(client_ports)
    assert {four(e.sock)[:3] for e in accepted} == {("10.0.1.10", 7780, "10.0.1.1")}
    polls = calls(cli, Kind.SYSCALL_ENTRY, "concurrent", {"poll"})
    assert polls and polls[0].args == {"nfds": 5, "timeout_msecs": 30000}


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_refused_connection_is_an_error_return(kernel: str) -> None:
    cli = events(kernel, "refused-client")
    entry, exit_ = calls(cli, Kind.SYSCALL_ENTRY, "hello", {"connect"}) + calls(
        cli, Kind.SYSCALL_EXIT, "hello", {"connect"})
    assert exit_.ret == -111 and exit_.args["errno"] == "ECONNREFUSED"
    assert "errno" not in entry.args and entry.ret is None
    assert entry.args["uservaddr"] == exit_.args["uservaddr"] == "10.0.1.10:7781"
    assert exit_.sock == SocketId(fd=3, proto="tcp", family="inet")  # never got a tuple
    last = next(e for e in reversed(cli) if e.name == "exit_group")
    assert (last.kind, last.args) == (Kind.SYSCALL_ENTRY, {"error_code": 1})
    assert manifest(kernel)["runs"]["refused-client"]["exit"] == 1


# --- processes: unfinished/resumed, comm, pid ----------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_unfinished_and_resumed_calls_pair_up(kernel: str) -> None:
    trace = FIXTURES / kernel / "local-server.strace"
    lines = trace.read_text().splitlines()
    clocks = read_clocks_file(trace)
    evs = events(kernel, "local-server")
    # Each thread alternates entry and exit, however the threads interleave.
    open_call: dict[int, str] = {}
    for e in evs:
        if e.kind == Kind.SYSCALL_ENTRY:
            assert e.tid not in open_call, f"{e.tid} entered {e.name} inside {open_call}"
            open_call[e.tid] = e.name
        else:
            assert open_call.pop(e.tid) == e.name
    assert set(open_call.values()) == {"exit_group"}
    # replyhi's first accept waits while the other processes run: the entry is at
    # the unfinished line, the exit at the resumed one, and it returns the new socket.
    begun = next(i for i, line in enumerate(lines) if " accept(" in line)
    ended = next(i for i, line in enumerate(lines) if "<... accept resumed>" in line)
    assert lines[begun].endswith("<unfinished ...>") and ended > begun + 5

    def at(line: str) -> int:
        return realtime_to_monotonic(seconds_to_ns(line.split()[1]), clocks)

    entry = next(e for e in evs if e.name == "accept")
    exit_ = next(e for e in evs if e.name == "accept" and e.kind == Kind.SYSCALL_EXIT)
    assert (entry.kind, entry.ts, exit_.ts) == (Kind.SYSCALL_ENTRY, at(lines[begun]),
                                                at(lines[ended]))
    between = evs[evs.index(entry) + 1:evs.index(exit_)]
    assert {e.comm for e in between} >= {"sleep", "sh", "hello"}
    assert exit_.ret == 4 and exit_.sock is not None and exit_.sock.fd == 4
    assert exit_.args["upeer_sockaddr"] == f"[fd00:0:0:1::10]:{exit_.sock.dport}"
    assert four(exit_.sock)[:3] == ("fd00:0:0:1::10", 7783, "fd00:0:0:1::10")
    # Both ends of the connection are in this one trace.
    hello = [e for e in evs if e.comm == "hello" and e.name == "sendto"]
    assert four(hello[0].sock) == (exit_.sock.daddr, exit_.sock.dport, exit_.sock.saddr,
                                   exit_.sock.sport)
    # A call resumed with more arguments gets all of them, on both of its events.
    resumed_recv = [e for e in evs if e.name == "recvfrom" and e.comm == "replyhi"]
    assert all(e.args == {"fd": 4, "size": 63, "flags": 0} for e in resumed_recv)


@pytest.mark.parametrize("kernel", KERNELS)
def test_comm_and_pid_follow_exec_fork_and_prctl(kernel: str) -> None:
    evs = events(kernel, "local-server")
    first = evs[0]
    assert (first.name, first.kind, first.comm) == ("execve", Kind.SYSCALL_ENTRY, "strace")
    assert (evs[1].name, evs[1].kind, evs[1].comm) == ("execve", Kind.SYSCALL_EXIT, "sh")
    assert first.args == {"filename": "/bin/sh"}
    shell = first.tid
    forks = [e.ret for e in evs if e.name == "clone" and e.kind == Kind.SYSCALL_EXIT]
    assert len(forks) == 3  # replyhi, sleep, hello
    comms: dict[int, set[str]] = {}
    for e in evs:
        assert e.pid == e.tid  # processes, no threads
        comms.setdefault(e.tid, set()).add(e.comm)
    assert comms[shell] == {"strace", "sh"}
    names = [comms[tid] for tid in forks]
    assert {"sh", "replyhi"} in names and {"sh", "hello"} in names
    # busybox runs sleep as /proc/self/exe ("exe"), then renames itself with prctl.
    assert {"sh", "exe", "sleep"} in names


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_system_call_set_keeps_the_process_calls(kernel: str) -> None:
    line = manifest(kernel)["runs"]["network-client"]["wrapped"]
    assert "-e trace=%network,execve,execveat,clone,clone3,fork,vfork" in line
    cli = events(kernel, "network-client")
    assert {e.name for e in cli} == {"execve", "socket", "connect", "sendto", "recvfrom"}
    assert {e.comm for e in cli if e.name != "execve"} == {"hello"}
    srv = events(kernel, "network-server")
    assert [e.name for e in calls(srv, Kind.SYSCALL_EXIT, "replyhi")] == [
        "socket", "setsockopt", "bind", "listen", "accept", "recvfrom", "sendto", "accept",
        "recvfrom", "sendto"]


def test_names_are_the_kernels() -> None:
    names = {e.name for e in events("linux-5.10", "replyhi-server")}
    assert {"newstat", "newuname"} <= names and not {"stat", "uname"} & names
    assert "newfstatat" in {e.name for e in events("linux-6.1", "replyhi-server")}


# --- lines the captures do not have ---------------------------------------------------


def test_sendmsg_and_recvmsg_name_their_datagram_s_peer() -> None:
    """msg_name: where sendmsg() sends to, and (on the return) where recvmsg()'s came from."""
    result = parse_strace([
        '150   1.000001 sendmsg(3<UDP:[0.0.0.0:5000]>, {msg_name={sa_family=AF_INET, '
        'sin_port=htons(7777), sin_addr=inet_addr("10.0.1.10")}, msg_namelen=16, '
        'msg_iov=[{iov_base="hello", iov_len=5}], msg_iovlen=1, msg_controllen=0, '
        'msg_flags=0}, 0) = 5 <0.000030>',
        '150   1.000101 recvmsg(3<UDP:[0.0.0.0:5000]>, {msg_name={sa_family=AF_INET6, '
        'sin6_port=htons(7777), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "fd00::10", '
        '&sin6_addr), sin6_scope_id=0}, msg_namelen=28, msg_iov=[{iov_base="hi", '
        'iov_len=64}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 2 <0.000030>'],
        node="n", kernel="k", clocks=ZERO)
    assert [(e.name, e.kind, e.args.get("addr")) for e in result.events] == [
        ("sendmsg", Kind.SYSCALL_ENTRY, "10.0.1.10:7777"),
        ("sendmsg", Kind.SYSCALL_EXIT, "10.0.1.10:7777"),
        ("recvmsg", Kind.SYSCALL_ENTRY, None),  # not known yet
        ("recvmsg", Kind.SYSCALL_EXIT, "[fd00::10]:7777")]


def test_a_call_whose_end_strace_could_not_read_keeps_its_entry() -> None:
    """`= ? <unavailable>`: the registers could not be read as it ended."""
    result = parse_strace([
        '144   1.000001 read(3<TCP:[10.0.1.1:40000->10.0.1.10:7777]>, "x", 1) = ? <unavailable>',
        "144   1.000100 exit_group(0)         = ?"], node="n", kernel="k", clocks=ZERO)
    assert (result.unparsed, result.unfinished) == (0, 2)
    assert [(e.name, e.kind) for e in result.events] == [
        ("read", Kind.SYSCALL_ENTRY), ("exit_group", Kind.SYSCALL_ENTRY)]


def test_threads_share_their_creators_pid_and_name() -> None:
    lines = [
        '300   1.000001 execve("/opt/socklab/bin/srv", ["srv"], 0x7ffd /* 1 var */) = 0 <0.000010>',
        "300   1.000100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|"
        "CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, "
        "child_tid=0x7f00, parent_tid=0x7f00, exit_signal=0, stack=0x7f00, "
        "stack_size=0x7fff00, tls=0x7f00} <unfinished ...>",
        "301   1.000200 accept4(3<TCP:[0.0.0.0:80]>, NULL, NULL, SOCK_CLOEXEC <unfinished ...>",
        "300   1.000300 <... clone3 resumed> => {parent_tid=[301]}, 88) = 301 <0.000200>",
        "300   1.000400 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|"
        "SIGCHLD, child_tidptr=0x7f00) = 302 <0.000050>",
        "302   1.000500 exit_group(0)         = ?",
        "302   1.000600 +++ exited with 0 +++",
        "300   1.000700 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=302} ---",
    ]
    result = parse_strace(lines, node="n", kernel="k", clocks=ZERO, comm="sh")
    assert (result.unparsed, result.unfinished) == (0, 2)  # accept4 and exit_group
    by_tid = {e.tid: (e.pid, e.comm) for e in result.events}
    assert by_tid == {300: (300, "srv"), 301: (300, "srv"), 302: (302, "srv")}
    assert result.events[0].comm == "sh"  # before its execve returned
    clone3 = [e for e in result.events if e.name == "clone3"]
    assert [e.ret for e in clone3] == [None, 301]
    for e in clone3:  # an unfinished call's events both carry all its arguments
        assert e.args["size"] == 88 and "|CLONE_THREAD|" in e.args["flags"]
    accept = next(e for e in result.events if e.name == "accept4")
    assert accept.args == {"fd": 3, "flags": "SOCK_CLOEXEC"}
    assert four(accept.sock) == ("0.0.0.0", 80, None, None)


def test_interrupted_killed_and_detached_calls() -> None:
    lines = [
        "400   2.000000 accept(3<TCPv6:[[::]:7777]>, 0x7ffc, [28] <unfinished ...>",
        "401   2.100000 recvfrom(4<UDP:[10.0.1.10:53]>, <detached ...>",
        "400   2.200000 <... accept resumed>) = ? ERESTARTSYS (To be restarted if SA_RESTART "
        "is set) <0.200000>",
        "400   2.300000 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=1} ---",
        "400   2.400000 read(0</dev/null<char 1:3>>,  <unfinished ...>)  = ?",
        "400   2.500000 restart_syscall(<... resuming interrupted read ...>) = 0 <0.000100>",
        "403   2.550000 connect(5<TCP:[9]>, {sa_family=AF_INET, sin_port=htons(80), "
        'sin_addr=inet_addr("10.0.1.10")}, 16 <unfinished ...>',
        "400   2.600000 +++ killed by SIGKILL +++",
        "403   2.650000 <... connect resumed> <unfinished ...>) = ?",
        "403   2.660000 +++ killed by SIGKILL +++",
        "402   2.700000 +++ superseded by execve in pid 400 +++",
    ]
    result = parse_strace(lines, node="n", kernel="k", clocks=ZERO, comm="srv")
    assert (result.unparsed, result.unparsed_samples) == (0, [])
    accept_exit = next(e for e in result.events if e.kind == Kind.SYSCALL_EXIT)
    assert (accept_exit.name, accept_exit.ret, accept_exit.args["errno"]) == (
        "accept", -512, "ERESTARTSYS")
    assert accept_exit.ts == 2_200_000_000 and four(accept_exit.sock) == ("::", 7777, None, None)
    recv = next(e for e in result.events if e.name == "recvfrom")
    assert recv.kind == Kind.SYSCALL_ENTRY and recv.sock == SocketId(
        fd=4, proto="udp", family="inet", saddr="10.0.1.10", sport=53)
    assert [e.name for e in result.events if e.kind == Kind.SYSCALL_EXIT] == [
        "accept", "restart_syscall"]
    read = next(e for e in result.events if e.name == "read")
    assert read.args == {"fd": 0} and read.sock is None
    connect = next(e for e in result.events if e.name == "connect")
    assert connect.args == {"fd": 5, "uservaddr": "10.0.1.10:80", "addrlen": 16}
    assert result.unfinished == 3  # recvfrom (detached), read and connect (killed)


def test_lines_it_cannot_parse_are_counted_and_sampled() -> None:
    text = (FIXTURES / "linux-6.1" / "replyhi-client.strace").read_text().splitlines()
    garbage = ["this is not a strace line",
               "141   1795614176.0 <... connect resumed>) = 0 <0.000100>",  # never began
               "141   1795614176.1 connect(3<TCP:[1]>, {sa_family=AF_INET",  # cut off
               "141   1795614176.2 close(3) = what"]
    result = parse_strace([*text[:20], *garbage, *text[20:]], node="c", kernel="k",
                          clocks=ZERO)
    assert result.unparsed == 4 and result.unparsed_samples == garbage
    assert len(result.events) == len(parse_strace(text, node="c", kernel="k",
                                                  clocks=ZERO).events)


# --- pieces -------------------------------------------------------------------------


@pytest.mark.parametrize(("what", "expected"), [
    ("TCP:[8264]", SocketId(fd=5, proto="tcp", family="inet")),
    ("TCPv6:[10481]", SocketId(fd=5, proto="tcp", family="inet6")),
    ("TCP:[10.0.1.10:7777]", SocketId(fd=5, proto="tcp", family="inet", saddr="10.0.1.10",
                                      sport=7777)),
    ("TCP:[10.0.1.1:40312->10.0.1.10:7777]", SocketId(
        fd=5, proto="tcp", family="inet", saddr="10.0.1.1", sport=40312, daddr="10.0.1.10",
        dport=7777)),
    ("TCPv6:[[fd00::1]:40312->[fd00::10]:7777]", SocketId(
        fd=5, proto="tcp", family="inet6", saddr="fd00::1", sport=40312, daddr="fd00::10",
        dport=7777)),
    ("UDPv6:[[::]:55201]", SocketId(fd=5, proto="udp", family="inet6", saddr="::",
                                    sport=55201)),
    ("UDP:[10.0.1.1:5000->10.0.1.10:7779]", SocketId(
        fd=5, proto="udp", family="inet", saddr="10.0.1.1", sport=5000, daddr="10.0.1.10",
        dport=7779)),
    ("UNIX-STREAM:[1234->1235]", SocketId(fd=5)),
    ("socket:[1234]", SocketId(fd=5)),
    ("pipe:[8247]", None),
    ("/dev/null<char 1:3>", None),
    ("anon_inode:[eventpoll]", None),
])
def test_socket_annotations(what: str, expected: SocketId | None) -> None:
    assert socket_id(5, what) == expected


def test_argument_lists_split_at_top_level_commas_only() -> None:
    text = ('3<TCP:[10.0.1.10:7777->10.0.1.1:41018]>, {sa_family=AF_INET, sin_port=htons(1), '
            'sin_addr=inet_addr("10.0.1.1")}, [128->16], "a,b)\\"c"..., 0</x<char 1:3>>, '
            '0x7ffe /* 9 vars */) = 4<TCP:[1.2.3.4:5->6.7.8.9:10]> <0.1>')
    split = split_call(text)
    assert split is not None
    args, after = split
    assert args == ["3<TCP:[10.0.1.10:7777->10.0.1.1:41018]>",
                    '{sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr("10.0.1.1")}',
                    "[128->16]", '"a,b)\\"c"...', "0</x<char 1:3>>", "0x7ffe /* 9 vars */"]
    assert after == " = 4<TCP:[1.2.3.4:5->6.7.8.9:10]> <0.1>"
    assert annotated("4<TCP:[1.2.3.4:5->6.7.8.9:10]> (x)") == (
        "4", "TCP:[1.2.3.4:5->6.7.8.9:10]", " (x)")
    assert descriptor("0</x<char 1:3>>") is not None
    assert descriptor("[128->16]") is None
    assert split_call("3, {unbalanced) = 0") is None


# --- the clock ----------------------------------------------------------------------


def test_clock_conversion_is_exact() -> None:
    clocks = parse_clocks("1795614153460196715 8469641614\n")
    assert clocks == ClockSample(realtime_ns=1795614153460196715, monotonic_ns=8469641614)
    assert clocks.offset_ns == 1795614144990555101
    assert seconds_to_ns("1795614153.096630") == 1795614153096630000  # no float rounding
    assert seconds_to_ns("0.000042") == 42000
    assert realtime_to_monotonic(seconds_to_ns("1795614153.460196715"), clocks) == 8469641614
    assert realtime_to_monotonic(1795614153096630000, clocks) == 8106074899
    for bad in ("", "1 2 3", "-1 5", "12.5 3"):
        with pytest.raises(ValueError):
            parse_clocks(bad)
    with pytest.raises(ValueError):
        seconds_to_ns("nan")


@pytest.mark.parametrize("kernel", KERNELS)
def test_fixture_times_are_the_guests_monotonic_clock(kernel: str) -> None:
    trace = FIXTURES / kernel / "replyhi-client.strace"
    clocks = read_clocks_file(trace)
    assert clocks_file(trace).name == "replyhi-client.strace.clocks"
    first_line = trace.read_text().splitlines()[0]
    evs = events(kernel, "replyhi-client")
    assert evs[0].ts == seconds_to_ns(first_line.split()[1]) - clocks.offset_ns
    # The guest booted seconds before; collection came after the last event.
    assert 10**9 < evs[0].ts < evs[-1].ts < clocks.monotonic_ns < 120 * 10**9
    # An exit is its entry plus the time strace measured in the call (-T).
    connect = [e for e in evs if e.name == "connect"]
    duration = seconds_to_ns(next(line for line in trace.read_text().splitlines()
                                  if " connect(" in line).rsplit("<", 1)[1].rstrip(">"))
    assert connect[1].ts - connect[0].ts == duration


# --- the command line ---------------------------------------------------------------


def test_wrap_quotes_the_command_for_the_remote_shell() -> None:
    command = """/opt/socklab/bin/hello 10.0.1.10 7777 1 && echo "it's done" | cat > '/tmp/x y'"""
    line = wrap(command, "/tmp/socklab/strace 1.txt", None)
    assert shlex.split(line) == ["strace", "-f", "-ttt", "-T", "-yy", "-s", "64", "-o",
                                 "/tmp/socklab/strace 1.txt", "--", "sh", "-c", command]


def test_wrap_adds_the_process_calls_to_a_system_call_set() -> None:
    line = wrap("true", "/tmp/o", ["%network", "read", "execve"])
    words = shlex.split(line)
    assert words[words.index("-e") + 1] == (
        "trace=%network,read,execve,execveat,clone,clone3,fork,vfork")
    assert syscall_set(["!write", "read"]) == ["!write", "read"]  # a negated set: as is
    with pytest.raises(ValueError):
        syscall_set([" "])
    with pytest.raises(ValueError):
        wrap("  ", "/tmp/o", None)


async def test_the_clocks_program_prints_both_clocks(tmp_path: Path) -> None:
    binary = await build_program("clocks", tmp_path)
    before = time.time_ns(), time.monotonic_ns()
    out = subprocess.run([binary], capture_output=True, text=True, check=True, timeout=30)
    after = time.time_ns(), time.monotonic_ns()
    sample = parse_clocks(out.stdout)
    assert before[0] <= sample.realtime_ns <= after[0]
    assert before[1] <= sample.monotonic_ns <= after[1]
    wrong = subprocess.run([binary, "x"], capture_output=True, text=True, timeout=30)
    assert (wrong.returncode, wrong.stdout) == (2, "") and "usage: clocks" in wrong.stderr


# --- install and collect, through the in-process SSH server (a real local shell) ----------


@pytest.fixture
async def session(fake_guest: FakeGuest) -> AsyncIterator[NodeSession]:
    async with NodeSession.open("n1", fake_guest.endpoint, fake_guest.client_key) as s:
        yield s


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed here")
async def test_wrap_run_collect_and_parse(session: NodeSession, fake_guest: FakeGuest,
                                          tmp_path: Path) -> None:
    clocks = await install_clocks(session, tmp_path / "cache",
                                  remote=str(fake_guest.home / "bin" / "clocks"))
    before = await read_clocks(session, clocks)
    remote = str(fake_guest.home / "trace.txt")
    result = await session.run(wrap("printf 'a b' > out.txt; exit 3", remote, None))
    assert result.exit_status == 3 and (fake_guest.home / "out.txt").read_text() == "a b"
    local = tmp_path / "raw" / "strace-n1.txt"
    capture = await collect_strace(session, remote, local, clocks=clocks)
    assert not Path(remote).exists() and capture.size == local.stat().st_size > 0
    assert read_clocks_file(local) == capture.clocks
    parsed = parse_strace(local.read_text().splitlines(), node="n1", kernel="k",
                          clocks=capture.clocks)
    assert (parsed.unparsed, parsed.unparsed_samples) == (0, [])
    assert before.monotonic_ns < parsed.events[0].ts < capture.clocks.monotonic_ns
    execs = [e for e in parsed.events if e.name == "execve"]
    assert [(e.kind, e.comm) for e in execs[:2]] == [(Kind.SYSCALL_ENTRY, "strace"),
                                                     (Kind.SYSCALL_EXIT, "sh")]
    exits = [e for e in parsed.events if e.name == "exit_group"]
    assert exits[-1].args == {"error_code": 3}


async def test_collect_says_what_is_missing(session: NodeSession, fake_guest: FakeGuest,
                                            tmp_path: Path) -> None:
    with pytest.raises(StraceError, match=r"no strace output /nonexistent/trace\.txt"):
        await collect_strace(session, "/nonexistent/trace.txt", tmp_path / "t.txt")
    remote = fake_guest.home / "trace.txt"
    remote.write_text("1 1.5 getpid() = 1 <0.000001>\n")
    with pytest.raises(StraceError, match="is not on the node") as caught:
        await collect_strace(session, str(remote), tmp_path / "t.txt",
                             clocks=str(fake_guest.home / "no-clocks"))
    assert caught.value.hint and "install_clocks" in caught.value.hint
    assert (tmp_path / "t.txt").read_text() == remote.read_text()  # the copy is kept
    assert remote.exists()  # and the node's file too, until a collection succeeds
