"""The newc cpio writer and the per-node initrd overlay built with it.

Archives are checked twice: by a small newc parser written from the format
description (header fields, 4-byte alignment, TRAILER!!!), and by GNU cpio.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import stat
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.accel import _write_probe_initrd
from lab.images.cpio import TRAILER, CpioWriter
from lab.images.overlay import GuestConfig, GuestLink, overlay_archive, write_node_initrd

CPIO = shutil.which("cpio")
needs_cpio = pytest.mark.skipif(CPIO is None, reason="GNU cpio is not installed")

NEWC_MAGIC = b"070701"
HEADER_SIZE = 110  # magic + 13 fields of 8 hex digits


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes
    ino: int
    uid: int
    gid: int
    nlink: int
    mtime: int


def _align(offset: int) -> int:
    return offset + (-offset % 4)


def parse_newc(archive: bytes, start: int = 0) -> tuple[list[Entry], int]:
    """The entries of one newc archive at `start` and the offset just past its trailer."""
    entries: list[Entry] = []
    pos = start
    while True:
        assert pos % 4 == 0, f"header at {pos} is not 4-byte aligned"
        assert archive[pos:pos + 6] == NEWC_MAGIC, f"no newc magic at {pos}"
        fields = [int(archive[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, size, _, _, _, _, namesize, check = fields
        assert check == 0
        name_end = pos + HEADER_SIZE + namesize
        raw_name = archive[pos + HEADER_SIZE:name_end]
        assert raw_name.endswith(b"\0") and b"\0" not in raw_name[:-1]
        data_start = _align(name_end)
        assert archive[name_end:data_start] == b"\0" * (data_start - name_end)
        data = archive[data_start:data_start + size]
        assert len(data) == size, "archive ends inside an entry"
        pos = _align(data_start + size)
        assert archive[data_start + size:pos] == b"\0" * (pos - data_start - size)
        name = raw_name[:-1].decode()
        if name == TRAILER:
            assert size == 0
            return entries, pos
        entries.append(Entry(name, mode, data, ino, uid, gid, nlink, mtime))


def parse_only(archive: bytes) -> list[Entry]:
    entries, end = parse_newc(archive)
    assert end == len(archive), "bytes after the trailer"
    return entries


def write(build: Callable[[CpioWriter], None]) -> bytes:
    """Run `build(writer)` on a fresh in-memory archive and close it."""
    buf = io.BytesIO()
    writer = CpioWriter(buf)
    build(writer)
    writer.close()
    return buf.getvalue()


def sample(writer: CpioWriter) -> None:
    writer.directory("etc")
    writer.directory("root", 0o700)
    writer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    writer.file("init.sh", b"#!/bin/sh\n", 0o755)
    writer.file("empty", b"")
    # Data lengths 1..7 with names of varying length: every padding case.
    for n in range(1, 8):
        writer.file("f" * n, bytes(range(n)) * 3)
    writer.symlink("init", "bin/busybox")
    writer.symlink("etc/mtab", "/proc/self/mounts")
    writer.node("dev/console", stat.S_IFCHR | 0o600)


# --- the writer, read by our parser ------------------------------------------

def test_entries_read_back_with_names_modes_and_contents() -> None:
    entries = parse_only(write(sample))
    by_name = {e.name: e for e in entries}
    assert [e.name for e in entries] == [
        "etc", "root", "etc/passwd", "init.sh", "empty",
        "f", "ff", "fff", "ffff", "fffff", "ffffff", "fffffff",
        "init", "etc/mtab", "dev/console"]
    assert by_name["etc"].mode == stat.S_IFDIR | 0o755
    assert by_name["root"].mode == stat.S_IFDIR | 0o700
    assert by_name["etc/passwd"].mode == stat.S_IFREG | 0o644
    assert by_name["etc/passwd"].data == b"root:x:0:0:root:/root:/bin/sh\n"
    assert by_name["init.sh"].mode == stat.S_IFREG | 0o755
    assert by_name["empty"].data == b""
    for n in range(1, 8):
        assert by_name["f" * n].data == bytes(range(n)) * 3
    # A symlink's target is its data.
    assert by_name["init"].mode == stat.S_IFLNK | 0o777
    assert by_name["init"].data == b"bin/busybox"
    assert by_name["etc/mtab"].data == b"/proc/self/mounts"
    assert by_name["dev/console"].mode == stat.S_IFCHR | 0o600


def test_entries_are_owned_by_root_with_mtime_zero_and_distinct_inodes() -> None:
    entries = parse_only(write(sample))
    assert {(e.uid, e.gid, e.mtime) for e in entries} == {(0, 0, 0)}
    assert len({e.ino for e in entries}) == len(entries)
    assert all(e.nlink == (2 if stat.S_ISDIR(e.mode) else 1) for e in entries)


def test_archive_ends_with_the_trailer_on_a_4_byte_boundary() -> None:
    archive = write(sample)
    assert len(archive) % 4 == 0
    assert archive.rindex(NEWC_MAGIC) == archive.rindex(b"TRAILER!!!\0") - HEADER_SIZE
    _, end = parse_newc(archive)
    assert end == len(archive)
    # An archive with nothing in it is just the trailer.
    assert parse_only(write(lambda w: None)) == []


def test_same_input_gives_the_same_bytes() -> None:
    assert write(sample) == write(sample)


# (kind, path, content or target, mode), in groups whose order does not matter.
TREE: list[list[tuple[str, str, str, int]]] = [
    [("dir", "bin", "", 0o755), ("file", "bin/tool", "\x7fELF tool", 0o755),
     ("link", "bin/sh", "/bin/tool", 0)],
    [("dir", "etc", "", 0o755), ("dir", "etc/socklab", "", 0o755),
     ("file", "etc/socklab/rc", "#!/bin/sh\necho hi\n", 0o755),
     ("file", "etc/hostname", "node\n", 0o644)],
    [("dir", "root", "", 0o700)],
    [("link", "init", "bin/tool", 0)],
]


def make_tree(root: Path, *, reverse: bool, mtime: int) -> None:
    """The same tree, created in either order, with every mtime set to `mtime`."""
    root.mkdir()
    for group in reversed(TREE) if reverse else TREE:
        for kind, rel, content, mode in group:
            path = root / rel
            if kind == "dir":
                path.mkdir()
                path.chmod(mode)
            elif kind == "file":
                path.write_text(content)
                path.chmod(mode)
            else:
                path.symlink_to(content)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def test_tree_is_parents_first_and_independent_of_creation_order_and_mtimes(
        tmp_path: Path) -> None:
    make_tree(tmp_path / "a", reverse=False, mtime=1_000_000)
    make_tree(tmp_path / "b", reverse=True, mtime=2_000_000)
    first = write(lambda w: w.tree(tmp_path / "a"))
    assert first == write(lambda w: w.tree(tmp_path / "b"))
    assert first == write(lambda w: w.tree(tmp_path / "a"))
    entries = parse_only(first)
    names = [e.name for e in entries]
    assert names == ["bin", "bin/sh", "bin/tool", "etc", "etc/hostname", "etc/socklab",
                     "etc/socklab/rc", "init", "root"]
    by_name = {e.name: e for e in entries}
    assert by_name["bin/tool"].mode == stat.S_IFREG | 0o755
    assert by_name["bin/tool"].data == b"\x7fELF tool"
    assert by_name["root"].mode == stat.S_IFDIR | 0o700
    # Symlinks are stored as links, not followed.
    assert by_name["init"].mode == stat.S_IFLNK | 0o777
    assert by_name["init"].data == b"bin/tool"
    assert by_name["bin/sh"].data == b"/bin/tool"


def test_tree_skips_what_is_not_a_file_directory_or_symlink(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    assert [e.name for e in parse_only(write(lambda w: w.tree(tmp_path)))] == ["keep"]


# --- the writer, read by GNU cpio ---------------------------------------------

def run_cpio(args: list[str], archive: bytes, cwd: Path) -> str:
    assert CPIO is not None
    done = subprocess.run([CPIO, *args], input=archive, cwd=cwd, capture_output=True,
                          check=True, timeout=10)
    return done.stdout.decode()


@needs_cpio
def test_gnu_cpio_lists_the_archive(tmp_path: Path) -> None:
    listing = run_cpio(["-t", "--quiet", "-H", "newc"], write(sample), tmp_path)
    assert listing.splitlines() == [e.name for e in parse_only(write(sample))]


@needs_cpio
def test_gnu_cpio_extracts_the_archive(tmp_path: Path) -> None:
    def files(w: CpioWriter) -> None:
        w.directory("etc")
        w.directory("root", 0o700)
        w.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        w.file("init.sh", b"#!/bin/sh\n", 0o755)
        w.file("secret", b"k" * 5, 0o600)
        w.symlink("init", "init.sh")

    out = tmp_path / "out"
    out.mkdir()
    run_cpio(["-i", "-d", "--quiet", "--no-absolute-filenames", "-H", "newc"],
             write(files), out)
    assert (out / "etc" / "passwd").read_bytes() == b"root:x:0:0:root:/root:/bin/sh\n"
    assert (out / "secret").read_bytes() == b"kkkkk"
    assert stat.S_IMODE((out / "init.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "root").stat().st_mode) == 0o700
    assert (out / "init").is_symlink()
    assert os.readlink(out / "init") == "init.sh"


# --- the per-node overlay -----------------------------------------------------

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2bzpYMVUGgdhJ7aOnUzNIs2i/tRzyDtQRYG1oXw8ab socklab"

CONFIG = GuestConfig(
    hostname="server",
    authorized_key=f"  {KEY}\n\n",
    links=[
        GuestLink("52:54:00:5c:01:00", "mgmt0", ["10.0.2.15/24"]),
        GuestLink("52:54:00:5c:01:01", "eth1", ["10.0.1.20/24", "fd00:0:0:1::20/64"]),
        GuestLink("52:54:00:5c:01:02", "eth2"),
    ],
    hosts=[("10.0.1.10", "client"), ("fd00:0:0:1::10", "client"), ("10.0.1.20", "server")],
    forward=True,
    routes=[("10.0.3.0/24", "10.0.1.1"), ("fd00:0:0:3::/64", "fd00:0:0:1::1")],
)


def test_node_conf_lines() -> None:
    assert CONFIG.node_conf() == (
        "hostname server\n"
        "link 52:54:00:5c:01:00 mgmt0\n"
        "addr mgmt0 10.0.2.15/24\n"
        "link 52:54:00:5c:01:01 eth1\n"
        "addr eth1 10.0.1.20/24\n"
        "addr eth1 fd00:0:0:1::20/64\n"
        "link 52:54:00:5c:01:02 eth2\n"
        "host 10.0.1.10 client\n"
        "host fd00:0:0:1::10 client\n"
        "host 10.0.1.20 server\n"
        "forward\n"
        "route 10.0.3.0/24 10.0.1.1\n"
        "route fd00:0:0:3::/64 fd00:0:0:1::1\n"
    )
    assert GuestConfig("solo", KEY, []).node_conf() == "hostname solo\n"


def test_overlay_archive_holds_node_conf_and_the_authorized_key() -> None:
    entries = parse_only(overlay_archive(CONFIG))
    assert [(e.name, e.mode) for e in entries] == [
        ("etc", stat.S_IFDIR | 0o755),
        ("etc/socklab", stat.S_IFDIR | 0o755),
        ("root", stat.S_IFDIR | 0o700),
        ("root/.ssh", stat.S_IFDIR | 0o700),
        ("etc/socklab/node.conf", stat.S_IFREG | 0o644),
        ("root/.ssh/authorized_keys", stat.S_IFREG | 0o600),
    ]
    by_name = {e.name: e.data for e in entries}
    assert by_name["etc/socklab/node.conf"] == CONFIG.node_conf().encode()
    # Surrounding whitespace is dropped; exactly one line.
    assert by_name["root/.ssh/authorized_keys"] == KEY.encode() + b"\n"


@needs_cpio
def test_gnu_cpio_extracts_the_overlay(tmp_path: Path) -> None:
    run_cpio(["-i", "-d", "--quiet", "--no-absolute-filenames", "-H", "newc"],
             overlay_archive(CONFIG), tmp_path)
    assert (tmp_path / "etc/socklab/node.conf").read_text() == CONFIG.node_conf()
    keys = tmp_path / "root/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600


def gzipped_base(residue: int) -> bytes:
    """A gzip-compressed base archive whose length is `residue` modulo 4."""
    for n in range(200):
        def busybox(w: CpioWriter, n: int = n) -> None:
            w.file("bin/busybox", random.Random(n).randbytes(n), 0o755)
        base = gzip.compress(write(busybox), mtime=0)
        if len(base) % 4 == residue:
            return base
    raise AssertionError(f"no base of length {residue} mod 4")


@pytest.mark.parametrize("residue", [0, 1, 2, 3])
def test_node_initrd_is_base_then_zero_padding_then_overlay(tmp_path: Path,
                                                            residue: int) -> None:
    base = gzipped_base(residue)
    (tmp_path / "initrd.img").write_bytes(base)
    out = tmp_path / "server.initrd"
    write_node_initrd(tmp_path / "initrd.img", CONFIG, out)

    initrd = out.read_bytes()
    padding = -len(base) % 4
    assert initrd[:len(base)] == base
    assert initrd[len(base):len(base) + padding] == b"\0" * padding
    overlay_at = len(base) + padding
    assert overlay_at % 4 == 0
    # The first archive still decompresses on its own, to the base entries...
    unzip = zlib.decompressobj(wbits=31)
    base_cpio = unzip.decompress(initrd)
    assert unzip.eof and unzip.unused_data == initrd[len(base):]
    assert [e.name for e in parse_only(base_cpio)] == ["bin/busybox"]
    # ...and the second is the overlay, to the end of the file.
    overlay, end = parse_newc(initrd, overlay_at)
    assert end == len(initrd)
    assert initrd[overlay_at:] == overlay_archive(CONFIG)
    assert [e.name for e in overlay][-2:] == ["etc/socklab/node.conf",
                                              "root/.ssh/authorized_keys"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["initrd.img", "server.initrd"]


def test_node_initrd_replaces_an_existing_file(tmp_path: Path) -> None:
    base = tmp_path / "initrd.img"
    base.write_bytes(gzipped_base(0))
    out = tmp_path / "server.initrd"
    out.write_bytes(b"stale" * 1000)
    write_node_initrd(base, CONFIG, out)
    assert out.read_bytes() == base.read_bytes() + overlay_archive(CONFIG)


def test_probe_initrd_replaces_init_over_the_base(tmp_path: Path) -> None:
    base = gzipped_base(3)
    (tmp_path / "initrd.img").write_bytes(base)
    out = tmp_path / "probe.initrd"
    _write_probe_initrd(tmp_path / "initrd.img", out)

    initrd = out.read_bytes()
    assert initrd[:len(base) + 1] == base + b"\0"
    probe = parse_only(initrd[len(base) + 1:])
    assert [(e.name, stat.S_IMODE(e.mode)) for e in probe] == [("init", 0o755)]
    assert b"echo socklab-probe-ok" in probe[0].data
