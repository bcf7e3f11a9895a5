"""The verbs other than validate, through the real entry point: exit codes and messages.

Nothing here boots a VM or reaches a real libvirt daemon: labs are state files
under a temporary LAB_HOME, and `lab down` talks to libvirt's test driver
through a `test://` URI naming a host description in a temporary file.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lab.backends.libvirt import LibvirtBackend
from lab.cli import down as down_module
from lab.cli import run as run_module
from lab.cli.common import libvirt_uri
from lab.cli.main import main, parse
from lab.errors import BackendError
from lab.paths import Paths
from lab.playbook import Playbook, load_playbook
from lab.run import RunSummary
from lab.run.results import ExpectationResult, NodeRun, StepResult
from lab.run.runner import StepSink
from lab.ssh import Endpoint
from lab.ssh.session import Command, NodeSession, Sink, command_line
from lab.state import (
    TOPOLOGY_FILE,
    LabState,
    NetworkState,
    NodeState,
    StateStore,
    typed_command,
)
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]

LAB = "pair-1a2b3c"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2bzpYMVUGgdhJ7aOnUzNIs2i/tRzyDtQRYG1oXw8ab"
NO_LAB = "error: no lab named 'nosuch' (hint: `lab status` lists the labs that are up)\n"

# A test-driver host holding what `lab up` would have created for LAB.
def host_xml(*running: str) -> str:
    """A libvirt test host where the lab's network and these nodes' guests exist."""
    domains = "".join(f"""\
  <domain type="test">
    <name>sl-{LAB}-{node}</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <metadata>
      <socklab:node xmlns:socklab="https://socklab.dev/xmlns/lab/1" lab="{LAB}" node="{node}"/>
    </metadata>
  </domain>
""" for node in running)
    return f"""\
<node>
{domains}  <network>
    <name>sl-{LAB}-lan</name>
    <bridge name="sl1a2b3c-1"/>
  </network>
</node>
"""


HOST_XML = host_xml("server")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    return tmp_path / "home"


@pytest.fixture
def host_uri(tmp_path: Path) -> str:
    host = tmp_path / "host.xml"
    host.write_text(HOST_XML)
    return f"test://{host}"


def save_lab(home: Path, *, uri: str = "test:///default", booted: bool = True) -> LabState:
    def node(name: str, port: int, address: str) -> NodeState:
        return NodeState(domain=f"sl-{LAB}-{name}", image="debian-11",
                         kernel_release="5.10.0-28-amd64", ssh_host="127.0.0.1",
                         ssh_port=port, host_key=KEY if booted else None,
                         console_log=str(home / "labs" / LAB / f"{name}.console.log"),
                         role=name, addresses=[address])
    state = LabState(
        name=LAB, topology="topologies/pair.yaml", uri=uri, created_at="2024-05-01T12:00:00Z",
        status="up" if booted else "creating", accel="tcg",
        nodes={"client": node("client", 40010, "10.0.1.10/24"),
               "server": node("server", 40020, "10.0.1.20/24")},
        networks={"lan": NetworkState(name=f"sl-{LAB}-lan", bridge="sl1a2b3c-1")})
    StateStore(Paths(home)).save(state)
    return state


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> tuple[str, str]:
    """stdout and stderr of a command line argparse refuses (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    return out, err


# --- status -------------------------------------------------------------------

def test_status_without_labs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "status") == (0, "no labs (start one with `lab up TOPOLOGY`)\n", "")
    assert run(capsys, "status", "--json") == (0, "[]\n", "")


def test_status_json_is_the_saved_state_and_what_no_longer_runs(
        capsys: pytest.CaptureFixture[str], home: Path, host_uri: str) -> None:
    state = save_lab(home, uri=host_uri)  # libvirt runs the server only
    code, out, err = run(capsys, "status", "--json")
    assert (code, err) == (0, "")
    labs = json.loads(out)
    assert labs == [{**state.model_dump(), "status": "stale", "stopped_nodes": ["client"]}]
    assert labs[0]["nodes"]["server"]["ssh_port"] == 40020
    assert labs[0]["nodes"]["server"]["host_key"] == KEY
    # Naming the lab gives the same.
    assert json.loads(run(capsys, "status", "--json", LAB)[1]) == labs


def test_status_json_says_null_when_libvirt_cannot_tell(
        capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path) -> None:
    save_lab(home, uri=f"test://{tmp_path / 'gone.xml'}")
    code, out, err = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out)[0]["stopped_nodes"] is None
    assert err.startswith("warning: cannot tell whether the guests run: cannot connect")


def test_status_table(capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path) -> None:
    both = tmp_path / "both.xml"
    both.write_text(host_xml("client", "server"))
    save_lab(home, uri=f"test://{both}")
    code, out, err = run(capsys, "status")
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert rows == [
        ["LAB", "STATUS", "NODE", "ROLE", "IMAGE", "KERNEL", "SSH", "ADDRESSES"],
        [LAB, "up", "client", "client", "debian-11", "5.10.0-28-amd64", "127.0.0.1:40010",
         "10.0.1.10/24"],
        ["server", "server", "debian-11", "5.10.0-28-amd64", "127.0.0.1:40020", "10.0.1.20/24"],
    ]


def test_status_says_a_lab_whose_guest_is_gone_is_stale(
        capsys: pytest.CaptureFixture[str], home: Path, host_uri: str) -> None:
    save_lab(home, uri=host_uri)  # libvirt runs the server only
    code, out, err = run(capsys, "status")
    assert code == 0 and out.splitlines()[1].split()[:3] == [LAB, "stale", "client"]
    assert err == (f"warning: lab {LAB}: client not running (the host rebooted, or a guest "
                   f"died): `lab down {LAB}` and up again\n")


def test_status_tells_a_lab_coming_up_from_one_whose_lab_up_was_stopped(
        capsys: pytest.CaptureFixture[str], home: Path) -> None:
    save_lab(home, booted=False)
    with StateStore(Paths(home)).in_use(LAB):  # its `lab up` runs
        assert run(capsys, "status")[1].splitlines()[1].split()[:2] == [LAB, "creating"]
    # Killed (its lock went with it), or stopped before the lab was up.
    assert run(capsys, "status")[1].splitlines()[1].split()[:2] == [LAB, "interrupted"]
    assert json.loads(run(capsys, "status", "--json")[1])[0]["status"] == "interrupted"


