"""Playbooks: the experiment run on a lab, and what its traces must show.

    topo = load_topology(Path("topologies/pair.yaml"))
    book = load_playbook(Path("playbooks/replyhi.yaml"), topo, lab_name="pair-3f2a9c",
                         overrides={"port": "8000"})
    book.steps[0].action          # Deploy(program='replyhi', source=None, ...)

model.py holds the input models (what users write), facts.py the template
facts of a topology, load.py the loading, resolve.py the checks across the
file and the topology, plan.py the resolved `Playbook`, build.py the compiling of
its C programs, expect.py the evaluation of expectations on events, schema.py the
editor schema.
"""

from lab.playbook.build import build_programs
from lab.playbook.expect import Outcome, evaluate
from lab.playbook.facts import FACT_NAMES, FACT_REASON, topology_facts
from lab.playbook.load import document_kind, load_playbook, read_playbook
from lab.playbook.model import PlaybookInput
from lab.playbook.plan import (
    Absent,
    Action,
    Bound,
    Check,
    Count,
    Deploy,
    Expectation,
    InOrder,
    Playbook,
    Present,
    Pull,
    Push,
    Run,
    Sleep,
    Step,
    Stop,
    StraceSettings,
    TraceStart,
    TraceStop,
    Wait,
    WaitPort,
)
from lab.playbook.resolve import resolve_playbook

__all__ = [
    "FACT_NAMES", "FACT_REASON", "Absent", "Action", "Bound", "Check", "Count", "Deploy",
    "Expectation", "InOrder", "Outcome", "Playbook", "PlaybookInput",
    "Present", "Pull", "Push", "Run", "Sleep", "Step", "Stop", "StraceSettings", "TraceStart",
    "TraceStop", "Wait", "WaitPort", "build_programs", "document_kind", "evaluate", "load_playbook",
    "read_playbook", "resolve_playbook", "topology_facts",
]
