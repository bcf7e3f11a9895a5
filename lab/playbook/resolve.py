"""The checks of a playbook that need the whole file or the topology, and its resolution.

After pydantic has checked shapes (model.py), this checks what depends on
more than one value: one action per step and options that fit it, node
names, handles of background commands (started before they are waited for
or stopped, once each), tracer start/stop order, program and host files.
The steps tell what is traced where, and each expectation is checked
against that (coverage.py). It builds the `Playbook` of plan.py, filling in
every default. Every problem is collected and raised at once, located by
the document's locator.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from lab.errors import InputError, InputIssue
from lab.playbook.coverage import Coverage, Unknown, resolve_expectation
from lab.playbook.facts import FACT_NAMES
from lab.playbook.model import (
    ExpectInput,
    FunctionChanges,
    PlaybookInput,
    StepInput,
    SyscallChanges,
)
from lab.playbook.plan import (
    Action,
    Deploy,
    Expectation,
    Playbook,
    Pull,
    Push,
    Run,
    Sleep,
    Step,
    Stop,
    StraceSettings,
    TraceStart,
    TraceStop,
    Wait,
    WaitPort,
    describe_step,
)
from lab.playbook.values import (
    ACTIONS,
    COMM_LENGTH,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TIMEOUT,
    TRACE_START_TIMEOUT,
    TRACE_STOP_TIMEOUT,
    comm_problem,
)
from lab.programs import shipped_programs
from lab.source import Document, Loc, override_value, sort_issues
from lab.text import closest
from lab.topology import Topology
from lab.tracers.ftrace.probes import (
    BUFFER_KB,
    DEFAULT_FUNCTIONS,
    DEFAULT_SYSCALLS,
    Adjust,
    FtraceOptions,
)

PROGRAM_DIR = "/opt/socklab/bin"

# Options of a step, and the actions each applies to.
OPTIONS = ("node", "nodes", "timeout", "background", "strace",
           "expect_exit", "expect_stdout", "expect_stderr")
_CHECKED = {"timeout", "expect_exit", "expect_stdout", "expect_stderr"}
APPLIES: dict[str, set[str]] = {
    "run": set(OPTIONS),
    "wait": _CHECKED,
    "stop": {"timeout"},
    "wait_port": {"node", "nodes", "timeout"},
    "push": {"node", "nodes", "timeout"},
    "pull": {"node", "timeout"},
    "deploy": {"node", "nodes", "timeout"},
    "trace": {"node", "nodes", "timeout"},
    "sleep": set(),
}
_NOT_HERE = {  # why an option does not apply, when there is more to say than the list
    ("wait", "node"): "the handle knows where its command runs",
    ("stop", "node"): "the handle knows where its command runs",
    ("sleep", "node"): "sleep pauses the whole playbook",
    ("pull", "nodes"): "pull from one node (node: NAME); one pull step per node",
}


def resolve_playbook(doc: Document[PlaybookInput], topology: Topology, *,
                     lab_name: str | None = None, overrides: Mapping[str, str] = {},
                     programs: Collection[str] | None = None) -> Playbook:
    """The checks that need the whole file and the topology; builds the `Playbook`."""
    known = tuple(shipped_programs() if programs is None else programs)
    return _Resolver(doc, topology, lab_name or topology.name, overrides, known).run()


@dataclass
class _Background:
    line: int
    run: Run
    ended: str | None = None  # "waited for on line N" / "stopped on line N"


class _Resolver:
    def __init__(self, doc: Document[PlaybookInput], topology: Topology, lab: str,
                 overrides: Mapping[str, str], programs: tuple[str, ...]) -> None:
        self.doc = doc
        self.top = doc.model
        self.locator = doc.locator
        self.topology = topology
        self.lab = lab
        self.overrides = overrides
        self.programs = programs
        self.node_names = [n.name for n in topology.nodes]
        self.base = doc.locator.file.parent  # relative host paths start here
        self.issues: list[InputIssue] = []
        self.background: dict[str, _Background] = {}
        self.ftrace_on: dict[str, int] = {}  # node → line of the step that started it
        self.coverage = Coverage(self.top.tracers.strace.syscalls)
        self.pulled: dict[str, int] = {}  # results path → line
        # (node, path there) → the program deployed to it (its source, or its name), line
        self.deployed: dict[tuple[str, str], tuple[Path | str, int]] = {}
        self.later = self.handles_started()
        # What a faulty step would have done is not known: no check that depends on it
        # speaks. A lost handle is none to say unknown; a lost trace or strace, no node
        # to say untraced; lost probes, no event to say unrecorded; a lost deploy, no
        # process to say untraced.
        self.handles_lost = self.lost_in_steps("background")
        tracing_lost = self.lost_in_steps("trace", "strace")
        self.unknown = Unknown(
            tracing=tracing_lost,
            probes=tracing_lost or any(
                loc[:2] == ("tracers", "ftrace") and loc[2:3] in (("functions",), ("syscalls",))
                for loc in doc.failed),
            programs=self.lost_in_steps("deploy") or any(
                loc[:3] == ("tracers", "ftrace", "comms") for loc in doc.failed))
        self.ftrace = self.ftrace_settings()  # playbook-wide; trace steps build on it

    def issue(self, loc: Loc, message: str, hint: str | None = None) -> None:
        if self.doc.already_reported(loc):
            return
        self.issues.append(self.locator.issue(loc, message, hint=hint))

    def line(self, loc: Loc) -> int:
        return self.locator.line(loc) or 0

    def run(self) -> Playbook:
        self.check_vars()
        steps = [self.step(i, s) for i, s in enumerate(self.top.steps)]
        expect = [self.expectation(i, e) for i, e in enumerate(self.top.expect)]
        if issues := [*self.doc.issues, *self.issues]:
            raise InputError(sort_issues(issues))
        return Playbook(
            name=self.top.name, description=self.top.description.strip(),
            path=self.locator.file, lab=self.lab, topology=self.topology.name,
            vars=self.variables(), ftrace=self.ftrace,
            strace=StraceSettings(self.top.tracers.strace.syscalls),
            steps=tuple(s for s in steps if s is not None),
            expect=tuple(e for e in expect if e is not None))

    def check_vars(self) -> None:
        for name in self.top.vars:
            if name in FACT_NAMES:
                self.issue(("vars", name), f"'{name}' is a topology fact, not a variable",
                           f"rename it: {', '.join(FACT_NAMES)} come from the topology")

    def variables(self) -> dict[str, Any]:
        """vars: with the --set values a template used or vars: declares."""
        used = {k: v for k, v in self.overrides.items()
                if k not in self.doc.unused_overrides and k not in FACT_NAMES}
        return {**self.top.vars, **{k: override_value(v) for k, v in used.items()}}

    def handles_started(self) -> dict[str, int]:
        """Handle → index of the first step that starts it (to tell 'later' from 'never',
        and from 'by a step that failed')."""
        out: dict[str, int] = {}
        for i, step in enumerate(self.top.steps):
            if step.background is not None:
                out.setdefault(step.background, i)
        return out

    # --- tracer settings -------------------------------------------------------

    def ftrace_settings(self) -> FtraceOptions:
        ftrace = self.top.tracers.ftrace
        loc: Loc = ("tracers", "ftrace")
        comms = ftrace.comms
        if comms is None:  # the programs this playbook deploys, by their names on the nodes
            comms = tuple(dict.fromkeys(
                _comm(s.deploy.dest or _program_name(s.deploy.program))
                for s in self.top.steps if s.deploy))
        return FtraceOptions(
            comms=tuple(comms),
            functions=self.changes((*loc, "functions"), ftrace.functions, Adjust()),
            syscalls=self.changes((*loc, "syscalls"), ftrace.syscalls, Adjust()),
            buffer_kb=ftrace.buffer_kb or BUFFER_KB)

    def changes(self, loc: Loc, given: FunctionChanges | SyscallChanges | None,
                base: Adjust) -> Adjust:
        """`base` then `given`: a later add cancels an earlier remove and vice versa."""
        if given is None:
            return base
        functions = isinstance(given, FunctionChanges)
        defaults = DEFAULT_FUNCTIONS if functions else DEFAULT_SYSCALLS
        for j, name in enumerate(given.remove):
            if name in given.add:
                self.issue((*loc, "remove", j), f"'{name}' is both added and removed",
                           "keep it in one of the two lists")
            elif name not in defaults and name not in base.add:
                what = "function" if functions else "system call"
                close = closest(name, list(defaults))
                self.issue((*loc, "remove", j), f"{what} '{name}' is not traced by default",
                           f"did you mean '{close}'?" if close else
                           f"remove takes {what}s of the default set: " + ", ".join(defaults))
        add = [n for n in base.add if n not in given.remove] + list(given.add)
        remove = [n for n in base.remove if n not in given.add] + list(given.remove)
        return Adjust(tuple(dict.fromkeys(add)), tuple(dict.fromkeys(remove)))

    # --- steps -----------------------------------------------------------------

    def step(self, i: int, s: StepInput) -> Step | None:
        loc: Loc = ("steps", i)
        given = [a for a in ACTIONS if getattr(s, a) is not None]
        if not given:
            self.issue(loc, "the step does nothing", f"give it one action: {', '.join(ACTIONS)}")
            return None
        if len(given) > 1:
            self.issue((*loc, given[1]),
                       f"a step does one thing; this one has {given[0]} and {given[1]}",
                       "split it into two steps")
            return None
        kind = given[0]
        ok = True
        for option in OPTIONS:
            if getattr(s, option) is not None and option not in APPLIES[kind]:
                ok = False
                key = (kind, "node" if option == "nodes" and kind != "pull" else option)
                known = [o for o in OPTIONS if o in APPLIES[kind]]
                self.issue((*loc, option), f"{option} does not apply to a {kind} step",
                           _NOT_HERE.get(key) or (f"a {kind} step takes: {', '.join(known)}"
                                                  if known else f"a {kind} step takes no "
                                                                "options"))
        takes = APPLIES[kind]
        misplaced = s.nodes is not None and "nodes" not in takes  # pull: already reported
        nodes = self.nodes(loc, s.node if "node" in takes else None,
                           s.nodes if "nodes" in takes else None,
                           required="node" in takes and not misplaced)
        action = self.action(kind, loc, s, nodes)
        if action is None or not ok:
            return None
        return Step(index=i, name=s.name or describe_step(action, nodes), line=self.line(loc),
                    nodes=nodes, action=action)

    def nodes(self, loc: Loc, node: str | None, nodes: str | list[str] | None, *,
              required: bool) -> tuple[str, ...]:
        if node is not None and nodes is not None:
            self.issue((*loc, "nodes"), "give node or nodes, not both",
                       "node: NAME for one node, nodes: [NAME, ...] or nodes: all for several")
            return ()
        if node is None and nodes is None:
            if required:
                self.issue(loc, "which node? none is given",
                           "add node: NAME, or nodes: [NAME, ...], or nodes: all")
            return ()
        if nodes == "all":
            return tuple(self.node_names)
        if node is not None:
            named = [(node, (*loc, "node"))]
        else:
            assert isinstance(nodes, list)
            if not nodes:
                self.issue((*loc, "nodes"), "must not be empty", "nodes: all for every node")
            listed = (*loc, "nodes") in self.locator.sequences  # else rendered by a template
            named = [(n, (*loc, "nodes", j) if listed else (*loc, "nodes"))
                     for j, n in enumerate(nodes)]
        out: list[str] = []
        for name, where in named:
            for one in self.node_names if name == "all" else [name]:
                if one not in self.node_names:
                    self.issue(where, f"unknown node '{one}'", self.name_hint(one))
                elif one in out:
                    self.issue(where, f"node {one} is listed twice",
                               "all already names every node" if "all" in (nodes or ()) else
                               "list each node once")
                else:
                    out.append(one)
        return tuple(out)

    def name_hint(self, name: str) -> str:
        return _hint(name, self.node_names, f"nodes of topology {self.topology.name}")

    def action(self, kind: str, loc: Loc, s: StepInput,
               nodes: tuple[str, ...]) -> Action | None:
        timeout = s.timeout if s.timeout is not None else DEFAULT_TIMEOUT
        line = self.line(loc)
        match kind:
            case "run":
                return self.run_action(loc, s, nodes)
            case "wait":
                assert s.wait is not None
                started = self.end(loc, "wait", s.wait, f"waited for on line {line}")
                if started is None:
                    return None
                run = started.run
                return Wait(s.wait, timeout,
                            _exit(s.expect_exit) if s.expect_exit is not None
                            else run.expect_exit,
                            s.expect_stdout if s.expect_stdout is not None else run.expect_stdout,
                            s.expect_stderr if s.expect_stderr is not None else run.expect_stderr)
            case "stop":
                assert s.stop is not None
                if self.end(loc, "stop", s.stop, f"stopped on line {line}") is None:
                    return None
                return Stop(s.stop, s.timeout if s.timeout is not None else DEFAULT_STOP_TIMEOUT)
            case "wait_port":
                assert s.wait_port is not None
                proto: Literal["tcp", "udp"] = "udp" if s.wait_port.proto == "udp" else "tcp"
                return WaitPort(s.wait_port.port, proto, timeout)
            case "push":
                assert s.push is not None
                src = self.host_file((*loc, "push", "src"), s.push.src, "host file")
                return Push(src, s.push.dst, timeout) if src else None
            case "pull":
                assert s.pull is not None
                dst = s.pull.dst
                if dst in self.pulled:
                    self.issue((*loc, "pull", "dst"),
                               f"{dst} is already pulled to on line {self.pulled[dst]}",
                               "give each pulled file its own name")
                self.pulled.setdefault(dst, line)
                return Pull(s.pull.src, dst, timeout)
            case "deploy":
                return self.deploy(loc, s, nodes, timeout)
            case "trace":
                return self.trace(loc, s, nodes, s.timeout)
            case _:
                assert s.sleep is not None
                return Sleep(s.sleep)

    def run_action(self, loc: Loc, s: StepInput, nodes: tuple[str, ...]) -> Run | None:
        assert s.run is not None
        command = s.run if isinstance(s.run, str) else shlex.join(s.run)
        handle = s.background
        if handle is not None:
            first = self.background.get(handle)
            if first is not None:
                self.issue((*loc, "background"),
                           f"handle '{handle}' is already used on line {first.line}",
                           "give each background command its own handle")
            if s.timeout is not None:
                self.issue((*loc, "timeout"), "a background command has no timeout: it "
                           "runs until a wait: or stop: step, or the end of the playbook",
                           f"give the wait: step the timeout (wait: {handle}, timeout: "
                           f"{s.timeout:g})")
        if s.strace:
            self.coverage.straced.update(nodes)
        run = Run(command=command,
                  timeout=None if handle else s.timeout if s.timeout is not None
                  else DEFAULT_TIMEOUT,
                  expect_exit=_exit(s.expect_exit if s.expect_exit is not None else 0),
                  expect_stdout=s.expect_stdout, expect_stderr=s.expect_stderr,
                  background=handle, strace=bool(s.strace))
        if handle is not None and handle not in self.background:
            self.background[handle] = _Background(self.line((*loc, "background")), run)
        return run

    def lost_in_steps(self, *fields: str) -> bool:
        """Whether one of these fields of a step failed: a template, a faulty value."""
        return any(loc[:1] == ("steps",) and len(loc) > 2 and loc[2] in fields
                   for loc in self.doc.failed)

    def end(self, loc: Loc, verb: str, handle: str, how: str) -> _Background | None:
        """The background command `handle` ends here (wait or stop); None if it cannot."""
        where = (*loc, verb)
        started = self.background.get(handle)
        if started is None:
            # Not started so far: later, never, or by a step that failed (which says why).
            first, here = self.later.get(handle), loc[1]
            assert isinstance(here, int)  # loc is ("steps", index)
            if first is not None and first > here:
                line = self.line(("steps", first, "background"))
                self.issue(where, f"handle '{handle}' is only started later, on line {line}",
                           "move this step after the run step that starts it")
            elif first is None and not self.handles_lost:
                known = list(self.background)
                self.issue(where, f"unknown handle '{handle}'", _hint(
                    handle, known, "handles started so far") if known else
                    "start a command with background: NAME on a run step first")
            return None
        if started.ended is not None:
            self.issue(where, f"handle '{handle}' has already ended: {started.ended}",
                       "wait for or stop a background command once")
            return None
        started.ended = how
        return started

    def host_file(self, loc: Loc, given: str, what: str) -> Path | None:
        path = Path(given).expanduser()
        path = path if path.is_absolute() else self.base / path
        hint = "relative paths start from the playbook's directory" + (
            f" ({self.base})" if str(self.base) != "." else "")
        if not path.exists():
            self.issue(loc, f"{what} not found: {given}", hint)
        elif path.is_dir():
            self.issue(loc, f"{given} is a directory, not a file", hint)
        else:
            return path
        return None

    def deploy(self, loc: Loc, s: StepInput, nodes: tuple[str, ...],
               timeout: float) -> Deploy | None:
        assert s.deploy is not None
        program = s.deploy.program
        name = _program_name(program)
        where = (*loc, "deploy", "program") if (*loc, "deploy", "program") in self.locator.lines \
            else (*loc, "deploy")
        source: Path | None = None
        if _is_path(program):
            source = self.host_file(where, program, "program file")
            if source is None:
                return None
            if source.suffix != ".c" and not os.access(source, os.X_OK):
                self.issue(where, f"{program} is not executable",
                           "chmod +x it, or give a C source (.c), which is compiled for the guest")
                return None
        elif program not in self.programs:
            close = closest(program, list(self.programs))
            self.issue(where, f"unknown program '{program}'",
                       (f"did you mean '{close}'? " if close else "")
                       + f"shipped programs: {', '.join(self.programs)}; "
                         "or a path (./mine.c, ./script.sh)")
            return None
        deploy = Deploy(name, source, s.deploy.dest or f"{PROGRAM_DIR}/{name}", timeout)
        program_is = source.resolve() if source else name
        at = (*loc, "deploy", "dest") if s.deploy.dest else where
        if self.top.tracers.ftrace.comms is None and (
                problem := comm_problem(_comm(deploy.dest))) is not None:
            self.issue(at, f"{problem}: ftrace follows a program by its file name",
                       "give it a dest: of another name, or name the processes to trace "
                       "under tracers.ftrace.comms")
        for node in nodes:  # a second program under the same name would replace the first
            what, first = self.deployed.setdefault((node, deploy.dest),
                                                   (program_is, self.line(where)))
            if what != program_is:
                self.issue(at, f"{deploy.dest} on node {node} already holds another "
                               f"program, deployed on line {first}",
                           "give one of them a dest: of its own")
        return deploy

    def trace(self, loc: Loc, s: StepInput, nodes: tuple[str, ...],
              timeout: float | None) -> Action | None:
        t = s.trace
        assert t is not None
        where = (*loc, "trace")
        if (t.start is None) == (t.stop is None):
            self.issue(where, "give start or stop, not both" if t.start else
                       "trace needs start or stop", "trace: {start: ftrace} or trace: "
                                                    "{stop: ftrace}")
            return None
        if t.stop is not None:
            for option in ("functions", "syscalls"):
                if getattr(t, option) is not None:
                    self.issue((*where, option), f"{option} applies when a tracer starts",
                               "move it to the trace: {start: ...} step, or to tracers:")
            for node in nodes:
                if self.ftrace_on.pop(node, None) is None and not self.unknown.tracing:
                    self.issue((*where, "stop"), f"{t.stop} is not running on node {node}",
                               "start it first: trace: {start: " + t.stop + "}")
            return TraceStop(t.stop, TRACE_STOP_TIMEOUT if timeout is None else timeout)
        assert t.start is not None
        for node in nodes:
            if node in self.ftrace_on:
                self.issue((*where, "start"), f"{t.start} is already running on node {node} "
                                              f"(started on line {self.ftrace_on[node]})",
                           "stop it before starting it again")
            else:
                self.ftrace_on[node] = self.line(loc)
        base = self.ftrace
        settings = replace(base, functions=self.changes((*where, "functions"), t.functions,
                                                        base.functions),
                           syscalls=self.changes((*where, "syscalls"), t.syscalls, base.syscalls))
        self.coverage.add_ftrace(nodes, settings.event_names(),
                                 (*settings.functions.remove, *settings.syscalls.remove))
        if not settings.comms and not self.unknown.programs:
            self.issue((*where, "start"), f"{t.start} has no process to trace",
                       "deploy a program, or name processes under tracers.ftrace.comms")
        return TraceStart(t.start, settings,
                          TRACE_START_TIMEOUT if timeout is None else timeout)

    # --- expectations ----------------------------------------------------------

    def expectation(self, i: int, e: ExpectInput) -> Expectation | None:
        loc: Loc = ("expect", i)
        nodes = self.nodes(loc, e.node, e.nodes, required=True)
        return resolve_expectation(i, e, nodes, line=self.line(loc), coverage=self.coverage,
                                   comms=self.ftrace.comms, unknown=self.unknown,
                                   issue=self.issue)


# --- small helpers ---------------------------------------------------------------

def _exit(value: int | str) -> int | None:
    return None if value == "any" else int(value)


def _is_path(program: str) -> bool:
    """A name without '/' or '.' is a shipped program; anything else is a file."""
    return "/" in program or "." in program


def _comm(path: str) -> str:
    """The kernel's name for a process running the executable at `path`."""
    return PurePosixPath(path).name[:COMM_LENGTH]


def _program_name(program: str) -> str:
    name = program.rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".c")


def _hint(name: str, known: Iterable[str], what: str) -> str:
    known = list(known)
    close = closest(name, list(known))
    return f"did you mean '{close}'?" if close else f"{what}: {', '.join(known)}"
