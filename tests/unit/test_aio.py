"""Waiting on several coroutines: none is left running behind the caller."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from conftest import eventually

from lab.aio import all_or_cancel, all_settled, in_thread, output_of, to_the_end


async def fail(after: float, message: str) -> int:
    await asyncio.sleep(after)
    raise ValueError(message)


async def finish(after: float, log: list[str], name: str) -> str:
    try:
        await asyncio.sleep(after)
    except asyncio.CancelledError:
        log.append(f"{name} cancelled")
        raise
    log.append(f"{name} done")
    return name


async def test_all_or_cancel_gives_every_result_in_order() -> None:
    log: list[str] = []
    assert await all_or_cancel(finish(0.02, log, "a"), finish(0.01, log, "b")) == ["a", "b"]


async def test_all_or_cancel_stops_the_others_before_raising_the_first_failure() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="first"):
        await all_or_cancel(finish(1, log, "slow"), fail(0.01, "first"))
    assert log == ["slow cancelled"]  # already over when the error reaches the caller


async def test_all_settled_lets_every_one_end_then_raises_the_first_failure() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="early"):
        await all_settled(fail(0.01, "early"), finish(0.05, log, "slow"), fail(0.02, "late"))
    assert log == ["slow done"]


async def test_a_cancelled_caller_waits_for_the_ones_that_finish_their_work() -> None:
    """As a libvirt call in a thread does: cancelled, it still ends its work first."""
    log: list[str] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # cleaning up
            log.append("cleaned up")
            raise

    caller = asyncio.create_task(all_or_cancel(stubborn()))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert log == ["cleaned up"]


@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_caller_of_in_thread_resumes_only_when_its_thread_is_done(cancels: int) -> None:
    """However often it is cancelled: what follows it (removing the files its thread
    writes, releasing a lock) must wait."""
    release, done = threading.Event(), threading.Event()

    def work() -> None:
        release.wait(5)
        done.set()

    task = asyncio.create_task(in_thread(work))
    await asyncio.sleep(0.05)
    for _ in range(cancels):
        task.cancel()
        await asyncio.sleep(0.05)
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done.is_set()


async def test_a_cancelled_caller_lets_the_work_run_to_its_end() -> None:
    """A run's wind-down (stopping tracers over SSH) must end before its sessions close."""
    log: list[str] = []

    async def wind_down() -> None:
        await asyncio.sleep(0.1)
        log.append("wound down")

    async def caller() -> None:
        try:
            await to_the_end(wind_down())
        finally:
            log.append("sessions closed")

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["wound down", "sessions closed"]


async def test_an_interrupted_wait_on_a_command_ends_it_and_what_it_started() -> None:
    """Ctrl-C during an image build's download: apt and its helper processes go too."""
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", "sleep 30 & echo $!; wait", stdout=asyncio.subprocess.PIPE,
        start_new_session=True)
    assert proc.stdout is not None
    child = int(await proc.stdout.readline())  # started by the command
    waiting = asyncio.create_task(output_of(proc))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert proc.returncode is not None  # ended, and waited for
    assert await eventually(lambda: not Path(f"/proc/{child}").exists() or
                            "zombie" in Path(f"/proc/{child}/status").read_text().lower())


async def test_the_output_of_a_command_that_ends_by_itself() -> None:
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", "echo out; echo err >&2", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert await output_of(proc) == (b"out\n", b"err\n")
