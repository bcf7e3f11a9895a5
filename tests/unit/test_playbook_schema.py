"""playbooks/schema.json is what the models generate, and the examples use it."""

from __future__ import annotations

import json
from pathlib import Path

from lab.playbook.schema import playbook_schema, schema_json
from lab.topology.schema import TEMPLATE

ROOT = Path(__file__).parents[2]


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "playbooks" / "schema.json").read_text()
    assert committed == schema_json(), (
        "playbooks/schema.json is stale: regenerate it with "
        "`lab validate --schema playbook > playbooks/schema.json`")


def test_schema_shape() -> None:
    schema = playbook_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["title"] == "socklab playbook"
    step = schema["$defs"]["StepInput"]
    assert step["additionalProperties"] is False
    assert {"required": ["run"]} in step["oneOf"] and len(step["oneOf"]) == 9
    assert TEMPLATE in step["properties"]["timeout"]["anyOf"]
    assert len(schema["$defs"]["ExpectInput"]["oneOf"]) == 4
    assert TEMPLATE not in schema["properties"]["vars"]["anyOf"]  # vars are never rendered


def test_examples_point_editors_at_the_schema() -> None:
    for example in (ROOT / "playbooks").glob("*.yaml"):
        assert example.read_text().startswith("# yaml-language-server: $schema=schema.json\n")
    json.loads((ROOT / "playbooks" / "schema.json").read_text())
