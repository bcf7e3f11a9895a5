"""Stopping a trace: what the kernel could not record is counted, never dropped silently.

The stop script runs here with the host's POSIX shell and awk on a directory
laid out like tracefs, with the files a 5.10 guest gives (the real guest runs
it under busybox: tests/integration/test_run.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab.run.results import RunSummary, TracerResult
from lab.tracers.ftrace import parse_stats
from lab.tracers.ftrace.script import INSTANCE_DIR, TRACEFS, stop_script

STATS = """\
entries: {entries}
overrun: {overrun}
commit overrun: 0
bytes: 1893528
oldest event ts:  1107.870466
now ts:  1112.733540
dropped events: 0
read events: 0
"""

KPROBE_EVENTS = """\
p:socklab/__sys_socket __sys_socket family=%di:s32 type=%si:s32 protocol=%dx:s32
r1024:socklab/__sys_socket__return __sys_socket ret=$retval:s64
p:socklab/tcp_set_state tcp_set_state sk=%di:x64 state=%si:s32
p:socklab/tcp_fin tcp_fin sk=%di:x64
p:someone/tcp_fin tcp_fin
"""

KPROBE_PROFILE = """\
  __sys_socket                                              1000               0
  __sys_socket__return                                      1000               0
  tcp_set_state                                             4569             126
  tcp_fin                                                   1984              16
  tcp_fin                                                     12               5
  other_probe                                                 40              99
"""


def run_stop_script(tmp_path: Path, cpus: list[tuple[int, int]],
                    profile: str = KPROBE_PROFILE) -> str:
    tracefs = tmp_path / "tracing"
    instance = tracefs / INSTANCE_DIR.removeprefix(TRACEFS + "/")
    for cpu, (entries, overrun) in enumerate(cpus):
        (instance / "per_cpu" / f"cpu{cpu}").mkdir(parents=True)
        (instance / "per_cpu" / f"cpu{cpu}" / "stats").write_text(
            STATS.format(entries=entries, overrun=overrun))
    (instance / "tracing_on").write_text("1\n")
    (tracefs / "kprobe_events").write_text(KPROBE_EVENTS)
    (tracefs / "kprobe_profile").write_text(profile)
    script = stop_script().replace(TRACEFS, str(tracefs))
    done = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True,
                          check=True, timeout=10)
    assert (instance / "tracing_on").read_text() == "0\n"
    return done.stdout


def test_missed_probe_hits_and_buffer_overruns_are_lost_events(tmp_path: Path) -> None:
    stats = parse_stats(run_stop_script(tmp_path, [(30000, 7), (500, 0)]))
    assert stats.entries == 30500
    assert stats.overrun == 7
    # Our probes only, by name; a probe that missed nothing is not listed. The other
    # group's tcp_fin shares the name: its misses count too (kprobe_profile has no group).
    assert stats.missed == {"tcp_set_state": 126, "tcp_fin": 21}
    assert stats.lost == 7 + 126 + 21


def test_nothing_lost_is_nothing_reported(tmp_path: Path) -> None:
    profile = "\n".join(line.rsplit(" ", 1)[0] + " 0"
                        for line in KPROBE_PROFILE.splitlines()) + "\n"
    stats = parse_stats(run_stop_script(tmp_path, [(100, 0)], profile))
    assert (stats.missed, stats.lost) == ({}, 0)


def test_the_run_summary_says_which_probes_missed_and_what_to_do() -> None:
    summary = RunSummary(lab="l", playbook="p.yaml", topology="t.yaml", tracers=[
        TracerResult("client", "ftrace", "raw/client.trace", lost=150,
                     missed={"tcp_fin": 16, "tcp_set_state": 126},
                     added_functions=["tcp_set_state"]),
        TracerResult("server", "ftrace", "raw/server.trace", lost=40),
        TracerResult("peer", "ftrace", "raw/peer.trace", lost=1, missed={"tcp_fin": 1}),
        # Functions added: a default probe's misses may be theirs too.
        TracerResult("added", "ftrace", "raw/added.trace", lost=3, missed={"tcp_fin": 3},
                     added_functions=["tcp_v4_do_rcv"]),
        TracerResult("other", "ftrace", "raw/other.trace")])
    assert summary.warnings == [
        "ftrace on client: 150 events lost: 142 probe hits the kernel could not record "
        "(126 tcp_set_state, 16 tcp_fin), as a probe that fires while another runs (a packet "
        "coming in) is missed, and fewer functions added miss fewer; 8 not kept by the ring "
        "buffer: buffer too small? raise tracers.ftrace.buffer_kb",
        "ftrace on server: 40 events lost: 40 not kept by the ring buffer: buffer too small? "
        "raise tracers.ftrace.buffer_kb",
        # No function added to take out.
        "ftrace on peer: 1 event lost: 1 probe hit the kernel could not record (1 tcp_fin), "
        "as a probe that fires while another runs (a packet coming in) is missed",
        "ftrace on added: 3 events lost: 3 probe hits the kernel could not record (3 tcp_fin), "
        "as a probe that fires while another runs (a packet coming in) is missed, and fewer "
        "functions added miss fewer",
    ]


def test_the_run_summary_names_the_probes_the_kernel_refused() -> None:
    summary = RunSummary(lab="l", playbook="p.yaml", topology="t.yaml", tracers=[
        TracerResult("client", "ftrace", "raw/client.trace",
                     skipped_probes=["tcp_v6_connect", "no_such_function", "tcp_sendmesg",
                                     "do_syscall_64"]),
        TracerResult("server", "ftrace", "raw/server.trace")])
    assert summary.warnings == [
        "ftrace on client: the kernel refused to probe tcp_v6_connect, no_such_function, "
        "tcp_sendmesg (did you mean tcp_sendmsg?), do_syscall_64 (system call entry code, "
        "which kprobes may not touch: the syscall tracepoints mark each entry and exit); "
        "not traced"]
