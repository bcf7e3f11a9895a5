"""Parse the text of a trace instance into events of the one schema.

A line looks like (5.10 prints four flag characters, 6.1 five):

    replyhi-301  (    301) [000] d....   74.5438: __sys_accept4__return: (x <- __sys_accept4) ret=4
         nc-127  (    127) [000] .....   76.543419: sys_socket(family: 2, type: 1, protocol: 0)
         nc-127  (    127) [000] .....   76.543902: sys_socket -> 0x3
     <idle>-0    (-------) [000] ..s..   76.600000: inet_sock_set_state: family=AF_INET ...

Lines it does not understand are counted and sampled, never dropped silently;
`CPU:N [LOST M EVENTS]` markers are added up as lost events (one, at least, when
the marker gives no count).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable
from typing import Any

import msgspec

from lab.events import Event, Family, Irq, Kind, Proto, SocketId
from lab.tracers.result import ParseResult

LINE = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+\(\s*(?P<tgid>[\d-]+)\)\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<flags>\S{4,5})\s+(?P<sec>\d+)\.(?P<frac>\d+):\s(?P<rest>.*)$")
LOST = re.compile(r"^CPU:(\d+) \[LOST (?:(\d+) )?EVENTS\]")  # no count: some, how many unknown
SYSCALL_ENTRY = re.compile(r"^sys_(\w+)\((.*)\)$")
SYSCALL_EXIT = re.compile(r"^sys_(\w+) -> (0x[0-9a-f]+)$")
NAMED = re.compile(r"^(\w+): (.*)$")
KPROBE_BODY = re.compile(r"^\((?P<where>[^)]*)\)\s*(?P<args>.*)$")
TCP_STATES = {
    1: "TCP_ESTABLISHED", 2: "TCP_SYN_SENT", 3: "TCP_SYN_RECV", 4: "TCP_FIN_WAIT1",
    5: "TCP_FIN_WAIT2", 6: "TCP_TIME_WAIT", 7: "TCP_CLOSE", 8: "TCP_CLOSE_WAIT",
    9: "TCP_LAST_ACK", 10: "TCP_LISTEN", 11: "TCP_CLOSING", 12: "TCP_NEW_SYN_RECV",
}
FAMILIES: dict[int | str, Family] = {2: "inet", 10: "inet6", "AF_INET": "inet", "AF_INET6": "inet6"}
PROTOCOLS: dict[str, Proto] = {"IPPROTO_TCP": "tcp", "IPPROTO_UDP": "udp"}
# The third flag character (5.10 and 6.1 alike): in which context the event ran.
IRQ: dict[str, Irq] = {"s": "softirq", "h": "hardirq", "H": "hardirq", "z": "nmi", "Z": "nmi"}


def parse_trace(lines: Iterable[str], *, node: str, kernel: str) -> ParseResult:
    result = ParseResult()
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        if m := LOST.match(line):
            result.lost += int(m.group(2) or 1)  # at least one
            continue
        event = _event(line, node, kernel)
        if event is None:
            result.not_understood(line)
        else:
            result.events.append(event)
    result.events = _hand_out_peers(result.events)
    return result


# Where a datagram's peer is fetched: its destination from the kernel's copy
# (udp_sendmsg), its source as it is copied out to the program (move_addr_to_user).
PEER_SOURCES = frozenset({"udp_sendmsg", "udpv6_sendmsg", "move_addr_to_user"})
# The system calls, and their functions, whose events a datagram's peer is given.
DATAGRAM_SYSCALLS = frozenset({"sendto", "recvfrom", "sendmsg", "recvmsg"})
CALL_FUNCTIONS = frozenset(f"__sys_{c}" for c in DATAGRAM_SYSCALLS)


def _hand_out_peers(events: list[Event]) -> list[Event]:
    """Give every event of a datagram's system call the peer seen below it, as `uaddr`.

    An unconnected socket names its peer only deep in the call (the destination
    in udp_sendmsg, the source as recvfrom() returns it): the call's other events
    (the system call, `__sys_*`, the protocol's function) need it to find their flow.
    """
    calls: dict[int, list[int]] = {}  # tid -> indices of its open call's events so far
    peers: dict[int, str] = {}  # tid -> the peer of its open call
    for i, e in enumerate(events):
        opens = (e.kind is Kind.SYSCALL_ENTRY and e.name in DATAGRAM_SYSCALLS) or (
            e.kind is Kind.FUNC_ENTRY and e.name in CALL_FUNCTIONS and e.tid not in calls)
        if opens:
            calls[e.tid], peers[e.tid] = [i], ""
            continue
        if (held := calls.get(e.tid)) is None or e.irq is not None:
            continue  # a softirq's work (another socket's packet) is not the call's
        held.append(i)
        if e.kind is Kind.FUNC_ENTRY and e.name in PEER_SOURCES \
                and isinstance(peer := e.args.get("uaddr"), str):
            peers[e.tid] = peer
        closes = (e.kind is Kind.SYSCALL_EXIT and e.name in DATAGRAM_SYSCALLS) or (
            e.kind is Kind.FUNC_RETURN and e.name in CALL_FUNCTIONS
            and events[held[0]].kind is Kind.FUNC_ENTRY)
        if closes:
            del calls[e.tid]
            if peer := peers.pop(e.tid):
                for j in held:
                    if not isinstance(events[j].args.get("uaddr"), str):
                        events[j] = msgspec.structs.replace(
                            events[j], args=events[j].args | {"uaddr": peer})
    return events


def _event(line: str, node: str, kernel: str) -> Event | None:
    m = LINE.match(line)
    if not m:
        return None
    tid = int(m["tid"])
    tgid = int(m["tgid"]) if m["tgid"].isdigit() else tid
    ts = int(m["sec"]) * 1_000_000_000 + int(m["frac"].ljust(9, "0")[:9])
    base: dict[str, Any] = dict(node=node, kernel=kernel, tracer="ftrace", ts=ts, pid=tgid,
                                tid=tid, comm=m["comm"].strip(), irq=IRQ.get(m["flags"][2]))
    rest = m["rest"]
    if s := SYSCALL_EXIT.match(rest):
        return Event(**base, kind=Kind.SYSCALL_EXIT, name=s[1], ret=_signed(int(s[2], 16)))
    if s := SYSCALL_ENTRY.match(rest):
        args = _syscall_args(s[2])
        if args is None:
            return None
        fd = args.get("fd")
        return Event(**base, kind=Kind.SYSCALL_ENTRY, name=s[1], args=args,
                     sock=SocketId(fd=fd) if isinstance(fd, int) else None)
    n = NAMED.match(rest)
    if not n:
        return None
    name, body = n[1], n[2]
    k = KPROBE_BODY.match(body)
    if k:
        return _kprobe(base, name, _kv(k["args"]))
    if body.startswith("("):  # a probe's line cut short: no tracepoint's body starts so
        return None
    return _tracepoint(base, name, _kv(body))


def _kprobe(base: dict[str, Any], name: str, args: dict[str, str]) -> Event:
    returning = name.endswith("__return")
    function = name.removesuffix("__return")
    values: dict[str, Any] = {k: _number(v) for k, v in args.items()}
    sock = _sock_of(values, "", function) or _sock_of(values, "new", function)
    if "fd" in values and sock is None:
        sock = SocketId(fd=values["fd"])
    for prefix in ("", "new"):
        if prefix + "sk" in values:  # these fields went into `sock`
            for key in ("sk", "family", "sport", "dport", "saddr", "daddr"):
                values.pop(prefix + key, None)
    # A NULL msg_name (udp_sendmsg of a send() without destination): garbage below it.
    # Nor is there an address when move_addr_to_user copies none (klen 0).
    if "uaddr_family" in values and values.pop("msg_name", None) not in ("0", 0) \
            and values.pop("klen", 1) != 0:
        values["uaddr"] = _sockaddr(values)
    for key in ("uaddr_family", "uaddr_port", "uaddr_addr", "uaddr_addr6hi", "uaddr_addr6lo"):
        values.pop(key, None)
    for key in ("state", "oldstate"):
        if isinstance(values.get(key), int):
            values[key] = TCP_STATES.get(values[key], values[key])
    ret = values.pop("ret", None)
    if isinstance(ret, str):  # a pointer (inet_csk_accept returns the new sock)
        values["ret"] = ret
        ret = None
    kind = Kind.FUNC_RETURN if returning else Kind.FUNC_ENTRY
    return Event(**base, kind=kind, name=function, args=values, ret=ret, sock=sock)


def _tracepoint(base: dict[str, Any], name: str, args: dict[str, str]) -> Event:
    family: Family | None = FAMILIES.get(args.get("family", ""))
    if family is None and "saddrv6" in args:  # 5.10's tcp_destroy_sock prints no family
        family = "inet" if args["saddrv6"].startswith("::ffff:") else "inet6"
    v6 = family == "inet6"
    sock = None
    if "sport" in args:
        sock = SocketId(
            proto=PROTOCOLS.get(args.get("protocol", ""), "tcp"),
            family=family,
            saddr=args.get("saddrv6" if v6 else "saddr"),
            daddr=args.get("daddrv6" if v6 else "daddr"),
            sport=int(args["sport"]), dport=int(args["dport"]))
    if name == "inet_sock_set_state":
        return Event(**base, kind=Kind.SOCK_STATE, name=name,
                     args={"oldstate": args.get("oldstate"), "newstate": args.get("newstate")},
                     sock=sock)
    return Event(**base, kind=Kind.TRACEPOINT, name=name,
                 args={k: _number(v) for k, v in args.items()}, sock=sock)


def _sock_of(values: dict[str, Any], prefix: str, function: str) -> SocketId | None:
    sk = values.get(prefix + "sk")
    if not isinstance(sk, str):
        return None
    family = FAMILIES.get(values.get(prefix + "family", 0))
    ipv4 = family == "inet"
    return SocketId(
        sk=sk, family=family, proto=_proto_of(function),
        sport=values.get(prefix + "sport"),
        dport=_port(values.get(prefix + "dport")),
        saddr=_ipv4(values.get(prefix + "saddr")) if ipv4 else None,
        daddr=_ipv4(values.get(prefix + "daddr")) if ipv4 else None)


def _proto_of(function: str) -> Proto | None:
    """The protocol a function's name says (`__inet_bind` serves both: the socket's
    other events tell)."""
    if function.startswith("udp"):
        return "udp"
    return "tcp" if function.startswith(("tcp", "inet_csk")) else None


def _sockaddr(values: dict[str, Any]) -> str | None:
    family = values.get("uaddr_family")
    port = _port(values.get("uaddr_port"))
    if family == 2:
        return f"{_ipv4(values.get('uaddr_addr'))}:{port}"
    if family == 10:
        hi, lo = values.get("uaddr_addr6hi"), values.get("uaddr_addr6lo")
        if isinstance(hi, str) and isinstance(lo, str):
            raw = struct.pack("<QQ", int(hi, 16), int(lo, 16))
            return f"[{ipaddress.IPv6Address(raw)}]:{port}"
    return None


def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            out[key] = value
    return out


def _syscall_args(text: str) -> dict[str, Any] | None:
    args: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition(": ")
        if not sep:
            return None
        try:
            args[key] = int(value, 16)
        except ValueError:
            args[key] = value
    return args


def _number(value: str) -> Any:
    """Decimal stays an int; hex (0x...) stays a string without 0x, as addresses do."""
    if value.startswith("0x"):
        return value[2:]
    try:
        return int(value)
    except ValueError:
        return value


def _port(value: Any) -> int | None:
    """A port fetched in network byte order as x16."""
    if not isinstance(value, str):
        return None
    n = int(value, 16)
    return ((n & 0xFF) << 8) | (n >> 8)


def _ipv4(value: Any) -> str | None:
    """An IPv4 address fetched in network byte order as x32."""
    if not isinstance(value, str):
        return None
    return str(ipaddress.IPv4Address(struct.pack("<I", int(value, 16))))


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
