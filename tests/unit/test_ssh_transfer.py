"""NodeSession.put/get over SFTP against the in-process server (local filesystem)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lab.errors import SSHError
from lab.ssh import NodeSession, TransferError

if TYPE_CHECKING:
    from conftest import FakeGuest


@pytest.fixture
async def session(fake_guest: FakeGuest) -> AsyncIterator[NodeSession]:
    async with NodeSession.open("n1", fake_guest.endpoint, fake_guest.client_key) as s:
        yield s


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "secret").write_bytes(os.urandom(100_000))
    (root / "secret").chmod(0o600)
    (root / "sub" / "deeper" / "data.txt").write_text("deep\n")
    (root / "sub" / "deeper" / "data.txt").chmod(0o640)
    (root / "sub").chmod(0o750)


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    return {str(p.relative_to(root)): (mode(p), p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


async def test_file_round_trip_keeps_mode(session: NodeSession, fake_guest: FakeGuest,
                                          tmp_path: Path) -> None:
    local = tmp_path / "prog"
    local.write_bytes(b"\x7fELF" + os.urandom(300_000))
    local.chmod(0o751)
    remote = fake_guest.home / "prog"
    await session.put(local, str(remote))
    assert remote.read_bytes() == local.read_bytes()
    assert mode(remote) == 0o751
    assert (await session.run(["stat", "-c", "%a", str(remote)])).stdout == b"751\n"

    back = tmp_path / "back"
    await session.get(str(remote), back)
    assert back.read_bytes() == local.read_bytes()
    assert mode(back) == 0o751


async def test_directory_round_trip(session: NodeSession, fake_guest: FakeGuest,
                                    tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    await session.put(tree, str(fake_guest.home / "deployed"), recursive=True)
    assert snapshot(fake_guest.home / "deployed") == snapshot(tree)

    await session.get(str(fake_guest.home / "deployed"), tmp_path / "fetched", recursive=True)
    assert snapshot(tmp_path / "fetched") == snapshot(tree)


async def test_into_an_existing_directory(session: NodeSession, fake_guest: FakeGuest,
                                          tmp_path: Path) -> None:
    """Like scp: an existing destination directory receives the copy inside it."""
    (tmp_path / "f").write_text("x")
    (fake_guest.home / "dir").mkdir()
    await session.put(tmp_path / "f", str(fake_guest.home / "dir"))
    assert (fake_guest.home / "dir" / "f").read_text() == "x"
    (tmp_path / "local-dir").mkdir()
    await session.get(str(fake_guest.home / "dir" / "f"), tmp_path / "local-dir")
    assert (tmp_path / "local-dir" / "f").read_text() == "x"


async def test_missing_local_file(session: NodeSession, tmp_path: Path) -> None:
    with pytest.raises(TransferError, match=r"node n1: cannot copy .*/nope: no such file"):
        await session.put(tmp_path / "nope", "/tmp/x")


async def test_missing_remote_file(session: NodeSession, fake_guest: FakeGuest,
                                   tmp_path: Path) -> None:
    with pytest.raises(TransferError) as info:
        await session.get(str(fake_guest.home / "nope"), tmp_path / "x")
    assert isinstance(info.value, SSHError)
    assert str(info.value).startswith(f"node n1: cannot copy n1:{fake_guest.home}/nope to ")
    assert "no such file" in str(info.value).lower()
    assert not (tmp_path / "x").exists()


async def test_missing_remote_directory(session: NodeSession, fake_guest: FakeGuest,
                                        tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(TransferError, match=r"(?i)no such file"):
        await session.put(tmp_path / "f", str(fake_guest.home / "no" / "where"))


async def test_directories_need_recursive(session: NodeSession, fake_guest: FakeGuest,
                                          tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="is a directory") as info:
        await session.put(tmp_path, str(fake_guest.home / "x"))
    assert info.value.hint == "copy directories recursively (lab cp -r)"
    with pytest.raises(TransferError, match="is a directory"):
        await session.get(str(fake_guest.home), tmp_path / "x")


async def test_missing_local_destination_directory(session: NodeSession, fake_guest: FakeGuest,
                                                   tmp_path: Path) -> None:
    (fake_guest.home / "f").write_text("x")
    with pytest.raises(TransferError, match="No such file or directory"):
        await session.get(str(fake_guest.home / "f"), tmp_path / "no" / "where")
