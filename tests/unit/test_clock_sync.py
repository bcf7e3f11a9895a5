"""Clock alignment from happened-before constraints, on synthetic traces with known clocks."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cached_property

import pytest

from lab.correlate.sync import ClockFit, Message, Quality, align, synchronise
from lab.correlate.sync.fit import PLAUSIBLE_DRIFT
from lab.correlate.sync.hull import lower_hull, upper_hull

START = 7_000_000_000_000  # the reference clock ~2 h after boot
DRIFT = 1 + Fraction(20, 10**6)
OFFSET = 3_200_000_000  # +3.2 s at START


@dataclass(frozen=True)
class Clock:
    """A node's clock against true (reference) time: t_node = drift·t + b."""

    drift: Fraction = Fraction(1)
    offset_at_start: int = 0

    @cached_property
    def b(self) -> Fraction:
        return self.offset_at_start - (self.drift - 1) * START

    def read(self, t: int) -> int:
        # round(drift·t + b) in integers: Fractions would make large traces slow to build.
        b, p, q = self.b, self.drift.numerator, self.drift.denominator
        num, den = t * p * b.denominator + b.numerator * q, q * b.denominator
        return (2 * num + den) // (2 * den)


REF = Clock()
SKEWED = Clock(DRIFT, OFFSET)


def traffic(src: Clock, dst: Clock, times: Sequence[int], rng: random.Random) -> list[Message]:
    """Messages leaving at true times `times`, each taking 50 to 500 µs."""
    return [Message(src.read(t), dst.read(t + rng.randint(50_000, 500_000))) for t in times]


def exchange(n: int, seed: int = 0, b: Clock = SKEWED,
             span: int = 2_000_000_000) -> tuple[list[Message], list[Message]]:
    """`n` messages over `span` ns, alternating direction at random moments."""
    rng = random.Random(seed)
    times = sorted(START + rng.randrange(span) for _ in range(n))
    return traffic(REF, b, times[0::2], rng), traffic(b, REF, times[1::2], rng)


def truth(fit: ClockFit, ref: Clock = REF, other: Clock = SKEWED) -> tuple[Fraction, Fraction]:
    """The true drift of `other` against `ref`, and its true offset at the fit's ref_time."""
    drift = other.drift / ref.drift
    offset = drift * (fit.ref_time - ref.b) + other.b - fit.ref_time
    return drift, offset


def inversions(fit: ClockFit, a_to_b: Sequence[Message], b_to_a: Sequence[Message]) -> int:
    return (sum(fit.to_reference(m.received) < m.sent for m in a_to_b)
            + sum(fit.to_reference(m.sent) > m.received for m in b_to_a))


def within(x: Fraction, lo: Fraction | None, hi: Fraction | None) -> bool:
    return (lo is None or lo <= x) and (hi is None or x <= hi)


@pytest.mark.parametrize("seed", range(5))
def test_known_drift_and_offset_are_recovered_inside_the_bounds(seed: int) -> None:
    a_to_b, b_to_a = exchange(2000, seed)
    fit = synchronise(a_to_b, b_to_a, reference="client", other="server")
    drift, offset = truth(fit)

    assert fit.quality is Quality.BOUNDED
    assert fit.drift_min is not None and fit.drift_max is not None
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    assert fit.drift_min <= drift <= fit.drift_max
    assert fit.ref_offset_min <= offset <= fit.ref_offset_max
    assert fit.drift_min <= fit.drift <= fit.drift_max
    assert fit.ref_offset_min <= fit.ref_offset <= fit.ref_offset_max
    assert abs(fit.ref_offset - offset) < 100_000  # within the 50 µs minimum delay, roughly
    assert inversions(fit, a_to_b, b_to_a) == 0
    assert fit.ref_time == min(m.sent for m in a_to_b) or fit.ref_time == min(
        m.received for m in b_to_a)
    line = fit.explain()
    assert "\n" not in line and line.startswith("server vs client: bounded")


def test_bounds_shrink_as_messages_are_added() -> None:
    a_to_b, b_to_a = exchange(20_000, seed=7, span=20_000_000_000)
    widths = []
    for n in (10, 100, 1000, 10_000):
        fit = synchronise(a_to_b[:n], b_to_a[:n])
        assert fit.quality is Quality.BOUNDED
        assert fit.drift_min is not None and fit.drift_max is not None
        assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
        drift, offset = truth(fit)
        assert fit.drift_min <= drift <= fit.drift_max
        assert fit.ref_offset_min <= offset <= fit.ref_offset_max
        if not fit.drift_unmeasured:  # bounds of one model, with drift free
            widths.append((fit.drift_max - fit.drift_min,
                           fit.ref_offset_max - fit.ref_offset_min))
    assert len(widths) >= 2
    for (d1, o1), (d2, o2) in itertools.pairwise(widths):
        assert d2 <= d1 and o2 <= o1
    assert widths[-1][0] < widths[0][0] / 10 and widths[-1][1] < widths[0][1]


