"""Every report of a run, written from one correlation: by `lab run` and by `lab report`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.correlate.correlation import Correlation
from lab.correlate.report import connections_report
from lab.export.timeline import timeline

CONNECTIONS, TIMELINE = "connections.json", "timeline.txt"


@dataclass(frozen=True)
class Written:
    paths: list[Path]
    paired: int
    unpaired: int
    clocks: dict[str, str]  # node → its clock fit, explained


def write_reports(directory: Path, result: Correlation) -> Written:
    report = connections_report(result)
    paths = [directory / CONNECTIONS, directory / TIMELINE]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(timeline(result.events, result.fits, result.reference))
    clocks = {node: fit.explain() for node, fit in sorted(result.fits.items())}
    return Written(paths, report["paired"], report["unpaired"], clocks)
