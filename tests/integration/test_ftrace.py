"""The ftrace tracer on real guests of both kernels: replyhi on the server, hello on the client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab.correlate.sockets import annotate_sockets
from lab.events import Event, Kind
from lab.tracers.ftrace import FtraceOptions, parse_trace, start_ftrace, stop_ftrace
from lab.tracers.ftrace.probes import Adjust
from tests.integration.vmlab import replyhi_pair

pytestmark = pytest.mark.vm

SERVER_CLASSIC = ["__sys_socket", "__sys_bind", "__sys_listen", "__sys_accept4",
                  "__sys_recvfrom", "__sys_sendto"]
CLIENT_CLASSIC = ["__sys_socket", "__sys_connect", "__sys_sendto", "__sys_recvfrom"]


async def traced_replyhi(lab_name: str, tmp: Path) -> dict[str, list[Event]]:
    events: dict[str, list[Event]] = {}
    async with replyhi_pair(lab_name) as (state, server, client):
        # A function the kernel lacks is reported, and the rest is traced.
        options = FtraceOptions(comms=("replyhi", "hello"),
                                functions=Adjust(add=("socklab_no_such_function",)))
        for session in (server, client):
            skipped = await start_ftrace(session, options)
            assert skipped == ["socklab_no_such_function"]  # every default probe is there
        await server.run("/tmp/replyhi 10.0.1.10 7777 1 > /tmp/replyhi.out 2>&1 &", check=True)
        await asyncio.sleep(0.5)
        hello = await client.run(["/tmp/hello", "10.0.1.10", "7777", "1"], check=True,
                                 timeout=30)
        assert hello.stdout.startswith(b"hi")
        for name, session in (("server", server), ("client", client)):
            stats = await stop_ftrace(session, tmp / f"ftrace-{name}.txt")
            # Nothing lost but the odd probe hit the kernel could not record (tcp_fin in
            # a softirq inside another probe's handler), which it counts.
            assert stats.lost == sum(stats.missed.values()) and stats.entries > 20
            assert set(stats.missed) <= {"tcp_fin"}, stats.missed
            kernel = state.nodes[name].kernel_release
            result = parse_trace((tmp / f"ftrace-{name}.txt").read_text().splitlines(),
                                 node=name, kernel=kernel)
            assert (result.unparsed, result.unparsed_samples, result.lost) == (0, [], 0)
            events[name] = annotate_sockets(result.events)
            leftover = await session.run("ls /sys/kernel/tracing/instances; "
                                         "grep -c socklab /sys/kernel/tracing/kprobe_events")
            assert leftover.stdout.split() == [b"0"], "the tracer must clean up after itself"
    return events


def test_classic_sequence_on_both_sides_with_the_four_tuple(pair: tuple[str, str],
                                                            tmp_path: Path) -> None:
    name, _ = pair
    events = asyncio.run(traced_replyhi(name, tmp_path))
    server = [e for e in events["server"] if e.comm == "replyhi"]
    client = [e for e in events["client"] if e.comm == "hello"]
    assert [e.name for e in server if e.kind == Kind.FUNC_ENTRY
            and e.name.startswith("__sys_")] == SERVER_CLASSIC
    assert [e.name for e in client if e.kind == Kind.FUNC_ENTRY
            and e.name.startswith("__sys_")] == CLIENT_CLASSIC
    # The connection's 4-tuple, seen from both ends, on every event of it.
    accepted = next(e for e in server if e.name == "__sys_accept4" and e.kind == Kind.FUNC_RETURN)
    assert accepted.sock is not None
    four = (accepted.sock.saddr, accepted.sock.sport, accepted.sock.daddr, accepted.sock.dport)
    assert four[:3] == ("10.0.1.10", 7777, "10.0.1.1")
    for e in server:
        if e.sock and e.sock.sk == accepted.sock.sk:
            assert (e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport) == four
    connects = [e for e in client if e.name in ("__sys_connect", "tcp_v4_connect")]
    for e in connects:
        assert e.sock is not None
        assert (e.sock.saddr, e.sock.sport, e.sock.daddr, e.sock.dport) == (
            four[2], four[3], four[0], four[1])
    # Management SSH never shows up. (Softirq work runs under whichever task
    # it interrupted, dropbear included: such events must still be lab traffic.)
    for e in events["server"] + events["client"]:
        assert e.sock is None or 22 not in (e.sock.sport, e.sock.dport)
        if e.comm == "dropbear":
            assert e.sock is not None and 7777 in (e.sock.sport, e.sock.dport), e


async def two_blocked_accepts(lab_name: str, tmp: Path) -> tuple[dict[str, int], list[Event]]:
    async with replyhi_pair(lab_name) as (state, server, client):
        await start_ftrace(server, FtraceOptions(comms=("replyhi",)))
        for port in (7001, 7002):  # two servers, each blocked in accept() at once
            await server.run(f"/tmp/replyhi 10.0.1.10 {port} 1 > /dev/null 2>&1 &", check=True)
        await asyncio.sleep(0.5)
        for port in (7001, 7002):
            await client.run(["/tmp/hello", "10.0.1.10", str(port), "1"], check=True, timeout=30)
        stats = await stop_ftrace(server, tmp / "ftrace-server.txt")
        result = parse_trace((tmp / "ftrace-server.txt").read_text().splitlines(),
                             node="server", kernel=state.nodes["server"].kernel_release)
        return stats.missed, result.events


def test_calls_blocked_side_by_side_all_return_in_the_trace(pair: tuple[str, str],
                                                           tmp_path: Path) -> None:
    # A return probe holds an instance from entry to return: with too few, the
    # second caller blocked in the same function would lose its return.
    missed, events = asyncio.run(two_blocked_accepts(pair[0], tmp_path))
    # No return is missed. (A probe hit in a softirq that interrupts another probe's
    # handler, tcp_fin's now and then, is not recorded: the kernel counts it, and the
    # run's summary names it.)
    assert not [probe for probe in missed if probe.endswith("__return")], missed
    returns = [e for e in events if e.name == "__sys_accept4" and e.kind == Kind.FUNC_RETURN]
    assert len(returns) == 2


async def refused_connect(lab_name: str, tmp: Path) -> list[Event]:
    async with replyhi_pair(lab_name) as (state, _, client):
        await start_ftrace(client, FtraceOptions(comms=("hello",)))
        hello = await client.run(["/tmp/hello", "10.0.1.10", "7999", "1"], timeout=30)
        assert hello.exit_status != 0  # nothing listens on 7999
        await stop_ftrace(client, tmp / "ftrace-client.txt")
        return parse_trace((tmp / "ftrace-client.txt").read_text().splitlines(),
                           node="client", kernel=state.nodes["client"].kernel_release).events


def test_an_error_returned_by_a_kernel_function_is_negative(pair: tuple[str, str],
                                                            tmp_path: Path) -> None:
    # An int return leaves the upper half of %ax undefined: read whole, -ECONNREFUSED
    # would be 4294967185.
    events = asyncio.run(refused_connect(pair[0], tmp_path))
    returned = {e.name: e.ret for e in events if e.kind in (Kind.FUNC_RETURN, Kind.SYSCALL_EXIT)
                and e.name in ("__sys_connect", "connect")}
    assert returned == {"__sys_connect": -111, "connect": -111}
