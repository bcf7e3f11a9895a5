"""`lab exec NODE -- CMD`: run a command on a node, streaming its output."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import BinaryIO

from lab.cli.access import node_session
from lab.cli.common import Subparsers, add_lab_option
from lab.cli.parsing import seconds
from lab.errors import UsageError
from lab.ssh import Sink


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "exec",
        usage="lab exec [options] NODE -- CMD [ARG...]\n"
              "       lab exec [options] NODE CMD [ARG...]   (no word of CMD starting with -)",
        description="Run a command on a node over SSH. Output is streamed; the exit status "
                    "is the command's, or 255 when lab itself fails (no such lab or node, SSH "
                    "refused, --timeout reached) as with ssh, and 2 for a usage error. "
                    "Everything after the first -- is the command, untouched; lab's own "
                    "options go anywhere before it. "
                    "Several words are passed as separate arguments (quoted for the remote "
                    "shell); a single word is a shell command line. Without --, the command "
                    "starts at the first word after NODE, and none of its words may start "
                    "with - (lab cannot tell the command's options from its own, and stops "
                    "with a usage error instead).",
        epilog=("examples:"
                "\n  lab exec client -- uname -r"
                "\n  lab exec --lab pair-1a2b3c client -- ls -l /"
                "\n  lab exec server 'ss -tln | grep 22'"))
    p.add_argument("node", metavar="NODE", help="node name")
    p.add_argument("--timeout", type=seconds, metavar="SECONDS",
                   help="kill the command if it runs longer than this (exit 255; default: no "
                        "limit)")
    add_lab_option(p)
    p.add_command("command", metavar="CMD", usage="CMD [ARG...]",
                  help="the command and its arguments (after --)")
    p.set_defaults(handler=run, failure_exit=255)


async def run(args: argparse.Namespace) -> int:
    words: list[str] = args.command
    if not words:
        raise UsageError("no command given", hint="lab exec NODE -- CMD [ARG...]")
    command = words[0] if len(words) == 1 else words
    async with node_session(args.lab, args.node) as session:
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
    fd = sys.stdin.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        # A file or /dev/null never blocks for long, and epoll refuses both.
        while chunk := os.read(fd, 65536):
            yield chunk
        return
    # A pipe is read without a thread, so an early remote exit can cancel the read.
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while chunk := await reader.read(65536):
            yield chunk
    finally:
        transport.close()


