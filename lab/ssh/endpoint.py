"""Where a node's management SSH answers: plain data, importable without asyncssh."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """Where a node's management SSH answers, and the host key it must show."""

    host: str
    port: int
    host_key: str  # OpenSSH public key line printed by the guest, e.g. "ssh-ed25519 AAAA..."
    user: str = "root"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
