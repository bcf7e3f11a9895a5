"""`lab run TOPOLOGY PLAYBOOK`: bring a lab up, run a playbook, collect, tear down."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from lab.aio import to_the_end
from lab.backends.base import Backend
from lab.cli.access import ProgressPrinter, backend_for, stopped_nodes
from lab.cli.common import Subparsers, add_connect_option, libvirt_uri, read_topology
from lab.cli.console import err, out, warn
from lab.cli.parsing import seconds
from lab.errors import InputError, LabError, LabNotFound, UsageError, file_problem
from lab.export.outputs import CONNECTIONS, HTML, TIMELINE, TRACE, summary_lines
from lab.lifecycle.down import tear_down
from lab.lifecycle.events import TeardownFailed
from lab.lifecycle.up import UpOptions, bring_up
from lab.names import new_lab_name
from lab.paths import Paths
from lab.playbook import (
    FACT_NAMES,
    FACT_REASON,
    Playbook,
    Stop,
    Wait,
    build_programs,
    document_kind,
    read_playbook,
    resolve_playbook,
)
from lab.playbook.plan import describe_step
from lab.run import RunDir, RunSummary, StepResult, run_playbook
from lab.run.results import NodeRun
from lab.run.runner import save_cut_short
from lab.source import Document, parse_overrides, refuse_unused_overrides
from lab.state import TOPOLOGY_FILE, LabState, StateStore
from lab.text import count
from lab.topology import Topology

# The exit status when lab, not the experiment, failed: no lab, a guest that would not
# boot or answer or died during the run, libvirt, a lab that could not be removed (a
# step's failure is 1).
LAB_FAILED = 3
STILL_RUNNING = 15.0  # seconds between the lines that say a long step is still running

EPILOG = """\
examples:
  lab run topologies/pair.yaml playbooks/replyhi.yaml
  lab run topologies/pair.yaml playbooks/concurrent.yaml --set connections=200 --keep
  lab run topologies/star.yaml playbooks/udp.yaml     # one UDP server, two clients
  lab run --lab pair-3f2a9c playbooks/udp.yaml        # on a lab that is already up

Before anything boots, both files are checked and the programs to deploy are
compiled. With --lab, the playbook runs on the topology the lab came up with.
The run directory (runs/<lab>-<time>/, printed on stdout as soon as it is
made) holds the rendered topology and playbook, console logs, raw traces,
events.jsonl, the reports, summary.json and junit.xml (for CI systems);
`lab report` writes the reports again.
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        description="Bring a lab up (or use one with --lab), run a playbook's steps, stop "
                    "and collect the tracers, parse every trace into events.jsonl, check the "
                    "playbook's expectations and tear the lab down (unless --keep). Exits 0 "
                    "when every step and expectation passed, 1 when one failed, 2 on bad "
                    "input, 3 when lab itself failed (the lab could not be brought up, "
                    "reached or removed, or a guest died during the run: the host, not the "
                    "experiment, needs a look), 130 "
                    "or 143 when interrupted.",
        epilog=EPILOG,
        usage="lab run [options] TOPOLOGY PLAYBOOK\n       lab run [options] --lab NAME PLAYBOOK")
    p.add_argument("files", nargs="+", type=Path, metavar="[TOPOLOGY] PLAYBOOK",
                   help="a topology file and a playbook file; with --lab, only the playbook")
    p.add_argument("--lab", "-l", metavar="NAME", help="run on this lab, which is up")
    p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="set a template variable of the topology and the playbook, overriding "
                        "their vars: (repeatable; VALUE is YAML, so 512 is a number)")
    p.add_argument("--runs", type=Path, default=Path("runs"), metavar="DIR",
                   help="where run directories are made (default: ./runs)")
    p.add_argument("--timeout", type=seconds, default=120.0, metavar="SECONDS",
                   help="deadline for the lab's nodes to answer SSH (default: 120)")
    add_connect_option(p)
    p.set_defaults(handler=run, failure_exit=LAB_FAILED)


