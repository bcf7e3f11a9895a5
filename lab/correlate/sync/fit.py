"""Pairwise clock fit: node B's clock against reference A's, from messages both ways.

Model: t_B = a·t_A + b. A message A→B sent at s (A's clock) and received at r
(B's clock) says r ≥ a·s + b: the point (s, r) lies on or above the line. A
message B→A sent at s' (B) and received at r' (A) says s' ≤ a·r' + b: (r', s')
lies on or below it. (Non-strict: with timestamps rounded to the ns, a
message can show no latency at all.) The feasible lines are those separating the two point
sets, and only the lower hull of the first set and the upper hull of the second
can bind. Over the feasible lines the slope ranges over [a_min, a_max]; the
estimate is the bisector of the extreme lines (Duda et al.; Trace Compass'
SyncAlgorithmFullyIncremental), which is itself feasible since the feasible
(a, b) set is convex: after conversion no message arrives before it left.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction
from functools import cached_property

from lab.correlate.sync.hull import Bridge, Point, lower_hull, min_slope_bridge, negate, upper_hull

# Wider drift bounds than this (a fraction: 1e-3 is 1000 ppm) mean the trace cannot
# tell drift from delay; no drift is assumed then, if the bounds allow it.
PLAUSIBLE_DRIFT = Fraction(1, 1000)
HOST = "(host)"  # the controller's clock among the nodes (host.py): no node can be named so


@dataclass(frozen=True, slots=True)
class Message:
    """One message seen at both ends: `sent` on the sender's clock, `received` on the
    receiver's (nanoseconds of each guest's CLOCK_MONOTONIC)."""

    sent: int
    received: int


class Quality(StrEnum):
    """How far a fit can be trusted, best first (see `rank`)."""

    REFERENCE = "reference"  # the reference node itself
    BOUNDED = "bounded"  # both directions interleaved: offset and drift bounded on both sides
    PARTIAL = "partial"  # both directions, never interleaved: one drift bound is open
    ONE_SIDED = "one-sided"  # one direction only: offset bounded on one side, drift unknown
    CONTRADICTORY = "contradictory"  # no line a clock could follow fits every message
    NO_DATA = "no-data"  # nothing links the nodes: identity assumed

    @property
    def rank(self) -> int:
        return list(Quality).index(self)


@dataclass(frozen=True)
class ClockFit:
    """Node `other`'s clock read against `reference`'s: t_other = drift·t_ref + offset.

    `drift_min/max` bound the drift and `ref_offset_min/max` the offset
    t_other - t_ref at `ref_time` over every line consistent with the messages;
    None means unbounded on that side. `ref_time` is the earliest
    reference-clock timestamp, where the drift uncertainty has not yet spread
    the offset. `links` holds the pairwise fits
    a composed fit (see `align`) was made of.
    """

    quality: Quality
    drift: Fraction
    offset: Fraction  # ns
    reference: str = "A"
    other: str = "B"
    ref_time: int = 0
    ref_offset_min: Fraction | None = None
    ref_offset_max: Fraction | None = None
    drift_min: Fraction | None = None
    drift_max: Fraction | None = None
    a_to_b: int = 0
    b_to_a: int = 0
    inverted: int = 0  # messages that still arrive before they leave (fallback only)
    note: str = ""
    links: tuple[ClockFit, ...] = ()

    @property
    def ref_offset(self) -> Fraction:
        return self.offset_at(self.ref_time)

    @property
    def path(self) -> tuple[str, ...]:
        if not self.links:
            return (self.reference, self.other)
        return (self.links[0].reference, *(link.other for link in self.links))

    def offset_at(self, t_ref: int) -> Fraction:
        """t_other - t_ref at reference time `t_ref`, by the estimate."""
        return (self.drift - 1) * t_ref + self.offset

    @cached_property
    def to_reference(self) -> Callable[[int], int]:
        """An `other`-clock timestamp on the reference clock, rounded to the nearest ns.

        A function made once per fit: reports convert millions of timestamps.
        t_ref = (t_other - offset) / drift, rounded, is computed as
        (t_other·k - c) // d in integers: big integers are exact and much faster
        than Fraction arithmetic.
        """
        if self.drift <= 0:
            raise ValueError(f"drift {self.drift} <= 0: {self.other}'s clock cannot be mapped")
        drift, offset = self.drift, self.offset
        k = 2 * drift.denominator * offset.denominator
        d = 2 * drift.numerator * offset.denominator
        c = 2 * offset.numerator * drift.denominator - d // 2
        return lambda t_other: (t_other * k - c) // d

    def to_other(self, t_ref: int) -> int:
        """A reference-clock timestamp on `other`'s clock, rounded to the nearest ns."""
        t = self.drift * t_ref + self.offset
        return (2 * t.numerator + t.denominator) // (2 * t.denominator)

    def explain(self) -> str:
        """One line for people: what was fitted, how well, and from what."""
        head = f"{self.other} vs {self.reference}: {self.quality}"
        if self.links:
            hops = ", ".join(f"{link.reference}→{link.other} {link.quality}"
                             for link in self.links)
            return (f"{head} via {' → '.join(self.path)} (links: {hops}): "
                    f"{self._estimate()}{self._bounds()}")
        counts = f"{self.a_to_b} {self.reference}→{self.other}, " \
                 f"{self.b_to_a} {self.other}→{self.reference} messages"
        if self.quality is Quality.NO_DATA:
            why = self.note or "no messages link them"
            return f"{head}: {why}; clocks taken as identical"
        if self.quality is Quality.REFERENCE:
            return f"{self.other}: the reference clock"
        if self.quality is Quality.CONTRADICTORY:
            return (f"{head}: no plausible clock line satisfies all {counts} ({self.note}); "
                    f"fallback {self._estimate()}, {self.inverted} still arrive before they "
                    "leave")
        if self.drift_unmeasured:
            offset = _interval(self.ref_offset_min, self.ref_offset_max, duration)
            drift = "do not drift" if self.drift == 1 else f"drift by {_ppm(self.drift)}"
            return (f"{head} from {counts}: offset {duration(self.ref_offset)} at "
                    f"{self.reference} {duration(self.ref_time)}, within {offset} if the "
                    f"clocks {drift} ({self.note})")
        extra = f"; {self.note}" if self.note else ""
        return f"{head} from {counts}: {self._estimate()}{self._bounds()}{extra}"

    @property
    def drift_unmeasured(self) -> bool:
        """Whether the messages could not tell drift from delay, so that the drift nearest
        none they allow was assumed (none, mostly)."""
        return not self.links and (self.quality is Quality.PARTIAL or self._drift_loose)

    @property
    def _drift_loose(self) -> bool:
        """Whether the drift is known no better than any a clock may have."""
        lo, hi = self.drift_min, self.drift_max
        return lo is not None and hi is not None and hi - lo > PLAUSIBLE_DRIFT

    def brief(self) -> str:
        """One short line for a terminal; `explain` has the whole story."""
        head = f"{self.other} vs {self.reference}: {self.quality}"
        if self.quality is Quality.REFERENCE:
            return f"{self.other}: the reference clock"
        if self.quality is Quality.NO_DATA:
            return f"{head}, clocks taken as identical ({self.note or 'no messages link them'})"
        offset = self._ahead()
        if self.quality is Quality.CONTRADICTORY:
            return (f"{head}: by a fallback, {offset}; {self.inverted} messages still "
                    "arrive before they leave (see connections.json)")
        via = f" via {' → '.join(self.path)}" if self.links else ""
        if HOST in self.path:  # round trips over SSH: looser than TCP traffic would be
            via += " (no TCP traffic reaches it; datagrams, which may be lost, align no clock)"
        if self.drift_unmeasured:
            drift = "drift not measurable (" + (
                "taken as zero)" if self.drift == 1 else
                f"taken as {_ppm(self.drift)}, the least they allow)")
        elif self._drift_loose:  # a fit composed of links may carry one, loosely known
            drift = f"drift {_ppm(self.drift)} within " \
                    f"{_interval(self.drift_min, self.drift_max, _ppm)}"
        else:
            drift = f"drift {_ppm(self.drift)}"
        return f"{head}{via}, {offset}, {drift}"

    def _ahead(self) -> str:
        """"3.000 ms ahead within [2.9 ms, 3.1 ms]" (the other clock against the
        reference): the sign of the offset said in words, its bounds the same way round."""
        lo, hi, offset = self.ref_offset_min, self.ref_offset_max, self.ref_offset
        if offset < 0:
            lo, hi = (None if hi is None else -hi), (None if lo is None else -lo)
        text = f"{duration(abs(offset))} {'ahead' if offset >= 0 else 'behind'}"
        if lo is not None or hi is not None:
            text += f" within {_interval(lo, hi, duration)}"
        return text

    def _estimate(self) -> str:
        return (f"offset {duration(self.ref_offset)} at {self.reference} "
                f"{duration(self.ref_time)}, drift {_ppm(self.drift)}")

    def _bounds(self) -> str:
        offset = _interval(self.ref_offset_min, self.ref_offset_max, duration)
        drift = _interval(self.drift_min, self.drift_max, _ppm)
        return f"; bounds: offset {offset} there, drift {drift}"


