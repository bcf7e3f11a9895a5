"""`lab status`: the labs that are up, their nodes and how to reach them."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from lab.cli.common import Subparsers, err, out, store


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "status",
        description="Show every lab recorded on this host, or one lab.",
        epilog="examples: lab status | lab status pair-1a2b3c | lab status --json")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these labs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    labs = store()
    states = [labs.load(n) for n in args.names] if args.names else labs.all()
    unreadable = {} if args.names else labs.unreadable()
    if args.json:
        out.out(json.dumps([s.model_dump() for s in states], indent=2))
        return 0
    for name, problem in unreadable.items():
        err.print(f"[yellow]warning:[/yellow] lab {name}: {escape(problem.message)} "
                  f"(remove it with `lab down {name}`)")
    if not states:
        if not unreadable:
            out.print("no labs (start one with `lab up TOPOLOGY`)")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("LAB", "STATUS", "NODE", "ROLE", "IMAGE", "KERNEL", "SSH", "ADDRESSES"):
        table.add_column(column)
    for state in states:
        for i, (name, node) in enumerate(state.nodes.items()):
            table.add_row(state.name if i == 0 else "", state.status if i == 0 else "",
                          name, node.role or "", node.image, node.kernel_release,
                          f"{node.ssh_host}:{node.ssh_port}", " ".join(node.addresses))
        if not state.nodes:
            table.add_row(state.name, state.status, "", "", "", "", "", "")
    out.print(table)
    return 0
