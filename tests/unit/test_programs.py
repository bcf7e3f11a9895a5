"""The socket programs: the host-side build and cache, then real runs over loopback.

Every run uses 127.0.0.1 or ::1 only, with ports the kernel handed out, and
every process has a deadline and is killed by its own PID when it overruns.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from lab.errors import ProgramError
from lab.programs import build, build_program, compiler_warnings, shipped_programs

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

SHIPPED = ["bulk-recv", "bulk-send", "clocks", "concurrent", "hello", "replyhi", "udpecho",
           "udpsend"]
RUN_TIMEOUT = 10.0


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bound(port: int, udp: bool) -> bool:
    """Whether a socket listens on (TCP) or is bound to (UDP) `port`, per /proc/net."""
    for table in (("udp", "udp6") if udp else ("tcp", "tcp6")):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and (udp or fields[3] == "0A"):
                return True
    return False


@contextmanager
def server(argv: list[str | Path], port: int, *, udp: bool = False,
           ) -> Iterator[subprocess.Popen[str]]:
    """A server process, ready (bound) on entry, killed by its PID if still running on exit."""
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5
        while not bound(port, udp):
            assert proc.poll() is None, f"server exited: {proc.communicate()}"
            assert time.monotonic() < deadline, "server did not bind in 5 s"
            time.sleep(0.005)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """A server's exit code and output, once it exits by itself."""
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        raise
    return proc.returncode, out, err


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    # subprocess.run kills its own child when the timeout expires.
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cache = tmp_path_factory.mktemp("programs")
    names = shipped_programs()

    async def build_all() -> list[Path]:
        return list(await asyncio.gather(*(build_program(name, cache) for name in names)))

    return dict(zip(names, asyncio.run(build_all()), strict=True))


@pytest.fixture
def count_compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = build._compile

    async def counting(name: str, *args: Any) -> str:
        calls.append(name)
        return await real(name, *args)

    monkeypatch.setattr(build, "_compile", counting)
    return calls


# --- building ---------------------------------------------------------------


def test_shipped_programs_are_listed() -> None:
    assert shipped_programs() == SHIPPED


def test_every_program_builds_static_and_named_like_itself(programs: dict[str, Path]) -> None:
    for name, binary in programs.items():
        assert binary.name == name  # the guest's comm, which tracers filter on
        assert os.access(binary, os.X_OK)
        with binary.open("rb") as f:
            segments = {s["p_type"] for s in ELFFile(f).iter_segments()}
        assert "PT_INTERP" not in segments, f"{name} is dynamically linked"


async def test_unchanged_source_is_not_rebuilt(tmp_path: Path, count_compiles: list[str]) -> None:
    source = tmp_path / "mine.c"
    source.write_text("int main(void) { return 0; }\n")
    first = await build_program(source, tmp_path / "cache")
    mtime = first.stat().st_mtime_ns
    second = await build_program(str(source), tmp_path / "cache")
    assert (second, second.stat().st_mtime_ns) == (first, mtime)
    assert count_compiles == ["mine"]
    assert sorted(p.name for p in first.parent.iterdir()) == ["mine"]  # no temp files left


async def test_changed_source_is_rebuilt(tmp_path: Path, count_compiles: list[str]) -> None:
    source = tmp_path / "mine.c"
    source.write_text("int main(void) { return 0; }\n")
    first = await build_program(source, tmp_path / "cache")
    source.write_text("int main(void) { return 3; }\n")
    second = await build_program(source, tmp_path / "cache")
    assert second != first and first.is_file()
    assert count_compiles == ["mine", "mine"]
    assert subprocess.run([second], timeout=RUN_TIMEOUT).returncode == 3


async def test_compile_error_names_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int main(void)\n{\n    return nope;\n}\n")
    with pytest.raises(ProgramError) as caught:
        await build_program(source, tmp_path / "cache")
    error = caught.value
    assert error.line == 3
    assert error.errors[0].startswith(f"{source}:3:")
    assert f"{source}:3:" in str(error) and "'nope' undeclared" in str(error)
    assert error.hint and "gcc" in error.hint
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


async def test_link_error_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "unlinked.c"
    source.write_text("void missing(void);\nint main(void) { missing(); return 0; }\n")
    with pytest.raises(ProgramError) as caught:
        await build_program(source, tmp_path / "cache")
    assert (caught.value.line, caught.value.reason) == (None, "does not link")
    assert any("undefined reference" in e for e in caught.value.errors)
    assert not any(e.startswith("collect2:") for e in caught.value.errors)  # only says it failed


async def test_warnings_name_the_source_the_binary_is_used_for(tmp_path: Path) -> None:
    """The same text in two places shares one cached binary, and its warnings."""
    text = "int main(void) {\n  int unused;\n  return 0;\n}\n"
    for place in ("a", "b"):
        source = tmp_path / place / "w.c"
        source.parent.mkdir()
        source.write_text(text)
        binary = await build_program(source, tmp_path / "cache")
        assert compiler_warnings(binary, source) == [
            f"{source}:2:7: unused variable 'unused' [-Wunused-variable]"]
    assert len(list((tmp_path / "cache").iterdir())) == 1


