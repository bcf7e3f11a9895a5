"""The lab key pair, known_hosts and the generated ssh_config."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncssh
import pytest

from lab.errors import LabError, SSHError
from lab.keys import (
    ensure_lab_keypair,
    known_hosts_line,
    public_key_line,
    public_key_path,
    render_ssh_config,
    write_known_hosts,
    write_ssh_config,
)
from lab.ssh import Endpoint


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def host_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


def test_keypair_is_created_with_safe_modes(tmp_path: Path) -> None:
    private = ensure_lab_keypair(tmp_path / "lab" / "keys")
    assert private == tmp_path / "lab" / "keys" / "id_ed25519"
    assert mode(private.parent) == 0o700
    assert mode(private) == 0o600
    assert mode(public_key_path(private)) == 0o644
    key = asyncssh.read_private_key(private)
    assert key.algorithm == b"ssh-ed25519"
    line = public_key_line(private)
    assert line.startswith("ssh-ed25519 AAAA") and line.endswith(" socklab")
    assert asyncssh.import_public_key(line) == key.convert_to_public()
    assert sorted(p.name for p in private.parent.iterdir()) == ["id_ed25519", "id_ed25519.pub"]


def test_keypair_is_idempotent(tmp_path: Path) -> None:
    first = ensure_lab_keypair(tmp_path)
    content = first.read_bytes(), public_key_path(first).read_bytes()
    assert ensure_lab_keypair(tmp_path) == first
    assert (first.read_bytes(), public_key_path(first).read_bytes()) == content


def test_missing_public_half_is_restored(tmp_path: Path) -> None:
    private = ensure_lab_keypair(tmp_path)
    line = public_key_line(private)
    public_key_path(private).unlink()
    ensure_lab_keypair(tmp_path)
    assert public_key_line(private) == line
    assert mode(public_key_path(private)) == 0o644


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o644, 0o620])
def test_exposed_private_key_is_refused(tmp_path: Path, bad_mode: int) -> None:
    private = ensure_lab_keypair(tmp_path)
    private.chmod(bad_mode)
    with pytest.raises(LabError, match="accessible by others") as info:
        ensure_lab_keypair(tmp_path)
    assert info.value.hint is not None and "chmod 600" in info.value.hint


def test_unreadable_key_file(tmp_path: Path) -> None:
    (tmp_path / "id_ed25519").write_text("not a key")
    (tmp_path / "id_ed25519").chmod(0o600)
    with pytest.raises(LabError, match="cannot read the lab's SSH key"):
        ensure_lab_keypair(tmp_path)


def test_known_hosts(tmp_path: Path) -> None:
    a, b = host_key(), host_key()
    path = tmp_path / "known_hosts"
    write_known_hosts(path, {
        "server": Endpoint("127.0.0.1", 40022, a + " root@server\r"),  # as read from a console
        "client": Endpoint("127.0.0.1", 40023, b),
    })
    assert mode(path) == 0o600
    assert path.read_text() == f"[127.0.0.1]:40023 {b}\n[127.0.0.1]:40022 {a}\n"
    # asyncssh reads it back and matches host and port.
    known = asyncssh.read_known_hosts(str(path))
    assert set(known.match("127.0.0.1", "127.0.0.1", 40022)[0]) == {asyncssh.import_public_key(a)}
    assert set(known.match("127.0.0.1", "127.0.0.1", 40023)[0]) == {asyncssh.import_public_key(b)}
    assert known_hosts_line("n", Endpoint("127.0.0.1", 22, a)) == f"127.0.0.1 {a}"


def test_known_hosts_rejects_garbage(tmp_path: Path) -> None:
    with pytest.raises(SSHError, match="node web: the pinned SSH host key"):
        known_hosts_line("web", Endpoint("127.0.0.1", 2222, "login: "))


def test_ssh_config(tmp_path: Path) -> None:
    endpoints = {"server": Endpoint("127.0.0.1", 40001, host_key()),
                 "client": Endpoint("127.0.0.1", 40002, host_key())}
    text = render_ssh_config(endpoints, identity_file=Path("/labs/pair/keys/id_ed25519"),
                             known_hosts=Path("/labs/pair/known_hosts"), connect_timeout=7)
    blocks = text.split("\n\n")
    assert blocks[1] == ("Host client\n    HostName 127.0.0.1\n    Port 40002\n"
                         "    User root\n    HostKeyAlgorithms ssh-ed25519")
    assert blocks[2].startswith("Host server\n    HostName 127.0.0.1\n    Port 40001\n")
    common = blocks[3]
    assert common.startswith("Host client server\n")
    for option in ('IdentityFile "/labs/pair/keys/id_ed25519"', "IdentitiesOnly yes",
                   'UserKnownHostsFile "/labs/pair/known_hosts"', "StrictHostKeyChecking yes",
                   "LogLevel ERROR", "ConnectTimeout 7", "IdentityAgent none"):
        assert f"\n    {option}\n" in common

    write_ssh_config(tmp_path / "ssh_config", endpoints, identity_file=Path("/k"),
                     known_hosts=Path("/h"))
    assert mode(tmp_path / "ssh_config") == 0o600


def test_ssh_config_quotes_paths() -> None:
    endpoints = {"n": Endpoint("127.0.0.1", 1, host_key())}
    text = render_ssh_config(endpoints, identity_file=Path('/a b/"q"/100%/x\\y #z'),
                             known_hosts=Path("/k"))
    assert 'IdentityFile "/a b/\\"q\\"/100%%/x\\\\y #z"\n' in text
    with pytest.raises(LabError, match="cannot be written into an ssh_config"):
        render_ssh_config(endpoints, identity_file=Path("/${HOME}/k"), known_hosts=Path("/k"))
    with pytest.raises(LabError, match="cannot be written into an ssh_config"):
        render_ssh_config(endpoints, identity_file=Path("/a\nHost *"), known_hosts=Path("/k"))


def test_ssh_config_rejects_unsafe_aliases() -> None:
    for name in ("*", "a b", "!x", "a,b", ""):
        with pytest.raises(LabError, match="cannot be an ssh_config host alias"):
            render_ssh_config({name: Endpoint("127.0.0.1", 1, host_key())},
                              identity_file=Path("/k"), known_hosts=Path("/k"))
