"""Both ends of each connection: every node's view of a socket, paired across nodes.

An *endpoint* is one node's view of one connection: the events of a socket
with a known 4-tuple. The client's view (A:p → B:q) and the server's view
(B:q → A:p) of the same connection have mirrored 4-tuples; pairing matches
them. A port reused by a later connection is a new endpoint (a new
generation of the same 4-tuple), and the k-th generation on one side pairs
with the k-th on the other. Events that concern no endpoint are listed with
the reason, never dropped.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from itertools import chain, groupby
from operator import attrgetter

from lab.events import Arg, Event, Kind, SocketId, by_node

Address = tuple[str, int]
_Key = tuple[str, str, Address, Address]  # node, protocol, local, remote
_NAME = attrgetter("name")
_NODE = attrgetter("node")
# TCP states after which a 4-tuple can be used by a new connection.
ENDED = {"TCP_CLOSE"}
BEGUN = {"TCP_SYN_SENT", "TCP_SYN_RECV", "TCP_NEW_SYN_RECV"}
ROLE_ORDER = {"client": 0, "peer": 1, "server": 2}
CONNECTING = frozenset({"connect", "__sys_connect", "tcp_v4_connect", "tcp_v6_connect"})
ACCEPTING = frozenset({"accept", "accept4", "__sys_accept4", "inet_csk_accept"})
BINDS = {"bind", "__sys_bind"}
# The first event of a connection's socket: socket(), or the SYN-ACK of the accepting side.
BIRTHS = frozenset({"socket", "__sys_socket", "tcp_v4_send_synack", "tcp_v6_send_synack"})
# Calls whose address argument is the peer of the datagram (bind's is the local one);
# with ftrace, every event of such a call carries it (lab/tracers/ftrace/parse.py). A
# receive's is where the datagram came from: what it returns, not what it is given.
DATAGRAM_SENDS = frozenset({"sendto", "sendmsg", "__sys_sendto", "__sys_sendmsg",
                            "udp_sendmsg", "udpv6_sendmsg"})
DATAGRAM_RECEIVES = frozenset({"recvfrom", "recvmsg", "__sys_recvfrom", "__sys_recvmsg",
                               "udp_recvmsg", "udpv6_recvmsg"})
DATAGRAM_CALLS = DATAGRAM_SENDS | DATAGRAM_RECEIVES
UDP_IDLE_NS = 5_000_000_000  # a UDP flow silent this long is over: the next is a new flow
WILDCARDS = {"0.0.0.0", "::"}  # an unbound UDP socket's own address


@dataclass
class Endpoint:
    node: str
    proto: str
    family: str | None
    local: Address
    remote: Address
    generation: int
    bound: bool = False  # its local port was bound explicitly (bind()) on this node
    events: list[Event] = field(default_factory=list)
    # Its TCP state changes as (old state, new state, event), in time order.
    changes: list[tuple[Arg, Arg, Event]] = field(default_factory=list)
    ended: bool = False  # a TCP state change closed it: its 4-tuple is free again
    role: str = "peer"  # once paired: "client" (it connected), "server" or "peer"

    @property
    def first(self) -> int:
        return self.events[0].ts

    @property
    def last(self) -> int:
        return self.events[-1].ts


def _role(end: Endpoint) -> str:
    """"client" when this side connected (for UDP: sent before it received)."""
    if not CONNECTING.isdisjoint(map(_NAME, end.events)):  # stops at the first
        return "client"
    if not ACCEPTING.isdisjoint(map(_NAME, end.events)):
        return "server"
    if end.proto == "udp":
        return "server" if end.bound else "client"
    return "peer"


@dataclass
class Connection:
    id: str
    proto: str
    ends: list[Endpoint]  # one or two; the client first when known

    @property
    def paired(self) -> bool:
        return len(self.ends) == 2


@dataclass(frozen=True)
class Unattributed:
    event: Event
    reason: str


@dataclass
class Pairing:
    connections: list[Connection]
    unattributed: list[Unattributed]
    events: list[Event]  # every event paired, by node then time
    nodes: list[str]  # every node with events, by name


@dataclass(slots=True)
class _Tuple:
    """One node's 4-tuple: its endpoints follow one another, a generation each."""

    key: _Key
    current: Endpoint | None = None
    generations: int = 0