async def test_the_linkers_warnings_are_kept_too(tmp_path: Path) -> None:
    """A static binary calling getaddrinfo needs the host's glibc at run time: say so."""
    source = tmp_path / "resolve.c"
    source.write_text('#include <netdb.h>\nint main(void) { struct addrinfo *r; '
                      'return getaddrinfo("x", 0, 0, &r); }\n')
    [warning] = compiler_warnings(await build_program(source, tmp_path / "cache"), source)
    assert warning.startswith("resolve.c:(") and "Using 'getaddrinfo'" in warning


@pytest.mark.parametrize("program", ["nosuch", "missing.c", "notes.txt"])
async def test_unknown_program(tmp_path: Path, program: str) -> None:
    (tmp_path / "notes.txt").write_text("not C\n")
    with pytest.raises(ProgramError) as caught:
        await build_program(tmp_path / program if "." in program else program, tmp_path)
    assert caught.value.hint and "replyhi" in caught.value.hint


# --- running over loopback --------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_replyhi_and_hello(programs: dict[str, Path], address: str) -> None:
    if address == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    port = free_port()
    with server([programs["replyhi"], address, str(port), "2"], port) as srv:
        client = run(programs["hello"], address, str(port), "2")
        assert (client.returncode, client.stdout, client.stderr) == (
            0, "hi\nhi\nhello: received 2 reply(ies)\n", "")
        assert finish(srv) == (0, "replyhi: served 2 connection(s)\n", "")


def test_hello_rejects_a_wrong_reply(programs: dict[str, Path]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"bye")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        client = run(programs["hello"], "127.0.0.1", str(listener.getsockname()[1]))
        thread.join(timeout=5)
    assert (client.returncode, client.stdout) == (1, "bye\n")
    assert 'expected "hi"' in client.stderr


def test_udpecho_and_udpsend(programs: dict[str, Path]) -> None:
    port = free_port(socket.SOCK_DGRAM)
    with server([programs["udpecho"], "127.0.0.1", str(port), "3"], port, udp=True) as srv:
        client = run(programs["udpsend"], "127.0.0.1", str(port), "3")
        assert (client.returncode, client.stdout) == (0, "udpsend: received 3 echo(es)\n")
        assert finish(srv) == (0, "udpecho: echoed 3 datagram(s)\n", "")


def test_udpsend_times_out_without_echo(programs: dict[str, Path]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        client = run(programs["udpsend"], "127.0.0.1", str(silent.getsockname()[1]))
    assert client.returncode == 1
    assert 'no echo of "ping 1" within 3 s' in client.stderr


def test_concurrent_against_replyhi(programs: dict[str, Path]) -> None:
    port = free_port()
    with server([programs["replyhi"], "127.0.0.1", str(port), "50"], port) as srv:
        client = run(programs["concurrent"], "127.0.0.1", str(port), "50")
        assert (client.returncode, client.stdout, client.stderr) == (
            0, "concurrent: 50 of 50 connection(s) succeeded\n", "")
        assert finish(srv) == (0, "replyhi: served 50 connection(s)\n", "")


def test_concurrent_fails_when_refused(programs: dict[str, Path]) -> None:
    client = run(programs["concurrent"], "127.0.0.1", str(free_port()), "3")
    assert (client.returncode, client.stdout) == (1, "concurrent: 0 of 3 connection(s) succeeded\n")
    assert "connection 1: connect: Connection refused" in client.stderr


@pytest.mark.parametrize("chunk", [[], ["1000"]])
def test_bulk_transfer(programs: dict[str, Path], chunk: list[str]) -> None:
    port = free_port()
    with server([programs["bulk-recv"], "127.0.0.1", str(port)], port) as srv:
        client = run(programs["bulk-send"], "127.0.0.1", str(port), "1048576", *chunk)
        assert client.returncode == 0, client.stderr
        assert client.stdout.startswith("bulk-send: sent 1048576 bytes in ")
        assert finish(srv) == (0, "bulk-recv: received 1048576 bytes\n", "")


@pytest.mark.parametrize(("announced", "data", "complaint"), [
    (10, bytes(range(5)) + b"XXXXX", "wrong data at byte 5"),
    (100, bytes(range(50)), "short transfer: 50 of 100 announced bytes"),
])
def test_bulk_recv_verifies(programs: dict[str, Path], announced: int, data: bytes,
                            complaint: str) -> None:
    port = free_port()
    with server([programs["bulk-recv"], "127.0.0.1", str(port)], port) as srv:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(announced.to_bytes(8, "big") + data)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # the receiver's close
        code, out, err = finish(srv)
    assert (code, out) == (1, f"bulk-recv: received {len(data)} bytes\n")
    assert complaint in err


@pytest.mark.parametrize("argv", [
    ["replyhi"], ["hello", "127.0.0.1"], ["udpecho", "127.0.0.1", "1", "2", "3"],
    ["udpsend", "127.0.0.1", "0"], ["concurrent", "127.0.0.1", "1"],
    ["concurrent", "127.0.0.1", "1", "0"], ["concurrent", "127.0.0.1", "1", "1001"],
    ["bulk-recv", "127.0.0.1", "70000"],
    ["bulk-send", "127.0.0.1", "1", "-1"], ["bulk-send", "127.0.0.1", "1", "10", "0"],
    ["hello", "localhost", "1"], ["replyhi", "127.0.0.1", "1", "x"],
])
def test_bad_arguments_print_usage(programs: dict[str, Path], argv: list[str]) -> None:
    result = run(programs[argv[0]], *argv[1:])
    assert (result.returncode, result.stdout) == (2, "")
    assert f"usage: {argv[0]} ADDRESS PORT" in result.stderr
