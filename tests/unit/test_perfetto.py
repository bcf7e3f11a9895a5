"""trace.json: Chrome Trace Event format, as Perfetto reads it, from real captures."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from lab.correlate.correlation import correlate
from lab.export.perfetto import chrome_trace
from lab.export.report_data import report_data
from lab.export.timeline import timeline
from tests.unit.test_correlate_pairing import ftrace_run
from tests.unit.test_correlation import misaligned_star


@pytest.fixture(params=["linux-5.10", "linux-6.1"])
def trace(request: pytest.FixtureRequest) -> tuple[dict[str, Any], int]:
    result = correlate(ftrace_run(request.param, "replyhi"), reference="client")
    data = json.loads(json.dumps(chrome_trace(result)))  # what a file holds
    return data, sum(len(flow.arrows) for flow in result.flows)


def by_phase(data: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    return [e for e in data["traceEvents"] if e["ph"] == phase]


def test_one_process_per_node_named_with_its_kernel(trace: tuple[dict[str, Any], int]) -> None:
    data, _ = trace
    names = {e["pid"]: e["args"]["name"] for e in by_phase(data, "M")
             if e["name"] == "process_name"}
    assert sorted(n.split()[0] for n in names.values()) == ["client", "server"]
    assert names[1].startswith("client (linux-")  # the reference first
    threads = {e["args"]["name"] for e in by_phase(data, "M") if e["name"] == "thread_name"}
    assert any(t.startswith("hello[") for t in threads)
    assert any(t.startswith("replyhi[") for t in threads)


def test_calls_nest_within_their_callers_on_each_thread(
        trace: tuple[dict[str, Any], int]) -> None:
    data, _ = trace
    slices = by_phase(data, "X")
    names = {s["name"] for s in slices}
    assert {"connect", "__sys_connect", "tcp_v4_connect", "accept", "__sys_accept4",
            "sendto", "tcp_sendmsg", "recvfrom", "tcp_recvmsg"} <= names
    threads: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for s in slices:
        assert s["ts"] >= 0 and s["dur"] >= 0
        threads[(s["pid"], s["tid"])].append(s)
    for calls in threads.values():  # any two slices of a thread nest or are disjoint
        for a in calls:
            for b in calls:
                a_end, b_end = a["ts"] + a["dur"], b["ts"] + b["dur"]
                assert (a_end <= b["ts"] or b_end <= a["ts"]
                        or (a["ts"] <= b["ts"] and b_end <= a_end)
                        or (b["ts"] <= a["ts"] and a_end <= b_end)), (a, b)
    connect = next(s for s in slices if s["name"] == "connect")
    inner = next(s for s in slices if s["name"] == "tcp_v4_connect")
    assert connect["ts"] <= inner["ts"] <= inner["ts"] + inner["dur"] <= connect["ts"] + connect[
        "dur"]


def test_each_arrow_is_a_flow_forward_in_time(trace: tuple[dict[str, Any], int]) -> None:
    data, arrows = trace
    starts = {e["id"]: e for e in by_phase(data, "s")}
    finishes = {e["id"]: e for e in by_phase(data, "f")}
    # connect → accept, its ACK, hello, hi, two FINs and the ACK of each
    assert len(starts) == len(finishes) == arrows == 8
    for flow_id, start in starts.items():
        finish = finishes[flow_id]
        assert start["pid"] != finish["pid"] and start["ts"] <= finish["ts"]
        assert finish["bp"] == "e"
    assert sorted(e["cat"] for e in starts.values()) == [
        "flow.close", "flow.close", "flow.close", "flow.close", "flow.data", "flow.data",
        "flow.handshake", "flow.handshake"]


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_softirq_work_has_a_track_of_its_own_not_the_interrupted_task_s(kernel: str) -> None:
    """A packet handled in a softirq under hello's thread is not hello's doing: it would
    look called by hello's recvfrom(). Arrows to and from it end on its track."""
    result = correlate(ftrace_run(kernel, "handshake"), reference="client")
    data = json.loads(json.dumps(chrome_trace(result)))
    softirq = {(e["pid"], e["tid"]) for e in by_phase(data, "M")
               if e["name"] == "thread_name" and e["args"]["name"] == "softirq"}
    assert len(softirq) == 2  # one per node
    on_it = [e for e in by_phase(data, "i") + by_phase(data, "X")
             if (e["pid"], e["tid"]) in softirq]
    assert {"tcp_v4_do_rcv", "tcp_rcv_state_process"} <= {e["name"] for e in on_it}
    assert all(e["args"]["interrupted"].endswith("]") for e in on_it)
    # Every event of softirq context (here all instants: state changes, functions
    # probed at entry); the same functions run by a task itself stay on its track.
    assert len(on_it) == sum(e.irq == "softirq" for e in result.events)
    # The SYN-ACK leaves from the server's softirq track, reaches the client's.
    [synack] = [e for e in by_phase(data, "s") if e["name"] == "handshake SYN-ACK"]
    [arrival] = [e for e in by_phase(data, "f") if e["id"] == synack["id"]]
    assert (synack["pid"], synack["tid"]) in softirq and (arrival["pid"], arrival["tid"]) in softirq


@pytest.mark.parametrize("run", ["replyhi", "handshake"])
def test_every_flow_end_lies_in_a_slice_of_its_track(run: str) -> None:
    """Perfetto draws a flow only between slices open at its ends' times on their
    tracks (an instant is not one): arrows from state changes and tcp_fin included."""
    result = correlate(ftrace_run("linux-6.1", run), reference="client")
    data = json.loads(json.dumps(chrome_trace(result)))
    slices = by_phase(data, "X")
    flows = by_phase(data, "s") + by_phase(data, "f")
    assert len(flows) == 2 * sum(len(f.arrows) for f in result.flows) > 0
    for end in flows:
        assert any(s["pid"] == end["pid"] and s["tid"] == end["tid"]
                   and s["ts"] <= end["ts"] < s["ts"] + s["dur"] for s in slices), end


@pytest.mark.parametrize("kernel", ["linux-5.10", "linux-6.1"])
def test_every_report_names_the_sock_accept_returned(kernel: str) -> None:
    result = correlate(ftrace_run(kernel, "replyhi"), reference="client")
    timeline_text = timeline(result)
    (html_accept,) = [s["ret"] for c in report_data(result, title="t")["connections"]
                      for s in c["slices"] if s["name"] == "inet_csk_accept"]
    (trace_accept,) = [e["args"]["ret"] for e in chrome_trace(result)["traceEvents"]
                       if e["ph"] == "X" and e["name"] == "inet_csk_accept"]
    assert isinstance(html_accept, str) and html_accept.startswith("sock ffff")
    assert trace_accept == html_accept
    assert f"← inet_csk_accept = {html_accept}" in timeline_text


def test_an_inversion_is_drawn_as_it_is_and_named() -> None:
    """Received before sent even once aligned: the flow goes back in time, as the
    report's count says, not moved forward to look right."""
    result = misaligned_star()
    assert result.inversions
    data = json.loads(json.dumps(chrome_trace(result)))
    starts = {e["id"]: e for e in by_phase(data, "s")}
    backwards = [(starts[f["id"]], f) for f in by_phase(data, "f")
                 if f["ts"] < starts[f["id"]]["ts"]]
    assert len(backwards) == len(result.inversions)
    assert all(s["name"].endswith(" (INVERTED)") for s, _ in backwards)
    named = [e for e in by_phase(data, "s") if e["name"].endswith(" (INVERTED)")]
    assert len(named) == len(result.inversions)