def test_huge_timestamps_stay_exact() -> None:
    far = Clock(DRIFT, 10**13)  # B's boot ~3 h before A's
    rng = random.Random(3)
    times = [START * 2 + i * 1_000_000 for i in range(200)]
    a_to_b, b_to_a = traffic(REF, far, times[::2], rng), traffic(far, REF, times[1::2], rng)
    fit = synchronise(a_to_b, b_to_a)
    drift, offset = truth(fit, other=far)
    assert fit.quality is Quality.BOUNDED
    assert within(drift, fit.drift_min, fit.drift_max)
    assert within(offset, fit.ref_offset_min, fit.ref_offset_max)
    assert inversions(fit, a_to_b, b_to_a) == 0
    t = 2 * START + 123_456_789
    assert fit.to_reference(fit.to_other(t)) in (t - 1, t, t + 1)


@pytest.mark.parametrize("direction", ["a_to_b", "b_to_a"])
def test_one_direction_gives_a_half_open_offset_bound(direction: str) -> None:
    a_to_b, b_to_a = exchange(1000, seed=2)
    a_to_b, b_to_a = (a_to_b, []) if direction == "a_to_b" else ([], b_to_a)
    fit = synchronise(a_to_b, b_to_a)
    _, offset = truth(fit)

    assert fit.quality is Quality.ONE_SIDED
    assert fit.drift == 1 and fit.drift_min is None and fit.drift_max is None
    if direction == "a_to_b":  # B's clock reads at most this much ahead
        assert fit.ref_offset_min is None and fit.ref_offset_max is not None
        assert fit.offset == min(m.received - m.sent for m in a_to_b)
    else:
        assert fit.ref_offset_max is None and fit.ref_offset_min is not None
        assert fit.offset == max(m.sent - m.received for m in b_to_a)
    assert within(offset, fit.ref_offset_min, fit.ref_offset_max)
    assert inversions(fit, a_to_b, b_to_a) == 0
    assert "one-sided" in fit.explain() and "no drift assumed" in fit.explain()


def test_directions_that_never_interleave_leave_one_drift_bound_open() -> None:
    rng = random.Random(4)
    early = [START + i * 1_000_000 for i in range(100)]
    late = [START + 1_000_000_000 + i * 1_000_000 for i in range(100)]
    a_to_b, b_to_a = traffic(REF, SKEWED, early, rng), traffic(SKEWED, REF, late, rng)
    fit = synchronise(a_to_b, b_to_a)
    drift, offset = truth(fit)

    assert fit.quality is Quality.PARTIAL
    assert fit.drift_min is not None and fit.drift_max is None  # B→A later: steeper is fine
    assert within(drift, fit.drift_min, fit.drift_max)
    # The offset is bounded both ways for the drift nearest none, as when drift cannot be
    # told from delay, and the bounds any drift a clock has would give are said.
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    assert within(offset, fit.ref_offset_min, fit.ref_offset_max)
    assert fit.drift_unmeasured and "with any drift up to ±1000 ppm" in fit.explain()
    assert "drift not measurable (taken as" in fit.brief()
    assert inversions(fit, a_to_b, b_to_a) == 0


def test_same_moment_contradiction_is_reported_with_the_median_fallback() -> None:
    a_to_b, b_to_a = exchange(400, seed=5)
    # A B→A message that left B 5 ms after it reached A, right when an A→B one leaves.
    t = a_to_b[100].sent
    b_to_a.append(Message(SKEWED.read(t) + 5_000_000, t))
    fit = synchronise(a_to_b, b_to_a)
    _, offset = truth(fit)

    assert fit.quality is Quality.CONTRADICTORY
    assert fit.drift == 1
    assert fit.drift_min is fit.drift_max is fit.ref_offset_min is fit.ref_offset_max is None
    assert abs(fit.ref_offset - offset) < 200_000  # medians of symmetric delays
    assert fit.inverted >= 1
    assert inversions(fit, a_to_b, b_to_a) >= fit.inverted
    line = fit.explain()
    assert "contradictory" in line and "fallback" in line and "still arrive before" in line


