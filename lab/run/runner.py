"""Run a playbook on a lab that is up, and leave everything in a run directory.

Stages: open a session per node → time round trips to each node's clock →
steps in order (the first failure skips the rest) → stop what is still
running (background commands, tracers) → round trips again → collect
consoles and traces → parse and annotate events → correlate → check
expectations → summary.json and junit.xml. Every stage after the steps runs
on every path, so a failed run still leaves its traces behind.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from pathlib import Path

from lab.aio import all_settled, to_the_end
from lab.correlate.correlation import correlate
from lab.correlate.sockets import annotate_sockets
from lab.correlate.sync.host import RoundTrip, write_round_trips
from lab.errors import LabError, file_problem
from lab.events import Event, write_events
from lab.export.outputs import write_reports
from lab.export.report_data import run_outcome
from lab.files import atomic_write
from lab.keys import PRIVATE_KEY_NAME
from lab.log import get_logger
from lab.paths import Paths
from lab.playbook import Playbook, evaluate
from lab.run.actions import (
    TIDY_TIMEOUT,
    judge_unwaited,
    run_step,
    stop_all_backgrounds,
    stop_all_tracers,
)
from lab.run.context import RunContext
from lab.run.junit import FILE as JUNIT_FILE
from lab.run.junit import junit_xml
from lab.run.results import ExpectationResult, NodeRun, RunDir, RunSummary, StepResult
from lab.run.round_trips import measure
from lab.ssh import NodeSession
from lab.state import LabState
from lab.topology import Topology
from lab.tracers.ftrace import parse_trace
from lab.tracers.strace import parse_strace, read_clocks_file

StepSink = Callable[[StepResult], None]


async def run_playbook(book: Playbook, topology: Topology, state: LabState, paths: Paths,
                       run_dir: RunDir, *, on_step: StepSink = lambda _: None,
                       tidy: bool = True) -> RunSummary:
    """Run `book` on the lab; `tidy`: leave the guests as found (not needed, and
    slower, when the lab is removed afterwards). However the run ends, its run
    directory holds a summary.json and a junit.xml that say how far it got."""
    started = time.monotonic()
    summary = RunSummary(lab=state.name, playbook=str(book.path), topology=state.topology,
                         nodes={name: NodeRun(node.image, node.kernel_release,
                                              node.ready_seconds)
                                for name, node in state.nodes.items()},
                         accel=state.accel)
    run_dir.write_json("topology.json", topology.to_dict())
    run_dir.write_json("playbook.json", book.to_dict())

    def cut_short(why: str) -> None:
        summary.seconds = round(time.monotonic() - started, 3)
        save_cut_short(summary, book, run_dir, why)
        with suppress(OSError):  # the summary first: a console that cannot be copied
            _copy_consoles(state, run_dir)

    trips: dict[str, list[RoundTrip]] = {}
    try:
        await _run_steps(book, state, paths, run_dir, trips, summary=summary,
                         on_step=on_step, tidy=tidy)
    except asyncio.CancelledError:
        # Interrupted: say so, and how far it got, for `lab report` and for people. The
        # traces collected as the run wound down are parsed (quick), not correlated (a
        # large run takes a while): `lab report` does that when asked.
        summary.interrupted = True
        try:
            _keep_events(summary, state, run_dir)
        except Exception as exc:  # a full disk, or a bug: the interruption is told
            get_logger(__name__, run=run_dir.path.name).warning(
                "the traces collected were not parsed: %s", exc)
        cut_short("the run was interrupted")
        raise
    except LabError as exc:  # no session to a node: no step could run
        summary.error = str(exc)
        cut_short("the steps did not run")
        raise
    except Exception as exc:  # a bug, or a file this host refused: say so, then fail
        summary.error = f"the run failed: {exc}"
        cut_short("the run failed")
        raise
    try:
        _copy_consoles(state, run_dir)
        events = _keep_events(summary, state, run_dir)
        result = correlate(events, reference=next(iter(state.nodes)), round_trips=trips)
        summary.correlation = result.summary
        summary.expectations = _expectations(book, events, summary.steps)
        summary.ok = not summary.lost and all(s.status == "ok" for s in summary.steps) and \
            all(e.ok for e in summary.expectations)
        write_reports(run_dir.path, result, run=run_outcome(json.loads(summary.to_json())))
    except Exception as exc:  # a full disk, or a bug: the steps' results are still kept
        summary.ok = False
        summary.error = f"the traces could not be analysed: {exc}"
        cut_short("the traces could not be analysed")
        raise
    summary.seconds = round(time.monotonic() - started, 3)
    save_summary(summary, book, run_dir)
    return summary


async def _run_steps(book: Playbook, state: LabState, paths: Paths, run_dir: RunDir,
                     trips: dict[str, list[RoundTrip]], *, summary: RunSummary,
                     on_step: StepSink, tidy: bool) -> None:
    """Open a session per node, time the clocks (into `trips`), run the steps, wind
    down. The tracers' results are in `summary` however it ends."""
    key = paths.lab_dir(state.name) / PRIVATE_KEY_NAME
    async with AsyncExitStack() as stack:
        # Every node at once. All have ended before an error is raised, so that the
        # stack closes each session that did open.
        opened = await all_settled(*(stack.enter_async_context(
            NodeSession.open(node, state.endpoint(node), key)) for node in state.nodes))
        sessions = dict(zip(state.nodes, opened, strict=True))
        ctx = RunContext(book, state, sessions, run_dir, paths.programs, tidy=tidy)
        try:
            await _time_clocks(ctx, trips, summary)
            await _steps(ctx, summary, on_step)
        finally:
            # Leave nothing running in the guests, whatever happened above; what the
            # tracers collected is kept even when this is interrupted meanwhile.
            try:
                await to_the_end(_wind_down(ctx, summary))
            finally:
                summary.tracers = list(ctx.tracers.values())
        await _time_clocks(ctx, trips, summary)  # the tracers have stopped: in no trace
        summary.lost = [node for node, session in sessions.items() if session.lost]


