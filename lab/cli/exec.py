"""`lab exec NODE -- CMD`: run a command on a node, streaming its output."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import BinaryIO

from lab.cli.common import Subparsers, add_lab_option, store
from lab.errors import UsageError
from lab.keys import PRIVATE_KEY_NAME
from lab.ssh import NodeSession, Sink


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "exec", help="run a command on a node",
        description="Run a command on a node over SSH. Output is streamed; the exit status "
                    "is the command's. Arguments after -- are passed as separate words "
                    "(quoted for the remote shell); a single argument is a shell command line.",
        epilog="examples: lab exec client -- uname -r | lab exec server 'ss -tln | grep 22'")
    p.add_argument("node", help="node name")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="kill the command after")
    add_lab_option(p)
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    words = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not words:
        raise UsageError("no command given", hint="lab exec NODE -- CMD [ARG...]")
    command = words[0] if len(words) == 1 else words
    state = store().resolve(args.lab)
    key = store().paths.lab_dir(state.name) / PRIVATE_KEY_NAME
    async with NodeSession.open(args.node, state.endpoint(args.node), key) as session:
        return await session.stream(command, _writer(sys.stdout.buffer),
                                    _writer(sys.stderr.buffer), timeout=args.timeout,
                                    stdin=None if sys.stdin.isatty() else _local_stdin())


def _writer(stream: BinaryIO) -> Sink:
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()
    return write


async def _local_stdin() -> AsyncIterator[bytes]:
    """This process's stdin (a pipe or file), forwarded to the remote command."""
    while chunk := await asyncio.to_thread(os.read, sys.stdin.fileno(), 65536):
        yield chunk


