"""ftrace through tracefs, in a private trace instance: nothing extra in the guest.

    skipped = await start_ftrace(session, FtraceOptions(comms=("replyhi",)))
    ... experiment ...
    stats = await stop_ftrace(session, run_dir / "raw" / "ftrace-server.txt")
    parse_trace(lines, node=..., kernel=...) → events in the one schema

Starting and stopping each have a deadline (timeout=; START_TIMEOUT and
STOP_TIMEOUT by default); past it, FtraceError names the node and the limit.
"""

from lab.tracers.ftrace.collect import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    FtraceError,
    TraceStats,
    parse_stats,
    start_ftrace,
    stop_ftrace,
)
from lab.tracers.ftrace.parse import parse_trace
from lab.tracers.ftrace.probes import DEFAULT_FUNCTIONS, DEFAULT_SYSCALLS, FtraceOptions
from lab.tracers.ftrace.script import INSTANCE, cleanup_script, start_script, stop_script
from lab.tracers.result import ParseResult

__all__ = [
    "DEFAULT_FUNCTIONS", "DEFAULT_SYSCALLS", "INSTANCE", "START_TIMEOUT", "STOP_TIMEOUT",
    "FtraceError", "FtraceOptions", "ParseResult", "TraceStats", "cleanup_script", "parse_stats",
    "parse_trace", "start_ftrace", "start_script", "stop_ftrace", "stop_script",
]
