"""Parse the output of `strace -f -ttt -T -yy` into events of the one schema.

A line is a thread id, CLOCK_REALTIME in seconds, then a call, its return
value and the time spent in it; or a signal, or a process's end (long lines
folded here):

    135   1795614153.159583 accept(3<TCP:[10.0.1.10:7777]>, {sa_family=AF_INET, ...},
                [128->16]) = 4<TCP:[10.0.1.10:7777->10.0.1.1:41018]> <0.191712>
    163   1795614155.741639 connect(3<TCP:[8483]>, {...}, 16) = -1 ECONNREFUSED
                (Connection refused) <0.002268>
    201   1795614179.391236 accept(3<TCPv6:[[fd00:0:0:1::10]:7783]>,  <unfinished ...>
    201   1795614180.441239 <... accept resumed>{sa_family=AF_INET6, ...}, [128 => 28])
                = 4<TCPv6:[...]> <1.048851>
    200   1795614180.390242 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, ...} ---
    202   1795614180.388354 +++ exited with 0 +++

Each call becomes a SYSCALL_ENTRY at its line's time and a SYSCALL_EXIT at
that time plus its duration (-T), with `ret`. A call cut in two by another
thread's line enters at its `<unfinished ...>` line and exits at its
`<... NAME resumed>` line; both events carry the whole argument list. A
call that does not return (exit_group: `= ?`, or one cut off by the end of
the trace) has no exit. Signal and exit lines are not calls: skipped, not
counted as unparsed. Anything else is counted and sampled, never dropped
silently.

The fields of an event:
- ts: the guest's CLOCK_MONOTONIC in ns, from -ttt's CLOCK_REALTIME and the
  guest's clocks read at collection (clock.py); microsecond resolution.
- tid: the thread id strace prints. pid: the thread group id, which strace
  does not print: a thread's creator's pid when clone() made it with
  CLONE_THREAD, else its own tid (every process of the wrapped command).
- comm: not printed either; followed as the kernel sets it: the base name of
  a successful execve (its exit event already has the new name), a
  prctl(PR_SET_NAME), inherited across clone/fork. Before the trace shows
  any, it is `comm`: the process strace starts is named "strace" until it
  executes the command's shell.
- name: the kernel's name of the call (calls.KERNEL_NAMES: stat → newstat ...).
- args: the call's scalar arguments by the kernel's parameter names ("fd",
  "backlog", "umyaddr": "10.0.1.10:7777" ...; calls.PARAMS), or only the
  first descriptor as "fd" for other calls; "errno": the error's name when
  the call failed.
- ret: the return value, -errno when it failed (ECONNREFUSED → -111).
- sock: the call's first socket argument, as -yy shows it: fd, proto,
  family, and the 4-tuple with saddr/sport the local side and daddr/dport
  the remote one; none for other descriptors (pipes, files). The exit of
  socket(), accept() and accept4() concerns the new socket they return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lab.events import Event, Kind, SocketId
from lab.tracers.result import ParseResult
from lab.tracers.strace.calls import (
    CLONE,
    EXEC,
    NEW_SOCKET,
    OUTPUTS,
    PARAMS,
    STRING_PARAMS,
    comm_of,
    errno_number,
    kernel_name,
)
from lab.tracers.strace.clock import ClockSample, realtime_to_monotonic, seconds_to_ns
from lab.tracers.strace.syntax import (
    annotated,
    descriptor,
    named,
    scalar,
    sockaddr,
    socket_id,
    split_args,
    split_call,
    unquote,
)

LINE = re.compile(r"^(?P<tid>\d+)\s+(?P<sec>\d+\.\d+) (?P<body>.*)$")
SIGNAL = re.compile(r"^--- .* ---$")
PROCESS_END = re.compile(r"^\+\+\+ (?:exited with -?\d+|killed by \w+(?: \(core dumped\))?|"
                         r"superseded by execve in pid \d+) \+\+\+$")
CALL = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)\((?P<rest>.*)$")
UNFINISHED = re.compile(r"\s*<(?:unfinished|detached) \.\.\.>$")
RESUMED = re.compile(r"^<\.\.\. (?P<name>[a-z_][a-z0-9_]*) resumed>(?P<rest>.*)$")
# A thread that died inside a call: `read(0,  <unfinished ...>) = ?`, `<... read resumed>
# <unfinished ...>) = ?`.
DIED_IN_CALL = re.compile(r"\s*<unfinished \.\.\.>(?=\)\s*= \?$)")
# How long it took; `<unavailable>` when strace could not read the registers as it ended.
DURATION = re.compile(r"\s+<(?:(?P<dur>\d+\.\d+)|unavailable)>$")
RETURN = re.compile(r"^\s*= (?P<ret>.*)$")
FAILURE = re.compile(r"^(?:-1|\?) (?P<errno>E[A-Z0-9_]+) \(.*\)$")
THREAD = re.compile(r"\bCLONE_THREAD\b")
CLONE_FLAGS = re.compile(r"\bflags=(?P<flags>[A-Z0-9_|]+)")
FIRST_COMM = "strace"
MSG_NAME = re.compile(r"\bmsg_name=(\{sa_family=[^}]*\})")


@dataclass
class _Call:
    """One system call, put together from one line or an unfinished/resumed pair."""

    tid: int
    name: str  # as strace prints it
    entry_ts: int  # CLOCK_REALTIME, ns
    text: str  # what an unfinished call printed of its arguments, to join with the rest
    exit_ts: int | None = None  # None: it did not return in the trace
    ret: int | None = None
    ret_what: str | None = None  # -yy annotation of a returned descriptor
    errno: str | None = None
    args: list[str] = field(default_factory=list)


@dataclass
class _Task:
    pid: int
    comm: str


def parse_strace(lines: Iterable[str], *, node: str, kernel: str, clocks: ClockSample,
                 comm: str = FIRST_COMM) -> ParseResult:
    """The events of one trace file; `clocks` is the guest's clocks sample (clock.py)."""
    result = ParseResult()
    moments = _calls(lines, result)
    children = _children(moments)
    tasks: dict[int, _Task] = {}

    def task(tid: int) -> _Task:
        """The task of a thread; met for the first time, what it inherits from its maker."""
        if tid not in tasks:
            tasks[tid] = new = _Task(tid, comm)
            parent, thread = children.get(tid, (None, False))
            if parent is not None:
                maker = task(parent)
                new.pid, new.comm = (maker.pid if thread else tid), maker.comm
        return tasks[tid]

    for entering, call in moments:
        t = task(call.tid)
        args, sock = _arguments(call, exiting=not entering)
        base: dict[str, Any] = dict(node=node, kernel=kernel, tracer="strace", pid=t.pid,
                                    tid=call.tid, name=kernel_name(call.name), args=args)
        if entering:
            result.events.append(Event(**base, comm=t.comm, kind=Kind.SYSCALL_ENTRY,
                                       ts=realtime_to_monotonic(call.entry_ts, clocks),
                                       sock=sock))
            if call.exit_ts is None:
                result.unfinished += 1
            continue
        assert call.exit_ts is not None
        _follow(call, args, t, tasks)
        if call.name in NEW_SOCKET and call.ret is not None and call.ret >= 0 \
                and call.ret_what is not None:
            sock = socket_id(call.ret, call.ret_what) or sock
        result.events.append(Event(**base, comm=t.comm, kind=Kind.SYSCALL_EXIT,
                                   ts=realtime_to_monotonic(call.exit_ts, clocks),
                                   ret=call.ret, sock=sock))
    return result


