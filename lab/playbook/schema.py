"""JSON Schema of playbook files, for editors (yaml-language-server and the like).

Generated from the input models like the topology schema;
playbooks/schema.json is the committed copy (`lab validate --schema playbook
> playbooks/schema.json`; a test keeps it current).
"""

from __future__ import annotations

import json
from typing import Any

from lab.playbook.model import PlaybookInput
from lab.playbook.values import ACTIONS, CHECKS
from lab.topology.schema import DIALECT
from lab.topology.schema import _adapt as allow_templates


def playbook_schema() -> dict[str, Any]:
    schema = PlaybookInput.model_json_schema()
    allow_templates(schema)
    # One action per step, one check per expectation: what the flat models leave to load.py.
    defs = schema["$defs"]
    defs["StepInput"]["oneOf"] = [{"required": [a]} for a in ACTIONS]
    defs["ExpectInput"]["oneOf"] = [{"required": [c]} for c in CHECKS]
    defs["TraceInput"]["oneOf"] = [{"required": ["start"]}, {"required": ["stop"]}]
    return {"$schema": DIALECT, **schema}


def schema_json() -> str:
    return json.dumps(playbook_schema(), indent=2) + "\n"
