"""What a user writes in a playbook file, as pydantic models.

These models check shape and single values only (values.py) (types, ranges, patterns,
regular expressions, path forms). What depends on the whole file or on the
topology — which action a step does, node names, handles, tracer state,
program files — is checked by resolve.py, which also builds the resolved
`Playbook` (plan.py). Field descriptions feed the editor JSON Schema
(schema.py), so write them for users.

A step is one flat mapping: its action is whichever of ACTIONS it holds
(exactly one), the other keys are options of that action. A flat model keeps
error messages simple (no union noise) and lets every option be named in a
"did you mean" hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lab.field_errors import FieldError
from lab.playbook.values import (
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TIMEOUT,
    MAX_SLEEP,
    NOT_EMPTY,
    TRACE_START_TIMEOUT,
    TRACE_STOP_TIMEOUT,
    Comm,
    Command,
    EventKind,
    EventName,
    EventTracer,
    ExitStatus,
    Function,
    Handle,
    NodeList,
    NodePath,
    PlaybookName,
    Port,
    Proto,
    Regex,
    ResultsPath,
    Seconds,
    StepTracer,
    StraceSyscall,
    Syscall,
    Text,
    Timeout,
    not_empty,
    shorthand,
)
from lab.text import kind_of
from lab.topology.model import Variables, null_is_empty, null_is_no_items
from lab.tracers.ftrace.probes import BUFFER_KB


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- tracer settings ---------------------------------------------------------

class FunctionChanges(_Input):
    """Changes to the tracer's default set of kernel functions."""

    add: tuple[Function, ...] = Field(default=(), description="Kernel functions to probe too.")
    remove: tuple[Function, ...] = Field(default=(),
                                         description="Default functions not to probe.")


class SyscallChanges(_Input):
    """Changes to the tracer's default set of system calls."""

    add: tuple[Syscall, ...] = Field(default=(), description="System calls to trace too.")
    remove: tuple[Syscall, ...] = Field(default=(),
                                        description="Default system calls not to trace.")


FunctionEntry = Annotated[FunctionChanges, BeforeValidator(
    null_is_empty, json_schema_input_type=FunctionChanges | None)]
SyscallEntry = Annotated[SyscallChanges, BeforeValidator(
    null_is_empty, json_schema_input_type=SyscallChanges | None)]


class FtraceInput(_Input):
    """Kernel tracing through tracefs on a node (kprobes and syscall tracepoints)."""

    functions: FunctionEntry = Field(
        default=FunctionChanges(),
        description="Kernel functions: {add: [...], remove: [...]} against the default set "
                    "(__sys_socket ... __sys_recvfrom, tcp_v4_connect ... tcp_close); add "
                    "any other (tcp_set_state is known with its arguments).")
    syscalls: SyscallEntry = Field(
        default=SyscallChanges(),
        description="System calls: {add: [...], remove: [...]} against the default set "
                    "(socket, bind, listen, accept4, connect, sendto, recvfrom ...).")
    comms: tuple[Comm, ...] | None = Field(
        default=None,
        description="Process names whose calls are traced (management SSH is not); "
                    "default: the programs the playbook deploys.")
    buffer_kb: Annotated[int, Field(strict=True, ge=64, le=262144)] | None = Field(
        default=None, description=f"Trace buffer per CPU in KiB (default {BUFFER_KB}).")


class StraceInput(_Input):
    """System-call tracing of one command (a run step with strace: true)."""

    syscalls: tuple[StraceSyscall, ...] | None = Field(
        default=None, description="Only these system calls or classes (strace -e trace=; "
                                  "e.g. [%network, read, write]); default: all.")


class TracersInput(_Input):
    """Settings of each tracer for the whole playbook; trace steps may add to them."""

    ftrace: Annotated[FtraceInput, BeforeValidator(
        null_is_empty, json_schema_input_type=FtraceInput | None)] = Field(
        default=FtraceInput(), description="Kernel tracing through tracefs.")
    strace: Annotated[StraceInput, BeforeValidator(
        null_is_empty, json_schema_input_type=StraceInput | None)] = Field(
        default=StraceInput(), description="strace around commands run with strace: true.")


# --- step actions ------------------------------------------------------------

class WaitPortInput(_Input):
    """Wait until a port listens (TCP) or is bound (UDP) on the node."""

    port: Port = Field(description="Port number, 1-65535.")
    proto: Proto = Field(default="tcp", description="tcp (default) or udp.")


