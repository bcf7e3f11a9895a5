"""Every report of a run, written from one correlation: by `lab run` and by `lab report`.

    connections.json   each connection: both ends, bytes, each send and its receives,
                       latencies, and the clock fits (lab/export/connections.py)
    timeline.txt       both sides' calls on one clock, classic lab style
    trace.json         Chrome Trace Event format, for Perfetto (lab/export/perfetto.py)
    report.html        one page, no network needed: a sequence diagram per connection,
                       latencies, clock bounds (lab/export/html.py)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import msgspec

from lab.correlate.correlation import Correlation, Summary, no_gc_pauses
from lab.correlate.pairing import LISTENING
from lab.correlate.sync.fit import duration
from lab.export.connections import connections_report
from lab.export.html import render_report
from lab.export.perfetto import chrome_trace
from lab.export.report_data import report_data
from lab.export.timeline import timeline
from lab.files import atomic_output

CONNECTIONS, TIMELINE, TRACE, HTML = (
    "connections.json", "timeline.txt", "trace.json", "report.html")
SEND_TO_RECEIVE, FIRST_TO_LAST = "send_to_receive", "first_to_last_byte"
LATENCIES = {"connect_to_accept": "connect→accept", SEND_TO_RECEIVE: "send→receive",
             FIRST_TO_LAST: "first→last byte"}


def summary_lines(summary: Summary) -> list[str]:
    """A correlation's summary for the terminal."""
    # Messages between nodes whose clocks nothing aligns cannot be checked for order.
    checked = ("" if not summary.unaligned else
               f" (not checked with {', '.join(summary.unaligned)}: clocks not aligned)")
    lines = [f"connections: {summary.paired} paired, {summary.unpaired} one-sided; "
             f"{summary.inversions} inversions after clock alignment{checked}"]
    lines += [f"clock {brief}" for _, brief in sorted(summary.clocks.items())]
    # A latency between nodes is only as good as their clocks' alignment: one no larger
    # than the alignment's error is only known to lie between 0 (it follows its cause)
    # and the two added.
    error = summary.clock_error_ns or 0
    # Both ways at once tell neither: each way apart, when the run has them.
    directions = [key for key in summary.latency_ns if key.startswith(f"{SEND_TO_RECEIVE} ")]
    labels: dict[str, str] = {}
    for key, label in LATENCIES.items():
        if key == FIRST_TO_LAST and summary.latency_ns.get(key) == \
                summary.latency_ns.get(SEND_TO_RECEIVE):
            continue  # one send each way: it says the same again
        if key == SEND_TO_RECEIVE and directions:
            labels |= {d: f"{label} {d.removeprefix(key).strip()}" for d in directions}
        else:
            labels[key] = label
    medians = [f"{label} {duration(median)}" if median > error else
               f"{label} at most {duration(median + error)}"
               for key, label in labels.items()
               if (stats := summary.latency_ns.get(key)) is not None
               and (median := stats["median"]) is not None]
    if medians:
        aligned = len(summary.clocks) > len(summary.unaligned)  # some fit was measured
        how = (f" (clocks aligned within ±{duration(error)})" if error else
               " (clocks not bounded on both sides: these may be off by any amount)"
               if aligned and summary.clock_error_ns is None else "")
        lines.append(f"latency (median): {', '.join(medians)}{how}")
    # A listening socket's events belong to no connection by nature; any others were
    # left out of the connections above, and the reports: say so.
    if missed := {why: n for why, n in summary.unattributed.items() if why != LISTENING}:
        lines.append("not in any connection: " + ", ".join(
            f"{n} event{'s' * (n != 1)} ({why})" for why, n in missed.items()))
    return lines


def write_reports(directory: Path, result: Correlation, *,
                  run: Mapping[str, Any] | None = None,
                  on_written: Callable[[Path], None] = lambda _: None) -> list[Path]:
    """Every report into `directory`, all or none: each is written beside its place and
    they replace the earlier ones together, once all are written, so that a failure (a
    full disk) leaves the earlier set whole. `run` (report_data.run_outcome) heads
    report.html; `on_written` hears of each file then."""
    writers: dict[str, Callable[[], str]] = {
        CONNECTIONS: lambda: _json(connections_report(result), indent=2) + "\n",
        TIMELINE: lambda: timeline(result),
        TRACE: lambda: _json(chrome_trace(result)),
        HTML: lambda: render_report(report_data(result, title=directory.resolve().name,
                                                run=run)),
    }
    paths = [directory / name for name in writers]
    with ExitStack() as stack:
        for path, text in zip(paths, writers.values(), strict=True):
            with no_gc_pauses():
                written = text()
            stack.enter_context(atomic_output(path, mode=0o644)).write_text(written)
    for path in paths:
        on_written(path)
    return paths


def _json(data: object, indent: int = 0) -> str:
    """JSON text (msgspec: ten times faster than the json module, whose indented
    output is written in Python)."""
    text = msgspec.json.encode(data)
    return (msgspec.json.format(text, indent=indent) if indent else text).decode()
