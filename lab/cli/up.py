"""`lab up TOPOLOGY`: boot a lab and wait until every node answers over SSH."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.cli.access import ProgressPrinter, backend_for
from lab.cli.common import Subparsers, add_connect_option, libvirt_uri, read_topology
from lab.cli.console import out
from lab.cli.parsing import seconds
from lab.lifecycle.up import UpOptions, bring_up
from lab.names import new_lab_name
from lab.paths import Paths
from lab.source import parse_overrides, refuse_unused_overrides
from lab.state import StateStore


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "up",
        description="Boot every node of a topology in parallel and return when each one "
                    "answers a command over SSH. Prints the lab's name, which other verbs "
                    "take with --lab.",
        epilog="example: lab up topologies/pair.yaml --set image=debian-12")
    p.add_argument("topology", type=Path, metavar="TOPOLOGY", help="topology YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="set a template variable, overriding the topology's vars: "
                        "(repeatable; VALUE is YAML, so 512 is a number)")
    p.add_argument("--timeout", type=seconds, default=120.0, metavar="SECONDS",
                   help="deadline for every node to answer SSH (default: 120)")
    p.add_argument("--accel", choices=("kvm", "tcg"),
                   help="skip the KVM probe and use this accelerator")
    p.add_argument("--mirror", metavar="URL",
                   help="Debian mirror for the image builds it needs "
                        "(default: $LAB_DEBIAN_MIRROR or the host's apt sources)")
    add_connect_option(p)
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.overrides)
    document, topology = read_topology(args.topology, overrides)
    refuse_unused_overrides(overrides, [document])
    name = new_lab_name(topology.name)
    options = UpOptions(timeout=args.timeout, accel=args.accel, mirror=args.mirror, name=name)
    paths = Paths.default()
    async with backend_for(libvirt_uri(args.connect)) as backend:
        with StateStore(paths).in_use(name):  # `lab down --all` meanwhile leaves it be
            state = await bring_up(topology, args.topology, backend, paths,
                                   options=options, events=ProgressPrinter())
    out.print(state.name)
    return 0
