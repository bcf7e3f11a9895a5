"""Reading a node's serial console log: its ready line and its last lines."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from lab.errors import BootError

# Only a whole line counts: the log may end half-way through the key.
READY = re.compile(
    rb"^socklab-ready (\S+) (ssh-ed25519 [A-Za-z0-9+/=]+)(?: [^\r\n]*)?\r*\n", re.M)


@dataclass(frozen=True)
class ReadyLine:
    hostname: str
    host_key: str


def console_tail(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return ""
    text = data.decode(errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


async def wait_for_ready_line(node: str, log: Path, *, deadline: float,
                              alive: Callable[[], Awaitable[bool]],
                              interval: float = 0.02,  # a poll of a few-KB log: ~40 µs
                              alive_interval: float = 0.5) -> ReadyLine:
    """Poll the console log until the guest's ready line appears.

    `alive` (asked at once, then every `alive_interval` s) tells whether the
    guest still runs, so a crashed guest fails at once instead of at the deadline.
    """
    loop = asyncio.get_running_loop()
    next_alive_check = loop.time()
    while True:
        try:
            match = READY.search(log.read_bytes())
        except FileNotFoundError:
            match = None
        if match:
            return ReadyLine(match.group(1).decode(), match.group(2).decode())
        if loop.time() >= next_alive_check:
            if not await alive():
                tail = console_tail(log)
                raise BootError(node, "the guest stopped before it was ready",
                                console_tail=tail,
                                hint="its console above shows how far it got" if tail else
                                "its console is empty: check the image with `lab doctor`")
            next_alive_check = loop.time() + alive_interval
        if loop.time() >= deadline:
            tail = console_tail(log)
            raise BootError(node, "no ready line on the console before the deadline",
                            console_tail=tail,
                            hint="raise --timeout, or see its console above" if tail else
                            "raise --timeout; the console is still empty (the kernel had "
                            "not reached the boot script)")
        await asyncio.sleep(interval)
