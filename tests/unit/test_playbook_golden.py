"""The example playbooks, loaded against topologies/pair.yaml, against tests/golden/playbook/*.json.

The JSON is `Playbook.to_dict()`: every step rendered (addresses from the
topology, vars substituted), every default filled in. After a deliberate
change: `pytest --update-golden`, then review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.playbook import load_playbook
from lab.topology import load_topology

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "playbook"
EXAMPLES = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yaml"))


def test_the_examples_are_the_expected_ones() -> None:
    assert EXAMPLES == ["bulk", "concurrent", "handshake", "replyhi", "replyhi6", "strace", "udp"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_loaded_example_matches_golden(name: str, request: pytest.FixtureRequest,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths in the JSON stay relative
    topology = load_topology(Path("topologies/pair.yaml"))
    book = load_playbook(Path(f"playbooks/{name}.yaml"), topology, lab_name="pair-c0ffee")
    actual = json.dumps(book.to_dict(), indent=2) + "\n"
    golden = GOLDEN / f"{name}.json"
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert golden.exists(), f"{golden} missing: run pytest --update-golden"
    assert actual == golden.read_text(), f"{golden} differs: run pytest --update-golden if intended"