class PushInput(_Input):
    """Copy a host file to the node."""

    src: Text = Field(description="Host file; relative paths start from the "
                                               "playbook's directory.")
    dst: NodePath = Field(description="Absolute path on the node.")


class PullInput(_Input):
    """Copy a node's file into the run's results."""

    src: NodePath = Field(description="Absolute path on the node.")
    dst: ResultsPath = Field(description="Relative path inside the run's results directory.")


class DeployInput(_Input):
    """Install a program on the node."""

    program: Text = Field(
        description="A shipped program (replyhi, hello, udpecho, udpsend, "
                                  "concurrent, bulk-send, bulk-recv), or the path of a C "
                                  "source (.c, compiled statically) or of an executable or "
                                  "script; relative paths start from the playbook's directory.")
    dest: NodePath | None = Field(default=None,
                                  description="Path on the node (default /opt/socklab/bin/NAME).")


class TraceInput(_Input):
    """Start or stop a tracer on the node: {start: ftrace, ...} or {stop: ftrace}."""

    start: StepTracer | None = Field(default=None, description="Tracer to start: ftrace.")
    stop: StepTracer | None = Field(default=None, description="Tracer to stop: ftrace.")
    functions: FunctionEntry | None = Field(
        default=None, description="With start: more changes to the kernel functions, "
                                  "after those of tracers:.")
    syscalls: SyscallEntry | None = Field(
        default=None, description="With start: more changes to the system calls, "
                                  "after those of tracers:.")


class StepInput(_Input):
    """One step: exactly one action and the options that go with it."""

    name: str | None = Field(default=None, description="What the step does, for reports.")
    node: str | None = Field(default=None, description="The node the step acts on.")
    nodes: NodeList | None = Field(
        default=None, description="Nodes the step acts on, each in parallel: a list, or all.")
    # actions
    run: Command | None = Field(
        default=None, description="Run a command: a shell command line, or a list of words.")
    wait: Handle | None = Field(default=None,
                                description="Wait for the background command of this handle.")
    stop: Handle | None = Field(
        default=None, description="Stop the background command of this handle (SIGTERM, then "
                                  "SIGKILL after timeout, default 5 s).")
    wait_port: Annotated[WaitPortInput | None, BeforeValidator(
        shorthand("port", (int, str), "wait_port: 7777 or {port: 7777, proto: udp}"),
        json_schema_input_type=Port | WaitPortInput)] = Field(
        default=None, description="Wait until a port listens: PORT or {port, proto}.")
    push: PushInput | None = Field(default=None,
                                   description="Copy a host file to nodes: {src, dst}.")
    pull: PullInput | None = Field(
        default=None, description="Copy a file from one node into the results: {src, dst}.")
    deploy: Annotated[DeployInput | None, BeforeValidator(
        shorthand("program", (str,), "deploy: hello or {program: ./mine.c, dest: /root/mine}"),
        json_schema_input_type=str | DeployInput)] = Field(
        default=None, description="Install a program: NAME or {program, dest}.")
    trace: TraceInput | None = Field(
        default=None, description="Start or stop a tracer: {start: ftrace} or {stop: ftrace}.")
    sleep: Seconds | None = Field(default=None,
                                  description=f"Pause, in seconds (at most {MAX_SLEEP}).")
    # options
    timeout: Timeout | None = Field(
        default=None, description=f"Deadline in seconds (default {DEFAULT_TIMEOUT:g}; stop: "
                                  f"{DEFAULT_STOP_TIMEOUT:g}; trace: {TRACE_START_TIMEOUT:g} "
                                  f"to start a tracer, {TRACE_STOP_TIMEOUT:g} to stop it and "
                                  "collect its trace; none on a background run, which lives until "
                                  "waited for, stopped, or the playbook ends).")
    background: Handle | None = Field(
        default=None, description="Run: start the command and go on; wait: or stop: it later "
                                  "by this handle.")
    strace: bool | None = Field(
        default=None, description="Run: trace the command with strace -f (events collected).")
    expect_exit: ExitStatus | None = Field(
        default=None, description="Run, wait: the exit status expected (default 0), or any.")
    expect_stdout: Regex | None = Field(
        default=None, description="Run, wait: a regular expression the output must match.")
    expect_stderr: Regex | None = Field(
        default=None, description="Run, wait: a regular expression the error output must "
                                  "match.")


