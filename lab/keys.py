"""A lab's SSH material: its key pair, known_hosts and ssh_config.

The key pair authenticates the controller (and `lab ssh`) to every node of one
lab; known_hosts pins each node's host key as printed on its console; the
ssh_config lets plain `ssh -F FILE NODE` reach a node with the same pinning.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab import ssh
from lab.errors import LabError
from lab.files import atomic_write
from lab.render import render
from lab.ssh import Endpoint

PRIVATE_KEY_NAME = "id_ed25519"
KEY_COMMENT = "socklab"
ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def ensure_lab_keypair(directory: Path) -> Path:
    """The lab's private key path, generating the ed25519 pair the first time.

    `directory` is created 0700 when missing; an existing one keeps its mode (a lab's
    directory is 0755, so that QEMU can read its initrds). The private key is 0600,
    the public key 0644. An existing private key readable or writable by group or
    others is refused, as OpenSSH would.
    """
    private = directory / PRIVATE_KEY_NAME
    public = public_key_path(private)
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    if private.exists():
        mode = stat.S_IMODE(private.stat().st_mode)
        if mode & 0o077:
            raise LabError(f"the lab's SSH key {private} is accessible by others "
                           f"(mode {mode:04o})",
                           hint=f"run `chmod 600 {private}`, or remove it to make a new one "
                           "(then recreate the lab)")
        if not public.exists():
            try:
                key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
            except (OSError, ValueError, TypeError) as exc:
                raise LabError(f"cannot read the lab's SSH key {private}: {exc}",
                               hint="remove it to make a new one (then recreate the lab)"
                               ) from None
            if not isinstance(key, Ed25519PrivateKey):
                raise LabError(f"the lab's SSH key {private} is not an ed25519 key",
                               hint="remove it to make a new one (then recreate the lab)")
            atomic_write(public, _openssh_public(key), mode=0o644)
        return private
    # cryptography rather than asyncssh: `lab up` makes the key before it needs
    # asyncssh, which is slower to import (see lab.ssh).
    key = Ed25519PrivateKey.generate()
    # Public first: a private key on disk always has its public half beside it.
    atomic_write(public, _openssh_public(key), mode=0o644)
    atomic_write(private, key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.OpenSSH,
                                            serialization.NoEncryption()), mode=0o600)
    return private


def _openssh_public(key: Ed25519PrivateKey) -> bytes:
    """`ssh-ed25519 AAAA... socklab` and a newline, as ssh-keygen writes it."""
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH)
    return line + f" {KEY_COMMENT}\n".encode()


def public_key_path(private_key: Path) -> Path:
    return private_key.with_name(private_key.name + ".pub")


def public_key_line(private_key: Path) -> str:
    """The OpenSSH public key line for authorized_keys (no trailing newline)."""
    return public_key_path(private_key).read_text().strip()


def known_hosts_line(node: str, endpoint: Endpoint) -> str:
    """`[127.0.0.1]:PORT ssh-ed25519 AAAA...` (port 22 needs no brackets)."""
    key = ssh.parse_host_key(node, endpoint.host_key)
    pattern = endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{pattern} {algorithm} {blob}"


def write_known_hosts(path: Path, endpoints: Mapping[str, Endpoint]) -> None:
    """known_hosts (0600) pinning the host key of every node of a lab."""
    text = "".join(f"{known_hosts_line(node, endpoint)}\n"
                   for node, endpoint in sorted(endpoints.items()))
    atomic_write(path, text.encode(), mode=0o600)


@dataclass(frozen=True)
class _Host:
    alias: str
    hostname: str
    port: int
    user: str
    host_key_algorithms: str


def render_ssh_config(endpoints: Mapping[str, Endpoint], *, identity_file: Path,
                      known_hosts: Path, connect_timeout: int = 10) -> str:
    """An ssh_config with one `Host NODE` per node, for `ssh -F FILE NODE`."""
    if not endpoints:
        raise ValueError("an ssh_config needs at least one node")
    hosts = []
    for node, endpoint in sorted(endpoints.items()):
        if not ALIAS.fullmatch(node):
            raise LabError(f"node name {node!r} cannot be an ssh_config host alias",
                           hint="use letters, digits, '.', '_' and '-'")
        algorithms = ",".join(ssh.host_key_algorithms(ssh.parse_host_key(node, endpoint.host_key)))
        hosts.append(_Host(node, _config_word(endpoint.host), endpoint.port,
                           _config_word(endpoint.user), algorithms))
    return render("ssh_config.j2", hosts=hosts, connect_timeout=int(connect_timeout),
                  identity_file=_config_path(identity_file),
                  known_hosts=_config_path(known_hosts))


def write_ssh_config(path: Path, endpoints: Mapping[str, Endpoint], *, identity_file: Path,
                     known_hosts: Path, connect_timeout: int = 10) -> None:
    """render_ssh_config written to `path` (0600: ssh rejects writable configs)."""
    text = render_ssh_config(endpoints, identity_file=identity_file, known_hosts=known_hosts,
                             connect_timeout=connect_timeout)
    atomic_write(path, text.encode(), mode=0o600)


def _config_word(value: str) -> str:
    """A plain ssh_config word: no quoting needed, none allowed."""
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", value):
        raise LabError(f"{value!r} cannot be written into an ssh_config")
    return value


def _config_path(path: Path) -> str:
    """An absolute path as one double-quoted ssh_config argument.

    ssh expands `%x` tokens (hence `%%`) and `${VAR}` (which has no escape, so
    it is refused) in IdentityFile and UserKnownHostsFile; inside double quotes
    only backslash and double quote need a backslash.
    """
    text = str(path.absolute())
    if "${" in text or any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise LabError(f"the path {text!r} cannot be written into an ssh_config",
                       hint="use a LAB_HOME without '${' or control characters")
    text = text.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'