def _calls(lines: Iterable[str], result: ParseResult) -> list[tuple[bool, _Call]]:
    """Every call's entry and exit moments, in the order of the trace."""
    moments: list[tuple[bool, _Call]] = []
    pending: dict[int, _Call] = {}  # tid → its unfinished call

    unparsed = result.not_understood

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        m = LINE.match(line)
        if not m:
            unparsed(line)
            continue
        tid, ts, body = int(m["tid"]), seconds_to_ns(m["sec"]), m["body"]
        if SIGNAL.match(body) or PROCESS_END.match(body):
            continue
        if r := RESUMED.match(body):
            call = pending.pop(tid, None)
            if call is None or call.name != r["name"]:
                unparsed(line)
                continue
            rest = DIED_IN_CALL.sub("", r["rest"])
            if not _finish(call, call.text + rest, ts, resumed=True):
                unparsed(line)
                continue
            if call.exit_ts is not None:
                moments.append((False, call))
            continue
        c = CALL.match(body)
        if not c:
            unparsed(line)
            continue
        if u := UNFINISHED.search(c["rest"]):
            text = c["rest"][:u.start()].rstrip()
            call = _Call(tid, c["name"], ts, text + (" " if text.endswith(",") else ""))
            call.args = split_args(text.rstrip(",")) or []
            pending[tid] = call
            moments.append((True, call))
            continue
        call = _Call(tid, c["name"], ts, "")
        if not _finish(call, DIED_IN_CALL.sub("", c["rest"]), ts, resumed=False):
            unparsed(line)
            continue
        moments.append((True, call))
        if call.exit_ts is not None:
            moments.append((False, call))
    return moments


