# ruff: noqa: E501  (expected messages stay one line each, as printed)
"""Every bad topology in bad_topologies/ and the exact lines `lab` prints for it.

Messages are the user interface here: a change in wording shows up as a diff
in this table, on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import InputError
from lab.topology import load_topology

DATA = Path(__file__).parent / "bad_topologies"

# file → options for load_topology
OPTIONS: dict[str, dict[str, object]] = {
    "unknown-image.yaml": {"images": {"debian-11", "debian-12"}},
    "bad-name-and-references.yaml": {"images": {"debian-11", "debian-12"}},
    "override-type.yaml": {"overrides": {"mem": "lots"}},
}

CASES = [
    ('bad-name-and-references.yaml', [
        "bad-name-and-references.yaml:2: name: 'Bad_Name!' is not a valid name (hint: 1-16 characters: a-z, 0-9 and '-', starting with a letter)",
        "bad-name-and-references.yaml:5: nodes.server.image: unknown image 'debian-99' (hint: did you mean 'debian-12'? available: debian-11, debian-12)",
        "bad-name-and-references.yaml:7: networks.lan: network is not linked to any node (hint: attach nodes to it under links:, or remove it)",
        "bad-name-and-references.yaml:9: links[0].network: unknown network 'lann' (hint: did you mean 'lan'?)",
    ]),
    ('playbook-fields.yaml', [
        "playbook-fields.yaml:4: steps: unknown field (hint: a playbook's field: a playbook is a file of its own, given to lab run after the topology)",
    ]),
    ('whole-numbers.yaml', [
        'whole-numbers.yaml:3: nodes.a.memory: expected an integer, got 1000.0 (hint: write 1000: YAML reads 1e3 and 2.0 as floating-point numbers)',
        'whole-numbers.yaml:3: nodes.a.vcpus: expected an integer, got 2.0 (hint: write 2: YAML reads 1e3 and 2.0 as floating-point numbers)',
    ]),
    ('bad-endpoints.yaml', [
        'bad-endpoints.yaml:8: links[0].nodes[1]: expected a node name or a mapping, got 5 (hint: write NODE or {node: NODE, ipv4: ADDRESS, ipv6: ADDRESS})',
        'bad-endpoints.yaml:8: links[0].nodes[2].ipv4: 10.0.1.8/24 has a prefix length (hint: give the address alone; the prefix comes from the network)',
        'bad-endpoints.yaml:10: links[1].nodes: must not be empty',
        'bad-endpoints.yaml:11: links[2].nodes: required field missing (hint: nodes to attach: NODE or {node: NODE, ipv4: ..., ipv6: ...})',
    ]),
    ('bad-subnets.yaml', [
        'bad-subnets.yaml:5: networks.one.ipv4: 10.0.1.1/24 has host bits set (hint: did you mean 10.0.1.0/24?)',
        'bad-subnets.yaml:6: networks.two.ipv4: 10.0.2.0/31 is too small for a lab network (hint: use a prefix of /30 or shorter)',
        "bad-subnets.yaml:7: networks.three.ipv4: expected an IPv4 subnet, got '10.0.3.0' (hint: write ADDRESS/PREFIX like 10.0.1.0/24, or false to disable)",
        'bad-subnets.yaml:8: networks.four.ipv4: 224.0.0.0/24 is a special-purpose range (hint: use a private range such as 10.0.1.0/24)',
        "bad-subnets.yaml:8: networks.four.ipv6: 'fd00::zz/64' is not an IPv6 subnet (hint: write ADDRESS/PREFIX like fd00:0:0:1::/64)",
        'bad-subnets.yaml:9: networks.five.ipv4: expected an IPv4 subnet, got 24 (hint: write ADDRESS/PREFIX like 10.0.1.0/24, or false to disable)',
    ]),
    ('bad-values.yaml', [
        "bad-values.yaml:1: name: 'Pair' is not a valid name (hint: 1-16 characters: a-z, 0-9 and '-', starting with a letter)",
        'bad-values.yaml:3: defaults.memory: must be at most 16384, got 99999',
        "bad-values.yaml:5: nodes.Client: 'Client' is not a valid name (hint: 1-16 characters: a-z, 0-9 and '-', starting with a letter)",
        'bad-values.yaml:7: nodes.server.vcpus: must be at least 1, got 0',
        "bad-values.yaml:8: nodes.server.memory: expected an integer, got 'lots'",
        "bad-values.yaml:9: nodes.server.role: 'web server' is not a valid role (hint: a short identifier such as client or server)",
        "bad-values.yaml:10: nodes.server.image: '../etc/passwd' is not a valid image name (hint: an image recipe name such as debian-11)",
        "bad-values.yaml:12: nodes.router.role: 'router\\n' is not a valid role (hint: a short identifier such as client or server)",
    ]),
    ('duplicate-key.yaml', [
        "duplicate-key.yaml:5: duplicate key 'client' (hint: each key may appear once per mapping; merge the two entries)",
    ]),
    ('empty.yaml', [
        'empty.yaml: file is empty (hint: start with the required fields: name, nodes)',
    ]),
    ('exhausted.yaml', [
        'exhausted.yaml:11: links[0].nodes[2]: no free IPv4 address left in 10.0.1.0/30 of network lan (hint: it has 2 host addresses; use a shorter prefix)',
        'exhausted.yaml:11: links[0].nodes[3]: no free IPv6 address left in fd00::/126 of network lan (hint: it has 3 host addresses; use a shorter prefix)',
    ]),
    ('fixed-addresses.yaml', [
        'fixed-addresses.yaml:14: links[0].nodes[0].ipv4: 10.0.2.1 is outside 10.0.1.0/24 of network lan (hint: pick an address in 10.0.1.0/24)',
        'fixed-addresses.yaml:15: links[0].nodes[1].ipv4: 10.0.1.0 is the network address of 10.0.1.0/24 (hint: host addresses start at 1)',
        'fixed-addresses.yaml:16: links[0].nodes[2].ipv4: 10.0.1.255 is the broadcast address of 10.0.1.0/24 (hint: pick a lower address)',
        'fixed-addresses.yaml:18: links[0].nodes[4].ipv4: 10.0.1.7 is already assigned to node d on line 17 (hint: leave the address out to get a free one)',
        'fixed-addresses.yaml:18: links[0].nodes[4].ipv6: network lan has IPv6 disabled (hint: remove the address, or give network lan an ipv6 subnet)',
    ]),
    ('linked-twice.yaml', [
        'linked-twice.yaml:11: links[1].nodes[0]: node client is already linked to network lan on line 9 (hint: a node has one interface per network)',
    ]),
    ('misspelt-section.yaml', [
        "misspelt-section.yaml:2: node: unknown field (hint: did you mean 'nodes'?)",
    ]),
    ('no-nodes.yaml', [
        'no-nodes.yaml:1: name: required field missing (hint: lab name; prefixes every libvirt object of the lab)',
        'no-nodes.yaml:1: nodes: must not be empty',
    ]),
    ('overlapping-subnets.yaml', [
        'overlapping-subnets.yaml:6: networks.two.ipv4: 10.0.1.0/24 overlaps 10.0.0.0/16 of network one (hint: give each network its own subnet)',
        'overlapping-subnets.yaml:7: networks.three.ipv6: fd00::/48 overlaps fd00:0:0:1::/64 of network two (hint: give each network its own subnet)',
    ]),
    ('override-type.yaml', [
        "override-type.yaml:4: nodes.a.memory: expected an integer, got 'lots' (from --set mem=lots)",
    ]),
    ('tabs.yaml', [
        "tabs.yaml:3: YAML syntax error: found character '\\t' that cannot start any token (hint: indent with spaces; YAML does not allow tabs)",
    ]),
    ('number-name.yaml', [
        'number-name.yaml:4: nodes: a key must be a name, not 7 (hint: YAML reads 007, 1e3 or true as a number or a truth value; a name starts with a letter)',
    ]),
    ('reserved-name.yaml', [
        "reserved-name.yaml:4: nodes.all: 'all' cannot name a node: in playbooks it means every node (hint: give the node another name)",
    ]),
    ('role-near-router.yaml', [
        "role-near-router.yaml:4: nodes.r.role: role 'routr' is close to 'router', which forwards packets between networks (hint: did you mean 'router'?)",
    ]),
    # A failed template does not hide what else is wrong.
    ('templates-and-more.yaml', [
        "templates-and-more.yaml:3: nodes.client.memory: undefined variable 'mem' (hint: define it under vars: or pass --set mem=VALUE)",
        "templates-and-more.yaml:6: links[0].network: unknown network 'lan' (hint: define it under networks:)",
        "templates-and-more.yaml:6: links[0].nodes[1]: unknown node 'sever' (hint: did you mean 'server'?)",
    ]),
    ('templates.yaml', [
        "templates.yaml:6: nodes.client.memory: undefined variable 'mem' (hint: define it under vars: or pass --set mem=VALUE)",
        "templates.yaml:9: nodes.server.image: template error: unexpected end of template, expected 'end of print statement' (hint: templates are Jinja2: {{ expression }} and {% statement %})",
        'templates.yaml:11: nodes.router.role: template error: ZeroDivisionError: division by zero',
    ]),
    ('top-level-list.yaml', [
        'top-level-list.yaml:1: expected a mapping at the top level, got a list',
    ]),
    ('unclosed.yaml', [
        "unclosed.yaml:3: YAML syntax error while parsing a flow mapping started on line 2: expected ',' or '}', but got '<scalar>' (hint: check indentation, and quote values containing ': ' or ' #')",
    ]),
    ('two-documents.yaml', [
        "two-documents.yaml:3: a second YAML document ('---'): a file holds one (hint: put each topology or playbook in a file of its own)",
    ]),
    ('shape-and-references.yaml', [
        "shape-and-references.yaml:5: nodes.client.memroy: unknown field (hint: did you mean 'memory'?)",
        "shape-and-references.yaml:6: nodes.server.memory: expected an integer, got 'lots'",
        "shape-and-references.yaml:8: networks.lan.ipv4: '10.0.1.0/33' is not an IPv4 subnet (hint: write ADDRESS/PREFIX like 10.0.1.0/24)",
        "shape-and-references.yaml:11: links[0].nodes[1]: unknown node 'sever' (hint: did you mean 'server'?)",
        "shape-and-references.yaml:12: links[1].network: unknown network 'wan' (hint: did you mean 'lan'?)",
    ]),
    ('unknown-fields.yaml', [
        "unknown-fields.yaml:4: nodes.client.memroy: unknown field (hint: did you mean 'memory'?)",
        'unknown-fields.yaml:6: nodes.server.colour: unknown field (hint: known fields: image, memory, vcpus, role)',
        "unknown-fields.yaml:8: networks.lan.ipv5: unknown field (hint: did you mean 'ipv6'?)",
        "unknown-fields.yaml:10: links[0].netwrok: unknown field (hint: did you mean 'network'?)",
    ]),
    ('unknown-image.yaml', [
        "unknown-image.yaml:3: defaults.image: unknown image 'debain-12' (hint: did you mean 'debian-12'? available: debian-11, debian-12)",
        "unknown-image.yaml:7: nodes.c.image: unknown image 'ubuntu' (hint: available: debian-11, debian-12)",
    ]),
    ('unknown-references.yaml', [
        "unknown-references.yaml:9: links[0].nodes[1]: unknown node 'sever' (hint: did you mean 'server'?)",
        "unknown-references.yaml:10: links[1].network: unknown network 'wan' (hint: did you mean 'lan'?)",
        "unknown-references.yaml:11: links[1].nodes[0].node: unknown node 'clinet' (hint: did you mean 'client'?)",
    ]),
    ('unlinked-network.yaml', [
        'unlinked-network.yaml:7: networks.spare: network is not linked to any node (hint: attach nodes to it under links:, or remove it)',
    ]),
    ('unquoted-template.yaml', [
        'unquoted-template.yaml:5: nodes.client.memory: unquoted template: YAML reads it as a mapping (hint: quote it: memory: "{{ mem }}")',
    ]),
    ('vars-names-and-templates.yaml', [
        "vars-names-and-templates.yaml:3: vars.my-mem: 'my-mem' is not a valid variable name (hint: use letters, digits and '_', not starting with a digit)",
        "vars-names-and-templates.yaml:5: vars.image: a variable's value is taken as written, not as a template (hint: write the template where the variable is used)",
    ]),
    ('vars-not-mapping.yaml', [
        'vars-not-mapping.yaml:2: vars: expected a mapping of variables, got a list',
    ]),
    ('yaml-tag.yaml', [
        "yaml-tag.yaml:3: nodes.a.memory: unsupported YAML tag '!!python/object:os.system' (hint: remove the tag; plain YAML values only)",
    ]),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_topology(name: str, expected: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)  # messages then name the file as given: `name.yaml:LINE: ...`
    with pytest.raises(InputError) as caught:
        load_topology(Path(name), **OPTIONS.get(name, {}))  # type: ignore[arg-type]
    assert [str(issue) for issue in caught.value.issues] == expected
    assert str(caught.value).splitlines() == expected  # one line per issue


def test_every_data_file_is_in_the_table() -> None:
    assert sorted(p.name for p in DATA.glob("*.yaml")) == sorted(c[0] for c in CASES)
