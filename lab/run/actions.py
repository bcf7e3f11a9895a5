"""One function per kind of step; each returns one NodeResult per node it ran on.

Steps on several nodes run on all of them at once. A result that is not ok
carries a one-line reason; nothing here raises for an expected failure.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import replace
from operator import attrgetter
from typing import TypeVar

from lab.aio import all_settled, to_the_end
from lab.errors import LabError, NodeError, file_problem
from lab.playbook import (
    Deploy,
    Pull,
    Push,
    Run,
    Sleep,
    Step,
    Stop,
    TraceStart,
    TraceStop,
    Wait,
    WaitPort,
)
from lab.playbook.plan import output_matches
from lab.programs import build_program
from lab.run.context import Background, RunContext
from lab.run.results import TAIL, NodeResult, TracerResult
from lab.ssh import CommandResult, CommandTimeout
from lab.text import last_line
from lab.tracers.ftrace import (
    STOP_TIMEOUT,
    FtraceError,
    cleanup_script,
    start_ftrace,
    stop_ftrace,
)
from lab.tracers.strace import collect_strace, install_clocks, wrap

PORT_POLL = 0.1  # seconds between looks at a node's socket tables
TIDY_TIMEOUT = 10.0  # seconds to remove what a run leaves on a node (a trace start cut short)
# Seconds from SIGTERM to SIGKILL for what a playbook left running at its end: it never
# waited for those commands, so how they end is not part of the experiment; its own
# stop steps take their `timeout:` (DEFAULT_STOP_TIMEOUT).
LEFTOVER_STOP_TIMEOUT = 2.0

T = TypeVar("T")


async def run_step(ctx: RunContext, step: Step) -> list[NodeResult]:
    action = step.action
    match action:
        case Run(background=str()):
            return await _each(ctx, step, lambda n: _start_background(ctx, step, n))
        case Run():
            return await _each(ctx, step, lambda n: _run(ctx, step, n))
        case Wait():
            return await _wait(ctx, action)
        case Stop():
            return await _stop(ctx, action.handle, action.timeout)
        case WaitPort():
            return await _each(ctx, step, lambda n: _wait_port(ctx, n, action))
        case Push():
            return await _each(ctx, step, lambda n: _push(ctx, n, action))
        case Pull():
            return await _each(ctx, step, lambda n: _pull(ctx, n, action))
        case Deploy():
            return await _deploy(ctx, step, action)
        case TraceStart():
            return await _each(ctx, step, lambda n: _trace_start(ctx, n, action))
        case TraceStop():
            return await _each(ctx, step,
                               lambda n: _trace_stop(ctx, n, action.tracer, action.timeout))
        case Sleep():
            await asyncio.sleep(action.seconds)
            return []


async def _each(ctx: RunContext, step: Step,
                one: Callable[[str], Awaitable[NodeResult]]) -> list[NodeResult]:
    """`one` on each of the step's nodes, all at once."""
    return await _on_each(step.nodes, lambda node: node, one)


async def _each_background(backgrounds: Iterable[Background],
                           one: Callable[[Background], Awaitable[NodeResult]],
                           ) -> list[NodeResult]:
    """`one` on each command of a handle, all at once."""
    return await _on_each(backgrounds, attrgetter("node"), one)


async def _on_each(items: Iterable[T], node_of: Callable[[T], str],
                   one: Callable[[T], Awaitable[NodeResult]]) -> list[NodeResult]:
    """`one` on every item at once; an error fails only its item's node."""
    async def guarded(item: T) -> NodeResult:
        try:
            return await one(item)
        except (LabError, OSError) as exc:
            return _failed(node_of(item), exc)
    return await all_settled(*(guarded(item) for item in items))


def _failed(node: str, exc: LabError | OSError) -> NodeResult:
    return NodeResult(node, ok=False, error=_reason(node, exc))


def _reason(node: str, exc: LabError | OSError) -> str:
    """The error's message, without the node's name (results are shown by node); for
    a file this host could not write (a full disk), which file and why."""
    if isinstance(exc, OSError):
        return file_problem(exc)
    return exc.detail if isinstance(exc, NodeError) and exc.node == node else exc.message


