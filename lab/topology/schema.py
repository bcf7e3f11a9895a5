"""JSON Schema of topology files, for editors (yaml-language-server and the like).

Generated from the input models; topologies/schema.json is the committed copy
(`lab validate --schema > topologies/schema.json`; a test keeps it current).
"""

from __future__ import annotations

import json
from typing import Any

from lab.topology.model import TopologyInput

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Any value may be a Jinja2 template string, which the model never sees as such.
TEMPLATE = {"type": "string", "pattern": r"\{[{%]"}


def topology_schema() -> dict[str, Any]:
    schema = TopologyInput.model_json_schema()
    _adapt(schema)
    return {"$schema": DIALECT, **schema}


def schema_json() -> str:
    return json.dumps(topology_schema(), indent=2) + "\n"


def _adapt(node: Any) -> None:
    """Let every field hold a template; reject mapping keys that are not valid names."""
    if isinstance(node, list):
        for item in node:
            _adapt(item)
        return
    if not isinstance(node, dict):
        return
    if "patternProperties" in node:
        node.setdefault("additionalProperties", False)
    for key in ("properties", "patternProperties"):
        for name, sub in node.get(key, {}).items():
            _adapt(sub)
            if name != "vars":
                node[key][name] = _or_template(sub)
    for key in ("$defs", "anyOf", "items"):
        if key in node:
            _adapt(node[key] if key != "$defs" else list(node[key].values()))
    if isinstance(node.get("items"), dict):
        node["items"] = _or_template(node["items"])


def _or_template(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "string" and "pattern" not in schema:
        return schema  # any string already matches
    meta: dict[str, Any] = {k: schema.pop(k) for k in ("title", "description", "default")
                            if k in schema}
    options = schema.pop("anyOf", None) or [schema]
    return {**meta, "anyOf": [*options, TEMPLATE]}
