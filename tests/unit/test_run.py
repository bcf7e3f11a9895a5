"""lab run on fake guests: a failure in one step or on one node never costs the run its
traces, events, reports and summary.

Each node is an in-process SSH server (conftest.FakeGuest) running commands with
the host's shell; its tracefs is a FakeTracefs answering the ftrace scripts with
a trace recorded on a real 5.10 guest (tests/fixtures/ftrace).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import FakeTracefs, eventually

from lab.correlate.sync.host import read_round_trips
from lab.errors import LabError
from lab.keys import ensure_lab_keypair
from lab.paths import Paths
from lab.playbook import load_playbook
from lab.run import RunDir, RunSummary, actions, run_playbook
from lab.run import runner as runner_module
from lab.run.round_trips import ROUNDS
from lab.ssh import NodeUnreachable
from lab.ssh.session import NodeSession
from lab.state import LabState, NodeState
from lab.topology import Topology, load_topology

if TYPE_CHECKING:
    from conftest import FakeGuest, FakeGuestFactory

ROOT = Path(__file__).parents[2]
TRACES = ROOT / "tests" / "fixtures" / "ftrace" / "linux-5.10"
LAB = "pair-0a0b0c"
REPORTS = ("events.jsonl", "connections.json", "timeline.txt", "trace.json", "report.html",
           "summary.json", "junit.xml")
TRACED = "name: traced\ntracers:\n  ftrace: {comms: [replyhi, hello]}\nsteps:\n"
ONE_TRACED_STEP = """\
      - {nodes: all, trace: {start: ftrace}}
      - {node: server, run: "true"}
      - {nodes: all, trace: {stop: ftrace}}
    """
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="strace steps build "
                                                                     "the clock reader")


@dataclass
class Lab:
    topology: Topology
    state: LabState
    paths: Paths
    guests: dict[str, FakeGuest]
    tmp: Path

    @property
    def client_tracefs(self) -> FakeTracefs:
        tracefs = self.guests["client"].tracefs
        assert tracefs is not None
        return tracefs

    async def run_traced(self, steps: str) -> tuple[RunSummary, Path]:
        """A run of `steps` (a YAML list) with ftrace following replyhi and hello."""
        return await self.run(TRACED + textwrap.dedent(steps))

    async def run(self, playbook: str) -> tuple[RunSummary, Path]:
        file = self.tmp / "book.yaml"
        file.write_text(textwrap.dedent(playbook))
        book = load_playbook(file, self.topology, lab_name=LAB)
        run_dir = RunDir.create(self.tmp / "runs", LAB)
        summary = await run_playbook(book, self.topology, self.state, self.paths, run_dir)
        return summary, run_dir.path


@pytest.fixture
async def lab(tmp_path: Path, fake_guest_factory: FakeGuestFactory) -> Lab:
    """The pair topology, up: each node a fake guest whose trace is replyhi's."""
    paths = Paths(tmp_path / "home")
    key = ensure_lab_keypair(paths.lab_dir(LAB))
    topology_file = ROOT / "topologies" / "pair.yaml"
    guests, nodes = {}, {}
    for name in ("client", "server"):
        guest = await fake_guest_factory(client_key=key)
        guest.tracefs = FakeTracefs(trace=(TRACES / f"replyhi-{name}.trace").read_bytes(),
                                    stats=(TRACES / f"replyhi-{name}.stats").read_bytes())
        console = tmp_path / f"{name}.console"
        console.write_text(f"{name} is up\n")
        guests[name] = guest
        nodes[name] = NodeState(
            domain=f"sl-{LAB}-{name}", image="debian-11", kernel_release="5.10.0-33-amd64",
            ssh_host="127.0.0.1", ssh_port=guest.port, host_key=guest.host_key_line,
            console_log=str(console), role=name, ready_seconds=4.25)
    state = LabState(name=LAB, topology=str(topology_file), uri="test:///default", accel="tcg",
                     created_at="2026-01-01T00:00:00Z", status="up", nodes=nodes)
    return Lab(load_topology(topology_file), state, paths, guests, tmp_path)


def saved(run_dir: Path) -> dict[str, Any]:
    """summary.json, checked to be there with every other report."""
    for name in REPORTS:
        assert (run_dir / name).is_file(), f"{name} not written"
    assert (run_dir / "consoles" / "server.log").read_text() == "server is up\n"
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


def nodes_with_events(run_dir: Path) -> set[str]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return {json.loads(line)["node"] for line in lines}


