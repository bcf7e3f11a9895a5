"""The backend contract: plain specs in, running networks and domains out.

The lifecycle code builds specs from a topology and never sees libvirt; a
backend turns specs into real objects and finds them again by lab name.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

METADATA_NAMESPACE = "https://socklab.dev/xmlns/lab/1"
# Where labs are made when no URI is given: the host's system libvirt, which may
# create bridges and use KVM. Backends are found by URI; this one is libvirt's.
DEFAULT_URI = "qemu:///system"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_local(uri: str) -> bool:
    """Whether the hypervisor runs on this host (qemu:///system, not qemu+ssh://h/)."""
    return not_local(uri) is None


@dataclass(frozen=True)
class Accelerator:
    name: Literal["kvm", "tcg"]
    reason: str = ""

    @property
    def domain_type(self) -> str:
        return "kvm" if self.name == "kvm" else "qemu"


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    bridge: str
    lab: str


@dataclass(frozen=True)
class NicSpec:
    network: str  # backend network name
    mac: str


@dataclass(frozen=True)
class ForwardSpec:
    """Where the host reaches a node's SSH server: a port on a loopback address, never
    one other hosts could reach (the guest's root logs in with the lab key there)."""

    host: str
    port: int
    mac: str

    def __post_init__(self) -> None:
        loopback(self.host)


def loopback(host: str) -> str:
    """`host`, a loopback address: where the host reaches a node (ValueError if not)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"management port on {host}: only loopback is allowed")
    return host


@dataclass(frozen=True)
class DomainSpec:
    name: str
    lab: str
    node: str
    memory_mib: int
    vcpus: int
    kernel: Path
    initrd: Path
    cmdline: str
    accel: Accelerator
    mgmt: ForwardSpec
    console_log: Path
    nics: Sequence[NicSpec] = field(default=())
    gdb_port: int | None = None


@dataclass(frozen=True)
class Owned:
    """Backend objects that belong to socklab labs, by lab name."""

    domains: dict[str, list[str]]
    networks: dict[str, list[str]]


class Backend(Protocol):
    """Everything is async; implementations keep blocking calls off the event loop."""

    uri: str

    async def create_network(self, spec: NetworkSpec) -> None: ...

    async def start_domain(self, spec: DomainSpec) -> None: ...

    async def destroy_domain(self, name: str) -> bool:
        """Stop and remove a domain; False when it did not exist."""
        ...

    async def destroy_network(self, name: str) -> bool: ...

    async def domain_running(self, name: str) -> bool: ...

    async def owned(self) -> Owned:
        """Every domain and network this backend can tell socklab created."""
        ...

    async def close(self) -> None: ...


def not_local(text: str) -> str | None:
    """Why `text` is not a libvirt URI of this machine, if it is not. A lab's guests
    answer SSH on the loopback of the host that runs them, and lab sends nothing off
    this one."""
    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname
    except ValueError:  # an unclosed [ in the host
        return f"not a libvirt URI (e.g. {DEFAULT_URI}, or test:///default)"
    if not parts.scheme:
        return f"not a libvirt URI (e.g. {DEFAULT_URI}, or test:///default)"
    if host is not None and host not in LOCAL_HOSTS:
        return f"names host {host}: lab runs its labs on this machine only (e.g. {DEFAULT_URI})"
    return None
