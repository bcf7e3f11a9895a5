"""Give every event of a node the full identity of the socket it concerns.

A trace names one socket in three ways: a file descriptor (system calls), a
kernel `struct sock` address (kernel functions) and a 4-tuple (state changes,
and IPv4 kernel functions). This module ties them together on one node:

- a socket object starts when a file descriptor is born (socket(), accept())
  and ends when it is closed; `struct sock` events nested inside a system
  call on that descriptor (same thread, between its entry and return) bind
  the descriptor to the sock, and accept() returns the new sock directly;
- a state change (the `inet_sock_set_state` tracepoint) brings a 4-tuple: it
  belongs to the open socket that has it, or else to the fresh socket whose
  system call is in progress (connect() sets SYN_SENT, from CLOSE), never to one
  that has another (a softirq handling another connection's packet); when
  a `tcp_set_state` probe was added, it raises the tracepoint next on the same
  thread and brings the sock address;
- the kernel gives a freed sock's address, and a closed descriptor's number, to
  the next socket: a connected socket's sock address seen with other ports is a
  new socket;
- a change from LISTEN to SYN_RECV is never the listener's (it stays in
  LISTEN): it is a new connection's sock, cloned from the listener as the
  handshake's last ACK comes in, still with the listener's addresses; it is
  the socket of the next change on the same thread, from SYN_RECV;
- the 4-tuple of a socket is the last complete one seen for it.

Then every event of the socket carries fd, sock, protocol, family and 4-tuple.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from msgspec.structs import replace

from lab.events import Event, Family, Kind, Proto, SocketId

SYSCALL_LAYER_PREFIX = "__sys_"
NEW_FD = {"__sys_socket", "__sys_accept4"}  # their return value is a new descriptor
NEW_FD_SYSCALLS = {"socket", "accept", "accept4"}
FRESH = {"TCP_CLOSE", None}  # the state of a socket no connection has used yet
CLONED = ("TCP_LISTEN", "TCP_SYN_RECV")  # a new connection's sock, cloned from a listener
_Parts = tuple[str | None, int | None, str | None, int | None]  # a 4-tuple, None: not known


@dataclass
class _Socket:
    """One socket as seen through the trace, from birth to close."""

    id: int
    fd: int | None = None
    sk: str | None = None
    proto: Proto | None = None
    family: Family | None = None
    tuple: _Parts | None = None
    parts: _Parts = (None, None, None, None)  # every part of its 4-tuple seen so far
    born: bool = False  # created by socket() or accept() in this trace
    closed: bool = False  # its descriptor was closed

    @property
    def is_socket(self) -> bool:
        return self.born or self.sk is not None or self.tuple is not None

    def identity(self, own: SocketId | None) -> SocketId:
        saddr, sport, daddr, dport = self.tuple or (None, None, None, None)
        merged = SocketId(fd=self.fd, sk=self.sk, proto=self.proto, family=self.family,
                          saddr=saddr, sport=sport, daddr=daddr, dport=dport)
        if own is None:
            return merged
        # What the event itself says wins, except where it knows less (a sock
        # not yet bound or connected shows zero addresses and ports).
        return SocketId(**{k: getattr(own, k) if _known(getattr(own, k))
                           else getattr(merged, k) for k in SocketId.__struct_fields__})


@dataclass
class _Tracker:
    ids: itertools.count[int] = field(default_factory=itertools.count)
    by_fd: dict[tuple[int, int], _Socket] = field(default_factory=dict)  # (pid, fd)
    by_sk: dict[str, _Socket] = field(default_factory=dict)
    by_tuple: dict[tuple[str, int, str, int], _Socket] = field(default_factory=dict)
    open_calls: dict[int, list[Event]] = field(default_factory=dict)  # tid → __sys_* entries
    last_state_probe: dict[int, Event] = field(default_factory=dict)  # tid → tcp_set_state
    pending_accept: dict[int, str] = field(default_factory=dict)  # tid → sock being accepted
    # The socket a `__sys_*` return just made on each thread, for its system call's exit.
    made: dict[int, _Socket] = field(default_factory=dict)
    # The socket of the last entry of each function or system call on each thread,
    # for its return, which names no socket (these calls do not recurse).
    entered: dict[tuple[int, str, str], int] = field(default_factory=dict)  # → event index
    # Connections known by their 4-tuple alone, by (local port, remote port): see of_tuple.
    unclaimed: dict[tuple[int, int], list[_Socket]] = field(default_factory=dict)
    # A sock cloned from a listener, by thread: the index of its first state change.
    cloned: dict[int, int] = field(default_factory=dict)

    def new_socket(self, pid: int, fd: int, *, born: bool = True) -> _Socket:
        sock = _Socket(next(self.ids), fd=fd, born=born)
        self.by_fd[(pid, fd)] = sock
        return sock

    def of_fd(self, pid: int, fd: int) -> _Socket:
        """The descriptor's socket; one opened before the trace began is made up here."""
        return self.by_fd.get((pid, fd)) or self.new_socket(pid, fd, born=False)

    def bind_sk(self, sock: _Socket, sk: str) -> None:
        old = self.by_sk.get(sk)
        if old is not None and old is not sock and old.fd is None and sock.sk is None:
            # Seen first from the kernel side (a softirq), now found its descriptor.
            sock.tuple, sock.proto, sock.family = old.tuple, old.proto, old.family
        sock.sk = sk
        self.by_sk[sk] = sock

    def of_sk(self, sk: str, seen: SocketId) -> _Socket:
        """The socket of a kernel sock address. The kernel gives a freed sock's address
        to the next one: a connected socket's address seen with other ports is a new
        socket (a connection's ports never change; its close() may not be traced)."""
        sock = self.by_sk.get(sk)
        if sock is None or _other_ports(sock, seen):
            sock = _Socket(next(self.ids), sk=sk)
            self.by_sk[sk] = sock
        return sock

    def of_tuple(self, full: tuple[str, int, str, int], seen: SocketId) -> _Socket:
        """A connection seen by its 4-tuple alone (a state change in a softirq, as the
        server's handshake completes): the sock that accept() returns claims it."""
        sock = _Socket(next(self.ids), proto=seen.proto, family=seen.family, tuple=full)
        self.by_tuple[full] = sock
        self.unclaimed.setdefault((full[1], full[3]), []).append(sock)
        return sock

    def claim(self, seen: SocketId) -> _Socket | None:
        """The connection known by its 4-tuple alone that `seen`, a kernel sock, is:
        by its 4-tuple, or for IPv6, whose functions show no address, by its ports."""
        waiting = self.unclaimed.get((seen.sport or 0, seen.dport or 0), [])
        full = _full(_tuple(seen))
        for sock in waiting:
            if (full is None or sock.tuple == full) and sock.sk is None:
                waiting.remove(sock)
                return sock
        return None


