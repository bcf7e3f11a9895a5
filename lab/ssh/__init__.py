"""Management SSH to lab nodes, through asyncssh.

A node is reached at an `Endpoint` (a 127.0.0.1 port forwarded by QEMU to the
guest's dropbear), authenticated with the lab's key and verified against the
host key the guest printed on its console at boot.

    async with NodeSession.open("server", endpoint, key_path) as s:
        result = await s.run(["uname", "-r"], check=True)

Importing asyncssh costs ~0.15 s of CPU, and `lab up` needs it only once its
guests have booted. So this package loads the modules that use asyncssh on
first use of one of their names (PEP 562); `Endpoint` and the error types
come without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from lab.ssh.endpoint import Endpoint
from lab.ssh.errors import (
    AuthenticationFailed,
    CommandFailed,
    CommandTimeout,
    HostKeyMismatch,
    NodeUnreachable,
    TransferError,
)

if TYPE_CHECKING:
    from lab.ssh.connect import host_key_algorithms, parse_host_key
    from lab.ssh.ready import wait_until_ready
    from lab.ssh.session import CommandResult, NodeSession, Sink, StdinSource, command_line

# Name → the module (needing asyncssh) that defines it.
_LAZY = {
    "host_key_algorithms": "lab.ssh.connect",
    "parse_host_key": "lab.ssh.connect",
    "wait_until_ready": "lab.ssh.ready",
    "CommandResult": "lab.ssh.session",
    "NodeSession": "lab.ssh.session",
    "Sink": "lab.ssh.session",
    "StdinSource": "lab.ssh.session",
    "command_line": "lab.ssh.session",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def preload() -> None:
    """Import what SSH sessions need now (e.g. in a worker thread while guests boot)."""
    import_module("lab.ssh.ready")


__all__ = [
    "AuthenticationFailed",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "Endpoint",
    "HostKeyMismatch",
    "NodeSession",
    "NodeUnreachable",
    "Sink",
    "StdinSource",
    "TransferError",
    "command_line",
    "host_key_algorithms",
    "parse_host_key",
    "preload",
    "wait_until_ready",
]
