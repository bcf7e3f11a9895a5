"""What a run leaves behind: the run directory and its machine-readable summary.

    runs/<lab>-<timestamp>/
        topology.json  playbook.json   the topology and playbook as rendered
        consoles/<node>.log            serial consoles
        raw/ftrace-<node>.txt          raw traces, as the guest wrote them
        outputs/<step>-<node>.out|err  every command's output
        events.jsonl                   every event, one schema (lab/events.py)
        connections.json               each connection: both ends, bytes, each send and its
                                       receives, latencies, clock fits
        timeline.txt                   both sides' calls on one clock, classic lab style
        trace.json                     the same for Perfetto: slices per thread, flows
        report.html                    sequence diagrams, latencies, clock bounds
        round_trips.json               the controller's round trips to each guest's clock
        summary.json                   steps, exit statuses, durations, counts, losses
        junit.xml                      the steps and expectations as JUnit XML, for CI
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lab.correlate.correlation import Summary
from lab.text import closest, count
from lab.tracers.ftrace.probes import DEFAULT_PROBES, OPTIONAL_PROBES

if TYPE_CHECKING:
    from lab.playbook import Step

# "running" from a step's start to its end: a run that fails meanwhile leaves it so.
Status = Literal["running", "ok", "failed", "skipped", "interrupted"]
TAIL = 2000  # characters of output kept in the summary (the files hold all of it)


@dataclass
class NodeResult:
    node: str
    ok: bool
    exit_status: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str | None = None  # why it failed, in one line


@dataclass
class StepResult:
    index: int
    name: str
    line: int
    action: str
    nodes: list[str]
    status: Status = "skipped"
    seconds: float = 0.0
    results: list[NodeResult] = field(default_factory=list)
    error: str | None = None  # why the step as a whole failed, when no node's result says

    @classmethod
    def of(cls, step: Step) -> StepResult:
        """The step, not run (yet): skipped until it is."""
        return cls(step.index, step.name, step.line, step.action.kind, list(step.nodes))

    @property
    def failures(self) -> list[str]:
        return ([self.error] if self.error else []) + [
            f"{r.node}: {r.error}" for r in self.results if not r.ok and r.error]

    def judged_later(self, result: NodeResult) -> None:
        """How the background command this step started on `result.node` ended, judged
        once the playbook had (nothing waited for it)."""
        self.results = [result if r.node == result.node else r for r in self.results]
        if not result.ok:
            self.status = "failed"


@dataclass
class TracerResult:
    node: str
    tracer: str
    raw: str  # path inside the run directory
    entries: int = 0  # ftrace: its ring buffer's; strace: the lines it wrote
    lost: int = 0  # lost in the ring buffer, marked lost in the text, or missed by probes
    missed: dict[str, int] = field(default_factory=dict)  # probe → hits it could not record
    unparsed: int = 0
    unparsed_samples: list[str] = field(default_factory=list)
    skipped_probes: list[str] = field(default_factory=list)
    added_functions: list[str] = field(default_factory=list)  # beyond the default set
    events: int = 0
    error: str | None = None  # why the trace could not be collected


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation of the playbook, judged on one node's events."""

    name: str
    line: int | None  # in the playbook
    node: str
    ok: bool
    detail: str  # why it failed, or what was seen
    checked: bool = True  # False: a step failed, so the trace would not tell (ok is False)


@dataclass(frozen=True)
class NodeRun:
    """What a node ran: which image, which kernel; how long it took to answer SSH when
    its lab came up (None: not known, or it did not)."""

    image: str
    kernel: str
    ready_seconds: float | None = None


