"""Routes between a lab's networks through its routers, from the topology alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lab.topology import Topology, load_topology
from lab.topology.routes import routes, unreachable

ROOT = Path(__file__).parents[2]


def table(topology: Topology) -> dict[str, list[tuple[str, str]]]:
    return {n.name: [(str(r.destination), str(r.via)) for r in routes(topology, n)]
            for n in topology.nodes}


def test_the_triangle_reaches_across_its_router() -> None:
    topology = load_topology(ROOT / "topologies" / "triangle.yaml")
    assert table(topology) == {
        "client": [("10.77.2.0/24", "10.77.1.2"), ("fd77:0:0:2::/64", "fd77:0:0:1::2")],
        "router": [],  # on both networks
        "server": [("10.77.1.0/24", "10.77.2.1"), ("fd77:0:0:1::/64", "fd77:0:0:2::1")],
    }


@pytest.fixture
def chain(tmp_path: Path) -> Topology:
    """a - n1 - r1 - n2 - r2 - n3 - b, and c alone on n4."""
    path = tmp_path / "chain.yaml"
    path.write_text(textwrap.dedent("""\
        name: chain
        nodes: {a: {}, r1: {role: router}, r2: {role: router}, b: {}, c: {}, d: {}}
        networks:
          n1: {ipv4: 10.1.0.0/24, ipv6: false}
          n2: {ipv4: 10.2.0.0/24, ipv6: false}
          n3: {ipv4: 10.3.0.0/24, ipv6: false}
          n4: {ipv4: 10.4.0.0/24, ipv6: false}
        links:
          - {network: n1, nodes: [a, r1]}
          - {network: n2, nodes: [r1, r2]}
          - {network: n3, nodes: [r2, b]}
          - {network: n4, nodes: [c, d]}
        """))
    return load_topology(path)


def test_each_network_is_reached_through_the_nearest_router(chain: Topology) -> None:
    assert table(chain) == {
        "a": [("10.2.0.0/24", "10.1.0.2"), ("10.3.0.0/24", "10.1.0.2")],
        "r1": [("10.3.0.0/24", "10.2.0.2")],
        "r2": [("10.1.0.0/24", "10.2.0.1")],
        "b": [("10.2.0.0/24", "10.3.0.1"), ("10.1.0.0/24", "10.3.0.1")],
        "c": [], "d": [],  # no router on their network: on their own
    }


def test_each_family_takes_a_path_that_has_it(tmp_path: Path) -> None:
    """Two routers share a dual-stack network and an IPv4-only one: IPv6 goes over the
    first, whatever IPv4 does."""
    path = tmp_path / "dual.yaml"
    path.write_text(textwrap.dedent("""\
        name: dual
        nodes: {client: {}, r1: {role: router}, r2: {role: router}, server: {}}
        networks:
          a: {ipv4: 10.1.0.0/24, ipv6: "fd01::/64"}
          d: {ipv4: 10.9.0.0/24, ipv6: false}
          b: {ipv4: 10.2.0.0/24, ipv6: "fd02::/64"}
          c: {ipv4: 10.3.0.0/24, ipv6: "fd03::/64"}
        links:
          - {network: a, nodes: [client, r1]}
          - {network: d, nodes: [r1, r2]}
          - {network: b, nodes: [r1, r2]}
          - {network: c, nodes: [r2, server]}
        """))
    routes_of = table(load_topology(path))
    assert ("fd03::/64", "fd02::2") in routes_of["r1"]  # r2 over b: d has no IPv6
    assert [r for r in routes_of["r1"] if r[0] == "10.3.0.0/24"] == [("10.3.0.0/24", "10.9.0.2")]
    assert ("fd03::/64", "fd01::2") in routes_of["client"]


def test_nodes_with_no_path_between_them_are_named(chain: Topology) -> None:
    # a, r1, r2 and b reach one another through the routers; c and d only each other.
    assert unreachable(chain) == [
        ("a", ["c", "d"]), ("r1", ["c", "d"]), ("r2", ["c", "d"]), ("b", ["c", "d"])]


def test_a_path_in_one_family_is_a_path(tmp_path: Path) -> None:
    """client and server share only an IPv6 network: they reach each other over it."""
    path = tmp_path / "v6.yaml"
    path.write_text(textwrap.dedent("""\
        name: v6
        nodes: {client: {}, server: {}}
        networks:
          a: {ipv4: false, ipv6: "fd01::/64"}
        links:
          - {network: a, nodes: [client, server]}
        """))
    assert unreachable(load_topology(path)) == []


def test_the_shipped_topologies_are_connected() -> None:
    for path in sorted((ROOT / "topologies").glob("*.yaml")):
        assert unreachable(load_topology(path)) == [], path.name
