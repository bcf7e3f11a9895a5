"""`lab down NAME` / `lab down --all`: remove labs and everything they own."""

from __future__ import annotations

import argparse

from lab.backends.base import Backend
from lab.backends.libvirt import DEFAULT_URI
from lab.cli.common import (
    ProgressPrinter,
    Subparsers,
    add_connect_option,
    backend_for,
    err,
    store,
)
from lab.errors import UsageError
from lab.lifecycle.down import tear_down
from lab.state import LabState, StateStore


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "down",
        description="Destroy a lab's domains and networks and delete its state. --all also "
                    "finds domains and networks that socklab created but no state file names "
                    "(for example after the controller was killed).",
        epilog="examples: lab down pair-1a2b3c | lab down --all")
    p.add_argument("names", nargs="*", metavar="NAME", help="lab names (see `lab status`)")
    p.add_argument("--all", action="store_true", help="remove every socklab lab")
    add_connect_option(p, "with --all, the libvirt URI to search too (each lab's own always is)")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    if bool(args.names) == bool(args.all):
        raise UsageError("name the labs to remove, or pass --all",
                         hint="`lab status` lists the labs")
    labs = store()
    states = labs.all() if args.all else [labs.load(name) for name in args.names]
    uris = {s.uri for s in states}
    if args.all:
        uris.add(args.connect or DEFAULT_URI)
    for uri in sorted(uris):
        async with backend_for(uri) as backend:
            await _down_on(backend, [s for s in states if s.uri == uri], labs,
                           sweep=args.all)
    return 0


async def _down_on(backend: Backend, states: list[LabState], labs: StateStore,
                   *, sweep: bool) -> None:
    progress = ProgressPrinter()
    owned = await backend.owned() if sweep else None
    names = {s.name for s in states}
    for state in states:
        await tear_down(state, backend, labs, progress,
                        extra_domains=owned.domains.get(state.name) if owned else None,
                        extra_networks=owned.networks.get(state.name) if owned else None)
        err.print(f"lab {state.name} removed")
    if owned:
        # Objects socklab created whose state file is gone.
        for lab in sorted((set(owned.domains) | set(owned.networks)) - names):
            orphan = LabState(name=lab, topology="", uri=backend.uri, created_at="")
            await tear_down(orphan, backend, labs, progress,
                            extra_domains=owned.domains.get(lab),
                            extra_networks=owned.networks.get(lab))
            err.print(f"lab {lab} removed (it had no state file)")
