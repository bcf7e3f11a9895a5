"""The strace command line that wraps one command run on a node.

    wrap("/opt/socklab/bin/hello 10.0.1.10 7777", "/run/socklab/s.txt", None)
    → strace -f -ttt -T -yy -s 64 -o /run/socklab/s.txt -- sh -c '/opt/socklab/bin/hello …'

The options make the output parseable into the one event schema:
-f follows every process and thread the command starts (each line then
begins with the thread id), -ttt stamps each line with CLOCK_REALTIME in
microseconds, -T appends the time spent in the call, -yy prints what a
descriptor is (for a TCP or UDP socket, its protocol and 4-tuple, through
the sock_diag modules the guest loads at boot) and -s 64 caps the bytes of a
buffer shown. strace exits with the command's status, or dies of its signal.

A system call set (`-e trace=`) always gains the process calls (execve,
clone, fork ...), unless it is a negated one: they tell the parser which
program each thread runs (its comm) and which threads form one process.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

STRACE = "strace"  # /usr/bin/strace in the guest images
STRING_LIMIT = 64  # -s: bytes of each buffer shown
# Traced whatever the set, so that comm and pid can be derived (see parse.py).
PROCESS_CALLS: tuple[str, ...] = ("execve", "execveat", "clone", "clone3", "fork", "vfork")


def strace_options(output: str, syscalls: Sequence[str] | None = None) -> list[str]:
    """strace's options (before `--`) writing to `output` on the node."""
    options = ["-f", "-ttt", "-T", "-yy", "-s", str(STRING_LIMIT), "-o", output]
    if syscalls is not None:
        options += ["-e", "trace=" + ",".join(syscall_set(syscalls))]
    return options


def syscall_set(syscalls: Sequence[str]) -> list[str]:
    """The -e trace= items: the given ones, plus the process calls unless negated."""
    items = [s.strip() for s in syscalls if s.strip()]
    if not items:
        raise ValueError("an empty system call set traces nothing: pass None for every call")
    if items[0].startswith("!"):  # strace negates the whole set
        return items
    return items + [c for c in PROCESS_CALLS if c not in items]


def wrap(command: str, output: str, syscalls: Sequence[str] | None = None, *,
         strace: str = STRACE) -> str:
    """The shell command line that runs `command` with `sh -c` under strace.

    `output` is the trace file on the node (its directory must exist);
    `syscalls` the -e trace= set (names, %classes, or a !negated set), None
    for every system call.
    """
    if not command.strip():
        raise ValueError("empty command")
    return shlex.join([strace, *strace_options(output, syscalls), "--", "sh", "-c", command])
