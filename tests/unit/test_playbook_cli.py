"""`lab validate` with playbooks, through the real entry point: pairing, output, errors."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from lab.cli.main import main

ROOT = Path(__file__).parents[2]
PAIR_OK = "topologies/pair.yaml: ok (2 nodes, 1 network)\n"


@pytest.fixture(autouse=True)
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch copy of topologies/ and playbooks/."""
    shutil.copytree(ROOT / "topologies", tmp_path / "topologies")
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_playbook_with_its_topology(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "topologies/pair.yaml", "playbooks/replyhi.yaml") == (0, PAIR_OK + (
        "playbooks/replyhi.yaml: ok with topologies/pair.yaml (8 steps, 3 expectations)\n"), "")


def test_every_example_against_topology_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "playbooks/udp.yaml", "playbooks/bulk.yaml",
                         "--topology", "topologies/pair.yaml")
    assert (code, err) == (0, "")
    assert out == PAIR_OK + (
        "playbooks/udp.yaml: ok with topologies/pair.yaml (8 steps, 4 expectations)\n"
        "playbooks/bulk.yaml: ok with topologies/pair.yaml (8 steps, 3 expectations)\n")


def test_playbooks_are_checked_against_every_topology(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topologies/pair.yaml", "topologies/triangle.yaml",
                       "playbooks/replyhi6.yaml")
    assert code == 0
    assert out.splitlines()[2:] == [
        "playbooks/replyhi6.yaml: ok with topologies/pair.yaml (8 steps, 4 expectations)",
        "playbooks/replyhi6.yaml: ok with topologies/triangle.yaml (8 steps, 4 expectations)",
    ]