@needs_gcc
@pytest.mark.parametrize("end", ["wait", "stop"])
async def test_a_background_whose_trace_is_missing_fails_its_step_not_the_run(
        lab: Lab, end: str) -> None:
    # Something removes the command's trace (a clean-up script): lab validate cannot know.
    trace = "/run/socklab/*/02-server.strace"  # in the run's own directory there
    playbook = f"""\
        name: lost
        tracers:
          ftrace: {{comms: [replyhi, hello]}}
        steps:
          - {{nodes: all, trace: {{start: ftrace}}}}
          - node: server
            run: echo served 1 connection; sleep {30 if end == "stop" else 0}
            background: server
            strace: true
          - node: server
            run: while ! ls {trace}; do sleep 0.02; done; rm {trace}
          - {{{end}: server}}
          - {{node: client, run: echo after}}
          - {{nodes: all, trace: {{stop: ftrace}}}}
        """
    summary, run_dir = await lab.run(playbook)

    assert [s.status for s in summary.steps] == [
        "ok", "ok", "ok", "failed", "skipped", "skipped"]
    assert not summary.ok
    data = saved(run_dir)
    assert data["nodes"] == {node: {"image": "debian-11", "kernel": "5.10.0-33-amd64",
                                    "ready_seconds": 4.25}  # how long it took to boot
                             for node in ("client", "server")}
    assert data["accel"] == "tcg"  # emulated: times are not comparable with KVM runs
    assert data["steps"][3]["nodes"] == ["server"]  # where the handle's command ran
    [failure] = data["failures"]
    name = {"wait": "wait for server", "stop": "stop server"}[end]
    assert failure.startswith(f"step 4 ({name}) failed: server: ")
    assert f"no strace output /run/socklab/{run_dir.name}/02-server.strace" in failure
    # The command's output is kept, and the tracers the skipped step would have
    # stopped were stopped and collected at the end.
    assert (run_dir / "outputs" / "02-server.err").exists()
    assert nodes_with_events(run_dir) == {"client", "server"}
    assert data["event_counts"]["server"]["func_entry"] > 0
    for guest in lab.guests.values():
        assert guest.tracefs is not None and guest.tracefs.done[-2:] == ["read", "cleanup"]


@needs_gcc
async def test_round_trips_to_each_clock_are_timed_before_and_after_the_steps(
        lab: Lab) -> None:
    summary, run_dir = await lab.run("name: idle\nsteps:\n  - {nodes: all, run: sleep 0.2}\n")
    assert summary.ok
    trips = read_round_trips(run_dir)
    assert {node: len(t) for node, t in trips.items()} == {"client": 2 * ROUNDS,
                                                           "server": 2 * ROUNDS}
    for node_trips in trips.values():  # the fake guests' clock is this host's
        assert all(t.sent <= t.guest <= t.received for t in node_trips)
        before, after = node_trips[ROUNDS - 1], node_trips[ROUNDS]
        assert after.sent - before.received >= 200_000_000  # the step came in between


async def test_a_node_whose_tracer_cannot_stop_costs_only_its_own_trace(lab: Lab) -> None:
    # The run fails before its trace stop step: the tracers are stopped at the end,
    # the client's first (started first), and the client's stop fails.
    lab.client_tracefs.fail.add("stop")
    summary, run_dir = await lab.run_traced("""\
          - {node: client, trace: {start: ftrace}}
          - {node: server, trace: {start: ftrace}}
          - {node: client, run: "false"}
          - {nodes: all, trace: {stop: ftrace}}
        """)

    assert [s.status for s in summary.steps] == ["ok", "ok", "failed", "skipped"]
    data = saved(run_dir)
    assert nodes_with_events(run_dir) == {"server"}
    assert set(data["event_counts"]) == {"server"}
    tracers = {t["node"]: t for t in data["tracers"]}
    assert tracers["server"]["entries"] == 57  # from the stop script's statistics
    assert tracers["server"]["error"] is None
    assert "exited with status 1: sh: write error: No such device" in tracers["client"]["error"]
    [warning] = data["warnings"]
    assert warning.startswith("ftrace on client: not collected: command 'sh -s' exited with "
                              "status 1")
    assert data["failures"] == ["step 3 (run on client: false) failed: client: exit status 1, "
                                "expected 0"]


