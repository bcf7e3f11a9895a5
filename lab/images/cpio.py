"""A deterministic writer for the newc cpio format the kernel unpacks as initramfs."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Protocol

TRAILER = "TRAILER!!!"


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class CpioWriter:
    """Writes entries with fixed owner (root) and mtime (0), so builds are reproducible."""

    def __init__(self, out: Writable) -> None:
        self._out = out
        self._ino = 0
        self._written = 0

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self._write(header + encoded)
        self._pad()
        self._write(data)
        self._pad()

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def _pad(self) -> None:
        self._write(b"\0" * (-self._written % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def node(self, name: str, mode: int) -> None:
        self._entry(name, mode)

    def tree(self, root: Path) -> None:
        """Every file, directory and symlink under root, parents before children."""
        for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).parts):
            name = str(path.relative_to(root))
            st = path.lstat()
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                self.symlink(name, str(path.readlink()))
            elif stat.S_ISDIR(st.st_mode):
                self.directory(name, perm)
            elif stat.S_ISREG(st.st_mode):
                self.file(name, path.read_bytes(), perm)

    def close(self) -> None:
        self._entry(TRAILER, 0, nlink=1)