def test_set_reaches_topology_and_playbook(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("topologies/pair.yaml", "playbooks/concurrent.yaml")
    assert run(capsys, *argv, "--set", "connections=200", "--set", "memory=512")[0] == 0
    code, _, err = run(capsys, *argv, "--set", "port=99999")
    assert (code, err) == (2, "error: playbooks/concurrent.yaml:29: steps[4].wait_port.port: "
                              "must be at most 65535, got 99999 (from --set port=99999)\n")
    # With a topology and a playbook, every file `lab run` reads: refused as it refuses.
    code, _, err = run(capsys, *argv, "--set", "colour=red")
    assert (code, err) == (2, "error: --set colour: no variable of that name in "
                              "topologies/pair.yaml or playbooks/concurrent.yaml (hint: the "
                              "variables these files take: connections, image, memory, port)\n")
    # A topology alone: the --set may be meant for a playbook.
    code, _, err = run(capsys, argv[0], "--set", "port=1")
    assert (code, err) == (0, "warning: --set port: no file uses or declares this variable\n")


def test_issues_of_every_file_once(capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.yaml").write_text(textwrap.dedent("""\
        name: bad
        steps:
          - node: sever
            run: "true"
          - wait: nothing
        """))
    code, out, err = run(capsys, "topologies/pair.yaml", "topologies/triangle.yaml", "bad.yaml",
                         "missing.yaml")
    assert code == 2
    assert out == PAIR_OK + "topologies/triangle.yaml: ok (3 nodes, 2 networks)\n"
    assert err.splitlines() == [  # missing.yaml counts as a topology: it cannot be read
        "error: missing.yaml: file not found (hint: check the path)",
        "error: bad.yaml:3: steps[0].node: unknown node 'sever' (hint: did you mean 'server'?)",
        "error: bad.yaml:5: steps[1].wait: unknown handle 'nothing' "
        "(hint: start a command with background: NAME on a run step first)",
    ]


def test_programs_are_compiled(capsys: pytest.CaptureFixture[str]) -> None:
    """A C program that would stop `lab run` stops `lab validate`, at its deploy step; the
    same program deployed twice is said once."""
    Path("mine.c").write_text("int main(void) {\n  return nope;\n}\n")
    Path("book.yaml").write_text(textwrap.dedent("""\
        name: mine
        steps:
          - {node: server, deploy: ./mine.c}
          - {node: client, deploy: replyhi}
          - {node: client, deploy: ./mine.c}
        """))
    code, out, err = run(capsys, "topologies/pair.yaml", "book.yaml")
    assert (code, out) == (2, PAIR_OK)
    assert err.startswith(f"error: book.yaml:3: steps[0].deploy: program mine does not "
                          f"compile: {Path('mine.c').resolve()}:2:10: error: 'nope' undeclared")
    assert len(err.splitlines()) == 1


def test_compiler_warnings_are_shown_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    """Not only when the program is first built: the binary is cached, its warnings too."""
    Path("mine.c").write_text("int main(void) {\n  int unused;\n  return 0;\n}\n")
    Path("book.yaml").write_text("name: mine\nsteps:\n  - {node: server, deploy: ./mine.c}\n")
    for _ in range(2):
        code, out, err = run(capsys, "topologies/pair.yaml", "book.yaml")
        assert (code, out.splitlines()[-1]) == (
            0, "book.yaml: ok with topologies/pair.yaml (1 step, 0 expectations)")
        assert err == (f"warning: book.yaml:3: steps[0].deploy: program mine: "
                       f"{Path('mine.c').resolve()}:2:7: unused variable 'unused' "
                       "[-Wunused-variable]\n")


def test_a_broken_topology_skips_its_playbooks_and_says_so(
        capsys: pytest.CaptureFixture[str]) -> None:
    Path("broken.yaml").write_text("name: broken\nnodes: {}\n")
    code, out, err = run(capsys, "-t", "broken.yaml", "playbooks/replyhi.yaml")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "warning: playbooks/replyhi.yaml: not checked, as broken.yaml has errors; "
        "fix them first",
        "error: broken.yaml:2: nodes: must not be empty"]
    # Checked against the topology that is fine, a playbook says nothing of the other.
    code, out, err = run(capsys, "broken.yaml", "topologies/pair.yaml", "playbooks/replyhi.yaml")
    assert code == 2 and "replyhi.yaml: ok with topologies/pair.yaml" in out
    assert "not checked" not in err
    # lab run says so too, before anything boots.
    assert main(["run", "broken.yaml", "playbooks/replyhi.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "warning: playbooks/replyhi.yaml: not checked, as broken.yaml has errors; "
        "fix them first",
        "error: broken.yaml:2: nodes: must not be empty"]


@pytest.mark.parametrize(("argv", "message"), [
    (("playbooks/replyhi.yaml",),
     "error: playbook playbooks/replyhi.yaml needs a topology for its facts "
     "(hint: lab validate topologies/pair.yaml playbooks/replyhi.yaml)"),
    (("--topology", "playbooks/udp.yaml", "playbooks/replyhi.yaml"),
     "error: --topology playbooks/udp.yaml is a playbook "
     "(hint: give the topology the playbooks run on)"),
    (("--schema", "playbok"),
     "error: --schema playbok: no such kind of file (hint: one of: topology, playbook)"),
    (("--schema", "playbook", "playbooks/replyhi.yaml"),
     "error: --schema takes no FILE (hint: lab validate --schema > schema.json)"),
])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                      message: str) -> None:
    assert run(capsys, *argv) == (2, "", message + "\n")


def test_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--schema", "playbook") == (
        0, (ROOT / "playbooks" / "schema.json").read_text(), "")
    assert run(capsys, "--schema", "topology") == (
        0, (ROOT / "topologies" / "schema.json").read_text(), "")


def test_a_set_of_a_fact_is_named_so_and_never_blamed(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    book = tmp_path / "shadow.yaml"
    book.write_text('name: s\nsteps:\n  - {node: client, run: "ping {{ nodes.server.ipv4 }}",'
                    ' timeout: "{{ nodes.server.ipv4 }}"}\n')
    code, _, err = run(capsys, "topologies/pair.yaml", str(book), "--set", "nodes=3")
    assert code == 2 and err.endswith(
        "steps[0].timeout: expected a number, got '10.0.1.10'\n")  # the fact's, not --set's
    code, _, err = run(capsys, "topologies/pair.yaml", "playbooks/replyhi.yaml",
                       "--set", "nodes=3")
    assert (code, err) == (2, "error: --set nodes: a fact of the topology, which --set "
                              "cannot change (hint: name the variable otherwise, in vars: and "
                              "in the templates)\n")
