"""Correlation benchmark: a synthetic run of a million events, against a bare loop.

The run (lab/correlate/synthetic.py) is written as `events.jsonl`, as `lab run`
leaves it. Each round times, on the same file:

  bare:       a loop that only reads each line and splits it into its fields
              (`line.split(",")`; whitespace `line.split()` is printed too);
  read:       only decoding every line into an event (msgspec): the floor of
              anything that correlates events as Python objects;
  correlate:  what `lab report` does before writing: read every event, pair
              both ends of each connection, match each send to its receives,
              align the clocks, compute latencies;
  reports:    writing connections.json, timeline.txt and trace.json (printed
              apart: its cost grows with what is written, not with correlation).

The figures that matter: events per second of correlate, and its ratio to the
bare loop's (target >= 0.3). Rounds alternate so machine noise hits all alike.

    .venv/bin/python bench/correlate.py [--events 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
from pathlib import Path

from lab.correlate.correlation import Correlation, correlate, no_gc_pauses
from lab.correlate.synthetic import synthetic_run
from lab.events import read_events, write_events
from lab.export.outputs import write_reports

EVENTS_PER_CONNECTION = 50  # both ends of one synthetic connection


def bare(path: Path, *, sep: str | None) -> float:
    started = time.perf_counter()
    with path.open() as f:
        for line in f:
            line.split(sep)
    return time.perf_counter() - started


def read(path: Path) -> float:
    started = time.perf_counter()
    with no_gc_pauses():
        events = list(read_events(path))
    seconds = time.perf_counter() - started
    del events
    return seconds


def correlated(path: Path) -> tuple[float, Correlation]:
    started = time.perf_counter()
    result = correlate(read_events(path), reference="client")
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        connections = max(1, args.events // EVENTS_PER_CONNECTION)
        run = synthetic_run(connections, offset_ns=3_000_000, drift_ppm=25)
        count = write_events(path, run.events)
        del run
        gc.collect()
        size = path.stat().st_size
        print(f"{count} events, {connections} connections, "
              f"{size / 1e6:.0f} MB of events.jsonl")
        fields, words, reads, corr, reports = [], [], [], [], []
        for n in range(1, args.rounds + 1):
            fields.append(bare(path, sep=","))
            words.append(bare(path, sep=None))
            reads.append(read(path))
            gc.collect()
            seconds, result = correlated(path)
            corr.append(seconds)
            started = time.perf_counter()
            write_reports(Path(tmp), result)
            reports.append(time.perf_counter() - started)
            print(f"round {n}: bare split(',') {fields[-1]:.2f} s   split() {words[-1]:.2f} s   "
                  f"read {reads[-1]:.2f} s   correlate {corr[-1]:.2f} s   "
                  f"reports {reports[-1]:.2f} s   ({len(result.pairing.connections)} connections, "
                  f"{len(result.inversions)} inversions)")
            del result
            gc.collect()
    f, w, d, c, r = (statistics.median(x) for x in (fields, words, reads, corr, reports))
    print(f"median: bare {count / f:,.0f} events/s (split(',')), {count / w:,.0f} (split()); "
          f"correlate {count / c:,.0f} events/s; reports {count / r:,.0f} events/s")
    print(f"ratio correlate / bare split(',') = {f / c:.2f}   "
          f"(/ split(): {w / c:.2f})   (target >= 0.30)")
    print(f"floor: read alone {count / d:,.0f} events/s, ratio {f / d:.2f}; "
          f"correlation after reading takes {(c - d) / c:.0%} of correlate")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