def test_a_receive_before_its_send_at_one_moment_contradicts_any_line() -> None:
    # At A's 1000: A→B says B is at most 500 ns ahead, B→A at least 1000 ns.
    fit = synchronise([Message(1000, 1500)], [Message(2000, 1000)])
    assert fit.quality is Quality.CONTRADICTORY
    assert fit.offset == 750 and fit.inverted == 2
    assert "needs an offset ≤ 500 ns" in fit.explain()


def test_contradiction_across_time_is_reported() -> None:
    a_to_b, b_to_a = exchange(400, seed=6)
    # Mid-trace, a B→A message claims B was 2 ms further ahead than the A→B messages
    # around it allow: no straight line fits, whatever its slope.
    t = START + 1_000_000_000
    b_to_a.append(Message(SKEWED.read(t) + 2_000_000, t + 100_000))
    fit = synchronise(a_to_b, b_to_a)

    assert fit.quality is Quality.CONTRADICTORY
    assert "drift must be ≤" in fit.note
    assert fit.inverted >= 1


def test_a_drift_no_clock_has_is_not_believed() -> None:
    # Consistent messages, but only with B's clock running 0.5 % fast: messages paired
    # with the wrong ones (a socket's events given to another connection) look so.
    fast = 1.005
    a_to_b = [Message(t, round(t * fast) + 100) for t in range(0, 10**9, 10**8)]
    b_to_a = [Message(round(t * fast) - 100, t) for t in range(5 * 10**7, 10**9, 10**8)]
    fit = synchronise(a_to_b, b_to_a, reference="client", other="server")
    assert fit.quality is Quality.CONTRADICTORY
    assert "force a drift of at least +" in fit.note and "more than a clock drifts" in fit.note
    assert fit.brief().startswith("server vs client: contradictory: by a fallback, 2.375 ms ahead")


def test_messages_that_cannot_tell_drift_assume_the_least_they_allow() -> None:
    # Both ways at the start, and one more message 10 s later: any drift from +15 ppm to
    # millions fits. The fit takes +15 ppm, not the middle of that range.
    def b(t_a: int) -> int:  # B's clock runs 20 ppm fast
        return int(t_a * (1 + Fraction(20, 10**6)))
    a_to_b = [Message(0, b(50_000)), Message(1_500_000, b(1_550_000))]
    b_to_a = [Message(b(950_000), 1_000_000), Message(b(10**10 - 50_000), 10**10)]
    fit = synchronise(a_to_b, b_to_a, reference="client", other="server")
    assert fit.quality is Quality.BOUNDED and fit.drift_unmeasured
    assert fit.drift_min is not None and fit.drift == fit.drift_min < 1 + Fraction(1, 10**4)
    assert fit.ref_offset_min is not None and fit.ref_offset_max is not None
    assert fit.ref_offset_min <= fit.ref_offset <= fit.ref_offset_max
    assert "the least they allow" in fit.brief()
    # How wide the offset could be with any drift a clock may have: wider, not absurd.
    wide = re.search(r"up to ±1000 ppm, \[(-?[\d.]+) (m?s|µs), (-?[\d.]+) (m?s|µs)\]",
                     fit.note)
    assert wide, fit.note


def test_no_messages_means_no_data_and_identity() -> None:
    fit = synchronise([], [], reference="client", other="server")
    assert fit.quality is Quality.NO_DATA
    assert fit.to_reference(123_456_789) == 123_456_789
    assert fit.drift_min is None and fit.ref_offset_max is None
    assert "no messages" in fit.explain()


def brute_force(above: list[tuple[int, int]], below: list[tuple[int, int]]) -> tuple[
        bool, Fraction | None, Fraction | None]:
    """Feasibility and the slope interval of lines with `above` on/over, `below` on/under,
    from every pair of points (the definition, no hulls)."""
    d_min: Fraction | None = None
    d_max: Fraction | None = None
    ok = True
    for (pu, pv), (qu, qv) in itertools.product(below, above):
        if pu == qu:
            ok = ok and pv <= qv
        elif pu < qu:
            s = Fraction(qv - pv, qu - pu)
            d_max = s if d_max is None else min(d_max, s)
        else:
            s = Fraction(pv - qv, pu - qu)
            d_min = s if d_min is None else max(d_min, s)
    if d_min is not None and d_max is not None and d_min > d_max:
        ok = False
    return ok, d_min, d_max


