"""Exact plane geometry for clock synchronisation: convex hulls and separating slopes.

Points are integer pairs `(u, v)`. Every predicate is an integer cross product,
so nothing is rounded however large the timestamps are; slopes come out as
exact fractions.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

Point = tuple[int, int]


def lower_hull(points: Iterable[Point]) -> list[Point]:
    """The lower convex hull, left to right, by Andrew's monotone chain: O(n log n).

    Only the lowest point at each u is kept and collinear middle points are
    dropped, so u strictly increases and edge slopes strictly increase.
    """
    hull: list[Point] = []
    last_u: int | None = None
    for p in sorted(points):
        pu, pv = p
        if pu == last_u:
            continue  # sorted by (u, v): the first point at this u is the lowest
        last_u = pu
        while len(hull) >= 2:
            (ou, ov), (au, av) = hull[-2], hull[-1]
            if (au - ou) * (pv - ov) - (av - ov) * (pu - ou) > 0:
                break  # strict left turn: the middle point stays
            hull.pop()
        hull.append(p)
    return hull


def upper_hull(points: Iterable[Point]) -> list[Point]:
    """The upper convex hull, left to right (highest point at each u)."""
    return negate(lower_hull((u, -v) for u, v in points))


def negate(points: Iterable[Point]) -> list[Point]:
    """Mirror in the u axis: upper hulls become lower hulls and slopes change sign."""
    return [(u, -v) for u, v in points]


@dataclass(frozen=True)
class Bridge:
    """The segment from `left` to `right` (left's u is strictly smaller)."""

    left: Point
    right: Point

    @property
    def slope(self) -> Fraction:
        return Fraction(self.right[1] - self.left[1], self.right[0] - self.left[0])

    def intercept(self) -> Fraction:
        """Where the line through both points crosses u = 0."""
        return self.left[1] - self.slope * self.left[0]


def min_slope_bridge(upper: Sequence[Point], points: Sequence[Point]) -> Bridge | None:
    """The least-slope segment from a point of `upper` to a point of `points` on its right.

    `upper` must be an upper hull as `upper_hull` returns it. For a point q the
    least slope from the hull points left of it is the tangent from q: along a
    concave chain slope(p_k, q) falls while the edge leaving p_k is steeper than
    p_k→q and rises from then on, so a binary search finds it. The whole scan is
    O(len(points) · log len(upper)). None when no point lies right of the hull's
    first point.
    """
    us = [u for u, _ in upper]
    best: Bridge | None = None
    best_dv, best_du = 0, 1
    for q in points:
        qu, qv = q
        m = bisect_left(us, qu)  # upper[:m] lies strictly left of q
        if m == 0:
            continue
        lo, hi = 0, m - 1
        while lo < hi:
            mid = (lo + hi) // 2
            (au, av), (bu, bv) = upper[mid], upper[mid + 1]
            # Is slope(upper[mid + 1], q) < slope(upper[mid], q)? (both Δu > 0)
            if (qv - bv) * (qu - au) < (qv - av) * (qu - bu):
                lo = mid + 1
            else:
                hi = mid
        pu, pv = upper[lo]
        dv, du = qv - pv, qu - pu
        if best is None or dv * best_du < best_dv * du:
            best, best_dv, best_du = Bridge(upper[lo], q), dv, du
    return best
