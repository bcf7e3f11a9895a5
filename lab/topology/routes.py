"""Static routes between a lab's networks, through its routers.

A node whose role is `router` forwards packets. Every node reaches each network
it is not on through the router nearest to it (fewest networks crossed), by
that router's address on a network they share: IPv4 and IPv6 alike, where both
ends have that family.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from lab.topology.expand import ROUTER, Node, Topology


@dataclass(frozen=True)
class Route:
    destination: IPv4Network | IPv6Network
    via: IPv4Address | IPv6Address


def routes(topology: Topology, node: Node) -> list[Route]:
    """The routes `node` needs to every network it is not on that a router reaches."""
    return [route for family in ("ipv4", "ipv6") for route in _routes(topology, node, family)]


def _routes(topology: Topology, node: Node, family: str) -> list[Route]:
    """One family's routes: only through networks, and router addresses, of that family."""
    networks = {n.name: n for n in topology.networks if getattr(n, family) is not None}
    routers_on: dict[str, list[Node]] = {}
    for other in topology.nodes:
        if other.role == ROUTER and other.name != node.name:
            for i in other.interfaces:
                if i.network in networks and getattr(i, family) is not None:
                    routers_on.setdefault(i.network, []).append(other)
    # Breadth first over networks: each one reached remembers the first hop to it.
    first_hop: dict[str, tuple[Node, str]] = {}  # network → (router, network shared)
    seen = {i.network for i in node.interfaces
            if i.network in networks and getattr(i, family) is not None}
    queue = deque(sorted(seen, key=list(networks).index))
    while queue:
        network = queue.popleft()
        for router in routers_on.get(network, []):
            hop = first_hop.get(network, (router, network))
            for i in router.interfaces:
                if i.network in networks and getattr(i, family) is not None \
                        and i.network not in seen:
                    seen.add(i.network)
                    first_hop[i.network] = hop
                    queue.append(i.network)
    out: list[Route] = []
    for target, (router, shared) in first_hop.items():
        destination = getattr(networks[target], family)
        gateway = getattr(router.interface(shared), family)
        out.append(Route(destination, gateway.ip))
    return out
