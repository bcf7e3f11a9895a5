"""junit.xml: a run as the test report CI systems show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lab.run.junit import junit_xml
from lab.run.results import ExpectationResult, NodeResult, NodeRun, RunSummary, StepResult


def summary() -> RunSummary:
    steps = [StepResult(0, "deploy replyhi", 12, "deploy", ["server"], "ok", 0.25),
             StepResult(1, "say hello", 20, "run", ["client"], "failed", 1.5, [
                 NodeResult("client", ok=False, exit_status=1,
                            error="exit status 1, expected 0: refused")]),
             StepResult(2, "stop ftrace", 30, "trace_stop", ["client", "server"])]
    return RunSummary(
        lab="pair-0a0b0c", playbook="playbooks/replyhi.yaml", topology="topologies/pair.yaml",
        nodes={"client": NodeRun("debian-12", "6.1.0-27-amd64"),
               "server": NodeRun("debian-12", "6.1.0-27-amd64")},
        started_at="2026-12-01T05:00:00Z", seconds=7.25, accel="kvm", steps=steps,
        expectations=[
            ExpectationResult("server calls", 40, "server", ok=True, detail="all 6 in order"),
            ExpectationResult("client calls", 45, "client", ok=False, detail="no __sys_connect"),
        ])


def test_steps_and_expectations_are_test_cases() -> None:
    root = ET.fromstring(junit_xml(summary(), "replyhi"))
    [suite] = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped",
                                      "time", "timestamp")} == {
        "name": "replyhi on debian-12", "tests": "5", "failures": "2", "errors": "0",
        "skipped": "1", "time": "7.250", "timestamp": "2026-12-01T05:00:00"}
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "step 01: deploy replyhi", "step 02: say hello", "step 03: stop ftrace",
        "expect: server calls [server]", "expect: client calls [client]"]
    assert {c.get("classname") for c in cases} == {"replyhi on debian-12"}
    assert [[child.tag for child in c] for c in cases] == [
        [], ["failure"], ["skipped"], [], ["failure"]]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "client: exit status 1, expected 0: refused"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["client.kernel"] == "6.1.0-27-amd64"
    assert properties["lab"] == "pair-0a0b0c"
    assert properties["accelerator"] == "kvm"


def test_the_step_a_run_was_interrupted_in_is_an_error() -> None:
    interrupted = summary()
    interrupted.steps[1].status = "interrupted"
    interrupted.expectations = []
    [suite] = ET.fromstring(junit_xml(interrupted, "replyhi")).findall("testsuite")
    assert (suite.get("errors"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "1")


def test_an_interruption_between_steps_is_an_error_of_the_run() -> None:
    interrupted = summary()
    interrupted.interrupted = True
    interrupted.steps = [StepResult(0, "deploy replyhi", 12, "deploy", ["server"])]
    interrupted.expectations = []
    assert interrupted.failures == ["interrupted before its first step"]
    [suite] = ET.fromstring(junit_xml(interrupted, "replyhi")).findall("testsuite")
    assert suite.get("errors") == "1"
    [error] = suite.iter("error")
    assert error.get("message") == "interrupted before its first step"


def test_control_characters_are_shown_not_written() -> None:
    """XML forbids them; a command's output may hold them (a colour code)."""
    coloured = summary()
    coloured.steps[1].results[0].error = "exit status 1, expected 0: \x1b[31mrefused\x00"
    [suite] = ET.fromstring(junit_xml(coloured, "replyhi")).findall("testsuite")
    [failure, _] = suite.iter("failure")
    assert failure.get("message") == "client: exit status 1, expected 0: \\x1b[31mrefused\\x00"


def test_a_node_without_round_trips_is_a_warning_of_the_run() -> None:
    unclocked = summary()
    unclocked.unclocked = {"server": "the guest stopped"}
    line = ("no clock round trips with server (its clock is aligned by its traffic alone): "
            "the guest stopped")
    assert unclocked.warnings == [line]
    [suite] = ET.fromstring(junit_xml(unclocked, "replyhi")).findall("testsuite")
    err = suite.find("system-err")
    assert err is not None and err.text == line + "\n"