def raise_in_step(monkeypatch: pytest.MonkeyPatch, index: int, exc: Exception) -> None:
    """Step `index` raises `exc` as it runs; the others run as they would."""
    real = runner_module.run_step

    async def run_step(ctx: Any, step: Any) -> Any:
        if step.index == index:
            raise exc
        return await real(ctx, step)
    monkeypatch.setattr(runner_module, "run_step", run_step)


async def test_a_step_that_raises_still_leaves_a_complete_run(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # The last line of defence: whatever a step lets escape becomes its failure.
    raise_in_step(monkeypatch, 1, LabError("node server: something nobody foresaw"))

    summary, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}}
          - {node: server, run: "true"}
          - {nodes: all, trace: {stop: ftrace}}
        """)

    assert [s.status for s in summary.steps] == ["ok", "failed", "skipped"]
    data = saved(run_dir)
    assert data["failures"] == ["step 2 (run on server: true) failed: node server: something "
                                "nobody foresaw"]
    assert nodes_with_events(run_dir) == {"client", "server"}


async def test_an_interrupted_run_keeps_its_traces_events_for_lab_report(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of a run: the traces collected as it winds down are parsed
    into events.jsonl, which `lab report` correlates when asked."""
    raise_in_step(monkeypatch, 1, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await lab.run_traced(ONE_TRACED_STEP)
    [run_dir] = (lab.tmp / "runs").iterdir()
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["interrupted"] and [s["status"] for s in data["steps"]] == [
        "ok", "interrupted", "skipped"]
    assert nodes_with_events(run_dir) == {"client", "server"}
    assert data["event_counts"]["server"]["syscall_exit"] > 0
    assert not (run_dir / "connections.json").exists()  # not correlated: not asked for


async def test_a_run_on_a_lab_kept_up_leaves_no_file_of_its_own_on_the_guests(
        lab: Lab) -> None:
    """Its background commands' process ids are in a directory of its own, removed as
    it ends: a later run never signals an id the guest has since given to another."""
    summary, _ = await lab.run("""\
        name: background
        steps:
          - {node: server, run: "sleep 30", background: idle}
          - {stop: idle}
        """)
    assert summary.ok
    for guest in lab.guests.values():
        assert not any(Path(guest.local_path("/run/socklab")).glob("*/*"))


async def test_an_interrupt_as_the_tracers_are_collected_keeps_what_they_collected(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as the run winds down, reading back the trace buffers (seconds under
    emulation): the collection runs to its end, and its events are kept."""
    collecting = asyncio.Event()
    stop = actions.stop_ftrace

    async def slow_stop(*args: Any, **kwargs: Any) -> Any:
        collecting.set()
        await asyncio.sleep(0.3)
        return await stop(*args, **kwargs)
    monkeypatch.setattr(actions, "stop_ftrace", slow_stop)
    run = asyncio.create_task(lab.run_traced("""\
      - {nodes: all, trace: {start: ftrace}}
      - {node: server, run: "true"}
    """))  # no step stops ftrace: winding down does
    await collecting.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    [run_dir] = (lab.tmp / "runs").iterdir()
    assert nodes_with_events(run_dir) == {"client", "server"}


async def test_a_run_whose_traces_cannot_be_analysed_still_leaves_its_summary(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug in correlation")
    monkeypatch.setattr(runner_module, "correlate", broken)
    with pytest.raises(ValueError, match="a bug in correlation"):
        await lab.run_traced(ONE_TRACED_STEP)
    [run_dir] = (lab.tmp / "runs").iterdir()
    data = json.loads((run_dir / "summary.json").read_text())
    assert [s["status"] for s in data["steps"]] == ["ok", "ok", "ok"]  # the steps ran
    assert data["failures"] == ["the traces could not be analysed: a bug in correlation"]
    assert not data["ok"]
    junit = (run_dir / "junit.xml").read_text()
    assert 'name="run"' in junit and "the traces could not be analysed" in junit


async def test_a_bug_in_a_step_still_leaves_the_summary(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    raise_in_step(monkeypatch, 1, ZeroDivisionError("a bug in a step"))
    with pytest.raises(ZeroDivisionError):
        await lab.run("name: n\nsteps:\n  - {node: server, run: 'true'}\n"
                      "  - {node: server, run: 'true'}\n")
    [run_dir] = (lab.tmp / "runs").iterdir()
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["steps"][0]["status"] == "ok" and len(data["steps"]) == 2
    assert data["failures"][0] == "the run failed: a bug in a step"
    assert (run_dir / "consoles" / "server.log").exists()


async def test_a_node_unreachable_at_the_start_leaves_a_summary_of_steps_not_run(
        lab: Lab) -> None:
    await lab.guests["server"].stop()
    with pytest.raises(NodeUnreachable):
        await lab.run("name: n\nsteps:\n  - {node: server, run: 'true'}\n")
    [run_dir] = (lab.tmp / "runs").iterdir()
    data = json.loads((run_dir / "summary.json").read_text())
    assert [s["status"] for s in data["steps"]] == ["skipped"]
    assert data["failures"][0].startswith("node server: ")
    assert 'name="lab up"' in (run_dir / "junit.xml").read_text()


async def test_a_tracer_whose_stop_step_failed_is_not_stopped_again(lab: Lab) -> None:
    client = lab.client_tracefs
    client.fail.add("stop")
    _, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}}
          - {nodes: all, trace: {stop: ftrace}}
        """)

    data = saved(run_dir)
    why = "command 'sh -s' exited with status 1: sh: write error: No such device"
    assert data["failures"] == [f"step 2 (stop ftrace on client, server) failed: client: {why}"]
    assert data["warnings"] == [f"ftrace on client: not collected: {why}"]
    assert client.done == ["start", "stop"]
    assert nodes_with_events(run_dir) == {"server"}


async def test_an_interrupted_trace_start_is_tidied_up_on_a_lab_that_stays_up(
        lab: Lab) -> None:
    """Ctrl-C while ftrace starts (a minute under emulation): no probe is left behind."""
    client = lab.client_tracefs
    client.hang.add("start")
    run = asyncio.create_task(lab.run_traced("- {nodes: all, trace: {start: ftrace}}\n"))
    assert await eventually(lambda: client.done == ["start"])
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert client.done == ["start", "cleanup"]


@pytest.mark.parametrize("slow", ["start", "stop"])
async def test_a_trace_step_past_its_timeout_fails_on_its_node_only(
        lab: Lab, slow: str) -> None:
    client = lab.client_tracefs
    client.hang.add(slow)
    summary, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}, timeout: 0.5}
          - {nodes: all, trace: {stop: ftrace}, timeout: 0.5}
        """)

    step = 1 if slow == "start" else 2
    assert summary.steps[step - 1].status == "failed"
    assert summary.steps[step - 1].seconds < 5
    data = saved(run_dir)
    assert data["failures"] == [
        f"step {step} ({slow} ftrace on client, server) failed: client: ftrace did not {slow} "
        "within 0.5 s"]
    # A start cut short is tidied up at once; a stop past its time is not tried again.
    assert client.done == (["start", "cleanup"] if slow == "start" else ["start", "stop"])
    if slow == "stop":  # what is not collected is said, and not tried again at the end
        assert data["warnings"] == ["ftrace on client: not collected: ftrace did not stop "
                                    "within 0.5 s"]
    assert nodes_with_events(run_dir) == {"server"}


async def test_a_tracer_that_fails_after_its_trace_was_saved_is_reported(
        lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    client = lab.client_tracefs
    client.fail.add("cleanup")
    _, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}}
        """)

    data = saved(run_dir)
    assert nodes_with_events(run_dir) == {"client", "server"}
    assert data["warnings"] == []
    # What the kernel recorded and lost still counts.
    client_stats = next(t for t in data["tracers"] if t["node"] == "client")
    assert client_stats["entries"] > 0
    assert [r.getMessage().split("] ", 1)[1] for r in caplog.records] == [
        "ftrace on client: trace saved, but removing its probes failed: command 'sh -s' "
        "exited with status 1: sh: write error: No such device (its trace was collected)"]


