"""NodeSession.run/stream against a real in-process SSH server running /bin/sh."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import eventually

from lab.errors import SSHError
from lab.ssh import CommandFailed, CommandTimeout, NodeSession, command_line

if TYPE_CHECKING:
    from conftest import FakeGuest


@pytest.fixture
async def session(fake_guest: FakeGuest) -> AsyncIterator[NodeSession]:
    async with NodeSession.open("n1", fake_guest.endpoint, fake_guest.client_key) as s:
        yield s


async def test_run_collects_output_and_status(session: NodeSession) -> None:
    result = await session.run("echo out; echo err >&2; exit 3")
    assert (result.exit_status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.ok
    assert result.signal is None
    assert 0 < result.duration < 5
    assert result.command == "echo out; echo err >&2; exit 3"


async def test_run_in_guest_home(session: NodeSession, fake_guest: FakeGuest) -> None:
    result = await session.run("pwd", check=True)
    assert result.stdout.decode().strip() == str(fake_guest.home)


async def test_sequence_is_quoted_word_by_word(session: NodeSession,
                                               fake_guest: FakeGuest) -> None:
    words = ["printf", "%s\\n", "a b", "$(touch pwned)", "'q'", "x;y", ""]
    result = await session.run(words, check=True)
    assert result.stdout == b"a b\n$(touch pwned)\n'q'\nx;y\n\n"
    assert not (fake_guest.home / "pwned").exists()
    assert command_line(["echo", "a b"]) == "echo 'a b'"
    with pytest.raises(ValueError):
        command_line([])


async def test_str_goes_to_the_shell_as_is(session: NodeSession) -> None:
    result = await session.run("for i in 1 2 3; do printf $i; done | wc -c", check=True)
    assert result.stdout.strip() == b"3"


async def test_check_raises_command_failed(session: NodeSession) -> None:
    with pytest.raises(CommandFailed) as info:
        await session.run("echo noise >&2; echo 'no such thing' >&2; exit 7", check=True)
    error = info.value
    assert isinstance(error, SSHError)
    assert (error.node, error.exit_status) == ("n1", 7)
    assert "noise\nno such thing" in error.stderr_tail
    assert str(error) == ("node n1: command \"echo noise >&2; echo 'no such thing' >&2; "
                          "exit 7\" exited with status 7: no such thing")


async def test_death_by_signal(session: NodeSession) -> None:
    result = await session.run("kill -TERM $$")
    assert (result.exit_status, result.signal) == (143, "TERM")
    with pytest.raises(CommandFailed, match="killed by SIGTERM"):
        await session.run("kill -TERM $$", check=True)


async def test_input_bytes(session: NodeSession) -> None:
    result = await session.run("tr a-z A-Z", input=b"hello\n", check=True)
    assert result.stdout == b"HELLO\n"


async def test_no_input_means_eof(session: NodeSession) -> None:
    result = await session.run("cat", timeout=5, check=True)
    assert result.stdout == b""


async def test_large_data_both_ways(session: NodeSession) -> None:
    data = os.urandom(3 * 1024 * 1024)
    result = await session.run("cat; cat /dev/null >&2", input=data, timeout=30, check=True)
    assert result.stdout == data


async def test_command_that_ignores_its_input(session: NodeSession) -> None:
    result = await session.run("true", input=os.urandom(4 * 1024 * 1024), timeout=10)
    assert result.exit_status == 0


async def test_timeout_kills_the_remote_command(session: NodeSession, fake_guest: FakeGuest,
                                                ) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        await session.run("echo started; echo $$ > pid; exec sleep 30", timeout=0.5)
    assert time.monotonic() - started < 3
    error = info.value
    assert (error.node, error.timeout, error.stdout) == ("n1", 0.5, b"started\n")
    assert "did not finish within 0.5 s" in str(error)
    assert await eventually(lambda: fake_guest.signals == ["KILL"])
    pid = int((fake_guest.home / "pid").read_text())
    assert await _gone(pid)
    # The connection is still usable.
    assert (await session.run("echo again", check=True)).stdout == b"again\n"


async def _gone(pid: int) -> bool:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    return await eventually(gone)


async def test_stream_delivers_output_as_it_comes(session: NodeSession) -> None:
    events: list[tuple[str, bytes, float]] = []
    started = time.monotonic()

    def on_stdout(chunk: bytes) -> None:
        events.append(("out", chunk, time.monotonic() - started))

    async def on_stderr(chunk: bytes) -> None:  # coroutine sinks work too
        events.append(("err", chunk, time.monotonic() - started))

    status = await session.stream(
        "printf a; sleep 0.4; printf b >&2; sleep 0.4; printf c; exit 5", on_stdout, on_stderr)
    assert status == 5
    assert [(kind, data) for kind, data, _ in events] == [
        ("out", b"a"), ("err", b"b"), ("out", b"c")]
    first, second, third = (at for _, _, at in events)
    assert second - first > 0.25 and third - second > 0.25


async def test_stream_stdin_from_async_source(session: NodeSession) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one\n", b"two\n", b"three\n"):
            await asyncio.sleep(0.05)
            yield part

    out = bytearray()
    status = await session.stream("cat -n", out.extend, out.extend, stdin=chunks())
    assert status == 0
    assert out.decode().split() == ["1", "one", "2", "two", "3", "three"]


async def test_stream_ends_when_command_ends_even_if_stdin_does_not(
        session: NodeSession) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(3600)
            yield b""

    out = bytearray()
    status = await asyncio.wait_for(
        session.stream("echo done", out.extend, out.extend, stdin=endless()), 5)
    assert (status, bytes(out)) == (0, b"done\n")


async def test_stream_timeout(session: NodeSession, fake_guest: FakeGuest) -> None:
    out = bytearray()
    with pytest.raises(CommandTimeout):
        await session.stream("echo x; sleep 30", out.extend, out.extend, timeout=0.3)
    assert bytes(out) == b"x\n"
    assert await eventually(lambda: fake_guest.signals == ["KILL"])


async def test_cancelling_a_command_kills_it(session: NodeSession, fake_guest: FakeGuest
                                             ) -> None:
    task = asyncio.create_task(session.run("echo $$ > pid; exec sleep 30"))
    await _wait_for_file(fake_guest.home / "pid")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await eventually(lambda: fake_guest.signals == ["KILL"])
    assert await _gone(int((fake_guest.home / "pid").read_text()))


async def _wait_for_file(path: Path, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)


async def test_sink_errors_propagate_unchanged(session: NodeSession) -> None:
    def broken(chunk: bytes) -> None:
        raise BrokenPipeError("local stdout closed")

    with pytest.raises(BrokenPipeError):
        await session.stream("echo hi; sleep 30", broken, broken, timeout=10)


async def test_concurrent_commands_share_the_connection(session: NodeSession) -> None:
    results = await asyncio.gather(*(session.run(f"sleep 0.2; echo {i}") for i in range(10)))
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(10)]


async def test_connection_lost_during_a_command(session: NodeSession,
                                                fake_guest: FakeGuest) -> None:
    task = asyncio.create_task(session.run("sleep 30", timeout=10))
    await asyncio.sleep(0.3)
    for conn in fake_guest.connections:
        conn.abort()
    with pytest.raises(SSHError, match="node n1: "):
        await asyncio.wait_for(task, 5)
    with pytest.raises(SSHError, match="node n1: cannot start 'true'"):
        await session.run("true")
    assert session.lost  # the guest went away: not closed by lab


async def test_a_session_lab_closed_is_not_lost(session: NodeSession) -> None:
    assert not session.lost
    await session.close()
    assert not session.lost


async def test_failing_stdin_source_aborts_the_command(session: NodeSession,
                                                       fake_guest: FakeGuest) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"partial\n"
        await asyncio.sleep(0.2)
        raise RuntimeError("local stdin broke")

    out = bytearray()
    with pytest.raises(RuntimeError, match="local stdin broke"):
        await asyncio.wait_for(
            session.stream("cat; echo $$ > pid", out.extend, out.extend, stdin=failing()), 5)
    assert await eventually(lambda: fake_guest.signals == ["KILL"])
    assert not (fake_guest.home / "pid").exists()


async def test_a_guest_that_never_opens_the_channel_times_out(session: NodeSession,
                                                            fake_guest: FakeGuest) -> None:
    fake_guest.freeze()
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"did not finish within 0\.3 s"):
        await session.run("true", timeout=0.3)
    assert time.monotonic() - started < 2
