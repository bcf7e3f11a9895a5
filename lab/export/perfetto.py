"""trace.json: the run in the Chrome Trace Event format, which Perfetto and chrome://tracing open.

One process per node, one track per thread, and one for the kernel's work in
softirq context (a packet handled), which runs under whatever task it
interrupted and is not that task's; system calls and kernel
functions are nested slices ("X"), state changes are instants ("i"), and
each arrow of correlation is a flow from the sender's slice to the
receiver's ("s" then "f", bound to the enclosing slices). Times are
microseconds on the reference node's clock from the run's first event.

Format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import attrgetter
from typing import Any

from lab.correlate.correlation import Correlation
from lab.events import Event, Irq
from lab.export.slices import slices

_NODE = attrgetter("node")
# The tracks of work done in interrupt context: above any Linux thread id (PID_MAX_LIMIT).
IRQ_TRACKS: dict[Irq, int] = {"softirq": 1 << 22, "hardirq": (1 << 22) + 1,
                              "nmi": (1 << 22) + 2}
NANOSECOND = 0.001  # in the format's microseconds


def chrome_trace(result: Correlation) -> dict[str, Any]:
    return {"traceEvents": list(_events(result)), "displayTimeUnit": "ns",
            "otherData": {"reference_clock": result.reference,
                          "clocks": {node: fit.explain() for node, fit in result.fits.items()}}}


def _events(result: Correlation) -> Iterator[dict[str, Any]]:
    all_slices, instants = slices(result.events)
    origin = result.origin
    pids = {node: i + 1 for i, node in enumerate(result.nodes)}
    clocks = {node: result.clock(node) for node in result.nodes}

    def us(node: str, ts: int) -> float:
        return (clocks[node](ts) - origin) / 1000

    kernels = {node: next(run).kernel for node, run in groupby(result.events, _NODE)}
    for node, pid in pids.items():
        yield _meta("process_name", pid, 0, f"{node} ({kernels[node]})")
        yield _meta("process_sort_index", pid, 0, pid, key="sort_index")
    threads = {(e.node, _track(e)): f"{e.comm}[{e.tid}]" if e.irq is None else e.irq
               for e in result.events}  # a thread's last name
    for (node, tid), name in sorted(threads.items()):
        yield _meta("thread_name", pids[node], tid, name)
    for s in all_slices:
        start = us(s.node, s.start)
        first = s.entry or s.exit
        yield {"ph": "X", "pid": pids[s.node], "tid": _track(first) if first else s.tid,
               "ts": start, "dur": max(us(s.node, s.end) - start, 0.0), "name": s.name,
               "cat": s.kind,
               "args": ({"ret": s.ret} if s.exit is not None else {"unfinished": True})
               | _interrupted(first)}
    # Perfetto binds a flow to a slice open at its time on its track, never to an
    # instant: an instant an arrow starts or ends at is a slice of a nanosecond.
    arrows = [a for connection_flow in result.flows for a in connection_flow.arrows]
    ends = {(a.sender, a.sender_tid, a.sent) for a in arrows} | {
        (a.receiver, a.receiver_tid, a.received) for a in arrows}
    at: dict[tuple[str, int, int], Event] = {}
    for e in instants:
        common = {"pid": pids[e.node], "tid": _track(e), "ts": us(e.node, e.ts),
                  "name": e.name, "cat": e.kind.value, "args": dict(e.args) | _interrupted(e)}
        if (key := (e.node, e.tid, e.ts)) in ends:
            at[key] = e
            yield {"ph": "X", "dur": NANOSECOND, **common}
        else:
            yield {"ph": "i", "s": "t", **common}
    inverted = set(result.inversions)
    for flow, a in enumerate(arrows, 1):
        name = f"{a.kind} {a.size} B" if a.size else f"{a.kind} {a.label}".strip()
        common = {"name": f"{name} (INVERTED)" if a in inverted else name,
                  "cat": f"flow.{a.kind}", "id": flow}
        leaving = at.get((a.sender, a.sender_tid, a.sent))
        arriving = at.get((a.receiver, a.receiver_tid, a.received))
        sent = us(a.sender, a.sent)
        yield {**common, "ph": "s", "pid": pids[a.sender],
               "tid": a.sender_tid if leaving is None else _track(leaving), "ts": sent}
        # A flow ends bound to the slice enclosing it: an instant's, or the receiving
        # call, which returns at `received`: a nanosecond before, though not before it
        # left (unless it arrived before it left: an inversion is drawn as it is).
        received = us(a.receiver, a.received)
        if arriving is None:
            received = max(received - NANOSECOND, min(received, sent))
        yield {**common, "ph": "f", "bp": "e", "pid": pids[a.receiver],
               "tid": a.receiver_tid if arriving is None else _track(arriving),
               "ts": received}


def _track(e: Event) -> int:
    """Its thread's track, or for work done in interrupt context, that context's."""
    return e.tid if e.irq is None else IRQ_TRACKS[e.irq]


def _interrupted(e: Event | None) -> dict[str, object]:
    """The task an interrupt's work ran under: {"interrupted": "hello[133]"}."""
    return {"interrupted": f"{e.comm}[{e.tid}]"} if e is not None and e.irq else {}


def _meta(name: str, pid: int, tid: int, value: object, *, key: str = "name") -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "args": {key: value}}
