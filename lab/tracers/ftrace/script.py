"""The busybox shell scripts that set up, stop and remove the trace in a guest.

Everything lives in the private instance `socklab` and the kprobe group
`socklab`, so another user of tracefs in the guest is left alone. The start
script defines only the probes whose functions this kernel has, and reports
the others; that is how the function set adapts to 5.10 and 6.1.
"""

from __future__ import annotations

import shlex

from lab.tracers.ftrace.probes import (
    PORT_FILTER,
    PORT_TRACEPOINTS,
    TRACEPOINT_PORT_FILTER,
    FtraceOptions,
)

TRACEFS = "/sys/kernel/tracing"
INSTANCE = "socklab"
GROUP = "socklab"
INSTANCE_DIR = f"{TRACEFS}/instances/{INSTANCE}"
# Calls of one function that a return probe follows at once. Left to the kernel, it
# is one per CPU on Debian's 5.10 (no CONFIG_PREEMPTION): a second call blocked in
# the same function, as two servers in accept() are, would lose its return.
RETURN_INSTANCES = 1024
# Lines the start script prints about what it did, read back by the controller.
SKIPPED_PREFIX = "socklab-ftrace: skipped"
MISSED_PREFIX = "socklab-ftrace: missed"
# Our kprobes, one per line as kprobe_events lists them: p:GROUP/NAME or r16:GROUP/NAME.
OUR_PROBES = f"grep '^[pr][0-9]*:{GROUP}/' $T/kprobe_events | cut -d' ' -f1"
# Remove our kprobes (by GROUP/NAME); the instance must be gone.
REMOVE_PROBES = (
    f"for e in $({OUR_PROBES} | cut -d: -f2)",
    "do echo \"-:$e\" >> $T/kprobe_events; done",
)


def comm_filter(comms: list[str]) -> str:
    return " || ".join(f'comm == "{c}"' for c in comms) or 'comm == ""'


def start_script(options: FtraceOptions) -> str:
    comms = comm_filter(list(options.comms))
    lines = [
        "set -e",
        f"T={TRACEFS}",
        f"I={INSTANCE_DIR}",
        # Start from a clean slate: a previous run may have been interrupted.
        "[ -d $I ] && rmdir $I",
        *REMOVE_PROBES,
        "probe() {  # FUNCTION FILTER ENTRY-ARGS [RETURN-ARGS]",
        # A function this kernel lacks, or will not let be probed, is refused by the
        # kernel itself: reported as skipped. (Asking is cheaper than reading the
        # list of traceable functions first: ~0.9 s under emulation.)
        # No subshell per probe: forks are slow under emulation.
        f"    if ! echo \"p:{GROUP}/$1 $1 $3\" >> $T/kprobe_events 2>/dev/null; then",
        "        skipped=\"$skipped $1\"",
        "        return",
        "    fi",
        "    filters=\"$filters $1=$2\"",
        "    [ -n \"$4\" ] || return 0",
        f"    if echo \"r{RETURN_INSTANCES}:{GROUP}/$1__return $1 $4\" >> $T/kprobe_events "
        "2>/dev/null; then",
        # A return has no socket fields to filter on: it runs in the process, by comm.
        "        filters=\"$filters $1__return=comm\"",
        "    else",
        "        skipped=\"$skipped $1__return\"",
        "    fi",
        "}",
    ]
    for p in options.probes():
        lines.append("probe " + " ".join(shlex.quote(w) for w in (p.function, p.filter,
                                                                   p.args, p.ret)))
    lines += [
        "mkdir $I",
        "echo mono > $I/trace_clock",
        f"echo {options.buffer_kb} > $I/buffer_size_kb",
        "echo 1 > $I/options/record-tgid",
        "for f in $filters; do",
        "    event=${f%=*}",
        f"    if [ ${{f#*=}} = comm ]; then filter={shlex.quote(comms)}; "
        f"else filter={shlex.quote(PORT_FILTER)}; fi",
        f"    echo \"$filter\" > $I/events/{GROUP}/$event/filter",
        f"    echo 1 > $I/events/{GROUP}/$event/enable",
        "done",
    ]
    for name in options.syscall_names():
        for phase in ("enter", "exit"):
            event = f"$I/events/syscalls/sys_{phase}_{name}"
            lines.append(f"if [ -d {event} ]; then echo {shlex.quote(comms)} > {event}/filter; "
                         f"echo 1 > {event}/enable; else skipped=\"$skipped sys_{phase}_{name}\"; "
                         "fi")
    for tracepoint in PORT_TRACEPOINTS:
        event = f"$I/events/{tracepoint}"
        lines.append(f"if [ -d {event} ]; then echo {shlex.quote(TRACEPOINT_PORT_FILTER)} > "
                     f"{event}/filter; echo 1 > {event}/enable; fi")
    lines += [
        "echo 1 > $I/tracing_on",
        f"echo \"{SKIPPED_PREFIX}:$skipped\"",
    ]
    return "\n".join(lines) + "\n"


def stop_script() -> str:
    """Stop recording; print the per-CPU statistics and each of our probes' misses.

    Lost events are counted in two places: the ring buffer's statistics, and
    `kprobe_profile`, whose third column counts the hits a probe could not record
    (it fired inside another probe's handler, as a softirq does, or a return
    probe had no free instance). That file names probes without their group.
    """
    return "\n".join([
        f"T={TRACEFS}",
        f"I={INSTANCE_DIR}",
        "echo 0 > $I/tracing_on",
        "for s in $I/per_cpu/cpu*/stats; do echo \"== $s\"; cat $s; done",
        f"ours=$({OUR_PROBES} | cut -d/ -f2)",
        "awk -v ours=\"$ours\" 'BEGIN {n = split(ours, a); for (i = 1; i <= n; i++) w[a[i]]}",
        f"    ($1 in w) && $3 > 0 {{print \"{MISSED_PREFIX}\", $1, $3}}' $T/kprobe_profile",
    ]) + "\n"


def cleanup_script() -> str:
    """Remove the instance and the kprobes; safe to run twice."""
    return "\n".join([
        f"T={TRACEFS}",
        f"I={INSTANCE_DIR}",
        "[ -d $I ] && echo 0 > $I/tracing_on && rmdir $I",
        *REMOVE_PROBES,
        "true",
    ]) + "\n"