def _expectations(book: Playbook, events: list[Event],
                  steps: list[StepResult]) -> list[ExpectationResult]:
    """Each expectation judged on each of its nodes; none when a step failed: a trace
    cut short would pass an `absent:` and fail a `count:` for no reason of its own."""
    if stopped := next((s for s in steps if s.status != "ok"), None):
        how = {"failed": "failed" + (", and the steps after it did not run"
                                     if stopped is not steps[-1] else ""),
               "interrupted": "was interrupted"}.get(stopped.status, "did not run to its end")
        return unchecked(book, f"step {stopped.index + 1} ({stopped.name}) {how}")
    return [ExpectationResult(o.expectation.name, o.expectation.line, o.node, o.ok, o.detail)
            for o in evaluate(book.expect, events)]


def unchecked(book: Playbook, why: str) -> list[ExpectationResult]:
    """Every expectation on each of its nodes, not checked, and why: a report lists the
    same test cases however the run ended."""
    return [ExpectationResult(e.name, e.line, node, ok=False, detail=f"not checked: {why}",
                              checked=False) for e in book.expect for node in e.nodes]


def save_cut_short(summary: RunSummary, book: Playbook, run_dir: RunDir, why: str) -> None:
    """The summary of a run that ended early (`why`): the steps it did not get to listed
    as not run, every expectation as not checked, as a complete run lists them."""
    summary.steps += map(StepResult.of, book.steps[len(summary.steps):])
    summary.expectations = unchecked(book, why)
    save_summary(summary, book, run_dir)


def save_summary(summary: RunSummary, book: Playbook, run_dir: RunDir) -> None:
    """summary.json, and the same as the JUnit XML that CI systems show: each whole or
    not at all (a run stopped as it writes them is read by `lab report` and CI)."""
    atomic_write(run_dir.path / "summary.json", summary.to_json().encode(), mode=0o644)
    atomic_write(run_dir.path / JUNIT_FILE, junit_xml(summary, book.name), mode=0o644)


