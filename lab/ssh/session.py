"""`NodeSession`: run commands on a node and copy files to and from it.

One connection per node is opened and reused; each command gets its own
channel (commands may run concurrently). Every command goes through one
primitive, `stream()`, which forwards output as it arrives; `run()` collects it.
"""

from __future__ import annotations

import asyncio
import inspect
import shlex
import signal
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncssh

from lab.errors import SSHError
from lab.log import get_logger
from lab.ssh.connect import connect, load_client_key
from lab.ssh.endpoint import Endpoint
from lab.ssh.errors import CommandFailed, CommandTimeout, short_command
from lab.ssh.transfer import FileTransfers

Command = str | Sequence[str]
# Receives each chunk of output as it arrives; may be a coroutine function.
Sink = Callable[[bytes], object]
StdinSource = bytes | AsyncIterable[bytes] | None

CHUNK = 65536
CLOSE_TIMEOUT = 5.0  # closing a connection never waits longer


def command_line(command: Command) -> str:
    """The remote shell command: a str as is, a sequence quoted word by word."""
    if isinstance(command, str):
        return command
    words = list(command)
    if not words:
        raise ValueError("empty command")
    return shlex.join(words)


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int  # 128 + N when killed by signal N, as a shell reports it
    stdout: bytes
    stderr: bytes
    duration: float  # seconds, from opening the channel to its close
    signal: str | None = None  # e.g. "KILL" when the command died of a signal

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class _Exit:
    status: int
    signal: str | None


