"""`lab report RUN_DIR`: the reports written again from a run's events."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest

from lab.cli.main import main
from lab.correlate.correlation import Summary
from lab.correlate.pairing import LISTENING
from lab.correlate.synthetic import synthetic_run
from lab.events import write_events
from lab.export.outputs import summary_lines
from tests.unit.test_correlate_pairing import ftrace_run
from tests.unit.test_report_html import embedded


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_writes_every_output_and_summarises(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", ftrace_run("linux-6.1", "replyhi"))
    code, out, err = report(capsys, str(tmp_path))
    assert code == 0, err
    assert out.split() == [str(tmp_path / n) for n in (
        "connections.json", "timeline.txt", "trace.json", "report.html")]
    assert "connections: 1 paired, 0 one-sided; 0 inversions after clock alignment" in err
    assert "clock server vs client: bounded" in err and "latency (median): connect→accept" in err
    # Each way apart: a request and its reply take unlike times.
    assert ", send→receive client→server " in err and ", send→receive server→client " in err
    connections = json.loads((tmp_path / "connections.json").read_text())
    (connection,) = connections["connections"]
    assert [(t["from"], t["bytes"], len(t["receives"])) for t in connection["transfers"]] == [
        ("client", 5, 1), ("server", 2, 1)]
    assert connections["clocks"]["server"]["quality"] == "bounded"


def test_the_reference_clock_can_be_chosen(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", synthetic_run(5, offset_ns=7_000_000).events)
    code, _, err = report(capsys, str(tmp_path), "--reference", "server")
    assert code == 0 and "clock client vs server: bounded" in err
    assert json.loads((tmp_path / "connections.json").read_text())["reference"] == "server"


def test_a_directory_without_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report(capsys, str(tmp_path)) == (2, "", (
        f"error: {tmp_path}: no events.jsonl here (hint: give a directory that `lab run` made, "
        "e.g. runs/<lab>-<time>)\n"))


def test_an_events_file_that_is_no_file_is_said_to_be_what_it_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    (tmp_path / "playbook.json").write_text("{}")
    events.mkdir()
    for given in (tmp_path, events):  # the run directory, or the file itself
        assert report(capsys, str(given)) == (2, "", (
            f"error: {events}: a directory, not a file (hint: lab run writes it as a file, "
            "one event per line)\n"))
    events.rmdir()
    os.mkfifo(tmp_path / "fifo")
    events.symlink_to("fifo")
    assert f"error: {events}: not a regular file (hint: " in \
        report(capsys, str(tmp_path))[2]
    events.unlink()
    events.symlink_to("events.jsonl")  # a loop
    assert f"error: {events}: a symbolic link that leads nowhere (hint: " in \
        report(capsys, str(tmp_path))[2]


def test_a_run_that_stopped_before_its_traces_were_parsed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "playbook.json").write_text("{}")  # what `lab run` writes first
    code, _, error = report(capsys, str(tmp_path))
    assert code == 2
    assert error.startswith(f"error: {tmp_path}: the run ended before its traces were parsed "
                            "(no events.jsonl): it was interrupted, or its lab failed (hint: ")
    # An interrupted run's summary says how far it got.
    (tmp_path / "summary.json").write_text(json.dumps(
        {"interrupted": True, "steps": [
            {"index": 0, "name": "deploy replyhi", "status": "ok"},
            {"index": 1, "name": "say hello", "status": "interrupted"},
            {"index": 2, "name": "stop ftrace", "status": "skipped"}]}))
    assert ": interrupted during step 2 (say hello) (hint: " in report(capsys, str(tmp_path))[2]


def test_a_bad_line_is_named_with_its_field_and_left_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, synthetic_run(1).events)
    lines = events.read_text().splitlines()
    lines[3] = lines[3].replace('"tid":', '"tid":"x",  "old":')
    events.write_text("\n".join(lines) + "\n")
    code, out, err = report(capsys, str(tmp_path))
    assert (code, len(out.split())) == (0, 4)
    assert err.splitlines()[0] == (
        f"warning: {events}:4: tid: expected `int`, got `str` (hint: each line must "
        "be one event of the schema in lab/events.py); line left out")
    assert f"correlating {len(lines) - 1} events" in err


@pytest.mark.parametrize(("ts", "bound"),
                         [("-5", ">= 0"), (str(1 << 63), "<= 9223372036854775807")])
def test_a_time_no_monotonic_clock_shows_is_left_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], ts: str, bound: str) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, synthetic_run(1).events)
    lines = events.read_text().splitlines()
    lines[1] = re.sub(r'"ts":\d+', f'"ts":{ts}', lines[1])
    events.write_text("\n".join(lines) + "\n")
    code, _, err = report(capsys, str(tmp_path))
    assert code == 0
    assert err.splitlines()[0].startswith(f"warning: {events}:2: ts: expected `int` {bound} ")


def test_a_run_cut_short_mid_line_is_reported_without_that_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, synthetic_run(1).events)
    text = events.read_text()
    events.write_text(text[:-40])  # the last line half written
    lines = text.count("\n")
    code, _, err = report(capsys, str(tmp_path))
    assert code == 0
    assert f"warning: {events}:{lines}: input data was truncated" in err
    assert f"correlating {lines - 1} events" in err
    assert json.loads((tmp_path / "connections.json").read_text())["paired"] == 1


def test_an_unknown_reference_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", synthetic_run(1).events)
    code, _, err = report(capsys, str(tmp_path), "--reference", "router")
    assert code == 2
    assert err == (f"error: --reference router: no node of that name has events in "
                   f"{tmp_path / 'events.jsonl'} (hint: nodes with events: client, server)\n")


def test_a_run_without_events_is_reported_empty_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "events.jsonl").write_text("")
    code, out, err = report(capsys, str(tmp_path))
    assert code == 0 and len(out.split()) == 4
    assert "holds no events (did the playbook start a tracer?)" in err
    assert json.loads((tmp_path / "connections.json").read_text())["connections"] == []
    assert report(capsys, str(tmp_path))[0] == 0  # again: its empty reports, again


def test_an_emptied_events_file_leaves_the_reports_made_from_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", synthetic_run(1).events)
    assert report(capsys, str(tmp_path))[0] == 0
    made = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "events.jsonl"}
    (tmp_path / "events.jsonl").write_text("")  # truncated by a disk filling up, say
    code, out, err = report(capsys, str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (f"error: {tmp_path / 'events.jsonl'}: holds no events, but the reports "
                   "beside it were made from some: they are kept (hint: remove them to write "
                   "empty ones)\n")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()
            if p.name != "events.jsonl"} == made


def test_a_report_that_cannot_be_written_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", synthetic_run(1).events)
    (tmp_path / "timeline.txt").mkdir()  # where the report would go
    code, _, err = report(capsys, str(tmp_path))
    last = err.splitlines()[-1]
    assert (code, last) == (1, f"error: {tmp_path / 'timeline.txt'}: Is a directory")
    assert "Traceback" not in err


def test_when_the_first_node_traced_nothing_the_next_is_the_reference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # As `lab run` leaves it when the playbook traced the server only.
    write_events(tmp_path / "events.jsonl",
                 [e for e in synthetic_run(2).events if e.node == "server"])
    (tmp_path / "topology.json").write_text(json.dumps(
        {"nodes": [{"name": "client"}, {"name": "server"}]}))
    code, _, err = report(capsys, str(tmp_path))
    assert code == 0, err
    assert "on server's clock" in err
    assert json.loads((tmp_path / "connections.json").read_text())["reference"] == "server"
    # Asked for by name, a node without events is still refused.
    code, _, err = report(capsys, str(tmp_path), "--reference", "client")
    assert code == 2 and "--reference client: no node of that name has events" in err


def test_a_missing_directory_and_the_events_file_itself(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report(capsys, str(tmp_path / "nope"))[::2] == (2, (
        f"error: {tmp_path / 'nope'}: no such directory (hint: give a directory that "
        "`lab run` made, e.g. runs/<lab>-<time>)\n"))
    write_events(tmp_path / "events.jsonl", synthetic_run(1).events)
    code, out, _ = report(capsys, str(tmp_path / "events.jsonl"))
    assert code == 0 and out.split()[0] == str(tmp_path / "connections.json")


def test_a_file_of_no_event_at_all_is_an_error_and_the_reports_stay(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", synthetic_run(1).events)
    assert report(capsys, str(tmp_path))[0] == 0
    before = (tmp_path / "connections.json").read_text()
    (tmp_path / "events.jsonl").write_text("not json\n{also not\n[]\n1\n2\n")
    code, out, err = report(capsys, str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {tmp_path / 'events.jsonl'}:1: ")
    assert err.splitlines()[-1] == (
        f"error: {tmp_path / 'events.jsonl'}: and 2 more unreadable lines; none could be read "
        "(hint: is it a run's events.jsonl?)")
    assert (tmp_path / "connections.json").read_text() == before
    # A file given where the directory should be.
    assert report(capsys, str(tmp_path / "connections.json" / "x"))[0] == 2
    code, _, err = report(capsys, str(tmp_path / "timeline.txt"))
    assert (code, err.split(": ")[2]) == (2, "not a directory (hint")


def test_the_terminal_summary_tells_events_left_out_of_every_connection() -> None:
    summary = Summary(paired=2, unpaired=0, inversions=0, clocks={}, latency_ns={},
                      unattributed={LISTENING: 9,
                                    "datagram socket call with no peer address": 77})
    # A listening socket's events are in no connection by nature: not worth a line.
    assert summary_lines(summary)[-1] == (
        "not in any connection: 77 events (datagram socket call with no peer address)")
    assert not any("listening" in line for line in summary_lines(summary))


def test_inversions_are_not_claimed_checked_across_unaligned_clocks() -> None:
    summary = Summary(paired=2, unpaired=0, inversions=0, clocks={}, latency_ns={},
                      unattributed={}, unaligned=["client2", "server"])
    assert summary_lines(summary)[0] == (
        "connections: 2 paired, 0 one-sided; 0 inversions after clock alignment "
        "(not checked with client2, server: clocks not aligned)")
    aligned = Summary(paired=1, unpaired=0, inversions=0, clocks={}, latency_ns={},
                      unattributed={})
    assert summary_lines(aligned)[0].endswith("0 inversions after clock alignment")


def test_a_latency_within_the_clock_error_is_only_bounded_above() -> None:
    stats = {"median": 40_000}
    summary = Summary(paired=1, unpaired=0, inversions=0, clocks={"server": "fit"},
                      latency_ns={"send_to_receive": stats, "first_to_last_byte": {
                          "median": 900_000}}, unattributed={}, clock_error_ns=100_000)
    # 40 µs measured with clocks known to ±100 µs: anywhere from 0 to 140 µs.
    assert summary_lines(summary)[-1] == (
        "latency (median): send→receive at most 140.000 µs, first→last byte 900.000 µs "
        "(clocks aligned within ±100.000 µs)")
    one_sided = Summary(paired=1, unpaired=0, inversions=0, clocks={"server": "fit"},
                        latency_ns={"send_to_receive": stats}, unattributed={})
    assert summary_lines(one_sided)[-1].endswith(
        "(clocks not bounded on both sides: these may be off by any amount)")


def test_reports_are_replaced_all_or_none(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up as trace.json is written leaves the earlier reports whole."""
    write_events(tmp_path / "events.jsonl", synthetic_run(1).events)
    assert report(capsys, str(tmp_path))[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write_text = Path.write_text

    def disk_full(self: Path, data: str) -> int:
        if self.name.startswith(".trace.json."):
            write_text(self, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")  # names no file
        return write_text(self, data)

    write_events(tmp_path / "events.jsonl", synthetic_run(2).events)  # new reports, all
    monkeypatch.setattr(Path, "write_text", disk_full)
    code, _, err = report(capsys, str(tmp_path))
    assert (code, err.splitlines()[-1]) == (
        1, f"error: {tmp_path / 'trace.json'}: No space left on device")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "events.jsonl"}
    assert after == {name: data for name, data in before.items() if name != "events.jsonl"}


def test_report_html_says_how_the_run_went_from_its_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "events.jsonl", ftrace_run("linux-6.1", "replyhi"))
    assert report(capsys, str(tmp_path))[0] == 0
    assert embedded((tmp_path / "report.html").read_text())["run"] is None  # not known
    (tmp_path / "summary.json").write_text(json.dumps(
        {"playbook": "playbooks/replyhi.yaml", "ok": True, "failures": [], "warnings": [],
         "expectations": [{"name": "calls", "node": "server", "ok": True, "detail": "ok"}]}))
    assert report(capsys, str(tmp_path))[0] == 0
    run = embedded((tmp_path / "report.html").read_text())["run"]
    assert (run["playbook"], run["ok"], len(run["expectations"])) == ("replyhi", True, 1)
    # An edited summary.json: what is not as `lab run` writes it is left out.
    (tmp_path / "summary.json").write_text(json.dumps(
        {"ok": "yes", "warnings": 7, "failures": ["f", 2], "expectations": {"a": 1}}))
    assert report(capsys, str(tmp_path))[0] == 0
    run = embedded((tmp_path / "report.html").read_text())["run"]
    assert (run["ok"], run["warnings"], run["failures"], run["expectations"]) == (
        False, [], ["f", "2"], [])


