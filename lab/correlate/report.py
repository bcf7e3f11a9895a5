"""connections.json: every connection of a run, both ends, with bytes and lifecycle.

Built from the paired endpoints (pairing.py). Times are each node's own
clock for now; clock alignment (sync/) puts them on one time line.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from lab.correlate.pairing import Connection, Endpoint, Pairing
from lab.events import Event, Kind

SENDS = {"sendto", "sendmsg", "write", "writev"}
RECEIVES = {"recvfrom", "recvmsg", "read", "readv"}
# The moments of a connection's life, by the calls and states that mark them.
LIFECYCLE = {
    "socket": "socket", "connect": "connect", "accept": "accept", "accept4": "accept",
    "shutdown": "shutdown", "close": "close",
}


def connections_report(result: Pairing) -> dict[str, Any]:
    reasons = Counter(u.reason for u in result.unattributed)
    return {
        "connections": [_connection(c) for c in result.connections],
        "paired": sum(c.paired for c in result.connections),
        "unpaired": sum(not c.paired for c in result.connections),
        "unattributed": [{"reason": r, "events": n} for r, n in sorted(reasons.items())],
    }


def _connection(c: Connection) -> dict[str, Any]:
    return {"id": c.id, "proto": c.proto, "paired": c.paired,
            "ends": [_end(e) for e in c.ends]}


def _end(end: Endpoint) -> dict[str, Any]:
    tracer = main_tracer(end.events)
    calls = [e for e in end.events if e.tracer == tracer]
    sent = sum(e.ret for e in calls if e.kind == Kind.SYSCALL_EXIT and e.name in SENDS
               and e.ret and e.ret > 0)
    received = sum(e.ret for e in calls if e.kind == Kind.SYSCALL_EXIT
                   and e.name in RECEIVES and e.ret and e.ret > 0)
    # accept() belongs to the new connection only once it returns it.
    moments = [(e.ts, LIFECYCLE[e.name]) for e in calls if e.name in LIFECYCLE and e.kind == (
        Kind.SYSCALL_EXIT if LIFECYCLE[e.name] == "accept" else Kind.SYSCALL_ENTRY)]
    moments += [(e.ts, str(e.args.get("newstate"))) for e in end.events
                if e.kind == Kind.SOCK_STATE]
    lifecycle = [{"event": what, "ts": ts} for ts, what in sorted(moments)]
    return {
        "node": end.node, "role": end.role, "family": end.family,
        "local": _address(end.local), "remote": _address(end.remote),
        "first_ts": end.first, "last_ts": end.last, "events": len(end.events),
        "tracer": tracer, "bytes_sent": sent, "bytes_received": received,
        "lifecycle": lifecycle,
    }


def main_tracer(events: list[Event]) -> str:
    """Bytes are counted from one tracer's system calls, so none is counted twice."""
    counts = Counter(e.tracer for e in events if e.kind == Kind.SYSCALL_EXIT)
    return counts.most_common(1)[0][0] if counts else (events[0].tracer if events else "")


def _address(a: tuple[str, int]) -> str:
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"