async def _steps(ctx: RunContext, summary: RunSummary, on_step: StepSink) -> None:
    failed = False
    for step in ctx.book.steps:
        result = StepResult.of(step)
        summary.steps.append(result)
        if failed:
            on_step(result)  # skipped
            continue
        result.status = "running"
        on_step(result)
        began = time.monotonic()
        try:
            result.results = await run_step(ctx, step)
        except LabError as exc:  # the step's own failures are results: this is a last resort
            result.error = exc.message
        except OSError as exc:  # this host refused a file (a full disk)
            result.error = file_problem(exc)
        except asyncio.CancelledError:
            result.status = "interrupted"
            result.seconds = round(time.monotonic() - began, 3)
            raise
        result.seconds = round(time.monotonic() - began, 3)
        # A wait or stop step names a handle, not nodes: they are where its command ran.
        result.nodes = result.nodes or [r.node for r in result.results]
        result.status = "ok" if result.error is None and all(r.ok for r in result.results) \
            else "failed"
        failed = result.status == "failed"
        on_step(result)


async def _time_clocks(ctx: RunContext, trips: dict[str, list[RoundTrip]],
                       summary: RunSummary) -> None:
    """Round trips to every node's clock, kept in the run directory for `lab report`.
    Without them the clocks are aligned as well as the traffic allows: a warning of the
    run, never fatal."""
    failed = await measure(ctx.sessions, ctx.program_cache, ctx.clocks_installed, trips)
    summary.unclocked |= failed
    try:
        write_round_trips(ctx.run_dir.path, trips)
    except OSError as exc:
        get_logger(__name__, run=ctx.run_dir.path.name).warning(
            "the clock round trips could not be kept: %s", file_problem(exc))


async def _wind_down(ctx: RunContext, summary: RunSummary) -> None:
    log = get_logger(__name__, lab=ctx.state.name, run=ctx.run_dir.path.name)
    try:
        for step, result in await judge_unwaited(ctx):
            summary.steps[step.index].judged_later(result)
    except (LabError, OSError) as exc:  # nor from stopping what still runs
        log.warning("could not check the background commands that ended: %s", exc)
    try:
        for problem in await stop_all_backgrounds(ctx):
            log.warning("background command %s could not be stopped", problem)
    except (LabError, OSError) as exc:  # one failure must not keep the tracers from stopping
        log.warning("could not stop the background commands: %s", exc)
    try:  # a trace that could not be collected is a warning of the run (TracerResult.error)
        for problem in await stop_all_tracers(ctx):
            log.warning("%s (its trace was collected)", problem)
    except (LabError, OSError) as exc:
        log.warning("could not stop the tracers: %s", exc)
    if ctx.tidy:  # the lab stays up: its guests are left as found
        try:
            await all_settled(*(session.run(["rm", "-rf", ctx.node_dir], check=True,
                                            timeout=TIDY_TIMEOUT)
                                for session in ctx.sessions.values()))
        except (LabError, OSError) as exc:
            log.warning("could not remove %s: %s", ctx.node_dir, exc)


def _copy_consoles(state: LabState, run_dir: RunDir) -> None:
    for name, node in state.nodes.items():
        source = Path(node.console_log)
        if source.exists():
            shutil.copyfile(source, run_dir.path / "consoles" / f"{name}.log")


def _keep_events(summary: RunSummary, state: LabState, run_dir: RunDir) -> list[Event]:
    """Every collected trace, parsed and annotated node by node, and kept in the run
    directory's events.jsonl."""
    events: list[Event] = []
    for tracer in summary.tracers:
        raw = run_dir.path / tracer.raw
        if not raw.exists():
            continue
        kernel = state.nodes[tracer.node].kernel_release
        with raw.open(errors="replace") as lines:
            if tracer.tracer == "ftrace":  # its entries are the ring buffer's count
                parsed = parse_trace(lines, node=tracer.node, kernel=kernel)
            else:
                text = lines.read().splitlines()
                tracer.entries = len(text)
                parsed = parse_strace(text, node=tracer.node, kernel=kernel,
                                      clocks=read_clocks_file(raw))
        tracer.unparsed, tracer.unparsed_samples = parsed.unparsed, parsed.unparsed_samples
        tracer.lost += parsed.lost  # LOST markers in the text itself
        tracer.events = len(parsed.events)
        events += annotate_sockets(parsed.events)
    events.sort(key=lambda e: (e.node, e.ts))
    write_events(run_dir.path / "events.jsonl", events)
    summary.event_counts = _counts(events)
    return events


def _counts(events: list[Event]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for e in events:
        counts.setdefault(e.node, Counter())[e.kind.value] += 1
    return {node: dict(c) for node, c in counts.items()}