@pytest.mark.parametrize("seed", range(300))
def test_hull_method_matches_the_pairwise_definition(seed: int) -> None:
    rng = random.Random(seed)
    t0 = 10**12 + rng.randrange(100)
    spread = rng.choice([3, 10, 100])
    # Few distinct times (ties happen), one-way offsets v that mostly overlap.
    above = [(t0 + 1000 * rng.randrange(40), rng.randrange(spread) + 5)
             for _ in range(rng.randrange(0, 9))]
    below = [(t0 + 1000 * rng.randrange(40), rng.randrange(spread) - 5)
             for _ in range(rng.randrange(0, 9))]
    a_to_b = [Message(u, u + v) for u, v in above]
    b_to_a = [Message(u + v, u) for u, v in below]
    fit = synchronise(a_to_b, b_to_a)
    ok, d_min, d_max = brute_force(above, below)

    if not above and not below:
        assert fit.quality is Quality.NO_DATA
        return
    # A drift no clock has (over 1000 ppm) means messages paired wrongly: a fallback.
    implausible = (d_min is not None and d_min > PLAUSIBLE_DRIFT) or (
        d_max is not None and d_max < -PLAUSIBLE_DRIFT)
    if not ok or implausible:
        assert fit.quality is Quality.CONTRADICTORY
        assert ("more than a clock drifts" in fit.note) == ok, fit.note
        return
    assert fit.quality is not Quality.CONTRADICTORY
    assert fit.drift_min == (None if d_min is None else 1 + d_min)
    assert fit.drift_max == (None if d_max is None else 1 + d_max)
    # Every point respects the fitted line, and the offset bounds at ref_time are the
    # extremes over feasible slopes (checked on a grid of slopes for the finite case).
    d, c = fit.drift - 1, fit.ref_offset
    assert all(v >= d * (u - fit.ref_time) + c for u, v in above)
    assert all(v <= d * (u - fit.ref_time) + c for u, v in below)
    if fit.drift_unmeasured:  # drift and delay untold: the bounds of the drift nearest none
        assert d_min is not None or d_max is not None  # one may be open (never interleaved)
        assumed = Fraction(0)
        if d_min is not None:
            assumed = max(assumed, d_min)
        if d_max is not None:
            assumed = min(assumed, d_max)
        assert fit.drift == 1 + assumed
        assert fit.ref_offset_min == max(v - assumed * (u - fit.ref_time) for u, v in below)
        assert fit.ref_offset_max == min(v - assumed * (u - fit.ref_time) for u, v in above)
    elif d_min is not None and d_max is not None and above and below:
        lows, highs = [], []
        for k in range(11):
            s = d_min + (d_max - d_min) * k / 10
            lows.append(max(v - s * (u - fit.ref_time) for u, v in below))
            highs.append(min(v - s * (u - fit.ref_time) for u, v in above))
        assert fit.ref_offset_min == min(lows) and fit.ref_offset_max == max(highs)


def test_hulls_drop_inner_and_collinear_points() -> None:
    points = [(0, 0), (1, 1), (2, 2), (3, 0), (1, -1), (1, 5), (2, -2), (4, 4)]
    assert lower_hull(points) == [(0, 0), (2, -2), (3, 0), (4, 4)]
    assert upper_hull(points) == [(0, 0), (1, 5), (4, 4)]


def test_a_large_trace_is_bounded_both_ways() -> None:
    a_to_b, b_to_a = exchange(100_000, seed=8, span=60_000_000_000)
    fit = synchronise(a_to_b, b_to_a)
    drift, offset = truth(fit)
    assert fit.quality is Quality.BOUNDED
    assert within(drift, fit.drift_min, fit.drift_max)
    assert within(offset, fit.ref_offset_min, fit.ref_offset_max)
    assert abs(fit.drift - drift) < Fraction(1, 10**7)  # 0.1 ppm
    assert inversions(fit, a_to_b, b_to_a) == 0


def test_align_a_star_fits_every_leaf_to_the_reference() -> None:
    leaves = {"server1": SKEWED, "server2": Clock(1 - Fraction(35, 10**6), -1_700_000_000)}
    messages: dict[tuple[str, str], list[Message]] = {}
    for i, (name, clock) in enumerate(leaves.items()):
        messages["client", name], messages[name, "client"] = exchange(500, seed=i, b=clock)
    fits = align("client", messages)

    assert fits["client"].quality is Quality.REFERENCE
    assert fits["client"].to_reference(42) == 42
    for name, clock in leaves.items():
        fit = fits[name]
        drift, offset = truth(fit, other=clock)
        assert fit.quality is Quality.BOUNDED and fit.path == ("client", name)
        assert within(drift, fit.drift_min, fit.drift_max)
        assert within(offset, fit.ref_offset_min, fit.ref_offset_max)
        assert inversions(fit, messages["client", name], messages[name, "client"]) == 0


