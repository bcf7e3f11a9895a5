"""Single values of playbooks: names, durations, paths, commands, regular expressions.

Each type validates one value with a friendly message and a hint (FieldError)
and carries what the editor JSON Schema needs. The models built from them are
in model.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, WithJsonSchema

from lab.events import Kind
from lab.field_errors import FieldError, matching
from lab.text import closest, shown
from lab.tracers.syscalls import KERNEL_SYSCALLS, OTHER_NAME, STRACE_CLASSES, STRACE_SYSCALLS

PLAYBOOK_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
HANDLE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
# A kprobe's event is named after its function (`NAME__return` for its return), and the
# kernel takes C identifiers of up to 63 characters only: a compiler's part of a
# function (`foo.cold`, `foo.isra.0`) cannot be probed by name.
FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,54}$"
SYSCALL_PATTERN = r"^[a-z_][a-z0-9_]{0,63}$"
STRACE_SYSCALL_PATTERN = r"^[%!]?[a-z_][a-z0-9_]{0,63}$"  # strace's -e trace= (%network…)
EVENT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:/]{0,127}$"  # functions, syscalls, tcp:tcp_probe
COMM_LENGTH = 15  # TASK_COMM_LEN - 1: the kernel truncates longer process names

DEFAULT_TIMEOUT = 30.0  # seconds, for every step that waits
DEFAULT_STOP_TIMEOUT = 5.0  # SIGTERM, then SIGKILL after this long
TRACE_START_TIMEOUT = 60.0  # trace: {start: ...}, as lab.tracers.ftrace.START_TIMEOUT
TRACE_STOP_TIMEOUT = 300.0  # trace: {stop: ...}, as lab.tracers.ftrace.STOP_TIMEOUT
MAX_TIMEOUT = 3600
MAX_SLEEP = 300

# The actions a step can do, in the order the reference lists them.
ACTIONS = ("run", "wait", "stop", "wait_port", "push", "pull", "deploy", "trace", "sleep")
CHECKS = ("present", "absent", "in_order", "count")  # what an expectation can check
# Tracers that `trace:` steps start and stop on nodes. strace is not one of
# them: it wraps one command (`strace: true` on a run step).
STEP_TRACERS = ("ftrace",)
EVENT_TRACERS = ("ftrace", "strace")  # the `tracer` field of lab.events.Event
KIND_NAMES = tuple(k.value for k in Kind)


def _choice(values: Sequence[str], what: str, *, hint: str | None = None) -> PlainValidator:
    """One of `values`, with a 'did you mean' hint (pair it with an enum schema)."""
    def check(value: Any) -> str:
        if isinstance(value, str) and value in values:
            return value
        if not isinstance(value, str):
            raise FieldError(f"expected the name of a {what}, got {value!r}",
                             hint=f"known: {', '.join(values)}")
        close = closest(value, list(values))
        known = f"known: {', '.join(values)}"
        extra = f"; {hint}" if hint else ""
        raise FieldError(f"unknown {what} {value!r}",
                         hint=(f"did you mean {close!r}? " if close else "") + known + extra)
    return PlainValidator(check)


def _enum(values: Sequence[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(values)})


PlaybookName = Annotated[str, matching(
    PLAYBOOK_NAME_PATTERN, "playbook name",
    "1-32 characters: a-z, 0-9 and '-', starting with a letter"),
    Field(json_schema_extra={"pattern": PLAYBOOK_NAME_PATTERN})]
Handle = Annotated[str, matching(
    HANDLE_PATTERN, "handle", "1-32 characters: a-z, 0-9, '_' and '-', starting with a letter"),
    Field(json_schema_extra={"pattern": HANDLE_PATTERN})]
Function = Annotated[str, matching(
    FUNCTION_PATTERN, "kernel function name",
    "letters, digits and '_', e.g. tcp_v4_connect (a part such as foo.cold has no probe)"),
    Field(json_schema_extra={"pattern": FUNCTION_PATTERN})]


def _known(names: frozenset[str]) -> Callable[[str], str]:
    """A check that a system call (or strace class) is one of `names`: a misspelt one
    would trace nothing."""
    def check(value: str) -> str:
        name = value.removeprefix("!")
        if name.startswith("%"):
            if name not in STRACE_CLASSES:
                close = closest(name, STRACE_CLASSES)
                raise FieldError(f"{shown(name)} is not a class of system calls strace knows",
                                 hint=f"did you mean {close!r}?" if close else
                                 f"known: {', '.join(sorted(STRACE_CLASSES))}")
        elif (other := OTHER_NAME.get(name, "")) in names:
            tracer = "strace" if names is STRACE_SYSCALLS else "ftrace"
            raise FieldError(f"{tracer} names system call {name!r} {other!r}",
                             hint=f"write {other}")
        elif name not in names:
            bare = name.removeprefix("sys_").removeprefix("__sys_")
            close = bare if bare in names else closest(name, names, cutoff=0.75)
            raise FieldError(f"{shown(name)} is not a system call of x86-64 Linux",
                             hint=f"did you mean {close!r}?" if close else
                             "e.g. accept4, without the sys_ prefix")
        return value
    return check


Syscall = Annotated[str, matching(
    SYSCALL_PATTERN, "system call name", "e.g. accept4, without the sys_ prefix"),
    AfterValidator(_known(KERNEL_SYSCALLS)),
    Field(json_schema_extra={"pattern": SYSCALL_PATTERN})]
StraceSyscall = Annotated[str, matching(
    STRACE_SYSCALL_PATTERN, "strace syscall filter",
    "a system call name (sendto) or a class (%network)"),
    AfterValidator(_known(STRACE_SYSCALLS)),
    Field(json_schema_extra={"pattern": STRACE_SYSCALL_PATTERN})]
EventName = Annotated[str, matching(
    EVENT_NAME_PATTERN, "event name",
    "a function (__sys_bind), a system call (bind) or a tracepoint"),
    Field(json_schema_extra={"pattern": EVENT_NAME_PATTERN})]


def _seconds(most: int) -> AfterValidator:
    """A duration in (0, most]; messages without pydantic's float noise (3600.0)."""
    def check(value: float) -> float:
        if value <= 0:
            raise FieldError(f"must be more than 0 seconds, got {value:g}")
        if value > most:
            raise FieldError(f"must be at most {most} seconds, got {value:g}")
        return value
    return AfterValidator(check)


