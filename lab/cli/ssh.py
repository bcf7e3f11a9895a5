"""`lab ssh NODE`: an interactive shell through the lab's generated ssh_config."""

from __future__ import annotations

import argparse
import os
import shutil

from lab.cli.access import store
from lab.cli.common import Subparsers, add_lab_option
from lab.errors import LabError, UsageError
from lab.state import SSH_CONFIG, StateStore


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "ssh",
        usage="lab ssh [options] NODE [--] [SSH_ARG...]\n       lab ssh [options] --print-config",
        description="Run the system's ssh with the lab's ssh_config (host key pinned, lab key). "
                    "The same file works by hand: ssh -F $(lab ssh --print-config) NODE. "
                    "Everything after the first -- goes to ssh after NODE, untouched (its "
                    "options, or a command); lab's own options go anywhere before it. Without "
                    "--, the words after NODE go to ssh, and none of them may start with -. "
                    "lab's own failures (no such lab or node) exit 255, as ssh's do.",
        epilog=("examples:"
                "\n  lab ssh server"
                "\n  lab ssh server --lab pair-1a2b3c -- -v"
                "\n  lab ssh client -- cat /proc/version"))
    p.add_argument("node", nargs="?", metavar="NODE", help="node name")
    p.add_argument("--print-config", action="store_true",
                   help="print the path of the lab's ssh_config and exit")
    add_lab_option(p)
    p.add_command("ssh_args", metavar="SSH_ARG", usage="[SSH_ARG...]",
                  help="ssh options or a command (after --)")
    p.set_defaults(handler=run, failure_exit=255)


async def run(args: argparse.Namespace) -> int:
    labs = store()
    if not (args.node or args.print_config):
        raise UsageError("no NODE given", hint=_nodes_hint(labs, args.lab))
    state = labs.resolve(args.lab)
    config = labs.paths.lab_dir(state.name) / SSH_CONFIG
    if args.print_config:
        print(config)
        return 0
    state.endpoint(args.node)  # a clear error for an unknown or unbooted node
    ssh = shutil.which("ssh")
    if ssh is None:
        raise LabError("no ssh client found", hint="install openssh-client")
    os.execv(ssh, [ssh, "-F", str(config), args.node, *args.ssh_args])


def _nodes_hint(labs: StateStore, lab: str | None) -> str:
    try:
        nodes = labs.resolve(lab).nodes
    except LabError:
        return "lab ssh NODE; `lab status` lists the labs and their nodes"
    return f"lab ssh NODE, with NODE one of: {', '.join(nodes)}"
