"""Loading a playbook against a topology: templates with facts, then every check at once.

    topo = load_topology(Path("topologies/pair.yaml"))
    book = load_playbook(Path("playbooks/replyhi.yaml"), topo, lab_name="pair-3f2a9c")

Templates see the playbook's vars (with --set applied) and the topology facts
of facts.py, so a playbook is always loaded against a resolved topology.
`read_playbook` parses, renders and checks shapes (lab.source with model.py);
`resolve_playbook` (resolve.py) checks the rest and builds the `Playbook`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lab.errors import InputError
from lab.playbook.facts import FACT_NAMES, explain_missing_fact, topology_facts
from lab.playbook.model import PlaybookInput
from lab.playbook.plan import Playbook
from lab.playbook.resolve import resolve_playbook
from lab.source import Document, is_regular, load_document
from lab.text import closest
from lab.topology import Topology, TopologyInput


def load_playbook(path: Path, topology: Topology, *, lab_name: str | None = None,
                  overrides: Mapping[str, str] = {},
                  programs: Collection[str] | None = None) -> Playbook:
    """Load, render and check a playbook for `topology` booted as lab `lab_name`.

    `lab_name` defaults to the topology's name; `programs` to the shipped
    programs. Raises InputError with every issue.
    """
    doc = read_playbook(path, topology, lab_name=lab_name, overrides=overrides)
    return resolve_playbook(doc, topology, lab_name=lab_name, overrides=overrides,
                            programs=programs)


def read_playbook(path: Path, topology: Topology, *, lab_name: str | None = None,
                  overrides: Mapping[str, str] = {}) -> Document[PlaybookInput]:
    """Parse, render and shape-check; `unused_overrides` is as for topologies."""
    facts = topology_facts(topology, lab_name=lab_name)
    try:
        # Failed templates are raised with what resolve_playbook finds besides.
        doc = load_document(path, PlaybookInput, overrides=overrides, facts=facts,
                            keep_going=True)
    except InputError as exc:
        raise InputError([explain_missing_fact(i, facts) for i in exc.issues]) from None
    # A --set of a fact's name changes nothing here: the fact wins.
    shadowed = set(overrides) & set(FACT_NAMES)
    return replace(doc, unused_overrides=doc.unused_overrides | shadowed,
                   variables=doc.variables - set(FACT_NAMES),
                   issues=tuple(explain_missing_fact(i, facts) for i in doc.issues))



DocumentKind = Literal["topology", "playbook"]


def document_kind(path: Path) -> DocumentKind:
    """Which kind of file `path` is, by its top-level keys: a topology's own (nodes:,
    networks:, links:) or a playbook's (steps:, expect:, tracers:). A key exactly one
    kind's decides, a topology's first; else a misspelt one (step:); else `topology`.

    A file that cannot be read or parsed counts as a topology: loading it
    reports the problem either way.
    """
    if not is_regular(path):
        return "topology"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "topology"
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except (YAMLError, RecursionError):  # nested too deep: loading says so
        data = None
    if not isinstance(data, dict):
        return "playbook" if re.search(r"^steps\s*:", text, re.MULTILINE) else "topology"
    keys = {str(k) for k in data}
    if keys & TOPOLOGY_ONLY:
        return "topology"
    if keys & PLAYBOOK_ONLY:
        return "playbook"
    if any(_like(TOPOLOGY_ONLY, k) for k in keys):
        return "topology"
    return "playbook" if any(_like(PLAYBOOK_ONLY, k) for k in keys) else "topology"


PLAYBOOK_ONLY = frozenset(PlaybookInput.model_fields) - frozenset(TopologyInput.model_fields)
TOPOLOGY_ONLY = frozenset(TopologyInput.model_fields) - frozenset(PlaybookInput.model_fields)


def _like(fields: frozenset[str], key: str) -> bool:
    return closest(key, sorted(fields), cutoff=0.75) is not None
