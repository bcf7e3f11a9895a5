"""Assembling an image's root: what a recipe's binaries become in it, and what they
must never touch on the host that builds it."""

from __future__ import annotations

from pathlib import Path

from lab.images.build import _install_with_libraries


def test_a_binary_a_busybox_applet_stood_for_replaces_it_and_writes_nothing_outside(
        tmp_path: Path) -> None:
    """busybox's applets link to /bin/busybox, which on the host that builds the image
    is the host's own: a recipe's sbin/tc must replace the link, not write through it."""
    unpacked, root = tmp_path / "unpacked", tmp_path / "root"
    (unpacked / "sbin").mkdir(parents=True)
    (unpacked / "sbin/tc").write_bytes(b"#!/bin/sh\necho tc from iproute2\n")
    host_busybox = tmp_path / "host" / "busybox"  # stands in for the host's /bin/busybox
    (root / "sbin").mkdir(parents=True)
    (root / "sbin/tc").symlink_to(host_busybox)  # as _install_busybox leaves the applet
    _install_with_libraries(unpacked, root, "sbin/tc")
    assert not host_busybox.exists() and not host_busybox.parent.exists()
    assert not (root / "sbin/tc").is_symlink()
    assert (root / "sbin/tc").read_bytes() == b"#!/bin/sh\necho tc from iproute2\n"