async def test_a_host_error_on_one_node_costs_only_that_nodes_trace(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    write_bytes = Path.write_bytes

    def full_disk_for_the_client(path: Path, data: Any) -> int:
        if "ftrace-client.txt" in path.name:  # as a full disk does: half a file, then no
            write_bytes(path, data[:100])
            raise OSError(28, "No space left on device", str(path))
        return write_bytes(path, data)
    monkeypatch.setattr(Path, "write_bytes", full_disk_for_the_client)
    _, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}}
        """)

    data = saved(run_dir)
    assert nodes_with_events(run_dir) == {"server"}  # no half trace taken for a whole one
    assert not (run_dir / "raw" / "ftrace-client.txt").exists()
    assert data["warnings"] == [f"ftrace on client: not collected: {run_dir}/raw/"
                                "ftrace-client.txt: No space left on device"]


async def test_a_host_error_in_a_step_fails_the_step_and_the_run_completes(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    async def full_disk(*args: Any, **kwargs: Any) -> Path:
        raise OSError(28, "No space left on device", "/var/lib/socklab/programs/replyhi")
    monkeypatch.setattr("lab.run.actions.build_program", full_disk)
    summary, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}}
          - {node: server, deploy: replyhi}
        """)

    assert summary.steps[1].failures == [
        "server: /var/lib/socklab/programs/replyhi: No space left on device"]
    assert nodes_with_events(run_dir) == {"client", "server"}  # traces still collected