def _finish(call: _Call, text: str, ts: int, *, resumed: bool) -> bool:
    """Complete `call` from `ARGS) = RET <DUR>`; False when that does not parse."""
    split = split_call(text)
    if split is None:
        return False
    args, after = split
    took = None
    if duration := DURATION.search(after):
        after, took = after[:duration.start()], duration["dur"]
    r = RETURN.match(after)
    if not r:
        return False
    ret = r["ret"].strip()
    call.args = args
    if failure := FAILURE.match(ret):
        call.errno = failure["errno"]
        code = errno_number(call.errno)
        call.ret = -code if code is not None else -1
    elif ret == "?":
        return True  # it never returned (exit_group, or its thread ended in it)
    else:
        value = annotated(ret)
        if value is None:
            return False
        number, what, _ = value  # what may follow: " (flags O_RDWR)", " (Timeout)"
        try:
            call.ret = int(number, 0)
        except ValueError:
            return False
        call.ret_what = what
    if resumed or took is None:
        call.exit_ts = ts  # the resumed line is printed when the call returned
    else:
        call.exit_ts = call.entry_ts + seconds_to_ns(took)
    return True


def _children(moments: list[tuple[bool, _Call]]) -> dict[int, tuple[int, bool]]:
    """Each new thread or process → (the thread that made it, made as a thread?)."""
    children: dict[int, tuple[int, bool]] = {}
    for entering, call in moments:
        if not entering and call.name in CLONE and call.ret is not None and call.ret > 0:
            flags = CLONE_FLAGS.search(" ".join(call.args))
            thread = bool(flags and THREAD.search(flags["flags"]))
            children.setdefault(call.ret, (call.tid, thread))
    return children


def _follow(call: _Call, args: dict[str, Any], task: _Task, tasks: dict[int, _Task]) -> None:
    """What a returning call changes in its task: its name."""
    if call.ret != 0:
        return
    if call.name in EXEC and isinstance(args.get("filename"), str) and args["filename"]:
        task.comm = comm_of(args["filename"])
        if task.pid != call.tid and task.pid in tasks:  # exec in a thread: it leads now
            tasks[task.pid].comm = task.comm
    elif call.name == "prctl" and args.get("option") == "PR_SET_NAME" and len(call.args) > 1:
        name = unquote(call.args[1])
        if name is not None:
            task.comm = name[:15]


def _arguments(call: _Call, *, exiting: bool) -> tuple[dict[str, Any], SocketId | None]:
    """The kept arguments (by kernel names) and the socket of the call; what the kernel
    fills in, and the error, only at the exit."""
    args: dict[str, Any] = {}
    sock: SocketId | None = None
    params = PARAMS.get(call.name)
    hidden = frozenset() if exiting else OUTPUTS.get(call.name, frozenset())
    for i, text in enumerate(call.args):
        d = descriptor(text)
        if d is not None and sock is None:
            sock = d.socket()
        if params is None:
            if kv := named(text):
                if kv[0] == "flags":
                    args["flags"] = scalar(kv[1])
            elif d is not None and isinstance(d.fd, int) and "fd" not in args:
                args["fd"] = d.fd
            continue
        if i >= len(params):
            break
        param = params[i]
        if param == "msg":  # sendmsg's and recvmsg's peer is msg_name's address: "addr"
            peer = MSG_NAME.search(text)
            if peer and (address := sockaddr(peer[1])) and "addr" not in hidden:
                args["addr"] = address
            continue
        value: Any = unquote(text) if param in STRING_PARAMS else scalar(text)
        if value is not None and param not in hidden:
            args[param] = value
    if call.name == "clone3" and call.args and (flags := CLONE_FLAGS.search(call.args[0])):
        args["flags"] = flags["flags"]
    if call.errno is not None and exiting:
        args["errno"] = call.errno
    return args, sock
