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


def unreachable(topology: Topology) -> list[tuple[str, list[str]]]:
    """Each node with the later nodes it has no path to, in either family: no network
    they share and no routers between their networks. Most often a link or a router
    forgotten; the run would fail at the first connect."""
    families = ("ipv4", "ipv6")
    reached = {(node.name, family): set(_paths(topology, node, family)[0])
               for node in topology.nodes for family in families}
    out: list[tuple[str, list[str]]] = []
    for k, node in enumerate(topology.nodes):
        cut_off = [other.name for other in topology.nodes[k + 1:]
                   if not any(_on(other, family) & reached[(node.name, family)]
                              for family in families)]
        if cut_off:
            out.append((node.name, cut_off))
    return out


def _on(node: Node, family: str) -> set[str]:
    """The networks where `node` has an address of `family`."""
    return {i.network for i in node.interfaces if getattr(i, family) is not None}


def _routes(topology: Topology, node: Node, family: str) -> list[Route]:
    """One family's routes: only through networks, and router addresses, of that family."""
    networks = {n.name: n for n in topology.networks if getattr(n, family) is not None}
    out: list[Route] = []
    for target, (router, shared) in _paths(topology, node, family)[1].items():
        destination = getattr(networks[target], family)
        gateway = getattr(router.interface(shared), family)
        out.append(Route(destination, gateway.ip))
    return out


def _paths(topology: Topology, node: Node, family: str,
           ) -> tuple[set[str], dict[str, tuple[Node, str]]]:
    """The networks of `family` that `node` reaches, and for each one it is not on, the
    first hop: the router nearest to it, and the network they share."""
    networks = {n.name for n in topology.networks if getattr(n, family) is not None}
    routers_on: dict[str, list[Node]] = {}
    for other in topology.nodes:
        if other.role == ROUTER and other.name != node.name:
            for network in _on(other, family) & networks:
                routers_on.setdefault(network, []).append(other)
    # Breadth first over networks: each one reached remembers the first hop to it.
    first_hop: dict[str, tuple[Node, str]] = {}
    order = [n.name for n in topology.networks]
    seen = _on(node, family) & networks
    queue = deque(sorted(seen, key=order.index))
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
    return seen, first_hop
