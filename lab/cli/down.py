"""`lab down NAME` / `lab down --all`: remove labs and everything they own."""

from __future__ import annotations

import argparse

from lab.aio import to_the_end
from lab.backends.base import Backend
from lab.cli.access import ProgressPrinter, backend_for, store
from lab.cli.common import Subparsers, add_connect_option, libvirt_uri
from lab.cli.console import err, warn
from lab.errors import LabError, LabNotFound, UsageError
from lab.lifecycle.down import tear_down
from lab.state import LabState, StateStore
from lab.text import count


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
    searched = libvirt_uri(args.connect) if (args.all or unreadable) else None
    removed: list[str] = []
    kept: dict[str, LabError] = {}  # labs that could not be removed, and why
    for uri in sorted({s.uri for s in states} | ({searched} if searched else set())):
        async with backend_for(uri) as backend:
            await _down_on(backend, [s for s in states if s.uri == uri], labs, removed, kept,
                           sweep=uri == searched, only=None if args.all else unreadable)
    if len(kept) == 1 and not removed:  # the one lab there was: its own error says it
        raise next(iter(kept.values()))
    if kept:
        for lab, exc in kept.items():
            warn(f"lab {lab} is not fully removed: {exc}")
        raise LabError(f"{count(len(kept), 'lab')} not fully removed: {', '.join(kept)}",
                       hint=f"see the warnings above; `lab down {' '.join(kept)}` tries again")
    if not removed:
        err.print("nothing to remove")
    return 0


async def _down_on(backend: Backend, states: list[LabState], labs: StateStore,
                   removed: list[str], kept: dict[str, LabError], *, sweep: bool,
                   only: set[str] | None = None) -> None:
    """Remove `states`' labs; with `sweep`, also what socklab created without a
    readable state file (`only` these labs, or every one). A lab that cannot be
    removed goes into `kept` with its error; the others are still removed."""
    owned = await backend.owned() if sweep else None
    targets = [(state, "") for state in states]
    if owned is not None:
        # Objects socklab created whose state file is gone or unreadable.
        orphans = (set(owned.domains) | set(owned.networks) | labs.unreadable().keys()) \
            - {s.name for s in states}
        targets += [(LabState(name=lab, topology="", uri=backend.uri, created_at=""),
                     " (it had no readable state file)")
                    for lab in sorted(orphans if only is None else orphans & only)]
    progress = ProgressPrinter()
    for read, note in targets:  # each lab whole, even when interrupted: no half-removed lab
        try:
            with labs.in_use(read.name):  # not while it comes up or a run is on it
                # Read again now it is held: the lab up it was read during may have ended.
                try:
                    state = labs.load(read.name) if not note else read
                except LabNotFound:
                    continue  # removed meanwhile, by another lab down
                await to_the_end(tear_down(
                    state, backend, labs, progress,
                    extra_domains=owned.domains.get(state.name) if owned else None,
                    extra_networks=owned.networks.get(state.name) if owned else None))
        except LabError as exc:
            kept[read.name] = exc
            continue
        err.print(f"lab {read.name} removed{note}")
        removed.append(read.name)
