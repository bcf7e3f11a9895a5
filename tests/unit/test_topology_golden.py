"""The example topologies, expanded, against tests/golden/topology/*.json.

After a deliberate change: `pytest --update-golden`, then review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.topology import load_topology

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "topology"


@pytest.mark.parametrize("name", ["pair", "triangle"])
def test_expanded_example_matches_golden(name: str, request: pytest.FixtureRequest) -> None:
    topo = load_topology(ROOT / "topologies" / f"{name}.yaml")
    actual = json.dumps(topo.to_dict(), indent=2) + "\n"
    golden = GOLDEN / f"{name}.json"
    if request.config.getoption("--update-golden"):
        golden.write_text(actual)
    assert golden.exists(), f"{golden} missing: run pytest --update-golden"
    assert actual == golden.read_text(), f"{golden} differs: run pytest --update-golden if intended"
