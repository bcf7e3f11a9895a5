"""timeline.txt: both sides' calls, merged on one clock, in the classic lab's style.

    +0.000000  client  hello[160]      → socket(family=AF_INET, type=SOCK_STREAM, ...)
    +0.000359  client  hello[160]        → __sys_socket(family=AF_INET, ...)
    +0.000623  client  hello[160]        ← __sys_socket = 3
    ...
    +0.271311  server  replyhi[301]      → __sys_accept4(fd=3)

Times are on the reference node's clock (the others converted by their
clock fit), relative to the first event. Calls nest by thread: an entry
indents what follows on its thread until its return; a function probed
without a return (tcp_fin) is marked ↦ and nests nothing. Kernel code run in a
softirq (a packet being handled, under whatever task it interrupted) is
marked [softirq].
"""

from __future__ import annotations

from lab.correlate.correlation import Correlation
from lab.correlate.pairing import DATAGRAM_RECEIVES, format_address
from lab.correlate.sync.fit import duration
from lab.events import Arg, Event, Kind
from lab.export.arguments import shown_args
from lab.export.slices import RETURNS, opens, returned, returning

ARROWS = {Kind.SYSCALL_ENTRY: "→", Kind.FUNC_ENTRY: "→", Kind.SYSCALL_EXIT: "←",
          Kind.FUNC_RETURN: "←", Kind.SOCK_STATE: "•", Kind.TRACEPOINT: "•"}
ENTERED = "↦"  # a function probed without a return probe: it nests nothing
INDENT = "  "
# What a state change of a connection's sock means that its states do not say.
_TIME_WAIT = "  (on to TIME_WAIT, in a time-wait sock the tracepoint does not show)"
STATE_NOTES: dict[tuple[object, object], str] = {
    ("TCP_LISTEN", "TCP_SYN_RECV"): "  (a new sock, cloned from the listener as the "
                                    "handshake's last ACK comes in; the listener stays "
                                    "in LISTEN)",
    ("TCP_FIN_WAIT2", "TCP_CLOSE"): _TIME_WAIT,
    ("TCP_CLOSING", "TCP_CLOSE"): _TIME_WAIT,
}
CLOSED_LATE = "  (as close() returns to the program: its last reference to the socket went)"
NO_EVENTS = "# no events\n"
TUPLE_ARGS = {"saddr", "daddr", "sport", "dport", "saddrv6", "daddrv6", "family"}


def timeline(result: Correlation) -> str:
    events, times = result.events, result.times
    if not events:
        return NO_EVENTS
    reference, fits = result.reference, result.fits
    lines = [f"# times in seconds on {reference}'s clock, from the first event; → a call's "
             f"entry, ← its return, {ENTERED} a function entered (its return is not traced), "
             "• a state change or tracepoint"]
    lines += [f"# {fit.explain()}" for _, fit in sorted(fits.items())]
    if (error := result.summary.clock_error_ns) is not None:
        lines.append(f"# events of two nodes closer than {duration(error)} may have happened "
                     "in either order: the clocks are aligned no better")
    start = result.origin
    depth: dict[tuple[str, int], int] = {}
    returns = returning(events)
    processes = {(e.node, e.pid, e.comm) for e in events}
    width = max(len(f"{comm}[{pid}]") for _, pid, comm in processes)
    node_width = max(map(len, result.nodes))
    who = {(node, pid, comm): f"{node:<{node_width}}  {f'{comm}[{pid}]':<{width}}  "
           for node, pid, comm in processes}
    # Each node's events are in time order: the sort merges those runs.
    for i in sorted(range(len(events)), key=times.__getitem__):
        e = events[i]
        key = (e.node, e.tid)
        if e.kind in RETURNS:
            depth[key] = max(depth.get(key, 0) - 1, 0)
        called = opens(e, returns)
        mark = ENTERED if e.kind is Kind.FUNC_ENTRY and not called else ARROWS[e.kind]
        # close() drops the file; the socket goes as the call returns to the program.
        late = e.name == "tcp_close" and not e.irq and not depth.get(key)
        lines.append(f"{(times[i] - start) / 1e9:+12.6f}  {who[(e.node, e.pid, e.comm)]}"
                     f"{INDENT * depth.get(key, 0)}{mark} {_call(e)}"
                     + (f"  [{e.irq}]" if e.irq else "") + (CLOSED_LATE if late else ""))
        if called:
            depth[key] = depth.get(key, 0) + 1
    return "\n".join(lines) + "\n"


def _call(e: Event) -> str:
    match e.kind:
        case Kind.SYSCALL_EXIT | Kind.FUNC_RETURN:
            value = returned(e)
            source = e.args.get("uaddr") if e.name in DATAGRAM_RECEIVES else None
            return f"{e.name} = {'?' if value is None else value}" + (
                f" (from {source})" if isinstance(source, str) else "")
        case Kind.SOCK_STATE:
            change = (e.args.get("oldstate"), e.args.get("newstate"))
            note = STATE_NOTES.get(change, "") if e.sock and e.sock.dport else ""
            return f"{e.name} {change[0]} → {change[1]}{_tuple(e)}{note}"
        case Kind.TRACEPOINT if tuple_ := _tuple(e):
            # The 4-tuple says the addresses and ports (an IPv6 socket's IPv4 fields
            # are meaningless).
            args = {k: v for k, v in e.args.items() if k not in TUPLE_ARGS}
            return f"{e.name}({shown_args(e.name, args)}){tuple_}"
        case _ if e.irq:  # the task it interrupted says nothing of it: its socket does
            return f"{e.name}({shown_args(e.name, _given(e))}){_tuple(e)}"
        case _:
            return f"{e.name}({shown_args(e.name, _given(e))})"


def _given(e: Event) -> dict[str, Arg]:
    """The arguments a call was given: a receive's `uaddr` is what it returns (shown
    on its return), not what it was given."""
    if e.name in DATAGRAM_RECEIVES and "uaddr" in e.args:
        return {k: v for k, v in e.args.items() if k != "uaddr"}
    return e.args


def _tuple(e: Event) -> str:
    s = e.sock
    if s is None or s.saddr is None or s.sport is None:
        return ""
    peer = f" > {format_address((s.daddr, s.dport))}" if s.daddr and s.dport else ""
    return f"  ({format_address((s.saddr, s.sport))}{peer})"
