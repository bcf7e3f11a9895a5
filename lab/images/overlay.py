"""Per-node data layered on the shared base image at boot.

A node's initrd is the image's initrd followed by a small cpio archive with
its name, interfaces and the lab's authorised key. The kernel unpacks both, so
one image build serves every node of every lab.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.files import atomic_output
from lab.images.cpio import CpioWriter


@dataclass(frozen=True)
class GuestLink:
    mac: str
    ifname: str
    addresses: Sequence[str] = ()  # CIDR notation, IPv4 and IPv6


@dataclass(frozen=True)
class GuestConfig:
    hostname: str
    authorized_key: str
    links: Sequence[GuestLink]
    hosts: Sequence[tuple[str, str]] = field(default=())  # (address, name)
    forward: bool = False  # a router: forward packets between its networks
    routes: Sequence[tuple[str, str]] = field(default=())  # (destination CIDR, gateway)

    def node_conf(self) -> str:
        """The line format the guest's boot script reads (lab/guest/rc)."""
        lines = [f"hostname {self.hostname}"]
        for link in self.links:
            lines.append(f"link {link.mac} {link.ifname}")
            lines += [f"addr {link.ifname} {a}" for a in link.addresses]
        lines += [f"host {address} {name}" for address, name in self.hosts]
        lines += ["forward"] if self.forward else []
        lines += [f"route {destination} {gateway}" for destination, gateway in self.routes]
        return "\n".join(lines) + "\n"


def overlay_archive(config: GuestConfig) -> bytes:
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    for d in ("etc", "etc/socklab", "root", "root/.ssh"):
        cpio.directory(d, 0o700 if d.startswith("root") else 0o755)
    cpio.file("etc/socklab/node.conf", config.node_conf().encode())
    cpio.file("root/.ssh/authorized_keys", config.authorized_key.strip().encode() + b"\n", 0o600)
    cpio.close()
    return buf.getvalue()


def write_node_initrd(base: Path, config: GuestConfig, out: Path) -> None:
    """base initrd + this node's overlay, as one file the domain boots."""
    append_archive(base, overlay_archive(config), out)


def append_archive(base: Path, archive: bytes, out: Path) -> None:
    """Write `out`: the initrd `base`, then the cpio `archive`, which the kernel unpacks
    over it (its entries replace the base's)."""
    with atomic_output(out, mode=0o644) as temp, base.open("rb") as src, temp.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        # The kernel looks for each archive on a 4-byte boundary.
        dst.write(b"\0" * (-dst.tell() % 4))
        dst.write(archive)
