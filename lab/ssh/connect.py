"""Opening one pinned, key-authenticated asyncssh connection to a node.

Only the host key printed by the guest at boot is trusted, and only its
algorithm is offered: an ed25519-only dropbear asked for other host-key types
makes asyncssh fail inside the server's RSA code (see DESIGN.md). Nothing from
the user's ~/.ssh (config, known_hosts, agent, keys) takes part.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh

from lab.errors import LabError, SSHError
from lab.ssh.endpoint import Endpoint
from lab.ssh.errors import AuthenticationFailed, HostKeyMismatch, NodeUnreachable

# A dead guest is noticed within about KEEPALIVE_INTERVAL * KEEPALIVE_COUNT_MAX.
KEEPALIVE_INTERVAL = 10.0
KEEPALIVE_COUNT_MAX = 3


def parse_host_key(node: str, host_key: str) -> asyncssh.SSHKey:
    """The pinned host key as an asyncssh key; SSHError if it is not one."""
    try:
        return asyncssh.import_public_key(host_key.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SSHError(node, f"the pinned SSH host key {host_key.strip()[:60]!r} is not a "
                       f"public key: {exc}",
                       hint="the host key is read from the guest's console at boot; "
                       "run `lab down` and `lab up` again") from None


def host_key_algorithms(key: asyncssh.SSHKey) -> list[str]:
    """The host-key algorithms to offer for a pinned key (ed25519: just one)."""
    return [alg.decode() for alg in key.sig_algorithms]


def load_client_key(path: Path) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as exc:
        raise LabError(f"cannot read the lab's SSH key {path}: {exc}",
                       hint="the lab's state is incomplete: run `lab down` and `lab up`"
                       " again") from None


async def connect(node: str, endpoint: Endpoint, client_key: asyncssh.SSHKey, key_path: Path,
                  *, timeout: float) -> asyncssh.SSHClientConnection:
    """One authenticated connection, or a typed SSHError naming the node."""
    pinned = parse_host_key(node, endpoint.host_key)
    try:
        async with asyncio.timeout(timeout):
            return await asyncssh.connect(
                endpoint.host, endpoint.port,
                username=endpoint.user,
                known_hosts=([pinned], [], []),
                server_host_key_algs=host_key_algorithms(pinned),
                client_keys=[client_key],
                preferred_auth="publickey",
                config=None, agent_path=None, agent_forwarding=False,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
            )
    except TimeoutError:
        raise NodeUnreachable(
            node, f"no SSH answer from {endpoint.address} within {timeout:g} s") from None
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyMismatch(node, endpoint.address) from None
    except asyncssh.KeyExchangeFailed as exc:
        if "host key" in exc.reason.lower():
            raise HostKeyMismatch(node, endpoint.address) from None
        raise NodeUnreachable(node, f"SSH key exchange with {endpoint.address} failed: "
                              f"{exc.reason}") from None
    except asyncssh.PermissionDenied:
        raise AuthenticationFailed(node, endpoint.user, key_path) from None
    except ConnectionRefusedError:
        raise NodeUnreachable(node, f"connection to {endpoint.address} refused",
                              hint="is the lab up? see `lab status`") from None
    except asyncssh.DisconnectError as exc:
        raise NodeUnreachable(node, f"SSH connection to {endpoint.address} failed: "
                              f"{exc.reason or type(exc).__name__}") from None
    except OSError as exc:
        raise NodeUnreachable(node, f"cannot connect to {endpoint.address}: "
                              f"{exc.strerror or exc}") from None
