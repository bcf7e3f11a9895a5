"""Connecting: host key pinning, authentication, readiness, and plain `ssh -F`."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh
import pytest

from lab.errors import SSHError
from lab.keys import ensure_lab_keypair, write_known_hosts, write_ssh_config
from lab.ssh import (
    AuthenticationFailed,
    Endpoint,
    HostKeyMismatch,
    NodeSession,
    NodeUnreachable,
    wait_until_ready,
)

if TYPE_CHECKING:
    from conftest import FakeGuest, FakeGuestFactory


def other_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return key.export_public_key("openssh").decode().strip()


async def test_pinned_key_connects(fake_guest: FakeGuest) -> None:
    async with NodeSession.open("n1", fake_guest.endpoint, fake_guest.client_key) as s:
        assert (await s.run("echo ok", check=True)).stdout == b"ok\n"
        assert s.node == "n1"


async def test_wrong_host_key_is_refused(fake_guest: FakeGuest) -> None:
    endpoint = dataclasses.replace(fake_guest.endpoint, host_key=other_key())
    with pytest.raises(HostKeyMismatch) as info:
        await NodeSession.connect("n1", endpoint, fake_guest.client_key)
    error = info.value
    assert isinstance(error, SSHError)
    assert error.node == "n1"
    assert str(error) == (
        f"node n1: the SSH host key of 127.0.0.1:{fake_guest.port} does not match the key "
        "pinned at boot (hint: the guest may have been replaced: run `lab down` and "
        "`lab up` again)")


async def test_host_key_of_another_type_is_refused(
        fake_guest_factory: FakeGuestFactory, lab_key: Path) -> None:
    rsa_guest = await fake_guest_factory(
        host_key=asyncssh.generate_private_key("ssh-rsa", key_size=2048))
    endpoint = dataclasses.replace(rsa_guest.endpoint, host_key=other_key())
    with pytest.raises(HostKeyMismatch):
        await NodeSession.connect("n1", endpoint, lab_key)
    # An RSA key pinned as such works: pinning is not ed25519-only.
    async with NodeSession.open("n1", rsa_guest.endpoint, lab_key) as s:
        assert (await s.run("true")).ok


async def test_garbage_host_key(fake_guest: FakeGuest) -> None:
    endpoint = dataclasses.replace(fake_guest.endpoint, host_key="ssh-ed25519 !!!")
    with pytest.raises(SSHError, match=r"node n1: the pinned SSH host key .* is not a public"):
        await NodeSession.connect("n1", endpoint, fake_guest.client_key)


async def test_foreign_client_key_is_refused(fake_guest: FakeGuest, tmp_path: Path) -> None:
    stranger = ensure_lab_keypair(tmp_path / "other-keys")
    with pytest.raises(AuthenticationFailed, match="node n1: the guest refused the lab key"):
        await NodeSession.connect("n1", fake_guest.endpoint, stranger)


async def test_refused_connection_names_the_node(lab_key: Path, free_port: int) -> None:
    endpoint = Endpoint("127.0.0.1", free_port, other_key())
    with pytest.raises(NodeUnreachable,
                       match=f"node web: connection to 127.0.0.1:{free_port} refused"):
        await NodeSession.connect("web", endpoint, lab_key)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word (a guest not up yet)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_connect_timeout(silent_port: int, fake_guest: FakeGuest) -> None:
    endpoint = dataclasses.replace(fake_guest.endpoint, port=silent_port)
    started = time.monotonic()
    with pytest.raises(NodeUnreachable, match=r"node n1: no SSH answer from .* within 0\.3 s"):
        await NodeSession.connect("n1", endpoint, fake_guest.client_key, connect_timeout=0.3)
    assert time.monotonic() - started < 2


async def test_missing_client_key(fake_guest: FakeGuest, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read the lab's SSH key"):
        await NodeSession.connect("n1", fake_guest.endpoint, tmp_path / "nope")


# -- wait_until_ready -----------------------------------------------------------------


async def test_ready_when_the_server_starts_late(
        fake_guest_factory: FakeGuestFactory, lab_key: Path, free_port: int) -> None:
    late = await fake_guest_factory(start=False)
    loop = asyncio.get_running_loop()

    async def boot() -> None:
        await asyncio.sleep(0.6)
        await late.start(free_port)

    booting = asyncio.create_task(boot())
    try:
        endpoint = dataclasses.replace(late.endpoint, port=free_port)
        started = loop.time()
        session = await wait_until_ready("late", endpoint, lab_key, deadline=loop.time() + 10)
        async with session:
            assert 0.5 < loop.time() - started < 5
            assert (await session.run("echo up", check=True)).stdout == b"up\n"
    finally:
        await booting


async def test_ready_retries_silent_and_dropped_connections(
        fake_guest_factory: FakeGuestFactory, lab_key: Path, silent_port: int) -> None:
    """QEMU's port forward accepts before the guest listens, then drops or stalls."""
    loop = asyncio.get_running_loop()
    drops = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal drops
        drops += 1
        writer.close()

    dropper = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = dropper.sockets[0].getsockname()[1]
    guest = await fake_guest_factory(start=False)

    async def boot() -> None:
        await asyncio.sleep(0.5)
        dropper.close()
        await dropper.wait_closed()
        await guest.start(port)

    booting = asyncio.create_task(boot())
    try:
        endpoint = dataclasses.replace(guest.endpoint, port=port)
        session = await wait_until_ready("n1", endpoint, lab_key, deadline=loop.time() + 10)
        await session.close()
        assert drops >= 2
    finally:
        await booting

    # A port that never answers: each attempt is bounded, the deadline holds.
    endpoint = dataclasses.replace(guest.endpoint, port=silent_port)
    started = loop.time()
    with pytest.raises(NodeUnreachable, match="last error: no SSH answer"):
        await wait_until_ready("n1", endpoint, lab_key, deadline=loop.time() + 0.8,
                               attempt_timeout=0.3)
    assert loop.time() - started < 1.5