def annotate_sockets(events: Iterable[Event]) -> list[Event]:
    """The events of one node, in time order, each with its socket's full identity."""
    ordered = sorted(events, key=lambda e: e.ts)
    tracker = _Tracker()
    owner: list[_Socket | None] = []
    for e in ordered:
        owner.append(_observe(tracker, e))
        _pair_with_entry(tracker, e, owner)
        if e.kind == Kind.SOCK_STATE:
            _adopt_clone(tracker, e, owner)
    # A descriptor never seen as a socket (stdout, a file) stays as the event has it.
    return [replace(e, sock=s.identity(e.sock)) if s is not None and s.is_socket else e
            for e, s in zip(ordered, owner, strict=True)]


def _pair_with_entry(t: _Tracker, e: Event, owner: list[_Socket | None]) -> None:
    """A return shares its entry's socket; socket() and accept() learn theirs on return."""
    layer = "syscall" if e.kind in (Kind.SYSCALL_ENTRY, Kind.SYSCALL_EXIT) else "function"
    key = (e.tid, layer, e.name)
    if e.kind in (Kind.SYSCALL_ENTRY, Kind.FUNC_ENTRY):
        t.entered[key] = len(owner) - 1
    elif e.kind in (Kind.SYSCALL_EXIT, Kind.FUNC_RETURN) and key in t.entered:
        entry = t.entered.pop(key)
        if owner[-1] is None:
            owner[-1] = owner[entry]
        elif owner[entry] is None:
            owner[entry] = owner[-1]


def _adopt_clone(t: _Tracker, e: Event, owner: list[_Socket | None]) -> None:
    """A sock cloned from a listener is the socket of its next change (see the module's
    doc); it is only known then."""
    if _cloned(e):
        t.cloned[e.tid] = len(owner) - 1
    elif e.args.get("oldstate") == "TCP_SYN_RECV" \
            and (first := t.cloned.pop(e.tid, None)) is not None:
        owner[first] = owner[-1]


def _cloned(e: Event) -> bool:
    """Whether `e` is the first state change of a sock cloned from a listener."""
    return (e.args.get("oldstate"), e.args.get("newstate")) == CLONED


