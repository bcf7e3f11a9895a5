"""Round trips from the controller to each guest's clock, before and after the steps.

The guest's clock reader (`clocks -e`) answers each line it reads with its
CLOCK_MONOTONIC, the clock of every event. Over one SSH channel the controller
notes its own clock as each question leaves and as each answer arrives: the
guest read its clock between the two (lab/correlate/sync/host.py turns that into
clock bounds). Nodes that exchanged TCP traffic are aligned by it, far more
tightly; the round trips align the others (a UDP-only run, an idle router).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from lab.aio import all_settled
from lab.correlate.sync.host import RoundTrip
from lab.errors import LabError, NodeError
from lab.ssh import NodeSession
from lab.text import last_line
from lab.tracers.strace import CLOCKS_PATH, install_clocks, parse_clocks

ROUNDS = 8  # per measurement: the hull keeps the quickest
TIMEOUT = 30.0  # seconds for one node's measurement, the clock reader's start included


class RoundTripError(NodeError):
    """The controller could not time round trips to a node's clock."""


async def measure(sessions: Mapping[str, NodeSession], cache: Path, installed: set[str],
                  trips: dict[str, list[RoundTrip]]) -> dict[str, str]:
    """Add `ROUNDS` round trips to each node's in `trips`, every node at once, installing
    the clock reader first where it is not in `installed`. A node that fails is left
    out, and said with why: its clock is then aligned by its traffic alone."""
    failed: dict[str, str] = {}

    async def one(node: str, session: NodeSession) -> None:
        try:
            if node not in installed:
                await install_clocks(session, cache)
                installed.add(node)
            measured = await round_trips(session)
            trips.setdefault(node, []).extend(measured)
        except LabError as exc:
            failed[node] = exc.detail if isinstance(exc, NodeError) else exc.message

    await all_settled(*(one(n, s) for n, s in sessions.items()))
    return failed


async def round_trips(session: NodeSession, *, rounds: int = ROUNDS,
                      clocks: str = CLOCKS_PATH, timeout: float = TIMEOUT) -> list[RoundTrip]:
    """`rounds` round trips to the node's clock, over one run of the clock reader."""
    answers: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    pending = bytearray()
    trips: list[RoundTrip] = []

    def on_stdout(chunk: bytes) -> None:
        arrived = time.monotonic_ns()
        pending.extend(chunk)
        while (end := pending.find(b"\n")) >= 0:
            answers.put_nowait((arrived, bytes(pending[:end])))
            del pending[:end + 1]

    async def questions() -> AsyncIterator[bytes]:
        for _ in range(rounds):
            sent = time.monotonic_ns()
            yield b"?\n"
            received, line = await answers.get()
            trips.append(RoundTrip(sent, parse_clocks(line.decode(errors="replace"))
                                   .monotonic_ns, received))

    errors = bytearray()
    try:
        status = await session.stream([clocks, "-e"], on_stdout, errors.extend,
                                      stdin=questions(), timeout=timeout)
    except ValueError as exc:  # an answer that is not the clocks
        raise RoundTripError(session.node, f"{clocks} -e: {exc}") from None
    if status != 0 or len(trips) < rounds:
        why = last_line(errors.decode(errors="replace")) or f"exit status {status}"
        raise RoundTripError(session.node, f"{clocks} -e answered {len(trips)} of {rounds} "
                             f"questions: {why[:200]}")
    return trips
