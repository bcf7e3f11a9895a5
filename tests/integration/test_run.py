"""`lab run`: the shipped playbooks on real guests of both kernels, and their run directories."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.events import Kind, read_events
from lab.text import count
from tests.browser import drawn_page
from tests.integration.vmlab import PAIR, ROOT, lab, leftovers

pytestmark = pytest.mark.vm
PLAYBOOKS = ["replyhi", "replyhi6", "udp", "concurrent", "bulk", "strace", "handshake"]


def run_dir_of(stdout: str) -> Path:
    return ROOT / stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Run:
    result: subprocess.CompletedProcess[str]
    path: Path

    def json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())


class ShippedRuns:
    """Each shipped playbook run once on the module's lab, when a test first needs it."""

    def __init__(self, lab_name: str, base: Path) -> None:
        self.lab_name, self.base = lab_name, base
        self.done: dict[str, Run] = {}

    def __getitem__(self, playbook: str) -> Run:
        if playbook not in self.done:
            result = lab("run", "--lab", self.lab_name, f"playbooks/{playbook}.yaml",
                         "--runs", str(self.base), check=False)
            self.done[playbook] = Run(result, run_dir_of(result.stdout))
        return self.done[playbook]


@pytest.fixture(scope="module")
def runs(pair: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> ShippedRuns:
    return ShippedRuns(pair[0], tmp_path_factory.mktemp("runs"))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_shipped_playbooks_pass(runs: ShippedRuns, playbook: str) -> None:
    run = runs[playbook]
    assert run.result.returncode == 0, run.result.stderr
    run_dir = run.path
    summary = run.json("summary.json")
    assert summary["ok"] and summary["failures"] == []
    # Nothing is lost, but for the odd probe hit the kernel could not record (tcp_fin in
    # a softirq inside another probe's handler, a return probe out of instances),
    # which it counts and the summary names: never silently.
    missed = {t["node"]: t["missed"] for t in summary["tracers"]}
    assert {t["node"]: t["lost"] - sum(t["missed"].values())
            for t in summary["tracers"]} == {"client": 0, "server": 0}
    assert len(summary["warnings"]) == sum(1 for m in missed.values() if m), missed
    assert all("the kernel could not record" in w for w in summary["warnings"])
    assert summary["expectations"] and all(e["ok"] for e in summary["expectations"])
    raws = [t["raw"] for t in summary["tracers"]]
    assert {t["node"] for t in summary["tracers"]} == {"client", "server"}
    for item in ("topology.json", "playbook.json", "events.jsonl", "consoles/server.log", *raws):
        assert (run_dir / item).exists(), item
    counts = summary["event_counts"]
    assert counts["client"]["syscall_entry"] > 3 and counts["server"]["syscall_entry"] > 3
    # Both ends of every connection found each other.
    expected = {"concurrent": 50, "udp": 1}.get(playbook, 1)
    correlation = summary["correlation"]
    assert (correlation["paired"], correlation["unpaired"]) == (expected, 0)
    # Every socket event found its connection. Over TCP (IPv4 and IPv6) the messages
    # both ways bound the clocks; datagrams never do (they may be lost), so a UDP run's
    # clocks are bounded through the controller's round trips to each guest.
    assert "socket whose 4-tuple is not known yet" not in correlation["unattributed"]
    clock = correlation["clocks"]["server"]
    assert "no-data" not in clock, clock
    assert ("via client → (host) → server" in clock) == (playbook == "udp"), clock
    latency = correlation["latency_ns"]["send_to_receive"]
    assert latency is not None
    if playbook != "udp":  # no receive before its send: within the clock bounds only, for UDP
        assert latency["min"] >= 0, latency
    for item in ("connections.json", "timeline.txt", "trace.json"):
        assert (run_dir / item).exists(), item
    timeline = (run_dir / "timeline.txt").read_text()
    assert " client " in timeline and " server " in timeline
    assert set(correlation["clocks"]) == {"server"}


def test_replyhi_is_one_connection_in_causal_order_with_bounded_clocks(runs: ShippedRuns) -> None:
    run = runs["replyhi"]
    connections = run.json("connections.json")
    assert (connections["paired"], connections["unpaired"], connections["inversions"]) == (1, 0, 0)
    clock = connections["clocks"]["server"]
    # Exact when either side's tcp_fin hit was recorded (see test_correlation.py).
    missed = [t["node"] for t in run.json("summary.json")["tracers"] if t["missed"].get("tcp_fin")]
    assert clock["quality"] == "bounded" or len(missed) == 2, (clock["explain"], missed)
    assert clock["offset_min_ns"] <= clock["offset_ns"] <= clock["offset_max_ns"]
    # The bounds are said: with a drift measured, or on the assumption of none.
    assert re.search(r"(bounds: offset|, within) \[-?[\d.]+ [mµn]?s, -?[\d.]+ [mµn]?s\]",
                     clock["explain"]), clock["explain"]
    (connection,) = connections["connections"]
    assert [(t["from"], t["bytes"], len(t["receives"])) for t in connection["transfers"]] == [
        ("client", 5, 1), ("server", 2, 1)]
    latency = connection["latency_ns"]
    assert latency["connect_to_accept"] > 0 and min(latency["send_to_receive"]) > 0
    # The classic lab's functions of both sides, in causal order on one clock.
    lines = (run.path / "timeline.txt").read_text().splitlines()

    def at(node: str, call: str) -> int:
        return next(i for i, line in enumerate(lines)
                    if re.search(rf"\s{node}\s", line) and call in line)

    # Each side in the classic order...
    client = [at("client", c) for c in ("→ __sys_socket", "→ __sys_connect", "→ tcp_v4_connect",
                                         "→ __sys_sendto", "→ tcp_sendmsg", "← __sys_recvfrom")]
    server = [at("server", c) for c in ("→ __sys_listen", "← inet_csk_accept",
                                         "← __sys_accept4", "← __sys_recvfrom = 5",
                                         "→ __sys_sendto")]
    assert client == sorted(client) and server == sorted(server), (client, server)
    # ... and every effect after its cause across the two.
    for cause, effect in [(("client", "→ __sys_connect"), ("server", "← __sys_accept4")),
                          (("client", "→ tcp_v4_connect"), ("server", "← inet_csk_accept")),
                          (("client", "→ __sys_sendto"), ("server", "← __sys_recvfrom = 5")),
                          (("client", "→ tcp_sendmsg"), ("server", "← tcp_recvmsg")),
                          (("server", "→ __sys_sendto"), ("client", "← __sys_recvfrom = 2"))]:
        assert at(*cause) < at(*effect), (cause, effect)


def test_report_html_of_a_real_run_is_drawn_in_chromium(runs: ShippedRuns) -> None:
    run = runs["replyhi"]
    # The screenshot stays in the run directory, beside the page it shows.
    dom = drawn_page(run.path / "report.html", run.path / "report.png")
    [diagram] = dom.select("sequence", tag="svg")
    assert [e.attrs["data-node"] for e in diagram.select("lifeline")] == ["client", "server"]
    kinds = sorted(a.attrs["data-kind"] for a in diagram.select("arrow"))
    # Both FINs and the ACK of each. The second FIN's arrival, and so when the ACK of it
    # left, is seen only by tcp_fin on the end that closed first (in FIN_WAIT2 the
    # kernel's state change does not tell a FIN from a close()): not if that hit was
    # missed, which the summary counts. When the two ends closed at once (each went
    # through CLOSING), both FINs and both ACKs too.
    (connection,) = run.json("connections.json")["connections"]
    states = {end["node"]: {m["event"] for m in end["lifecycle"]} for end in connection["ends"]}
    simultaneous = all("TCP_CLOSING" in seen for seen in states.values())
    first = next((node for node, seen in states.items() if "TCP_FIN_WAIT2" in seen), None)
    missed = {t["node"]: t["missed"].get("tcp_fin", 0)
              for t in run.json("summary.json")["tracers"]}
    closes = 4 if simultaneous else 4 - 2 * min(missed.get(first or "", 0), 1)
    assert kinds == ["close"] * closes + ["data", "data", "handshake", "handshake"]
    names = {(a.attrs["data-node"], a.attrs["data-name"]) for a in diagram.select("activation")}
    assert {("client", "connect"), ("client", "tcp_v4_connect"), ("server", "__sys_accept4"),
            ("server", "inet_csk_accept")} <= names
    assert (run.path / "report.png").stat().st_size > 10_000


def test_the_tcp_receive_path_is_traced_in_softirq_context(runs: ShippedRuns) -> None:
    """Functions added that run in softirqs, under whatever task a packet interrupted, are
    filtered by their sock's port: both kernels' receive paths are in the trace, marked."""
    events = list(read_events(runs["handshake"].path / "events.jsonl"))
    receive_path = {"tcp_v4_do_rcv", "tcp_rcv_state_process", "tcp_rcv_established"}
    for node in ("client", "server"):  # in a softirq, or as a task releases its socket
        assert {e.name for e in events if e.node == node} & receive_path, node
    softirq = {e.name for e in events if e.irq == "softirq"}
    assert softirq & receive_path, softirq
    timeline = (runs["handshake"].path / "timeline.txt").read_text()
    assert "  [softirq]" in timeline
    # The SYN-ACK is sent on the request sock, which has the connection's 4-tuple: it
    # and the SYN bound the clocks, and the timeline shows neither arriving early.
    synacks = [e for e in events if e.name == "tcp_v4_send_synack"]
    assert synacks and all(e.sock is not None and e.sock.dport for e in synacks)
    assert runs["handshake"].json("connections.json")["inversions"] == 0


def test_concurrent_every_send_is_matched_to_its_receives(runs: ShippedRuns) -> None:
    connections = runs["concurrent"].json("connections.json")
    assert (connections["paired"], connections["unpaired"], connections["inversions"]) == (
        50, 0, 0)
    for connection in connections["connections"]:
        client, server = connection["ends"]
        assert client["bytes_sent"] == server["bytes_received"] > 0
        assert server["bytes_sent"] == client["bytes_received"] > 0
        transfers = connection["transfers"]
        assert transfers and all(t["receives"] for t in transfers), connection["id"]
        for t in transfers:  # no receive returns before its send started, once aligned
            assert all(r["end_ns"] >= t["send"]["start_ns"] for r in t["receives"])
    stats = connections["latency_ns"]
    assert stats["connect_to_accept"]["count"] == 50
    assert stats["send_to_receive"]["count"] >= 100


def test_replyhi_events_carry_the_connection_on_both_sides(pair: tuple[str, str],
                                                           tmp_path: Path) -> None:
    name, image = pair
    result = lab("run", "--lab", name, "playbooks/replyhi.yaml", "--runs", str(tmp_path))
    events = list(read_events(run_dir_of(result.stdout) / "events.jsonl"))
    assert {e.kernel[:4] for e in events} == {"5.10" if image == "debian-11" else "6.1."}
    accepted = next(e for e in events if e.node == "server" and e.name == "__sys_accept4"
                    and e.kind == Kind.FUNC_RETURN)
    assert accepted.sock is not None
    client_port = accepted.sock.dport
    for e in events:
        if e.sock is not None and e.sock.sport in (client_port,) and e.node == "client":
            assert (e.sock.daddr, e.sock.dport) == ("10.0.1.10", 7777)
    sides = {(e.node, e.name) for e in events if e.kind == Kind.FUNC_ENTRY}
    assert {("server", "inet_csk_accept"), ("client", "tcp_v4_connect"),
            ("server", "tcp_recvmsg"), ("client", "tcp_sendmsg")} <= sides


def test_a_failed_expectation_fails_the_run_and_says_why(pair: tuple[str, str],
                                                         tmp_path: Path) -> None:
    name, _ = pair
    book = (ROOT / "playbooks" / "replyhi.yaml").read_text().replace(
        "count: {__sys_accept4: \"{{ count }}\"}", "count: {__sys_accept4: 2}")
    assert "__sys_accept4: 2" in book
    path = ROOT / "playbooks" / f".test-failing-{name}.yaml"
    path.write_text(book)
    try:
        result = lab("run", "--lab", name, str(path), "--runs", str(tmp_path), check=False)
    finally:
        path.unlink()
    assert result.returncode == 1
    # Why, where the expectations are listed; and that it failed, as the run's last word.
    assert result.stderr.count("one accept per connection") == 2
    assert "FAIL expect one accept per connection [server]: " in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: 1 of 3 expectations failed: one accept per connection [server]")
    summary = json.loads((run_dir_of(result.stdout) / "summary.json").read_text())
    assert summary["ok"] is False and len(summary["failures"]) == 1


def test_run_brings_the_lab_up_and_down(tmp_path: Path) -> None:
    result = lab("run", str(PAIR), "playbooks/replyhi.yaml", "--runs", str(tmp_path))
    run_dir = run_dir_of(result.stdout)
    lab_name = json.loads((run_dir / "summary.json").read_text())["lab"]
    assert "lab " + lab_name + " removed" in result.stderr
    assert not leftovers(lab_name)


def test_users_deploy_their_own_c_file_and_script(pair: tuple[str, str],
                                                  tmp_path: Path) -> None:
    name, _ = pair
    (tmp_path / "greet.c").write_text(
        '#include <stdio.h>\nint main(int c, char **v) { printf("greetings %s\\n", '
        'c > 1 ? v[1] : "?"); return 0; }\n')
    script = tmp_path / "where.sh"
    script.write_text("#!/bin/sh\nhostname\n")
    script.chmod(0o755)
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nsteps:\n"
        "  - {nodes: all, deploy: ./greet.c}\n"
        "  - {node: server, deploy: {program: ./where.sh, dest: /usr/local/bin/where}}\n"
        "  - {node: client, run: '/opt/socklab/bin/greet {{ lab.name }}',"
        " expect_stdout: 'greetings {{ lab.name }}'}\n"
        "  - {node: server, run: where, expect_stdout: '^server$'}\n")
    result = lab("run", "--lab", name, str(tmp_path / "mine.yaml"), "--runs",
                 str(tmp_path / "runs"), check=False)
    assert result.returncode == 0, result.stderr