async def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.overrides)
    paths = Paths.default()
    store = StateStore(paths)
    target = _target(args, store, overrides)
    state, topology, playbook_file = target.state, target.topology, target.playbook_file
    # The playbook is rendered and checked, and its programs compiled, before anything
    # boots: for the lab's name, which is chosen now (lab.name may be in a template).
    name = state.name if state is not None else new_lab_name(topology.name)
    playbook = read_playbook(playbook_file, topology, lab_name=name, overrides=overrides)
    book = resolve_playbook(playbook, topology, lab_name=name, overrides=overrides)
    for warning in await build_programs(book, paths.programs):
        warn(str(warning))
    refuse_unused_overrides(
        overrides, [*target.documents, playbook], reserved=dict.fromkeys(FACT_NAMES, FACT_REASON),
        note=f" (lab {args.lab} keeps the topology it came up with)" if args.lab else "")
    _check_runs_dir(args.runs)
    left_behind = False  # the lab could not be removed
    uri = libvirt_uri(args.connect) if state is None else state.uri
    with store.in_use(name):  # no `lab down` of it, nor another run on it, meanwhile
        async with backend_for(uri) as backend:
            run_dir = RunDir.create(args.runs, name)
            out.print(str(run_dir.path))  # at once: a job killed later still knows it
            try:  # a CI job gets a report even when there is no lab to run on
                if state is not None:
                    await _check_up(state, backend)
                else:
                    state = await bring_up(topology, target.topology_file, backend, paths,
                                           options=UpOptions(timeout=args.timeout, name=name),
                                           events=ProgressPrinter())
                    err.print(f"lab {state.name} is up")
            except (LabError, OSError, asyncio.CancelledError) as exc:
                why = None  # interrupted
                if not isinstance(exc, asyncio.CancelledError):  # a full disk, say: as a failure
                    what = file_problem(exc) if isinstance(exc, OSError) else str(exc)
                    why = what if args.lab else f"the lab did not come up: {what}"
                _record_no_lab(run_dir, name, topology, target.topology_file, book, why=why)
                raise
            printer = _StepPrinter(book)
            try:
                err.print(f"running {book.name} ({count(len(book.steps), 'step')}) → "
                          f"{run_dir.path}")
                summary = await run_playbook(book, topology, state, paths, run_dir,
                                             on_step=printer, tidy=bool(args.keep or args.lab))
            finally:
                printer.close()
                if not (args.keep or args.lab):
                    # To its end even when interrupted: half a lab must not be left behind.
                    left_behind = not await to_the_end(_remove(state, backend, store))
                else:
                    err.print(f"lab {state.name} is still up")
    _print_summary(summary, run_dir.path)
    if summary.lost:  # a guest died: the steps it failed say nothing of the experiment
        return LAB_FAILED
    if not summary.ok:  # a regression is told first, a lab left behind warned of above
        return 1
    return LAB_FAILED if left_behind else 0  # a lab left running fails CI too


@dataclass
class _Target:
    """What a run runs on: a lab that is up (--lab) or a topology to bring up."""

    state: LabState | None  # None: brought up from the topology file
    topology_file: Path
    topology: Topology
    playbook_file: Path
    documents: list[Document[Any]]  # the files read, for the --set they use


def _target(args: argparse.Namespace, store: StateStore,
            overrides: dict[str, str]) -> _Target:
    if args.lab:
        if len(args.files) != 1:
            raise UsageError("with --lab, give only the PLAYBOOK",
                             hint=f"lab run --lab {args.lab} playbooks/replyhi.yaml")
        try:
            state = store.load(args.lab)
        except LabNotFound as exc:  # a name mistyped: bad input, not a host to look at
            raise UsageError(exc.message, hint=exc.hint) from None
        return _Target(state, Path(state.topology), _lab_topology(store.paths, state.name),
                       args.files[0], [])
    if len(args.files) != 2:
        raise UsageError("give a TOPOLOGY and a PLAYBOOK (or --lab NAME and a PLAYBOOK)",
                         hint="lab run topologies/pair.yaml playbooks/replyhi.yaml")
    topology_file, playbook_file = args.files
    if topology_file.is_file() and playbook_file.is_file():  # else loading says what is amiss
        _check_order(topology_file, playbook_file)
    try:
        document, topology = read_topology(topology_file, overrides)
    except InputError:  # the playbook's templates need its facts
        warn(f"{playbook_file}: not checked, as {topology_file} has errors; fix them first")
        raise
    return _Target(None, topology_file, topology, playbook_file, [document])


