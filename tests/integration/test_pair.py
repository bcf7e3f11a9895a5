"""A pair lab on each kernel: up, exec, cp, ssh, isolation, down."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.vmlab import KERNELS, PAIR, lab, leftovers, status

pytestmark = pytest.mark.vm


def test_nodes_run_the_image_kernel(pair: tuple[str, str]) -> None:
    name, image = pair
    for node in ("client", "server"):
        release = lab("exec", "--lab", name, node, "--", "uname", "-r").stdout.strip()
        assert release.startswith(KERNELS[image]), release
    nodes = status(name)["nodes"]
    assert isinstance(nodes, dict)
    assert {n: nodes[n]["kernel_release"][:4] for n in nodes} == {
        "client": KERNELS[image][:4], "server": KERNELS[image][:4]}
    assert all(0 < nodes[n]["ready_seconds"] < 120 for n in nodes)  # lab up's deadline


def test_exec_propagates_status_streams_and_stdin(pair: tuple[str, str]) -> None:
    name, _ = pair
    failed = lab("exec", "--lab", name, "client", "--", "sh", "-c", "echo out; echo err >&2; "
                 "exit 7", check=False)
    assert (failed.returncode, failed.stdout, failed.stderr) == (7, "out\n", "err\n")
    echoed = lab("exec", "--lab", name, "server", "--", "tr", "a-z", "A-Z", input="hello\n")
    assert echoed.stdout == "HELLO\n"
    # Arguments are words, not shell text: nothing here is interpreted remotely.
    words = lab("exec", "--lab", name, "client", "--", "echo", "$HOME; id", "`x`")
    assert words.stdout == "$HOME; id `x`\n"


def test_data_network_connects_the_nodes(pair: tuple[str, str]) -> None:
    name, _ = pair
    # Bounded: one echo request each way over the lab's isolated bridge.
    lab("exec", "--lab", name, "client", "--", "ping", "-c", "1", "-W", "5", "10.0.1.10")
    lab("exec", "--lab", name, "server", "--", "ping6", "-c", "1", "-W", "5", "fd00:0:0:1::1")
    hosts = lab("exec", "--lab", name, "client", "--", "cat", "/etc/hosts").stdout
    assert "10.0.1.10 server" in hosts


def test_guests_have_no_route_out_and_the_host_no_lab_address(pair: tuple[str, str]) -> None:
    name, _ = pair
    routes = lab("exec", "--lab", name, "client", "--", "ip", "route").stdout
    assert "default" not in routes
    state = status(name)
    networks = state["networks"]
    assert isinstance(networks, dict)
    for network in networks.values():
        addresses = subprocess.run(["ip", "-o", "addr", "show", "dev", network["bridge"]],
                                   capture_output=True, text=True, check=True).stdout
        assert " inet " not in addresses, addresses
    nodes = state["nodes"]
    assert isinstance(nodes, dict)
    assert {n["ssh_host"] for n in nodes.values()} == {"127.0.0.1"}


def test_cp_push_and_pull(pair: tuple[str, str], tmp_path: Path) -> None:
    name, _ = pair
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(hostname)\n")
    script.chmod(0o750)
    lab("cp", "--lab", name, str(script), "server:/root/hello.sh")
    assert lab("exec", "--lab", name, "server", "/root/hello.sh").stdout == "hello from server\n"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data").write_bytes(bytes(range(256)) * 64)
    lab("cp", "--lab", name, "-r", str(tree), "client:/tmp/")
    back = tmp_path / "back"
    lab("cp", "--lab", name, "-r", "client:/tmp/tree", str(back))
    assert (back / "sub" / "data").read_bytes() == (tree / "sub" / "data").read_bytes()
    pulled = tmp_path / "pulled.sh"
    lab("cp", "--lab", name, "server:/root/hello.sh", str(pulled))
    assert pulled.read_text() == script.read_text()
    assert pulled.stat().st_mode & 0o777 == 0o750


def test_plain_ssh_with_generated_config(pair: tuple[str, str]) -> None:
    name, _ = pair
    config = lab("ssh", "--lab", name, "--print-config").stdout.strip()
    assert Path(config).stat().st_mode & 0o777 == 0o600
    result = subprocess.run(["ssh", "-F", config, "server", "hostname"], capture_output=True,
                            text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "server\n"), result.stderr


def test_a_wrong_host_key_is_refused(pair: tuple[str, str], tmp_path: Path) -> None:
    name, _ = pair
    state_file = Path(lab("ssh", "--lab", name, "--print-config").stdout.strip()).with_name(
        "state.json")
    original = state_file.read_text()
    state = json.loads(original)
    # The server's key recorded for the client: a different, valid ed25519 key.
    state["nodes"]["client"]["host_key"] = state["nodes"]["server"]["host_key"]
    state_file.write_text(json.dumps(state))
    try:
        refused = lab("exec", "--lab", name, "client", "--", "true", check=False)
    finally:
        state_file.write_text(original)
    assert refused.returncode == 255  # lab's own failure, as ssh reports its own
    assert "host key" in refused.stderr.lower(), refused.stderr


def test_up_down_leaves_nothing_behind() -> None:
    name = lab("up", str(PAIR)).stdout.strip()
    assert leftovers(name).domains, "the lab should be up"
    lab("down", name)
    assert not leftovers(name)
    assert lab("status", name, check=False).returncode != 0
