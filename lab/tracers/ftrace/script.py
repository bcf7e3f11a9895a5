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
DEBUGFS = "/sys/kernel/debug"
KPROBES_LIST = f"{DEBUGFS}/kprobes/list"  # each kprobe: address, type, symbol+offset
# Lines the start script prints about what it did, read back by the controller.
SKIPPED_PREFIX = "socklab-ftrace: skipped"
MISSED_PREFIX = "socklab-ftrace: missed"
# Our kprobes, one per line as kprobe_events lists them: p:GROUP/NAME or r1024:GROUP/NAME.
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
        # A function this kernel lacks, or will not let be probed, is refused by the
        # kernel itself: reported as skipped. (Asking is cheaper than reading the
        # list of traceable functions first: ~0.9 s under emulation.)
        # No subshell per probe: forks are slow under emulation.
        "returning() {  # FUNCTION RETURN-ARGS",
        f"    if echo \"r{RETURN_INSTANCES}:{GROUP}/$1__return $1 $2\" >> $T/kprobe_events "
        "2>/dev/null; then",
        # A return has no socket fields to filter on: it runs in the process, by comm.
        "        filters=\"$filters $1__return=comm\"",
        "    else",
        "        unreturned=\"$unreturned $1 \"",
        "    fi",
        "}",
        "entering() {  # FUNCTION FILTER ENTRY-ARGS",
        "    at=$1",
        "    case $1 in *[!A-Za-z0-9_]*) ;; *) eval \"at=\\${at_$1:-$1}\" ;; esac",
        f"    if ! echo \"p:{GROUP}/$1 $at $3\" >> $T/kprobe_events 2>/dev/null; then",
        "        skipped=\"$skipped $1\"",
        "        return",
        "    fi",
        "    filters=\"$filters $1=$2\"",
        "    case \"$unreturned\" in *\" $1 \"*) skipped=\"$skipped $1__return\" ;; esac",
        "}",
    ]
    probes = options.probes()
    lines += ["returning " + " ".join(shlex.quote(w) for w in (p.function, p.ret))
              for p in probes if p.ret]
    lines += [
        # Return probes first: then each entry probe goes at the address the kernel
        # found for its function (kprobes/list), as a definition by name scans every
        # kernel symbol (~30 ms each under emulation). A hidden address reads as 0.
        f"[ -r {KPROBES_LIST} ] || mount -t debugfs debugfs {DEBUGFS} 2>/dev/null || true",
        f"if [ -r {KPROBES_LIST} ]; then",
        "    eval \"$(awk '$2 == \"r\" && $1 ~ /^[0-9a-f]+$/ && $1 !~ /^0+$/ && "
        "$3 ~ /^[A-Za-z0-9_]+[+]0x0$/ {sub(/[+]0x0$/, \"\", $3); "
        f"print \"at_\" $3 \"=0x\" $1}}' {KPROBES_LIST})\"",
        "fi",
    ]
    lines += ["entering " + " ".join(shlex.quote(w) for w in (p.function, p.filter, p.args))
              for p in probes]
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
