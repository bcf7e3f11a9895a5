"""Semantic checks and expansion of a topology into the resolved `Topology`.

After pydantic has checked shapes, this resolves what depends on the whole
file: links to nodes and networks, defaults, interface names, MACs, subnets
and addresses. Every problem is collected and raised at once, located by the
document's locator.

Allocation rules (documented for users in topologies/pair.yaml):
- A network without a subnet gets 10.77.N.0/24 and fd77:0:0:N::/64, N being
  its position in the file, moved up past subnets already taken.
- Fixed addresses are reserved first; the others are handed out in link
  order from host 1 upward, skipping reserved ones.
- MAC of interface I (1-based) of node N (1-based): 52:54:00:5c:NN:II; II=00
  is left for the management NIC, which is not part of the topology.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_interface,
    ip_network,
)
from pathlib import Path
from typing import Any, Literal, TypeVar

from lab.errors import InputError, InputIssue
from lab.images.recipe import image_hint
from lab.names import node_mac
from lab.source import Document, Loc, load_document, sort_issues
from lab.text import closest
from lab.topology.model import (
    DEFAULT_IMAGE,
    DEFAULT_MEMORY,
    DEFAULT_VCPUS,
    EndpointInput,
    TopologyInput,
)

MAX_NODES = 255       # one MAC byte
ALL_NODES = "all"     # what playbooks call every node
ROUTER = "router"     # the role of nodes that forward (lab.topology.routes)
# Data NICs sit in PCI slots 0x03 to 0x0f of the guest (domain.xml.j2): 0x10 is the
# management NIC's.
MAX_INTERFACES = 13
AUTO_V4 = IPv4Network("10.77.0.0/24")
AUTO_V6 = IPv6Network("fd77::/64")
Family = Literal["ipv4", "ipv6"]
Subnet = IPv4Network | IPv6Network
T = TypeVar("T")


@dataclass(frozen=True)
class Interface:
    network: str
    ifname: str
    mac: str
    ipv4: IPv4Interface | None
    ipv6: IPv6Interface | None


@dataclass(frozen=True)
class Node:
    name: str
    index: int  # 1-based position in the file
    image: str
    memory: int  # MiB
    vcpus: int
    role: str | None
    interfaces: tuple[Interface, ...]

    def interface(self, network: str) -> Interface:
        return _named({i.network: i for i in self.interfaces}, network)


@dataclass(frozen=True)
class Network:
    name: str
    ipv4: IPv4Network | None
    ipv6: IPv6Network | None
    nodes: tuple[str, ...]  # members in link order


@dataclass(frozen=True)
class Topology:
    """A lab as it will be built: everything resolved, nothing left to default."""

    name: str
    nodes: tuple[Node, ...]
    networks: tuple[Network, ...]

    def node(self, name: str) -> Node:
        return _named({n.name: n for n in self.nodes}, name)

    def network(self, name: str) -> Network:
        return _named({n.name: n for n in self.networks}, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as a run directory's topology.json holds it; `from_dict` reads it back."""
        return {
            "name": self.name,
            "nodes": [{
                "name": n.name, "index": n.index, "image": n.image, "memory": n.memory,
                "vcpus": n.vcpus, "role": n.role,
                "interfaces": [{
                    "network": i.network, "ifname": i.ifname, "mac": i.mac,
                    "ipv4": _str(i.ipv4), "ipv6": _str(i.ipv6)} for i in n.interfaces],
            } for n in self.nodes],
            "networks": [{
                "name": n.name, "ipv4": _str(n.ipv4), "ipv6": _str(n.ipv6),
                "nodes": list(n.nodes)} for n in self.networks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Topology:
        """The topology `to_dict` gave, e.g. read back from a run directory's topology.json."""
        return cls(
            name=data["name"],
            nodes=tuple(Node(
                name=n["name"], index=n["index"], image=n["image"], memory=n["memory"],
                vcpus=n["vcpus"], role=n["role"],
                interfaces=tuple(Interface(
                    network=i["network"], ifname=i["ifname"], mac=i["mac"],
                    ipv4=IPv4Interface(i["ipv4"]) if i["ipv4"] else None,
                    ipv6=IPv6Interface(i["ipv6"]) if i["ipv6"] else None,
                ) for i in n["interfaces"]),
            ) for n in data["nodes"]),
            networks=tuple(Network(
                name=n["name"],
                ipv4=IPv4Network(n["ipv4"]) if n["ipv4"] else None,
                ipv6=IPv6Network(n["ipv6"]) if n["ipv6"] else None,
                nodes=tuple(n["nodes"]),
            ) for n in data["networks"]),
        )


def _named(items: dict[str, T], name: str) -> T:
    try:
        return items[name]
    except KeyError:
        raise KeyError(f"no {name!r}; known: {', '.join(items)}") from None


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


def load_topology(path: Path, *, overrides: Mapping[str, str] = {},
                  images: Collection[str] | None = None) -> Topology:
    """Load, validate and expand a topology file; raises InputError with every issue.

    `images`, when given, are the image names that exist; others are reported.
    """
    return expand(load_document(path, TopologyInput, overrides=overrides, keep_going=True),
                  images=images)


def expand(doc: Document[TopologyInput], *, images: Collection[str] | None = None) -> Topology:
    return _Expander(doc, images).run()


@dataclass
class _Member:
    """One endpoint of a link: a future interface, filled in as we go."""

    node: str
    network: str
    loc: Loc
    endpoint: EndpointInput
    addresses: dict[Family, IPv4Interface | IPv6Interface] = field(default_factory=dict)


class _Expander:
    def __init__(self, doc: Document[TopologyInput], images: Collection[str] | None) -> None:
        self.doc = doc
        self.top = doc.model
        self.locator = doc.locator
        self.images = images
        self.issues: list[InputIssue] = []

    def issue(self, loc: Loc, message: str, hint: str | None = None) -> None:
        if not self.doc.already_reported(loc):
            self.issues.append(self.locator.issue(loc, message, hint=hint))

    def run(self) -> Topology:
        self.check_nodes()
        subnets: dict[Family, dict[str, Subnet]] = {
            "ipv4": self.subnets("ipv4"), "ipv6": self.subnets("ipv6")}
        members = self.members()
        by_network: dict[str, list[_Member]] = {name: [] for name in self.top.networks}
        for m in members:
            by_network[m.network].append(m)
        for name, group in by_network.items():
            if not group:
                self.issue(("networks", name), "network is not linked to any node",
                           "attach nodes to it under links:, or remove it")
            if self.doc.already_reported(("networks", name)):
                continue  # its subnet is not what the file meant: its addresses cannot tell
            for family in ("ipv4", "ipv6"):
                self.assign(name, subnets[family].get(name), family, group)
        if issues := [*self.doc.issues, *self.issues]:
            raise InputError(sort_issues(issues))
        return self.build(members, by_network, subnets)

    # --- nodes -----------------------------------------------------------------

    def check_nodes(self) -> None:
        if len(self.top.nodes) > MAX_NODES:
            self.issue(("nodes",), f"too many nodes ({len(self.top.nodes)}, at most {MAX_NODES})")
        if ALL_NODES in self.top.nodes:
            self.issue(("nodes", ALL_NODES), f"'{ALL_NODES}' cannot name a node: in playbooks "
                       "it means every node", "give the node another name")
        for name, node in self.top.nodes.items():
            # Roles are free, but one means something: a near miss of it is a typo.
            if node.role and node.role != ROUTER and \
                    closest(node.role, [ROUTER], cutoff=0.8) is not None:
                self.issue(("nodes", name, "role"), f"role '{node.role}' is close to "
                           f"'{ROUTER}', which forwards packets between networks",
                           f"did you mean '{ROUTER}'?")
        if self.images is None:
            return
        for name, node in self.top.nodes.items():
            image = self.image(node.image)
            if image in self.images:
                continue
            loc: Loc = (("nodes", name, "image") if node.image else
                        ("defaults", "image") if self.top.defaults.image else ("nodes", name))
            if not any(i.path == self.locator.dotted(loc) for i in self.issues):
                self.issue(loc, f"unknown image '{image}'", image_hint(image, self.images))

    def image(self, image: str | None) -> str:
        return image or self.top.defaults.image or DEFAULT_IMAGE

    # --- networks --------------------------------------------------------------

    def subnets(self, family: Family) -> dict[str, Subnet]:
        """Fixed subnets (checked for overlaps), then automatic ones around them."""
        fixed: dict[str, Subnet] = {}
        for name, net in self.top.networks.items():
            subnet = getattr(net, family)
            if isinstance(subnet, IPv4Network | IPv6Network):
                for other, taken in fixed.items():
                    if subnet.overlaps(taken):
                        self.issue(("networks", name, family),
                                   f"{subnet} overlaps {taken} of network {other}",
                                   "give each network its own subnet")
                fixed[name] = subnet
        out: dict[str, Subnet] = {}
        base = AUTO_V4 if family == "ipv4" else AUTO_V6
        step = 1 << (base.max_prefixlen - base.prefixlen)
        limit = 255 if family == "ipv4" else 0xFFFF
        for position, (name, net) in enumerate(self.top.networks.items(), start=1):
            if name in fixed:
                out[name] = fixed[name]
            elif getattr(net, family) is True:
                used = [*fixed.values(), *out.values()]
                for n in range(position, limit + 1):
                    candidate = ip_network((int(base.network_address) + n * step,
                                            base.prefixlen))
                    if not any(candidate.overlaps(u) for u in used):
                        out[name] = candidate
                        break
                else:
                    self.issue(("networks", name, family), "no automatic subnet left",
                               "give this network a subnet")
        return out

    # --- links -----------------------------------------------------------------

    def members(self) -> list[_Member]:
        out: list[_Member] = []
        seen: dict[tuple[str, str], Loc] = {}
        for i, link in enumerate(self.top.links):
            known_network = link.network in self.top.networks
            if not known_network:
                self.issue(("links", i, "network"), f"unknown network '{link.network}'",
                           _name_hint(link.network, self.top.networks, "networks"))
            for j, endpoint in enumerate(link.nodes):
                loc: Loc = ("links", i, "nodes", j)
                if endpoint.node not in self.top.nodes:
                    self.issue(self.node_loc(loc), f"unknown node '{endpoint.node}'",
                               _name_hint(endpoint.node, self.top.nodes, "nodes"))
                    continue
                if not known_network:
                    continue
                key = (endpoint.node, link.network)
                if key in seen:
                    self.issue(self.node_loc(loc),
                               f"node {endpoint.node} is already linked to network "
                               f"{link.network} on line {self.locator.line(seen[key])}",
                               "a node has one interface per network")
                    continue
                seen[key] = loc
                out.append(_Member(endpoint.node, link.network, loc, endpoint))
        for name in self.top.nodes:
            count = sum(m.node == name for m in out)
            if count > MAX_INTERFACES:
                self.issue(("nodes", name), f"too many interfaces ({count}, "
                                            f"at most {MAX_INTERFACES})",
                           f"a node can be on at most {MAX_INTERFACES} networks: split the lab")
        return out

    def node_loc(self, loc: Loc) -> Loc:
        """`links[0].nodes[1].node` if written as a mapping, else `links[0].nodes[1]`."""
        return (*loc, "node") if (*loc, "node") in self.locator.lines else loc

    # --- addresses -------------------------------------------------------------

    def assign(self, network: str, subnet: Subnet | None, family: Family,
               members: list[_Member]) -> None:
        reserved: dict[IPv4Address | IPv6Address, _Member] = {}
        for m in members:
            address = getattr(m.endpoint, family)
            if address is None:
                continue
            loc = (*m.loc, family)
            if subnet is None:
                self.issue(loc, f"network {network} has {_family(family)} disabled",
                           f"remove the address, or give network {network} an {family} subnet")
                continue
            problem = _misfit(address, subnet, network, family)
            if problem:
                self.issue(loc, *problem)
            elif address in reserved:
                other = reserved[address]
                self.issue(loc, f"{address} is already assigned to node {other.node} on line "
                                f"{self.locator.line((*other.loc, family))}",
                           "leave the address out to get a free one")
            else:
                reserved[address] = m
                m.addresses[family] = ip_interface((address, subnet.prefixlen))
        if subnet is None:
            return
        # v4 loses the broadcast address; v6 has none (host 0 is excluded for both).
        last = subnet.num_addresses - (2 if family == "ipv4" else 1)
        host = 1
        for m in members:
            if getattr(m.endpoint, family) is not None:
                continue
            while host <= last and subnet.network_address + host in reserved:
                host += 1
            if host > last:
                self.issue(self.node_loc(m.loc),
                           f"no free {_family(family)} address left in {subnet} "
                           f"of network {network}",
                           f"it has {last} host addresses; use a shorter prefix")
                return
            m.addresses[family] = ip_interface((subnet.network_address + host, subnet.prefixlen))
            host += 1

    # --- result ----------------------------------------------------------------

    def build(self, members: list[_Member], by_network: dict[str, list[_Member]],
              subnets: dict[Family, dict[str, Subnet]]) -> Topology:
        nodes = []
        for index, (name, node) in enumerate(self.top.nodes.items(), start=1):
            mine = [m for m in members if m.node == name]
            nodes.append(Node(
                name=name, index=index, image=self.image(node.image),
                memory=node.memory or self.top.defaults.memory or DEFAULT_MEMORY,
                vcpus=node.vcpus or self.top.defaults.vcpus or DEFAULT_VCPUS,
                role=node.role,
                interfaces=tuple(Interface(
                    network=m.network, ifname=f"eth{k}", mac=node_mac(index, k + 1),
                    ipv4=_only(IPv4Interface, m.addresses.get("ipv4")),
                    ipv6=_only(IPv6Interface, m.addresses.get("ipv6")),
                ) for k, m in enumerate(mine)),
            ))
        networks = tuple(Network(
            name=name,
            ipv4=_only(IPv4Network, subnets["ipv4"].get(name)),
            ipv6=_only(IPv6Network, subnets["ipv6"].get(name)),
            nodes=tuple(m.node for m in group),
        ) for name, group in by_network.items())
        return Topology(self.top.name, tuple(nodes), networks)


def _misfit(address: IPv4Address | IPv6Address, subnet: Subnet, network: str,
            family: Family) -> tuple[str, str] | None:
    """Why a fixed address cannot be used on this network, or None."""
    if address not in subnet:
        return (f"{address} is outside {subnet} of network {network}",
                f"pick an address in {subnet}")
    if address == subnet.network_address:
        return f"{address} is the network address of {subnet}", "host addresses start at 1"
    if family == "ipv4" and address == subnet.broadcast_address:
        return f"{address} is the broadcast address of {subnet}", "pick a lower address"
    return None


def _only(cls: type[T], value: object) -> T | None:
    """Narrow a v4-or-v6 value we know the family of."""
    return value if isinstance(value, cls) else None


def _family(family: Family) -> str:
    return "IPv4" if family == "ipv4" else "IPv6"


def _name_hint(name: str, known: Collection[str], section: str) -> str:
    close = closest(name, list(known))
    if close:
        return f"did you mean '{close}'?"
    return f"{section} defined: {', '.join(known)}" if known else f"define it under {section}:"


