"""`lab validate` through the real entry point: exit codes and output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.cli.main import main

ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch copy of topologies/; image names come from the real images/."""
    shutil.copytree(ROOT / "topologies", tmp_path / "topologies")
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "topologies/pair.yaml", "topologies/triangle.yaml") == (0, (
        "topologies/pair.yaml: ok (2 nodes, 1 network)\n"
        "topologies/triangle.yaml: ok (3 nodes, 2 networks)\n"), "")


def test_every_file_is_checked_and_every_issue_printed(capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.yaml").write_text("name: bad\nnodes:\n  a: {memory: 1}\n  b: {vcpus: 99}\n")
    code, out, err = run(capsys, "bad.yaml", "topologies/pair.yaml", "missing.yaml")
    assert code == 2
    assert out == "topologies/pair.yaml: ok (2 nodes, 1 network)\n"
    assert err.splitlines() == [
        "error: bad.yaml:3: nodes.a.memory: must be at least 128, got 1",
        "error: bad.yaml:4: nodes.b.vcpus: must be at most 8, got 99",
        "error: missing.yaml: file not found (hint: check the path)",
    ]


def test_nodes_with_no_path_between_them_are_a_warning(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The triangle without its router: valid, but client cannot reach server.
    triangle = Path("topologies/triangle.yaml").read_text()
    Path("cut.yaml").write_text(triangle.replace("role: router", "role: relay"))
    assert run(capsys, "cut.yaml") == (0, "cut.yaml: ok (3 nodes, 2 networks)\n", (
        "warning: cut.yaml:17: nodes.client: client has no path to server (hint: link them "
        "to one network, or give a node on both networks role: router)\n"))


def test_debug_after_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "topologies/pair.yaml", "--debug") == (
        0, "topologies/pair.yaml: ok (2 nodes, 1 network)\n", "")


def test_set_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("topologies/pair.yaml", "--set", "memory=512", "--set", "image=debian-12")
    assert run(capsys, *argv)[0] == 0
    code, _, err = run(capsys, "topologies/pair.yaml", "--set", "memory=lots")
    assert (code, err) == (2, "error: topologies/pair.yaml:25: defaults.memory: "
                              "expected an integer, got 'lots' (from --set memory=lots)\n")


def test_unknown_image(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "topologies/pair.yaml", "--set", "image=debian-13")
    assert (code, err) == (2, "error: topologies/pair.yaml:24: defaults.image: unknown image "
                              "'debian-13' (from --set image=debian-13) (hint: did you mean "
                              "'debian-12'? available: debian-11, debian-12)\n")


def test_unused_override_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "topologies/pair.yaml", "--set", "mem=1") == (
        0, "topologies/pair.yaml: ok (2 nodes, 1 network)\n",
        "warning: --set mem: no file uses or declares this variable\n")


@pytest.mark.parametrize(("argv", "message"), [
    ((), "error: no topology FILE given (hint: lab validate topologies/pair.yaml)"),
    (("--set", "memory", "topologies/pair.yaml"),
     "error: --set 'memory': expected KEY=VALUE (hint: e.g. --set memory=512)"),
    (("--schema", "topologies/pair.yaml"),
     "error: --schema takes no FILE (hint: lab validate --schema > schema.json)"),
])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                      message: str) -> None:
    assert run(capsys, *argv) == (2, "", message + "\n")


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--schema")
    assert code == 0
    assert out == (ROOT / "topologies" / "schema.json").read_text()


def test_a_line_number_is_printed_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    # ":100:" is an emoji code to rich: the place of an error must never turn into one.
    Path("long.yaml").write_text("name: long\n" + "#\n" * 97 + "nodes:\n  a: {memory: lots}\n")
    code, _, err = run(capsys, "long.yaml")
    assert (code, err) == (2, "error: long.yaml:100: nodes.a.memory: expected an integer, "
                              "got 'lots'\n")


def test_a_file_s_text_is_quoted_not_obeyed_nor_echoed_whole(
        capsys: pytest.CaptureFixture[str]) -> None:
    # An escape sequence in a key would restyle the terminal (or retitle it); a value of
    # a megabyte would flood it.
    Path("odd.yaml").write_text('name: odd\nnodes:\n  a:\n    "x\\e[31m": 1\n'
                                f"  b: {{role: {'y' * 1_000_000}}}\n")
    code, _, err = run(capsys, "odd.yaml")
    assert (code, err.splitlines()) == (2, [
        "error: odd.yaml:4: nodes.a.x\\x1b[31m: unknown field "
        "(hint: known fields: image, memory, vcpus, role)",
        f"error: odd.yaml:5: nodes.b.role: {'y' * 60!r}… (1000000 characters) is not a valid "
        "role (hint: a short identifier such as client or server)"])
