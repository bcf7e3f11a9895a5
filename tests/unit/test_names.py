"""Names of a lab and of everything it owns."""

from __future__ import annotations

import re

import pytest

from lab.names import (
    LAB_NAME,
    bridge_name,
    domain_name,
    lab_id,
    mgmt_mac,
    network_name,
    new_lab_name,
)
from lab.topology.model import NAME_PATTERN

IFNAMSIZ = 15  # Linux interface names: at most 15 characters


def test_new_lab_names_are_the_topology_and_six_hex_digits() -> None:
    names = {new_lab_name("pair") for _ in range(50)}
    assert len(names) == 50  # two labs of one file do not collide
    for name in names:
        assert re.fullmatch(r"pair-[0-9a-f]{6}", name)
        assert LAB_NAME.match(name)
        assert lab_id(name) == name[-6:]


@pytest.mark.parametrize("topology", ["a", "pair", "x-1a2b3c", "abcdef", "a" * 16])
def test_every_topology_name_gives_a_valid_lab_name(topology: str) -> None:
    assert re.fullmatch(NAME_PATTERN, topology)
    lab = new_lab_name(topology)
    assert lab.startswith(topology + "-")
    assert lab_id(lab) == lab[-6:]


@pytest.mark.parametrize(("lab", "expected"), [
    ("pair-1a2b3c", "1a2b3c"),
    ("x-1a2b3c-4d5e6f", "4d5e6f"),  # a topology name with hex in it: the last part counts
    ("abcdef-abcdef", "abcdef"),
])
def test_lab_id(lab: str, expected: str) -> None:
    assert lab_id(lab) == expected


@pytest.mark.parametrize("lab", [
    "pair", "pair-", "pair-1a2b3", "pair-1a2b3c4", "pair-1A2B3C", "pair_1a2b3c", "1pair-1a2b3c",
    "-1a2b3c", "1a2b3c", "Pair-1a2b3c", "pair-1a2b3c\n", "pair-1a2b3g",
])
def test_lab_id_rejects_what_is_not_a_lab_name(lab: str) -> None:
    with pytest.raises(ValueError, match="not a lab name"):
        lab_id(lab)


@pytest.mark.parametrize("index", [1, 9, 10, 99, 100, 999])
def test_bridge_names_fit_linux_interface_names(index: int) -> None:
    lab = new_lab_name("a" * 16)
    bridge = bridge_name(lab, index)
    assert bridge == f"sl{lab[-6:]}-{index}"
    assert len(bridge) <= IFNAMSIZ
    assert re.fullmatch(r"[a-z0-9-]+", bridge)


def test_bridges_of_two_labs_of_one_topology_differ() -> None:
    assert bridge_name("pair-1a2b3c", 1) != bridge_name("pair-4d5e6f", 1)
    assert bridge_name("pair-1a2b3c", 1) != bridge_name("pair-1a2b3c", 2)


def test_domain_and_network_names_carry_the_lab_name() -> None:
    assert domain_name("pair-1a2b3c", "server") == "sl-pair-1a2b3c-server"
    assert network_name("pair-1a2b3c", "lan") == "sl-pair-1a2b3c-lan"


def test_management_macs_are_locally_administered_and_distinct() -> None:
    macs = [mgmt_mac(i) for i in range(256)]
    assert len(set(macs)) == 256
    assert macs[0] == "52:54:00:5c:00:00"
    assert macs[255] == "52:54:00:5c:ff:00"
    assert all(re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", m) for m in macs)
