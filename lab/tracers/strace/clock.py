"""From strace's wall-clock timestamps to the guest's CLOCK_MONOTONIC.

strace -ttt stamps each line with CLOCK_REALTIME (seconds, microseconds);
the event schema wants the guest's CLOCK_MONOTONIC in nanoseconds, which is
what ftrace's `mono` trace clock shows. The shipped program `clocks` prints
both clocks of the guest on one line ("REALTIME MONOTONIC", nanoseconds);
their difference, read when the trace is collected, moves every timestamp.
The guests run no NTP and nothing steps their clock, so the offset holds
for the whole run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

CLOCKS_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s*$")


@dataclass(frozen=True)
class ClockSample:
    """The guest's two clocks read at one moment, in nanoseconds."""

    realtime_ns: int
    monotonic_ns: int

    @property
    def offset_ns(self) -> int:
        """CLOCK_REALTIME minus CLOCK_MONOTONIC."""
        return self.realtime_ns - self.monotonic_ns

    def line(self) -> str:
        """As `clocks` prints it (and as it is stored beside a trace)."""
        return f"{self.realtime_ns} {self.monotonic_ns}"


def parse_clocks(text: str) -> ClockSample:
    """The sample in the output of `clocks`: "REALTIME MONOTONIC"; ValueError otherwise."""
    m = CLOCKS_LINE.match(text)
    if not m:
        raise ValueError(f"not a line of `clocks` (REALTIME MONOTONIC in ns): {text[:80]!r}")
    return ClockSample(realtime_ns=int(m[1]), monotonic_ns=int(m[2]))


def seconds_to_ns(text: str) -> int:
    """A decimal number of seconds ("1700000000.123456", "0.000042") in exact nanoseconds."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a number of seconds: {text!r}")
    return int(value.scaleb(9).to_integral_value())


def realtime_to_monotonic(realtime_ns: int, clocks: ClockSample) -> int:
    """A CLOCK_REALTIME instant of the guest on its CLOCK_MONOTONIC."""
    return realtime_ns - clocks.offset_ns
