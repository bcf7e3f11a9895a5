"""An in-process SSH server standing in for a guest's dropbear.

It listens on 127.0.0.1, accepts only the lab key, pins an ed25519 host key,
runs each command with a real `/bin/sh -c` in a temporary directory, serves
SFTP from the local filesystem and, like dropbear, turns a client's "signal"
request into a signal for the command's process (closing a channel does not
kill the command).

socklab's own directories on a guest (GUEST_DIRS) are kept under the fake's
directory, in commands and over SFTP. The kernel's files (tracefs, debugfs)
are never the host's: a command or script that names them is refused, unless
a `FakeTracefs` answers it as a guest would.
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
from lab.tracers.ftrace.script import (
    INSTANCE_DIR,
    SKIPPED_PREFIX,
    cleanup_script,
    stop_script,
)

CHUNK = 65536
GUEST_DIRS = ("/run/socklab", "/opt/socklab")  # where socklab puts files on a guest
KERNEL_FILES = "/sys/kernel/"  # tracefs, debugfs: the host's must never be touched
REFUSED = "echo 'fake guest: refused, this names the kernel files of the host' >&2; exit 126"
Stand_in = tuple[str, bytes]  # the command to run instead, and its input



async def eventually(condition: Callable[[], bool], within: float = 3.0) -> bool:
    """Whether `condition` comes true within `within` seconds (polled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True

@dataclass
class FakeTracefs:
    """A guest's tracefs as socklab's ftrace scripts (lab/tracers/ftrace/script.py) see it.

    Each operation of a trace (start, stop, read, cleanup) answers as on a guest,
    or, when named in `fail`, fails as a refused write does; in `hang`, it never
    ends (until the client kills it). The host's tracefs is never touched.
    """

    trace: bytes = b""  # the instance's trace file, as read once stopped
    stats: bytes = b""  # what the stop script prints
    fail: set[str] = field(default_factory=set)
    refusal: str = "No such device"  # why a failing write fails
    hang: set[str] = field(default_factory=set)
    done: list[str] = field(default_factory=list)  # operations asked for, in order

    def answer(self, command: str, script: bytes | None) -> Stand_in | None:
        operation = self._operation(command, script)
        if operation is None:
            return None
        self.done.append(operation)
        if operation in self.hang:
            return "exec sleep 600", b""
        if operation in self.fail:
            return f"echo 'sh: write error: {self.refusal}' >&2; exit 1", b""
        output = {"start": f"{SKIPPED_PREFIX}:\n".encode(), "stop": self.stats,
                  "read": self.trace, "cleanup": b""}[operation]
        return "cat", output

    @staticmethod
    def _operation(command: str, script: bytes | None) -> str | None:
        if command == f"cat {INSTANCE_DIR}/trace":
            return "read"
        if script is None:
            return None
        text = script.decode(errors="replace")
        if text == stop_script():
            return "stop"
        if text == cleanup_script():
            return "cleanup"
        return "start" if SKIPPED_PREFIX in text else None


@dataclass
class FakeGuest:
    home: Path  # commands run here
    client_key: Path  # the lab's private key (authorized on this guest)
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519"))
    port: int = 0
    signals: list[str] = field(default_factory=list)  # signal requests received
    tracefs: FakeTracefs | None = None  # answers the ftrace scripts; None: refuses them
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

    def local_path(self, path: str) -> str:
        """Where a path on the guest is on this host: GUEST_DIRS are under `home`."""
        for guest_dir in GUEST_DIRS:
            if path == guest_dir or path.startswith(guest_dir + "/"):
                return f"{self.home}{path}"
        return path

    def _stand_in(self, command: str, script: bytes | None) -> Stand_in | None:
        """What runs instead of a command, if it must not run as it is."""
        if self.tracefs is not None and (answer := self.tracefs.answer(command, script)):
            return answer
        if KERNEL_FILES in command or (script is not None and KERNEL_FILES.encode() in script):
            return REFUSED, b""
        return None

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
            process_factory=self._serve, sftp_factory=lambda chan: _SFTP(chan, self),
            encoding=None, line_editor=False)
        self.port = self._acceptor.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        """Stop answering on open connections, as a guest halted by a debugger: its
        TCP connections stay up (QEMU holds them), nothing in the guest reads them."""
        for conn in self.connections:
            conn._transport.pause_reading()  # asyncssh has no public way

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
        command = process.command or "exec /bin/sh"
        given: bytes | None = None  # the input, when read ahead instead of passed on
        if command == "sh -s":  # a script: read it first, to see what it touches
            given = await process.stdin.read()
        if (instead := self._stand_in(command, given)) is not None:
            command, given = instead
        for guest_dir in GUEST_DIRS:
            command = command.replace(guest_dir, self.local_path(guest_dir))
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command,
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
                if given is not None:
                    proc.stdin.write(given)
                    await proc.stdin.drain()
                    return
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


class _SFTP(asyncssh.SFTPServer):
    """SFTP from the local filesystem, with the guest's directories under the fake's."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], guest: FakeGuest) -> None:
        super().__init__(chan)
        self._guest = guest

    def map_path(self, path: bytes) -> bytes:
        return os.fsencode(self._guest.local_path(os.fsdecode(path)))


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
