"""`lab status`: the labs that are up, their nodes and how to reach them, and
whether their guests still run."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from lab.cli.access import backend_for, stopped_nodes, store
from lab.cli.common import Subparsers
from lab.cli.console import out, warn
from lab.errors import LabError
from lab.state import LabState, StateStore


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "status",
        description="Show every lab recorded on this host, or one lab. STATUS is up (its "
                    "guests run), creating (its lab up runs), interrupted (its lab up was "
                    "stopped before the lab was up: lab down removes it) or stale (a guest "
                    "no longer runs: the host rebooted, or it died; lab down, then up again).",
        epilog="examples:\n  lab status\n  lab status pair-1a2b3c\n  lab status --json")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these labs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    labs = store()
    states = [labs.load(n) for n in args.names] if args.names else labs.all()
    unreadable = {} if args.names else labs.unreadable()
    for name, problem in unreadable.items():
        warn(f"lab {name}: {problem.message} (remove it with `lab down {name}`)")
    stopped = await _stopped_nodes(states)
    shown = {s.name: _status(s, stopped, labs) for s in states}
    if args.json:  # the saved state, its STATUS, and which guests no longer run (null: not known)
        out.out(json.dumps([{**s.model_dump(), "status": shown[s.name],
                             "stopped_nodes": stopped.get(s.name)} for s in states], indent=2))
        return 0
    if not states:
        if not unreadable:
            out.print("no labs (start one with `lab up TOPOLOGY`)")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("LAB", "STATUS", "NODE", "ROLE", "IMAGE", "KERNEL", "SSH", "ADDRESSES"):
        table.add_column(column)
    for state in states:
        status = shown[state.name]
        for i, (name, node) in enumerate(state.nodes.items()):
            table.add_row(state.name if i == 0 else "", status if i == 0 else "",
                          name, node.role or "", node.image, node.kernel_release,
                          f"{node.ssh_host}:{node.ssh_port}", " ".join(node.addresses))
        if not state.nodes:
            table.add_row(state.name, status, "", "", "", "", "", "")
    out.print(table)
    for lab, nodes in stopped.items():
        if nodes:
            warn(f"lab {lab}: {', '.join(nodes)} not running (the host rebooted, or a guest "
                 f"died): `lab down {lab}` and up again")
    return 0


def _status(state: LabState, stopped: dict[str, list[str]], labs: StateStore) -> str:
    """up, creating, interrupted (no `lab up` makes it now) or stale."""
    if stopped.get(state.name):
        return "stale"
    if state.status == "creating" and not labs.held(state.name):
        return "interrupted"
    return state.status


async def _stopped_nodes(states: list[LabState]) -> dict[str, list[str]]:
    """Per lab that is up, its nodes whose guest libvirt does not see running: the
    state file says what was started, not what still runs. A lab libvirt could not
    be asked about is left out."""
    stopped: dict[str, list[str]] = {}
    for uri in sorted({s.uri for s in states if s.status == "up"}):
        try:
            async with backend_for(uri) as backend:
                for state in (s for s in states if s.uri == uri and s.status == "up"):
                    stopped[state.name] = await stopped_nodes(state, backend)
        except LabError as exc:
            warn(f"cannot tell whether the guests run: {exc.message}")
    return stopped