def _check_order(topology_file: Path, playbook_file: Path) -> None:
    """A topology, then a playbook: files the other way round, or of one kind, are
    bad input, said before either is read in full."""
    kinds = document_kind(topology_file), document_kind(playbook_file)
    if kinds == ("playbook", "topology"):
        raise UsageError(f"{topology_file} is a playbook and {playbook_file} is not",
                         hint=f"the topology comes first: lab run {playbook_file} "
                              f"{topology_file}")
    if kinds[0] == kinds[1]:
        both = "topologies" if kinds[0] == "topology" else "playbooks"
        raise UsageError(f"{topology_file} and {playbook_file} are both {both}",
                         hint="give a topology, then a playbook: lab run "
                              "topologies/pair.yaml playbooks/replyhi.yaml")


async def _remove(state: LabState, backend: Backend, store: StateStore) -> bool:
    """Tear the lab down; whether it went. What kept it is said here, even when the
    run is being interrupted (the error would not reach the user then)."""
    try:
        await tear_down(state, backend, store)
    except LabError as exc:  # what ended the run, if anything, is the error
        ProgressPrinter()(TeardownFailed(state.name, exc.message))
        return False
    err.print(f"lab {state.name} removed")
    return True


def _record_no_lab(run_dir: RunDir, lab: str, topology: Topology, topology_file: Path,
                   book: Playbook, *, why: str | None) -> None:
    """The run directory of a run with no lab to run on (it did not come up, or is no
    longer running: `why`; or the run was interrupted: None): its summary.json and
    junit.xml say why, and list the steps and expectations, none run. Never in the way
    of the error itself."""
    try:
        summary = RunSummary(lab=lab, playbook=str(book.path), topology=str(topology_file),
                             nodes={n.name: NodeRun(n.image, "") for n in topology.nodes},
                             error=why, interrupted=why is None)
        save_cut_short(summary, book, run_dir, why or "the run was interrupted")
    except OSError as exc:
        warn(f"no summary of it: {file_problem(exc)}")


def _print_summary(summary: RunSummary, run_dir: Path) -> None:
    """What the run found: warnings, expectations, events, correlation, where the
    reports are, failures."""
    for line in summary.warnings:
        warn(line)
    checked = [e for e in summary.expectations if e.checked]
    for e in checked:
        mark = "[green]ok[/green]  " if e.ok else "[red]FAIL[/red]"
        err.print(f"{mark} expect {escape(e.name)} {escape('[' + e.node + ']')}: "
                  f"{escape(e.detail)}")
    if unchecked := [e for e in summary.expectations if not e.checked]:
        err.print(f"{count(len(unchecked), 'expectation')} {escape(unchecked[0].detail)}")
    nodes = summary.nodes or summary.event_counts  # a node nothing traced: "none"
    counts = ", ".join(f"{node} {sum(summary.event_counts[node].values())}"
                       if node in summary.event_counts else f"{node} none" for node in nodes)
    err.print(f"events: {escape(counts) or 'none'}")
    for line in summary_lines(summary.correlation) if summary.correlation else []:
        err.print(escape(line))
    err.print(f"reports: {escape(str(run_dir / HTML))} (a browser), {TIMELINE}, "
              f"{TRACE} (ui.perfetto.dev), {CONNECTIONS}")
    for line in summary.step_failures + summary.losses:  # what failed, then why it may have
        err.print(f"[bold red]error:[/bold red] {escape(line)}")
    if failed := [f"{e.name} [{e.node}]" for e in checked if not e.ok]:
        # Their FAIL lines above say why; the run's last word says that it failed.
        err.print(f"[bold red]error:[/bold red] {len(failed)} of "
                  f"{count(len(summary.expectations), 'expectation')} failed: "
                  f"{escape(', '.join(failed))}")


