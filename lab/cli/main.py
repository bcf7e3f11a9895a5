"""The `lab` command: builds the parser from the verb modules and runs one.

This is the only place where a `LabError` becomes a one-line message and an
exit code; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import traceback
from collections.abc import Coroutine, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from rich.markup import escape

from lab import __version__
from lab.cli.console import err
from lab.cli.parsing import DEBUG_HELP, LabParser, SuggestingParser
from lab.errors import BootError, InputError, LabError, UsageError, file_problem
from lab.text import said

if TYPE_CHECKING:
    from lab.cli.common import Subparsers

class Verb(Protocol):
    """What every `lab.cli.<verb>` module provides."""

    def add_parser(self, sub: Subparsers) -> None: ...


# Each verb is a module lab/cli/<verb>.py; only the one a command names is
# imported, so `lab --help` and every verb start without loading all of
# socklab. The order is the order `lab --help` shows.
VERBS = {
    "validate": "check topology and playbook files, reporting every error at once",
    "up": "boot a lab from a topology file",
    "run": "run a playbook on a lab and collect its traces",
    "report": "correlate a run's traces into one timeline and reports",
    "down": "remove a lab, or every lab",
    "status": "list labs and their nodes",
    "exec": "run a command on a node",
    "cp": "copy files to or from a node",
    "ssh": "open an interactive shell on a node",
    "image": "build and list guest images",
    "doctor": "check that this host can run labs",
}

DESCRIPTION = """\
Build network labs of QEMU/KVM Linux guests from one YAML file.

  lab validate topologies/pair.yaml     check a topology, every error at once
  lab up topologies/pair.yaml           boot it; prints the lab's name
  lab exec client -- uname -r           run a command on a node
  lab run topologies/pair.yaml playbooks/replyhi.yaml
                                        up, trace both ends of a connection, down;
                                        prints the run directory with its reports
  lab report runs/<run>                 correlate a run again (report.html, trace.json)
  lab down --all                        remove every lab socklab created
"""

EPILOG = """\
exit status: 0 done, 1 failed, 2 bad input (a file, an option), 70 a bug in lab,
130 or 143 interrupted; `lab run` exits 1 when a step or expectation failed and
3 when the lab did (`lab run --help`); exec and ssh exit with the remote
command's status, or 255 when they could not run it.

environment:
  LAB_HOME              images and the labs' state (default: /var/lib/socklab
                        as root, else $XDG_DATA_HOME/socklab or
                        ~/.local/share/socklab)
  LIBVIRT_DEFAULT_URI   libvirt of this machine (default: qemu:///system)
  LAB_DEBIAN_MIRROR     where images' Debian packages come from (default: the
                        host's apt sources)
  LAB_IMAGES_DIR        the image recipes (default: images/ of this checkout)
"""


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="lab", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lab {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True,
                                parser_class=LabParser)
    chosen = next((word for word in argv if word in VERBS), None)
    for name, summary in VERBS.items():
        if name == chosen:
            module: Verb = import_module(f"lab.cli.{name}")
            module.add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return execute(parse(sys.argv[1:] if argv is None else argv))


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line's arguments; imports the module of the verb it names."""
    argv = list(argv)
    return build_parser(argv).parse_args(argv)


class _AsLabSaysIt(logging.Formatter):
    """A warning logged without --debug reads like lab's own: "warning: ..."."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def execute(args: argparse.Namespace) -> int:
    """Run the verb's handler; a `LabError` or a refused file operation becomes a
    message and an exit code, and so, as a last resort, does any other exception."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(
        "%(relativeCreated)7.0f ms %(levelname)s %(name)s: %(message)s") if args.debug
        else _AsLabSaysIt())
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        handlers=[handler])
    try:
        code: int = asyncio.run(_until_terminated(args.handler(args)))
    except LabError as exc:
        _traceback(args)
        if isinstance(exc, BootError) and exc.console_tail:
            err.print(f"[dim]--- console of {exc.node} (last lines) ---[/dim]")
            err.out(exc.console_tail.rstrip("\n"))
            err.print("[dim]---[/dim]")
        for line in str(exc).splitlines():
            err.print(f"[bold red]error:[/bold red] {escape(said(line))}")
        return exc.exit_code if isinstance(exc, UsageError | InputError) \
            else _failure(args, exc.exit_code)
    except OSError as exc:  # the host refused a file operation: say which, not where in lab
        _traceback(args)
        err.print(f"[bold red]error:[/bold red] {escape(said(file_problem(exc)))}")
        return _failure(args, 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except asyncio.CancelledError:
        err.print("terminated")
        return 128 + signal.SIGTERM
    except Exception as exc:  # a bug in lab: one line, and how to learn more
        _traceback(args)
        message = " ".join(str(exc).split())
        err.print(f"[bold red]error:[/bold red] internal error: "
                  f"{escape(said(type(exc).__name__ + (': ' + message if message else '')))} "
                  "(rerun with --debug for the traceback, and please report it)")
        return _failure(args, os.EX_SOFTWARE)  # 70
    return code


def _traceback(args: argparse.Namespace) -> None:
    """With --debug, where the error came from; the message and exit status stay."""
    if args.debug:
        traceback.print_exc()


def _failure(args: argparse.Namespace, code: int) -> int:
    """The status of a failure that is not a usage error, as the verb says: `lab run`
    exits 3 (1 is a failed experiment); exec and ssh pass a remote command's status
    through, so their own failures (a lab or node not found, too) exit 255, as ssh's
    do, and no remote status can be taken for one of lab's."""
    failure_exit: int | None = getattr(args, "failure_exit", None)
    return code if failure_exit is None else failure_exit


async def _until_terminated(work: Coroutine[Any, Any, int]) -> int:
    """Run a verb; Ctrl-C or SIGTERM cancels it, so its cleanup runs, and a second one
    does not cut that cleanup short (it would leave half a lab behind)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        if received:
            sys.stderr.write("still removing what was started; a moment\n")
            return
        received.append(signum)
        task.cancel()
    # A Ctrl-C the shell told this process to ignore (a background job) stays ignored.
    caught = [s for s in (signal.SIGINT, signal.SIGTERM)
              if s != signal.SIGINT or signal.getsignal(s) is not signal.SIG_IGN]
    for signum in caught:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await work
    except asyncio.CancelledError:
        if received == [signal.SIGINT]:
            raise KeyboardInterrupt from None
        raise
    finally:
        for signum in caught:
            loop.remove_signal_handler(signum)


def run() -> None:
    """The `lab` command's entry point: `main`, sparing the garbage collector work.

    What the verb imports lives as long as the process: the collector is off
    while it is imported (its ~100 passes there find next to nothing; ~20 ms
    for `lab up`), then frozen out of its view, so that a full collection no
    longer scans it (~25 ms, in the middle of `lab up`). Freezing again after
    the verb spares the interpreter, on its way out, a collection over all of
    it (~0.1 s after `lab up`). Only a process that ends after one command may
    do this, hence not in `main`, which tests call.
    """
    gc.disable()
    try:
        args = parse(sys.argv[1:])
    finally:
        gc.freeze()
        gc.enable()
    code = execute(args)
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
