"""Running the ftrace scripts on a node over its SSH session, and collecting the trace.

Starting and stopping each have one deadline for everything they run on the
node; past it, what runs is killed and `FtraceError` names the node and the limit.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import NodeError
from lab.files import atomic_write
from lab.ssh.errors import CommandFailed
from lab.tracers.ftrace.probes import FtraceOptions
from lab.tracers.ftrace.script import (
    INSTANCE_DIR,
    MISSED_PREFIX,
    SKIPPED_PREFIX,
    cleanup_script,
    start_script,
    stop_script,
)

if TYPE_CHECKING:  # asyncssh is imported on first use: `lab validate` never pays
    from lab.ssh import NodeSession

START_TIMEOUT = 60.0  # seconds: defining probes runs a shell loop under emulation
STOP_TIMEOUT = 300.0  # seconds: stop, read a whole trace buffer back, remove the probes
NO_MEMORY = "Cannot allocate memory"  # a write to buffer_size_kb the kernel refused (ENOMEM)
TIMEOUT_HINT = "a slow guest (emulation, a large buffer) needs more time: raise the timeout " \
               "of the trace step"


class FtraceError(NodeError):
    """ftrace could not be started or stopped on a node. `stats` is set when the trace
    was saved and only removing the probes failed: what it recorded still counts."""

    stats: TraceStats | None = None


@dataclass(frozen=True)
class TraceStats:
    """What the kernel recorded, and what it could not: per-CPU ring buffer
    statistics added up, and each probe's missed hits."""

    entries: int = 0
    overrun: int = 0  # events overwritten because the buffer was full
    dropped: int = 0  # events dropped (commit overruns and "dropped events")
    missed: dict[str, int] = field(default_factory=dict)  # probe → hits not recorded

    @property
    def lost(self) -> int:
        return self.overrun + self.dropped + sum(self.missed.values())


def parse_stats(text: str) -> TraceStats:
    """The output of the stop script (script.py)."""
    def total(name: str) -> int:
        return sum(int(n) for n in re.findall(rf"^{name}: (\d+)$", text, re.M))

    missed: dict[str, int] = {}
    for m in re.finditer(rf"^{re.escape(MISSED_PREFIX)} (\S+) (\d+)$", text, re.M):
        missed[m[1]] = missed.get(m[1], 0) + int(m[2])  # a name shared with another group
    return TraceStats(entries=total("entries"), overrun=total("overrun"),
                      dropped=total("commit overrun") + total("dropped events"),
                      missed=missed)


async def start_ftrace(session: NodeSession, options: FtraceOptions, *,
                       timeout: float = START_TIMEOUT) -> list[str]:
    """Set up and start the trace within `timeout` seconds; returns the probes this
    kernel does not have."""
    try:
        async with asyncio.timeout(timeout):
            result = await session.run("sh -s", input=start_script(options).encode(),
                                       check=True)
    except TimeoutError:
        raise _late(session, "did not start", timeout) from None
    except CommandFailed as exc:
        if NO_MEMORY not in exc.stderr_tail:
            raise
        raise FtraceError(session.node, "ftrace did not start: the guest has no memory left for "
                          f"the trace buffer ({options.buffer_kb} KiB per CPU)",
                          hint="give the node more memory (memory: in the topology), or "
                               "a smaller tracers.ftrace.buffer_kb in the playbook") from None
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith(SKIPPED_PREFIX):
            return line.removeprefix(SKIPPED_PREFIX).strip(": ").split()
    return []


async def stop_ftrace(session: NodeSession, trace_file: Path, *, cleanup: bool = True,
                      timeout: float = STOP_TIMEOUT) -> TraceStats:
    """Stop recording, save the trace text to `trace_file`, and remove every trace of it
    (unless not `cleanup`: a guest about to be destroyed need not be tidied, and
    removing the probes takes up to a second under emulation); all within `timeout`
    seconds."""
    stats: TraceStats | None = None  # set once the trace is saved
    try:
        async with asyncio.timeout(timeout):
            stopped = await session.run("sh -s", input=stop_script().encode(), check=True)
            # tracefs files report a size of zero: read with cat, not by size over SFTP.
            trace = await session.run(["cat", f"{INSTANCE_DIR}/trace"], check=True)
            atomic_write(trace_file, trace.stdout, mode=0o644)  # whole, or not at all
            stats = parse_stats(stopped.stdout.decode(errors="replace"))
            if cleanup:
                await session.run("sh -s", input=cleanup_script().encode(), check=True)
    except TimeoutError:
        error = _late(session, "saved its trace but did not remove its probes" if stats
                      else "did not stop", timeout)
        error.stats = stats
        raise error from None
    except NodeError as exc:
        if stats is None:
            raise
        error = FtraceError(session.node, f"trace saved, but removing its probes failed: "
                            f"{exc.detail}", hint=exc.hint)
        error.stats = stats
        raise error from exc
    assert stats is not None
    return stats


def _late(session: NodeSession, what: str, timeout: float) -> FtraceError:
    """The error for a start or stop past its deadline (its command was killed)."""
    return FtraceError(session.node, f"ftrace {what} within {timeout:g} s", hint=TIMEOUT_HINT)
