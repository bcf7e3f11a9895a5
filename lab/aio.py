"""Waiting on coroutines and threads without leaving any of them behind.

`asyncio.gather` raises the first failure and lets the others run on, unawaited:
behind a teardown they would go on creating what it has just removed, or be
cut off when the process exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import TypeVar

T = TypeVar("T")


async def all_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """Every result in order; on the first failure the others are cancelled, and the
    failure is raised once they have all ended."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()  # a task already done is left as it is
        await _ended(tasks)


async def all_settled(*aws: Awaitable[T]) -> list[T]:
    """Every result in order, once all have ended; then the first failure is raised."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:  # cancelled: the tasks are too, and are waited for
        for task in tasks:
            task.cancel()
        await _ended(tasks)
    done: list[T] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        done.append(result)
    return done


async def to_the_end(aw: Awaitable[T]) -> T:
    """`aw`'s result; when the caller is cancelled meanwhile, `aw` still runs to its end,
    and this waits for it before the cancellation is raised: what comes next (closing
    the sessions it uses, removing what it works in) must not run while it does."""
    task = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await _ended([task])  # however often the caller is cancelled meanwhile
        raise


async def in_thread(func: Callable[[], T]) -> T:
    """func() in a worker thread, off the event loop, to its end (`to_the_end`): a
    thread cannot be cancelled."""
    return await to_the_end(asyncio.to_thread(func))


async def output_of(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """What `proc` (started in a session of its own) printed, once it has ended; if the
    caller is cancelled meanwhile, its process group is killed (by its id) and waited
    for: no download or unpacking runs on behind an interrupted command."""
    try:
        return await proc.communicate()
    finally:
        if proc.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await to_the_end(proc.wait())


async def _ended(tasks: Sequence[asyncio.Future[T]]) -> None:
    """Wait for `tasks` to end, even if this is cancelled meanwhile (the cancellation
    is raised afterwards); their failures are retrieved, the caller raises its own."""
    cancelled = False
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            cancelled = True
    for task in tasks:
        if not task.cancelled():
            task.exception()
    if cancelled:
        raise asyncio.CancelledError
