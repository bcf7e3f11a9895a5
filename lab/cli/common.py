"""What every verb shares, and nothing heavy: common options, reading a topology.

Reaching a lab (libvirt, its state, SSH) is in `lab.cli.access`, so that verbs that
only read files (validate, report) start without loading any of it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias

from lab.backends.base import DEFAULT_URI, not_local
from lab.cli.console import warn
from lab.cli.parsing import LabParser
from lab.errors import UsageError
from lab.images.recipe import available_names
from lab.source import Document, load_document
from lab.topology import Topology, TopologyInput, expand
from lab.topology.routes import unreachable

# What each verb module's add_parser() receives.
Subparsers: TypeAlias = "argparse._SubParsersAction[LabParser]"

def add_connect_option(parser: argparse.ArgumentParser,
                       purpose: str = "libvirt connection URI") -> None:
    """--connect; `libvirt_uri(args.connect)` is the URI to use."""
    parser.add_argument(
        "-c", "--connect", metavar="URI", type=_connect_option,
        help=f"{purpose}, of this machine (default: $LIBVIRT_DEFAULT_URI or {DEFAULT_URI})")


def libvirt_uri(given: str | None) -> str:
    """--connect's URI, else $LIBVIRT_DEFAULT_URI's (checked as --connect's is), else
    qemu:///system."""
    if given:
        return given
    env = os.environ.get("LIBVIRT_DEFAULT_URI")
    if not env:
        return DEFAULT_URI
    if (problem := not_local(env)) is not None:
        raise UsageError(f"LIBVIRT_DEFAULT_URI={env}: {problem}",
                         hint=f"unset it, or give --connect {DEFAULT_URI}")
    return env


def _connect_option(text: str) -> str:
    if (problem := not_local(text)) is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def add_lab_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--lab", metavar="NAME",
                        help="the lab to act on (default: the only lab that is up)")


def read_topology(path: Path, overrides: Mapping[str, str]) -> tuple[
        Document[TopologyInput], Topology]:
    """A topology file as the verbs that boot read it: loaded and expanded against the
    images there are (InputError with every issue), nodes with no path between them
    warned of. Its document tells which --set it used."""
    document = load_document(path, TopologyInput, overrides=overrides, keep_going=True)
    topology = expand(document, images=available_names())
    warn_unreachable(document, topology)
    return document, topology


def warn_unreachable(document: Document[TopologyInput], topology: Topology) -> None:
    """Nodes with no path between them: most often a forgotten link or router."""
    for node, others in unreachable(topology):
        warn(str(document.locator.issue(
            ("nodes", node), f"{node} has no path to {', '.join(others)}",
            hint="link them to one network, or give a node on both networks role: router")))
