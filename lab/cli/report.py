"""`lab report RUN_DIR`: correlate a run's events again and write every report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.markup import escape

from lab.cli.common import Subparsers
from lab.cli.console import err, out, warn
from lab.correlate.correlation import choose_reference, correlate
from lab.correlate.sync.host import read_round_trips
from lab.errors import InputError, InputIssue, UsageError
from lab.events import read_events
from lab.export.outputs import TIMELINE, summary_lines, write_reports
from lab.export.report_data import run_outcome
from lab.export.timeline import NO_EVENTS
from lab.text import count

EVENTS = "events.jsonl"
PLAYBOOK = "playbook.json"  # the first file `lab run` writes in a run directory
SHOWN_SKIPPED = 3  # unreadable lines named one by one; the rest are counted

EPILOG = """\
examples:
  lab report runs/pair-1a2b3c-20261125-101500
  lab report runs/pair-1a2b3c-20261125-101500 --reference server

It reads events.jsonl and writes, in the same directory:
  connections.json   both ends of each connection, each send with its receives, latencies
  timeline.txt       both sides' calls merged on the reference node's clock
  trace.json         open it in https://ui.perfetto.dev (flows: send → receive)
  report.html        open it in a browser: a sequence diagram per connection, offline
`lab run` does this by itself at the end of every run. A line of events.jsonl that
cannot be read (a run cut short leaves half a line) is named and left out; a file
of which no line can be read is an error, and the reports there stay as they were.
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report", description="Correlate the events of a run directory: pair both ends of "
        "each connection, align the nodes' clocks, and write the reports.",
        epilog=EPILOG)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory `lab run` made")
    p.add_argument("--reference", metavar="NODE",
                   help="the node whose clock the others are aligned to "
                        "(default: the topology's first node; if it traced nothing, "
                        "the first by name that did)")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    if run_dir.name == EVENTS and not (run_dir / EVENTS).exists():  # the events file itself
        run_dir = run_dir.parent
    events_file = run_dir / EVENTS
    if not events_file.is_file() and (events_file.exists() or events_file.is_symlink()):
        what = ("a directory, not a file" if events_file.is_dir() else "not a regular file"
                if events_file.exists() else "a symbolic link that leads nowhere")
        raise UsageError(f"{events_file}: {what}",
                         hint="lab run writes it as a file, one event per line")
    if not events_file.is_file():
        if (run_dir / PLAYBOOK).is_file():  # `lab run` made it, and stopped early
            raise UsageError(f"{run_dir}: the run ended before its traces were parsed "
                             f"(no events.jsonl){_where_it_stopped(run_dir)}",
                             hint="what was collected is in raw/ and outputs/: run the "
                                  "playbook again")
        what = ("no events.jsonl here" if run_dir.is_dir() else
                "not a directory" if run_dir.exists() else "no such directory")
        raise UsageError(f"{run_dir}: {what}",
                         hint="give a directory that `lab run` made, e.g. runs/<lab>-<time>")
    skipped: list[InputIssue] = []
    events = list(read_events(events_file, skipped=skipped))
    if skipped and not events:  # not a run's events at all: keep the reports there were
        more = len(skipped) - SHOWN_SKIPPED
        raise InputError(skipped[:SHOWN_SKIPPED] + ([InputIssue(
            events_file, None, "", f"and {more} more unreadable lines; none could be read",
            hint="is it a run's events.jsonl?")] if more > 0 else []))
    for issue in skipped[:SHOWN_SKIPPED]:
        warn(f"{issue}; line left out")
    if len(skipped) > SHOWN_SKIPPED:
        warn(f"and {len(skipped) - SHOWN_SKIPPED} more unreadable lines left out")
    nodes = sorted({e.node for e in events})
    if args.reference is not None and events and args.reference not in nodes:
        raise UsageError(f"--reference {args.reference}: no node of that name has events in "
                         f"{events_file}", hint=f"nodes with events: {', '.join(nodes)}")
    reference = choose_reference(nodes, args.reference or _first_node(run_dir))
    if not events:
        if _made_from_events(run_dir):  # cut short or emptied since: keep what they say
            raise InputError([InputIssue(
                events_file, None, "", "holds no events, but the reports beside it were made "
                "from some: they are kept", hint="remove them to write empty ones")])
        warn(f"{events_file} holds no events (did the playbook start a tracer?); the "
             "reports will be empty")
    try:
        trips = read_round_trips(run_dir)
    except InputError as exc:
        warn(f"{exc}; clocks aligned without them")
        trips = {}
    err.print(f"correlating {count(len(events), 'event')} of {count(len(nodes), 'node')} "
              f"on {escape(reference or 'the first node')}'s clock")
    result = correlate(events, reference=reference, round_trips=trips)
    for line in summary_lines(result.summary):
        err.print(escape(line))
    write_reports(run_dir, result, run=_outcome(run_dir),
                  on_written=lambda path: out.print(str(path)))
    return 0


def _made_from_events(run_dir: Path) -> bool:
    """Whether the reports in `run_dir` were made from events (timeline.txt says)."""
    try:
        with (run_dir / TIMELINE).open() as f:
            return f.readline() not in ("", NO_EVENTS)
    except (OSError, ValueError):
        return False


def _outcome(run_dir: Path) -> dict[str, Any] | None:
    """How the run went, as its summary.json says, for report.html's head; None when
    it cannot be read (the events alone were given)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return run_outcome(summary) if isinstance(summary, dict) else None


def _where_it_stopped(run_dir: Path) -> str:
    """", interrupted during step 3 (say hello)", as an interrupted run's summary.json
    tells; else that it was interrupted or its lab failed."""
    try:
        steps = json.loads((run_dir / "summary.json").read_text())["steps"]
        last = next(s for s in steps if s["status"] == "interrupted")
        return f": interrupted during step {last['index'] + 1} ({last['name']})"
    except (OSError, ValueError, LookupError, TypeError, StopIteration):
        return ": it was interrupted, or its lab failed"


def _first_node(run_dir: Path) -> str | None:
    """The topology's first node, which `lab run` prefers as the reference."""
    try:
        topology = json.loads((run_dir / "topology.json").read_text())
        return str(topology["nodes"][0]["name"])
    except (OSError, ValueError, LookupError, TypeError):
        return None