class NodeSession:
    """An authenticated management connection to one node.

    Use `async with NodeSession.open(...) as s:`, or `await NodeSession.connect(...)`
    and then `async with session:` (what `wait_until_ready` hands back).
    """

    def __init__(self, node: str, endpoint: Endpoint,
                 connection: asyncssh.SSHClientConnection) -> None:
        self.node = node
        self.endpoint = endpoint
        self._conn = connection
        self._closing = False
        self._files = FileTransfers(node, connection)
        self._log = get_logger(__name__, node=node)

    @classmethod
    async def connect(cls, node: str, endpoint: Endpoint, client_key: Path,
                      *, connect_timeout: float = 10.0) -> NodeSession:
        key = load_client_key(client_key)
        started = time.monotonic()
        conn = await connect(node, endpoint, key, client_key, timeout=connect_timeout)
        session = cls(node, endpoint, conn)
        session._log.debug("connected to %s in %.3f s", endpoint.address,
                           time.monotonic() - started)
        return session

    @classmethod
    @asynccontextmanager
    async def open(cls, node: str, endpoint: Endpoint, client_key: Path,
                   *, connect_timeout: float = 10.0) -> AsyncIterator[NodeSession]:
        session = await cls.connect(node, endpoint, client_key, connect_timeout=connect_timeout)
        async with session:
            yield session

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def lost(self) -> bool:
        """Whether the connection went away without being closed: the guest died or
        rebooted, or its SSH server stopped."""
        return self._conn.is_closed() and not self._closing

    async def close(self) -> None:
        """Close the connection (and SFTP), waiting at most a few seconds."""
        self._closing = True
        self._files.close()
        self._conn.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._conn.wait_closed()
        except TimeoutError:
            self._log.warning("connection did not close within %g s", CLOSE_TIMEOUT)

    # -- commands ---------------------------------------------------------------------

    async def run(self, command: Command, *, input: bytes | None = None,
                  timeout: float | None = None, check: bool = False) -> CommandResult:
        """Run a command to completion and collect its output.

        `check=True` raises `CommandFailed` on a non-zero status; `timeout`
        raises `CommandTimeout` (carrying the output so far) after killing it.
        """
        line = command_line(command)
        out, err = bytearray(), bytearray()
        started = time.monotonic()
        try:
            ended = await self._execute(line, out.extend, err.extend, input, timeout)
        except CommandTimeout as exc:
            raise CommandTimeout(self.node, line, exc.timeout,
                                 stdout=bytes(out), stderr=bytes(err)) from None
        result = CommandResult(line, ended.status, bytes(out), bytes(err),
                               time.monotonic() - started, ended.signal)
        if check and not result.ok:
            raise CommandFailed(self.node, line, result.exit_status, result.stderr,
                                signal=result.signal)
        return result

    async def stream(self, command: Command, stdout: Sink, stderr: Sink, *,
                     stdin: StdinSource = None, timeout: float | None = None) -> int:
        """Run a command, handing its output to `stdout`/`stderr` as it comes.

        `stdin` is bytes or an async iterable of chunks (EOF follows it; none
        means immediate EOF). Returns the exit status (128 + N for signal N).
        On timeout or cancellation the command gets SIGKILL (dropbear sends it
        to the command's shell only) and its channel is closed. As with any
        SSH, output ends when every process holding it has exited: start
        background processes with their output redirected.
        """
        ended = await self._execute(command_line(command), stdout, stderr, stdin, timeout)
        return ended.status

    async def _execute(self, line: str, on_stdout: Sink, on_stderr: Sink,
                       stdin: StdinSource, timeout: float | None) -> _Exit:
        started = time.monotonic()
        self._log.debug("run: %s", short_command(line))
        # One deadline for opening the channel and running: a guest that hangs (stopped
        # at a breakpoint, say) may never answer the channel request.
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                process = await self._conn.create_process(line, encoding=None)
        except TimeoutError:
            assert timeout is not None
            raise CommandTimeout(self.node, line, timeout) from None
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"cannot start {short_command(line)!r}", exc) from None
        finished = False
        try:
            async with asyncio.timeout_at(deadline):
                await self._drive(process, on_stdout, on_stderr, stdin)
            finished = True
        except TimeoutError:
            assert timeout is not None
            raise CommandTimeout(self.node, line, timeout) from None
        finally:
            if not finished:
                _abort(process)
        ended = self._exit_of(process, line)
        self._log.debug("exit %d after %.3f s: %s", ended.status, time.monotonic() - started,
                        short_command(line))
        return ended

    async def _drive(self, process: asyncssh.SSHClientProcess[bytes], on_stdout: Sink,
                     on_stderr: Sink, stdin: StdinSource) -> None:
        feeder = asyncio.create_task(_feed(process, stdin))
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(process.stdout, on_stdout))
                    group.create_task(self._pump(process.stderr, on_stderr))
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            await process.wait_closed()
        finally:
            # The command may end before its input does (e.g. local stdin of `lab exec`).
            if not feeder.done():
                feeder.cancel()
            await asyncio.wait([feeder])
        if not feeder.cancelled() and (problem := feeder.exception()) is not None:
            raise problem

    async def _pump(self, reader: asyncssh.SSHReader[bytes], sink: Sink) -> None:
        while True:
            try:
                chunk = await reader.read(CHUNK)
            except (asyncssh.Error, OSError) as exc:
                raise self._lost("connection lost during a command", exc) from None
            if not chunk:
                return
            outcome = sink(chunk)
            if inspect.isawaitable(outcome):
                await outcome

    def _exit_of(self, process: asyncssh.SSHClientProcess[bytes], line: str) -> _Exit:
        if process.exit_signal is not None:
            name = process.exit_signal[0]
            number = getattr(signal, f"SIG{name}", None)
            return _Exit(128 + int(number) if number is not None else 255, name)
        if process.exit_status is None or process.exit_status < 0:
            raise SSHError(self.node, f"command {short_command(line)!r} ended without an "
                           "exit status (connection lost?)")
        return _Exit(process.exit_status, None)

    def _lost(self, what: str, exc: BaseException) -> SSHError:
        reason = exc.reason if isinstance(exc, asyncssh.Error) else str(exc)
        return SSHError(self.node, f"{what}: {reason or type(exc).__name__}",
                        hint="is the node still running? see `lab status`")

    # -- files ------------------------------------------------------------------------

    async def put(self, local: Path, remote: str, *, recursive: bool = False,
                  timeout: float | None = None) -> None:
        """Copy a local file (or directory, with `recursive`) to the node over SFTP.

        Modes and times are preserved. As with scp, an existing remote
        directory receives the copy inside it; otherwise `remote` is the name.
        Failures raise `TransferError`.
        """
        await self._files.put(local, remote, recursive=recursive, timeout=timeout)

    async def get(self, remote: str, local: Path, *, recursive: bool = False,
                  timeout: float | None = None) -> None:
        """Copy a file (or directory, with `recursive`) from the node; like `put`."""
        await self._files.get(remote, local, recursive=recursive, timeout=timeout)


async def _feed(process: asyncssh.SSHClientProcess[bytes], stdin: StdinSource) -> None:
    """Send the input, then EOF. A command may stop reading early; a failing
    source aborts the command (it must not run on truncated input)."""
    writer = process.stdin
    try:
        if isinstance(stdin, bytes):
            writer.write(stdin)
            await writer.drain()
        elif stdin is not None:
            async for chunk in stdin:
                writer.write(chunk)
                await writer.drain()
        writer.write_eof()
    except (BrokenPipeError, ConnectionError, asyncssh.Error):
        pass
    except Exception:
        _abort(process)
        raise


def _abort(process: asyncssh.SSHClientProcess[bytes]) -> None:
    """Kill the remote command (dropbear signals its process) and close the channel."""
    with suppress(OSError, asyncssh.Error):
        process.send_signal("KILL")
    process.close()
