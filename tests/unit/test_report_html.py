"""report.html: a self-contained page, and what headless Chromium draws from it."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lab.correlate.correlation import correlate
from lab.correlate.synthetic import synthetic_run
from lab.export.html import render_report
from lab.export.report_data import report_data, run_outcome
from tests import browser
from tests.browser import Element, drawn_page, render_in_chromium
from tests.unit.test_correlate_pairing import ftrace_run

EMBEDDED = re.compile(
    r'<script type="application/json" id="report-data">(.*?)</script>', re.DOTALL)


@pytest.fixture(scope="module")
def replyhi() -> dict[str, Any]:
    return report_data(correlate(ftrace_run("linux-6.1", "replyhi"), reference="client"),
                       "replyhi linux-6.1")


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Any]:
    run = synthetic_run(50, offset_ns=2_000_000, drift_ppm=30)
    return report_data(correlate(run.events, reference="client"), "synthetic 50")


def embedded(page: str) -> Any:
    found = EMBEDDED.findall(page)
    assert len(found) == 1
    return json.loads(found[0])


# ---- the page as served ----

def test_page_is_self_contained(replyhi: dict[str, Any]) -> None:
    page = render_report(replyhi)
    # Nothing is fetched: no URL in src/href, no stylesheet link, no CSS import or url().
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)""", page, re.I)
    assert not re.search(r"<link\b|@import|url\(|<iframe\b|<img\b", page, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.I)


def test_data_round_trips_through_the_page(replyhi: dict[str, Any]) -> None:
    assert embedded(render_report(replyhi)) == replyhi


def test_a_name_cannot_close_the_script_that_holds_it(replyhi: dict[str, Any]) -> None:
    data = copy.deepcopy(replyhi)
    evil = "</script><script>alert(1)</script><!--"
    data["connections"][0]["slices"][0]["name"] = evil
    data["connections"][0]["ends"][0]["processes"] = [f"{evil}[1]"]
    page = render_report(data)
    assert evil not in page
    assert embedded(page) == data
    # Only the page's own two scripts: the data and the drawing code.
    assert page.count("</script>") == 2


def test_title_is_escaped(replyhi: dict[str, Any]) -> None:
    page = render_report({**replyhi, "title": "<b>run</b> & co"})
    assert "<b>run</b>" not in page
    assert "<h1>&lt;b&gt;run&lt;/b&gt; &amp; co</h1>" in page
    assert embedded(page)["title"] == "<b>run</b> & co"


# ---- the page as drawn by Chromium ----

def drawn(data: dict[str, Any], tmp_path: Path) -> tuple[Element, Path]:
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    page.write_text(render_report(data))
    return drawn_page(page, shot), shot


def test_chromium_draws_the_replyhi_sequence(replyhi: dict[str, Any], tmp_path: Path) -> None:
    dom, shot = drawn(replyhi, tmp_path)
    [connection] = replyhi["connections"]
    [diagram] = dom.select("sequence", tag="svg")
    assert diagram.attrs["data-connection"] == connection["id"]

    lifelines = diagram.select("lifeline")
    assert [e.attrs["data-node"] for e in lifelines] == ["client", "server"]  # reference first
    [client_x, server_x] = [float(line.attrs["x1"]) for e in lifelines
                            for line in e.children if line.tag == "line"]
    assert client_x < server_x

    arrows = diagram.select("arrow")
    assert Counter(a.attrs["data-kind"] for a in arrows) == Counter(
        a["kind"] for a in connection["arrows"])
    assert {"data", "handshake", "close"} <= {a.attrs["data-kind"] for a in arrows}
    # Each arrow says what crossed the wire.
    labels = Counter((a.attrs["data-kind"], e.text) for a in arrows for e in a.children
                     if e.tag == "text")
    assert labels[("handshake", "connect → accept")] == 1 and labels[("data", "5 bytes")] == 1
    assert labels[("handshake", "ACK")] == 1
    assert labels[("close", "FIN")] >= 1
    assert {label for kind, label in labels if kind == "close"} <= {"FIN", "ACK of FIN"}
    for arrow in arrows:  # no inversions: every arrow goes down (or across)
        [line] = [e for e in arrow.children if e.tag == "line"]
        assert float(line.attrs["y2"]) >= float(line.attrs["y1"]), arrow.attrs
        assert any(e.tag == "polygon" for e in arrow.children)  # an arrowhead

    activations = diagram.select("activation")
    assert len(activations) == len(connection["slices"])
    names = {(a.attrs["data-node"], a.attrs["data-name"]) for a in activations}
    assert ("client", "connect") in names
    assert ("server", "__sys_accept4") in names
    assert names & {("server", "accept"), ("server", "accept4")}
    assert len(diagram.select("instant")) == len(connection["instants"])

    # The latencies say how far the clocks' alignment lets them be off.
    [error] = [p.text for p in dom.select("muted", tag="p") if "latency" in p.text]
    said = re.search(r"±([\d.]+) (µs|ms)", error)
    assert said, error
    ns = float(said[1]) * {"µs": 1e3, "ms": 1e6}[said[2]]
    assert abs(ns - replyhi["clock_error_ns"]) <= 0.001 * ns + 1000, error
    assert not [c for c in latency_cells(dom) if c.startswith("≤")]  # all beyond the error

    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


