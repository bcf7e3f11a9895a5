"""Every report of a run, written from one correlation: by `lab run` and by `lab report`.

    connections.json   each connection: both ends, bytes, each send and its receives,
                       latencies, and the clock fits (lab/correlate/report.py)
    timeline.txt       both sides' calls on one clock, classic lab style
    trace.json         Chrome Trace Event format, for Perfetto (lab/export/perfetto.py)
    report.html        one page, no network needed: a sequence diagram per connection,
                       latencies, clock bounds (lab/export/html.py)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.correlate.correlation import Correlation, run_statistics
from lab.correlate.report import connections_report
from lab.correlate.sync.fit import duration
from lab.export.html import render_report
from lab.export.perfetto import chrome_trace
from lab.export.report_data import report_data
from lab.export.timeline import timeline

CONNECTIONS, TIMELINE, TRACE, HTML = (
    "connections.json", "timeline.txt", "trace.json", "report.html")
LATENCIES = {"connect_to_accept": "connect→accept", "send_to_receive": "send→receive",
             "first_to_last_byte": "first→last byte"}


@dataclass(frozen=True)
class Written:
    paths: list[Path]
    paired: int
    unpaired: int
    inversions: int
    clocks: dict[str, str]  # node → its clock fit, explained
    latency_ns: dict[str, dict[str, int] | None]  # run_statistics

    def describe(self) -> list[str]:
        return describe(paired=self.paired, unpaired=self.unpaired, inversions=self.inversions,
                        clocks=self.clocks, latency_ns=self.latency_ns)


def write_reports(directory: Path, result: Correlation) -> Written:
    report = connections_report(result)
    paths = [directory / name for name in (CONNECTIONS, TIMELINE, TRACE, HTML)]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(timeline(result.events, result.fits, result.reference))
    with paths[2].open("w") as f:
        json.dump(chrome_trace(result), f, separators=(",", ":"))
    paths[3].write_text(render_report(report_data(result, title=directory.resolve().name)))
    return Written(paths, report["paired"], report["unpaired"], report["inversions"],
                   {node: fit.explain() for node, fit in sorted(result.fits.items())},
                   dict(run_statistics(result.latencies)))


def describe(*, paired: int, unpaired: int, inversions: int, clocks: Mapping[str, str],
             latency_ns: Mapping[str, Mapping[str, int] | None]) -> list[str]:
    """What a person wants to know of a correlation, a line each."""
    lines = [f"connections: {paired} paired, {unpaired} one-sided; "
             f"{inversions} inversions after clock alignment"]
    lines += [f"clock {explained}" for _, explained in sorted(clocks.items())]
    medians = [f"{label} {duration(stats['median'])}" for key, label in LATENCIES.items()
               if (stats := latency_ns.get(key)) is not None]
    if medians:
        lines.append(f"latency (median): {', '.join(medians)}")
    return lines
