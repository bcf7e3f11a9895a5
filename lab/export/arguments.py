"""Call arguments as the classic lab reads them: constants by name, pointers in hex.

Events keep the numbers the tracers saw (a syscall tracepoint gives every
argument as a number); only what people read is decoded:

    socket(family=AF_INET, type=SOCK_STREAM, protocol=IPPROTO_TCP)
    sendto(fd=3, buff=0x4a2e3d, len=5, flags=MSG_NOSIGNAL, addr=NULL, addr_len=0)
"""

from __future__ import annotations

from collections.abc import Mapping

FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}
TYPE_FLAGS = {0o4000: "SOCK_NONBLOCK", 0o2000000: "SOCK_CLOEXEC"}
PROTOCOLS = {6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 1: "IPPROTO_ICMP", 58: "IPPROTO_ICMPV6"}
MSG_FLAGS = {0x1: "MSG_OOB", 0x2: "MSG_PEEK", 0x4: "MSG_DONTROUTE", 0x8: "MSG_CTRUNC",
             0x20: "MSG_TRUNC", 0x40: "MSG_DONTWAIT", 0x80: "MSG_EOR", 0x100: "MSG_WAITALL",
             0x4000: "MSG_NOSIGNAL", 0x8000: "MSG_MORE", 0x40000000: "MSG_CMSG_CLOEXEC"}
ACCEPT_FLAGS = {0o4000: "SOCK_NONBLOCK", 0o2000000: "SOCK_CLOEXEC"}
SOCKET_CALLS = {"socket", "__sys_socket", "socketpair"}
# Arguments that hold an address in the program's memory (the syscall tracepoints'
# names, which the kernel's own functions share).
POINTERS = {"buff", "ubuf", "umyaddr", "uservaddr", "upeer_sockaddr", "upeer_addrlen",
            "addr", "msg", "mmsg", "optval", "optlen", "usockaddr",
            "usockaddr_len", "buf"}
# Other numbers this large are addresses too (a stack's, a heap's); smaller ones may
# be either (a static program's data lies below 4 GiB): only the names above tell.
SMALL = 1 << 32


def shown_args(call: str, args: Mapping[str, object]) -> str:
    """`args` of `call` as "key=value, ..."."""
    return ", ".join(f"{key}={shown(call, key, value)}" for key, value in args.items())


def shown(call: str, key: str, value: object) -> str:
    if key == "flags" and isinstance(value, str):  # traces before flags were fetched as u32
        try:
            value = int(value, 16)
        except ValueError:
            return str(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    if call in SOCKET_CALLS:
        if key == "family":
            return FAMILIES.get(value, str(value))
        if key == "type":
            return _flags(value & 0xF, TYPES, value & ~0xF, TYPE_FLAGS)
        if key == "protocol" and value:
            return PROTOCOLS.get(value, str(value))
    if key == "flags":
        if "accept" in call:
            return _flags(None, {}, value, ACCEPT_FLAGS)
        if any(word in call for word in ("send", "recv")):
            return _flags(None, {}, value, MSG_FLAGS)
    if key in POINTERS or (key == "addr_len" and "recv" in call):  # recvfrom's is a pointer
        return f"{value:#x}" if value else "NULL"
    return f"{value:#x}" if value >= SMALL else str(value)


def _flags(base: int | None, names: Mapping[int, str], bits: int,
           flag_names: Mapping[int, str]) -> str:
    """"SOCK_STREAM|SOCK_CLOEXEC", "MSG_NOSIGNAL", "0" when nothing is set; bits
    without a name in hex."""
    words = [] if base is None else [names.get(base, str(base))]
    rest = bits
    for bit, name in flag_names.items():
        if rest & bit:
            words.append(name)
            rest &= ~bit
    if rest:
        words.append(f"{rest:#x}")
    return "|".join(words) or "0"
