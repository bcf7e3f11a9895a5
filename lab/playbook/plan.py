"""A playbook as it will run: rendered, checked, nothing left to default.

`load_playbook` (load.py) builds it from a file and a resolved topology. The
runner reads only this: each step names its nodes and carries one action;
expectations are evaluated by expect.py on the events of the run.
`Playbook.to_dict()` is JSON-able (results metadata, golden tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from lab.events import Kind
from lab.tracers.ftrace.probes import FtraceOptions


@dataclass(frozen=True)
class StraceSettings:
    syscalls: tuple[str, ...] | None  # strace -e trace=...; None: every system call


def output_matches(pattern: str, output: str) -> bool:
    """How expect_stdout and expect_stderr are checked: searched anywhere, multi-line."""
    return re.search(pattern, output, re.MULTILINE) is not None


# --- actions -------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """Run `command` with `sh -c` on each node of the step."""

    kind: ClassVar[str] = "run"
    command: str
    timeout: float | None  # None only for a background command: no deadline of its own
    expect_exit: int | None  # None: any exit status
    expect_stdout: str | None  # regular expression: see output_matches()
    expect_stderr: str | None
    background: str | None  # a handle: start it and go on
    strace: bool  # wrap it in strace -f -ttt -yy


@dataclass(frozen=True)
class Wait:
    """Wait for a background command to end, then check it like a run step."""

    kind: ClassVar[str] = "wait"
    handle: str
    timeout: float
    expect_exit: int | None
    expect_stdout: str | None
    expect_stderr: str | None


@dataclass(frozen=True)
class Stop:
    """Send SIGTERM to a background command; SIGKILL after `timeout`."""

    kind: ClassVar[str] = "stop"
    handle: str
    timeout: float


@dataclass(frozen=True)
class WaitPort:
    """Wait until something listens on `port` (TCP) or has it bound (UDP)."""

    kind: ClassVar[str] = "wait_port"
    port: int
    proto: Literal["tcp", "udp"]
    timeout: float


@dataclass(frozen=True)
class Push:
    kind: ClassVar[str] = "push"
    src: Path  # host file (relative paths resolved against the playbook's directory)
    dst: str  # absolute path on the node
    timeout: float


@dataclass(frozen=True)
class Pull:
    kind: ClassVar[str] = "pull"
    src: str  # absolute path on the node
    dst: str  # relative path inside the run's results directory
    timeout: float


@dataclass(frozen=True)
class Deploy:
    """Install a program on each node: shipped by socklab, or the user's own."""

    kind: ClassVar[str] = "deploy"
    program: str  # its name (the file's name without .c)
    source: Path | None  # None: shipped with socklab; else a .c file or an executable
    dest: str  # path on the node
    timeout: float

    @property
    def to_compile(self) -> str | Path | None:
        """What lab.programs.build_program compiles for it (None: copied as it is)."""
        if self.source is None:
            return self.program
        return self.source if self.source.suffix == ".c" else None


@dataclass(frozen=True)
class TraceStart:
    kind: ClassVar[str] = "trace_start"
    tracer: str  # "ftrace"
    settings: FtraceOptions
    timeout: float  # for the whole start on a node


@dataclass(frozen=True)
class TraceStop:
    """Stop a tracer; its trace is then collected from the node."""

    kind: ClassVar[str] = "trace_stop"
    tracer: str
    timeout: float  # for the whole stop on a node: stop, collect, clean up


@dataclass(frozen=True)
class Sleep:
    kind: ClassVar[str] = "sleep"
    seconds: float


Action = Run | Wait | Stop | WaitPort | Push | Pull | Deploy | TraceStart | TraceStop | Sleep


@dataclass(frozen=True)
class Step:
    index: int  # 0-based position under steps:
    name: str  # as written, or made up from the action
    line: int  # in the playbook file
    nodes: tuple[str, ...]  # where it runs (empty for wait, stop and sleep)
    action: Action


# --- expectations ----------------------------------------------------------------

@dataclass(frozen=True)
class Present:
    kind: ClassVar[str] = "present"
    names: tuple[str, ...]


