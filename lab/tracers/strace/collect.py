"""Installing the clock reader on a node, and collecting a trace file from it.

    remote = await install_clocks(session, programs_cache)     # once per node
    line = wrap(command, "/run/socklab/strace-01-x.txt", None)    # the runner runs it
    capture = await collect_strace(session, "/run/socklab/strace-01-x.txt", local_file)
    parse_strace(local_file.read_text().splitlines(), node=..., kernel=...,
                 clocks=capture.clocks)

`collect_strace` copies the trace file, reads the guest's clocks (see
clock.py) and stores the clocks line beside the copy (`clocks_file(local_file)`),
so that a raw trace can be parsed again later on its own.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import NodeError
from lab.programs import build_program
from lab.tracers.strace.clock import ClockSample, parse_clocks

if TYPE_CHECKING:  # asyncssh is imported on first use: `lab validate` never pays
    from lab.ssh import NodeSession

PROGRAM = "clocks"
CLOCKS_PATH = f"/opt/socklab/bin/{PROGRAM}"  # where deployed programs live on a node
CLOCKS_SUFFIX = ".clocks"
COMMAND_TIMEOUT = 30.0
COPY_TIMEOUT = 300.0


class StraceError(NodeError):
    """A strace trace could not be collected from a node."""


@dataclass(frozen=True)
class StraceCapture:
    """One collected trace: the local copy and the guest clocks to convert its times."""

    trace_file: Path
    clocks_file: Path
    clocks: ClockSample
    size: int  # bytes


def clocks_file(trace_file: Path) -> Path:
    """Where the clocks line of a collected trace is kept: beside it, `.clocks` added."""
    return trace_file.with_name(trace_file.name + CLOCKS_SUFFIX)


async def install_clocks(session: NodeSession, cache: Path, *,
                         remote: str = CLOCKS_PATH) -> str:
    """Build the `clocks` program (cached) and put it on the node; its path there."""
    binary = await build_program(PROGRAM, cache)
    parent = remote.rsplit("/", 1)[0] or "/"
    await session.run(["mkdir", "-p", parent], check=True, timeout=COMMAND_TIMEOUT)
    await session.put(binary, remote, timeout=COPY_TIMEOUT)
    return remote


async def read_clocks(session: NodeSession, clocks: str = CLOCKS_PATH) -> ClockSample:
    """The node's CLOCK_REALTIME and CLOCK_MONOTONIC, read at one moment."""
    result = await session.run(shlex.quote(clocks), timeout=COMMAND_TIMEOUT)
    text = result.stdout.decode(errors="replace").strip()
    if result.exit_status == 127:
        raise StraceError(session.node, f"the clock reader {clocks} is not on the node",
                          hint="install it with lab.tracers.strace.install_clocks()")
    try:
        return parse_clocks(text)
    except ValueError:
        why = result.stderr.decode(errors="replace").strip() or text or "no output"
        raise StraceError(session.node, f"{clocks} did not print the clocks: "
                          f"{why[:200]}") from None


async def collect_strace(session: NodeSession, remote_output: str, local_file: Path, *,
                         clocks: str = CLOCKS_PATH, remove: bool = True) -> StraceCapture:
    """Copy the trace file `remote_output` of a finished command to `local_file`.

    Then the guest's clocks are read (by the program installed at `clocks`)
    and saved beside it; should that fail, the copy is kept. With `remove`,
    the file on the node is deleted once all went well.
    """
    present = await session.run(["test", "-f", remote_output], timeout=COMMAND_TIMEOUT)
    if not present.ok:
        raise StraceError(session.node, f"no strace output {remote_output}",
                          hint="did the command run under strace (see its stderr)?")
    local_file.parent.mkdir(parents=True, exist_ok=True)
    await session.get(remote_output, local_file, timeout=COPY_TIMEOUT)
    sample = await read_clocks(session, clocks)
    side = clocks_file(local_file)
    side.write_text(sample.line() + "\n")
    if remove:
        await session.run(["rm", "-f", remote_output], check=True, timeout=COMMAND_TIMEOUT)
    return StraceCapture(trace_file=local_file, clocks_file=side, clocks=sample,
                         size=local_file.stat().st_size)


def read_clocks_file(trace_file: Path) -> ClockSample:
    """The clocks line stored beside a collected trace."""
    return parse_clocks(clocks_file(trace_file).read_text())
