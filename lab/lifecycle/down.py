"""`lab down`: remove exactly what socklab created for a lab, and its state."""

from __future__ import annotations

from lab.aio import all_settled
from lab.backends.base import Backend
from lab.errors import BackendError
from lab.lifecycle import events as ev
from lab.state import LabState, StateStore


async def tear_down(state: LabState, backend: Backend, store: StateStore,
                    events: ev.EventSink = ev.ignore, *, extra_domains: list[str] | None = None,
                    extra_networks: list[str] | None = None) -> None:
    """Destroy the lab's domains (in parallel), then its networks, then its state."""
    domains = sorted({n.domain for n in state.nodes.values()} | set(extra_domains or []))
    networks = sorted({n.name for n in state.networks.values()} | set(extra_networks or []))

    async def domain(name: str) -> None:
        if await backend.destroy_domain(name):
            events(ev.Removed(state.name, "domain", name))

    async def network(name: str) -> None:
        if await backend.destroy_network(name):
            events(ev.Removed(state.name, "network", name))

    # Every removal is tried, networks even when a domain could not be removed; then the
    # first failure is raised, and the state kept for `lab down` to try again.
    failed: BackendError | None = None
    for remove, names in ((domain, domains), (network, networks)):
        try:
            await all_settled(*(remove(name) for name in names))
        except BackendError as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    store.remove(state.name)