@dataclass
class RunSummary:
    lab: str
    playbook: str
    topology: str
    nodes: dict[str, NodeRun] = field(default_factory=dict)
    accel: str = ""  # what the guests ran under: "kvm", or "tcg" (emulated: slower)
    started_at: str = field(default_factory=lambda: time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    seconds: float = 0.0
    ok: bool = False
    interrupted: bool = False  # Ctrl-C or SIGTERM: its traces parsed, not correlated
    steps: list[StepResult] = field(default_factory=list)
    tracers: list[TracerResult] = field(default_factory=list)
    event_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # node → kind → n
    correlation: Summary | None = None  # None until the events are correlated
    expectations: list[ExpectationResult] = field(default_factory=list)
    error: str | None = None  # what kept the steps from running: the lab did not come up
    unclocked: dict[str, str] = field(default_factory=dict)  # node → why no round trips
    # Nodes whose SSH connection went away during the run: the lab failed, not the test.
    lost: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        expectations = [f"expectation {e.name} [{e.node}] failed: {e.detail}"
                        for e in self.expectations if not e.ok and e.checked]
        return (([self.error] if self.error else []) + self.losses + self.step_failures
                + expectations + ([self._interruption()] if self.interrupted else []))

    @property
    def losses(self) -> list[str]:
        return [f"lost node {node} during the run: its SSH connection went away (did the "
                f"guest die? see consoles/{node}.log)" for node in self.lost]

    def _interruption(self) -> str:
        """Where the run was interrupted: in a step, or before or after them."""
        if during := next((s for s in self.steps if s.status == "interrupted"), None):
            return f"interrupted during step {during.index + 1} ({during.name})"
        begun = any(s.status != "skipped" for s in self.steps)
        return f"interrupted {'after its steps' if begun else 'before its first step'}"

    @property
    def step_failures(self) -> list[str]:
        return [f"step {s.index + 1} ({s.name}) failed: {f}"
                for s in self.steps if s.status == "failed" for f in s.failures]

    @property
    def warnings(self) -> list[str]:
        """What makes the trace incomplete without failing the run."""
        lines = [f"{t.tracer} on {t.node}: not collected: {t.error}"
                 for t in self.tracers if t.error]
        lines += [f"{t.tracer} on {t.node}: {count(t.lost, 'event')} lost: {_why_lost(t)}"
                  for t in self.tracers if t.lost]
        lines += [f"no clock round trips with {node} (its clock is aligned by its traffic "
                  f"alone): {why}" for node, why in sorted(self.unclocked.items())
                  if node not in self.lost]  # a lost node is said once, as lost
        lines += [f"{t.tracer} on {t.node}: {t.unparsed} lines not understood, e.g. "
                  f"{t.unparsed_samples[0]!r}" for t in self.tracers if t.unparsed]
        lines += [f"{t.tracer} on {t.node}: the kernel refused to probe "
                  f"{', '.join(map(_refused, t.skipped_probes))}; not traced"
                  for t in self.tracers if t.skipped_probes]
        return lines

    def to_json(self) -> str:
        data = {**asdict(self), "failures": self.failures, "warnings": self.warnings}
        return json.dumps(data, indent=2) + "\n"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, runs: Path, lab: str) -> RunDir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = runs / f"{lab}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = runs / f"{lab}-{stamp}-{n}"
        for sub in ("raw", "outputs", "consoles"):
            (path / sub).mkdir(parents=True)
        return cls(path)

    def write_json(self, name: str, data: object) -> None:
        (self.path / name).write_text(json.dumps(data, indent=2, default=str) + "\n")

    def output(self, step: int, node: str, stream: str) -> Path:
        return self.path / "outputs" / f"{step + 1:02d}-{node}.{stream}"

    def raw(self, tracer: str, node: str) -> Path:
        return self.path / "raw" / f"{tracer}-{node}.txt"


def _refused(function: str) -> str:
    """A function the kernel would not probe, and why it may be so."""
    if function.startswith(("entry_SYSCALL", "do_syscall")):
        return f"{function} (system call entry code, which kprobes may not touch: the " \
               "syscall tracepoints mark each entry and exit)"
    known = [p.function for p in (*DEFAULT_PROBES, *OPTIONAL_PROBES)]
    if function in known:  # this kernel lacks it
        return function
    close = closest(function, known, cutoff=0.8)
    return f"{function} (did you mean {close}?)" if close else function


def _why_lost(t: TracerResult) -> str:
    missed = sum(t.missed.values())
    why = []
    if missed:
        probes = ", ".join(f"{n} {name}" for name, n in
                           sorted(t.missed.items(), key=lambda kv: -kv[1]))
        why.append(f"{count(missed, 'probe hit')} the kernel could not record ({probes}), "
                   "as a probe that fires while another runs (a packet coming in) is missed"
                   + (", and fewer functions added miss fewer" if t.added_functions else ""))
    if t.lost > missed:
        why.append(f"{t.lost - missed} not kept by the ring buffer: buffer too small? "
                   "raise tracers.ftrace.buffer_kb")
    return "; ".join(why)
