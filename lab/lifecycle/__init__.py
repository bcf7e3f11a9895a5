"""Bringing labs up and down: the stages between a topology and running, reachable nodes."""
