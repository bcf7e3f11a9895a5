"""start_ftrace and stop_ftrace over SSH: each within one deadline, past which the node's
command is killed and the error names the node and the limit.

The node is a fake guest (conftest.FakeGuest) whose tracefs is a FakeTracefs: the
scripts are answered, never run on the host.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import FakeTracefs, eventually

from lab.playbook import values
from lab.ssh import CommandFailed, NodeSession
from lab.tracers.ftrace import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    FtraceError,
    FtraceOptions,
    start_ftrace,
    stop_ftrace,
)
from lab.tracers.ftrace.probes import Adjust
from lab.tracers.ftrace.script import start_script

if TYPE_CHECKING:
    from conftest import FakeGuest

STATS = (Path(__file__).parents[1] / "fixtures" / "ftrace" / "linux-5.10"
         / "replyhi-server.stats").read_bytes()
OPTIONS = FtraceOptions(comms=("replyhi",))


@pytest.fixture
async def node(fake_guest: FakeGuest) -> AsyncIterator[tuple[NodeSession, FakeTracefs]]:
    tracefs = fake_guest.tracefs = FakeTracefs(trace=b"the trace\n", stats=STATS)
    async with NodeSession.open("server", fake_guest.endpoint, fake_guest.client_key) as s:
        yield s, tracefs


async def test_start_and_stop(node: tuple[NodeSession, FakeTracefs], tmp_path: Path) -> None:
    session, tracefs = node
    assert await start_ftrace(session, OPTIONS) == []
    stats = await stop_ftrace(session, tmp_path / "trace.txt")
    assert (tmp_path / "trace.txt").read_bytes() == b"the trace\n"
    assert stats.entries == 57
    assert tracefs.done == ["start", "stop", "read", "cleanup"]


@pytest.mark.parametrize("slow", ["stop", "read"])
async def test_a_stop_past_its_timeout_is_an_error_naming_node_and_limit(
        node: tuple[NodeSession, FakeTracefs], fake_guest: FakeGuest, tmp_path: Path,
        slow: str) -> None:
    session, tracefs = node
    await start_ftrace(session, OPTIONS)
    tracefs.hang.add(slow)
    began = time.monotonic()
    with pytest.raises(FtraceError) as error:
        await stop_ftrace(session, tmp_path / "trace.txt", timeout=0.5)
    assert time.monotonic() - began < 5
    assert error.value.message == "node server: ftrace did not stop within 0.5 s"
    assert error.value.hint is not None and "timeout of the trace step" in error.value.hint
    assert await eventually(lambda: fake_guest.signals == ["KILL"])  # it does not live on
    assert not (tmp_path / "trace.txt").exists()


async def test_a_slow_cleanup_keeps_the_trace_and_says_so(
        node: tuple[NodeSession, FakeTracefs], tmp_path: Path) -> None:
    session, tracefs = node
    await start_ftrace(session, OPTIONS)
    tracefs.hang.add("cleanup")
    with pytest.raises(FtraceError) as error:
        await stop_ftrace(session, tmp_path / "trace.txt", timeout=0.5)
    assert error.value.message == ("node server: ftrace saved its trace but did not remove "
                                   "its probes within 0.5 s")
    assert (tmp_path / "trace.txt").read_bytes() == b"the trace\n"


async def test_a_start_past_its_timeout(node: tuple[NodeSession, FakeTracefs]) -> None:
    session, tracefs = node
    tracefs.hang.add("start")
    with pytest.raises(FtraceError) as error:
        await start_ftrace(session, OPTIONS, timeout=0.5)
    assert error.value.message == "node server: ftrace did not start within 0.5 s"


async def test_a_failure_before_the_deadline_is_not_a_timeout(
        node: tuple[NodeSession, FakeTracefs]) -> None:
    session, tracefs = node
    tracefs.fail.add("start")
    with pytest.raises(CommandFailed, match="exited with status 1"):
        await start_ftrace(session, OPTIONS, timeout=5)


async def test_a_guest_short_of_memory_for_the_buffer_is_told_what_to_change(
        node: tuple[NodeSession, FakeTracefs]) -> None:
    session, tracefs = node
    tracefs.fail.add("start")
    tracefs.refusal = "Cannot allocate memory"
    with pytest.raises(FtraceError) as error:
        await start_ftrace(session, OPTIONS, timeout=5)
    assert str(error.value) == (
        f"node server: ftrace did not start: the guest has no memory left for the trace "
        f"buffer ({OPTIONS.buffer_kb} KiB per CPU) (hint: give the node more memory "
        "(memory: in the topology), or a smaller tracers.ftrace.buffer_kb in the playbook)")


def test_playbook_defaults_are_the_tracers() -> None:
    assert (values.TRACE_START_TIMEOUT, values.TRACE_STOP_TIMEOUT) == (START_TIMEOUT,
                                                                       STOP_TIMEOUT)


def test_an_added_softirq_function_is_filtered_by_its_socks_port() -> None:
    """The receive path runs under whatever task it interrupted: a comm filter would drop
    every hit there. Functions lab knows the sock of are filtered by port instead; any
    other stays filtered by comm, entry and return."""
    script = start_script(FtraceOptions(comms=("replyhi",), functions=Adjust(
        add=("tcp_rcv_state_process", "tcp_conn_request", "tcp_v4_rcv"))))
    entering = {line.split()[1]: line.split()[2:] for line in script.splitlines()
                if line.startswith("entering ")}
    assert entering["tcp_rcv_state_process"][:2] == ["port", "'sk=%di:x64"]
    assert entering["tcp_conn_request"][:2] == ["port", "'sk=%dx:x64"]  # (.., .., sk, skb)
    assert entering["tcp_v4_rcv"] == ["comm", "''"]
    returning = {line.split()[1] for line in script.splitlines()
                 if line.startswith("returning ")}
    assert "tcp_v4_rcv" in returning and "tcp_rcv_state_process" not in returning