def endpoints(ordered: Iterable[Event]) -> tuple[list[Endpoint], list[Unattributed]]:
    """Every node's endpoints, in time order, and the socket events that fit none.

    `ordered`: by node, then time (`by_node`, joined).

    This loop sees every event of a run (a million in bench/correlate.py): the
    4-tuple of a connected socket is looked up once per distinct socket identity,
    and the checks are inlined.
    """
    tuples: dict[_Key, _Tuple] = {}
    found: list[Endpoint] = []
    loose: list[Unattributed] = []
    bound: set[tuple[str, int]] = set()  # (node, port) given to bind()
    state = Kind.SOCK_STATE
    for _, events in groupby(ordered, _NODE):
        known: dict[SocketId, _Tuple] = {}  # connected sockets' 4-tuples on this node
        for e in events:
            if e.name in BINDS and (port := _port_of(e.args.get("umyaddr")
                                                     or e.args.get("uaddr"))):
                bound.add((e.node, port))
            s = e.sock
            if s is None:
                continue
            t = known.get(s)
            if t is None:
                if s.sk is None and s.saddr is None and s.proto is None:
                    continue  # not a socket event
                key = _key(e)
                if key is None:
                    loose.append(Unattributed(e, _why_loose(e)))
                    continue
                t = tuples.get(key)
                if t is None:
                    t = tuples[key] = _Tuple(key)
                if s.daddr and s.dport:  # a connected socket's 4-tuple depends on it alone
                    known[s] = t
            current = t.current
            if current is None or (
                    e.ts - current.last > UDP_IDLE_NS if current.proto == "udp" else
                    current.ended and _begins_another(e)):
                t.generations += 1
                _, proto, local, remote = t.key
                current = t.current = Endpoint(e.node, proto, s.family, local, remote,
                                               t.generations, bound=(e.node, local[1]) in bound)
                found.append(current)
            current.events.append(e)
            if e.kind is state:
                new = e.args.get("newstate")
                current.changes.append((e.args.get("oldstate"), new, e))
                if new in ENDED:
                    current.ended = True
    return found, loose


def _begins_another(e: Event) -> bool:
    """Whether `e`, on the 4-tuple of a connection that has ended, is of the next one.

    Every event of a socket carries the 4-tuple it connects with (sockets.py), from
    its birth, which comes before its first state change; on the accepting side, the
    SYN-ACK goes out of the request sock before the connection's sock exists. The
    ended connection's last events (close() returning, its sock destroyed) stay
    with it."""
    return e.name in BIRTHS or (e.kind is Kind.SOCK_STATE and e.args.get("newstate") in BEGUN)


def _key(e: Event) -> _Key | None:
    """(node, protocol, local, remote) of a socket event, if it names both ends."""
    s = e.sock
    assert s is not None
    remote = _remote(e)
    proto = s.proto or "tcp"
    # An unbound UDP socket has a port but no address of its own: a wildcard.
    saddr = s.saddr if s.saddr is not None or proto != "udp" else "0.0.0.0"
    if saddr is None or not s.sport or remote is None:
        return None
    return (e.node, proto, (_addr(saddr), s.sport), remote)


def pair(events: Iterable[Event]) -> Pairing:
    grouped = by_node(events)
    ordered = list(chain.from_iterable(grouped.values()))
    ends, loose = endpoints(ordered)
    for end in ends:
        end.role = _role(end)
    loose = _adopt_datagram_calls(ends, loose)
    by_tuple = _by_tuple(ends)
    if merged := _flows_split_alike(ends, by_tuple):
        ends = [end for end in ends if id(end) not in merged]
        by_tuple = _by_tuple(ends)
    connections: list[Connection] = []
    taken: set[int] = set()
    for end in ends:
        if id(end) in taken:
            continue
        taken.add(id(end))
        mirror = [m for m in _mirrors(by_tuple, end)  # on this node too: over loopback
                  if id(m) not in taken and m.generation == end.generation]
        ends_of = [end]
        if mirror:
            taken.add(id(mirror[0]))
            ends_of.append(mirror[0])
            for one, other in ((end, mirror[0]), (mirror[0], end)):
                if one.local[0] in WILDCARDS:  # an unbound UDP socket: the peer saw its address
                    one.local = (other.remote[0], one.local[1])
        ends_of.sort(key=_order)
        connections.append(Connection(_name(ends_of[0]), end.proto, ends_of))
    connections.sort(key=_began)
    return Pairing(connections, loose, ordered, list(grouped))


_ByTuple = dict[tuple[str, Address, Address], list[Endpoint]]  # (proto, local, remote)


def _by_tuple(ends: Iterable[Endpoint]) -> _ByTuple:
    found: _ByTuple = defaultdict(list)
    for end in ends:
        found[(end.proto, end.local, end.remote)].append(end)
    return found


