"""Where tracing overhead comes from: the concurrent client under variants of the ftrace set-up.

Like trace_overhead.py, on a pair lab that is already up (`--lab NAME`, or the
only one), each round runs the client untraced and then once per variant.
A variant is the default start script with parts taken out or changed. Besides
the client's wall time it prints the QEMU processes' CPU time, QEMU's TCG
counters (`info jit`: translations, invalidations, TLB flushes) and each
guest's TCP counters (tail-loss probes, delayed ACKs), which move with timing.

    .venv/bin/python bench/trace_variants.py [--lab NAME] [--rounds 3] [--variants full,sys,...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from lab.keys import PRIVATE_KEY_NAME
from lab.paths import Paths
from lab.programs import build_program
from lab.ssh import NodeSession
from lab.state import StateStore
from lab.tracers.ftrace import FtraceOptions
from lab.tracers.ftrace.collect import parse_stats
from lab.tracers.ftrace.probes import (
    DEFAULT_FUNCTIONS,
    DEFAULT_SYSCALLS,
    PORT_TRACEPOINTS,
    Adjust,
    sockaddr_args,
)
from lab.tracers.ftrace.script import cleanup_script, start_script, stop_script

SERVER = "10.0.1.10"
COMMS = ("replyhi", "concurrent")
NO_SYSCALLS = Adjust(remove=DEFAULT_SYSCALLS)
NO_FUNCTIONS = Adjust(remove=DEFAULT_FUNCTIONS)


def opts(**kw: object) -> FtraceOptions:
    return FtraceOptions(comms=COMMS, buffer_kb=65536, **kw)  # type: ignore[arg-type]


def no_tracepoints(s: str) -> str:
    return "\n".join(line for line in s.splitlines()
                     if not any(t in line for t in PORT_TRACEPOINTS)) + "\n"


def no_kretprobes(s: str) -> str:
    return s.replace('if [ -n "$4" ]; then', "if false; then")


def no_filters(s: str) -> str:
    s = s.replace('echo "$filter" > $I/events/socklab/$event/filter', "true")
    return re.sub(r"echo \S+( \S+)* > \$I/events/[^ ]*/filter;", "", s)


def no_sendto_addr(s: str) -> str:
    """__sys_sendto without its destination: +u0(%r8) faults when send() passes NULL."""
    return re.sub(r"(probe __sys_sendto comm 'fd=%di:s32 len=%dx:u64 flags=%cx:x32) [^']*'",
                  r"\1'", s)


def old_sendto(s: str) -> str:
    """__sys_sendto as before trace-speed: its destination read from user memory (%r8)."""
    return s.replace("probe __sys_sendto comm 'fd=%di:s32 len=%dx:u64 flags=%cx:x32'",
                     "probe __sys_sendto comm 'fd=%di:s32 len=%dx:u64 flags=%cx:x32 "
                     + sockaddr_args("%r8") + "'")


def clock(name: str) -> Callable[[str], str]:
    return lambda s: s.replace("echo mono > $I/trace_clock", f"echo {name} > $I/trace_clock")


def only(*syscalls: str) -> Adjust:
    return Adjust(remove=[s for s in DEFAULT_SYSCALLS if s not in syscalls])


def compose(*fs: Callable[[str], str]) -> Callable[[str], str]:
    def run(s: str) -> str:
        for f in fs:
            s = f(s)
        return s
    return run


def ident(s: str) -> str:
    return s


VARIANTS: dict[str, tuple[FtraceOptions, Callable[[str], str]]] = {
    "full": (opts(), ident),
    "full-local": (opts(), clock("local")),
    "full-noaddr": (opts(), no_sendto_addr),
    "full-old": (opts(), old_sendto),
    "full-nosetstate": (opts(functions=Adjust(remove=("tcp_set_state",))), ident),
    "full-nofilter": (opts(), no_filters),
    "empty": (opts(syscalls=NO_SYSCALLS, functions=NO_FUNCTIONS), no_tracepoints),
    "sys": (opts(functions=NO_FUNCTIONS), no_tracepoints),
    "sys-nofilter": (opts(functions=NO_FUNCTIONS), compose(no_tracepoints, no_filters)),
    "sys-norw": (opts(functions=NO_FUNCTIONS, syscalls=Adjust(remove=("read", "write", "close"))),
                 no_tracepoints),
    "sys-one": (opts(functions=NO_FUNCTIONS, syscalls=only("socket")), no_tracepoints),
    "kp": (opts(syscalls=NO_SYSCALLS), compose(no_tracepoints, no_kretprobes)),
    "kp-nofilter": (opts(syscalls=NO_SYSCALLS), compose(no_tracepoints, no_kretprobes, no_filters)),
    "kp+ret": (opts(syscalls=NO_SYSCALLS), no_tracepoints),
    "tp": (opts(syscalls=NO_SYSCALLS, functions=NO_FUNCTIONS), ident),
}


def qemu_pids(lab: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"/usr/bin/qemu-system") and f"guest=sl-{lab}-".encode() in cmd:
                pids.append(int(proc.name))
    return pids


JIT_FIELDS = {"TB count": "tbs", "TB flush count": "flush", "TB invalidate count": "inval",
              "TLB full flushes": "tlbfull", "TLB partial flushes": "tlbpart"}


def jit_stats(lab: str) -> dict[str, int]:
    """QEMU's TCG counters for both guests (`info jit`), added up."""
    total = dict.fromkeys(JIT_FIELDS.values(), 0)
    for node in ("server", "client"):
        out = subprocess.run(["virsh", "-c", "qemu:///system", "qemu-monitor-command", "--hmp",
                              f"sl-{lab}-{node}", "info jit"], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            for name, key in JIT_FIELDS.items():
                if line.startswith(name + " "):
                    total[key] += int(line[len(name):].split()[0])
    return total


TCP_COUNTERS = ("InSegs", "OutSegs", "RetransSegs", "TCPLossProbes", "TCPTimeouts",
                "DelayedACKs", "TCPDSACKRecv", "SyncookiesSent", "ListenDrops")
SNMP = "cat /proc/net/snmp /proc/net/netstat; head -1 /proc/stat"


def tcp_counters(text: str) -> dict[str, int]:
    lines = [x.split() for x in text.splitlines() if x.startswith(("Tcp:", "TcpExt:"))]
    values: dict[str, int] = {}
    for names, numbers in zip(lines[::2], lines[1::2], strict=True):
        values.update((k, int(v)) for k, v in zip(names[1:], numbers[1:], strict=True))
    cpu = next(x.split()[1:] for x in text.splitlines() if x.startswith("cpu "))
    busy = sum(int(x) for i, x in enumerate(cpu[:8]) if i != 3)
    return {k: values.get(k, 0) for k in TCP_COUNTERS} | {"busy": busy, "idle": int(cpu[3]),
                                                           "softirq": int(cpu[6])}


async def snmp(s: NodeSession) -> dict[str, int]:
    return tcp_counters((await s.run(SNMP, check=True)).stdout.decode())


def cpu_seconds(pids: list[int]) -> float:
    """User and system time of the QEMU processes: the guests' work, whatever else runs."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def one_run(server: NodeSession, client: NodeSession, *, n: int, port: int,
                  variant: str | None, pids: list[int],
                  lab: str) -> tuple[float, float, int, int, str]:
    if variant:
        options, tweak = VARIANTS[variant]
        script = tweak(start_script(options)).encode()
        await asyncio.gather(server.run("sh -s", input=script, timeout=120, check=True),
                             client.run("sh -s", input=script, timeout=120, check=True))
    await server.run(f"/tmp/replyhi {SERVER} {port} {n} > /dev/null 2>&1 &", check=True)
    await server.run(f"while ! grep -q ':{port:04X} 00000000:0000 0A' /proc/net/tcp; "
                     "do usleep 20000; done", timeout=30, check=True)
    cpu = cpu_seconds(pids)
    jit = jit_stats(lab)
    before = [await snmp(server), await snmp(client)]
    started = time.monotonic()
    await client.run(["/tmp/concurrent", SERVER, str(port), str(n)], timeout=600, check=True)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pids) - cpu
    jit = {k: v - jit[k] for k, v in jit_stats(lab).items()}
    after = [await snmp(server), await snmp(client)]
    print("    jit " + " ".join(f"{k}={v}" for k, v in jit.items()))
    for node, b, a in zip(("server", "client"), before, after, strict=True):
        print(f"    {node} " + " ".join(f"{k}={a[k] - b[k]}" for k in a))
    entries = lost = 0
    profile = ""
    if variant:
        for s in (server, client):
            stopped = await s.run("sh -s", input=stop_script().encode(), check=True)
            stats = parse_stats(stopped.stdout.decode())
            entries += stats.entries
            lost += stats.lost
        prof = await client.run("cat /sys/kernel/tracing/kprobe_profile", check=True)
        profile = prof.stdout.decode()
        for s in (server, client):
            await s.run("sh -s", input=cleanup_script().encode(), check=True)
    await server.run("while pidof replyhi >/dev/null; do usleep 20000; done", timeout=30)
    return elapsed, cpu, entries, lost, profile


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lab")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="full,empty,sys,kp,kp+ret,tp")
    parser.add_argument("--profile", action="store_true", help="print the client's kprobe hits")
    args = parser.parse_args()
    variants = args.variants.split(",")
    paths = Paths.default()
    state = StateStore(paths).resolve(args.lab)
    key = paths.lab_dir(state.name) / PRIVATE_KEY_NAME
    async with NodeSession.open("server", state.endpoint("server"), key) as server, \
            NodeSession.open("client", state.endpoint("client"), key) as client:
        cache = paths.home / "programs"
        await server.put(await build_program("replyhi", cache), "/tmp/replyhi")
        await client.put(await build_program("concurrent", cache), "/tmp/concurrent")
        uname = await client.run("uname -r", check=True)
        print(f"lab {state.name}: Linux {uname.stdout.decode().strip()}, "
              f"{args.connections} connections per run")
        pids = qemu_pids(state.name)
        assert len(pids) == 2, pids
        times: dict[str, list[float]] = {v: [] for v in ["untraced", *variants]}
        cpus: dict[str, list[float]] = {v: [] for v in ["untraced", *variants]}
        counts: dict[str, tuple[int, int]] = {}
        port = 7000
        for r in range(1, args.rounds + 1):
            for v in ["untraced", *variants]:
                port += 1
                t, c, e, lost, profile = await one_run(
                    server, client, n=args.connections, port=port,
                    variant=None if v == "untraced" else v, pids=pids,
                    lab=state.name)
                times[v].append(t)
                cpus[v].append(c)
                counts[v] = (e, lost)
                print(f"round {r} {v:14} {t:6.2f} s  cpu {c:5.2f} s  {e:7} events {lost} lost",
                      flush=True)
                if args.profile and profile and r == 1:
                    print(profile)
        base = statistics.median(times["untraced"])
        cbase = statistics.median(cpus["untraced"])
        print(f"{'variant':14} {'wall':>6} {'ratio':>6} {'cpu':>6} {'ratio':>6} {'events':>8} "
              f"{'lost':>5}")
        for v, ts in times.items():
            e, lost = counts.get(v, (0, 0))
            t, c = statistics.median(ts), statistics.median(cpus[v])
            print(f"{v:14} {t:6.2f} {t / base:6.2f} {c:6.2f} {c / cbase:6.2f} {e:8} {lost:5}")


if __name__ == "__main__":
    asyncio.run(main())