@pytest.mark.parametrize("value", ['{}', '[1]', '1.5', 'true'])
def test_an_argument_no_tracer_gives_is_a_faulty_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, synthetic_run(1).events)
    lines = events.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if '"newstate":' in line)
    lines[n] = re.sub(r'"newstate":"\w+"', f'"newstate":{value}', lines[n])
    events.write_text("\n".join(lines) + "\n")
    code, _, err = report(capsys, str(tmp_path))
    assert code == 0
    assert err.splitlines()[0].startswith(
        f"warning: {events}:{n + 1}: args: expected `int | str | null`, got ")


def test_latencies_are_told_each_way_and_not_twice() -> None:
    one_send_each_way = {"count": 2, "median": 2_000_000}
    summary = Summary(paired=1, unpaired=0, inversions=0, clocks={"server": "fit"},
                      latency_ns={"send_to_receive": one_send_each_way,
                                  "send_to_receive client→server": {"median": 3_000_000},
                                  "send_to_receive server→client": {"median": 1_000_000},
                                  "first_to_last_byte": one_send_each_way},
                      unattributed={}, clock_error_ns=100_000)
    assert summary_lines(summary)[-1] == (
        "latency (median): send→receive client→server 3.000 ms, send→receive server→client "
        "1.000 ms (clocks aligned within ±100.000 µs)")
