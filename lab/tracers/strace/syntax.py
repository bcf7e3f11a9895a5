"""The pieces of one strace line: argument lists, descriptors, addresses, values.

strace prints a call's arguments the way C would write them, with -yy
annotations after descriptors:

    accept(3<TCP:[10.0.1.10:7777]>, {sa_family=AF_INET, sin_port=htons(41018),
           sin_addr=inet_addr("10.0.1.1")}, [128->16]) = 4<TCP:[10.0.1.10:7777->10.0.1.1:41018]>
    openat(AT_FDCWD</root>, "/dev/null", O_RDONLY) = 0</dev/null<char 1:3>>

An argument list is split at the commas outside strings, brackets, braces,
parentheses, comments and annotations; an annotation is the `<...>` right
after a descriptor number (or AT_FDCWD), nested `<>` and `[]` included (the
`->` of a 4-tuple sits inside brackets).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from lab.events import SocketId

CLOSERS = {"(": ")", "[": "]", "{": "}"}
DESCRIPTOR = re.compile(r"^(?P<fd>-?\d+|AT_FDCWD)<(?P<what>.*)>$", re.S)
# TCP:[8264]  TCP:[10.0.1.10:7777]  TCP:[10.0.1.1:40312->10.0.1.10:7777]
# TCPv6:[[fd00::1]:40312->[fd00::10]:7777]  UDP:[10.0.1.10:7779]
INET_SOCKET = re.compile(r"^(?P<proto>TCP|UDP)(?P<v6>v6)?:\[(?P<body>.*)\]$")
ENDPOINT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>\d+\.\d+\.\d+\.\d+)):(?P<port>\d+)$")
OTHER_SOCKET = re.compile(r"^(?:socket|UNIX(?:-\w+)?|NETLINK|PACKET|RAW(?:v6)?|UDPLITE(?:v6)?|"
                          r"SCTP(?:v6)?|L2TP/IP(?:v6)?|PING(?:v6)?|\w+):\[.*\]$")
NOT_SOCKETS = ("pipe:", "anon_inode:", "/", "net:", "mnt:", "pid:", "user:", "uts:", "ipc:")
SYMBOLS = re.compile(r"^[A-Z_][A-Z0-9_]*(?:\|(?:[A-Z_][A-Z0-9_]*|0x[0-9a-f]+|\d+))*$")
INTEGER = re.compile(r"^-?\d+$")
HEX = re.compile(r"^0x[0-9a-f]+$")
BOXED_INTEGER = re.compile(r"^\[(-?\d+)\]$")
NAMED = re.compile(r"^(?P<key>[a-z_][a-z0-9_]*)=(?P<value>.*)$", re.S)
# {sa_family=AF_INET, sin_port=htons(7777), sin_addr=inet_addr("10.0.1.10")}
SIN_PORT = re.compile(r"\bsin6?_port=htons\((\d+)\)")
SIN_ADDR = re.compile(r'\bsin_addr=inet_addr\("([0-9.]+)"\)')
SIN6_ADDR = re.compile(r'\binet_pton\(AF_INET6, "([0-9a-fA-F:.]+)", &sin6_addr\)')
SUN_PATH = re.compile(r'\bsun_path=(@?"(?:[^"\\]|\\.)*")')
ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.S)
SIMPLE_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"v": b"\v", b"f": b"\f",
                  b"a": b"\a", b"b": b"\b"}


@dataclass(frozen=True)
class Descriptor:
    """A descriptor as strace -yy shows it: the number and what it is."""

    fd: int | str  # a number, or "AT_FDCWD"
    what: str  # "TCP:[10.0.1.1:40312->10.0.1.10:7777]", "pipe:[8406]", "/dev/null<char 1:3>"

    def socket(self) -> SocketId | None:
        """The socket this descriptor is, with what the annotation tells; None if no socket."""
        if not isinstance(self.fd, int):
            return None
        return socket_id(self.fd, self.what)


def split_call(text: str) -> tuple[list[str], str] | None:
    """Split `ARG, ARG) = RET ...` into the arguments and what follows the closing
    parenthesis; None when the text is not balanced or has no closing parenthesis."""
    split = _split(text, until_close=True)
    if split is None or split[1] < 0:
        return None
    parts, end = split
    args = [p.strip() for p in parts]
    if args == [""]:
        args = []
    return args, text[end + 1:]


def split_args(text: str) -> list[str] | None:
    """Split a complete argument list (no closing parenthesis) at its top-level commas."""
    split = _split(text, until_close=False)
    if split is None:
        return None
    args = [p.strip() for p in split[0]]
    return [] if args == [""] else args


def annotated(text: str) -> tuple[str, str | None, str] | None:
    """`3<TCP:[...]> rest` → ("3", "TCP:[...]", " rest"); a value without annotation →
    (value, None, rest) up to the first space; None when an annotation does not close."""
    i = 0
    while i < len(text) and not text[i].isspace() and text[i] != "<":
        i += 1
    if i < len(text) and text[i] == "<" and _annotation_starts(text, i):
        end = _annotation_end(text, i)
        if end is None:
            return None
        return text[:i], text[i + 1:end - 1], text[end:]
    return text[:i], None, text[i:]


def descriptor(arg: str) -> Descriptor | None:
    """`3<TCP:[...]>` or `AT_FDCWD</root>` as a Descriptor; None for anything else."""
    m = DESCRIPTOR.match(arg)
    if not m or _annotation_end(arg, len(m["fd"])) != len(arg):
        return None
    fd = m["fd"]
    return Descriptor(int(fd) if fd != "AT_FDCWD" else fd, m["what"])


def socket_id(fd: int, what: str) -> SocketId | None:
    """The SocketId of descriptor `fd` annotated `what`; None when it is not a socket."""
    m = INET_SOCKET.match(what)
    if m:
        sock = SocketId(fd=fd, proto="tcp" if m["proto"] == "TCP" else "udp",
                        family="inet6" if m["v6"] else "inet")
        local, arrow, remote = m["body"].partition("->")
        if local.isdigit() and not arrow:  # only the inode: not bound, or not found by sock_diag
            return sock
        here, there = _endpoint(local), _endpoint(remote) if arrow else None
        if here is None or (arrow and there is None):
            return sock
        return SocketId(fd=fd, proto=sock.proto, family=sock.family, saddr=here[0],
                        sport=here[1], daddr=there[0] if there else None,
                        dport=there[1] if there else None)
    if what.startswith(NOT_SOCKETS):
        return None
    if OTHER_SOCKET.match(what):
        return SocketId(fd=fd)
    return None


def sockaddr(arg: str) -> str | None:
    """A decoded `struct sockaddr` as "10.0.1.10:7777", "[fd00::10]:7777" or a UNIX path."""
    if not arg.startswith("{sa_family="):
        return None
    port = SIN_PORT.search(arg)
    if arg.startswith("{sa_family=AF_INET,") and port:
        v4 = SIN_ADDR.search(arg)
        return f"{v4[1]}:{port[1]}" if v4 else None
    if arg.startswith("{sa_family=AF_INET6,") and port:
        v6 = SIN6_ADDR.search(arg)
        return f"[{v6[1]}]:{port[1]}" if v6 else None
    if arg.startswith("{sa_family=AF_UNIX"):
        path = SUN_PATH.search(arg)
        if path:
            abstract = path[1].startswith("@")
            text = unquote(path[1].removeprefix("@"))
            return None if text is None else ("@" if abstract else "") + text
    return None


def scalar(arg: str) -> Any:
    """The value of a scalar argument: int, symbolic constant or flags (str), a pointer
    (hex str without 0x, as the ftrace parser keeps addresses), a socket address
    ("ip:port"), an int in brackets (what a pointer to int points to); None for
    NULL and for anything that is not a scalar (buffers, structures, arrays)."""
    d = descriptor(arg)
    if d is not None:
        return d.fd
    if INTEGER.match(arg):
        return int(arg)
    if HEX.match(arg):
        return arg[2:]
    if arg == "NULL":
        return None
    if SYMBOLS.match(arg):
        return arg
    if boxed := BOXED_INTEGER.match(arg):
        return int(boxed[1])
    return sockaddr(arg)


def unquote(arg: str) -> str | None:
    """A string argument `"..."` (maybe truncated: `"..."...`) decoded; None if not one."""
    text = arg.removesuffix("...")
    if len(text) < 2 or text[0] != '"' or text[-1] != '"' or _string_end(text, 0) != len(text):
        return None
    raw = text[1:-1].encode("utf-8", "surrogateescape")

    def one(m: re.Match[bytes]) -> bytes:
        code = m[1]
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return SIMPLE_ESCAPES.get(code, code)

    return ESCAPE.sub(one, raw).decode("utf-8", "replace")


def named(arg: str) -> tuple[str, str] | None:
    """`flags=CLONE_VM|SIGCHLD` → ("flags", "CLONE_VM|SIGCHLD") (clone prints its args so)."""
    m = NAMED.match(arg)
    return (m["key"], m["value"]) if m else None


# --- scanning -----------------------------------------------------------------


def _split(text: str, *, until_close: bool) -> tuple[list[str], int] | None:
    """Top-level comma split; stops at an unmatched ')' (its index) when `until_close`,
    else runs to the end (index -1). None when unbalanced."""
    parts: list[str] = []
    stack: list[str] = []
    start = i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = _string_end(text, i)
            if end is None:
                return None
            i = end
            continue
        if c == "<" and _annotation_starts(text, i):
            end = _annotation_end(text, i)
            if end is None:
                return None
            i = end
            continue
        if c == "/" and text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                return None
            i = close + 2
            continue
        if c in CLOSERS:
            stack.append(CLOSERS[c])
        elif c in ")]}":
            if stack:
                if stack.pop() != c:
                    return None
            elif c == ")" and until_close:
                parts.append(text[start:i])
                return parts, i
            else:
                return None
        elif c == "," and not stack:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if stack:
        return None
    parts.append(text[start:])
    return parts, -1


def _string_end(text: str, start: int) -> int | None:
    """The index just after the string literal opening at `start`."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return None


def _annotation_starts(text: str, i: int) -> bool:
    """Is the `<` at i the start of a -y annotation (right after a descriptor)?"""
    j = i
    while j > 0 and text[j - 1].isdigit():
        j -= 1
    if j < i:  # digits before it, and not inside a longer word
        return j == 0 or not (text[j - 1].isalnum() or text[j - 1] == "_")
    return text.endswith("AT_FDCWD", 0, i)


def _annotation_end(text: str, start: int) -> int | None:
    """The index just after the `>` closing the annotation opening at `start`."""
    depth = brackets = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == '"':
            end = _string_end(text, i)
            if end is None:
                return None
            i = end
            continue
        if c == "[":
            brackets += 1
        elif c == "]":
            brackets = max(brackets - 1, 0)
        elif brackets == 0 and c == "<":
            depth += 1
        elif brackets == 0 and c == ">":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _endpoint(text: str) -> tuple[str, int] | None:
    m = ENDPOINT.match(text)
    if not m:
        return None
    address = m["v4"] or m["v6"]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address, int(m["port"])  # as strace prints it (inet_ntop's canonical form)
