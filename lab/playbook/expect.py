"""Expectations checked against the events of a run (lab.events), one outcome per node.

    outcomes = evaluate(book.expect, read_events(run_dir / "events.jsonl"))
    failed = [o for o in outcomes if not o.ok]

An expectation looks at the events of one node at a time, keeps those that
match its filters (comm, kinds, tracer), orders them by timestamp and
applies its check to their names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lab.events import Event, by_node
from lab.playbook.plan import Absent, Bound, Count, Expectation, InOrder, Present
from lab.text import count


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    node: str
    ok: bool
    detail: str  # one line, for reports: why it failed, or what was seen

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return f"{self.expectation.name} [{self.node}]: {verdict}: {self.detail}"


def evaluate(expectations: Iterable[Expectation], events: Iterable[Event]) -> list[Outcome]:
    """Check every expectation on each of its nodes."""
    nodes = by_node(events)  # equal timestamps keep file order
    return [check(e, node, nodes.get(node, [])) for e in expectations for node in e.nodes]


def selected(expectation: Expectation, events: Iterable[Event]) -> list[Event]:
    """The events of one node (already in time order) that `expectation` looks at."""
    e = expectation
    return [ev for ev in events
            if ev.kind in e.kinds
            and (e.comm is None or ev.comm == e.comm)
            and (e.tracer is None or ev.tracer == e.tracer)]


def check(expectation: Expectation, node: str, events: Sequence[Event]) -> Outcome:
    """`events`: the node's events in time order."""
    names = [ev.name for ev in selected(expectation, events)]
    ok, detail = _verdict(expectation, names)
    return Outcome(expectation, node, ok, detail)


def _verdict(expectation: Expectation, names: list[str]) -> tuple[bool, str]:
    seen = Counter(names)
    match expectation.check:
        case Present(names=wanted):
            missing = [n for n in wanted if not seen[n]]
            if missing:
                return False, f"missing {', '.join(missing)} ({_among(names)})"
            return True, ", ".join(f"{n} x{seen[n]}" for n in wanted)
        case Absent(names=unwanted):
            found = [f"{n} x{seen[n]}" for n in unwanted if seen[n]]
            if found:
                return False, f"found {', '.join(found)}"
            return True, f"none of them ({_among(names)})"
        case InOrder(names=wanted):
            position = 0
            for name in names:
                if position < len(wanted) and name == wanted[position]:
                    position += 1
            if position == len(wanted):
                return True, f"all {len(wanted)} in order"
            done = ", ".join(wanted[:position]) or "nothing"
            nxt = wanted[position]
            later = " (it occurs, but not after them)" if seen[nxt] and position else ""
            return False, f"after {done}: no {nxt}{later} ({_among(names)})"
        case Count(bounds=bounds):
            wrong = [f"{b.name} x{seen[b.name]}, expected {_wanted(b)}" for b in bounds
                     if not _within(seen[b.name], b)]
            if wrong:
                return False, "; ".join(wrong)
            return True, ", ".join(f"{b.name} x{seen[b.name]}" for b in bounds)
    raise AssertionError(expectation.check)  # pragma: no cover


def _within(n: int, bound: Bound) -> bool:
    return n >= bound.min and (bound.max is None or n <= bound.max)


def _wanted(bound: Bound) -> str:
    if bound.max == bound.min:
        return str(bound.min)
    if bound.max is None:
        return f"at least {bound.min}"
    return f"{bound.min} to {bound.max}"


def _among(names: list[str]) -> str:
    """How many events the check looked at (of its nodes, processes and kinds)."""
    return f"{count(len(names), 'event')} checked"
