"""Management SSH to lab nodes, through asyncssh.

A node is reached at an `Endpoint` (a 127.0.0.1 port forwarded by QEMU to the
guest's dropbear), authenticated with the lab's key and verified against the
host key the guest printed on its console at boot.

    async with NodeSession.open("server", endpoint, key_path) as s:
        result = await s.run(["uname", "-r"], check=True)
"""

from lab.ssh.connect import Endpoint, parse_host_key
from lab.ssh.errors import (
    AuthenticationFailed,
    CommandFailed,
    CommandTimeout,
    HostKeyMismatch,
    NodeUnreachable,
    TransferError,
)
from lab.ssh.ready import wait_until_ready
from lab.ssh.session import CommandResult, NodeSession, Sink, StdinSource, command_line

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
    "parse_host_key",
    "wait_until_ready",
]
