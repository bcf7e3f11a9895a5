"""Happened-before messages read off real paired connections, and the clock fit they give."""

from __future__ import annotations

import pytest

from lab.correlate.messages import messages
from lab.correlate.pairing import pair
from lab.correlate.sync import Quality, align
from tests.unit.test_correlate_pairing import ftrace_run, strace_run


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
@pytest.mark.parametrize(("source", "run", "each_way"), [
    ("ftrace", "replyhi", 1), ("strace", "replyhi", 1), ("strace", "concurrent", 5)])
def test_every_receive_is_after_its_send_once_aligned(kernel: str, source: str, run: str,
                                                      each_way: int) -> None:
    events = (ftrace_run if source == "ftrace" else strace_run)(kernel, run)
    found = messages(pair(events).connections)
    assert {k: len(v) for k, v in found.items()} == {
        ("client", "server"): each_way, ("server", "client"): each_way}
    fit = align("client", found)["server"]
    assert fit.quality != Quality.CONTRADICTORY, fit.explain()
    for m in found[("client", "server")]:
        assert fit.to_reference(m.received) >= m.sent
    for m in found[("server", "client")]:
        assert m.received >= fit.to_reference(m.sent)
