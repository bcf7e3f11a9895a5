"""Round trips to a node's clock, through the in-process SSH server (a real local shell).

The fake guest runs on this host, so its clock is the controller's: each answer
must fall between its question and its reply."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.correlate.sync.host import RoundTrip, read_round_trips, write_round_trips
from lab.errors import InputError
from lab.run.round_trips import ROUNDS, RoundTripError, measure, round_trips
from lab.ssh import NodeSession
from tests.unit.conftest import FakeGuest


@pytest.fixture
async def session(fake_guest: FakeGuest) -> AsyncIterator[NodeSession]:
    async with NodeSession.open("n1", fake_guest.endpoint, fake_guest.client_key) as s:
        yield s


async def test_each_answer_comes_between_its_question_and_its_reply(
        session: NodeSession, fake_guest: FakeGuest, tmp_path: Path) -> None:
    trips: dict[str, list[RoundTrip]] = {}
    installed: set[str] = set()
    await measure({"n1": session}, tmp_path / "cache", installed, trips)
    assert installed == {"n1"} and (fake_guest.home / "opt/socklab/bin/clocks").is_file()
    await measure({"n1": session}, tmp_path / "cache", installed, trips)  # installed once
    assert len(trips["n1"]) == 2 * ROUNDS
    assert all(t.sent <= t.guest <= t.received for t in trips["n1"]), trips
    assert all(a.received <= b.sent for a, b in itertools.pairwise(trips["n1"]))


async def test_a_node_without_the_clock_reader_is_left_out_and_said(
        session: NodeSession) -> None:
    with pytest.raises(RoundTripError, match=r"answered 0 of 8 questions: .*not found"):
        await round_trips(session)
    trips: dict[str, list[RoundTrip]] = {}
    failed = await measure({"n1": session}, Path("/nonexistent"), {"n1"}, trips)
    assert trips == {} and list(failed) == ["n1"]
    assert failed["n1"].startswith("/opt/socklab/bin/clocks -e answered 0 of 8 questions:")


def test_round_trips_are_kept_for_lab_report(tmp_path: Path) -> None:
    assert read_round_trips(tmp_path) == {}  # a run made without them
    trips = {"a": [RoundTrip(1, 5, 9)], "b": []}
    write_round_trips(tmp_path, trips)
    assert read_round_trips(tmp_path) == trips
    (tmp_path / "round_trips.json").write_text('{"a": [[1, 2]]}')
    with pytest.raises(InputError, match=r"round_trips.json: not round trips: .*length 3"):
        read_round_trips(tmp_path)
