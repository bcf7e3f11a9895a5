"""Reaching labs from the command line: libvirt, the labs' state, SSH to their nodes,
and lifecycle progress on the terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rich.console import Console
from rich.markup import escape

from lab import ssh
from lab.backends.base import Backend
from lab.backends.libvirt import LibvirtBackend
from lab.cli.console import err
from lab.keys import PRIVATE_KEY_NAME
from lab.lifecycle import events as ev
from lab.paths import Paths
from lab.state import LabState, StateStore


@asynccontextmanager
async def backend_for(uri: str) -> AsyncIterator[LibvirtBackend]:
    backend = LibvirtBackend(uri)
    try:
        yield backend
    finally:
        await backend.close()


def store() -> StateStore:
    return StateStore(Paths.default())


@asynccontextmanager
async def node_session(lab: str | None, node: str) -> AsyncIterator[ssh.NodeSession]:
    """An SSH session to a node of the named lab (or of the only lab that is up)."""
    labs = store()
    state = labs.resolve(lab)
    key = labs.paths.lab_dir(state.name) / PRIVATE_KEY_NAME
    async with ssh.NodeSession.open(node, state.endpoint(node), key) as session:
        yield session


async def stopped_nodes(state: LabState, backend: Backend) -> list[str]:
    """The lab's nodes whose guest libvirt does not see running: the state file says
    what was started, not what still runs."""
    return [name for name, node in state.nodes.items()
            if not await backend.domain_running(node.domain)]


class ProgressPrinter:
    """Turns lifecycle events into short lines on stderr (stdout stays for results)."""

    def __init__(self, console: Console = err) -> None:
        self.console = console

    def __call__(self, event: ev.Event) -> None:
        line = self.line(event)
        if line:
            self.console.print(line)

    @staticmethod
    def line(event: ev.Event) -> str | None:
        match event:
            case ev.ImageStep(image=image, step=step):
                return f"[dim]image {image}: {step}[/dim]"
            case ev.ImageReady(image=image, kernel_release=release, cached=cached):
                return f"image {image}: Linux {release}{' (cached)' if cached else ' built'}"
            case ev.AcceleratorChosen(accel=accel):
                if accel.name == "kvm":
                    return f"accelerator: KVM ({accel.reason})"
                return f"[yellow]accelerator: TCG, software emulation[/yellow] ({accel.reason})"
            case ev.NodeBooted(node=node, seconds=s):
                return f"[dim]{node}: booted in {s:.1f} s[/dim]"
            case ev.NodeReady(node=node, seconds=s):
                return f"{node}: ready in {s:.1f} s"
            case ev.Removed(kind=kind, name=name):
                return f"[dim]removed {kind} {name}[/dim]"
            case ev.TeardownFailed(lab=lab, error=error):
                return (f"[yellow]warning:[/yellow] lab {lab} is not fully removed: "
                        f"{escape(error)} (run `lab down {lab}`)")
        return None
