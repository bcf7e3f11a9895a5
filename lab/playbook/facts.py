"""Topology facts: what playbook templates know about the lab they run on.

    {{ nodes.server.ipv4 }}          10.0.1.10 (first data address, no prefix length)
    {{ nodes.server.ipv6 }}          fd00:0:0:1::10
    {{ nodes.server.addresses }}     ['10.0.1.10', 'fd00:0:0:1::10'] (every data address)
    {{ nodes.server.role }}          server
    {{ nodes.server.interfaces.lan.ifname }}   eth0 (also .mac, .ipv4, .ipv6)
    {{ networks.lan.ipv4 }}          10.0.1.0/24 (the subnet; also .ipv6, .nodes)
    {{ roles.server }}               ['server'] (node names by role: nodes: "{{ roles.server }}")
    {{ lab.name }}                   pair-3f2a9c ({{ lab.topology }}: pair)

A fact a node does not have (no IPv6, no role) is left out, so a template
using it fails at load time instead of rendering "None". Names that are not
identifiers (web-1) are reached with brackets: nodes['web-1'].ipv4.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from lab.errors import InputIssue
from lab.text import closest
from lab.topology import Node, Topology

FACT_NAMES = ("lab", "nodes", "networks", "roles")
FACT_REASON = "a fact of the topology, which --set cannot change"  # said of a --set of one


def topology_facts(topology: Topology, *, lab_name: str | None = None) -> dict[str, Any]:
    """Template variables describing `topology`, booted as lab `lab_name` (default: its name).

    Plain JSON-able data (str, int, list, dict).
    """
    roles: dict[str, list[str]] = {}
    for node in topology.nodes:
        if node.role:
            roles.setdefault(node.role, []).append(node.name)
    return {
        "lab": {"name": lab_name or topology.name, "topology": topology.name},
        "nodes": {n.name: node_facts(n) for n in topology.nodes},
        "networks": {n.name: _present({
            "name": n.name, "ipv4": _str(n.ipv4), "ipv6": _str(n.ipv6), "nodes": list(n.nodes),
        }) for n in topology.networks},
        "roles": roles,
    }


def node_facts(node: Node) -> dict[str, Any]:
    v4 = [str(i.ipv4.ip) for i in node.interfaces if i.ipv4]
    v6 = [str(i.ipv6.ip) for i in node.interfaces if i.ipv6]
    addresses = [str(a.ip) for i in node.interfaces for a in (i.ipv4, i.ipv6) if a]
    return _present({
        "name": node.name, "index": node.index, "role": node.role,
        "ipv4": v4[0] if v4 else None, "ipv6": v6[0] if v6 else None,
        "addresses": addresses,
        "interfaces": {i.network: _present({
            "ifname": i.ifname, "mac": i.mac,
            "ipv4": str(i.ipv4.ip) if i.ipv4 else None,
            "ipv6": str(i.ipv6.ip) if i.ipv6 else None,
        }) for i in node.interfaces},
    })


# --- hints for template errors --------------------------------------------------

_MISSING_ATTRIBUTE = re.compile(r"template error: 'dict object' has no attribute '([\w-]+)'")


def explain_missing_fact(issue: InputIssue, facts: Mapping[str, Any]) -> InputIssue:
    """Add a hint to "'dict object' has no attribute 'sever'": most are misspelt facts."""
    match = _MISSING_ATTRIBUTE.fullmatch(issue.message)
    if match is None or issue.hint is not None:
        return issue
    name = match.group(1)
    return replace(issue, hint=_fact_hint(name, facts, _read_from(name, issue)))


def _read_from(name: str, issue: InputIssue) -> str | None:
    """What the template read `name` from ("nodes" in nodes.sever.ipv4, "server" in
    nodes['server'].ipv5), if its text in the file says: the issue's line, and the lines
    of a block scalar (run: |) under it."""
    try:
        lines = issue.file.read_text().splitlines()
        first = lines[(issue.line or 0) - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    indent = len(first) - len(first.lstrip())
    block = itertools.takewhile(
        lambda line: not line.strip() or len(line) - len(line.lstrip()) > indent,
        lines[issue.line or 0:])
    text = "\n".join([first, *block])
    word = re.escape(name)
    found = re.search(rf"(?:\[\s*['\"]([\w-]+)['\"]\s*\]|([\w-]+))"
                      rf"(?:\s*\.\s*{word}\b|\s*\[\s*['\"]{word}['\"])", text)
    return (found.group(1) or found.group(2)) if found else None


def _fact_hint(name: str, facts: Mapping[str, Any], owner: str | None) -> str | None:
    nodes: dict[str, dict[str, Any]] = facts["nodes"]
    optional = {"ipv4": "an IPv4 address", "ipv6": "an IPv6 address", "role": "a role"}
    if name in optional:
        lacking = [n for n, f in nodes.items() if name not in f]
        if lacking:
            return f"{_and(lacking)} {'has' if len(lacking) == 1 else 'have'} no {name}" \
                   if name != "role" else f"without a role: {', '.join(lacking)}"
    groups = {"nodes": list(nodes), "networks": list(facts["networks"]),
              "roles": list(facts["roles"])}
    for what, names in groups.items():
        # nodes.web-1.ipv4 reads as nodes.web - 1.ipv4, asking for 'web'.
        if hyphenated := [n for n in names if n.startswith(f"{name}-")]:
            return (f"Jinja reads '-' as minus: write {what}['{hyphenated[0]}'] "
                    f"for a name with '-'")
    if owner in groups:  # nodes.sever: one of the nodes, networks or roles was meant
        return _close(name, groups[owner], f"{owner}: {', '.join(groups[owner]) or 'none'}")
    for what, items in (("node", nodes), ("network", facts["networks"])):
        if owner is not None and owner in items:  # nodes.server.ipv5: a fact of it was meant
            facts_of = sorted(items[owner])
            near = closest(name, facts_of)
            return (f"did you mean '{near}'?" if near else
                    f"facts of {what} {owner}: {', '.join(facts_of)}")
    # Which mapping failed is unknown: a close name of any kind, never the name itself.
    keys = {k for f in [*nodes.values(), *facts["networks"].values(), facts["lab"]] for k in f}
    for names in [*groups.values(), sorted(keys)]:
        if near := closest(name, [n for n in names if n != name]):
            return f"did you mean '{near}'?"
    return f"nodes: {', '.join(nodes)}; networks: {', '.join(facts['networks'])}"


def _close(name: str, names: list[str], known: str) -> str:
    """Did you mean the close name, else what there is."""
    close = closest(name, names)
    return f"did you mean '{close}'? {known}" if close else known


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"




def _present(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if v is not None}


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)
