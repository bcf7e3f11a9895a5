"""Typed management-SSH errors; all are `SSHError`s naming the node.

`NodeUnreachable` is the only one worth retrying while a guest boots: a host
key mismatch or a refused lab key will not fix itself.
"""

from __future__ import annotations

from pathlib import Path

from lab.errors import SSHError
from lab.text import last_line

RECREATE_HINT = "the guest may have been replaced: run `lab down` and `lab up` again"


def short_command(command: str, limit: int = 120) -> str:
    """A command as shown in messages: one line, at most `limit` characters."""
    text = " ".join(command.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail_text(data: bytes, *, max_bytes: int = 2048) -> str:
    """The end of a command's output, decoded for a message."""
    return data[-max_bytes:].decode("utf-8", errors="replace")


class NodeUnreachable(SSHError):
    """No SSH session could be set up (refused, timed out, connection lost)."""


class HostKeyMismatch(SSHError):
    """The node answered with a host key other than the one pinned at boot."""

    def __init__(self, node: str, address: str) -> None:
        super().__init__(
            node, f"the SSH host key of {address} does not match the key pinned at boot",
            hint=RECREATE_HINT)
        self.address = address


class AuthenticationFailed(SSHError):
    """The node refused the lab's key."""

    def __init__(self, node: str, user: str, key: Path) -> None:
        super().__init__(
            node, f"the guest refused the lab key {key} for user {user}", hint=RECREATE_HINT)
        self.user = user
        self.key = key


class CommandFailed(SSHError):
    """A command run with `check=True` exited with a non-zero status."""

    def __init__(self, node: str, command: str, exit_status: int, stderr: bytes,
                 *, signal: str | None = None) -> None:
        self.command = command
        self.exit_status = exit_status
        self.signal = signal
        self.stderr_tail = tail_text(stderr)
        how = f"was killed by SIG{signal}" if signal else f"exited with status {exit_status}"
        said = last_line(self.stderr_tail)
        last = f": {said[:200]}" if said else ""
        super().__init__(node, f"command {short_command(command)!r} {how}{last}")


class CommandTimeout(SSHError):
    """A command outlived its timeout; it was killed and its channel closed."""

    def __init__(self, node: str, command: str, timeout: float,
                 *, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(
            node, f"command {short_command(command)!r} did not finish within {timeout:g} s")
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


class TransferError(SSHError):
    """An SFTP copy to or from the node failed."""