def _flows_split_alike(ends: list[Endpoint], by_tuple: _ByTuple) -> set[int]:
    """A UDP flow ends where it falls silent for UDP_IDLE_NS, on each node's own clock: a
    silence near that long may end it on one side only, and the k-th flow of one side
    would then pair with another's k-th. Where the two sides of a 4-tuple split into
    unlike numbers of flows, each side's are made one (matching datagrams by size and
    order is sound across a silence). Returns the endpoints merged into others."""
    sides: dict[tuple[str, Address, Address], list[Endpoint]] = defaultdict(list)
    for end in ends:
        if end.proto == "udp":
            sides[(end.node, end.local, end.remote)].append(end)
    merged: set[int] = set()
    for side in sides.values():
        mirrors = {(m.node, m.local, m.remote) for m in _mirrors(by_tuple, side[0])}
        if any(len(sides[mirror]) != len(side) for mirror in mirrors):
            for flows in (side, *(sides[mirror] for mirror in mirrors)):
                for later in flows[1:]:
                    if id(later) not in merged:
                        flows[0].events += later.events
                        merged.add(id(later))
    return merged


def _order(end: Endpoint) -> tuple[int, int]:
    return ROLE_ORDER[end.role], end.first


def _began(c: Connection) -> int:
    return min(c.ends[0].first, c.ends[-1].first)


def _adopt_datagram_calls(ends: list[Endpoint],
                          loose: list[Unattributed]) -> list[Unattributed]:
    """A UDP socket's calls that name no peer (a receive's entry; with ftrace, every
    receive, and close) belong to its flow when the socket talks to one peer only."""
    flows: dict[tuple[str, int], list[Endpoint]] = defaultdict(list)  # (node, local port)
    for end in ends:
        if end.proto == "udp":
            flows[(end.node, end.local[1])].append(end)
    kept: list[Unattributed] = []
    for u in loose:
        s = u.event.sock
        candidates = flows.get((u.event.node, s.sport or 0)) if s and s.proto == "udp" else None
        if not candidates or len({c.remote for c in candidates}) != 1:
            kept.append(u)
            continue
        ts = u.event.ts  # the generation of the flow it falls in, or the nearest one
        end = min(candidates, key=lambda c: max(c.first - ts, ts - c.last, 0))
        bisect.insort(end.events, u.event, key=attrgetter("ts"))
    return kept


def _remote(e: Event) -> Address | None:
    """The peer of the event's socket: its 4-tuple, or a datagram's address (UDP)."""
    s = e.sock
    assert s is not None
    if s.daddr and s.dport:
        return (_addr(s.daddr), s.dport)
    # "addr" is the address text (strace), or a pointer (ftrace's system call): then "uaddr".
    text = next((a for a in (e.args.get("addr"), e.args.get("uaddr")) if isinstance(a, str)),
                None)
    if s.proto == "udp" and e.name in DATAGRAM_CALLS and (port := _port_of(text)):
        assert text is not None
        return (_addr(text.rpartition(":")[0].strip("[]")), port)
    return None


def _port_of(text: object) -> int | None:
    """The port of an "address:port" or "[address]:port" argument."""
    if not isinstance(text, str):
        return None
    host, _, port = text.rpartition(":")
    return int(port) if host and port.isdigit() else None


def _mirrors(by_tuple: _ByTuple, end: Endpoint) -> list[Endpoint]:
    """The other node's views of `end`'s connection (or this node's, over loopback)."""
    exact = by_tuple.get((end.proto, end.remote, end.local), [])
    if exact or end.proto != "udp":
        return exact
    # A wildcard local address (on either side) matches by port; on another node only:
    # on this one, the node's flows to two peers on one port would match each other.
    return [m for (proto, local, remote), ms in by_tuple.items() for m in ms
            if proto == "udp" and m.node != end.node and _same(local, end.remote)
            and _same(remote, end.local)]


def _same(a: Address, b: Address) -> bool:
    return a[1] == b[1] and (a[0] == b[0] or a[0] in WILDCARDS or b[0] in WILDCARDS)


LISTENING = "listening or unconnected socket (no peer)"  # a server's listen() and accept()


def _why_loose(e: Event) -> str:
    s = e.sock
    assert s is not None
    if s.proto == "udp" and e.name in DATAGRAM_CALLS:
        return "datagram socket call with no peer address"
    if s.proto == "udp" or (s.sport and not s.dport):  # UDP: a socket shared by its flows
        return LISTENING
    return "socket whose 4-tuple is not known yet"


@cache  # a run names few addresses, each on most of its events
def _addr(text: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 compressed."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def format_address(a: Address) -> str:
    """"10.0.1.1:7777", or "[fd00::1]:7777" for IPv6."""
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


def _name(end: Endpoint) -> str:
    suffix = f" #{end.generation}" if end.generation > 1 else ""
    return f"{end.proto} {format_address(end.local)} > {format_address(end.remote)}{suffix}"