def test_status_of_an_unknown_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "status", "nosuch") == (2, "", NO_LAB)


# --- down ---------------------------------------------------------------------

def test_down_needs_names_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "down") == (2, "", (
        "error: name the labs to remove, or pass --all (hint: `lab status` lists the labs)\n"))
    assert run(capsys, "down", LAB, "--all") == (2, "", (
        "error: name the labs to remove or pass --all, not both "
        "(hint: `lab status` lists the labs)\n"))


def test_down_all_with_nothing_to_remove(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "down", "--all", "--connect", "test:///default") == (
        0, "", "nothing to remove\n")


@pytest.mark.parametrize(("uri", "error"), [
    # Guests answer SSH on the loopback of the host that runs them; lab sends nothing
    # off this one.
    ("qemu+ssh://root@lab-host/system",
     "names host lab-host: lab runs its labs on this machine only (e.g. qemu:///system)"),
    ("system", "not a libvirt URI (e.g. qemu:///system, or test:///default)"),
])
def test_a_libvirt_uri_of_another_machine_is_refused(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, uri: str,
        error: str) -> None:
    _, err = refused(capsys, ("down", "--all", "--connect", uri))
    assert err.endswith(f"lab down: error: argument -c/--connect: {uri!r}: {error}\n")
    # From the environment, it is named there.
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", uri)
    assert run(capsys, "down", "--all") == (2, "", (
        f"error: LIBVIRT_DEFAULT_URI={uri}: {error} (hint: unset it, or give --connect "
        "qemu:///system)\n"))


def test_an_empty_libvirt_default_uri_is_the_default(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "")  # as CI files often leave it
    assert libvirt_uri(parse(["down", "--all"]).connect) == "qemu:///system"
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    assert run(capsys, "down", "--all") == (0, "", "nothing to remove\n")


def test_a_libvirt_driver_that_does_not_exist_is_blamed_on_the_uri(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "down", "--all", "--connect", "nosuch:///system") == (1, "", (
        "error: cannot connect to libvirt at nosuch:///system: no connection driver "
        "available for nosuch:///system (hint: check the URI: labs run on qemu:///system)\n"))


def test_down_of_an_unknown_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "down", "nosuch") == (2, "", NO_LAB)


def test_down_removes_the_labs_objects_and_state(capsys: pytest.CaptureFixture[str],
                                                 home: Path, host_uri: str) -> None:
    save_lab(home, uri=host_uri)
    assert run(capsys, "down", LAB) == (0, "", (
        f"removed domain sl-{LAB}-server\n"
        f"removed network sl-{LAB}-lan\n"
        f"lab {LAB} removed\n"))
    assert not (home / "labs" / LAB).exists()
    assert run(capsys, "status")[0:2] == (0, "no labs (start one with `lab up TOPOLOGY`)\n")


def test_down_leaves_a_lab_another_command_holds(capsys: pytest.CaptureFixture[str],
                                                 home: Path, host_uri: str) -> None:
    """`lab down --all` in another terminal while a lab comes up, or a run is on it."""
    save_lab(home, uri=host_uri)
    with StateStore(Paths(home)).in_use(LAB):
        code, _, err = run(capsys, "down", LAB)
        assert (code, err) == (1, f"error: lab {LAB} is in use by process {os.getpid()} "
                                  f"({typed_command()}) (hint: wait for it to end, or stop "
                                  "it (Ctrl-C))\n")
        assert StateStore(Paths(home)).load(LAB)
    assert run(capsys, "down", LAB)[0] == 0  # once it has let go
    assert not (home / "labs" / LAB).exists()


async def test_down_removes_a_lab_as_it_is_once_held_not_as_it_was_read(
        capsys: pytest.CaptureFixture[str], home: Path, host_uri: str) -> None:
    """Read while its lab up ran (no domain recorded yet), removed after that lab up
    ended: the domains it recorded meanwhile go too."""
    state = save_lab(home, uri=host_uri)
    as_read = state.model_copy(update={"nodes": {}, "status": "creating"})
    removed: list[str] = []
    backend = LibvirtBackend(host_uri)
    try:
        await down_module._down_on(backend, [as_read], StateStore(Paths(home)), removed, {},
                                   sweep=False)
    finally:
        await backend.close()
    assert removed == [LAB]
    assert f"removed domain sl-{LAB}-server" in capsys.readouterr().err


