"""topologies/schema.json is what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

from lab.topology.schema import TEMPLATE, schema_json, topology_schema

ROOT = Path(__file__).parents[2]


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "topologies" / "schema.json").read_text()
    assert committed == schema_json(), (
        "topologies/schema.json is stale: regenerate it with "
        "`lab validate --schema > topologies/schema.json`")


def test_schema_accepts_templates_and_rejects_bad_names() -> None:
    schema = topology_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    memory = schema["$defs"]["NodeSettings"]["properties"]["memory"]
    assert TEMPLATE in memory["anyOf"]
    nodes = schema["properties"]["nodes"]["anyOf"][0]  # [mapping, template]
    assert nodes["additionalProperties"] is False
    assert list(nodes["patternProperties"]) == ["^[a-z][a-z0-9-]{0,15}$"]
    assert TEMPLATE not in schema["properties"]["vars"]["anyOf"]  # vars are never rendered


def test_examples_point_editors_at_the_schema() -> None:
    for example in (ROOT / "topologies").glob("*.yaml"):
        assert example.read_text().startswith("# yaml-language-server: $schema=schema.json\n")
    json.loads((ROOT / "topologies" / "schema.json").read_text())