async def _check_up(state: LabState, backend: Backend) -> None:
    """A lab to run on is up, and its guests still run (the state file only says they
    were started)."""
    stopped = await stopped_nodes(state, backend)
    if state.status != "up" or stopped:
        why = (f"{', '.join(stopped)} not running (the host rebooted, or a guest died)"
               if state.status == "up" else "not up yet (or its lab up was stopped)")
        down = f"lab down {state.name}; then lab run TOPOLOGY PLAYBOOK"
        raise LabError(f"lab {state.name}: {why}",
                       hint=down if state.status == "up" else
                       f"wait for its lab up to end; if that was stopped: {down}")


def _lab_topology(paths: Paths, lab: str) -> Topology:
    """The topology a lab came up with, as `lab up` recorded it."""
    path = paths.lab_dir(lab) / TOPOLOGY_FILE
    try:
        return Topology.from_dict(json.loads(path.read_bytes()))
    except (OSError, ValueError, LookupError, TypeError) as exc:
        raise UsageError(f"lab {lab}: its topology cannot be read from {path} ({exc})",
                         hint=f"run the playbook on a new lab: lab down {lab}; "
                              "lab run TOPOLOGY PLAYBOOK") from exc


def _check_runs_dir(runs: Path) -> None:
    """Make the runs directory and a directory in it now, not after a lab has booted."""
    hint = "give a directory this user can write in (default: ./runs)"
    if runs.exists() and not runs.is_dir():
        raise UsageError(f"--runs {runs}: not a directory", hint=hint)
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--runs {runs}: cannot create it: {exc.strerror or exc}",
                         hint=hint) from exc
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lab-check-", dir=runs))
    except OSError as exc:
        raise UsageError(f"--runs {runs}: cannot make a run directory in it: "
                         f"{exc.strerror or exc}", hint=hint) from exc


class _StepPrinter:
    """Each step's line as it ends, and for a long one a line every STILL_RUNNING
    seconds while it runs (a CI log is not silent for minutes)."""

    def __init__(self, book: Playbook) -> None:
        # A name made up from the action already says where it runs (but for a wait or a
        # stop, which names a handle).
        self.made_up = {s.index for s in book.steps if s.name == describe_step(
            s.action, s.nodes) and not isinstance(s.action, Wait | Stop)}
        self.total = len(book.steps)
        self.ticking: asyncio.TimerHandle | None = None

    def __call__(self, step: StepResult) -> None:
        self.close()
        if step.status == "running":
            loop = asyncio.get_running_loop()
            self.ticking = loop.call_later(STILL_RUNNING, self._still_running, step,
                                           loop.time())
            return
        status = {"ok": "[green]ok[/green]", "failed": "[red]FAILED[/red]",
                  "skipped": "[dim]skipped[/dim]", "interrupted": "[red]interrupted[/red]"}
        err.print(f"{self._line(step)}: {status[step.status]}"
                  + (f" {step.seconds:.1f} s" if step.status != "skipped" else ""))
        for failure in step.failures:
            err.print(f"    {escape(failure)}")

    def close(self) -> None:
        """No more "still running" lines: the step ended, or the run."""
        if self.ticking is not None:
            self.ticking.cancel()
            self.ticking = None

    def _line(self, step: StepResult) -> str:
        where = f" ({', '.join(step.nodes)})" if step.nodes and \
            step.index not in self.made_up else ""
        return f"[{step.index + 1}/{self.total}] {escape(step.name)}{escape(where)}"

    def _still_running(self, step: StepResult, began: float) -> None:
        loop = asyncio.get_running_loop()
        err.print(f"{self._line(step)}: running, {loop.time() - began:.0f} s")
        self.ticking = loop.call_later(STILL_RUNNING, self._still_running, step, began)

