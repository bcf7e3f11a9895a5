"""strace around one command on a node: every system call of it and of its children.

    await install_clocks(session, programs_cache)              # once per node
    line = wrap("/opt/socklab/bin/hello 10.0.1.10 7777", "/run/socklab/strace-01-x.txt", None)
    ... the runner runs `line` on the node (exit status: the command's) ...
    capture = await collect_strace(session, "/run/socklab/strace-01-x.txt", run_dir / "raw" / ...)
    parse_strace(lines, node=..., kernel=..., clocks=capture.clocks) → events in the one schema
"""

from lab.tracers.result import ParseResult
from lab.tracers.strace.clock import (
    ClockSample,
    parse_clocks,
    realtime_to_monotonic,
    seconds_to_ns,
)
from lab.tracers.strace.collect import (
    CLOCKS_PATH,
    StraceCapture,
    StraceError,
    clocks_file,
    collect_strace,
    install_clocks,
    read_clocks,
    read_clocks_file,
)
from lab.tracers.strace.parse import parse_strace
from lab.tracers.strace.wrap import PROCESS_CALLS, strace_options, syscall_set, wrap

__all__ = [
    "CLOCKS_PATH", "PROCESS_CALLS", "ClockSample", "ParseResult", "StraceCapture",
    "StraceError", "clocks_file", "collect_strace", "install_clocks", "parse_clocks",
    "parse_strace", "read_clocks", "read_clocks_file", "realtime_to_monotonic", "seconds_to_ns",
    "strace_options", "syscall_set", "wrap",
]
