"""Clock alignment across nodes from happened-before constraints.

Each node's events carry its own CLOCK_MONOTONIC. A message seen leaving one
node and reaching another says that the send happened before the receipt;
with messages both ways these constraints pin node B's clock against node A's
as t_B = a·t_A + b (drift a, offset b) between two bounding lines. This is the
convex-hull method of:

- Duda, Harrus, Haddad, Bernard, "Estimating global time in distributed
  systems", ICDCS 1987 (the hulls and the bisector of the extreme lines);
- Jabbarifar, Dagenais, "LIANA: Live incremental time synchronization of
  traces for distributed systems analysis", J. Network and Computer
  Applications, 2014 (doi:10.1016/j.jnca.2014.07.021), and Jabbarifar's thesis
  "On line trace synchronization for large scale distributed systems",
  Polytechnique Montréal, 2013 (spanning trees over many nodes);
- Poirier, Roy, Dagenais, "Accurate offline synchronization of distributed
  traces using kernel-level events", ACM SIGOPS OSR 44(3), 2010 (LTTV);
- Trace Compass' SyncAlgorithmFullyIncremental, which implements it for LTTng.

`synchronise` fits one pair (`fit.py`, geometry in `hull.py`); `align` chains
pairwise fits from a reference node to every other (`align.py`).
"""

from lab.correlate.sync.align import align, compose
from lab.correlate.sync.fit import ClockFit, Message, Quality, synchronise

__all__ = ["ClockFit", "Message", "Quality", "align", "compose", "synchronise"]
