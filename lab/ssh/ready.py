"""Waiting for a booting node to answer on SSH."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lab.errors import SSHError
from lab.log import get_logger
from lab.ssh.endpoint import Endpoint
from lab.ssh.errors import NodeUnreachable
from lab.ssh.session import NodeSession

BOOT_HINT = "the guest may still be booting or have failed to boot; see its console log"


async def wait_until_ready(node: str, endpoint: Endpoint, client_key: Path, *,
                           deadline: float, interval: float = 0.1,
                           attempt_timeout: float = 5.0) -> NodeSession:
    """Connect and run `true` until it works; the session is returned open.

    `deadline` is on the event loop's clock (`loop.time()`). Refused, lost or
    silent connections (a forwarded port whose guest is not up yet) are
    retried every `interval` s, each attempt bounded by `attempt_timeout`; a
    host key mismatch or a refused lab key fails at once. At the deadline,
    raises `NodeUnreachable` carrying the last error.
    """
    loop = asyncio.get_running_loop()
    log = get_logger(__name__, node=node)
    started = loop.time()
    attempts = 0
    last: SSHError | None = None
    while (remaining := deadline - loop.time()) > 0:
        attempts += 1
        try:
            session = await NodeSession.connect(
                node, endpoint, client_key, connect_timeout=min(attempt_timeout, remaining))
        except NodeUnreachable as exc:
            last = exc
        else:
            try:
                await session.run("true", timeout=max(deadline - loop.time(), 0.001),
                                  check=True)
            except SSHError as exc:
                last = exc
                await session.close()
            except BaseException:
                await session.close()
                raise
            else:
                log.debug("ready after %.2f s (%d attempts)", loop.time() - started, attempts)
                return session
        log.debug("not ready (attempt %d): %s", attempts, last)
        await asyncio.sleep(min(interval, max(deadline - loop.time(), 0)))
    why = last.detail if last else "deadline already passed"
    raise NodeUnreachable(
        node, f"no SSH session within {loop.time() - started:.1f} s "
        f"({attempts} attempts); last error: {why}", hint=BOOT_HINT)