# --- expectations on the traces ----------------------------------------------

def _count(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise FieldError(f"a count must be at least 0, got {value}")
        return {"min": value, "max": value}
    if isinstance(value, dict):
        return value
    raise FieldError(f"expected a count or {{min: N, max: N}}, got {kind_of(value)}",
                     hint="e.g. __sys_accept4: 50 or __sys_accept4: {min: 1}")


class CountRange(_Input):
    """How many matching events there may be (either bound may be left out)."""

    min: Annotated[int, Field(strict=True, ge=0)] | None = Field(default=None,
                                                                 description="At least.")
    max: Annotated[int, Field(strict=True, ge=0)] | None = Field(default=None,
                                                                 description="At most.")


CountEntry = Annotated[CountRange, BeforeValidator(
    _count, json_schema_input_type=Annotated[int, Field(ge=0)] | CountRange)]
EventNames = Annotated[tuple[EventName, ...], *NOT_EMPTY]


class ExpectInput(_Input):
    """A check on a node's traced events: one of present, absent, in_order or count."""

    name: str | None = Field(default=None, description="What is checked, for reports.")
    node: str | None = Field(default=None, description="The node whose events are checked.")
    nodes: NodeList | None = Field(default=None,
                                   description="Nodes whose events are checked, each on its own.")
    comm: Comm | None = Field(default=None, description="Only events of this process name.")
    kind: EventKind | None = Field(
        default=None, description="Only events of this kind: syscall_entry, syscall_exit, "
                                  "func_entry, func_return, sock_state, tracepoint, or any "
                                  "(default: all but func_return and syscall_exit, so each "
                                  "call counts once).")
    tracer: EventTracer | None = Field(default=None,
                                       description="Only events of this tracer: ftrace, strace.")
    present: EventNames | None = Field(default=None,
                                       description="Each of these events occurs at least once.")
    absent: EventNames | None = Field(default=None,
                                      description="None of these events occurs.")
    in_order: EventNames | None = Field(
        default=None, description="These events occur in this order (others may come between).")
    count: Annotated[dict[EventName, CountEntry], BeforeValidator(not_empty),
                     Field(json_schema_extra={"minProperties": 1})] | None = Field(
        default=None, description="How many times each event occurs: {NAME: N} or "
                                  "{NAME: {min: N, max: N}}.")



# --- the file ----------------------------------------------------------------

class PlaybookInput(_Input):
    """A socklab playbook: the steps of an experiment on a lab and what its traces must show."""

    model_config = ConfigDict(title="socklab playbook")
    # Missing or faulty, the rest of the file is still checked, as if it were this.
    STAND_INS: ClassVar[Mapping[str, str]] = {"name": "unnamed"}
    # A topology's fields, given here: the hint an unknown one gets.
    ELSEWHERE: ClassVar[Mapping[str, str]] = dict.fromkeys(
        ("nodes", "networks", "links", "defaults"),
        "a topology's field: the topology is a file of its own, given to lab run "
        "before the playbook; a step names its own nodes")

    name: PlaybookName = Field(description="Playbook name; names the run's results.")
    description: str = Field(default="", description="What the experiment shows.")
    vars: Variables = Field(
        default_factory=dict,
        description="Variables for {{ templates }} in string values; --set KEY=VALUE "
                    "overrides them. Topology facts (lab, nodes, networks, roles) are "
                    "variables too.")
    tracers: Annotated[TracersInput, BeforeValidator(
        null_is_empty, json_schema_input_type=TracersInput | None)] = Field(
        default=TracersInput(), description="Tracer settings for the whole playbook.")
    steps: Annotated[tuple[StepInput, ...], *NOT_EMPTY] = Field(
        description="What to do, in order; a step starts when the one before it has ended.")
    expect: Annotated[tuple[ExpectInput, ...], BeforeValidator(
        null_is_no_items, json_schema_input_type=list[ExpectInput] | None)] = Field(
        default=(), description="Checks on the traced events, after the steps.")


__all__ = [
    "CountRange", "DeployInput", "ExpectInput", "FtraceInput", "FunctionChanges",
    "PlaybookInput", "PullInput", "PushInput", "StepInput", "StraceInput", "SyscallChanges",
    "TraceInput", "TracersInput", "WaitPortInput",
]