def test_lost_events_are_reported_never_silently_dropped(pair: tuple[str, str],
                                                         tmp_path: Path) -> None:
    name, _ = pair
    book = (ROOT / "playbooks" / "concurrent.yaml").read_text()
    book = book.replace("\nsteps:", "\ntracers:\n  ftrace: {buffer_kb: 64}\n\nsteps:", 1)
    assert "buffer_kb: 64" in book
    path = ROOT / "playbooks" / f".test-small-buffer-{name}.yaml"
    path.write_text(book)
    try:
        result = lab("run", "--lab", name, str(path), "--set", "connections=500",
                     "--runs", str(tmp_path), check=False)
    finally:
        path.unlink()
    summary = json.loads((run_dir_of(result.stdout) / "summary.json").read_text())
    lost = {t["node"]: t["lost"] for t in summary["tracers"]}
    assert sum(lost.values()) > 0, lost
    for node, n in lost.items():
        if n:
            assert f"warning: ftrace on {node}: {count(n, 'event')} lost: " in result.stderr
    assert summary["warnings"]


def test_stop_ends_a_background_command(pair: tuple[str, str], tmp_path: Path) -> None:
    name, _ = pair
    (tmp_path / "stop.yaml").write_text(
        "name: stop\nsteps:\n"
        "  - {node: server, run: 'sleep 300', background: sleeper}\n"
        "  - {sleep: 0.5}\n"
        "  - {stop: sleeper, timeout: 2}\n"
        "  - {node: server, run: \"ps | grep -q '[s]leep 300'\", expect_exit: 1}\n")
    result = lab("run", "--lab", name, str(tmp_path / "stop.yaml"), "--runs",
                 str(tmp_path / "runs"), check=False, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_triangle_routes_through_its_router(tmp_path: Path) -> None:
    """Client and server on two networks: the router forwards, each end routes via it."""
    result = lab("run", "topologies/triangle.yaml", "playbooks/replyhi.yaml",
                 "--runs", str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir_of(result.stdout) / "summary.json").read_text())
    assert (summary["correlation"]["paired"], summary["correlation"]["unpaired"]) == (1, 0)
    connections = json.loads((run_dir_of(result.stdout) / "connections.json").read_text())
    [connection] = connections["connections"]
    # The client on the left network, the server on the right one: no address translated.
    assert connection["id"].startswith("tcp 10.77.1.1:")
    assert connection["id"].endswith(" > 10.77.2.2:7777")


def test_a_udp_server_answers_two_clients_each_in_its_flow(tmp_path: Path) -> None:
    """One unconnected socket, two peers: each datagram in its client's flow, both ways."""
    result = lab("run", "topologies/star.yaml", "playbooks/udp.yaml",
                 "--runs", str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr
    assert "not in any connection" not in result.stderr
    connections = json.loads((run_dir_of(result.stdout) / "connections.json").read_text())
    flows = connections["connections"]
    assert sorted(f["ends"][0]["node"] for f in flows) == ["client", "client2"]
    for flow in flows:
        client = flow["ends"][0]["node"]
        assert [(t["from"], t["bytes"], len(t["receives"])) for t in flow["transfers"]] == [
            (client, 6, 1)] * 3 + [("server", 6, 1)] * 3
    # No TCP between them: all three clocks are aligned through the controller's, within
    # a few milliseconds (round trips over QEMU's user-mode network).
    for node in ("client2", "server"):
        clock = connections["clocks"][node]
        assert clock["quality"] == "bounded" and "(host)" in clock["explain"], clock
        assert clock["offset_max_ns"] - clock["offset_min_ns"] < 20_000_000, clock
