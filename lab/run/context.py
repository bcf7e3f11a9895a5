"""What the steps of one run share: sessions, background commands, tracers, results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from lab.playbook import Playbook, Step
from lab.run.results import RunDir, TracerResult
from lab.ssh import CommandResult, NodeSession
from lab.state import LabState

# Where runs leave files on a node: background commands' process ids, strace's traces,
# in a directory of each run's own (`node_dir`): a run on a lab kept up never reads an
# earlier run's (and signals a process id the guest has given to another since).
NODE_DIR = "/run/socklab"


@dataclass
class Background:
    """A command started by `run: ... background: HANDLE` on one node."""

    node: str
    step: Step
    task: asyncio.Task[CommandResult]
    judged: bool = False  # how it ended was checked (waited for, stopped, or at the end)


@dataclass
class RunContext:
    book: Playbook
    state: LabState
    sessions: dict[str, NodeSession]
    run_dir: RunDir
    program_cache: Path
    tidy: bool = True  # leave the guests as found (False: the lab is removed afterwards)
    backgrounds: dict[str, list[Background]] = field(default_factory=dict)
    # (tracer, node); each strace-wrapped step is a tracer of its own, "strace-NN".
    tracers: dict[tuple[str, str], TracerResult] = field(default_factory=dict)
    clocks_installed: set[str] = field(default_factory=set)
    collected: set[tuple[str, str]] = field(default_factory=set)  # (tracer, node): trace saved

    def session(self, node: str) -> NodeSession:
        return self.sessions[node]

    @property
    def node_dir(self) -> str:
        """This run's directory on the nodes, named as its run directory (lab and time)."""
        return f"{NODE_DIR}/{self.run_dir.path.name}"

    def node_file(self, step: Step, node: str, kind: str) -> str:
        """A step's file on a node, numbered by step from 1 as the outputs are
        (outputs/02-server.out): "pid", "strace"."""
        return f"{self.node_dir}/{step.index + 1:02d}-{node}.{kind}"