def _judge_background(ctx: RunContext, bg: Background, result: CommandResult,
                      checks: Run | Wait | None = None) -> NodeResult:
    """How a background command ended: what it printed kept in outputs/, and checked
    against `checks` (the step that waited for it, or its own run step; None: kept only).
    From then on it is judged."""
    bg.judged = True
    return _judge(ctx, bg.step, bg.node, result,
                  expect_exit=checks.expect_exit if checks else None,
                  expect_stdout=checks.expect_stdout if checks else None,
                  expect_stderr=checks.expect_stderr if checks else None)


def _ending(output: str) -> str:
    """What an output that did not match said last, for its failure's one line."""
    last = last_line(output)
    return f" (its last line: {last[:120]!r})" if last else " (it printed nothing)"


def _judge(ctx: RunContext, step: Step, node: str, result: CommandResult, *,
           expect_exit: int | None, expect_stdout: str | None,
           expect_stderr: str | None) -> NodeResult:
    """Save a command's output and check it against the step's expectations."""
    ctx.run_dir.output(step.index, node, "out").write_bytes(result.stdout)
    ctx.run_dir.output(step.index, node, "err").write_bytes(result.stderr)
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    error = None
    if expect_exit is not None and result.exit_status != expect_exit:
        last = last_line(stderr)
        error = f"exit status {result.exit_status}, expected {expect_exit}" + (
            f": {last}" if last else "")
    elif expect_stdout is not None and not output_matches(expect_stdout, stdout):
        error = f"stdout does not match {expect_stdout!r}{_ending(stdout)}"
    elif expect_stderr is not None and not output_matches(expect_stderr, stderr):
        error = f"stderr does not match {expect_stderr!r}{_ending(stderr)}"
    return NodeResult(node, ok=error is None, exit_status=result.exit_status,
                      stdout_tail=stdout[-TAIL:], stderr_tail=stderr[-TAIL:], error=error)


async def _run(ctx: RunContext, step: Step, node: str) -> NodeResult:
    action = step.action
    assert isinstance(action, Run)
    command = await _command_line(ctx, step, node)
    try:
        result = await ctx.session(node).run(command, timeout=action.timeout)
    except CommandTimeout as exc:
        ctx.run_dir.output(step.index, node, "out").write_bytes(exc.stdout)
        ctx.run_dir.output(step.index, node, "err").write_bytes(exc.stderr)
        outcome = NodeResult(node, ok=False, error=f"did not finish within {exc.timeout:g} s")
    else:
        outcome = _judge(ctx, step, node, result, expect_exit=action.expect_exit,
                         expect_stdout=action.expect_stdout, expect_stderr=action.expect_stderr)
    return await _with_strace(ctx, step, node, outcome)


async def _with_strace(ctx: RunContext, step: Step, node: str,
                       outcome: NodeResult) -> NodeResult:
    """The outcome of a command that has ended, once its strace trace (if it has one)
    is collected. A trace that cannot be collected fails the step, its reason after
    the command's own (strace's complaint, in the command's stderr, says most)."""
    try:
        await _collect_strace(ctx, step, node)
    except LabError as exc:
        why = "; ".join(e for e in (outcome.error, _reason(node, exc)) if e)
        return replace(outcome, ok=False, error=why)
    return outcome


async def _command_line(ctx: RunContext, step: Step, node: str) -> str:
    """The step's command, wrapped in strace when the step asks for it."""
    action = step.action
    assert isinstance(action, Run)
    if not action.strace:
        return action.command
    session = ctx.session(node)
    if node not in ctx.clocks_installed:
        await install_clocks(session, ctx.program_cache)
        ctx.clocks_installed.add(node)
    await session.run(["mkdir", "-p", ctx.node_dir], check=True)
    syscalls = ctx.book.strace.syscalls
    return wrap(action.command, ctx.node_file(step, node, "strace"),
                list(syscalls) if syscalls is not None else None)


