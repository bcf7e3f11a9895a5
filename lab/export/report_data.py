"""What report.html draws, as one JSON document: connections on the reference clock.

Times are nanoseconds from the run's first event, on the reference node's
clock. At most `MAX_DRAWN` connections are drawn (the first ones); the
statistics cover all of them.

    {"title", "run": {"playbook", "ok", "accel", "failures", "warnings",
                      "expectations": [{"name", "node", "ok", "detail"}]} or null,
     "reference", "nodes": [...], "clocks": {node: clock_summary},
     "inversions", "latency_ns": {...}, "paired", "unpaired", "omitted",
     "connections": [{"id", "proto", "paired",
        "ends": [{"node", "role", "local", "remote", "processes"}],
        "slices": [{"node", "tid", "comm", "kind", "name", "start", "end", "depth", "ret"}],
        "instants": [{"node", "tid", "name", "ts", "label"}],
        "arrows": [{"kind", "from", "to", "sent", "received", "bytes", "label"}],
        "latency_ns": {"connect_to_accept", "send_to_receive", "first_to_last_byte"}}],
     "unattributed": [{"reason", "events"}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.correlate.correlation import Correlation, Latencies
from lab.correlate.messages import Flow
from lab.correlate.pairing import format_address
from lab.events import Event, Kind
from lab.export.connections import clock_summary, unattributed
from lab.export.slices import Slice, slices

MAX_DRAWN = 100


def run_outcome(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's summary.json says of how it went, as the report heads it; what is
    not as `lab run` writes it (an edited file) is left out."""
    return {"playbook": Path(str(summary.get("playbook", ""))).stem,
            "ok": summary.get("ok") is True, "accel": str(summary.get("accel") or ""),
            "failures": [str(f) for f in _listed(summary.get("failures"))],
            "warnings": [str(w) for w in _listed(summary.get("warnings"))],
            "expectations": [{k: e.get(k) for k in ("name", "node", "ok", "detail")}
                             for e in _listed(summary.get("expectations"))
                             if isinstance(e, dict)]}


def _listed(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def report_data(result: Correlation, title: str,
                run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`run`: how the run went (`run_outcome`), None when not known."""
    connections = result.pairing.connections
    drawn = list(zip(result.flows, result.latencies, strict=True))[:MAX_DRAWN]
    # Slices need every event of the threads drawn (accept() begins on the listening
    # socket), and no other: a run of a million events draws only a few of them.
    threads = {(e.node, e.tid) for flow, _ in drawn for end in flow.connection.ends
               for e in end.events}
    all_slices, instants = slices(e for e in result.events if (e.node, e.tid) in threads)
    # Each slice and instant goes to the connection its events belong to.
    owner = {id(e): i for i, (flow, _) in enumerate(drawn) for end in flow.connection.ends
             for e in end.events}
    slices_of: list[list[Slice]] = [[] for _ in drawn]
    for s in all_slices:
        i = owner.get(id(s.entry), owner.get(id(s.exit)))
        if i is not None:
            slices_of[i].append(s)
    instants_of: list[list[Event]] = [[] for _ in drawn]
    for e in instants:
        if (i := owner.get(id(e))) is not None:
            instants_of[i].append(e)
    summary = result.summary
    return {
        "title": title,
        "run": None if run is None else dict(run),
        "reference": result.reference,
        "nodes": result.nodes,
        "clocks": {node: clock_summary(fit) for node, fit in sorted(result.fits.items())},
        "inversions": summary.inversions,
        "latency_ns": summary.latency_ns,
        "clock_error_ns": summary.clock_error_ns,
        "paired": summary.paired,
        "unpaired": summary.unpaired,
        "omitted": len(connections) - len(drawn),
        "connections": [_connection(result, flow, latency, slices_of[i], instants_of[i])
                        for i, (flow, latency) in enumerate(drawn)],
        "unattributed": unattributed(summary),
    }


def _connection(result: Correlation, flow: Flow, latency: Latencies, slices: list[Slice],
                instants: list[Event]) -> dict[str, Any]:
    c = flow.connection
    origin = result.origin

    def at(node: str, ts: int) -> int:
        return result.clock(node)(ts) - origin

    return {
        "id": c.id, "proto": c.proto, "paired": c.paired,
        "ends": [{"node": end.node, "role": end.role,
                  "local": format_address(end.local), "remote": format_address(end.remote),
                  # Not the tasks a softirq interrupted (<idle>, sshd): they took no part.
                  "processes": sorted({f"{e.comm}[{e.pid}]" for e in end.events
                                       if e.pid and e.irq is None})}
                 for end in c.ends],
        "slices": [{"node": s.node, "tid": s.tid, "comm": s.comm, "kind": s.kind,
                    "name": s.name, "start": at(s.node, s.start), "end": at(s.node, s.end),
                    "depth": s.depth, "ret": s.ret} for s in slices],
        "instants": [{"node": e.node, "tid": e.tid, "name": e.name, "ts": at(e.node, e.ts),
                      "label": _label(e)} for e in instants],
        "arrows": [{"kind": str(a.kind), "from": a.sender, "to": a.receiver,
                    "sent": at(a.sender, a.sent), "received": at(a.receiver, a.received),
                    "bytes": a.size, "label": a.label} for a in flow.arrows],
        "latency_ns": latency.to_dict(),
    }


def _label(e: Event) -> str:
    """What a moment shows: a state change, or a function entered (in a softirq, said)."""
    if e.kind == Kind.SOCK_STATE:
        text = f"{e.args.get('oldstate')} → {e.args.get('newstate')}"
    elif e.name == "tcp_set_state":
        text = f"→ {e.args.get('state')}"
    else:
        text = e.name
    return f"{text} [{e.irq}]" if e.irq else text