def test_down_all_goes_on_past_a_lab_it_cannot_remove(
        capsys: pytest.CaptureFixture[str], home: Path, host_uri: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery command after a crash: one stuck lab must not keep the rest up."""
    stuck = save_lab(home, uri=host_uri)
    StateStore(Paths(home)).save(stuck.model_copy(update={"name": "pair-ffffff", "nodes": {},
                                                          "networks": {}}))
    real = down_module.tear_down

    async def tear_down(state: LabState, *args: Any, **kwargs: Any) -> None:
        if state.name == LAB:
            raise BackendError(f"cannot destroy domain sl-{LAB}-server")
        await real(state, *args, **kwargs)
    monkeypatch.setattr(down_module, "tear_down", tear_down)
    code, _, err = run(capsys, "down", "--all", "--connect", host_uri)
    assert code == 1
    said = " ".join(err.split())
    assert (f"warning: lab {LAB} is not fully removed: cannot destroy domain "
            f"sl-{LAB}-server") in said
    assert "lab pair-ffffff removed" in said
    assert said.endswith(f"error: 1 lab not fully removed: {LAB} (hint: see the warnings "
                         f"above; `lab down {LAB}` tries again)")
    assert (home / "labs" / LAB).exists() and not (home / "labs" / "pair-ffffff").exists()
    # The one lab named: its own error, hint and all, is the last word.
    code, _, err = run(capsys, "down", LAB)
    assert (code, err) == (1, f"error: cannot destroy domain sl-{LAB}-server\n")


def test_down_all_finds_objects_without_a_state_file(capsys: pytest.CaptureFixture[str],
                                                     host_uri: str) -> None:
    # The controller was killed before it wrote any state: only libvirt knows.
    assert run(capsys, "down", "--all", "--connect", host_uri) == (0, "", (
        f"removed domain sl-{LAB}-server\n"
        f"removed network sl-{LAB}-lan\n"
        f"lab {LAB} removed (it had no readable state file)\n"))


def test_a_damaged_state_file_is_shown_and_its_lab_can_be_removed(
        capsys: pytest.CaptureFixture[str], home: Path, host_uri: str) -> None:
    state = home / "labs" / LAB / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"name": LAB, "nodes": {"client": {"ssh_port": "x"}}}))
    code, out, err = run(capsys, "status")
    assert (code, out) == (0, "")
    assert err.startswith(f"warning: lab {LAB}: {state}: unreadable lab state (topology: ")
    assert err.endswith(f"(remove it with `lab down {LAB}`)\n")
    # Its libvirt objects are found by their owner, and the state goes with them.
    assert run(capsys, "down", LAB, "--connect", host_uri) == (0, "", (
        f"removed domain sl-{LAB}-server\n"
        f"removed network sl-{LAB}-lan\n"
        f"lab {LAB} removed (it had no readable state file)\n"))
    assert not state.parent.exists()


# --- exec, cp, ssh ------------------------------------------------------------

def not_found(argv: tuple[str, ...]) -> int:
    """A lab or node not found is bad input (2); but exec and ssh pass remote statuses
    through, so their own failures exit 255, like ssh's."""
    return 255 if argv[0] in ("exec", "ssh") else 2


@pytest.mark.parametrize("argv", [("exec", "client"), ("exec", "client", "--")])
def test_exec_without_a_command(capsys: pytest.CaptureFixture[str], home: Path,
                                argv: tuple[str, ...]) -> None:
    save_lab(home)
    assert run(capsys, *argv) == (
        2, "", "error: no command given (hint: lab exec NODE -- CMD [ARG...])\n")


class EchoSession:
    """Stands in for a node's SSH session: prints where and what it would run."""

    def __init__(self, node: str, endpoint: Endpoint) -> None:
        self.where = f"{node} {endpoint.host}:{endpoint.port}"

    @classmethod
    @asynccontextmanager
    async def open(cls, node: str, endpoint: Endpoint, client_key: Path,
                   **_: object) -> AsyncIterator[EchoSession]:
        yield cls(node, endpoint)

    async def stream(self, command: Command, stdout: Sink, stderr: Sink, *,
                     timeout: float | None = None, **_: object) -> int:
        limit = f" (timeout {timeout:g} s)" if timeout is not None else ""
        stdout(f"{self.where}: {command_line(command)}{limit}\n".encode())
        return 0


@pytest.fixture
def echo_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NodeSession, "open", EchoSession.open)


@pytest.mark.parametrize(("argv", "ran"), [
    (("exec", "client", "--lab", LAB, "--", "uname", "-r"), "client 127.0.0.1:40010: uname -r"),
    (("exec", "client", "--timeout", "5", "uname"), "client 127.0.0.1:40010: uname (timeout 5 s)"),
    (("exec", "client", "--", "ls", "-l"), "client 127.0.0.1:40010: ls -l"),
    (("exec", "--lab", LAB, "server", "--", "cat", "/etc/hosts"),
     "server 127.0.0.1:40020: cat /etc/hosts"),
    (("exec", "server", "-l", LAB, "--timeout=2.5", "--", "echo", "--", "--lab", "x"),
     "server 127.0.0.1:40020: echo -- --lab x (timeout 2.5 s)"),
    (("exec", "client", "uname"), "client 127.0.0.1:40010: uname"),
    (("exec", "server", "ss -tln | grep 22"), "server 127.0.0.1:40020: ss -tln | grep 22"),
])
@pytest.mark.usefixtures("echo_session")
def test_exec_options_go_anywhere_before_the_command(
        capsys: pytest.CaptureFixture[str], home: Path, argv: tuple[str, ...], ran: str) -> None:
    save_lab(home)
    assert run(capsys, *argv) == (0, ran + "\n", "")


@pytest.mark.parametrize("argv", [("exec", "client", "--lab", "nosuch", "--", "uname", "-r"),
                                  ("exec", "client", "-l", "nosuch", "uname"),
                                  ("ssh", "server", "-l", "nosuch"),
                                  ("ssh", "server", "--lab", "nosuch", "--", "-v")])
@pytest.mark.usefixtures("echo_session")
def test_lab_option_after_the_node_is_honoured(capsys: pytest.CaptureFixture[str], home: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               argv: tuple[str, ...]) -> None:
    save_lab(home)
    monkeypatch.setattr(os, "execv", lambda *args: pytest.fail(f"ran {args}"))
    assert run(capsys, *argv) == (not_found(argv), "", NO_LAB)


@pytest.mark.parametrize(("argv", "extra"), [(("ssh", "server", "-l", LAB), []),
                                             (("ssh", "-l", LAB, "server", "--", "-v", "id"),
                                              ["-v", "id"]),
                                             (("ssh", "server", "hostname"), ["hostname"])])
def test_ssh_gets_the_words_after_dashes_untouched(capsys: pytest.CaptureFixture[str],
                                                   home: Path, monkeypatch: pytest.MonkeyPatch,
                                                   argv: tuple[str, ...],
                                                   extra: list[str]) -> None:
    save_lab(home)
    ran: list[list[str]] = []
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(os, "execv", lambda path, args: ran.append(args))
    run(capsys, *argv)
    config = str(home / "labs" / LAB / "ssh_config")
    assert ran == [["/usr/bin/ssh", "-F", config, "server", *extra]]


