"""Loading playbooks: defaults, rendering, --set, tracer settings, programs and paths."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lab.events import Kind
from lab.playbook import (
    Count,
    Deploy,
    Playbook,
    Push,
    Run,
    Sleep,
    Stop,
    TraceStart,
    Wait,
    WaitPort,
    document_kind,
    load_playbook,
    read_playbook,
)
from lab.playbook.plan import DEFAULT_KINDS, Bound, output_matches
from lab.topology import Topology, load_topology
from lab.tracers.ftrace.probes import Adjust

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def pair() -> Topology:
    return load_topology(ROOT / "topologies" / "pair.yaml")


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pair: Topology) -> Any:
    monkeypatch.chdir(tmp_path)

    def load(text: str, name: str = "p.yaml", **kwargs: Any) -> Playbook:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return load_playbook(path, pair, **kwargs)
    return load


def test_step_defaults(load: Any) -> None:
    book = load("""\
        name: p
        steps:
          - node: server
            run: sleep 100
            background: srv
            expect_stdout: "^done$"
          - {node: server, wait_port: 7777}
          - {node: client, run: "false", expect_exit: any}
          - {wait: srv, expect_exit: 3}
          - {node: client, run: "true", background: two}
          - {stop: two}
          - {sleep: 0.5}
        """)
    actions = [s.action for s in book.steps]
    assert actions == [
        Run("sleep 100", timeout=None, expect_exit=0, expect_stdout="^done$", expect_stderr=None,
            background="srv", strace=False),
        WaitPort(7777, "tcp", 30.0),
        Run("false", 30.0, None, None, None, None, False),
        Wait("srv", 30.0, expect_exit=3, expect_stdout="^done$", expect_stderr=None),
        Run("true", None, 0, None, None, "two", False),
        Stop("two", 5.0),
        Sleep(0.5),
    ]
    assert [s.name for s in book.steps] == [
        "start srv on server: sleep 100", "wait for tcp port 7777 on server",
        "run on client: false", "wait for srv", "start two on client: true", "stop two",
        "sleep 0.5 s"]
    assert [s.line for s in book.steps] == [3, 7, 8, 9, 10, 11, 12]
    assert [s.nodes for s in book.steps][:3] == [("server",), ("server",), ("client",)]
    assert book.steps[3].nodes == ()  # the handle knows


def test_command_as_words_is_quoted_for_the_shell(load: Any) -> None:
    book = load("""\
        name: p
        vars: {port: 7777}
        steps:
          - node: client
            run: [sh, -c, "echo it's {{ nodes.server.ipv4 }}", "{{ port }}", 1.5]
        """)
    assert isinstance(book.steps[0].action, Run)
    assert book.steps[0].action.command == "sh -c 'echo it'\"'\"'s 10.0.1.10' 7777 1.5"


def test_nodes_all_and_lists(load: Any) -> None:
    book = load("""\
        name: p
        steps:
          - {nodes: all, run: "true"}
          - {nodes: [server, client], run: "true"}
          - {nodes: [all], run: "true"}
        """)
    assert [s.nodes for s in book.steps] == [("client", "server"), ("server", "client"),
                                            ("client", "server")]


def test_set_overrides_vars_and_reaches_typed_fields(load: Any) -> None:
    text = """\
        name: p
        vars: {port: 7777, count: 1}
        steps:
          - node: server
            wait_port: "{{ port }}"
            timeout: "{{ count * 7 }}"
        """
    book = load(text, overrides={"port": "8000", "count": "3", "other": "x"})
    assert book.steps[0].action == WaitPort(8000, "tcp", 21.0)
    assert book.vars == {"port": 8000, "count": 3}  # not `other`: nothing uses it
    doc = read_playbook(Path("p.yaml"), load_topology(ROOT / "topologies" / "pair.yaml"),
                        overrides={"other": "x", "nodes": "1"})
    # The fact `nodes` shadows a --set of its name: that changes nothing either.
    assert doc.unused_overrides == {"other", "nodes"}


def test_facts_win_over_a_set_of_the_same_name(load: Any) -> None:
    book = load("""\
        name: p
        steps: [{node: client, run: "ping {{ nodes.server.ipv4 }}"}]
        """, overrides={"nodes": "3"})
    assert book.steps[0].action == Run("ping 10.0.1.10", 30.0, 0, None, None, None, False)


def test_lab_name(load: Any) -> None:
    text = "name: p\nsteps: [{node: client, run: 'echo {{ lab.name }}'}]\n"
    assert load(text).lab == "pair"
    book = load(text, lab_name="pair-abcdef")
    assert (book.lab, book.topology) == ("pair-abcdef", "pair")
    assert book.steps[0].action == Run("echo pair-abcdef", 30.0, 0, None, None, None, False)


def test_ftrace_settings_merge_playbook_and_step_changes(load: Any) -> None:
    book = load("""\
        name: p
        tracers:
          ftrace:
            functions: {add: [tcp_rcv_established, tcp_ack], remove: [tcp_fin]}
            syscalls: {add: [poll]}
            buffer_kb: 1024
        steps:
          - {node: server, deploy: replyhi}
          - {node: client, deploy: bulk-send}
          - {node: server, deploy: replyhi}
          - node: server
            trace:
              start: ftrace
              functions: {add: [tcp_fin], remove: [tcp_ack, tcp_close]}
              syscalls: {remove: [read, write]}
        """)
    assert book.ftrace.comms == ("replyhi", "bulk-send")  # deployed programs, once each
    assert book.ftrace.functions == Adjust(("tcp_rcv_established", "tcp_ack"), ("tcp_fin",))
    action = book.steps[3].action
    assert isinstance(action, TraceStart)
    assert action.settings.functions == Adjust(("tcp_rcv_established", "tcp_fin"),
                                                ("tcp_ack", "tcp_close"))
    assert action.settings.syscalls == Adjust(("poll",), ("read", "write"))
    assert (action.settings.buffer_kb, action.settings.comms) == (1024, ("replyhi", "bulk-send"))


def test_a_deployed_program_is_traced_by_the_name_the_kernel_gives_its_process(
        load: Any) -> None:
    """The kernel keeps 15 characters of a process's name: ftrace's filter on a
    longer one would match nothing, and the trace stay empty."""
    script = Path("measure-the-latency.sh")
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    book = load("""\
        name: p
        steps:
          - {node: server, deploy: ./measure-the-latency.sh}
          - {node: server, trace: {start: ftrace}}
        """)
    assert book.ftrace.comms == ("measure-the-lat",)


def test_explicit_comms_replace_the_default(load: Any) -> None:
    book = load("""\
        name: p
        tracers: {ftrace: {comms: [python3]}, strace: {syscalls: ["%network", read]}}
        steps: [{nodes: all, trace: {start: ftrace}}]
        """)
    assert book.ftrace.comms == ("python3",)
    assert book.strace.syscalls == ("%network", "read")
    assert book.ftrace.buffer_kb == 8192


def test_trace_steps_timeouts(load: Any) -> None:
    # Starting defines every probe, stopping reads the whole buffer back: each has a
    # default of its own (the tracer's), and a step's timeout bounds all of it.
    book = load("""\
        name: p
        tracers: {ftrace: {comms: [replyhi]}}
        steps:
          - {nodes: all, trace: {start: ftrace}}
          - {nodes: all, trace: {stop: ftrace}}
          - {nodes: all, trace: {start: ftrace}, timeout: 90}
          - {nodes: all, trace: {stop: ftrace}, timeout: 12.5}
        """)
    assert [(s.action.kind, getattr(s.action, "timeout", None)) for s in book.steps] == [
        ("trace_start", 60.0), ("trace_stop", 300.0), ("trace_start", 90), ("trace_stop", 12.5)]


def test_own_programs_are_found_next_to_the_playbook(load: Any, tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "mine.c").write_text("int main(void) { return 0; }\n")
    script = tmp_path / "exp" / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o755)
    (tmp_path / "exp" / "data.bin").write_bytes(b"\0")
    book = load("""\
        name: p
        steps:
          - {node: server, deploy: ./mine.c}
          - {node: server, deploy: {program: tool.sh, dest: /usr/bin/tool}}
          - {node: server, deploy: hello}
          - {node: client, push: {src: data.bin, dst: /root/data.bin}}
        """, name="exp/p.yaml")
    assert [s.action for s in book.steps] == [
        Deploy("mine", Path("exp/mine.c"), "/opt/socklab/bin/mine", 30.0),
        Deploy("tool.sh", Path("exp/tool.sh"), "/usr/bin/tool", 30.0),
        Deploy("hello", None, "/opt/socklab/bin/hello", 30.0),
        Push(Path("exp/data.bin"), "/root/data.bin", 30.0),
    ]
    assert book.ftrace.comms == ("mine", "tool", "hello")  # as named on the node


def test_expectations(load: Any) -> None:
    book = load("""\
        name: p
        vars: {n: 5}
        steps:
          - {nodes: all, deploy: replyhi}
          - {nodes: all, trace: {start: ftrace}}
          - {node: client, run: "ls", strace: true}
        expect:
          - {node: server, in_order: [__sys_socket, __sys_bind]}
          - {node: server, kind: any, count: {__sys_accept4: "{{ n }}", tcp_close: {min: 1}}}
          - {nodes: all, comm: replyhi, kind: func_return, absent: [__sys_connect]}
          - {name: mine, node: client, tracer: strace, present: [connect]}
        """)
    e = book.expect
    assert [x.name for x in e] == [
        "server has in order __sys_socket, __sys_bind",
        "server counts __sys_accept4 = 5, tcp_close >= 1",
        "client, server (replyhi) has no __sys_connect", "mine"]
    assert e[0].kinds == DEFAULT_KINDS and Kind.FUNC_RETURN not in DEFAULT_KINDS
    assert e[1].kinds == tuple(Kind)
    assert e[1].check == Count((Bound("__sys_accept4", 5, 5), Bound("tcp_close", 1, None)))
    assert (e[2].nodes, e[2].comm, e[2].kinds) == (("client", "server"), "replyhi",
                                                   (Kind.FUNC_RETURN,))
    assert (e[3].tracer, e[3].line) == ("strace", 11)


def test_output_matches_searches_each_line() -> None:
    assert output_matches("^hi$", "hi\nhello: received 1 reply(ies)\n")
    assert not output_matches("^hello$", "hi\nhello: received 1 reply(ies)\n")


@pytest.mark.parametrize(("text", "kind"), [
    ("name: p\nsteps: []\n", "playbook"),
    ("name: t\nnodes: {a: {}}\n", "topology"),
    ("{name: p, steps: [{sleep: 1}]}\n", "playbook"),
    ("name: p\nsteps:\n  - run: [unclosed\n", "playbook"),  # broken YAML: by its keys
    ("name: t\nnodes: {a: {}\n", "topology"),
    ("", "topology"),
    ("name: p\nstep:\n  - sleep: 1\n", "playbook"),  # misspelt: still a playbook's key
    ("name: p\nexpect: []\n", "playbook"),
    ("name: t\nnodes: {a: {}}\nsteps: []\n", "topology"),  # a topology's key wins
    ("name: p\nnotes: x\nsteps: []\n", "playbook"),  # an exact key beats a look-alike
    ("name: p\nnode: a\nsteps: []\n", "playbook"),
])
def test_document_kind(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    assert document_kind(path) == kind
    assert document_kind(tmp_path / "missing.yaml") == "topology"
