"""Expansion: defaults, interfaces, MACs, subnets and address allocation."""

from __future__ import annotations

import re
import textwrap
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from lab.errors import InputError
from lab.images.recipe import recipes_dir
from lab.topology import Topology, load_topology


@pytest.fixture
def topo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)

    def load(text: str, **kwargs: Any) -> Topology:
        path = Path("lab.yaml")
        path.write_text(textwrap.dedent(text))
        return load_topology(path, **kwargs)
    return load


def addresses(t: Topology, family: str = "ipv4") -> dict[str, list[str | None]]:
    return {n.name: [str(getattr(i, family)) if getattr(i, family) else None
                     for i in n.interfaces] for n in t.nodes}


def star(subnet: str, *endpoints: str, ipv6: str = "false") -> str:
    """A lab of nodes a, b, c, ... on one network `lan`."""
    names = sorted(re.sub(r"^\{node: (\w+).*", r"\1", e) for e in endpoints)
    return (f"name: t\nnodes: {{{', '.join(f'{n}: {{}}' for n in names)}}}\n"
            f"networks: {{lan: {{ipv4: {subnet}, ipv6: {ipv6}}}}}\n"
            f"links: [{{network: lan, nodes: [{', '.join(endpoints)}]}}]\n")


def test_automatic_addresses_in_link_order(topo: Any) -> None:
    t = topo(star("10.0.1.0/24", "c", "a", "b"))
    assert addresses(t) == {"a": ["10.0.1.2/24"], "b": ["10.0.1.3/24"], "c": ["10.0.1.1/24"]}


def test_fixed_addresses_are_reserved_first(topo: Any) -> None:
    t = topo(star("10.0.1.0/24", "a", "b", "{node: c, ipv4: 10.0.1.1}", "d"))
    assert addresses(t) == {"a": ["10.0.1.2/24"], "b": ["10.0.1.3/24"],
                            "c": ["10.0.1.1/24"], "d": ["10.0.1.4/24"]}


def test_mixed_fixed_and_automatic_fill_the_gaps(topo: Any) -> None:
    t = topo(star("10.0.1.0/24", "{node: a, ipv4: 10.0.1.3}", "b", "{node: c, ipv4: 10.0.1.1}",
                  "d", "e"))
    assert addresses(t) == {"a": ["10.0.1.3/24"], "b": ["10.0.1.2/24"], "c": ["10.0.1.1/24"],
                            "d": ["10.0.1.4/24"], "e": ["10.0.1.5/24"]}


def test_smallest_subnet_fits_two_hosts_without_broadcast(topo: Any) -> None:
    t = topo(star("10.0.1.0/30", "a", "b"))
    assert addresses(t) == {"a": ["10.0.1.1/30"], "b": ["10.0.1.2/30"]}


def test_exhaustion_is_reported_once_per_network(topo: Any) -> None:
    with pytest.raises(InputError) as caught:
        topo(star("10.0.1.0/30", "{node: a, ipv4: 10.0.1.2}", "b", "c", "d"))
    assert [str(i) for i in caught.value.issues] == [
        "lab.yaml:4: links[0].nodes[2]: no free IPv4 address left in 10.0.1.0/30 of network "
        "lan (hint: it has 2 host addresses; use a shorter prefix)"]


@pytest.mark.parametrize(("networks", "fits"), [(13, True), (14, False)])
def test_a_node_has_as_many_interfaces_as_its_guest_has_pci_slots(
        topo: Any, networks: int, fits: bool) -> None:
    text = ("name: t\nnodes: {a: {}, b: {}}\n"
            + f"networks: {{{', '.join(f'n{i}: {{}}' for i in range(networks))}}}\n"
            + "links:\n" + "".join(f"  - {{network: n{i}, nodes: [a, b]}}\n"
                                     for i in range(networks)))
    if fits:
        assert [len(n.interfaces) for n in topo(text).nodes] == [13, 13]
        return
    with pytest.raises(InputError) as caught:
        topo(text)
    assert [str(i) for i in caught.value.issues] == [
        f"lab.yaml:2: nodes.{n}: too many interfaces (14, at most 13) (hint: a node can be "
        "on at most 13 networks: split the lab)" for n in ("a", "b")]


def test_ipv6_fixed_and_automatic(topo: Any) -> None:
    t = topo(star("false", "a", "{node: c, ipv6: 'fd00::2'}", "b", ipv6="'fd00::/126'"))
    assert addresses(t, "ipv6") == {"a": ["fd00::1/126"], "b": ["fd00::3/126"],
                                    "c": ["fd00::2/126"]}