Timeout = Annotated[float, Field(strict=True), _seconds(MAX_TIMEOUT), Field(
    json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_TIMEOUT})]
Seconds = Annotated[float, Field(strict=True), _seconds(MAX_SLEEP), Field(
    json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_SLEEP})]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
StepTracer = Annotated[str, _choice(
    STEP_TRACERS, "tracer",
    hint="strace wraps one command: set strace: true on its run step"), _enum(STEP_TRACERS)]
EventTracer = Annotated[str, _choice(EVENT_TRACERS, "tracer"), _enum(EVENT_TRACERS)]
EventKind = Annotated[str, _choice((*KIND_NAMES, "any"), "event kind"),
                      _enum((*KIND_NAMES, "any"))]
Proto = Annotated[str, _choice(("tcp", "udp"), "protocol"), _enum(("tcp", "udp"))]


def _nonblank(value: str) -> str:
    if not value.strip():
        raise FieldError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_nonblank), Field(json_schema_extra={"minLength": 1})]


# ftrace's filter matches `comm == "NAME"` as a glob, in a quoted string.
COMM_SPECIAL = frozenset('"\\*?[]')


def comm_problem(name: str) -> str | None:
    """Why ftrace cannot filter on the process name `name`, if it cannot."""
    if special := "".join(sorted(set(name) & COMM_SPECIAL)):
        return (f"process name {name!r} has {special}, which ftrace's filter would read "
                "as a pattern or a quote")
    return None


