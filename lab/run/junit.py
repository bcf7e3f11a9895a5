"""A run as JUnit XML (`junit.xml` in the run directory), the test report CI systems show.

One test suite per run, named after the playbook and the images it ran on (the
same playbook run nightly on two kernels gives two suites); one test case per
step and one per expectation on each node. A failed step or expectation is a
failure with its one-line reason (an error if the step failed only on nodes lost
during the run), a skipped step is skipped, and the step a
run was interrupted in (or the run itself, between steps) is an error, and so
is a lab that did not come up or could not be reached (a test case "lab up"),
traces that could not be analysed (a test case "run") and a node lost during
the run (a test case "node NAME").
Warnings go to the suite's standard error. Control characters, which XML
forbids, are written as \\xNN.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lab.run.results import RunSummary
from lab.text import visible

FILE = "junit.xml"


def junit_xml(summary: RunSummary, playbook: str) -> bytes:
    images = sorted({node.image for node in summary.nodes.values()})
    suite_name = f"{playbook} on {', '.join(images)}" if images else playbook
    cases: list[ET.Element] = []
    if summary.error:  # the lab did not come up (no step ran), or the traces not analysed
        ran = any(s.status != "skipped" for s in summary.steps)
        case = _case(suite_name, "run" if ran else "lab up", summary.seconds)
        _outcome(case, "error", summary.error)
        cases.append(case)
    for node, loss in zip(summary.lost, summary.losses, strict=True):
        case = _case(suite_name, f"node {node}", summary.seconds)
        _outcome(case, "error", loss)
        cases.append(case)
    for step in summary.steps:
        case = _case(suite_name, f"step {step.index + 1:02d}: {step.name}", step.seconds)
        if step.status == "failed":
            # A step that failed only where a node was lost says nothing of the experiment.
            lost = not step.error and all(r.ok or r.node in summary.lost for r in step.results)
            _outcome(case, "error" if lost else "failure", "; ".join(step.failures) or "failed")
        elif step.status == "interrupted":
            _outcome(case, "error", "interrupted (Ctrl-C or SIGTERM)")
        elif step.status == "running":  # the run failed during it
            _outcome(case, "error", summary.error or "the run failed during this step")
        elif step.status == "skipped":
            ET.SubElement(case, "skipped", message="an earlier step failed, or the run "
                                                   "was interrupted")
        cases.append(case)
    if summary.interrupted and not any(s.status == "interrupted" for s in summary.steps):
        case = _case(suite_name, "run", summary.seconds)
        _outcome(case, "error", summary.failures[-1])
        cases.append(case)
    for e in summary.expectations:
        case = _case(suite_name, f"expect: {e.name} [{e.node}]", 0.0)
        if not e.checked:
            ET.SubElement(case, "skipped", message=visible(e.detail))
        elif not e.ok:
            _outcome(case, "failure", e.detail)
        cases.append(case)
    count = {kind: sum(1 for c in cases if c.find(kind) is not None)
             for kind in ("failure", "error", "skipped")}
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=visible(suite_name), tests=str(len(cases)),
                          failures=str(count["failure"]), errors=str(count["error"]),
                          skipped=str(count["skipped"]), time=f"{summary.seconds:.3f}",
                          timestamp=summary.started_at.removesuffix("Z"))
    properties = ET.SubElement(suite, "properties")
    for name, value in [("lab", summary.lab), ("topology", summary.topology),
                        ("playbook", summary.playbook),
                        *((("accelerator", summary.accel),) if summary.accel else ()),
                        *((f"{node}.kernel", run.kernel) for node, run in summary.nodes.items()
                          if run.kernel)]:
        ET.SubElement(properties, "property", name=name, value=visible(value))
    suite.extend(cases)
    if summary.warnings:
        ET.SubElement(suite, "system-err").text = visible("\n".join(summary.warnings)) + "\n"
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def _case(suite: str, name: str, seconds: float) -> ET.Element:
    return ET.Element("testcase", classname=visible(suite), name=visible(name),
                      time=f"{seconds:.3f}")


def _outcome(case: ET.Element, kind: str, message: str) -> None:
    """A failure or an error: the first line as its message, the whole as its text."""
    shown = visible(message)
    ET.SubElement(case, kind, message=shown.splitlines()[0] if shown else kind).text = shown