def test_ipv6_last_host_is_usable(topo: Any) -> None:
    t = topo(star("false", "a", "b", "c", ipv6="'fd00::/126'"))
    assert addresses(t, "ipv6") == {"a": ["fd00::1/126"], "b": ["fd00::2/126"],
                                    "c": ["fd00::3/126"]}
    assert addresses(t, "ipv4") == {"a": [None], "b": [None], "c": [None]}
    assert t.network("lan").ipv4 is None


def test_automatic_subnets_follow_network_order(topo: Any) -> None:
    t = topo("""\
        name: t
        nodes: {a: {}}
        networks:
          one:
          two: {ipv4: 10.77.3.0/24, ipv6: false}
          three:
          four: {ipv4: false}
        links:
          - {network: one, nodes: [a]}
          - {network: two, nodes: [a]}
          - {network: three, nodes: [a]}
          - {network: four, nodes: [a]}
        """)
    # "three" would be 10.77.3.0/24, which "two" holds: it moves up to the next free one.
    assert [(n.name, str(n.ipv4), str(n.ipv6)) for n in t.networks] == [
        ("one", "10.77.1.0/24", "fd77:0:0:1::/64"),
        ("two", "10.77.3.0/24", "None"),
        ("three", "10.77.4.0/24", "fd77:0:0:3::/64"),
        ("four", "None", "fd77:0:0:4::/64"),
    ]
    assert addresses(t) == {"a": ["10.77.1.1/24", "10.77.3.1/24", "10.77.4.1/24", None]}


def test_interfaces_follow_link_order_with_macs(topo: Any) -> None:
    t = topo("""\
        name: t
        nodes: {a: {}, b: {}, c: {}, d: {}, e: {}, f: {}, g: {}, h: {}, i: {}, j: {}, k: {}}
        networks: {x: , y: }
        links:
          - {network: y, nodes: [k, a]}
          - {network: x, nodes: [k]}
        """)
    k = t.node("k")
    assert k.index == 11
    assert [(i.network, i.ifname, i.mac) for i in k.interfaces] == [
        ("y", "eth0", "52:54:00:5c:0b:01"), ("x", "eth1", "52:54:00:5c:0b:02")]
    assert t.node("a").interfaces[0].mac == "52:54:00:5c:01:01"
    assert t.node("b").interfaces == ()  # a node without links is allowed
    assert k.interface("x").ipv4 is not None and str(k.interface("x").ipv4) == "10.77.1.1/24"
    assert t.network("y").nodes == ("k", "a")


def test_defaults_then_builtin_defaults(topo: Any) -> None:
    t = topo("""\
        name: t
        defaults: {memory: 512}
        nodes:
          a:
          b: {memory: 128, vcpus: 2, image: debian-12, role: server}
        """)
    a, b = t.nodes
    assert (a.image, a.memory, a.vcpus, a.role) == ("debian-11", 512, 1, None)
    assert (b.image, b.memory, b.vcpus, b.role) == ("debian-12", 128, 2, "server")
    assert t.networks == ()


def test_templates_with_overrides(topo: Any) -> None:
    text = """\
        name: "{{ prefix }}-lab"
        vars: {prefix: tpl, mem: 256, subnet: 10.0.5.0/24}
        defaults: {memory: "{{ mem }}"}
        nodes: {a: {}, b: {vcpus: "{{ cpus | default(2) }}"}}
        networks: {lan: {ipv4: "{{ subnet }}"}}
        links: [{network: lan, nodes: [a, {node: b, ipv4: "{{ subnet | replace('0/24', '9') }}"}]}]
        """
    t = topo(text)
    assert (t.name, t.node("a").memory, t.node("b").vcpus) == ("tpl-lab", 256, 2)
    assert addresses(t)["b"] == ["10.0.5.9/24"]
    t = topo(text, overrides={"mem": "1024", "cpus": "4", "prefix": "other",
                              "subnet": "10.0.6.0/24"})
    assert (t.name, t.node("a").memory, t.node("b").vcpus) == ("other-lab", 1024, 4)
    assert addresses(t) == {"a": ["10.0.6.1/24"], "b": ["10.0.6.9/24"]}


def test_images_are_checked_only_when_given(topo: Any) -> None:
    text = "name: t\nnodes: {a: {}}\n"
    assert topo(text).node("a").image == "debian-11"
    assert topo(text, images={"debian-11"}).nodes
    with pytest.raises(InputError) as caught:
        topo(text, images=set())
    assert [str(i) for i in caught.value.issues] == [
        f"lab.yaml:2: nodes.a: unknown image 'debian-11' (hint: {recipes_dir()} holds no "
        "recipes)"]


def test_to_dict_round_trips(topo: Any) -> None:
    t = topo(Path(__file__).parents[2].joinpath("topologies/triangle.yaml").read_text())
    assert Topology.from_dict(t.to_dict()) == t
    assert isinstance(t.network("left").ipv4, IPv4Network)
    assert isinstance(t.network("left").ipv6, IPv6Network)
