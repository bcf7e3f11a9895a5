"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import errno
import stat
from pathlib import Path

import pytest

from lab.files import atomic_output, atomic_write


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("wanted", [0o600, 0o644, 0o755])
def test_the_file_appears_whole_with_its_mode(tmp_path: Path, wanted: int) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"whole\n" * 1000, mode=wanted)
    assert target.read_bytes() == b"whole\n" * 1000
    assert mode(target) == wanted
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_an_existing_file_is_replaced_and_takes_the_new_mode(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    target.chmod(0o644)
    atomic_write(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600


def test_a_failing_write_leaves_no_temp_file_and_the_old_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")

    def disk_full(self: Path, data: bytes) -> int:
        with self.open("wb") as f:
            f.write(data[:2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, b"new contents", mode=0o644)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_failing_block_leaves_no_temp_file_and_no_target(tmp_path: Path) -> None:
    target = tmp_path / "binary"
    with pytest.raises(RuntimeError), atomic_output(target, mode=0o755) as temp:
        assert temp.parent == tmp_path
        temp.write_bytes(b"half a")
        raise RuntimeError("the compiler failed")
    assert list(tmp_path.iterdir()) == []


def test_the_temp_file_is_private_while_it_is_written(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "id_ed25519", mode=0o600) as temp:
        assert mode(temp) == 0o600
        temp.write_bytes(b"secret")
    assert (tmp_path / "id_ed25519").read_bytes() == b"secret"


def test_a_failed_write_is_named_by_its_target(tmp_path: Path) -> None:
    target = tmp_path / "trace.txt"
    with pytest.raises(OSError) as caught, atomic_output(target, mode=0o644) as temp:
        raise OSError(28, "No space left on device", str(temp))
    assert (caught.value.errno, caught.value.filename) == (28, str(target))
    assert list(tmp_path.iterdir()) == []


def test_an_error_about_another_file_keeps_its_own_name(tmp_path: Path) -> None:
    missing = tmp_path / "base.img"
    with pytest.raises(FileNotFoundError) as caught, \
            atomic_output(tmp_path / "node.img", mode=0o644) as temp:
        temp.write_bytes(missing.read_bytes())  # the input is what is missing
    assert caught.value.filename == str(missing)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_it_cannot_write_in_is_named_by_the_target(tmp_path: Path) -> None:
    target = tmp_path / "gone" / "report.html"  # its directory was removed, say
    with pytest.raises(FileNotFoundError) as caught, atomic_output(target, mode=0o644):
        pass
    assert caught.value.filename == str(target)