async def _collect_strace(ctx: RunContext, step: Step, node: str) -> None:
    """Fetch the strace output of a step that has ended, into raw/."""
    action = step.action
    if not (isinstance(action, Run) and action.strace):
        return
    local = ctx.run_dir.raw(f"strace-{step.index + 1:02d}", node)
    await collect_strace(ctx.session(node), ctx.node_file(step, node, "strace"), local)
    ctx.tracers[(f"strace-{step.index + 1:02d}", node)] = TracerResult(
        node, "strace", str(local.relative_to(ctx.run_dir.path)))


async def _start_background(ctx: RunContext, step: Step, node: str) -> NodeResult:
    action = step.action
    assert isinstance(action, Run) and action.background
    # The command's process id is written first, so that `stop` can signal it.
    command = await _command_line(ctx, step, node)
    line = (f"mkdir -p {ctx.node_dir} && echo $$ > {ctx.node_file(step, node, 'pid')} && "
            f"exec sh -c {shlex.quote(command)}")
    task = asyncio.create_task(ctx.session(node).run(line))
    ctx.backgrounds.setdefault(action.background, []).append(Background(node, step, task))
    return NodeResult(node, ok=True)


async def _wait(ctx: RunContext, action: Wait) -> list[NodeResult]:
    async def one(bg: Background) -> NodeResult:
        try:
            result = await asyncio.wait_for(asyncio.shield(bg.task), action.timeout)
        except TimeoutError:
            return NodeResult(bg.node, ok=False,
                              error=f"{action.handle} still runs after {action.timeout:g} s")
        outcome = _judge_background(ctx, bg, result, action)
        return await _with_strace(ctx, bg.step, bg.node, outcome)
    return await _each_background(ctx.backgrounds.get(action.handle, []), one)


async def _stop(ctx: RunContext, handle: str, timeout: float) -> list[NodeResult]:
    """SIGTERM to the command's process group, SIGKILL after `timeout`."""
    async def one(bg: Background) -> NodeResult:
        try:
            await _signal(ctx, bg, timeout)
        finally:
            if not bg.task.done():
                bg.task.cancel()  # its channel closes; dropbear signals what is left
            await asyncio.wait([bg.task])
        if bg.task.cancelled():  # ended by the signals or the closed channel: stopped
            return NodeResult(bg.node, ok=True)
        if isinstance(failed := bg.task.exception(), LabError | OSError):
            # Its session broke before the stop: its output is lost, and the user must know.
            return NodeResult(bg.node, ok=False, error=f"{handle} had already failed: "
                                                       f"{_reason(bg.node, failed)}")
        _judge_background(ctx, bg, bg.task.result())
        return await _with_strace(ctx, bg.step, bg.node, NodeResult(bg.node, ok=True))
    return await _each_background(ctx.backgrounds.get(handle, []), one)


async def _signal(ctx: RunContext, bg: Background, timeout: float) -> None:
    """Signal a background command until it ends: SIGTERM, then SIGKILL."""
    session = ctx.session(bg.node)
    for signal in ("TERM", "KILL"):
        if bg.task.done():
            return
        await session.run(f"p=$(cat {ctx.node_file(bg.step, bg.node, 'pid')}) && "
                          f"(kill -{signal} -$p || kill -{signal} $p)"
                          " 2>/dev/null", timeout=timeout)
        try:
            await asyncio.wait_for(asyncio.shield(bg.task), timeout)
        except TimeoutError:
            continue
        except LabError:
            return


async def judge_unwaited(ctx: RunContext) -> list[tuple[Step, NodeResult]]:
    """Background commands that ended by themselves and that no step waited for, checked
    as their run step asks (exit status 0 unless it says otherwise): a server that
    crashed fails the run even if nothing waited for it. Their output and strace trace
    are kept."""
    async def judge(bg: Background) -> tuple[Step, NodeResult]:
        action, result = bg.step.action, _result(bg)
        assert isinstance(action, Run) and result is not None
        outcome = _judge_background(ctx, bg, result, action)
        if not outcome.ok:
            outcome = replace(outcome, error=f"{outcome.error} (it ended before the playbook "
                                             "did, and no step waited for it)")
        return bg.step, await _with_strace(ctx, bg.step, bg.node, outcome)
    return await all_settled(*(judge(bg) for backgrounds in ctx.backgrounds.values()
                               for bg in backgrounds if _unjudged(bg)))


