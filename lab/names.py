"""Names of everything a lab owns, all derived from the lab's name.

A lab is named `<topology>-<6 hex digits>`: two labs of one file never
collide. Bridge names carry only the hex id, to fit Linux's 15 characters.
"""

from __future__ import annotations

import re
import secrets

LAB_NAME = re.compile(r"^[a-z][a-z0-9-]*-([0-9a-f]{6})$")


def new_lab_name(topology: str) -> str:
    return f"{topology}-{secrets.token_hex(3)}"


def lab_id(lab: str) -> str:
    m = LAB_NAME.fullmatch(lab)  # not match(): "$" would allow a trailing newline
    if not m:
        raise ValueError(f"not a lab name: {lab!r}")
    return m.group(1)


def domain_name(lab: str, node: str) -> str:
    return f"sl-{lab}-{node}"


def network_name(lab: str, network: str) -> str:
    return f"sl-{lab}-{network}"


def bridge_name(lab: str, index: int) -> str:
    """`sl<id>-<n>`: at most 12 characters for up to 999 networks."""
    return f"sl{lab_id(lab)}-{index}"


def node_mac(node_index: int, interface: int) -> str:
    """A NIC's MAC: the node's and the interface's numbers in QEMU's local prefix; the
    management NIC is interface 0, the lab's interfaces 1 and up."""
    return f"52:54:00:5c:{node_index:02x}:{interface:02x}"


def mgmt_mac(node_index: int) -> str:
    return node_mac(node_index, 0)
