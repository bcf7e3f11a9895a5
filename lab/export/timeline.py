"""timeline.txt: both sides' calls, merged on one clock, in the classic lab's style.

    +0.000000  client  hello[160]      → socket(family=2, type=1, protocol=6)
    +0.000359  client  hello[160]        → __sys_socket(family=2, type=1, protocol=6)
    +0.000623  client  hello[160]        ← __sys_socket = 3
    ...
    +0.271311  server  replyhi[301]      → __sys_accept4(fd=3)

Times are on the reference node's clock (the others converted by their
clock fit), relative to the first event. Calls nest by thread: an entry
indents what follows on its thread until its return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lab.correlate.sync import ClockFit
from lab.events import Event, Kind

ARROWS = {Kind.SYSCALL_ENTRY: "→", Kind.FUNC_ENTRY: "→", Kind.SYSCALL_EXIT: "←",
          Kind.FUNC_RETURN: "←", Kind.SOCK_STATE: "•", Kind.TRACEPOINT: "•"}
INDENT = "  "


def timeline(events: Iterable[Event], fits: Mapping[str, ClockFit], reference: str) -> str:
    aligned = sorted(((_on_reference(e, fits), e) for e in events), key=lambda p: p[0])
    if not aligned:
        return "# no events\n"
    lines = [f"# times in seconds on {reference}'s clock, from the first event"]
    lines += [f"# {fit.explain()}" for node, fit in sorted(fits.items()) if node != reference]
    lines += [f"# {node}: not aligned (no messages with {reference}): its own clock"
              for node in sorted({e.node for _, e in aligned} - set(fits) - {reference})]
    start = aligned[0][0]
    depth: dict[tuple[str, int], int] = {}
    width = max(len(f"{e.comm}[{e.pid}]") for _, e in aligned)
    node_width = max(len(e.node) for _, e in aligned)
    for ts, e in aligned:
        key = (e.node, e.tid)
        if e.kind in (Kind.SYSCALL_EXIT, Kind.FUNC_RETURN):
            depth[key] = max(depth.get(key, 0) - 1, 0)
        who = f"{e.comm}[{e.pid}]"
        lines.append(f"{(ts - start) / 1e9:+12.6f}  {e.node:<{node_width}}  {who:<{width}}  "
                     f"{INDENT * depth.get(key, 0)}{ARROWS[e.kind]} {_call(e)}")
        if e.kind in (Kind.SYSCALL_ENTRY, Kind.FUNC_ENTRY) and not _leaf(e):
            depth[key] = depth.get(key, 0) + 1
    return "\n".join(lines) + "\n"


def _on_reference(e: Event, fits: Mapping[str, ClockFit]) -> int:
    fit = fits.get(e.node)
    return fit.to_reference(e.ts) if fit is not None else e.ts


def _call(e: Event) -> str:
    args = ", ".join(f"{k}={v}" for k, v in e.args.items())
    match e.kind:
        case Kind.SYSCALL_EXIT | Kind.FUNC_RETURN:
            if e.ret is not None:
                return f"{e.name} = {e.ret}"
            # A function returning a sock (inet_csk_accept): show which.
            return f"{e.name} = sock {e.args.get('ret') or (e.sock.sk if e.sock else '?')}"
        case Kind.SOCK_STATE:
            return f"{e.name} {e.args.get('oldstate')} → {e.args.get('newstate')}{_tuple(e)}"
        case _:
            return f"{e.name}({args}){_tuple(e) if e.kind == Kind.TRACEPOINT else ''}"


def _leaf(e: Event) -> bool:
    """Entries probed without a return (state changes, close) do not nest."""
    return e.name in {"tcp_set_state", "tcp_fin", "tcp_close"}


def _tuple(e: Event) -> str:
    s = e.sock
    if s is None or s.saddr is None or s.sport is None:
        return ""
    peer = f" > {s.daddr}:{s.dport}" if s.daddr and s.dport else ""
    return f"  [{s.saddr}:{s.sport}{peer}]"