def _observe(t: _Tracker, e: Event) -> _Socket | None:
    """Update what is known from one event; return the socket it concerns."""
    sock: _Socket | None = None
    fd = e.sock.fd if e.sock else None
    sk = e.sock.sk if e.sock else None
    calls = t.open_calls.setdefault(e.tid, [])
    # What the thread's `__sys_*` return made is its system call's, which ends here.
    made = t.made.pop(e.tid, None) if e.kind == Kind.SYSCALL_EXIT else None

    if e.kind == Kind.FUNC_ENTRY and e.name.startswith(SYSCALL_LAYER_PREFIX):
        calls.append(e)
        if fd is not None:
            sock = t.of_fd(e.pid, fd)
    elif e.kind == Kind.FUNC_RETURN and e.name.startswith(SYSCALL_LAYER_PREFIX):
        entry = _pop_call(calls, e.name)
        if e.name in NEW_FD and e.ret is not None and e.ret >= 0:
            accepted = t.by_sk.get(t.pending_accept.pop(e.tid, ""))
            if accepted is not None:
                # The connection was seen from the kernel side first: it is this descriptor.
                accepted.fd, accepted.born = e.ret, True
                t.by_fd[(e.pid, e.ret)] = sock = accepted
            else:
                sock = t.new_socket(e.pid, e.ret)
            t.made[e.tid] = sock
        elif entry is not None and entry.sock and entry.sock.fd is not None:
            sock = t.of_fd(e.pid, entry.sock.fd)
    elif e.kind == Kind.SYSCALL_ENTRY and fd is not None:
        sock = t.of_fd(e.pid, fd)
        if e.sock is not None:  # strace decodes the socket behind the descriptor
            _learn(t, sock, e.sock)
        if e.name == "close":
            sock.closed = True
            t.by_fd.pop((e.pid, fd), None)
    elif e.kind == Kind.SYSCALL_EXIT and e.name in NEW_FD_SYSCALLS \
            and e.ret is not None and e.ret >= 0:  # 0 too: a daemon's stdin closed
        # Born here when no `__sys_*` return made it first (strace traces no function);
        # a socket on its descriptor before is another, whose close() was not traced.
        sock = made if made is not None and made.fd == e.ret else t.new_socket(e.pid, e.ret)
        if e.sock is not None:
            _learn(t, sock, e.sock)
    elif e.kind in (Kind.FUNC_ENTRY, Kind.FUNC_RETURN) and sk is not None:
        sock = _kernel_side(t, e, sk, calls)
    elif e.kind == Kind.SOCK_STATE and not _cloned(e):  # a clone's: see _adopt_clone
        probe = t.last_state_probe.pop(e.tid, None)
        if probe is not None and probe.sock and probe.sock.sk:
            sock = t.of_sk(probe.sock.sk, probe.sock)
        else:
            sock = _changing_state(t, e, calls[-1] if calls else None)
        if sock is not None and e.sock is not None:
            _learn(t, sock, e.sock)
        elif e.sock is not None and (full := _full(_tuple(e.sock))) is not None:
            sock = t.of_tuple(full, e.sock)
    elif e.kind == Kind.TRACEPOINT and e.sock is not None:
        sock = _by_tuple(t, e.sock)
    return sock


def _changing_state(t: _Tracker, e: Event, caller: Event | None) -> _Socket | None:
    """The socket of a state change known by its 4-tuple only (see the module's doc)."""
    if e.sock is None:
        return None
    mine = t.of_fd(caller.pid, caller.sock.fd) if (
        caller is not None and caller.sock and caller.sock.fd is not None) else None
    if _full(_tuple(e.sock)) is None:  # listen() sets LISTEN itself
        return mine or _by_tuple(t, e.sock)
    known = _by_tuple(t, e.sock)
    # A new connection, maybe on the 4-tuple of a closed one; a fresh socket is in
    # TCP_CLOSE, so a change from another state is an older connection's, which a
    # softirq ends during this call (its last ACK arrives as the next connect() runs).
    if mine is not None and mine.tuple is None and (known is None or known.closed) \
            and e.args.get("oldstate") in FRESH:
        return mine
    return known