async def test_ready_fails_at_the_deadline(lab_key: Path, free_port: int) -> None:
    loop = asyncio.get_running_loop()
    endpoint = Endpoint("127.0.0.1", free_port, other_key())
    started = loop.time()
    with pytest.raises(NodeUnreachable) as info:
        await wait_until_ready("n1", endpoint, lab_key, deadline=loop.time() + 0.5,
                               interval=0.05)
    elapsed = loop.time() - started
    assert 0.45 < elapsed < 1.5
    message = str(info.value)
    assert message.startswith("node n1: no SSH session within 0.")
    assert "last error: connection to 127.0.0.1:" in message and "refused" in message
    assert "hint: the guest may still be booting" in message


async def test_ready_does_not_retry_a_wrong_host_key(fake_guest: FakeGuest) -> None:
    loop = asyncio.get_running_loop()
    endpoint = dataclasses.replace(fake_guest.endpoint, host_key=other_key())
    started = loop.time()
    with pytest.raises(HostKeyMismatch):
        await wait_until_ready("n1", endpoint, fake_guest.client_key,
                               deadline=loop.time() + 10)
    assert loop.time() - started < 2


# -- the generated ssh_config with the real OpenSSH client ----------------------------

SSH = shutil.which("ssh")


async def ssh(config: Path, *args: str) -> tuple[int, bytes, bytes]:
    assert SSH is not None
    proc = await asyncio.create_subprocess_exec(
        SSH, "-F", str(config), *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out, err


@pytest.mark.skipif(SSH is None, reason="no OpenSSH client")
async def test_openssh_with_generated_config(
        fake_guest_factory: FakeGuestFactory, tmp_path: Path, free_port: int) -> None:
    # A lab home with characters ssh_config treats specially.
    state = tmp_path / 'my "lab" 100% #1 \\ x'
    state.mkdir()
    key = ensure_lab_keypair(state / "keys")
    fake_guest = await fake_guest_factory(client_key=key)
    other = dataclasses.replace(fake_guest.endpoint, port=free_port)
    endpoints = {"server": fake_guest.endpoint, "client": other}
    write_known_hosts(state / "known_hosts", endpoints)
    write_ssh_config(state / "ssh_config", endpoints, identity_file=key,
                     known_hosts=state / "known_hosts", connect_timeout=5)

    code, out, err = await ssh(state / "ssh_config", "server", "echo", "hello from", "$PWD")
    assert code == 0, err.decode()
    assert out.decode() == f"hello from {fake_guest.home}\n"
    code, out, err = await ssh(state / "ssh_config", "server", "exit 3")
    assert code == 3

    # A pinned key that does not match: OpenSSH refuses too.
    write_known_hosts(state / "known_hosts",
                      {"server": dataclasses.replace(fake_guest.endpoint, host_key=other_key())})
    code, out, err = await ssh(state / "ssh_config", "server", "true")
    assert code == 255
    assert b"host key" in err.lower()