def test_chromium_draws_the_first_of_50_and_lists_them_all(
        synthetic: dict[str, Any], tmp_path: Path) -> None:
    dom, shot = drawn(synthetic, tmp_path)
    ids = [c["id"] for c in synthetic["connections"]]
    assert len(ids) == 50
    listed = [e for e in dom.walk() if e.tag == "details" and "connection" in e.classes]
    assert [e.attrs["data-connection"] for e in listed] == ids
    assert "open" in listed[0].attrs
    # The others are drawn only when opened, which keeps a 100-connection page fast.
    [diagram] = dom.select("sequence", tag="svg")
    assert diagram.attrs["data-connection"] == ids[0]
    assert len(diagram.select("arrow")) == len(synthetic["connections"][0]["arrows"])
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_a_missing_chromium_fails_and_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match=r"run \./setup"):
        render_in_chromium(tmp_path / "report.html", tmp_path / "report.png")


def test_a_moment_run_in_a_softirq_says_so() -> None:
    data = report_data(correlate(ftrace_run("linux-6.1", "handshake"), reference="client"),
                       "handshake linux-6.1")
    labels = {i["label"] for c in data["connections"] for i in c["instants"]}
    assert "tcp_v4_do_rcv [softirq]" in labels
    assert "tcp_close" in labels  # run by the program itself: nothing to say


def test_an_end_s_processes_are_the_ones_that_ran_it_not_those_a_softirq_interrupted() -> None:
    result = correlate(ftrace_run("linux-6.1", "handshake"), reference="client")
    interrupted = {e.comm for c in result.pairing.connections for end in c.ends
                   for e in end.events if e.irq and e.pid}
    assert interrupted - {"hello", "replyhi"}  # ksoftirqd: a packet was handled under it
    ends = report_data(result, "handshake linux-6.1")["connections"][0]["ends"]
    assert [[p.split("[")[0] for p in end["processes"]] for end in ends] == [
        ["hello"], ["replyhi"]]


def latency_cells(dom: Element) -> list[str]:
    [latency] = [e for e in dom.walk() if e.attrs.get("id") == "latency"]
    return [e.text for e in latency.walk() if e.tag == "td"]


def test_a_latency_within_the_clock_error_is_shown_as_at_most(
        replyhi: dict[str, Any], tmp_path: Path) -> None:
    loose = {**replyhi, "clock_error_ns": 3_000_000}  # clocks known to ±3 ms only
    dom, _ = drawn(loose, tmp_path)
    # send → receive (both ways, and client → server) and first → last byte: 2.111 ms
    # (min and median; all four one way) could be 0 to 5.111.
    assert [c for c in latency_cells(dom) if c.startswith("≤")] == ["≤ 5.111 ms"] * 8
    # The connection's own too: each way's one send (the reply's 8.425 ms is beyond the
    # error), and first → last byte each way.
    [body] = [e for e in dom.walk() if "connection-body" in e.classes]
    cells = [e.text for e in body.walk() if e.tag == "td"]
    assert cells[-3] == "15.34 ms"  # connect → accept, beyond the error
    assert cells[-2] == "≤ 5.111 ms, 8.425 ms"
    assert cells[-1] == "client→server ≤ 5.111 ms, server→client 8.425 ms"
    rows = [c for c in latency_cells(dom) if c.startswith(("send", "connect", "first"))]
    assert rows == ["connect → accept", "send → receive", "send → receive, client→server",
                    "send → receive, server→client", "first → last byte"]


def test_the_page_heads_with_how_the_run_went(replyhi: dict[str, Any], tmp_path: Path) -> None:
    """A CI job's reader opens report.html: it says whether the run passed, what failed,
    what was warned of, and each expectation."""
    run = run_outcome({
        "playbook": "playbooks/replyhi.yaml", "ok": False, "accel": "tcg",
        "failures": ["expectation client calls [client] failed: no __sys_connect"],
        "warnings": ["ftrace on client: 1 event lost: 1 probe hit the kernel could not record"],
        "expectations": [
            {"name": "server calls", "node": "server", "ok": True, "detail": "all 6 in order",
             "line": 40, "checked": True},
            {"name": "client calls", "node": "client", "ok": False,
             "detail": "no __sys_connect", "line": 45, "checked": True}]})
    dom, _ = drawn({**replyhi, "run": run}, tmp_path)
    chips = [" ".join((e.text + " ".join(c.text for c in e.children)).split())
             for e in dom.select("chip")]
    assert {"playbook replyhi", "run failed", "guests under TCG"} <= set(chips), chips
    warnings = [p.text for p in dom.select("warning", tag="p") if p.text.startswith(("✗", "⚠"))]
    assert warnings == ["✗ expectation client calls [client] failed: no __sys_connect",
                        "⚠ ftrace on client: 1 event lost: 1 probe hit the kernel could not "
                        "record"]
    [section] = [e for e in dom.walk() if e.attrs.get("id") == "expectations"]
    assert [e.text for e in section.walk() if e.tag == "td"] == [
        "server calls", "server", "ok", "all 6 in order",
        "client calls", "client", "FAIL", "no __sys_connect"]