def identity(quality: Quality, reference: str, other: str, note: str = "") -> ClockFit:
    return ClockFit(quality, Fraction(1), Fraction(0), reference, other, note=note)


def synchronise(a_to_b: Sequence[Message], b_to_a: Sequence[Message], *,
                reference: str = "A", other: str = "B") -> ClockFit:
    """Fit node B's clock (`other`) to A's (`reference`) from the messages between them.

    O(n log n) for n messages (sorting; the hull scans are linear and the
    bridge search is O(h log h) over the h hull points), all in exact integers.
    """
    fit = _fit(a_to_b, b_to_a, reference, other)
    return replace(fit, reference=reference, other=other,
                   a_to_b=len(a_to_b), b_to_a=len(b_to_a))


def _fit(a_to_b: Sequence[Message], b_to_a: Sequence[Message],
         reference: str, other: str) -> ClockFit:
    if not a_to_b and not b_to_a:
        return identity(Quality.NO_DATA, reference, other)
    starts = [min(m.sent for m in a_to_b)] if a_to_b else []
    if b_to_a:
        starts.append(min(m.received for m in b_to_a))
    t0 = min(starts)  # the earliest reference-clock timestamp
    # Shear to u = t_A - t0, v = t_B - t_A: the line's value at u = 0 is the offset at
    # t0, numbers stay near trace length and one-way delay instead of 1e13, and
    # "above the line" is unchanged (the shear keeps verticals).
    above = [(m.sent - t0, m.received - m.sent) for m in a_to_b]
    below = [(m.received - t0, m.sent - m.received) for m in b_to_a]
    low, high = lower_hull(above), upper_hull(below)

    clash = _same_time_clash(low, high)
    if clash is not None:
        (u, v_max), (_, v_min) = clash
        return _fallback(above, below, t0, (
            f"at {reference} {duration(u + t0)} {reference}→{other} needs an offset "
            f"≤ {duration(v_max)} but {other}→{reference} ≥ {duration(v_min)}"))
    # Steepest feasible line: pinned by a B→A point on its left and an A→B point on
    # its right; the flattest the other way round (found mirrored).
    steep = min_slope_bridge(high, low)
    mirrored = min_slope_bridge(negate(low), negate(high))
    flat = None if mirrored is None else Bridge(*negate((mirrored.left, mirrored.right)))
    if steep is not None and flat is not None and flat.slope > steep.slope:
        return _fallback(above, below, t0, (
            f"drift must be ≤ {_ppm(1 + steep.slope)} (messages at {reference} "
            f"{duration(steep.left[0] + t0)} and {duration(steep.right[0] + t0)}) "
            f"and ≥ {_ppm(1 + flat.slope)} (at {duration(flat.left[0] + t0)} and "
            f"{duration(flat.right[0] + t0)})"))

    if (implausible := _implausible(flat, steep)) is not None:
        return _fallback(above, below, t0, implausible)

    # Offset bounds at u = 0: every u >= 0, so the lowest feasible line there is the
    # steepest and the highest the flattest; with a slope open, its limit.
    off_min = steep.intercept() if steep is not None else (
        Fraction(high[0][1]) if high and high[0][0] == 0 else None)
    off_max = flat.intercept() if flat is not None else (
        Fraction(low[0][1]) if low and low[0][0] == 0 else None)
    note = ""
    if steep is not None and flat is not None:
        assert off_min is not None and off_max is not None
        quality = Quality.BOUNDED
        if steep.slope - flat.slope > PLAUSIBLE_DRIFT:
            d, off_min, off_max, note = _least_drift(flat, steep, high, low)
            c = (off_min + off_max) / 2
        else:
            # The bisector, the mean of the extreme lines: feasible since the set is convex.
            d = (flat.slope + steep.slope) / 2
            c = (off_min + off_max) / 2
    elif above and below:
        # A drift bound is open: as when drift cannot be told from delay, the drift
        # nearest none the messages allow, and the offsets it allows.
        quality = Quality.PARTIAL
        d, off_min, off_max, note = _least_drift(flat, steep, high, low)
        note = f"the two directions never interleave in time: {note}"
        c = (off_min + off_max) / 2
    else:
        # One direction only, which cannot tell drift from delay (nor does it bound
        # either): no drift assumed, and the offset on its one bound.
        quality = Quality.ONE_SIDED
        d = Fraction(0)
        c = Fraction(max(v for _, v in high) if high else min(v for _, v in low))
        note = ("no drift assumed; the offset sits on its bound "
                "(the fastest message taken as instantaneous)")
    return ClockFit(quality, 1 + d, c - d * t0, ref_time=t0, ref_offset_min=off_min,
                    ref_offset_max=off_max,
                    drift_min=None if flat is None else 1 + flat.slope,
                    drift_max=None if steep is None else 1 + steep.slope, note=note)


