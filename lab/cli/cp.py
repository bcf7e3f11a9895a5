"""`lab cp SRC DST`: copy files between this host and a node (NODE:PATH)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lab.cli.access import node_session
from lab.cli.common import Subparsers, add_lab_option
from lab.errors import UsageError

REMOTE = re.compile(r"^([a-z][a-z0-9-]*):(.*)$")


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "cp",
        description="Copy a file or directory between this host and a node. Exactly one of "
                    "SRC and DST is NODE:PATH. Modes are kept.",
        epilog="examples:\n  lab cp ./replyhi server:/root/\n  lab cp -r client:/tmp/trace ./out")
    p.add_argument("source", metavar="SRC", help="a local path, or NODE:PATH to pull from")
    p.add_argument("destination", metavar="DST",
                   help="a local path, or NODE:PATH to push to (NODE: alone is the home "
                        "directory)")
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    add_lab_option(p)
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    src, dst = REMOTE.match(args.source), REMOTE.match(args.destination)
    if bool(src) == bool(dst):
        for given in (args.source, args.destination):
            node, colon, _ = given.partition(":")
            if colon and "/" not in node and not REMOTE.match(given):  # a NODE that is none
                what = f"{node!r} is not a node name" if node else "no node name before ':'"
                raise UsageError(f"{given}: {what}", hint="lab status lists the nodes of each lab")
        raise UsageError("exactly one of SRC and DST must be NODE:PATH",
                         hint="lab cp FILE NODE:PATH or lab cp NODE:PATH FILE")
    remote = src or dst
    assert remote is not None
    node, path = remote.group(1), remote.group(2) or "."
    async with node_session(args.lab, node) as session:
        if dst:
            await session.put(Path(args.source), path, recursive=args.recursive)
        else:
            await session.get(path, Path(args.destination), recursive=args.recursive)
    return 0
