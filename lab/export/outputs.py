"""Every report of a run, written from one correlation: by `lab run` and by `lab report`.

    connections.json   each connection: both ends, bytes, each send and its receives,
                       latencies, and the clock fits (lab/correlate/report.py)
    timeline.txt       both sides' calls on one clock, classic lab style
    trace.json         Chrome Trace Event format, for Perfetto (lab/export/perfetto.py)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.correlate.correlation import Correlation, run_statistics
from lab.correlate.report import connections_report
from lab.correlate.sync.fit import duration
from lab.export.perfetto import chrome_trace
from lab.export.timeline import timeline

CONNECTIONS, TIMELINE, TRACE = "connections.json", "timeline.txt", "trace.json"


@dataclass(frozen=True)
class Written:
    paths: list[Path]
    paired: int
    unpaired: int


def write_reports(directory: Path, result: Correlation) -> Written:
    report = connections_report(result)
    paths = [directory / CONNECTIONS, directory / TIMELINE, directory / TRACE]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(timeline(result.events, result.fits, result.reference))
    with paths[2].open("w") as f:
        json.dump(chrome_trace(result), f, separators=(",", ":"))
    return Written(paths, report["paired"], report["unpaired"])


def describe(result: Correlation, written: Written) -> list[str]:
    """What a person wants to know of a correlation, a line each."""
    lines = [f"connections: {written.paired} paired, {written.unpaired} one-sided; "
             f"{len(result.inversions)} inversions after clock alignment"]
    lines += [f"clock {fit.explain()}" for _, fit in sorted(result.fits.items())]
    medians = [f"{label} {duration(stats['median'])}"
               for label, stats in zip(("connect→accept", "send→receive", "first→last byte"),
                                       run_statistics(result.latencies).values(), strict=True)
               if stats is not None]
    if medians:
        lines.append(f"latency (median): {', '.join(medians)}")
    return lines
