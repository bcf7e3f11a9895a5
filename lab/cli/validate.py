"""`lab validate`: check topology files without booting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.cli.common import Subparsers
from lab.errors import InputError, InputIssue, UsageError
from lab.images.recipe import available_names
from lab.source import load_document, parse_overrides
from lab.topology import TopologyInput, expand
from lab.topology.schema import schema_json

EPILOG = """\
examples:
  lab validate topologies/pair.yaml
  lab validate topologies/*.yaml --set memory=512
  lab validate --schema > topologies/schema.json

Every problem in every file is reported at once, as FILE:LINE: PATH: MESSAGE.
"""


def add_parser(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "validate", help="check topology files, reporting every error at once",
        description="Check topology files: YAML syntax, templates, fields, links, "
                    "addresses and image names. Nothing is booted.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="topology YAML file(s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="set a template variable, overriding vars: (repeatable; "
                             "VALUE is YAML, so 512 is a number)")
    parser.add_argument("--schema", action="store_true",
                        help="print the JSON Schema of topology files and exit")
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    if args.schema:
        if args.files:
            raise UsageError("--schema takes no FILE", hint="lab validate --schema > schema.json")
        sys.stdout.write(schema_json())
        return 0
    if not args.files:
        raise UsageError("no topology FILE given", hint="lab validate topologies/pair.yaml")
    overrides = parse_overrides(args.overrides)
    images = available_names()
    issues: list[InputIssue] = []
    unused: set[str] | None = set(overrides)  # None: a file we could not read may use them
    for path in args.files:
        try:
            doc = load_document(path, TopologyInput, overrides=overrides)
        except InputError as exc:
            issues += exc.issues
            unused = None
            continue
        unused = None if unused is None else unused & doc.unused_overrides
        try:
            topo = expand(doc, images=images)
        except InputError as exc:
            issues += exc.issues
            continue
        print(f"{path}: ok ({_count(len(topo.nodes), 'node')}, "
              f"{_count(len(topo.networks), 'network')})")
    for key in sorted(unused or ()):
        print(f"warning: --set {key}: no file uses or declares this variable", file=sys.stderr)
    if issues:
        raise InputError(issues)
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
