"""`lab down NAME` / `lab down --all`: remove labs and everything they own."""

from __future__ import annotations

import argparse

from lab.aio import to_the_end
from lab.backends.base import DEFAULT_URI, Backend
from lab.cli.access import ProgressPrinter, backend_for, store
from lab.cli.common import Subparsers, add_connect_option, err
from lab.errors import LabError, LabNotFound, UsageError
from lab.lifecycle.down import tear_down
from lab.state import LabState, StateStore


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "down",
        description="Destroy a lab's domains and networks and delete its state. --all also "
                    "finds domains and networks that socklab created but no state file names "
                    "(for example after the controller was killed).",
        epilog="examples:\n  lab down pair-1a2b3c\n  lab down --all")
    p.add_argument("names", nargs="*", metavar="NAME", help="lab names (see `lab status`)")
    p.add_argument("--all", action="store_true", help="remove every socklab lab")
    add_connect_option(p, "with --all, the libvirt URI to search too (each lab's own always is)")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    if args.names and args.all:
        raise UsageError("name the labs to remove or pass --all, not both",
                         hint="`lab status` lists the labs")
    if not (args.names or args.all):
        raise UsageError("name the labs to remove, or pass --all",
                         hint="`lab status` lists the labs")
    labs = store()
    if args.all:
        states, unreadable = labs.all(), set(labs.unreadable())
    else:
        states, unreadable = [], set()
        for name in args.names:
            try:
                states.append(labs.load(name))
            except LabNotFound:
                raise
            except LabError:  # a damaged state file: its objects are found by their owner
                unreadable.add(name)
    # Labs without a readable state are found where --connect (or the default) says.
    searched = args.connect or DEFAULT_URI if args.all or unreadable else None
    removed = 0
    for uri in sorted({s.uri for s in states} | ({searched} if searched else set())):
        async with backend_for(uri) as backend:
            removed += await _down_on(backend, [s for s in states if s.uri == uri], labs,
                                      sweep=uri == searched,
                                      only=None if args.all else unreadable)
    if not removed:
        err.print("nothing to remove")
    return 0


async def _down_on(backend: Backend, states: list[LabState], labs: StateStore,
                   *, sweep: bool, only: set[str] | None = None) -> int:
    """Remove `states`' labs; with `sweep`, also what socklab created without a
    readable state file (`only` these labs, or every one). How many labs it removed."""
    progress = ProgressPrinter()
    owned = await backend.owned() if sweep else None
    names = {s.name for s in states}
    for state in states:  # each lab whole, even when interrupted: no half-removed lab
        await to_the_end(tear_down(
            state, backend, labs, progress,
            extra_domains=owned.domains.get(state.name) if owned else None,
            extra_networks=owned.networks.get(state.name) if owned else None))
        err.print(f"lab {state.name} removed")
    if owned is None:
        return len(states)
    # Objects socklab created whose state file is gone or unreadable.
    orphans = (set(owned.domains) | set(owned.networks) | labs.unreadable().keys()) - names
    if only is not None:
        orphans &= only
    for lab in sorted(orphans):
        orphan = LabState(name=lab, topology="", uri=backend.uri, created_at="")
        await to_the_end(tear_down(orphan, backend, labs, progress,
                                   extra_domains=owned.domains.get(lab),
                                   extra_networks=owned.networks.get(lab)))
        err.print(f"lab {lab} removed (it had no readable state file)")
    return len(states) + len(orphans)
