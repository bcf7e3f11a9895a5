"""ftrace through tracefs, in a private trace instance: nothing extra in the guest.

    script = start_script(FtraceOptions(comms=("replyhi",)))   # run on the node
    ... experiment ...
    stop_script() → then `trace` and the per-CPU stats are collected
    parse_trace(text, node=..., kernel=...) → events in the one schema
"""

from lab.tracers.ftrace.parse import ParseResult, parse_trace
from lab.tracers.ftrace.probes import DEFAULT_FUNCTIONS, DEFAULT_SYSCALLS, FtraceOptions
from lab.tracers.ftrace.script import INSTANCE, cleanup_script, start_script, stop_script

__all__ = [
    "DEFAULT_FUNCTIONS", "DEFAULT_SYSCALLS", "INSTANCE", "FtraceOptions", "ParseResult",
    "cleanup_script", "parse_trace", "start_script", "stop_script",
]
