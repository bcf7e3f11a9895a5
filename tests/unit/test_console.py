"""Waiting for a node's ready line on its console log, and showing the log's tail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab.errors import BootError
from lab.lifecycle.console import ReadyLine, console_tail, wait_for_ready_line

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2bzpYMVUGgdhJ7aOnUzNIs2i/tRzyDtQRYG1oXw8ab"
BOOT_NOISE = b"".join(b"[    0.%06d] boot message %d\r\n" % (i * 1000, i) for i in range(40))
# As the guest prints it: dropbearkey's public key line, comment included.
READY = f"socklab-ready server {KEY} root@server\r\n".encode()
INTERVAL = 0.01


class Alive:
    """The guest's liveness as the backend would report it; counts the questions."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.running


async def append_later(path: Path, *chunks: bytes, delay: float = 0.1) -> None:
    """Like the serial console's log: bytes arrive in pieces, some time apart."""
    for chunk in chunks:
        await asyncio.sleep(delay)
        with path.open("ab") as f:
            f.write(chunk)


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_ready_line_written_later_is_found(tmp_path: Path) -> None:
    log = tmp_path / "server.console.log"  # does not exist yet: the domain just started
    alive = Alive()
    writer = asyncio.create_task(append_later(log, BOOT_NOISE, READY + b"login prompt\r\n"))
    ready = await wait_for_ready_line("server", log, deadline=deadline_in(5), alive=alive,
                                      interval=INTERVAL)
    await writer
    assert ready == ReadyLine("server", KEY)
    assert alive.calls > 0  # it kept asking whether the guest still runs


@pytest.mark.parametrize("line", [READY, f"socklab-ready server {KEY}\n".encode()],
                         ids=["with-comment", "bare-key"])
async def test_ready_line_already_there(tmp_path: Path, line: bytes) -> None:
    log = tmp_path / "server.console.log"
    log.write_bytes(BOOT_NOISE + line)
    ready = await wait_for_ready_line("server", log, deadline=deadline_in(5), alive=Alive(),
                                      interval=INTERVAL)
    assert ready == ReadyLine("server", KEY)


async def test_a_ready_line_cut_in_half_is_not_read_until_complete(tmp_path: Path) -> None:
    log = tmp_path / "server.console.log"
    log.write_bytes(BOOT_NOISE)
    half = READY.index(b"AAAA") + 20  # inside the key
    writer = asyncio.create_task(append_later(log, READY[:half], READY[half:], delay=0.1))
    ready = await wait_for_ready_line("server", log, deadline=deadline_in(5), alive=Alive(),
                                      interval=INTERVAL)
    await writer
    assert ready.host_key == KEY


@pytest.mark.parametrize("line", [
    b"socklab-ready server ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\r\n",  # not the pinned type
    b"echo socklab-ready server " + KEY.encode() + b"\r\n",  # not at the start of a line
])
async def test_lines_that_are_not_the_ready_line(tmp_path: Path, line: bytes) -> None:
    log = tmp_path / "server.console.log"
    log.write_bytes(BOOT_NOISE + line)
    with pytest.raises(BootError) as caught:  # waited for until the deadline: never read
        await wait_for_ready_line("server", log, deadline=deadline_in(0.1), alive=Alive(),
                                  interval=INTERVAL)
    assert caught.value.message == (
        "node server: no ready line on the console before the deadline")


async def test_deadline_raises_boot_error_with_the_console_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.console.log"
    log.write_bytes(BOOT_NOISE + b"Kernel panic - not syncing: VFS: Unable to mount root fs\r\n")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BootError) as caught:
        await wait_for_ready_line("server", log, deadline=deadline_in(0.3), alive=Alive(),
                                  interval=INTERVAL)
    assert 0.3 <= loop.time() - started < 2
    error = caught.value
    assert error.node == "server"
    assert error.message == "node server: no ready line on the console before the deadline"
    assert error.hint is not None and "--timeout" in error.hint
    assert error.console_tail == console_tail(log)
    assert error.console_tail.endswith("Kernel panic - not syncing: VFS: Unable to mount root fs")


async def test_a_guest_that_stopped_fails_fast(tmp_path: Path) -> None:
    log = tmp_path / "server.console.log"
    log.write_bytes(BOOT_NOISE + b"reboot: Power down\r\n")
    alive = Alive(running=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BootError) as caught:
        await wait_for_ready_line("server", log, deadline=deadline_in(60), alive=alive,
                                  interval=INTERVAL)
    assert loop.time() - started < 1, "waited for the deadline, not for the guest"
    assert caught.value.message == "node server: the guest stopped before it was ready"
    assert caught.value.console_tail.endswith("reboot: Power down")
    assert alive.calls == 1


async def test_a_guest_that_never_wrote_anything(tmp_path: Path) -> None:
    with pytest.raises(BootError) as caught:
        await wait_for_ready_line("server", tmp_path / "missing.log", deadline=deadline_in(0.05),
                                  alive=Alive(), interval=INTERVAL)
    assert caught.value.console_tail == ""
    assert caught.value.hint is not None and "empty" in caught.value.hint


def test_console_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(100)))
    assert console_tail(log) == "\n".join(f"line {i}" for i in range(75, 100))
    assert console_tail(log, lines=3) == "line 97\nline 98\nline 99"


def test_console_tail_drops_carriage_returns(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"one\r\ntwo\r\r\nthree\rfour\r\n")
    assert console_tail(log) == "one\ntwo\nthreefour"
    assert "\r" not in console_tail(log)


def test_console_tail_of_a_large_or_odd_log(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"x" * 1_000_000 + b"\r\n\xff\xfe not utf-8\r\nlast line\r\n")
    tail = console_tail(log, lines=2)
    assert tail == "\ufffd\ufffd not utf-8\nlast line"
    assert console_tail(tmp_path / "missing.log") == ""
