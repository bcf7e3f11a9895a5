"""A synthetic run whose true clocks are known: for tests and benchmarks of correlation.

A client opens `connections` TCP connections to a server, each on its own
thread, and on each one sends `request` bytes, reads the `reply`, and
closes; the server accepts, reads, replies, reads the end of file and
closes. The events are those an ftrace run gives, already annotated with
their socket (as in `events.jsonl`): system calls, the `__sys_*` and TCP
functions beneath them, and the state changes, from both nodes.

Every event happens at a true time; each node reads it on its own clock.
The client's clock is the true one; the server's is
`true · (1 + drift_ppm·1e-6) + offset_ns`. One-way network delays are drawn
between `min_delay_ns` and `max_delay_ns`, so the offset can be recovered no
better than that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from msgspec.structs import replace

from lab.events import Arg, Event, Kind, SocketId

CLIENT, SERVER = "client", "server"
CLIENT_ADDR, SERVER_ADDR, SERVER_PORT = "10.0.1.1", "10.0.1.10", 7777
KERNEL = "synthetic"
LISTENER = SocketId(fd=3, sk="ffff888000010000", proto="tcp", family="inet",
                    saddr=SERVER_ADDR, sport=SERVER_PORT)


@dataclass(frozen=True)
class SyntheticRun:
    events: list[Event]  # both nodes, each on its own clock, in time order per node
    offset_ns: int  # the server's clock minus the client's at true time 0
    drift_ppm: float
    connections: int

    def server_clock(self, true_ns: int) -> int:
        return _server_clock(true_ns, self.offset_ns, self.drift_ppm)


@dataclass(frozen=True)
class _Network:
    rng: random.Random
    min_delay_ns: int
    max_delay_ns: int

    def delay(self) -> int:
        return self.rng.randint(self.min_delay_ns, self.max_delay_ns)


def synthetic_run(connections: int, *, offset_ns: int = 0, drift_ppm: float = 0.0,
                  request: int = 5, reply: int = 2, min_delay_ns: int = 50_000,
                  max_delay_ns: int = 300_000, spacing_ns: int = 400_000,
                  seed: int = 1) -> SyntheticRun:
    net = _Network(random.Random(seed), min_delay_ns, max_delay_ns)
    client: list[tuple[int, Event]] = []
    server: list[tuple[int, Event]] = []
    for i in range(connections):
        port = 32768 + i % 28000
        csock = SocketId(fd=3, sk=f"ffff8881{i:08x}", proto="tcp", family="inet",
                         saddr=CLIENT_ADDR, sport=port, daddr=SERVER_ADDR, dport=SERVER_PORT)
        ssock = SocketId(fd=4, sk=f"ffff8882{i:08x}", proto="tcp", family="inet",
                         saddr=SERVER_ADDR, sport=SERVER_PORT, daddr=CLIENT_ADDR, dport=port)
        _connection(_Emitter(client, CLIENT, 500, 1000 + i, "concurrent", csock),
                    _Emitter(server, SERVER, 600, 5000 + i, "replyhi", ssock),
                    net, i * spacing_ns, request=request, reply=reply)
    events = [e for _, e in sorted(client, key=lambda p: p[0])]
    events += [replace(e, ts=_server_clock(true, offset_ns, drift_ppm))
               for true, e in sorted(server, key=lambda p: p[0])]
    return SyntheticRun(events, offset_ns, drift_ppm, connections)


def _connection(c: _Emitter, s: _Emitter, net: _Network, t: int, *, request: int,
                reply: int) -> None:
    # The server waits in accept() from before the client starts.
    s.at(t, Kind.SYSCALL_ENTRY, "accept4", {"fd": 3}, sock=LISTENER)
    s.at(t + 1_000, Kind.FUNC_ENTRY, "__sys_accept4", {"fd": 3}, sock=LISTENER)
    t = c.call(t + 10_000, "socket", "__sys_socket", 3, args={"family": 2, "type": 1})
    # connect: the SYN, the SYN-ACK, the ACK that completes accept().
    c.at(t, Kind.SYSCALL_ENTRY, "connect", {"fd": 3, "addrlen": 16})
    c.at(t + 2_000, Kind.FUNC_ENTRY, "__sys_connect",
         {"fd": 3, "uaddr": f"{SERVER_ADDR}:{SERVER_PORT}"})
    c.at(t + 4_000, Kind.FUNC_ENTRY, "tcp_v4_connect")
    c.state(t + 6_000, "TCP_CLOSE", "TCP_SYN_SENT")
    c.at(t + 9_000, Kind.FUNC_RETURN, "tcp_v4_connect", ret=0)
    syn = t + 6_000 + net.delay()
    s.state(syn, "TCP_LISTEN", "TCP_SYN_RECV")
    established = syn + net.delay()
    c.state(established, "TCP_SYN_SENT", "TCP_ESTABLISHED")
    c.at(established + 2_000, Kind.FUNC_RETURN, "__sys_connect", ret=0)
    c.at(established + 3_000, Kind.SYSCALL_EXIT, "connect", ret=0)
    ack = established + net.delay()
    s.state(ack, "TCP_SYN_RECV", "TCP_ESTABLISHED")
    s.at(ack + 5_000, Kind.FUNC_ENTRY, "inet_csk_accept", sock=LISTENER)
    s.at(ack + 8_000, Kind.FUNC_RETURN, "inet_csk_accept", {"ret": s.sock.sk})
    s.at(ack + 10_000, Kind.FUNC_RETURN, "__sys_accept4", ret=4)
    s.at(ack + 11_000, Kind.SYSCALL_EXIT, "accept4", ret=4)
    # The request, the reply, then the client closes first.
    s.at(ack + 12_000, Kind.SYSCALL_ENTRY, "read", {"fd": 4, "count": 64})
    sent = c.send(established + 20_000, request)
    arrived = max(sent + net.delay(), ack + 13_000)
    s.at(arrived, Kind.SYSCALL_EXIT, "read", ret=request)
    c.at(sent + 10_000, Kind.SYSCALL_ENTRY, "recvfrom", {"fd": 3, "size": 63})
    replied = s.send(arrived + 20_000, reply)
    got = max(replied + net.delay(), sent + 15_000)
    c.at(got, Kind.SYSCALL_EXIT, "recvfrom", ret=reply)
    closed = got + 20_000
    c.at(closed, Kind.SYSCALL_ENTRY, "close", {"fd": 3})
    c.at(closed + 2_000, Kind.SYSCALL_EXIT, "close", ret=0)
    c.at(closed + 3_000, Kind.FUNC_ENTRY, "tcp_close")
    c.state(closed + 5_000, "TCP_ESTABLISHED", "TCP_FIN_WAIT1")
    s.at(replied + 20_000, Kind.SYSCALL_ENTRY, "read", {"fd": 4, "count": 64})
    fin = max(closed + 5_000 + net.delay(), replied + 25_000)
    s.at(fin, Kind.FUNC_ENTRY, "tcp_fin", tid=0, comm="<idle>")
    s.state(fin + 2_000, "TCP_ESTABLISHED", "TCP_CLOSE_WAIT", tid=0, comm="<idle>")
    s.at(fin + 10_000, Kind.SYSCALL_EXIT, "read", ret=0)
    s.at(fin + 20_000, Kind.SYSCALL_ENTRY, "close", {"fd": 4})
    s.at(fin + 22_000, Kind.SYSCALL_EXIT, "close", ret=0)
    s.state(fin + 25_000, "TCP_CLOSE_WAIT", "TCP_LAST_ACK")
    last = fin + 25_000 + net.delay()
    c.state(last, "TCP_FIN_WAIT1", "TCP_FIN_WAIT2", tid=0, comm="<idle>")
    # On to TIME_WAIT, in a time-wait sock the tracepoint does not show: it says CLOSE.
    c.state(last + 1_000, "TCP_FIN_WAIT2", "TCP_CLOSE", tid=0, comm="<idle>")
    s.state(last + net.delay(), "TCP_LAST_ACK", "TCP_CLOSE", tid=0, comm="<idle>")


@dataclass
class _Emitter:
    """Events of one thread on one socket, stamped with true times."""

    out: list[tuple[int, Event]]
    node: str
    pid: int
    tid: int
    comm: str
    sock: SocketId

    def at(self, ts: int, kind: Kind, name: str, args: dict[str, Arg] | None = None, *,
           ret: int | None = None, sock: SocketId | None = None, tid: int | None = None,
           comm: str | None = None) -> None:
        tid = self.tid if tid is None else tid
        self.out.append((ts, Event(
            self.node, KERNEL, "ftrace", ts, self.pid if tid else 0, tid,
            comm or self.comm, kind, name, dict(args or {}), ret, sock or self.sock)))

    def state(self, ts: int, old: str, new: str, *, tid: int | None = None,
              comm: str | None = None) -> None:
        self.at(ts, Kind.SOCK_STATE, "inet_sock_set_state",
                {"oldstate": old, "newstate": new}, tid=tid, comm=comm)

    def call(self, ts: int, syscall: str, function: str, ret: int,
             args: dict[str, Arg]) -> int:
        self.at(ts, Kind.SYSCALL_ENTRY, syscall, args)
        self.at(ts + 1_000, Kind.FUNC_ENTRY, function, args)
        self.at(ts + 3_000, Kind.FUNC_RETURN, function, ret=ret)
        self.at(ts + 4_000, Kind.SYSCALL_EXIT, syscall, ret=ret)
        return ts + 10_000

    def send(self, ts: int, size: int) -> int:
        """A sendto() of `size` bytes through the TCP layer; returns its start."""
        fd = self.sock.fd
        self.at(ts, Kind.SYSCALL_ENTRY, "sendto", {"fd": fd, "len": size})
        self.at(ts + 1_000, Kind.FUNC_ENTRY, "__sys_sendto", {"fd": fd, "len": size})
        self.at(ts + 2_000, Kind.FUNC_ENTRY, "tcp_sendmsg", {"size": size})
        self.at(ts + 5_000, Kind.FUNC_RETURN, "tcp_sendmsg", ret=size)
        self.at(ts + 6_000, Kind.FUNC_RETURN, "__sys_sendto", ret=size)
        self.at(ts + 7_000, Kind.SYSCALL_EXIT, "sendto", ret=size)
        return ts


def _server_clock(true_ns: int, offset_ns: int, drift_ppm: float) -> int:
    return int(true_ns + Fraction(drift_ppm).limit_denominator(10**9) * true_ns / 10**6
               + offset_ns)
