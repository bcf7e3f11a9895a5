"""What several verbs share: the libvirt option, the lab option, progress display."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

from rich.console import Console

from lab import ssh
from lab.backends.libvirt import DEFAULT_URI, LibvirtBackend
from lab.cli.parsing import LabParser
from lab.keys import PRIVATE_KEY_NAME
from lab.lifecycle import events as ev
from lab.paths import Paths
from lab.state import StateStore

# What each verb module's add_parser() receives.
Subparsers: TypeAlias = "argparse._SubParsersAction[LabParser]"

# Tables are not cut to 80 columns when the output goes to a file or a pipe.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def add_connect_option(parser: argparse.ArgumentParser,
                       purpose: str = "libvirt connection URI") -> None:
    parser.add_argument(
        "-c", "--connect", metavar="URI", default=os.environ.get("LIBVIRT_DEFAULT_URI"),
        help=f"{purpose} (default: $LIBVIRT_DEFAULT_URI or {DEFAULT_URI})")


def add_lab_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--lab", metavar="NAME",
                        help="the lab to act on (default: the only lab that is up)")


@asynccontextmanager
async def backend_for(uri: str | None) -> AsyncIterator[LibvirtBackend]:
    backend = LibvirtBackend(uri or DEFAULT_URI)
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
        return None