@dataclass(frozen=True)
class Absent:
    kind: ClassVar[str] = "absent"
    names: tuple[str, ...]


@dataclass(frozen=True)
class InOrder:
    kind: ClassVar[str] = "in_order"
    names: tuple[str, ...]


@dataclass(frozen=True)
class Bound:
    name: str
    min: int
    max: int | None  # None: no upper bound


@dataclass(frozen=True)
class Count:
    kind: ClassVar[str] = "count"
    bounds: tuple[Bound, ...]


Check = Present | Absent | InOrder | Count

# What `kind:` selects when left out: one event per call.
DEFAULT_KINDS = tuple(k for k in Kind if k not in (Kind.FUNC_RETURN, Kind.SYSCALL_EXIT))


@dataclass(frozen=True)
class Expectation:
    index: int
    name: str
    line: int
    nodes: tuple[str, ...]  # checked on each node on its own
    comm: str | None
    kinds: tuple[Kind, ...]
    tracer: str | None
    check: Check


# --- the whole -------------------------------------------------------------------

@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    path: Path
    lab: str  # the lab it was rendered for
    topology: str
    vars: dict[str, Any]  # vars: with --set applied (those vars: declares or templates use)
    ftrace: FtraceOptions  # the playbook-wide settings (trace steps carry their own)
    strace: StraceSettings
    steps: tuple[Step, ...]
    expect: tuple[Expectation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "path": str(self.path),
            "lab": self.lab, "topology": self.topology, "vars": self.vars,
            "ftrace": _plain(self.ftrace), "strace": _plain(self.strace),
            "steps": [{"name": s.name, "line": s.line, "nodes": list(s.nodes),
                       "action": s.action.kind, **_plain(s.action)} for s in self.steps],
            "expect": [{"name": e.name, "line": e.line, "nodes": list(e.nodes), "comm": e.comm,
                        "kinds": [k.value for k in e.kinds], "tracer": e.tracer,
                        "check": e.check.kind, **_plain(e.check)} for e in self.expect],
        }


def _plain(obj: Any) -> dict[str, Any]:
    return {f.name: _value(getattr(obj, f.name)) for f in fields(obj)}


def _value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_value(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _plain(value)
    return value


# --- default names -----------------------------------------------------------------

def _on(nodes: tuple[str, ...]) -> str:
    return ", ".join(nodes)


def describe_step(action: Action, nodes: tuple[str, ...]) -> str:
    """A step's name when the file gives none."""
    match action:
        case Run(background=str(handle)):
            return f"start {handle} on {_on(nodes)}: {action.command}"
        case Run():
            return f"run on {_on(nodes)}: {action.command}"
        case Wait() | Stop():
            return f"{'wait for' if isinstance(action, Wait) else 'stop'} {action.handle}"
        case WaitPort():
            return f"wait for {action.proto} port {action.port} on {_on(nodes)}"
        case Push():
            return f"push {action.src} to {_on(nodes)}:{action.dst}"
        case Pull():
            return f"pull {_on(nodes)}:{action.src} to {action.dst}"
        case Deploy():
            return f"deploy {action.program} to {_on(nodes)}"
        case TraceStart() | TraceStop():
            verb = "start" if isinstance(action, TraceStart) else "stop"
            return f"{verb} {action.tracer} on {_on(nodes)}"
        case Sleep():
            return f"sleep {action.seconds:g} s"


def describe_check(check: Check, nodes: tuple[str, ...], comm: str | None) -> str:
    """An expectation's name when the file gives none."""
    who = _on(nodes) + (f" ({comm})" if comm else "")
    match check:
        case Present() | Absent() | InOrder():
            words = {"present": "has", "absent": "has no", "in_order": "has in order"}
            return f"{who} {words[check.kind]} {', '.join(check.names)}"
        case Count():
            return f"{who} counts " + ", ".join(
                f"{b.name} {_bounds(b)}" for b in check.bounds)


def _bounds(b: Bound) -> str:
    if b.max == b.min:
        return f"= {b.min}"
    if b.max is None:
        return f">= {b.min}"
    return f"{b.min}..{b.max}" if b.min else f"<= {b.max}"
