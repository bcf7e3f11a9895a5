"""Labs side by side, and clean-up after the controller was killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.vmlab import PAIR, ROOT, lab, leftovers, virsh

pytestmark = pytest.mark.vm


def test_two_labs_of_one_topology_run_side_by_side() -> None:
    with ThreadPoolExecutor(2) as pool:
        ups = list(pool.map(lambda _: lab("up", str(PAIR), check=False), range(2)))
    names = [u.stdout.strip() for u in ups if u.returncode == 0]
    try:
        assert [u.returncode for u in ups] == [0, 0], [u.stderr for u in ups]
        assert len(set(names)) == 2
        for name in names:
            assert lab("exec", "--lab", name, "server", "hostname").stdout == "server\n"
        # Same topology, same guest addresses, yet separate bridges: each client
        # reaches its own server only.
        bridges = {json.loads(lab("status", "--json", n).stdout)[0]["networks"]["lan"]["bridge"]
                   for n in names}
        assert len(bridges) == 2
        for name in names:
            lab("exec", "--lab", name, "client", "--", "ping", "-c", "1", "-W", "5", "server")
    finally:
        for name in names:
            lab("down", name, check=False)
    for name in names:
        assert not leftovers(name)


def test_down_all_after_the_controller_is_killed_during_up() -> None:
    """SIGKILL `lab up` once its domains exist; `lab down --all` must find everything.

    Note: --all removes every socklab lab on this host, as it promises.
    """
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "up", str(PAIR)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        domains: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            domains = [d for d in virsh("list", "--name") if d.startswith("sl-pair-")]
            if domains:
                break
            time.sleep(0.05)
        assert domains, "lab up never started a domain"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    name = domains[0].removeprefix("sl-").rsplit("-", 1)[0]
    assert leftovers(name).domains, "the killed lab should still be there"
    lab("down", "--all")
    assert not leftovers(name)
    assert "no lab named" in lab("status", name, check=False).stderr


def test_a_boot_deadline_names_the_node_and_leaves_nothing() -> None:
    before = set(virsh("list", "--all", "--name"))
    failed = lab("up", str(PAIR), "--timeout", "1", check=False)
    assert failed.returncode == 1
    assert "no ready line on the console before the deadline" in failed.stderr
    assert any(f"error: node {n}:" in failed.stderr for n in ("client", "server"))
    assert set(virsh("list", "--all", "--name")) <= before


def test_a_guest_that_dies_while_booting_is_reported_with_its_console() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "up", str(PAIR)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    victim = ""
    while not victim and time.monotonic() < deadline and proc.poll() is None:
        victim = next((d for d in virsh("list", "--name") if d.startswith("sl-pair-")
                       and d.endswith("-server")), "")
        time.sleep(0.05)
    assert victim, "lab up never started the server"
    lab_name = victim.removeprefix("sl-").removesuffix("-server")
    console = Path(json.loads(lab("status", "--json", lab_name).stdout)[0]["nodes"]["server"][
        "console_log"])
    while b"boot script started" not in (console.read_bytes() if console.exists() else b""):
        assert time.monotonic() < deadline and proc.poll() is None, "server never booted"
        time.sleep(0.05)
    virsh("destroy", victim)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "error: node server: the guest stopped before it was ready" in stderr
    assert "--- console of server (last lines) ---" in stderr
    assert "socklab: boot script started" in stderr
    assert not leftovers(lab_name)


@pytest.mark.parametrize("signal_names", [["SIGINT"], ["SIGTERM"], ["SIGINT", "SIGINT"]])
def test_an_interrupted_run_takes_its_lab_down(signal_names: list[str], tmp_path: Path) -> None:
    """Ctrl-C (or a CI job's SIGTERM) in the middle of a playbook: the lab goes, the run
    directory stays with what was traced until then. An impatient second
    Ctrl-C does not cut the teardown short."""
    # Progress lines, until the playbook's first step is done.
    proc, lab_name, seen = run_until(ROOT / "playbooks" / "replyhi.yaml", tmp_path, "[1/")
    for signal_name in signal_names:
        proc.send_signal(getattr(signal, signal_name))
        time.sleep(0.1)
    printed, rest = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, signal_names[0]), "".join(seen) + rest
    assert f"lab {lab_name} removed" in rest
    assert not leftovers(lab_name)
    [run_dir] = tmp_path.iterdir()
    assert printed.strip() == str(run_dir)  # said as soon as it was made
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["ok"] is False
    # Every step is listed: those done, the one interrupted, those never begun.
    statuses = [step["status"] for step in summary["steps"]]
    assert len(statuses) == 8 and statuses.count("interrupted") == 1, statuses
    at = statuses.index("interrupted")
    assert set(statuses[:at]) == {"ok"} and set(statuses[at + 1:]) <= {"skipped"}, statuses
    assert summary["failures"][-1].startswith(f"interrupted during step {at + 1} (")
    # What was traced until then is parsed, and correlated when asked.
    assert (run_dir / "events.jsonl").is_file()
    report = lab("report", str(run_dir), check=False)
    assert report.returncode == 0, report.stderr
    assert (run_dir / "timeline.txt").is_file()


def test_a_guest_that_dies_during_a_run_fails_the_lab_not_the_test(tmp_path: Path) -> None:
    """A nightly job must tell a crashed guest (3: look at the host) from a regression (1)."""
    book = tmp_path / "dies.yaml"
    book.write_text("name: dies\nsteps:\n  - {node: server, run: sleep 60}\n")
    proc, lab_name, seen = run_until(book, tmp_path / "runs", "running dies")
    time.sleep(1)  # into the step
    virsh("destroy", f"sl-{lab_name}-server")
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 3, "".join(seen) + rest
    assert "error: lost node server during the run" in rest
    assert f"lab {lab_name} removed" in rest
    assert not leftovers(lab_name)
    [run_dir] = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["lost"] == ["server"]


def run_until(playbook: Path, runs: Path, prefix: str) -> tuple[
        subprocess.Popen[str], str, list[str]]:
    """`lab run` of the pair and `playbook`, going on in the background once it printed
    a line starting with `prefix`: the process, its lab's name, the lines so far."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli.main", "run", str(PAIR), str(playbook),
         "--runs", str(runs)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lab_name, seen = "", []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("lab ") and line.rstrip().endswith(" is up"):
            lab_name = line.split()[1]
        if line.startswith(prefix):
            break
    assert lab_name, "".join(seen)
    return proc, lab_name, seen