async def stop_all_backgrounds(ctx: RunContext) -> list[str]:
    """Background commands still running are stopped, every handle at once; what failed."""
    running = [handle for handle, backgrounds in ctx.backgrounds.items()
               if any(not bg.task.done() for bg in backgrounds)]
    stopped = await all_settled(*(_stop(ctx, handle, LEFTOVER_STOP_TIMEOUT)
                                  for handle in running))
    return [f"{handle} on {r.node}: {r.error}"
            for handle, results in zip(running, stopped, strict=True)
            for r in results if not r.ok]


def _result(bg: Background) -> CommandResult | None:
    """How a background command ended, if it ended by itself (not stopped, not lost)."""
    if not bg.task.done() or bg.task.cancelled() or bg.task.exception() is not None:
        return None
    return bg.task.result()


def _unjudged(bg: Background) -> bool:
    """Whether a background command ended and no step has looked at how."""
    return _result(bg) is not None and not bg.judged


async def _wait_port(ctx: RunContext, node: str, action: WaitPort) -> NodeResult:
    tables = ["/proc/net/tcp", "/proc/net/tcp6"] if action.proto == "tcp" else \
        ["/proc/net/udp", "/proc/net/udp6"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + action.timeout
    # The command meant to open the port is one of these: if one fails, that is why
    # (one that exits 0 may have left a daemon behind to open it).
    watched = [(handle, bg) for handle, backgrounds in ctx.backgrounds.items()
               for bg in backgrounds if bg.node == node
               and (not bg.task.done() or _unjudged(bg))]
    while True:
        listing = await ctx.session(node).run(["cat", *tables], check=True)
        if _port_in(listing.stdout.decode(), action.port, listening=action.proto == "tcp"):
            return NodeResult(node, ok=True)
        if failed := next(((h, bg) for h, bg in watched if _went_wrong(bg)), None):
            return _failed_first(ctx, node, action, *failed)
        if loop.time() >= deadline:
            exited = [h for h, bg in watched if (r := _result(bg)) and r.exit_status == 0]
            return NodeResult(node, ok=False, error=(
                f"nothing on {action.proto} port {action.port} after {action.timeout:g} s"
                + (f" ({', '.join(exited)} exited 0: did what it started fail?)"
                   if exited else "")))
        await asyncio.sleep(PORT_POLL)


def _went_wrong(bg: Background) -> bool:
    """Whether a background command has ended by itself with a status other than 0, or
    its session broke."""
    if not bg.task.done() or bg.task.cancelled():
        return False
    return bg.task.exception() is not None or bg.task.result().exit_status != 0


def _failed_first(ctx: RunContext, node: str, action: WaitPort, handle: str,
                  bg: Background) -> NodeResult:
    """wait_port's failure when a background command on the node failed before the port
    was opened: its exit status and last line of stderr say why."""
    what = f"nothing on {action.proto} port {action.port}: {handle} failed first"
    if (result := _result(bg)) is None:  # its session broke
        return NodeResult(node, ok=False, error=what)
    saved = _judge_background(ctx, bg, result)
    last = last_line(saved.stderr_tail)
    return NodeResult(node, ok=False, exit_status=result.exit_status,
                      stdout_tail=saved.stdout_tail, stderr_tail=saved.stderr_tail,
                      error=f"{what} (exit status {result.exit_status})"
                            + (f": {last}" if last else ""))


def _port_in(table: str, port: int, *, listening: bool) -> bool:
    """Whether /proc/net/{tcp,udp}[6] lists a local `port` (TCP: in state LISTEN)."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].rsplit(":", 1)[-1] == f"{port:04X}" \
                and (not listening or fields[3] == "0A"):
            return True
    return False


async def _push(ctx: RunContext, node: str, action: Push) -> NodeResult:
    await ctx.session(node).put(action.src, action.dst, timeout=action.timeout)
    return NodeResult(node, ok=True)


async def _pull(ctx: RunContext, node: str, action: Pull) -> NodeResult:
    target = ctx.run_dir.path / action.dst
    target.parent.mkdir(parents=True, exist_ok=True)
    await ctx.session(node).get(action.src, target, timeout=action.timeout)
    return NodeResult(node, ok=True)


async def _deploy(ctx: RunContext, step: Step, action: Deploy) -> list[NodeResult]:
    try:
        if (program := action.to_compile) is not None:
            binary = await build_program(program, ctx.program_cache)
        else:
            assert action.source is not None
            binary = action.source  # an executable or a script, copied as it is
    except (LabError, OSError) as exc:
        why = str(exc) if isinstance(exc, LabError) else _reason("", exc)
        return [NodeResult(n, ok=False, error=why) for n in step.nodes]

    async def install(node: str) -> NodeResult:
        session = ctx.session(node)
        await session.run(["mkdir", "-p", posixpath.dirname(action.dest)], check=True)
        await session.put(binary, action.dest, timeout=action.timeout)
        await session.run(["chmod", "755", action.dest], check=True)
        return NodeResult(node, ok=True)
    return await _each(ctx, step, install)


async def _trace_start(ctx: RunContext, node: str, action: TraceStart) -> NodeResult:
    try:
        skipped = await start_ftrace(ctx.session(node), action.settings,
                                     timeout=action.timeout)
    except (LabError, asyncio.CancelledError):
        if ctx.tidy:  # a start cut short or interrupted leaves probes on a lab that stays up
            with suppress(LabError):
                await to_the_end(ctx.session(node).run(
                    "sh -s", input=cleanup_script().encode(),
                    timeout=min(action.timeout, TIDY_TIMEOUT)))
        raise
    raw = ctx.run_dir.raw("ftrace", node)
    ctx.tracers[("ftrace", node)] = TracerResult(
        node, "ftrace", str(raw.relative_to(ctx.run_dir.path)), skipped_probes=skipped,
        added_functions=list(action.settings.functions.add))
    return NodeResult(node, ok=True)


async def _trace_stop(ctx: RunContext, node: str, tracer: str, timeout: float) -> NodeResult:
    result = ctx.tracers.get((tracer, node))
    if result is None:
        return NodeResult(node, ok=False, error=f"{tracer} was not started on {node}")
    raw = ctx.run_dir.path / result.raw
    try:
        stats = await stop_ftrace(ctx.session(node), raw, cleanup=ctx.tidy, timeout=timeout)
    except (LabError, OSError) as exc:
        saved = exc.stats if isinstance(exc, FtraceError) else None
        if saved is not None:  # only removing the probes failed: what it recorded counts
            result.entries, result.lost, result.missed = saved.entries, saved.lost, saved.missed
            ctx.collected.add((tracer, node))
        else:
            result.error = _reason(node, exc)
        raise
    result.entries, result.lost, result.missed = stats.entries, stats.lost, stats.missed
    ctx.collected.add((tracer, node))
    return NodeResult(node, ok=True)


async def stop_all_tracers(ctx: RunContext) -> list[str]:
    """Tracers a failed or short playbook left running are stopped and collected, on every
    node at once. A node whose tracer fails to stop costs only its own trace; why is kept
    in its TracerResult (a warning of the run). A tracer whose stop step already failed
    is not stopped again: that would fail again, or wait as long again. Returns what
    failed once the trace was saved (removing the probes)."""
    problems: list[str] = []

    # As long as the playbook's own stop steps allow, whichever of them did not run.
    timeout = max((s.action.timeout for s in ctx.book.steps if isinstance(s.action, TraceStop)),
                  default=STOP_TIMEOUT)

    async def stop(tracer: str, node: str, result: TracerResult) -> None:
        try:
            await _trace_stop(ctx, node, tracer, timeout)
        except (LabError, OSError) as exc:
            if result.error is None:  # collected all the same
                problems.append(f"{tracer} on {node}: {_reason(node, exc)}")
    await all_settled(*(stop(tracer, node, result)
                        for (tracer, node), result in ctx.tracers.items()
                        if result.tracer == "ftrace" and result.error is None
                        and (tracer, node) not in ctx.collected))
    return problems
