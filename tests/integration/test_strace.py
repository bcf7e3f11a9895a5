"""The strace tracer on real guests of both kernels: replyhi and hello, each run
under strace through wrap() and collected with collect_strace()."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab.events import Event, Kind
from lab.paths import Paths
from lab.ssh import NodeSession
from lab.tracers.strace import (
    ClockSample,
    clocks_file,
    collect_strace,
    install_clocks,
    parse_strace,
    read_clocks,
    wrap,
)
from tests.integration.vmlab import replyhi_pair

pytestmark = pytest.mark.vm

SOCKET_CALLS = {"socket", "setsockopt", "bind", "listen", "accept", "connect", "sendto",
                "recvfrom", "close"}
SERVER_CLASSIC = ["socket", "setsockopt", "bind", "listen", "accept", "recvfrom", "sendto",
                  "close", "close"]
CLIENT_CLASSIC = ["socket", "connect", "sendto", "recvfrom", "close"]
OUTPUT = "/tmp/socklab-test/strace-{}.txt"


async def wait_listening(session: NodeSession, port: int) -> None:
    for _ in range(200):
        if (await session.run(f"grep -qi ':{port:04X} 00000000:0000 0A' /proc/net/tcp")).ok:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


async def straced_replyhi(lab_name: str, tmp: Path) -> dict[str, list[Event]]:
    cache = Paths.default().home / "programs"
    events: dict[str, list[Event]] = {}
    async with replyhi_pair(lab_name) as (state, server, client):
        sessions = {"server": server, "client": client}
        before: dict[str, ClockSample] = {}
        for name, session in sessions.items():
            await session.run(["mkdir", "-p", "/tmp/socklab-test"], check=True)
            await install_clocks(session, cache)
            before[name] = await read_clocks(session)
        served = asyncio.create_task(server.run(
            wrap("/tmp/replyhi 10.0.1.10 7777 1", OUTPUT.format("server"), None), timeout=60))
        await wait_listening(server, 7777)
        hello = await client.run(wrap("/tmp/hello 10.0.1.10 7777 1", OUTPUT.format("client"),
                                      ["%network", "close"]), check=True, timeout=60)
        assert hello.stdout.startswith(b"hi") and hello.stderr == b""
        assert (await served).stdout == b"replyhi: served 1 connection(s)\n"
        for name, session in sessions.items():
            local = tmp / f"strace-{name}.txt"
            capture = await collect_strace(session, OUTPUT.format(name), local)
            assert capture.clocks_file == clocks_file(local) and capture.size > 500
            assert not (await session.run(["test", "-e", OUTPUT.format(name)])).ok, \
                "the trace file is removed from the node once collected"
            result = parse_strace(local.read_text().splitlines(), node=name,
                                  kernel=state.nodes[name].kernel_release,
                                  clocks=capture.clocks)
            assert (result.unparsed, result.unparsed_samples, result.unfinished) == (
                0, [], 0 if name == "client" else 1)  # exit_group is not in %network
            events[name] = result.events
            # On the guest's monotonic clock: between two readings of it around the run.
            stamps = [e.ts for e in result.events]
            assert before[name].monotonic_ns < stamps[0] <= stamps[-1] \
                < capture.clocks.monotonic_ns
    return events


def test_hello_and_replyhi_under_strace(pair: tuple[str, str], tmp_path: Path) -> None:
    name, _ = pair
    events = asyncio.run(straced_replyhi(name, tmp_path))
    server = [e for e in events["server"] if e.comm == "replyhi" and e.name in SOCKET_CALLS]
    client = [e for e in events["client"] if e.comm == "hello" and e.name in SOCKET_CALLS]
    for kind in (Kind.SYSCALL_ENTRY, Kind.SYSCALL_EXIT):
        assert [e.name for e in server if e.kind == kind] == SERVER_CLASSIC
        assert [e.name for e in client if e.kind == kind] == CLIENT_CLASSIC
    # The connection's 4-tuple, from both ends, on every call on the connected sockets.
    accepted = next(e for e in server if e.name == "accept" and e.kind == Kind.SYSCALL_EXIT)
    assert accepted.sock is not None and accepted.ret == accepted.sock.fd
    four = (accepted.sock.saddr, accepted.sock.sport, accepted.sock.daddr, accepted.sock.dport)
    assert four[:3] == ("10.0.1.10", 7777, "10.0.1.1")
    for e in server:
        if e.sock is not None and e.sock.fd == accepted.ret and e.name != "accept":
            assert (e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport) == four
    for e in client:
        if e.name in ("sendto", "recvfrom", "close"):
            assert e.sock is not None and e.sock.proto == "tcp" and e.sock.family == "inet"
            assert (e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport) == (
                four[2], four[3], four[0], four[1])
    connect = [e for e in client if e.name == "connect"]
    assert connect[1].ret == 0 and connect[0].args["uservaddr"] == "10.0.1.10:7777"
    # One process each, named as the kernel names it, pid = tid.
    for side, comm in (("server", "replyhi"), ("client", "hello")):
        evs = events[side]
        assert len({e.pid for e in evs}) == 1 and all(e.pid == e.tid for e in evs)
        assert evs[0].comm == "strace" and evs[-1].comm == comm
