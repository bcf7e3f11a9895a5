"""connections.json: every connection of a run, both ends, bytes, transfers and latencies.

All times are nanoseconds on the reference node's clock (its guest
CLOCK_MONOTONIC); the other nodes' events are converted by their clock fit,
given under "clocks" with its bounds. `events.jsonl` keeps every node's own
timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from lab.correlate.correlation import Correlation, Latencies, Summary
from lab.correlate.messages import Flow
from lab.correlate.pairing import Endpoint, format_address
from lab.correlate.streams import RECEIVES, SENDS, Call
from lab.correlate.sync import ClockFit

# The moments of a connection's life, by the calls that mark them.
LIFECYCLE = {
    "socket": "socket", "connect": "connect", "accept": "accept", "accept4": "accept",
    "shutdown": "shutdown", "close": "close",
}


def connections_report(result: Correlation) -> dict[str, Any]:
    summary = result.summary
    return {
        "reference": result.reference,
        "clocks": {node: clock_summary(fit) for node, fit in sorted(result.fits.items())},
        "paired": summary.paired,
        "unpaired": summary.unpaired,
        "inversions": summary.inversions,
        "latency_ns": summary.latency_ns,
        # How far a latency between two nodes may be off (null: not bounded); one no
        # larger than it is only known to be at most itself plus it.
        "clock_error_ns": summary.clock_error_ns,
        "connections": [_connection(result, flow, latency)
                        for flow, latency in zip(result.flows, result.latencies, strict=True)],
        "unattributed": unattributed(summary),
    }


def unattributed(summary: Summary) -> list[dict[str, Any]]:
    """Events that fit no connection, by reason, as the reports list them."""
    return [{"reason": r, "events": n} for r, n in summary.unattributed.items()]


def clock_summary(fit: ClockFit) -> dict[str, Any]:
    """A clock fit for scripts: offset at the reference's first event, bounds, drift."""
    def ns(value: Fraction | None) -> float | None:
        return None if value is None else round(float(value), 1)

    return {
        "quality": str(fit.quality), "at_ns": fit.ref_time,
        "offset_ns": ns(fit.ref_offset), "offset_min_ns": ns(fit.ref_offset_min),
        "offset_max_ns": ns(fit.ref_offset_max), "drift_ppm": ns((fit.drift - 1) * 10**6),
        "explain": fit.explain(),
    }


def _connection(result: Correlation, flow: Flow, latency: Latencies) -> dict[str, Any]:
    c = flow.connection
    return {
        "id": c.id, "proto": c.proto, "paired": c.paired,
        "ends": [_end(result, end, tracer, calls)
                 for end, tracer, calls in zip(c.ends, flow.tracers, flow.calls, strict=True)],
        "latency_ns": latency.to_dict(),
        "transfers": [
            {"from": sender.node, "to": receiver.node, "offset": t.offset, "bytes": t.size,
             "send": _call(result.clock(sender.node), t.send),
             "receives": [_call(result.clock(receiver.node), r) for r in t.receives]}
            for sender, receiver, moved in flow.directions() for t in moved],
    }


def _call(clock: Callable[[int], int], call: Call) -> dict[str, Any]:
    return {"name": call.name, "tid": call.tid, "ret": call.ret,
            "start_ns": None if call.start is None else clock(call.start),
            "end_ns": clock(call.end)}


def _end(result: Correlation, end: Endpoint, tracer: str, calls: list[Call]) -> dict[str, Any]:
    on_reference = result.clock(end.node)
    # accept() belongs to the new connection only once it returns it.
    moments = [(c.end if LIFECYCLE[c.name] == "accept" else c.start, LIFECYCLE[c.name])
               for c in calls if c.name in LIFECYCLE]
    moments += [(e.ts, str(new)) for _, new, e in end.changes]
    lifecycle = [{"event": what, "ts": on_reference(ts)}
                 for ts, what in sorted((t, w) for t, w in moments if t is not None)]
    return {
        "node": end.node, "role": end.role, "family": end.family,
        "local": format_address(end.local), "remote": format_address(end.remote),
        "first_ts": on_reference(end.first),
        "last_ts": on_reference(end.last), "events": len(end.events),
        "tracer": tracer,
        "bytes_sent": sum(c.moved for c in calls if c.name in SENDS),
        "bytes_received": sum(c.moved for c in calls if c.name in RECEIVES),
        "lifecycle": lifecycle,
    }

