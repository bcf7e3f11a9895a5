"""Happened-before messages read off real paired connections, and the clock fit they give."""

from __future__ import annotations

import pytest

from lab.correlate.messages import flows, sync_messages
from lab.correlate.pairing import pair
from lab.correlate.sync import Quality, align
from tests.unit.test_correlate_pairing import ftrace_run, strace_run


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
@pytest.mark.parametrize(("source", "run", "counts"), [
    # ftrace sees the handshake (connect → accept, and its last ACK between the two
    # kernels), both FINs (FIN_WAIT1 or LAST_ACK → tcp_fin) and the ACK of the first
    # (CLOSE_WAIT → FIN_WAIT2) and of the second (tcp_fin → LAST_ACK → CLOSE) besides
    # "hello" and "hi";
    # strace sees the bytes and the handshake, and no FIN
    # arriving (no tcp_fin probe, and no read returns the end of file).
    ("ftrace", "replyhi", (5, 3)), ("strace", "replyhi", (2, 1)),
    ("strace", "concurrent", (10, 5))])
def test_every_receive_is_after_its_send_once_aligned(kernel: str, source: str, run: str,
                                                      counts: tuple[int, int]) -> None:
    events = (ftrace_run if source == "ftrace" else strace_run)(kernel, run)
    found = sync_messages(flows(pair(events).connections))
    assert {k: len(v) for k, v in found.items()} == {
        ("client", "server"): counts[0], ("server", "client"): counts[1]}
    fit = align("client", found)["server"]
    assert fit.quality != Quality.CONTRADICTORY, fit.explain()
    for m in found[("client", "server")]:
        assert fit.to_reference(m.received) >= m.sent
    for m in found[("server", "client")]:
        assert m.received >= fit.to_reference(m.sent)


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_a_short_exchange_bounds_the_offset_and_assumes_no_drift(kernel: str) -> None:
    found = sync_messages(flows(pair(ftrace_run(kernel, "replyhi")).connections))
    fit = align("client", found)["server"]
    assert fit.quality == Quality.BOUNDED  # messages both ways, interleaved in time
    assert fit.drift_unmeasured and "if the clocks do not drift" in fit.explain()
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    assert fit.ref_offset_min <= fit.offset_at(fit.ref_time) <= fit.ref_offset_max
    # The handshake's last ACK and the FINs, seen in both kernels, pin the offset within
    # a few milliseconds (system calls alone, which wait for the scheduler: ±10-40 ms).
    assert fit.ref_offset_max - fit.ref_offset_min < 10_000_000