def _comm(value: str) -> str:
    if not value or "\n" in value:
        raise FieldError(f"{value!r} is not a process name", hint="e.g. replyhi")
    if (problem := comm_problem(value)) is not None:
        raise FieldError(problem, hint="name the process without \" \\ * ? [ ]")
    if len(value) > COMM_LENGTH:
        raise FieldError(f"{value!r} is longer than {COMM_LENGTH} characters",
                         hint=f"the kernel truncates process names: use {value[:COMM_LENGTH]!r}")
    return value


Comm = Annotated[str, AfterValidator(_comm), Field(max_length=COMM_LENGTH)]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise FieldError(f"invalid regular expression: {exc.msg}{where}",
                         hint="Python syntax, searched for anywhere in the output "
                              "(re.search, ^ and $ match at each line)") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]  # Python's syntax: no ECMA "format" for editors


def _node_path(value: str) -> str:
    if not value.startswith("/"):
        raise FieldError(f"{value!r} is not an absolute path",
                         hint="paths on a node start with /, e.g. /root/data")
    return value


NodePath = Annotated[str, AfterValidator(_node_path)]


def _results_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise FieldError(f"{value!r} is not a relative path inside the run's directory",
                         hint="e.g. server/capture.txt: files pulled land in the run's "
                              "results, next to its traces")
    return value


ResultsPath = Annotated[str, AfterValidator(_results_path)]


def _command(value: Any) -> Any:
    """`run:` as a shell line, or as a list of words (quoted for the shell by load.py)."""
    if isinstance(value, str):
        if not value.strip():
            raise FieldError("the command is empty", hint="e.g. run: uname -r")
        return value
    if isinstance(value, list):
        if not value:
            raise FieldError("the command is empty", hint="e.g. run: [uname, -r]")
        for word in value:
            if isinstance(word, bool) or not isinstance(word, str | int | float):
                raise FieldError(f"a word of the command is {json.dumps(word, default=str)}",
                                 hint="each word is a string or a number; quote it")
        return [str(w) for w in value]
    raise FieldError(f"expected a command line or a list of words, got {value!r}",
                     hint="e.g. run: uname -r")


Command = Annotated[str | list[str], PlainValidator(
    _command, json_schema_input_type=str | list[str | int | float])]


def _exit_status(value: Any) -> Any:
    if value == "any" or (isinstance(value, int) and not isinstance(value, bool)
                          and 0 <= value <= 255):
        return value
    raise FieldError(f"expected an exit status 0-255 or any, got {value!r}",
                     hint="any accepts every exit status")


ExitStatus = Annotated[int | Literal["any"], PlainValidator(
    _exit_status, json_schema_input_type=Annotated[int, Field(ge=0, le=255)] | Literal["any"])]


def _node_list(value: Any) -> Any:
    if value == "all" or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise FieldError(f"expected a list of node names or all, got {value!r}",
                     hint="nodes: [client, server] or nodes: all; for one node, node: NAME")


NodeList = Annotated[Literal["all"] | list[str], PlainValidator(
    _node_list, json_schema_input_type=Literal["all"] | list[str])]


def shorthand(key: str, kinds: tuple[type, ...], example: str) -> Callable[[Any], Any]:
    """`deploy: hello` → `{program: hello}` and the like; null stays null."""
    def expand(value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, kinds) and not isinstance(value, bool):
            return {key: value}
        raise FieldError(f"expected a {key} or a mapping, got {value!r}", hint=example)
    return expand


def not_empty(value: Any) -> Any:
    # Not min_length: pydantic would also call a list "empty" when its items are invalid.
    if isinstance(value, list | dict) and not value:
        raise FieldError("must not be empty")
    return value


NOT_EMPTY = (BeforeValidator(not_empty), Field(json_schema_extra={"minItems": 1}))
