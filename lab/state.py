"""What socklab created for a lab, recorded before it is created.

The state file is written before the first network or domain exists and
updated as the lab comes up, so `lab down` finds everything even when the
controller was killed half-way through `lab up`.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from lab.backends.base import loopback, not_local
from lab.errors import LabError, LabInUse, LabNotFound
from lab.files import atomic_write
from lab.names import LAB_NAME
from lab.paths import Paths
from lab.ssh import Endpoint

STATE_FILE = "state.json"
KNOWN_HOSTS = "known_hosts"
SSH_CONFIG = "ssh_config"
SHOWN_COMMAND = 100  # characters of a holder's command line a refusal shows
LOCK_TRIES, LOCK_RETRY = 5, 0.02  # a held lock is tried for 0.1 s before refusing
LOCK_FILE = "lock"  # held by the command making, running on or removing the lab
TOPOLOGY_FILE = "topology.json"  # the topology as `lab up` rendered it (Topology.to_dict)
Status = Literal["creating", "up"]


def _this_host(uri: str) -> str:
    if (problem := not_local(uri)) is not None:
        raise ValueError(f"{uri}: {problem}")
    return uri


class NodeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str
    image: str
    kernel_release: str = ""
    # Checked again when read: a state file edited by hand must not send lab elsewhere.
    ssh_host: Annotated[str, AfterValidator(loopback)]
    ssh_port: int
    host_key: str | None = None
    console_log: str
    role: str | None = None
    addresses: list[str] = []
    ready_seconds: float | None = None  # from its start to answering SSH (lab up)


class NetworkState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    bridge: str


class LabState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    topology: str
    uri: Annotated[str, AfterValidator(_this_host)]
    created_at: str
    status: Status = "creating"
    accel: str = ""
    nodes: dict[str, NodeState] = {}
    networks: dict[str, NetworkState] = {}

    def endpoint(self, node: str) -> Endpoint:
        """Where the node's SSH answers; only for a lab that is up."""
        if node not in self.nodes:
            raise LabNotFound(f"lab {self.name} has no node {node!r}",
                              hint=f"its nodes: {', '.join(self.nodes)}")
        n = self.nodes[node]
        if n.host_key is None:
            raise LabError(f"node {node} of lab {self.name} has not booted",
                           hint=f"the lab is {self.status}; `lab down {self.name}` and up again")
        return Endpoint(n.ssh_host, n.ssh_port, n.host_key)

    def endpoints(self) -> dict[str, Endpoint]:
        return {node: self.endpoint(node) for node in self.nodes}


class StateStore:
    """Lab state files under the socklab home, one directory per lab."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def save(self, state: LabState) -> None:
        directory = self.paths.lab_dir(state.name)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        atomic_write(directory / STATE_FILE,
                     (state.model_dump_json(indent=2) + "\n").encode(), mode=0o600)

    def load(self, name: str) -> LabState:
        if not LAB_NAME.fullmatch(name):
            raise LabNotFound(f"no lab named {name!r}",
                              hint="`lab status` lists the labs that are up")
        path = self.paths.lab_dir(name) / STATE_FILE
        try:
            return LabState.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise LabNotFound(f"no lab named {name!r}",
                              hint="`lab status` lists the labs that are up") from None
        except (ValidationError, ValueError) as exc:
            raise LabError(f"{path}: unreadable lab state ({_first_problem(exc)})",
                           hint=f"remove the lab with `lab down {name}`") from exc

    def names(self) -> list[str]:
        if not self.paths.labs.is_dir():
            return []
        return sorted(p.parent.name for p in self.paths.labs.glob(f"*/{STATE_FILE}")
                      if LAB_NAME.fullmatch(p.parent.name))

    def all(self) -> list[LabState]:
        """Every lab whose state can be read (see `unreadable` for the others)."""
        states = []
        for name in self.names():
            try:
                states.append(self.load(name))
            except LabError:
                continue
        return states

    def unreadable(self) -> dict[str, LabError]:
        """Labs whose state file cannot be read (damaged, or another version's), and why."""
        problems = {}
        for name in self.names():
            try:
                self.load(name)
            except LabError as exc:
                problems[name] = exc
        return problems

    def resolve(self, name: str | None) -> LabState:
        """The named lab, or the only lab that is up when no name is given."""
        if name:
            return self.load(name)
        labs = self.all()
        up = [lab for lab in labs if lab.status == "up"]
        if len(up) == 1:
            return up[0]
        if up:
            raise LabNotFound(f"{len(up)} labs are up: {', '.join(lab.name for lab in up)}",
                              hint="choose one with --lab NAME")
        if creating := [lab.name for lab in labs if lab.status == "creating"]:
            raise LabNotFound("no lab is up", hint=f"{', '.join(creating)} is not up yet; if "
                              f"its `lab up` was stopped, remove it: lab down {creating[0]}")
        raise LabNotFound("no lab is up", hint="start one with `lab up TOPOLOGY`")

    def remove(self, name: str) -> None:
        shutil.rmtree(self.paths.lab_dir(name), ignore_errors=True)

    @contextmanager
    def in_use(self, name: str) -> Iterator[None]:
        """Hold the lab while a command makes, runs on or removes it: another that would
        (`lab down` of it, a second `lab run --lab`) is refused meanwhile, with who holds
        it. The kernel lets go when the holder ends, however it ends."""
        directory = self.paths.lab_dir(name)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        lock = directory / LOCK_FILE
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        if not _locked(fd):
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another"
            os.close(fd)
            raise LabInUse(f"lab {name} is in use by {holder}",
                           hint="wait for it to end, or stop it (Ctrl-C)")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} ({typed_command()})".encode(), 0)
            yield
        finally:
            os.ftruncate(fd, 0)  # no one holds it: never said to
            if not (directory / STATE_FILE).exists():  # nothing was made, or all removed
                lock.unlink(missing_ok=True)
                with suppress(OSError):
                    directory.rmdir()
            os.close(fd)

    def held(self, name: str) -> bool:
        """Whether a command holds the lab now (`in_use`)."""
        try:
            fd = os.open(self.paths.lab_dir(name) / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return False
        try:
            # Shared, and let go at once: `in_use` waits out so short a hold (`_locked`).
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def _locked(fd: int) -> bool:
    """Whether the exclusive lock on `fd` was taken, trying for a moment: `held`, as
    `lab status` asks, holds it shared for a few microseconds."""
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(LOCK_RETRY)
    return False


def typed_command() -> str:
    """This command as it was typed (`lab run --lab pair-1a2b3c …`), cut short."""
    typed = shlex.join(["lab", *sys.argv[1:]])
    return typed if len(typed) <= SHOWN_COMMAND else typed[:SHOWN_COMMAND - 1] + "…"


def _first_problem(exc: ValidationError | ValueError) -> str:
    """"nodes.client.ssh_port: Input should be a valid integer", not "5 validation errors"."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"
    return str(exc).splitlines()[0]
