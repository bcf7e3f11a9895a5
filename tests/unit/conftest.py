"""An in-process SSH server standing in for a guest's dropbear.

It listens on 127.0.0.1, accepts only the lab key, pins an ed25519 host key,
runs each command with a real `/bin/sh -c` in a temporary directory, serves
SFTP from the local filesystem and, like dropbear, turns a client's "signal"
request into a signal for the command's process (closing a channel does not
kill the command).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

from lab.keys import ensure_lab_keypair, public_key_line
from lab.ssh import Endpoint

CHUNK = 65536


@dataclass
class FakeGuest:
    home: Path  # commands run here
    client_key: Path  # the lab's private key (authorized on this guest)
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519"))
    port: int = 0
    signals: list[str] = field(default_factory=list)  # signal requests received
    connections: list[asyncssh.SSHServerConnection] = field(default_factory=list)
    _acceptor: asyncssh.SSHAcceptor | None = None
    _procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port, self.host_key_line)

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()

    async def start(self, port: int = 0) -> None:
        guest = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                guest.connections.append(conn)

        self._acceptor = await asyncssh.create_server(
            Server, "127.0.0.1", port,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                public_key_line(self.client_key) + "\n"),
            process_factory=self._serve, sftp_factory=True,
            encoding=None, line_editor=False)
        self.port = self._acceptor.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for conn in self.connections:
            conn.close()
        # Commands left behind (like dropbear, closing a channel kills nothing).
        for proc in self._procs:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)

    async def _serve(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", process.command or "exec /bin/sh",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.home, start_new_session=True)
        self._procs.append(proc)
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)

        def signal_received(name: str) -> None:
            self.signals.append(name)
            with suppress(ProcessLookupError, AttributeError):
                proc.send_signal(getattr(signal, f"SIG{name}"))

        # What dropbear does with a "signal" channel request.
        process.signal_received = signal_received  # type: ignore[method-assign,assignment]

        async def feed() -> None:
            assert proc.stdin is not None
            try:
                while data := await process.stdin.read(CHUNK):
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            except (OSError, asyncssh.Error):
                pass
            finally:
                proc.stdin.close()

        async def copy(source: asyncio.StreamReader | None,
                       target: asyncssh.SSHWriter[bytes]) -> None:
            assert source is not None
            try:
                while data := await source.read(CHUNK):
                    target.write(data)
                    await target.drain()
            except (OSError, asyncssh.Error):
                pass  # channel gone: stop reading, the command gets SIGPIPE

        feeder = asyncio.create_task(feed())
        await asyncio.gather(copy(proc.stdout, process.stdout),
                             copy(proc.stderr, process.stderr))
        status = await proc.wait()
        feeder.cancel()
        with suppress(OSError, asyncssh.Error):
            if status < 0:
                process.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
            else:
                process.exit(status)


@pytest.fixture
def lab_key(tmp_path: Path) -> Path:
    """The lab's private key (ed25519, 0600) in a fresh key directory."""
    return ensure_lab_keypair(tmp_path / "keys")


@pytest.fixture
def free_port() -> int:
    """A 127.0.0.1 port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


FakeGuestFactory = Callable[..., Awaitable[FakeGuest]]


@pytest.fixture
async def fake_guest_factory(tmp_path: Path, lab_key: Path) -> AsyncIterator[FakeGuestFactory]:
    """make(port=0, host_key=None, client_key=lab_key, start=True) -> FakeGuest."""
    guests: list[FakeGuest] = []

    async def make(*, port: int = 0, host_key: asyncssh.SSHKey | None = None,
                   client_key: Path | None = None, start: bool = True) -> FakeGuest:
        home = tmp_path / f"guest{len(guests)}"
        home.mkdir()
        fake = FakeGuest(home=home, client_key=client_key or lab_key)
        if host_key is not None:
            fake.host_key = host_key
        guests.append(fake)
        if start:
            await fake.start(port)
        return fake

    try:
        yield make
    finally:
        for fake in guests:
            await fake.stop()


@pytest.fixture
async def fake_guest(fake_guest_factory: FakeGuestFactory) -> FakeGuest:
    """A started fake guest that authorizes `lab_key`."""
    return await fake_guest_factory()
