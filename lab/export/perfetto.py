"""trace.json: the run in the Chrome Trace Event format, which Perfetto and chrome://tracing open.

One process per node, one track per thread; system calls and kernel
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
from lab.events import Event
from lab.export.slices import slices

_NODE = attrgetter("node")


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
    threads = {(e.node, e.tid): e.comm for e in result.events}  # a thread's last name
    for (node, tid), comm in sorted(threads.items()):
        yield _meta("thread_name", pids[node], tid, f"{comm}[{tid}]")
    for s in all_slices:
        start = us(s.node, s.start)
        yield {"ph": "X", "pid": pids[s.node], "tid": s.tid, "ts": start,
               "dur": max(us(s.node, s.end) - start, 0.0), "name": s.name, "cat": s.kind,
               "args": ({"ret": s.ret} if s.exit is not None else {"unfinished": True})
               | _irq(s.entry or s.exit)}
    for e in instants:
        yield {"ph": "i", "s": "t", "pid": pids[e.node], "tid": e.tid, "ts": us(e.node, e.ts),
               "name": e.name, "cat": e.kind.value, "args": dict(e.args) | _irq(e)}
    flow = 0
    for connection_flow in result.flows:
        for a in connection_flow.arrows:
            flow += 1
            common = {"name": f"{a.kind} {a.size} B" if a.size else f"{a.kind} {a.label}".strip(),
                      "cat": f"flow.{a.kind}", "id": flow}
            yield {**common, "ph": "s", "pid": pids[a.sender], "tid": a.sender_tid,
                   "ts": us(a.sender, a.sent)}
            # A flow ends bound to the slice enclosing it: the receiving call, which
            # returns at `received`, so end a nanosecond before its last instant.
            yield {**common, "ph": "f", "bp": "e", "pid": pids[a.receiver], "tid": a.receiver_tid,
                   "ts": max(us(a.receiver, a.received) - 0.001, us(a.sender, a.sent))}


def _irq(e: Event | None) -> dict[str, str]:
    """Where the kernel ran it, when not as the task's own work: {"irq": "softirq"}."""
    return {"irq": e.irq} if e is not None and e.irq else {}


def _meta(name: str, pid: int, tid: int, value: object, *, key: str = "name") -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "args": {key: value}}
