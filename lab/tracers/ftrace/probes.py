"""Which kernel functions and events the ftrace tracer records, and with which arguments.

Two filters keep management SSH out of the trace: events raised by the traced
programs themselves are filtered by `comm`; events of the TCP layer, which
often run in softirq context under another task's name, are filtered by port
(anything but the guest's SSH port 22). Function returns always run in the
calling process and are filtered by `comm`.

Arguments are fetched with kprobe fetch-args (x86-64 calling convention:
%di, %si, %dx, %cx, %r8, %r9). A `struct sock *` starts with `struct
sock_common`, whose first fields have the same offsets on 5.10 and 6.1:
daddr +0, rcv_saddr +4, dport +12 (network order), num (local port) +14,
family +16, state +18.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


def sock_args(reg: str, prefix: str = "") -> str:
    """The socket identity of a `struct sock *` held in REG."""
    p = prefix
    return (f"{p}sk={reg}:x64 {p}family=+16({reg}):u16 {p}sport=+14({reg}):u16 "
            f"{p}dport=+12({reg}):x16 {p}saddr=+4({reg}):x32 {p}daddr=+0({reg}):x32")


def sockaddr_args(reg: str, prefix: str = "uaddr", *, user: bool = True) -> str:
    """A `struct sockaddr *` in REG, in user memory or the kernel's: family, port
    (network order), IPv4 or IPv6 address."""
    u = "u" if user else ""
    return (f"{prefix}_family=+{u}0({reg}):u16 {prefix}_port=+{u}2({reg}):x16 "
            f"{prefix}_addr=+{u}4({reg}):x32 {prefix}_addr6hi=+{u}8({reg}):x64 "
            f"{prefix}_addr6lo=+{u}16({reg}):x64")


def msg_name_args(reg: str) -> str:
    """The destination of a `struct msghdr *` in REG, already copied into the kernel.

    `msg_name` (the first field on 5.10 and 6.1) is NULL when the call named no
    destination; the fetches below it then fail and leave garbage, so the parser
    reads them only when `msg_name` is not 0.
    """
    name = f"+0({reg})"
    return (f"msg_name={name}:x64 uaddr_family=+0({name}):u16 uaddr_port=+2({name}):x16 "
            f"uaddr_addr=+4({name}):x32 uaddr_addr6hi=+8({name}):x64 "
            f"uaddr_addr6lo=+16({name}):x64")


Filter = Literal["comm", "port"]


# How a return value is fetched. $retval is the whole of %ax, whose upper half an int
# return leaves undefined (zero, mostly): as s64, -ECONNREFUSED would read 4294967185.
INT = "ret=$retval:s32"
LONG = "ret=$retval:s64"  # a long, or a function added whose type is not known


@dataclass(frozen=True)
class Probe:
    """A kprobe (and kretprobe) on one kernel function."""

    function: str
    args: str = ""
    ret: str = LONG
    filter: Filter = "comm"


PORT_FILTER = "sport != 22 && dport != 0x1600"  # dport is fetched in network order


def _by_port(function: str, reg: str = "%di") -> Probe:
    """A TCP function filtered by the port of the sock in REG, entry only: it runs in
    softirq context as often as not, under whatever task it interrupted, where a comm
    filter would drop it (and a return probe is filtered by comm)."""
    return Probe(function, sock_args(reg), ret="", filter="port")


DEFAULT_PROBES: tuple[Probe, ...] = (
    # The system-call layer the classic lab follows, below __x64_sys_*.
    Probe("__sys_socket", "family=%di:s32 type=%si:s32 protocol=%dx:s32", ret=INT),
    Probe("__sys_bind", "fd=%di:s32 " + sockaddr_args("%si"), ret=INT),
    Probe("__sys_listen", "fd=%di:s32 backlog=%si:s32", ret=INT),
    Probe("__sys_accept4", "fd=%di:s32 flags=%cx:u32", ret=INT),
    Probe("__sys_connect", "fd=%di:s32 " + sockaddr_args("%si"), ret=INT),
    # No destination here: send() passes none, and reading user memory at NULL costs
    # a page fault per field (~15 us an event under TCG). udp_sendmsg has it instead.
    Probe("__sys_sendto", "fd=%di:s32 len=%dx:u64 flags=%cx:u32", ret=INT),
    Probe("__sys_recvfrom", "fd=%di:s32 size=%dx:u64 flags=%cx:u32", ret=INT),
    Probe("__sys_sendmsg", "fd=%di:s32 flags=%dx:u32"),  # these two return a long
    Probe("__sys_recvmsg", "fd=%di:s32 flags=%dx:u32"),
    Probe("__sys_shutdown", "fd=%di:s32 how=%si:s32", ret=INT),
    # The socket and TCP/UDP layers below, identified by their struct sock.
    Probe("__inet_bind", sock_args("%di"), ret=INT, filter="port"),
    Probe("inet_csk_listen_start", sock_args("%di"), ret=INT, filter="port"),
    Probe("tcp_v4_connect", sock_args("%di"), ret=INT, filter="port"),
    Probe("tcp_v6_connect", sock_args("%di"), ret=INT, filter="port"),
    Probe("tcp_connect", sock_args("%di"), ret=INT, filter="port"),
    Probe("inet_csk_accept", sock_args("%di"), ret=sock_args("$retval", "new"), filter="port"),
    Probe("tcp_sendmsg", sock_args("%di") + " size=%dx:u64", ret=INT, filter="port"),
    Probe("tcp_recvmsg", sock_args("%di") + " len=%dx:u64", ret=INT, filter="port"),
    # A datagram's destination (the peer of an unconnected socket), from the kernel's
    # copy; the parser hands it to the enclosing __sys_sendto as `uaddr`.
    Probe("udp_sendmsg", sock_args("%di") + " len=%dx:u64 " + msg_name_args("%si"),
          ret=INT, filter="port"),
    Probe("udp_recvmsg", sock_args("%di") + " len=%dx:u64", ret=INT, filter="port"),
    Probe("udpv6_sendmsg", sock_args("%di") + " len=%dx:u64 " + msg_name_args("%si"),
          ret=INT, filter="port"),
    Probe("udpv6_recvmsg", sock_args("%di") + " len=%dx:u64", ret=INT, filter="port"),
    # A datagram's source, as recvfrom() copies it out to the program: the parser
    # hands it to the events of the enclosing receive as `uaddr`.
    Probe("move_addr_to_user", sockaddr_args("%di", user=False) + " klen=%si:s32", ret=""),
    # When a FIN comes in (a softirq: missed hits are counted as lost events).
    _by_port("tcp_fin"),
    Probe("tcp_close", sock_args("%di"), ret="", filter="port"),
)
DEFAULT_FUNCTIONS: tuple[str, ...] = tuple(p.function for p in DEFAULT_PROBES)


# Known to `functions: {add: [...]}` with their sock, but off by default. Any other
# function added is filtered by comm: its hits in softirq context are not seen.
OPTIONAL_PROBES: tuple[Probe, ...] = (
    # It runs in softirq context as often as not, where a kprobe that fires inside
    # another probe's handler is missed (hundreds a run under load). The
    # `inet_sock_set_state` tracepoint, which never misses, gives the same state
    # changes with their 4-tuple.
    Probe("tcp_set_state", sock_args("%di") + " state=%si:s32 oldstate=+18(%di):u8",
          ret="", filter="port"),
    # The receive, handshake and close paths below the socket calls (the same
    # signatures on 5.10 and 6.1).
    *map(_by_port, ("tcp_v4_do_rcv", "tcp_v6_do_rcv", "tcp_rcv_established",
                    "tcp_rcv_state_process", "tcp_v4_syn_recv_sock", "tcp_v6_syn_recv_sock",
                    "tcp_send_ack", "tcp_send_fin", "tcp_send_active_reset", "tcp_shutdown",
                    "tcp_time_wait", "tcp_done", "tcp_retransmit_timer")),
    _by_port("tcp_conn_request", "%dx"),  # (rsk_ops, af_ops, sk, skb)
    # (sk, dst, fl, req, ...): the request sock, not the listener, has the SYN's
    # 4-tuple, which puts the SYN-ACK on its connection.
    _by_port("tcp_v4_send_synack", "%cx"),
    _by_port("tcp_v6_send_synack", "%cx"),
)

DEFAULT_SYSCALLS: tuple[str, ...] = (
    "socket", "bind", "listen", "accept", "accept4", "connect", "sendto", "recvfrom",
    "sendmsg", "recvmsg", "shutdown", "close", "read", "write",
)
# Tracepoints that carry the 4-tuple, filtered by port.
PORT_TRACEPOINTS: tuple[str, ...] = (
    "sock/inet_sock_set_state", "tcp/tcp_destroy_sock", "tcp/tcp_send_reset",
    "tcp/tcp_receive_reset", "tcp/tcp_retransmit_skb",
)
TRACEPOINT_PORT_FILTER = "sport != 22 && dport != 22"


BUFFER_KB = 8192  # per CPU, unless a playbook says otherwise


@dataclass(frozen=True)
class Adjust:
    """Additions to and removals from a default set (of functions, of system calls)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class FtraceOptions:
    """What one node's trace records."""

    comms: tuple[str, ...]  # process names whose system calls are traced
    functions: Adjust = field(default_factory=Adjust)  # relative to DEFAULT_FUNCTIONS
    syscalls: Adjust = field(default_factory=Adjust)  # relative to DEFAULT_SYSCALLS
    buffer_kb: int = BUFFER_KB

    def probes(self) -> list[Probe]:
        known = {p.function: p for p in (*DEFAULT_PROBES, *OPTIONAL_PROBES)}
        chosen = [p for p in DEFAULT_PROBES if p.function not in self.functions.remove]
        # An added function gets no arguments: only its entry, return value and caller.
        chosen += [known.get(f, Probe(f)) for f in self.functions.add
                   if f not in {p.function for p in chosen}]
        return chosen

    def syscall_names(self) -> list[str]:
        names = [s for s in DEFAULT_SYSCALLS if s not in self.syscalls.remove]
        return names + [s for s in self.syscalls.add if s not in names]

    def event_names(self) -> set[str]:
        """The names of the events this trace can hold (lab.events.Event.name)."""
        return ({p.function for p in self.probes()} | set(self.syscall_names())
                | {t.partition("/")[2] for t in PORT_TRACEPOINTS})
