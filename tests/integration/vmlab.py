"""Helpers for real-VM tests: the `lab` command, and what a lab leaves on the host.

Tests drive the `lab` command exactly as a user does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.keys import PRIVATE_KEY_NAME
from lab.paths import Paths
from lab.programs import build_program
from lab.ssh import NodeSession
from lab.state import LabState, StateStore

ROOT = Path(__file__).resolve().parents[2]
PAIR = ROOT / "topologies" / "pair.yaml"
KERNELS = {"debian-11": "5.10.", "debian-12": "6.1."}


def lab(*args: str, check: bool = True, timeout: float = 240,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `lab` command line as a user would."""
    result = subprocess.run([sys.executable, "-m", "lab.cli.main", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"lab {' '.join(args)} exited {result.returncode}\n"
                             f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def virsh(*args: str) -> list[str]:
    out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", *args],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


@dataclass(frozen=True)
class Leftovers:
    domains: list[str]
    networks: list[str]
    links: list[str]
    qemu: list[str]

    def __bool__(self) -> bool:
        return bool(self.domains or self.networks or self.links or self.qemu)


def leftovers(lab_name: str) -> Leftovers:
    """Everything on this host that still belongs to a lab."""
    lab_id = lab_name[-6:]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True).stdout
    qemu = subprocess.run(["pgrep", "-a", "-f", f"guest=sl-{lab_name}-"], capture_output=True,
                          text=True).stdout
    return Leftovers(
        domains=[d for d in virsh("list", "--all", "--name") if lab_name in d],
        networks=[n for n in virsh("net-list", "--all", "--name") if lab_name in n],
        links=re.findall(rf"\d+: (sl{lab_id}-\d+)[:@]", links),
        qemu=qemu.splitlines())


def status(lab_name: str) -> dict[str, object]:
    states: list[dict[str, object]] = json.loads(lab("status", "--json", lab_name).stdout)
    return states[0]




@asynccontextmanager
async def replyhi_pair(lab_name: str) -> AsyncIterator[tuple[LabState, NodeSession, NodeSession]]:
    """SSH sessions to a pair lab's server and client, with replyhi and hello in /tmp."""
    store = StateStore(Paths.default())
    state = store.load(lab_name)
    key = store.paths.lab_dir(lab_name) / PRIVATE_KEY_NAME
    cache = store.paths.home / "programs"
    async with NodeSession.open("server", state.endpoint("server"), key) as server, \
            NodeSession.open("client", state.endpoint("client"), key) as client:
        await server.put(await build_program("replyhi", cache), "/tmp/replyhi")
        await client.put(await build_program("hello", cache), "/tmp/hello")
        yield state, server, client