def _implausible(flat: Bridge | None, steep: Bridge | None) -> str | None:
    """Why the drift the messages force is none a clock has, if it is. Guests of one host
    drift by parts per million: such messages were paired wrongly (or a clock was
    stepped), and no line of theirs can be trusted."""
    if flat is not None and flat.slope > PLAUSIBLE_DRIFT:
        bound = f"at least {_ppm(1 + flat.slope)}"
    elif steep is not None and steep.slope < -PLAUSIBLE_DRIFT:
        bound = f"at most {_ppm(1 + steep.slope)}"
    else:
        return None
    return (f"the messages force a drift of {bound}, more than a clock drifts: are events "
            "attributed to the wrong connection?")


def _least_drift(flat: Bridge | None, steep: Bridge | None, high: Sequence[Point],
                 low: Sequence[Point]) -> tuple[Fraction, Fraction, Fraction, str]:
    """Messages too few, or their two directions too far apart, to tell drift from
    delay: the bisector could claim any drift in a huge range. Guests of one host drift
    by parts per million, so the drift nearest none that the messages allow is taken
    (none, mostly); the offset bounds follow from it too. Returns that drift, the
    bounds, and a note with the bounds any drift a clock may have would give."""
    def offsets(d: Fraction) -> tuple[Fraction, Fraction]:
        """The offsets at u = 0 of the feasible lines of slope d (both fall as d grows,
        every u being >= 0)."""
        return max(v - d * u for u, v in high), min(v - d * u for u, v in low)
    d = Fraction(0)
    slower, faster = -PLAUSIBLE_DRIFT, PLAUSIBLE_DRIFT  # a bridge missing: an open bound
    if flat is not None:
        d, slower = max(d, flat.slope), max(slower, flat.slope)
    if steep is not None:
        d, faster = min(d, steep.slope), min(faster, steep.slope)
    note = (f"drift not measurable from these messages; with any drift up to "
            f"±{float(PLAUSIBLE_DRIFT) * 1e6:.0f} ppm, "
            f"[{duration(offsets(faster)[0])}, {duration(offsets(slower)[1])}]")
    return (d, *offsets(d), note)


