"""Topology facts: what playbook templates know about the lab."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lab.errors import InputError
from lab.playbook import Run, load_playbook, topology_facts
from lab.topology import Topology, load_topology

ROOT = Path(__file__).parents[2]


def test_facts_of_pair() -> None:
    facts = topology_facts(load_topology(ROOT / "topologies" / "pair.yaml"),
                           lab_name="pair-c0ffee")
    assert facts["lab"] == {"name": "pair-c0ffee", "topology": "pair"}
    assert facts["nodes"]["server"] == {
        "name": "server", "index": 2, "role": "server",
        "ipv4": "10.0.1.10", "ipv6": "fd00:0:0:1::10",
        "addresses": ["10.0.1.10", "fd00:0:0:1::10"],
        "interfaces": {"lan": {"ifname": "eth0", "mac": "52:54:00:5c:02:01",
                               "ipv4": "10.0.1.10", "ipv6": "fd00:0:0:1::10"}},
    }
    assert facts["networks"] == {"lan": {"name": "lan", "ipv4": "10.0.1.0/24",
                                         "ipv6": "fd00:0:0:1::/64",
                                         "nodes": ["client", "server"]}}
    assert facts["roles"] == {"client": ["client"], "server": ["server"]}
    json.dumps(facts)  # plain data


def test_lab_name_defaults_to_the_topology_name() -> None:
    facts = topology_facts(load_topology(ROOT / "topologies" / "pair.yaml"))
    assert facts["lab"] == {"name": "pair", "topology": "pair"}


def test_first_address_of_a_node_on_two_networks() -> None:
    router = topology_facts(load_topology(ROOT / "topologies" / "triangle.yaml"))["nodes"]["router"]
    assert (router["ipv4"], router["ipv6"]) == ("10.77.1.2", "fd77:0:0:1::2")
    assert router["addresses"] == ["10.77.1.2", "fd77:0:0:1::2", "10.77.2.1", "fd77:0:0:2::1"]
    assert router["interfaces"]["right"]["ifname"] == "eth1"


@pytest.fixture
def v4only(tmp_path: Path) -> Topology:
    path = tmp_path / "v4.yaml"
    path.write_text(textwrap.dedent("""\
        name: v4
        nodes: {a: {}, b: {role: peer}, c: {role: peer}}
        networks: {lan: {ipv4: 10.0.9.0/24, ipv6: false}}
        links: [{network: lan, nodes: [a, b, c]}]
        """))
    return load_topology(path)


def test_missing_facts_are_left_out(v4only: Topology) -> None:
    facts = topology_facts(v4only)
    assert "ipv6" not in facts["nodes"]["a"] and "role" not in facts["nodes"]["a"]
    assert "ipv6" not in facts["networks"]["lan"]
    assert facts["roles"] == {"peer": ["b", "c"]}


def test_a_missing_fact_fails_with_a_hint(v4only: Topology, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(textwrap.dedent("""\
        name: p
        steps:
          - node: a
            run: "ping {{ nodes.b.ipv6 }}"
          - node: a
            run: "echo {{ nodes.a.role }}"
        """))
    with pytest.raises(InputError) as caught:
        load_playbook(Path("p.yaml"), v4only)
    assert [str(i) for i in caught.value.issues] == [
        "p.yaml:4: steps[0].run: template error: 'dict object' has no attribute 'ipv6' "
        "(hint: a, b and c have no ipv6)",
        "p.yaml:6: steps[1].run: template error: 'dict object' has no attribute 'role' "
        "(hint: without a role: a)",
    ]


def hints(topology: Topology, steps: str) -> list[str | None]:
    """The hints of the issues of a playbook made of `steps`, in the current directory."""
    Path("p.yaml").write_text("name: p\nsteps:\n" + textwrap.dedent(steps))
    with pytest.raises(InputError) as caught:
        load_playbook(Path("p.yaml"), topology)
    return [i.hint for i in caught.value.issues]


def test_a_missing_name_is_looked_for_where_the_template_read_it(
        v4only: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # Not "did you mean 'role'" (a fact), nor 'peer' (a role, not a node).
    assert hints(v4only, """\
        - node: a
          run: "ping {{ nodes.carol.ipv4 }}"
        - node: a
          run: "ping {{ nodes.peer.ipv4 }} {{ nodes['b'].ipv44 }}"
        """) == ["nodes: a, b, c", "nodes: a, b, c"]
    # In a block scalar, below its key's line, and behind brackets.
    assert hints(v4only, """\
        - node: a
          run: |
            echo start
            ping {{ nodes.carol.ipv4 }}
        - node: a
          run: "ping {{ nodes['b'].ipv44 }}"
        """) == ["nodes: a, b, c", "did you mean 'ipv4'?"]


def test_roles_select_nodes(v4only: Topology, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(textwrap.dedent("""\
        name: p
        steps:
          - nodes: "{{ roles.peer }}"
            run: "ping -c 1 {{ nodes.a.ipv4 }} # {{ lab.name }} {{ networks.lan.ipv4 }}"
        """))
    step = load_playbook(Path("p.yaml"), v4only, lab_name="v4-123456").steps[0]
    assert step.nodes == ("b", "c")
    assert step.action == Run("ping -c 1 10.0.9.1 # v4-123456 10.0.9.0/24", 30.0, 0, None, None,
                              None, False)


def test_a_hyphenated_node_name_in_a_template_gets_the_bracket_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.yaml").write_text(textwrap.dedent("""\
        name: web
        nodes: {web-1: {}, db: {}}
        links: [{network: lan, nodes: [web-1, db]}]
        networks: {lan: {}}
        """))
    Path("p.yaml").write_text(textwrap.dedent("""\
        name: p
        steps:
          - node: db
            run: "ping {{ nodes.web-1.ipv4 }}"
          - node: db
            run: "ping {{ nodes['web-1'].ipv4 }}"
        """))
    with pytest.raises(InputError) as caught:
        load_playbook(Path("p.yaml"), load_topology(Path("t.yaml")))
    assert [str(i) for i in caught.value.issues] == [
        "p.yaml:4: steps[0].run: template error: 'dict object' has no attribute 'web' "
        "(hint: Jinja reads '-' as minus: write nodes['web-1'] for a name with '-')"]