async def test_stopping_a_command_whose_session_broke_says_so(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    run = NodeSession.run

    async def connection_lost(self: NodeSession, command: Any, **kwargs: Any) -> Any:
        if "sleep 30" in str(command):
            raise NodeUnreachable(self.node, "connection lost")
        return await run(self, command, **kwargs)
    monkeypatch.setattr(NodeSession, "run", connection_lost)
    summary, _ = await lab.run("""\
        name: broken-background
        steps:
          - {node: server, run: "sleep 30", background: srv}
          - {stop: srv}
        """)

    assert summary.steps[1].status == "failed"
    assert summary.steps[1].failures == ["server: srv had already failed: connection lost"]


async def test_a_guest_that_dies_during_a_step_is_a_lost_node_not_a_failed_test(
        lab: Lab) -> None:
    async def die_soon() -> None:
        await asyncio.sleep(0.5)
        for conn in lab.guests["server"].connections:
            conn.abort()  # what the host sees when a guest's QEMU is killed
    dying = asyncio.create_task(die_soon())
    summary, run_dir = await lab.run("""\
        name: dies
        steps:
          - {node: server, run: "sleep 30"}
        """)
    await dying

    assert summary.lost == ["server"] and not summary.ok
    assert summary.failures[0] == ("lost node server during the run: its SSH connection "
                                   "went away (did the guest die? see consoles/server.log)")
    junit = (run_dir / "junit.xml").read_text()
    assert '<testcase classname="dies on debian-11" name="node server"' in junit
    # The step it failed in is an error too: no test failed, a node went away.
    assert 'errors="2"' in junit and 'failures="0"' in junit
    # The node that lived is not lost; the lost one is said once, as lost.
    assert "client" not in summary.lost
    assert not any("server" in w for w in summary.warnings), summary.warnings


async def test_a_host_error_escaping_a_step_fails_it_and_the_run_completes(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    async def full_disk(ctx: Any, step: Any) -> Any:
        raise OSError(28, "No space left on device", "/runs/outputs/01-server.out")
    monkeypatch.setattr(runner_module, "run_step", full_disk)
    summary, run_dir = await lab.run("""\
        name: escaping
        steps:
          - {node: server, run: "true"}
        """)

    assert summary.steps[0].failures == ["/runs/outputs/01-server.out: No space left on device"]
    assert (run_dir / "summary.json").exists() and (run_dir / "report.html").exists()


async def test_a_port_whose_command_failed_first_fails_at_once_with_its_error(lab: Lab) -> None:
    summary, run_dir = await lab.run("""\
        name: dies
        steps:
          - node: server
            run: echo cannot bind 10.0.1.99 >&2; exit 3
            background: server
          - {node: server, wait_port: 9300, timeout: 30}
        """)
    assert [s.status for s in summary.steps] == ["ok", "failed"]
    assert summary.steps[1].seconds < 5  # not the 30 s of its timeout
    [failure] = saved(run_dir)["failures"]
    assert failure.endswith("server: nothing on tcp port 9300: server failed first "
                            "(exit status 3): cannot bind 10.0.1.99")
    assert (run_dir / "outputs" / "01-server.err").read_text() == "cannot bind 10.0.1.99\n"


async def test_what_a_background_command_printed_is_kept_if_nothing_waited_for_it(
        lab: Lab) -> None:
    _, run_dir = await lab.run("""\
        name: unwaited
        steps:
          - {node: server, run: echo bye, background: server}
          - {node: client, run: sleep 0.3}
        """)
    assert (run_dir / "outputs" / "01-server.out").read_text() == "bye\n"


async def test_the_error_line_shows_control_characters_without_obeying_them(
        lab: Lab) -> None:
    summary, _ = await lab.run("name: ansi\nsteps:\n  - {name: paint, node: client, run: "
                               "\"printf '\\\\033[2Kerr\\\\n' >&2; exit 4\"}\n")
    assert summary.failures == [
        "step 1 (paint) failed: client: exit status 4, expected 0: \\x1b[2Kerr"]


@pytest.mark.parametrize(("step", "failure"), [
    ('run: "echo hello; echo hi", expect_stdout: "^bye$"',
     "stdout does not match '^bye$' (its last line: 'hi')"),
    ('run: "true", expect_stderr: "warning"',
     "stderr does not match 'warning' (it printed nothing)"),
])
async def test_an_output_that_does_not_match_is_quoted_in_the_failure(
        lab: Lab, step: str, failure: str) -> None:
    summary, _ = await lab.run(f"name: talk\nsteps:\n  - {{name: greet, node: client, {step}}}\n")
    assert summary.failures == [f"step 1 (greet) failed: client: {failure}"]


async def test_after_a_failed_step_the_expectations_are_not_checked(lab: Lab) -> None:
    """A trace cut short would pass an absent: for no reason of its own."""
    summary, run_dir = await lab.run_traced("""\
          - {nodes: all, trace: {start: ftrace}}
          - {name: fail, node: client, run: "exit 1"}
          - {nodes: all, trace: {stop: ftrace}}
        expect:
          - {name: no connect, node: client, absent: [__sys_connect]}
        """)
    [expectation] = summary.expectations
    assert (expectation.ok, expectation.checked) == (False, False)
    assert expectation.detail == ("not checked: step 2 (fail) failed, and the steps after it "
                                  "did not run")
    assert summary.failures == ["step 2 (fail) failed: client: exit status 1, expected 0"]
    assert '<skipped message="not checked: step 2 (fail)' in (run_dir / "junit.xml").read_text()


async def test_a_background_command_that_failed_unwaited_fails_the_run(lab: Lab) -> None:
    """A server that crashed must not pass because no step waited for it; one that
    ended as its step expects is fine."""
    summary, run_dir = await lab.run("""\
        name: crashed
        steps:
          - {name: serve, nodes: all, run: "echo boom >&2; exit 3", background: server}
          - {node: client, run: "exit 4", background: fine, expect_exit: 4}
          - {node: client, run: sleep 0.3}
        """)
    assert not summary.ok
    assert [s.status for s in summary.steps] == ["failed", "ok", "ok"]
    reason = ("exit status 3, expected 0: boom (it ended before the playbook did, and no "
              "step waited for it)")
    assert saved(run_dir)["failures"] == [f"step 1 (serve) failed: client: {reason}",
                                          f"step 1 (serve) failed: server: {reason}"]
    assert (run_dir / "outputs" / "01-server.err").read_text() == "boom\n"


async def test_a_command_that_exits_0_is_not_blamed_for_a_closed_port(lab: Lab) -> None:
    # As one that starts a daemon and returns: the daemon may open the port later.
    summary, _ = await lab.run("""\
        name: daemon
        steps:
          - {node: server, run: "true", background: server}
          - {node: server, wait_port: 9301, timeout: 1}
        """)
    [failure] = summary.steps[1].failures
    assert failure == ("server: nothing on tcp port 9301 after 1 s "
                       "(server exited 0: did what it started fail?)")



async def test_a_command_that_failed_before_the_wait_began_is_blamed(lab: Lab) -> None:
    summary, _ = await lab.run("""\
        name: early
        steps:
          - {node: server, run: "echo no >&2; exit 3", background: server}
          - {node: client, run: sleep 0.3}
          - {node: server, wait_port: 9302, timeout: 3}
        """)
    [failure] = summary.steps[2].failures
    assert failure == "server: nothing on tcp port 9302: server failed first (exit status 3): no"
    assert summary.steps[2].seconds < 2


@needs_gcc
async def test_the_strace_of_a_background_command_nothing_waited_for_is_kept(
        lab: Lab) -> None:
    summary, run_dir = await lab.run("""\
        name: unwaited
        steps:
          - {node: server, run: echo bye, background: server, strace: true}
          - {node: client, run: sleep 0.5}
        """)
    [tracer] = [t for t in summary.tracers if t.tracer == "strace"]
    assert tracer.node == "server" and (run_dir / tracer.raw).is_file()
    lines = (run_dir / tracer.raw).read_text().splitlines()
    assert tracer.entries == len(lines) > 0  # what it wrote, as ftrace's are its buffer's
