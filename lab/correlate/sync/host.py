"""The controller's clock as a go-between, for nodes that no TCP traffic links.

Before and after a run's steps, the controller asks each guest for its
CLOCK_MONOTONIC over SSH, several times in a row (lab/run/round_trips.py). An
answer was read after the question left and before the reply came back: a
round trip is a message from the host to the guest and one back, and the
convex hulls bound the guest's clock against the host's like any other pair.
Two guests are then aligned through the host, more loosely than by their own
TCP traffic (a round trip crosses QEMU's user-mode network): only the nodes
that no chain of TCP messages reaches are (lab/correlate/correlation.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec

from lab.correlate.sync.fit import HOST, Message
from lab.errors import InputError, InputIssue

FILE = "round_trips.json"  # in a run directory: node → [[sent, guest, received], ...]


class RoundTrip(NamedTuple):
    sent: int  # the host's CLOCK_MONOTONIC (ns) before the question left
    guest: int  # the guest's when it answered
    received: int  # the host's once the answer was back


RoundTrips = Mapping[str, Sequence[RoundTrip]]  # node → its round trips


def host_messages(trips: RoundTrips) -> dict[tuple[str, str], list[Message]]:
    """Each node's round trips as messages to the host and from it."""
    messages: dict[tuple[str, str], list[Message]] = {}
    for node, node_trips in trips.items():
        if node_trips:
            messages[(HOST, node)] = [Message(t.sent, t.guest) for t in node_trips]
            messages[(node, HOST)] = [Message(t.guest, t.received) for t in node_trips]
    return messages


def through_host(reference: str, unreached: set[str],
                 tcp: Mapping[tuple[str, str], Sequence[Message]],
                 trips: RoundTrips) -> dict[str, Sequence[RoundTrip]]:
    """The round trips that align `unreached` nodes (no TCP chain reaches `reference`):
    the reference's, and those of one node of each group that TCP traffic links
    together, the first by name that has some. The rest of a group is reached through
    its own traffic, which a path through the host would ignore."""
    if not trips.get(reference):
        return {}
    linked: dict[str, set[str]] = {n: set() for n in unreached}
    for (a, b), sent in tcp.items():
        if sent and a in linked and b in linked:
            linked[a].add(b)
            linked[b].add(a)
    chosen: dict[str, Sequence[RoundTrip]] = {reference: trips[reference]}
    seen: set[str] = set()
    for node in sorted(unreached):
        if node in seen:
            continue
        group, todo = set(), [node]
        while todo:  # the nodes TCP links to this one, through one another
            n = todo.pop()
            if n not in group:
                group.add(n)
                todo += linked[n] - group
        seen |= group
        entry = next((n for n in sorted(group) if trips.get(n)), None)
        if entry is not None:
            chosen[entry] = trips[entry]
    return chosen


def write_round_trips(run_dir: Path, trips: RoundTrips) -> None:
    (run_dir / FILE).write_bytes(msgspec.json.encode(trips))


def read_round_trips(run_dir: Path) -> dict[str, list[RoundTrip]]:
    """What `write_round_trips` left in `run_dir`: none for a run made without them."""
    path = run_dir / FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, list[RoundTrip]])
    except FileNotFoundError:
        return {}
    except msgspec.DecodeError as exc:
        raise InputError([InputIssue(path, None, "", f"not round trips: {exc}",
                                     hint="node → [[sent, guest, received], ...] in ns; "
                                          "remove the file to align without them")]) from None
