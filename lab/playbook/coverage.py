"""What a playbook traces, where, and each expectation resolved against it.

A check names events on nodes; it can only pass, or fail for a reason, if a
tracer of the playbook runs on those nodes and records those events. This is
known once the steps are resolved (resolve.py fills a `Coverage` as it goes),
so an expectation that could never see what it names is refused before a lab
boots: a misspelt name would make `absent` pass, and the others fail only
after a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lab.events import Kind
from lab.playbook.model import ExpectInput
from lab.playbook.plan import (
    DEFAULT_KINDS,
    Absent,
    Bound,
    Check,
    Count,
    Expectation,
    InOrder,
    Present,
    describe_check,
)
from lab.playbook.values import CHECKS
from lab.source import Loc
from lab.text import closest
from lab.tracers.ftrace.probes import DEFAULT_PROBES, OPTIONAL_PROBES
from lab.tracers.strace.wrap import PROCESS_CALLS
from lab.tracers.syscalls import KERNEL_SYSCALLS

Report = Callable[[Loc, str, str], None]  # an issue: where, what, hint
KERNEL_FUNCTIONS = frozenset(p.function for p in (*DEFAULT_PROBES, *OPTIONAL_PROBES))


@dataclass
class Coverage:
    """The nodes each tracer runs on, and what ftrace records on each."""

    strace_syscalls: tuple[str, ...] | None  # tracers.strace.syscalls (None: every call)
    ftraced: set[str] = field(default_factory=set)  # nodes ftrace runs on at some point
    straced: set[str] = field(default_factory=set)  # nodes with a command run under strace
    ftrace_names: dict[str, set[str]] = field(default_factory=dict)  # node → its events
    removed: dict[str, set[str]] = field(default_factory=dict)  # node → left out by remove:

    def add_ftrace(self, nodes: Iterable[str], names: Iterable[str],
                   removed: Iterable[str] = ()) -> None:
        recorded, left_out = set(names), set(removed) - set(names)
        for node in nodes:
            self.ftraced.add(node)
            self.ftrace_names.setdefault(node, set()).update(recorded)
            self.removed.setdefault(node, set()).update(left_out)

    def tracers(self, node: str) -> set[str]:
        return ({"ftrace"} if node in self.ftraced else set()) | (
            {"strace"} if node in self.straced else set())

    @property
    def any_syscall(self) -> bool:
        """Whether strace may record any system call (no list, or a class or negation)."""
        syscalls = self.strace_syscalls
        return syscalls is None or any(s.startswith(("%", "!")) for s in syscalls)

    @property
    def strace_names(self) -> set[str]:
        return {*(self.strace_syscalls or ()), *PROCESS_CALLS}


@dataclass(frozen=True)
class Unknown:
    """What faulty parts of the playbook leave unknown (they say why themselves): no
    check that depends on them speaks."""

    tracing: bool = False  # a trace or strace step: which nodes are traced
    probes: bool = False  # the functions or system calls traced: which events are recorded
    programs: bool = False  # a deploy, or comms: which processes are traced


def resolve_expectation(i: int, e: ExpectInput, nodes: tuple[str, ...], *, line: int,
                        coverage: Coverage, comms: tuple[str, ...], unknown: Unknown,
                        issue: Report) -> Expectation | None:
    """Expectation `i` of the playbook, checked on `nodes` (already resolved), or None
    when it has a problem, which `issue` is told."""
    loc: Loc = ("expect", i)
    given = [c for c in CHECKS if getattr(e, c) is not None]
    if not given:
        issue(loc, "the expectation checks nothing", f"give it one check: {', '.join(CHECKS)}")
        return None
    if len(given) > 1:
        issue((*loc, given[1]),
              f"an expectation checks one thing; this one has {given[0]} and {given[1]}",
              "split it into two expectations")
        return None
    check = _check(loc, e, issue)
    if not unknown.tracing:
        _check_traced(loc, e, nodes, coverage, issue)
    if check is None or not nodes:
        return None
    if not unknown.probes:
        _check_recorded(loc, given[0], e, nodes, coverage=coverage, issue=issue)
    if e.comm is not None and e.comm not in comms and not unknown.programs \
            and (close := closest(e.comm, comms, cutoff=0.75)):
        issue((*loc, "comm"), f"ftrace traces no process named {e.comm!r}",
              f"did you mean {close!r}? it traces: {', '.join(comms)}")
    kinds = (DEFAULT_KINDS if e.kind is None else tuple(Kind) if e.kind == "any"
             else (Kind(e.kind),))
    return Expectation(index=i, name=e.name or describe_check(check, nodes, e.comm),
                       line=line, nodes=nodes, comm=e.comm, kinds=kinds, tracer=e.tracer,
                       check=check)


def _check(loc: Loc, e: ExpectInput, issue: Report) -> Check | None:
    if e.present is not None:
        return Present(e.present)
    if e.absent is not None:
        return Absent(e.absent)
    if e.in_order is not None:
        return InOrder(e.in_order)
    assert e.count is not None
    bounds = []
    for name, given in e.count.items():
        where = (*loc, "count", name)
        if given.min is None and given.max is None:
            issue(where, "give min, max or both", "e.g. {min: 1} or {min: 2, max: 4}")
        elif given.min is not None and given.max is not None and given.min > given.max:
            issue(where, f"min {given.min} is more than max {given.max}", "swap them")
        else:
            bounds.append(Bound(name, given.min or 0, given.max))
    return Count(tuple(bounds)) if len(bounds) == len(e.count) else None


def _check_traced(loc: Loc, e: ExpectInput, nodes: tuple[str, ...], coverage: Coverage,
                  issue: Report) -> None:
    """Every node checked has a tracer that could produce the events."""
    for node in nodes:
        tracers = coverage.tracers(node)
        if e.tracer is not None and e.tracer not in tracers:
            how = ("start it with a trace: {start: ftrace} step" if e.tracer == "ftrace"
                   else "set strace: true on a run step there")
            issue((*loc, "tracer"), f"{e.tracer} never traces node {node}", how)
        elif not tracers:
            issue((*loc, "node" if e.node is not None else "nodes"),
                  f"nothing traces node {node}",
                  "start ftrace there (trace: {start: ftrace}) or run a command "
                  "there with strace: true")


def _check_recorded(loc: Loc, field: str, e: ExpectInput, nodes: tuple[str, ...], *,
                    coverage: Coverage, issue: Report) -> None:
    """Every event named is one a tracer of the playbook records on each node."""
    strace_names = coverage.strace_names
    everywhere = strace_names.union(*coverage.ftrace_names.values())
    told: set[str] = set()
    for node in nodes:
        ftraced = node in coverage.ftraced and e.tracer != "strace"
        straced = node in coverage.straced and e.tracer != "ftrace"
        recorded = set(coverage.ftrace_names.get(node, ())) if ftraced else set()
        recorded |= strace_names if straced else set()
        for j, name in enumerate(getattr(e, field)):
            # strace may record any system call, when its list allows.
            if name in recorded or name in told or not (ftraced or straced) or (
                    straced and coverage.any_syscall and name in KERNEL_SYSCALLS):
                continue
            told.add(name)
            issue((*loc, field, name if field == "count" else j),
                  f"no tracer of this playbook records {name!r} on node {node}",
                  _record_hint(name, node, coverage, everywhere,
                               ftraced=ftraced, straced=straced))


def _kernel_function(name: str) -> bool:
    """Whether `name` is a kernel function's, never a system call's (`__sys_connect`)."""
    return name.startswith("__") or name in KERNEL_FUNCTIONS


def _record_hint(name: str, node: str, coverage: Coverage, everywhere: set[str], *,
                 ftraced: bool, straced: bool) -> str:
    """How to have `name` recorded on `node`, or the name that was meant."""
    add = f"functions: {{add: [{name}]}}"
    strace = f"tracers: {{strace: {{syscalls: [{name}]}}}}"
    elsewhere = [n for n, seen in coverage.ftrace_names.items() if name in seen and n != node]
    if ftraced and name in coverage.removed.get(node, ()):
        which = "functions" if _kernel_function(name) else "syscalls"
        return f"the trace leaves it out ({which}: {{remove: [{name}]}}): keep it, or check another"
    if elsewhere and ftraced:
        return (f"ftrace records it on {', '.join(elsewhere)}: add it where {node}'s "
                f"trace starts too ({add})")
    if elsewhere:
        return (f"ftrace records it on {', '.join(elsewhere)}: start ftrace on {node} "
                f"too" + (f", or for a system call: {strace}"
                          if straced and not _kernel_function(name) else ""))
    if _kernel_function(name) and not ftraced:
        return (f"a kernel function, which strace never sees: trace {node} with ftrace "
                "(trace: {start: ftrace})")
    known = everywhere | KERNEL_SYSCALLS if straced and coverage.any_syscall else everywhere
    if close := closest(name, sorted(known), cutoff=0.7):
        return f"did you mean {close!r}?"
    if ftraced:
        return f"trace it: tracers: {{ftrace: {{{add}}}}} (or syscalls: for a system call)"
    return f"trace it: {strace}"