def test_ssh_needs_a_node(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert run(capsys, "ssh") == (2, "", (
        "error: no NODE given (hint: lab ssh NODE; `lab status` lists the labs and their "
        "nodes)\n"))
    save_lab(home)
    assert run(capsys, "ssh", "--lab", LAB) == (2, "", (
        "error: no NODE given (hint: lab ssh NODE, with NODE one of: client, server)\n"))


USAGE = ("usage: lab exec [options] NODE -- CMD [ARG...]\n"
         "       lab exec [options] NODE CMD [ARG...]   (no word of CMD starting with -)\n")


@pytest.mark.parametrize(("argv", "message"), [
    (("exec", "client", "ls", "-l"),
     "-l after the command 'ls': is it lab's option or the command's? Put the command after -- "
     "to pass it on, as in: lab exec client -- ls -l"),
    (("exec", "client", "uname", "--lab", LAB),
     f"--lab after the command 'uname': is it lab's option or the command's? Put the command "
     f"after -- to pass it on, as in: lab exec client -- uname --lab {LAB}"),
    (("exec", "--timeout", "5", "server", "ss", "-tln"),
     "-tln after the command 'ss': is it lab's option or the command's? Put the command after "
     "-- to pass it on, as in: lab exec --timeout 5 server -- ss -tln"),
    (("exec", "client", "--verbose", "uname"),
     "unrecognized option --verbose: not an option of lab exec; the command's own options go "
     "after --, as in: lab exec [options] NODE -- CMD [ARG...]"),
    (("exec", "client", "--time", "5", "--", "uname"),
     "unrecognized option --time: not an option of lab exec; the command's own options go "
     "after --, as in: lab exec [options] NODE -- CMD [ARG...]"),
    (("exec", "client", "uname", "--", "-r"),
     "uname: unexpected before --, where only NODE and lab exec's options go; the command goes "
     "after --, as in: lab exec [options] NODE -- CMD [ARG...]"),
])
def test_exec_never_guesses_whose_option_it_is(capsys: pytest.CaptureFixture[str],
                                               argv: tuple[str, ...], message: str) -> None:
    assert refused(capsys, argv) == ("", f"{USAGE}lab exec: error: {message}\n")


@pytest.mark.parametrize("argv", [("cp", "a.txt", "b.txt"),
                                  ("cp", "client:/a", "server:/b"),
                                  ("cp", "-r", "./dir", "/tmp/dir")])
def test_cp_needs_exactly_one_remote_side(capsys: pytest.CaptureFixture[str], home: Path,
                                          argv: tuple[str, ...]) -> None:
    save_lab(home)
    assert run(capsys, *argv) == (2, "", (
        "error: exactly one of SRC and DST must be NODE:PATH "
        "(hint: lab cp FILE NODE:PATH or lab cp NODE:PATH FILE)\n"))


@pytest.mark.parametrize(("given", "said"), [
    (":/x", "no node name before ':'"), ("Bad_Node:/x", "'Bad_Node' is not a node name")])
def test_cp_names_a_node_side_whose_node_is_none(capsys: pytest.CaptureFixture[str],
                                                 home: Path, given: str, said: str) -> None:
    save_lab(home)
    assert run(capsys, "cp", given, "./here") == (2, "", (
        f"error: {given}: {said} (hint: lab status lists the nodes of each lab)\n"))


@pytest.mark.parametrize("argv", [
    ("exec", "--lab", "nosuch", "client", "--", "true"),
    ("cp", "--lab", "nosuch", "a.txt", "client:/tmp/"),
    ("ssh", "--lab", "nosuch", "client"),
])
def test_unknown_lab_name(capsys: pytest.CaptureFixture[str], home: Path,
                          argv: tuple[str, ...]) -> None:
    save_lab(home)
    assert run(capsys, *argv) == (not_found(argv), "", NO_LAB)


def test_an_error_shows_a_huge_argument_cut_and_its_escapes_unobeyed(
        capsys: pytest.CaptureFixture[str], home: Path) -> None:
    save_lab(home)
    code, _, err = run(capsys, "down", "x" * 5000 + "\x1b[2J")
    [line] = err.splitlines()
    assert code == 2 and len(line) < 1100
    assert "characters left out" in line
    assert line.endswith("x\\x1b[2J' (hint: `lab status` lists the labs that are up)")


@pytest.mark.parametrize("argv", [("exec", "client", "--", "true"),
                                  ("cp", "a.txt", "client:/tmp/"),
                                  ("ssh", "client")])
def test_no_lab_is_up(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    assert run(capsys, *argv) == (
        not_found(argv), "", "error: no lab is up (hint: start one with `lab up TOPOLOGY`)\n")


@pytest.mark.parametrize("argv", [("exec", "router", "--", "true"),
                                  ("cp", "a.txt", "router:/tmp/"),
                                  ("ssh", "router")])
def test_unknown_node(capsys: pytest.CaptureFixture[str], home: Path,
                      argv: tuple[str, ...]) -> None:
    save_lab(home)
    assert run(capsys, *argv) == (not_found(argv), "", (
        f"error: lab {LAB} has no node 'router' (hint: its nodes: client, server)\n"))


def test_node_that_has_not_booted(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    save_lab(home, booted=False)
    assert run(capsys, "exec", "--lab", LAB, "server", "--", "true") == (255, "", (
        f"error: node server of lab {LAB} has not booted "
        f"(hint: the lab is creating; `lab down {LAB}` and up again)\n"))


# --- help ---------------------------------------------------------------------

def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ")
              and not line.startswith("     ")]
    assert listed == ["validate", "up", "run", "report", "down", "status", "exec", "cp", "ssh",
                      "image", "doctor"]
    # After the verbs: what a script needs, exit statuses and the environment.
    assert out.index("doctor ") < out.index("exit status: 0 done, 1 failed, 2 bad input")
    assert "\n  LAB_HOME  " in out and "\n  LIBVIRT_DEFAULT_URI  " in out


@pytest.mark.parametrize(("argv", "message"), [
    (("valdate", "x"), "lab: error: argument VERB: invalid choice: 'valdate' "
                       "(did you mean 'validate'?)"),
    (("--debug", "stauts"), "lab: error: argument VERB: invalid choice: 'stauts' "
                            "(did you mean 'status'?)"),
    (("image", "biuld"), "lab image: error: argument ACTION: invalid choice: 'biuld' "
                         "(did you mean 'build'?)"),
    (("frob",), "lab: error: argument VERB: invalid choice: 'frob' (choose from 'validate', "
                "'up', 'run', 'report', 'down', 'status', 'exec', 'cp', 'ssh', 'image', "
                "'doctor')"),
])
def test_a_misspelt_verb_gets_a_suggestion(capsys: pytest.CaptureFixture[str],
                                           argv: tuple[str, ...], message: str) -> None:
    assert refused(capsys, argv)[1].splitlines()[-1] == message


PAIR, REPLYHI = str(ROOT / "topologies" / "pair.yaml"), str(ROOT / "playbooks" / "replyhi.yaml")


@pytest.mark.parametrize("argv", [
    ("up", PAIR, "--set", "imgae=debian-12"),
    ("run", PAIR, REPLYHI, "--set", "imgae=debian-12"),
])
def test_a_mistyped_set_is_refused_before_anything_boots(
        capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    # No libvirt is needed to get this far: the files are checked first.
    assert main(list(argv)) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: --set imgae: no variable of that name in {PAIR}")
    assert line.endswith("(hint: did you mean 'image'?)")


def test_a_set_of_a_fact_is_refused_as_it_changes_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", PAIR, REPLYHI, "--set", "nodes=3"]
    assert main(argv) == 2
    assert "error: --set nodes: a fact of the topology, which --set cannot change" in \
        capsys.readouterr().err


# --- image --------------------------------------------------------------------

def test_image_build_of_a_misspelt_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    # Said before anything is built, wherever in the list it is.
    assert run(capsys, "image", "build", "debian-11", "debain-12") == (2, "", (
        f"error: no image recipe named 'debain-12' in {ROOT / 'images'} "
        "(hint: did you mean 'debian-12'? available: debian-11, debian-12)\n"))


# --- --debug and internal errors ----------------------------------------------

@pytest.mark.parametrize("argv", [("--debug", "status"), ("status", "--debug"),
                                  ("status", "--json", "--debug")])
def test_debug_before_or_after_the_verb(capsys: pytest.CaptureFixture[str],
                                        argv: tuple[str, ...]) -> None:
    assert parse(list(argv)).debug is True
    assert parse([a for a in argv if a != "--debug"]).debug is False
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    assert out in ("no labs (start one with `lab up TOPOLOGY`)\n", "[]\n")


def broken_state(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def fail(self: StateStore) -> list[LabState]:
        raise exc
    monkeypatch.setattr(StateStore, "all", fail)


def test_an_internal_error_is_one_line(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    broken_state(monkeypatch, RuntimeError("state index\n  out of [step]"))
    assert run(capsys, "status") == (70, "", (
        "error: internal error: RuntimeError: state index out of [step] "
        "(rerun with --debug for the traceback, and please report it)\n"))
    broken_state(monkeypatch, AssertionError())
    assert run(capsys, "status")[::2] == (70, (
        "error: internal error: AssertionError "
        "(rerun with --debug for the traceback, and please report it)\n"))


@pytest.mark.parametrize("argv", [("--debug", "status"), ("status", "--debug")])
def test_debug_shows_the_traceback_and_keeps_the_exit_status(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: tuple[str, ...]) -> None:
    broken_state(monkeypatch, RuntimeError("boom"))
    code, _, err = run(capsys, *argv)
    assert code == 70
    assert err.startswith("Traceback (most recent call last):")
    assert "RuntimeError: boom\nerror: internal error: RuntimeError: boom" in err
    assert run(capsys, *argv, "nosuch")[0] == 2  # a lab not found is bad input all the same


def test_interrupted(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    broken_state(monkeypatch, KeyboardInterrupt())
    assert run(capsys, "status") == (130, "", "interrupted\n")


# --- run ----------------------------------------------------------------------

RUN = ("run", PAIR, REPLYHI, "--connect", "test:///default")
RUNS_HINT = "(hint: give a directory this user can write in (default: ./runs))"


@pytest.fixture
def booted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`lab run` stops where it would boot the lab (as if libvirt were missing)."""
    boots: list[str] = []

    async def no_libvirt_here(topology: object, topology_file: Path, *_: object,
                              **__: object) -> LabState:
        boots.append(str(topology_file))
        raise BackendError("no libvirt here")
    monkeypatch.setattr("lab.cli.run.bring_up", no_libvirt_here)
    return boots


def test_run_checks_the_runs_directory_before_booting(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path, booted: list[str]) -> None:
    afile = tmp_path / "runs.txt"
    afile.write_text("")
    assert run(capsys, *RUN, "--runs", str(afile)) == (
        2, "", f"error: --runs {afile}: not a directory {RUNS_HINT}\n")
    assert run(capsys, *RUN, "--runs", str(afile / "runs")) == (
        2, "", f"error: --runs {afile / 'runs'}: cannot create it: Not a directory {RUNS_HINT}\n")
    assert booted == []
    # A usable one is made before the lab boots: when the lab does not come up, a CI job
    # still finds there a report that says so, every step listed as not run.
    runs = tmp_path / "new" / "runs"
    code, out, err = run(capsys, *RUN, "--runs", str(runs))
    assert (code, err) == (3, "error: no libvirt here\n")
    assert booted == [RUN[1]]
    [run_dir] = runs.iterdir()
    assert out == f"{run_dir}\n" and run_dir.name.startswith("pair-")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run_dir.name.startswith(f"{summary['lab']}-")  # the lab it would have been
    assert summary["failures"] == ["the lab did not come up: no libvirt here"]
    assert {s["status"] for s in summary["steps"]} == {"skipped"} and len(summary["steps"]) == 8
    assert [e["checked"] for e in summary["expectations"]] == [False] * 3  # listed all the same
    junit = (run_dir / "junit.xml").read_text()
    assert '<testcase classname="replyhi on debian-11" name="lab up"' in junit
    assert '<error message="the lab did not come up: no libvirt here">' in junit


def test_a_file_the_host_refuses_as_the_lab_comes_up_is_in_the_run_s_summary(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def disk_full(*_: object, **__: object) -> LabState:
        raise OSError(28, "No space left on device", "/var/lib/socklab/labs/x/client.img")
    monkeypatch.setattr("lab.cli.run.bring_up", disk_full)
    code, out, err = run(capsys, *RUN, "--runs", str(tmp_path))
    assert (code, err) == (3, "error: /var/lib/socklab/labs/x/client.img: No space left on "
                              "device\n")
    summary = json.loads((Path(out.strip()) / "summary.json").read_text())
    assert summary["failures"] == ["the lab did not come up: /var/lib/socklab/labs/x/client.img:"
                                   " No space left on device"]


def test_run_renders_the_playbook_once_for_the_lab_it_boots(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What was checked and compiled before the boot is what runs: lab.name included."""
    (tmp_path / "book.yaml").write_text(
        "name: named\nsteps:\n  - {node: server, run: 'echo {{ lab.name }}'}\n")
    booted: list[str | None] = []
    ran: list[Playbook] = []

    async def up(*_: object, options: Any, **__: object) -> LabState:
        booted.append(options.name)
        return save_lab(home).model_copy(update={"name": options.name})

    async def run_playbook(book: Playbook, *_: object, **__: object) -> RunSummary:
        ran.append(book)
        return RunSummary(lab=book.lab, playbook=str(book.path), topology=PAIR, ok=True)
    monkeypatch.setattr("lab.cli.run.bring_up", up)
    monkeypatch.setattr("lab.cli.run.run_playbook", run_playbook)
    monkeypatch.setattr("lab.cli.run.tear_down", removed_at_once)
    code, out, _ = run(capsys, "run", PAIR, str(tmp_path / "book.yaml"),
                       "--runs", str(tmp_path / "runs"))
    [name] = booted
    assert code == 0 and name is not None and name.startswith("pair-")
    [book] = ran
    assert book.lab == name and book.steps[0].action.command == f"echo {name}"
    assert Path(out.strip()).name.startswith(f"{name}-")


def test_run_compiles_the_programs_before_booting(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, booted: list[str]) -> None:
    (tmp_path / "mine.c").write_text("int main(void) { return nope; }\n")
    (tmp_path / "book.yaml").write_text(
        "name: mine\nsteps:\n  - {node: server, deploy: ./mine.c}\n")
    code, _, err = run(capsys, "run", PAIR, str(tmp_path / "book.yaml"),
                       "--runs", str(tmp_path / "runs"))
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'book.yaml'}:3: steps[0].deploy: program mine "
                          f"does not compile: {tmp_path / 'mine.c'}:1:")
    assert "nope" in err
    assert booted == []  # told before any guest boots


Teardown = Callable[..., Awaitable[None]]


def fake_run(monkeypatch: pytest.MonkeyPatch, home: Path, teardown: Teardown,
             summary: RunSummary | None = None) -> None:
    """`lab run` on a lab that comes up at once, whose playbook ends with `summary` (all
    passed, by default) and which `teardown` removes."""
    state = save_lab(home)

    async def up(*_: object, **__: object) -> LabState:
        return state

    async def ran(*_: object, **__: object) -> RunSummary:
        return summary or RunSummary(lab=LAB, playbook=REPLYHI, topology=PAIR, ok=True)

    monkeypatch.setattr("lab.cli.run.bring_up", up)
    monkeypatch.setattr("lab.cli.run.run_playbook", ran)
    monkeypatch.setattr("lab.cli.run.tear_down", teardown)


async def removed_at_once(*_: object, **__: object) -> None:
    return None


async def cannot_remove(*_: object, **__: object) -> None:
    raise BackendError("cannot destroy domain sl-pair-1a2b3c-client")


def test_a_run_whose_expectations_failed_ends_on_an_error_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """A CI log's last error line says the run failed, whatever failed in it."""
    fake_run(monkeypatch, home, removed_at_once, RunSummary(
        lab=LAB, playbook=REPLYHI, topology=PAIR, ok=False, expectations=[
            ExpectationResult("calls", 30, "server", ok=False, detail="no __sys_bind"),
            ExpectationResult("calls", 36, "client", ok=True, detail="4 in order")]))
    code, _, err = run(capsys, *RUN, "--runs", str(tmp_path / "runs"))
    assert code == 1
    assert "FAIL expect calls [server]: no __sys_bind" in err
    assert err.splitlines()[-1] == "error: 1 of 2 expectations failed: calls [server]"


def test_a_run_that_lost_a_node_exits_3_as_the_lab_failed(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """A guest that died is a host to look at, not a regression: 3, not 1."""
    fake_run(monkeypatch, home, removed_at_once, RunSummary(
        lab=LAB, playbook=REPLYHI, topology=PAIR, ok=False, lost=["server"]))
    code, _, err = run(capsys, *RUN, "--runs", str(tmp_path / "runs"))
    assert code == 3
    assert ("error: lost node server during the run: its SSH connection went away (did the "
            "guest die? see consoles/server.log)") in " ".join(err.split())


def test_a_run_whose_lab_cannot_be_removed_fails(capsys: pytest.CaptureFixture[str],
                                                 home: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """All went well but the teardown: a lab left running must fail a CI job."""
    fake_run(monkeypatch, home, cannot_remove)
    code, _, err = run(capsys, *RUN, "--runs", str(tmp_path / "runs"))
    assert code == 3  # the host needs a look, not the experiment
    assert (f"warning: lab {LAB} is not fully removed: cannot destroy domain "
            f"sl-pair-1a2b3c-client (run `lab down {LAB}`)") in " ".join(err.split())


def test_a_run_interrupted_while_its_lab_is_removed_removes_it_whole(
        capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI job's SIGTERM just as the run ends must not leave half a lab behind."""
    removed: list[str] = []

    async def slowly(*_: object, **__: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # lab's own handler cancels the run
        await asyncio.sleep(0.2)
        removed.append(LAB)

    fake_run(monkeypatch, home, slowly)
    code, _, err = run(capsys, *RUN, "--runs", str(tmp_path / "runs"))
    assert (code, removed) == (128 + signal.SIGTERM, [LAB])
    assert err.splitlines()[-2:] == [f"lab {LAB} removed", "terminated"]


def test_a_teardown_that_fails_while_the_run_is_interrupted_is_told(
        capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted_then_stuck(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.2)
        await cannot_remove(*args, **kwargs)

    fake_run(monkeypatch, home, interrupted_then_stuck)
    code, _, err = run(capsys, *RUN, "--runs", str(tmp_path / "runs"))
    assert code == 128 + signal.SIGTERM
    assert f"warning: lab {LAB} is not fully removed: cannot destroy domain" in err


def test_a_run_interrupted_while_its_lab_comes_up_leaves_a_report(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def up(*_: object, **__: object) -> LabState:
        os.kill(os.getpid(), signal.SIGTERM)  # a CI job's time is up
        await asyncio.sleep(5)
        raise AssertionError("not cancelled")

    monkeypatch.setattr("lab.cli.run.bring_up", up)
    code, out, _ = run(capsys, *RUN, "--runs", str(tmp_path / "runs"))
    assert code == 128 + signal.SIGTERM
    [run_dir] = (tmp_path / "runs").iterdir()
    assert out == f"{run_dir}\n"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["interrupted"], summary["failures"]) == (
        True, ["interrupted before its first step"])
    assert {e["detail"] for e in summary["expectations"]} == {
        "not checked: the run was interrupted"}


def test_run_names_input_mistakes_as_such(capsys: pytest.CaptureFixture[str],
                                          home: Path, booted: list[str]) -> None:
    """Files given the wrong way round, a mistyped lab: bad input (2), not a host to look
    at (3), and nothing boots."""
    assert run(capsys, "run", REPLYHI, PAIR) == (2, "", (
        f"error: {REPLYHI} is a playbook and {PAIR} is not (hint: the topology comes "
        f"first: lab run {PAIR} {REPLYHI})\n"))
    assert run(capsys, "run", REPLYHI, REPLYHI) == (2, "", (
        f"error: {REPLYHI} and {REPLYHI} are both playbooks (hint: give a topology, then a "
        "playbook: lab run topologies/pair.yaml playbooks/replyhi.yaml)\n"))
    assert run(capsys, "run", PAIR, PAIR)[2].startswith(
        f"error: {PAIR} and {PAIR} are both topologies (hint: ")
    # A mistyped path is not a file of the wrong kind.
    assert run(capsys, "run", PAIR, "playbooks/replyh.yaml") == (2, "", (
        "error: playbooks/replyh.yaml: file not found (hint: check the path)\n"))
    code, _, err = run(capsys, "run", "--lab", "pair-ffffff", REPLYHI)
    assert code == 2 and err.startswith("error: no lab named 'pair-ffffff'")
    assert booted == []


def test_run_refuses_a_runs_directory_it_cannot_write_in(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        booted: list[str]) -> None:
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anyway: refuse as the kernel would refuse a user
        def refused(*_: object, **__: object) -> str:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        monkeypatch.setattr(tempfile, "mkdtemp", refused)
    assert run(capsys, *RUN, "--runs", str(runs)) == (2, "", (
        f"error: --runs {runs}: cannot make a run directory in it: Permission denied "
        f"{RUNS_HINT}\n"))
    assert booted == []


def record_topology(home: Path, rename: dict[str, str] | None = None) -> None:
    """What `lab up` records of the lab's topology (pair.yaml, nodes renamed)."""
    data = load_topology(ROOT / PAIR).to_dict()
    for node in data["nodes"]:
        node["name"] = (rename or {}).get(node["name"], node["name"])
    (home / "labs" / LAB / TOPOLOGY_FILE).write_text(json.dumps(data))


def test_run_on_a_lab_takes_the_topology_it_came_up_with(
        capsys: pytest.CaptureFixture[str], home: Path) -> None:
    save_lab(home)
    # Not the file, which may have changed since: here its nodes have other names.
    record_topology(home, rename={"client": "alpha", "server": "beta"})
    code, _, err = run(capsys, "run", "--lab", LAB, REPLYHI)
    assert code == 2
    assert "steps[3].run: template error: 'dict object' has no attribute 'server' " \
        "(hint: nodes: alpha, beta)" in err


def test_run_on_a_lab_refuses_a_set_only_its_topology_takes(
        capsys: pytest.CaptureFixture[str], home: Path) -> None:
    save_lab(home)
    record_topology(home)
    assert run(capsys, "run", "--lab", LAB, REPLYHI, "--set", "memory=512")[::2] == (2, (
        f"error: --set memory: no variable of that name in {REPLYHI} (lab {LAB} keeps the "
        "topology it came up with) (hint: the variables these files take: count, port)\n"))


def test_run_on_a_lab_whose_guests_are_gone_says_so_before_any_step(
        capsys: pytest.CaptureFixture[str], home: Path, host_uri: str, tmp_path: Path) -> None:
    save_lab(home, uri=host_uri)  # libvirt runs the server only
    record_topology(home)
    code, out, err = run(capsys, "run", "--lab", LAB, REPLYHI, "--runs", str(tmp_path / "runs"))
    gone = (f"lab {LAB}: client not running (the host rebooted, or a guest died) (hint: "
            f"lab down {LAB}; then lab run TOPOLOGY PLAYBOOK)")
    assert (code, err) == (3, f"error: {gone}\n")
    # As when a lab does not come up: a CI job finds a report that says why.
    [run_dir] = (tmp_path / "runs").iterdir()
    assert out == f"{run_dir}\n"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["failures"] == [gone]
    assert {s["status"] for s in summary["steps"]} == {"skipped"}
    assert f'<error message="{gone}">' in (run_dir / "junit.xml").read_text()


def test_run_on_a_lab_without_its_topology_says_so(capsys: pytest.CaptureFixture[str],
                                                   home: Path) -> None:
    save_lab(home)
    code, _, err = run(capsys, "run", "--lab", LAB, REPLYHI)
    assert code == 2
    assert err.startswith(f"error: lab {LAB}: its topology cannot be read from ")


def verb_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              *verb: str) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as caught:
        main([*verb, "--help"])
    assert caught.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("verb", ["validate", "run", "report"])
def test_long_descriptions_are_wrapped(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    text = verb_help(capsys, monkeypatch, verb)
    description = text.split("\n\n")[1].splitlines()
    assert len(description) > 1
    assert max(len(line) for line in description) <= 80
    # Examples are kept as written, one per line.
    assert f"\n  lab {verb} " in text.split("examples:")[1]


def test_run_names_its_files_as_its_usage_does(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    text = verb_help(capsys, monkeypatch, "run")
    assert text.startswith("usage: lab run [options] TOPOLOGY PLAYBOOK\n"
                           "       lab run [options] --lab NAME PLAYBOOK\n")
    assert "\n  [TOPOLOGY] PLAYBOOK   a topology file and a playbook file; with --lab" in text
    assert "FILE" not in text


def option_help(text: str, option: str) -> str:
    """The help of one option or positional, its lines joined."""
    lines = text.split(f"\n  {option}", 1)[1].splitlines()
    rest = [lines[0], *itertools.takewhile(lambda line: line.startswith("        "), lines[1:])]
    return " ".join(" ".join(rest).split())


@pytest.mark.parametrize(("verb", "option", "says"), [
    (("validate",), "--set KEY=VALUE", "(repeatable; VALUE is YAML, so 512 is a number)"),
    (("up",), "--set KEY=VALUE", "(repeatable; VALUE is YAML, so 512 is a number)"),
    (("run",), "--set KEY=VALUE", "(repeatable; VALUE is YAML, so 512 is a number)"),
    (("exec",), "--timeout SECONDS",
     "kill the command if it runs longer than this (exit 255; default: no limit)"),
    (("cp",), "SRC", "a local path, or NODE:PATH to pull from"),
    (("cp",), "DST", "a local path, or NODE:PATH to push to (NODE: alone is the home directory)"),
    (("image", "build"), "NAME", "recipe name, e.g. debian-12 (see `lab image list`)"),
    (("up",), "--mirror URL", "(default: $LAB_DEBIAN_MIRROR or the host's apt sources)"),
])
def test_every_option_says_what_it_does(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, verb: tuple[str, ...],
                                        option: str, says: str) -> None:
    assert says in option_help(verb_help(capsys, monkeypatch, *verb), option)


@pytest.mark.parametrize("verb", [("status",), ("doctor",), ("image",), ("image", "list"),
                                  ("exec",), ("ssh",), ("cp",), ("down",), ("image", "build")])
def test_every_verb_ends_with_examples_one_per_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        verb: tuple[str, ...]) -> None:
    help_text = verb_help(capsys, monkeypatch, *verb)
    heading, _, examples = help_text.rpartition("\n\n")[2].partition("\n")
    assert heading in ("examples:", "example:"), help_text
    lines = examples.splitlines()
    assert lines and all(line.startswith(f"  lab {verb[0]}") for line in lines), help_text


def test_a_step_line_says_where_it_ran_once(capsys: pytest.CaptureFixture[str],
                                            home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    book_file = tmp_path / "book.yaml"
    book_file.write_text("name: lines\nsteps:\n  - {node: server, deploy: hello}\n"
                         "  - {name: say hi, node: client, run: 'true', background: hi}\n"
                         "  - {wait: hi}\n")

    async def ran(book: Playbook, *_: object, on_step: StepSink, **__: object) -> RunSummary:
        for step in book.steps:
            result = StepResult.of(step)
            result.status, result.nodes = "ok", result.nodes or ["client"]  # the handle's
            on_step(result)
        return RunSummary(lab=LAB, playbook=str(book_file), topology=PAIR, ok=True)

    fake_run(monkeypatch, home, removed_at_once)
    monkeypatch.setattr("lab.cli.run.run_playbook", ran)
    code, _, err = run(capsys, "run", PAIR, str(book_file), "--runs", str(tmp_path / "runs"))
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith("[")] == [
        "[1/3] deploy hello to server: ok 0.0 s",
        "[2/3] say hi (client): ok 0.0 s",
        "[3/3] wait for hi (client): ok 0.0 s"]


async def test_a_long_step_says_every_while_that_it_is_still_running(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI log must not stay silent through a step of minutes."""
    monkeypatch.setattr(run_module, "STILL_RUNNING", 0.05)
    book = load_playbook(Path(REPLYHI), load_topology(Path(PAIR)))
    printer = run_module._StepPrinter(book)
    step = StepResult.of(book.steps[0])
    step.status = "running"
    printer(step)
    await asyncio.sleep(0.13)
    step.status, step.seconds = "ok", 0.13
    printer(step)
    await asyncio.sleep(0.1)  # nothing more once it ended
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == ["[1/8] deploy replyhi to server: running, 0 s"] * 2
    assert lines[2:] == ["[1/8] deploy replyhi to server: ok 0.1 s"]


@pytest.mark.parametrize(("argv", "said"), [
    (("exec", "--timeout", "0", "client", "--", "true"), "must be more than 0 seconds, got 0"),
    (("up", "pair.yaml", "--timeout", "-5"), "must be more than 0 seconds, got -5"),
    (("run", "a.yaml", "b.yaml", "--timeout", "nan"),
     "expected a finite number of seconds, got nan"),
    (("up", "pair.yaml", "--timeout", "inf"), "expected a finite number of seconds, got inf"),
    (("exec", "--timeout", "soon", "client", "--", "true"),
     "expected a number of seconds, got 'soon'"),
])
def test_a_timeout_is_a_finite_number_of_seconds_above_zero(capsys: pytest.CaptureFixture[str],
                                                     argv: tuple[str, ...], said: str) -> None:
    _, err = refused(capsys, argv)
    assert err.splitlines()[-1] == f"lab {argv[0]}: error: argument --timeout: {said}"


@pytest.mark.parametrize(("argv", "prog"), [(("up", "a.yaml", "b.yaml"), "lab up"),
                                            (("validate", "--bogus"), "lab validate"),
                                            (("image", "list", "extra"), "lab image list")])
def test_a_stray_argument_is_refused_with_the_verbs_usage(
        capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], prog: str) -> None:
    _, err = refused(capsys, argv)
    assert err.startswith(f"usage: {prog} ")
    assert err.splitlines()[-1] == f"{prog}: error: unrecognized arguments: {argv[-1]}"


def test_a_run_s_summary_counts_events_of_every_node_and_says_where_the_reports_are(
        capsys: pytest.CaptureFixture[str]) -> None:
    summary = RunSummary(lab="l", playbook="p.yaml", topology="t.yaml", nodes={
        n: NodeRun("debian-11", "5.10") for n in ("client", "router", "server")},
        event_counts={"client": {"func_entry": 40, "syscall_entry": 12},
                      "server": {"func_entry": 70}})
    run_module._print_summary(summary, Path("runs/l-1"))
    err = capsys.readouterr().err
    assert "events: client 52, router none, server 70\n" in err  # a node nothing traced too
    assert err.endswith("reports: runs/l-1/report.html (a browser), timeline.txt, "
                        "trace.json (ui.perfetto.dev), connections.json\n")


def test_a_lab_home_that_is_a_file_is_refused(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("")
    for given in (home, home / "sub"):  # or where it would be made
        monkeypatch.setenv("LAB_HOME", str(given))
        assert run(capsys, "status") == (2, "", (
            f"error: LAB_HOME={given}: {home} is not a directory (hint: point it at a "
            "directory, or unset it for the default)\n"))