def _kernel_side(t: _Tracker, e: Event, sk: str, calls: list[Event]) -> _Socket:
    assert e.sock is not None
    if e.name == "inet_csk_accept" and e.kind == Kind.FUNC_RETURN:
        # The new connection's sock; the enclosing accept returns its descriptor. A sock
        # address known from a closed connection is this one's now: the kernel reuses them.
        child = t.by_sk.get(sk)
        if child is None or child.closed:
            child = t.claim(e.sock) or _Socket(next(t.ids))
            t.bind_sk(child, sk)
        _learn(t, child, e.sock)
        t.pending_accept[e.tid] = sk
        return child
    caller = calls[-1] if calls else None
    if caller is not None and caller.sock and caller.sock.fd is not None \
            and caller.name != "__sys_accept4" and not _elsewhere(t, caller, sk):
        sock = t.of_fd(caller.pid, caller.sock.fd)
        if sock.sk != sk:
            t.bind_sk(sock, sk)
    else:
        sock = t.of_sk(sk, e.sock)
    _learn(t, sock, e.sock)
    if e.name == "tcp_set_state":
        t.last_state_probe[e.tid] = e
    return sock


def _elsewhere(t: _Tracker, caller: Event, sk: str) -> bool:
    """Whether `sk` is another socket than the one of the call in progress.

    A softirq that interrupts a system call runs on the same thread and may
    handle another socket's packet (a SYN-ACK for an earlier connect()): the
    function events it raises belong to that socket, not to the call's.
    """
    assert caller.sock is not None and caller.sock.fd is not None
    mine = t.by_fd.get((caller.pid, caller.sock.fd))
    if mine is not None and mine.sk not in (None, sk):
        return True
    owner = t.by_sk.get(sk)
    return owner is not None and owner is not mine and owner.fd is not None and not owner.closed


def _other_ports(sock: _Socket, seen: SocketId) -> bool:
    """Whether `seen` shows other ports than the whole 4-tuple `sock` had."""
    if sock.tuple is None or _full(sock.tuple) is None \
            or not (_known(seen.sport) and _known(seen.dport)):
        return False
    return (seen.sport, seen.dport) != (sock.tuple[1], sock.tuple[3])


def _known(value: object) -> bool:
    return value not in (None, 0, "0.0.0.0", "::", "::ffff:0.0.0.0")


def _tuple(seen: SocketId) -> _Parts:
    """The 4-tuple `seen` gives, each part None where it is not known yet."""
    saddr, daddr = (a if _known(a) else None for a in (seen.saddr, seen.daddr))
    sport, dport = (p if _known(p) else None for p in (seen.sport, seen.dport))
    return saddr, sport, daddr, dport


def _full(key: _Parts) -> tuple[str, int, str, int] | None:
    """A 4-tuple with every part known, or None."""
    saddr, sport, daddr, dport = key
    if saddr is None or sport is None or daddr is None or dport is None:
        return None
    return saddr, sport, daddr, dport


def _learn(t: _Tracker, sock: _Socket, seen: SocketId) -> None:
    sock.proto = seen.proto or sock.proto
    sock.family = seen.family or sock.family
    key = _tuple(seen)
    saddr, sport = key[0], key[1]
    # Parts seen apart make a whole: 5.10 may change the state to SYN_SENT before it
    # picks the local port, and IPv6 functions show the ports but no address.
    sock.parts = _merged(sock.parts, key)
    if (full := _full(key) or _full(sock.parts)) is not None:
        sock.tuple = full
        t.by_tuple[full] = sock
    elif (sock.tuple is None or None in sock.tuple) and sport and (
            saddr or sock.proto == "udp"):
        # A bound or listening socket; an unbound UDP socket has only its port.
        sock.tuple = (saddr, sport, None, None)


def _merged(known: _Parts, seen: _Parts) -> _Parts:
    """What `seen` adds to `known`; `seen` alone where they disagree (another connection)."""
    if any(a is not None and b is not None and a != b for a, b in zip(known, seen, strict=True)):
        return seen
    return (seen[0] or known[0], seen[1] or known[1], seen[2] or known[2],
            seen[3] or known[3])


def _by_tuple(t: _Tracker, seen: SocketId) -> _Socket | None:
    """The last socket that had the 4-tuple `seen` (or, partial, the address it is bound to)."""
    key = _tuple(seen)
    if (full := _full(key)) is not None:
        return t.by_tuple.get(full)
    sockets = {id(s): s for s in [*t.by_fd.values(), *t.by_sk.values()]}
    for sock in reversed(list(sockets.values())):
        if sock.tuple == key:
            return sock
    return None


def _pop_call(calls: list[Event], name: str) -> Event | None:
    for i in range(len(calls) - 1, -1, -1):
        if calls[i].name == name:
            return calls.pop(i)
    return None