def chain(*clocks: tuple[str, Clock]) -> dict[tuple[str, str], list[Message]]:
    messages: dict[tuple[str, str], list[Message]] = {}
    for i, ((a, ca), (b, cb)) in enumerate(itertools.pairwise(clocks)):
        rng = random.Random(i)
        times = sorted(START + rng.randrange(2_000_000_000) for _ in range(600))
        messages[a, b] = traffic(ca, cb, times[0::2], rng)
        messages[b, a] = traffic(cb, ca, times[1::2], rng)
    return messages


def test_align_a_chain_composes_fits_through_the_middle_node() -> None:
    router = Clock(1 + Fraction(7, 10**6), 900_000_000)
    server = Clock(1 - Fraction(12, 10**6), -2_500_000_000)
    messages = chain(("client", REF), ("router", router), ("server", server))
    fits = align("client", messages)
    fit = fits["server"]
    drift, offset = truth(fit, other=server)

    assert fit.quality is Quality.BOUNDED and fit.path == ("client", "router", "server")
    assert fit.reference == "client" and fit.other == "server"
    assert within(drift, fit.drift_min, fit.drift_max)
    assert within(offset, fit.ref_offset_min, fit.ref_offset_max)
    assert abs(fit.ref_offset - offset) < 200_000
    # router↔server messages on the client's clock: still none arrives before it leaves.
    to_client = {name: fits[name].to_reference for name in ("router", "server")}
    for (src, dst), sent in messages.items():
        if src != "client" and dst != "client":
            assert all(to_client[src](m.sent) <= to_client[dst](m.received) for m in sent)
    line = fit.explain()
    assert "client → router → server" in line and "\n" not in line


def test_align_prefers_a_bounded_chain_to_a_one_sided_link() -> None:
    router = Clock(1 + Fraction(7, 10**6), 900_000_000)
    messages = chain(("client", REF), ("router", router), ("server", SKEWED))
    rng = random.Random(9)
    messages["client", "server"] = traffic(REF, SKEWED, [START + 5_000_000], rng)
    fits = align("client", messages)
    assert fits["server"].path == ("client", "router", "server")
    assert fits["server"].quality is Quality.BOUNDED


def test_align_leaves_unreachable_nodes_as_no_data() -> None:
    messages = chain(("client", REF), ("server", SKEWED))
    messages |= chain(("x", REF), ("y", SKEWED))
    fits = align("client", messages)
    assert fits["server"].quality is Quality.BOUNDED
    for name in ("x", "y"):
        assert fits[name].quality is Quality.NO_DATA
        assert fits[name].to_reference(5) == 5
    with pytest.raises(ValueError):
        align("client", {("client", "client"): [Message(1, 2)]})


def test_the_brief_line_gives_the_estimate_its_bounds_and_what_was_assumed() -> None:
    fit = synchronise(*exchange(400), reference="client", other="server")
    line = fit.brief()
    assert re.match(r"server vs client: bounded, [\d.]+ .?s (ahead|behind) within \[", line)
    assert " within [" in line and "drift +" in line and " ppm" in line
    # Over a few milliseconds, drift cannot be told from delay: it says so.
    short = synchronise(*exchange(40, span=3_000_000), reference="client", other="server")
    assert short.brief().endswith("drift not measurable (taken as zero)")
    # A chain of fits may carry a drift within wide bounds: the line says the one applied,
    # and how loosely it is known.
    drifting = replace(short, drift=short.drift + Fraction(65, 10**6), links=(short,))
    assert ", drift +65.000 ppm within [-" in drifting.brief()
    assert "taken as zero" not in drifting.brief()
    nothing = synchronise([], [], reference="client", other="server")
    assert nothing.brief() == ("server vs client: no-data, clocks taken as identical "
                               "(no messages link them)")
    clash = synchronise([Message(1000, 1500)], [Message(2000, 1000)])
    assert "by a fallback" in clash.brief() and "2 messages still arrive" in clash.brief()
    assert all(len(f.brief()) < 140 for f in (fit, short, nothing, clash))
