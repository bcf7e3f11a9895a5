"""`lab validate`: check topology and playbook files without booting anything."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.cli.common import Subparsers, warn_unreachable
from lab.cli.console import warn
from lab.errors import InputError, InputIssue, UsageError
from lab.images.recipe import available_names
from lab.paths import Paths
from lab.playbook import (
    FACT_NAMES,
    FACT_REASON,
    build_programs,
    document_kind,
    read_playbook,
    resolve_playbook,
)
from lab.playbook.schema import schema_json as playbook_schema_json
from lab.source import (
    Document,
    load_document,
    parse_overrides,
    refuse_unused_overrides,
    unused_overrides,
)
from lab.text import count
from lab.topology import Topology, TopologyInput, expand
from lab.topology.schema import schema_json as topology_schema_json

EPILOG = """\
examples:
  lab validate topologies/pair.yaml
  lab validate topologies/*.yaml --set memory=512
  lab validate topologies/pair.yaml playbooks/*.yaml
  lab validate --topology topologies/pair.yaml playbooks/replyhi.yaml --set port=8000
  lab validate --schema > topologies/schema.json
  lab validate --schema playbook > playbooks/schema.json

A file with a top-level steps: is a playbook, any other a topology. Playbook
templates use topology facts (nodes.server.ipv4 ...), so each playbook is
checked against the --topology file, else against every topology given.
Every problem in every file is reported at once, as FILE:LINE: PATH: MESSAGE.
"""

SCHEMAS: dict[str, Callable[[], str]] = {
    "topology": topology_schema_json, "playbook": playbook_schema_json}


def add_parser(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "validate",
        description="Check topology and playbook files: YAML syntax, templates, fields, "
                    "links, addresses and image names; steps, nodes, handles, tracers, "
                    "programs (C sources are compiled) and expectations. Nothing is "
                    "booted.",
        epilog=EPILOG)
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="topology or playbook YAML file(s)")
    parser.add_argument("-t", "--topology", type=Path, metavar="FILE",
                        help="check playbooks against this topology only")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="set a template variable, overriding vars: (repeatable; "
                             "VALUE is YAML, so 512 is a number)")
    parser.add_argument("--schema", nargs="?", const="topology", metavar="KIND",
                        help="print the JSON Schema of topology (default) or playbook files "
                             "and exit")
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    if args.schema is not None:
        if args.files or args.topology or args.schema not in SCHEMAS:
            if args.files or args.topology or "/" in args.schema or "." in args.schema:
                raise UsageError("--schema takes no FILE",
                                 hint="lab validate --schema > schema.json")
            raise UsageError(f"--schema {args.schema}: no such kind of file",
                             hint=f"one of: {', '.join(SCHEMAS)}")
        sys.stdout.write(SCHEMAS[args.schema]())
        return 0
    if not args.files and args.topology is None:
        raise UsageError("no topology FILE given", hint="lab validate topologies/pair.yaml")
    overrides = parse_overrides(args.overrides)
    playbooks = [p for p in args.files if document_kind(p) == "playbook"]
    topologies = [p for p in args.files if p not in playbooks and p != args.topology]
    if args.topology is not None:
        if document_kind(args.topology) == "playbook":
            raise UsageError(f"--topology {args.topology} is a playbook",
                             hint="give the topology the playbooks run on")
        topologies.insert(0, args.topology)
    if playbooks and not topologies:
        raise UsageError(f"playbook {playbooks[0]} needs a topology for its facts",
                         hint=f"lab validate topologies/pair.yaml {playbooks[0]}")
    check = _Check(overrides)
    resolved = {p: topo for p in topologies if (topo := check.topology(p))}
    targets = [args.topology] if args.topology is not None else topologies
    for path in playbooks:
        for target in targets:
            if target in resolved:
                await check.playbook(path, target, resolved[target])
        if not any(target in resolved for target in targets):  # its facts are unknown
            broken = str(targets[0]) if len(targets) == 1 else "every topology given"
            warn(f"{path}: not checked, as {broken} has errors; fix them first")
    if check.issues:
        raise InputError(check.issues)
    if playbooks and check.complete:  # every file `lab run` reads: refused as it refuses
        refuse_unused_overrides(overrides, check.documents,
                                reserved=dict.fromkeys(FACT_NAMES, FACT_REASON))
    for key in unused_overrides(overrides, check.documents) if check.complete else ():
        # A topology alone: the --set may be for a playbook not given.
        why = FACT_REASON if key in FACT_NAMES else "no file uses or declares this variable"
        warn(f"--set {key}: {why}")
    return 0


class _Check:
    """Loads files, printing what is fine and collecting every issue (each once)."""

    def __init__(self, overrides: dict[str, str]) -> None:
        self.overrides = overrides
        self.images = available_names()
        self.issues: list[InputIssue] = []
        self.documents: list[Document[Any]] = []  # each file read, for the --set it uses
        self.complete = True  # False once a file could not be read: it may use any --set
        self.warned: list[InputIssue] = []

    def topology(self, path: Path) -> Topology | None:
        try:
            doc = load_document(path, TopologyInput, overrides=self.overrides,
                                keep_going=True)
        except InputError as exc:
            self.failed(exc)
            return None
        self.documents.append(doc)
        try:
            topo = expand(doc, images=self.images)
        except InputError as exc:
            self.add(exc)
            return None
        print(f"{path}: ok ({count(len(topo.nodes), 'node')}, "
              f"{count(len(topo.networks), 'network')})")
        warn_unreachable(doc, topo)
        return topo

    async def playbook(self, path: Path, topology_path: Path, topology: Topology) -> None:
        try:
            doc = read_playbook(path, topology, overrides=self.overrides)
        except InputError as exc:
            self.failed(exc)
            return
        self.documents.append(doc)
        try:
            book = resolve_playbook(doc, topology, overrides=self.overrides)
            for warning in await build_programs(book, Paths.default().programs):
                if warning not in self.warned:  # once, whatever the topologies
                    self.warned.append(warning)
                    warn(str(warning))
        except InputError as exc:
            self.add(exc)
            return
        print(f"{path}: ok with {topology_path} ({count(len(book.steps), 'step')}, "
              f"{count(len(book.expect), 'expectation')})")

    def failed(self, exc: InputError) -> None:
        self.complete = False
        self.add(exc)

    def add(self, exc: InputError) -> None:
        self.issues += [i for i in exc.issues if i not in self.issues]