def _same_time_clash(low: Sequence[Point], high: Sequence[Point]) -> tuple[Point, Point] | None:
    """An A→B and a B→A point at one reference time with the B→A one higher: no line
    passes between them whatever its slope."""
    lowest = dict(low)
    for u, v in high:
        if u in lowest and lowest[u] < v:
            return (u, lowest[u]), (u, v)
    return None


def _fallback(above: list[Point], below: list[Point], t0: int, note: str) -> ClockFit:
    """Offset only, from the median one-way offsets each way (assumes symmetric
    delays); counts the messages it leaves inverted."""
    forth = sorted(v for _, v in above)  # offset + delay
    back = sorted(v for _, v in below)  # offset - delay
    c = (_median(forth) + _median(back)) / 2 if forth and back else _median(forth or back)
    inverted = bisect_left(forth, c) + len(back) - bisect_right(back, c)
    return ClockFit(Quality.CONTRADICTORY, Fraction(1), c, ref_time=t0, inverted=inverted,
                    note=note)


def _median(values: Sequence[int]) -> Fraction:
    mid = len(values) // 2
    if len(values) % 2:
        return Fraction(values[mid])
    return Fraction(values[mid - 1] + values[mid], 2)


def duration(ns: Fraction | int) -> str:
    """Nanoseconds for people: seconds with µs precision, or smaller units."""
    x = float(ns)
    if abs(x) >= 1e9:
        return f"{x / 1e9:.6f} s"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3f} ms"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.3f} µs"
    return f"{x:.0f} ns"


def _interval(lo: Fraction | None, hi: Fraction | None,
              show: Callable[[Fraction], str]) -> str:
    """"[lo, hi]", an open side as ∞."""
    return f"[{show(lo) if lo is not None else '-∞'}, {show(hi) if hi is not None else '+∞'}]"


def _ppm(drift: Fraction) -> str:
    return f"{float((drift - 1) * 1_000_000):+.3f} ppm"
