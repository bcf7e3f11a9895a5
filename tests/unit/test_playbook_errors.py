# ruff: noqa: E501  (expected messages stay one line each, as printed)
"""Every bad playbook in bad_playbooks/ and the exact lines `lab` prints for it.

Each is loaded against topologies/pair.yaml (nodes client and server, network
lan). Messages are the user interface here: a change in wording shows up as a
diff in this table, on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import InputError
from lab.playbook import load_playbook
from lab.topology import Topology, load_topology

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "bad_playbooks"

CASES = [
    ('actions.yaml', [
        'actions.yaml:3: steps[0]: the step does nothing (hint: give it one action: run, wait, stop, wait_port, push, pull, deploy, trace, sleep)',
        'actions.yaml:6: steps[1].deploy: a step does one thing; this one has run and deploy (hint: split it into two steps)',
        'actions.yaml:9: steps[2].expect_stdout: expect_stdout does not apply to a deploy step (hint: a deploy step takes: node, nodes, timeout)',
        'actions.yaml:12: steps[3].background: background does not apply to a wait_port step (hint: a wait_port step takes: node, nodes, timeout)',
        "actions.yaml:13: steps[4].wait: unknown handle 'x' (hint: start a command with background: NAME on a run step first)",
        'actions.yaml:14: steps[4].node: node does not apply to a wait step (hint: the handle knows where its command runs)',
        'actions.yaml:16: steps[5].timeout: timeout does not apply to a sleep step (hint: a sleep step takes no options)',
        'actions.yaml:17: steps[6].nodes: nodes does not apply to a pull step (hint: pull from one node (node: NAME); one pull step per node)',
    ]),
    ('bad-values.yaml', [
        "bad-values.yaml:1: name: 'Reply Hi' is not a valid playbook name (hint: 1-32 characters: a-z, 0-9 and '-', starting with a letter)",
        'bad-values.yaml:5: steps[0].expect_stdout: invalid regular expression: missing ), unterminated subpattern at position 7 (hint: Python syntax, searched for anywhere in the output (re.search, ^ and $ match at each line))',
        'bad-values.yaml:6: steps[0].expect_stderr: invalid regular expression: nothing to repeat at position 0 (hint: Python syntax, searched for anywhere in the output (re.search, ^ and $ match at each line))',
        'bad-values.yaml:7: steps[0].timeout: must be more than 0 seconds, got 0',
        'bad-values.yaml:8: steps[0].expect_exit: expected an exit status 0-255 or any, got 300 (hint: any accepts every exit status)',
        'bad-values.yaml:10: steps[1].run: a word of the command is true (hint: each word is a string or a number; quote it)',
        'bad-values.yaml:11: steps[1].timeout: must be at most 3600 seconds, got 7200',
        'bad-values.yaml:12: steps[2].sleep: must be at most 300 seconds, got 1000',
        'bad-values.yaml:14: steps[3].wait_port.port: must be at most 65535, got 70000',
        "bad-values.yaml:14: steps[3].wait_port.proto: unknown protocol 'sctp' (hint: known: tcp, udp)",
        "bad-values.yaml:17: steps[4].background: 'Server 1' is not a valid handle (hint: 1-32 characters: a-z, 0-9, '_' and '-', starting with a letter)",
        'bad-values.yaml:19: steps[5].run: the command is empty (hint: e.g. run: uname -r)',
        "bad-values.yaml:21: steps[6].wait_port.port: expected an integer, got '7777/tcp'",
        'bad-values.yaml:23: steps[7].deploy: expected a program or a mapping, got 5 (hint: deploy: hello or {program: ./mine.c, dest: /root/mine})',
        "bad-values.yaml:26: expect[0].kind: unknown event kind 'func_entryy' (hint: did you mean 'func_entry'? known: syscall_entry, syscall_exit, func_entry, func_return, sock_state, tracepoint, any)",
        "bad-values.yaml:27: expect[0].comm: 'replyhi-with-a-long-name' is longer than 15 characters (hint: the kernel truncates process names: use 'replyhi-with-a-')",
        'bad-values.yaml:28: expect[0].present: must not be empty',
    ]),
    ('comm-dest.yaml', [
        """comm-dest.yaml:4: steps[0].deploy.dest: process name 'reply[1]' has [], which ftrace's filter would read as a pattern or a quote: ftrace follows a program by its file name (hint: give it a dest: of another name, or name the processes to trace under tracers.ftrace.comms)""",
    ]),
    ('comm-names.yaml', [
        """comm-names.yaml:4: tracers.ftrace.comms[1]: process name 'reply*' has *, which ftrace's filter would read as a pattern or a quote (hint: name the process without " \\ * ? [ ])""",
        """comm-names.yaml:4: tracers.ftrace.comms[2]: process name 'say"hi' has ", which ftrace's filter would read as a pattern or a quote (hint: name the process without " \\ * ? [ ])""",
    ]),
    ('empty.yaml', [
        'empty.yaml: file is empty (hint: start with the required fields: name, steps)',
    ]),
    ('expect-values.yaml', [
        'expect-values.yaml:4: steps[0].trace.start: ftrace has no process to trace (hint: deploy a program, or name processes under tracers.ftrace.comms)',
        "expect-values.yaml:7: expect[0].in_ordr: unknown field (hint: did you mean 'in_order'?)",
        "expect-values.yaml:9: expect[1].count.__sys_accept4: expected a count or {min: N, max: N}, got 'lots' (hint: e.g. __sys_accept4: 50 or __sys_accept4: {min: 1})",
        'expect-values.yaml:11: expect[2].count.__sys_accept4: a count must be at least 0, got -1',
        "expect-values.yaml:13: expect[3].tracer: unknown tracer 'gdb' (hint: known: ftrace, strace)",
        "expect-values.yaml:14: expect[3].present[0]: 'not a name' is not a valid event name (hint: a function (__sys_bind), a system call (bind) or a tracepoint)",
    ]),
    ('expectations.yaml', [
        'expectations.yaml:8: expect[0]: the expectation checks nothing (hint: give it one check: present, absent, in_order, count)',
        'expectations.yaml:11: expect[1].absent: an expectation checks one thing; this one has present and absent (hint: split it into two expectations)',
        'expectations.yaml:13: expect[2].count.__sys_accept4: min 5 is more than max 2 (hint: swap them)',
        'expectations.yaml:13: expect[2].count.__sys_listen: give min, max or both (hint: e.g. {min: 1} or {min: 2, max: 4})',
        'expectations.yaml:14: expect[3].node: nothing traces node client (hint: start ftrace there (trace: {start: ftrace}) or run a command there with strace: true)',
        'expectations.yaml:17: expect[4].tracer: strace never traces node server (hint: set strace: true on a run step there)',
        'expectations.yaml:19: expect[5].nodes: nothing traces node client (hint: start ftrace there (trace: {start: ftrace}) or run a command there with strace: true)',
        "expectations.yaml:22: expect[6].absent[1]: no tracer of this playbook records 'tcp_v4_conect' on node server (hint: did you mean 'tcp_v4_connect'?)",
        "expectations.yaml:24: expect[7].count.__sys_sokcet: no tracer of this playbook records '__sys_sokcet' on node server (hint: did you mean '__sys_socket'?)",
        "expectations.yaml:26: expect[8].present[0]: no tracer of this playbook records 'tcp_rcv_established' on node server (hint: trace it: tracers: {ftrace: {functions: {add: [tcp_rcv_established]}}} (or syscalls: for a system call))",
    ]),
    ('function-parts.yaml', [
        "function-parts.yaml:3: tracers.ftrace.functions.add[0]: 'tcp_v4_rcv.cold' is not a valid kernel function name (hint: letters, digits and '_', e.g. tcp_v4_connect (a part such as foo.cold has no probe))",
    ]),
    ('removed-events.yaml', [
        "removed-events.yaml:7: expect[0].in_order[1]: no tracer of this playbook records '__sys_bind' on node server (hint: the trace leaves it out (functions: {remove: [__sys_bind]}): keep it, or check another)",
        "removed-events.yaml:8: expect[1].present[0]: no tracer of this playbook records 'bind' on node server (hint: the trace leaves it out (syscalls: {remove: [bind]}): keep it, or check another)",
    ]),
    ('deploy-collision.yaml', [
        'deploy-collision.yaml:5: steps[1].deploy.dest: /opt/socklab/bin/hello on node server already holds another program, deployed on line 4 (hint: give one of them a dest: of its own)',
    ]),
    ('expect-nodes.yaml', [
        "expect-nodes.yaml:7: expect[0].absent[0]: no tracer of this playbook records 'tcp_rcv_established' on node client (hint: ftrace records it on server: add it where client's trace starts too (functions: {add: [tcp_rcv_established]}))",
        "expect-nodes.yaml:8: expect[1].absent[0]: no tracer of this playbook records 'tcp_rcv_establishd' on node client (hint: did you mean 'tcp_rcv_established'?)",
        "expect-nodes.yaml:9: expect[2].comm: ftrace traces no process named 'helo' (hint: did you mean 'hello'? it traces: hello)",
    ]),
    ('expect-strace.yaml', [
        "expect-strace.yaml:9: expect[0].present[0]: no tracer of this playbook records 'recvfrom' on node client (hint: ftrace records it on server: start ftrace on client too, or for a system call: tracers: {strace: {syscalls: [recvfrom]}})",
        "expect-strace.yaml:10: expect[1].absent[0]: no tracer of this playbook records 'tcp_rcv_established' on node client (hint: ftrace records it on server: start ftrace on client too)",
    ]),
    # strace records any system call, but no misspelt one, nor a kernel function.
    ('expect-strace-any.yaml', [
        "expect-strace-any.yaml:5: expect[0].absent[0]: no tracer of this playbook records 'conect' on node client (hint: did you mean 'connect'?)",
        "expect-strace-any.yaml:6: expect[1].absent[0]: no tracer of this playbook records '__sys_connect' on node client (hint: a kernel function, which strace never sees: trace client with ftrace (trace: {start: ftrace}))",
        "expect-strace-any.yaml:7: expect[2].present[0]: no tracer of this playbook records 'tcp_v4_connect' on node client (hint: a kernel function, which strace never sees: trace client with ftrace (trace: {start: ftrace}))",
    ]),
    ('topology-fields.yaml', [
        "topology-fields.yaml:2: defaults: unknown field (hint: a topology's field: the topology is a file of its own, given to lab run before the playbook; a step names its own nodes)",
    ]),
    ('action-shapes.yaml', [
        "action-shapes.yaml:3: steps[0].pull: expected a mapping, got '/tmp/x' (hint: copy a file from one node into the results: {src, dst})",
        "action-shapes.yaml:4: steps[1].trace: expected a mapping, got 'ftrace' (hint: start or stop a tracer: {start: ftrace} or {stop: ftrace})",
    ]),
    ('no-name-and-references.yaml', [
        "no-name-and-references.yaml:2: name: required field missing (hint: playbook name; names the run's results)",
        "no-name-and-references.yaml:3: steps[0].node: unknown node 'sever' (hint: did you mean 'server'?)",
    ]),
    ('handles.yaml', [
        "handles.yaml:3: steps[0].wait: handle 'server' is only started later, on line 6 (hint: move this step after the run step that starts it)",
        "handles.yaml:7: steps[1].timeout: a background command has no timeout: it runs until a wait: or stop: step, or the end of the playbook (hint: give the wait: step the timeout (wait: server, timeout: 30))",
        "handles.yaml:10: steps[2].background: handle 'server' is already used on line 6 (hint: give each background command its own handle)",
        "handles.yaml:11: steps[3].stop: unknown handle 'sever' (hint: did you mean 'server'?)",
        "handles.yaml:13: steps[5].wait: handle 'server' has already ended: stopped on line 12 (hint: wait for or stop a background command once)",
        "handles.yaml:14: steps[6].stop: unknown handle 'client' (hint: handles started so far: server)",
    ]),
    ('lost-deploy.yaml', [
        'lost-deploy.yaml:6: tracers.ftrace.buffer_kb: must be at least 64, got 10',
        "lost-deploy.yaml:8: steps[0].deploy.program: required field missing (hint: A shipped program (replyhi, hello, udpecho, udpsend, concurrent, bulk-send, bulk-recv), or the path of a C source (.c, compiled statically) or of an executable or script; relative paths start from the playbook's directory)",
        'lost-deploy.yaml:11: steps[3].trace.stop: ftrace is not running on node client (hint: start it first: trace: {start: ftrace})',
    ]),
    ('lost-handle.yaml', [
        'lost-handle.yaml:7: steps[0].background: expected a string, got a list',
        "lost-handle.yaml:10: steps[2].run: template error: 'dict object' has no attribute 'carol' (hint: nodes: client, server)",
    ]),
    ('lost-tracer.yaml', [
        "lost-tracer.yaml:6: steps[0].trace.start: unknown tracer 'ftrac' (hint: did you mean 'ftrace'? known: ftrace; strace wraps one command: set strace: true on its run step)",
        "lost-tracer.yaml:10: steps[2].wait: unknown handle 'serv' (hint: did you mean 'srv'?)",
    ]),
    ('no-comms.yaml', [
        'no-comms.yaml:4: steps[0].trace.start: ftrace has no process to trace (hint: deploy a program, or name processes under tracers.ftrace.comms)',
    ]),
    ('one-line.yaml', [
        "one-line.yaml:3: steps[0].wait: handle 'h' is only started later, on line 3 (hint: move this step after the run step that starts it)",
    ]),
    ('paths.yaml', [
        "paths.yaml:4: steps[0].deploy.dest: 'bin/hello' is not an absolute path (hint: paths on a node start with /, e.g. /root/data)",
        "paths.yaml:6: steps[1].push.dst: 'root/data.txt' is not an absolute path (hint: paths on a node start with /, e.g. /root/data)",
        "paths.yaml:8: steps[2].pull.dst: '/tmp/hostname' is not a relative path inside the run's directory (hint: e.g. server/capture.txt: files pulled land in the run's results, next to its traces)",
        "paths.yaml:10: steps[3].pull.src: 'hostname' is not an absolute path (hint: paths on a node start with /, e.g. /root/data)",
        "paths.yaml:10: steps[3].pull.dst: '../hostname' is not a relative path inside the run's directory (hint: e.g. server/capture.txt: files pulled land in the run's results, next to its traces)",
        'paths.yaml:12: steps[4].push.src: must not be empty',
    ]),
    ('programs.yaml', [
        "programs.yaml:4: steps[0].deploy: unknown program 'replhi' (hint: did you mean 'replyhi'? shipped programs: bulk-recv, bulk-send, clocks, concurrent, hello, replyhi, udpecho, udpsend; or a path (./mine.c, ./script.sh))",
        "programs.yaml:6: steps[1].deploy: unknown program 'frobnicate' (hint: shipped programs: bulk-recv, bulk-send, clocks, concurrent, hello, replyhi, udpecho, udpsend; or a path (./mine.c, ./script.sh))",
        "programs.yaml:8: steps[2].deploy: program file not found: ./missing.c (hint: relative paths start from the playbook's directory)",
        'programs.yaml:10: steps[3].deploy.program: data.txt is not executable (hint: chmod +x it, or give a C source (.c), which is compiled for the guest)',
        "programs.yaml:12: steps[4].deploy.program: ../bad_playbooks is a directory, not a file (hint: relative paths start from the playbook's directory)",
        "programs.yaml:16: steps[6].push.src: host file not found: absent.txt (hint: relative paths start from the playbook's directory)",
        'programs.yaml:20: steps[8].pull.dst: host/name is already pulled to on line 17 (hint: give each pulled file its own name)',
    ]),
    ('reserved.yaml', [
        "reserved.yaml:3: vars.nodes: 'nodes' is a topology fact, not a variable (hint: rename it: lab, nodes, networks, roles come from the topology)",
        "reserved.yaml:4: vars.lab: 'lab' is a topology fact, not a variable (hint: rename it: lab, nodes, networks, roles come from the topology)",
    ]),
    ('step-fields.yaml', [
        "step-fields.yaml:5: steps[0].expect_stdot: unknown field (hint: did you mean 'expect_stdout'?)",
        'step-fields.yaml:7: steps[1].wait_port.port: required field missing (hint: port number, 1-65535)',
        "step-fields.yaml:7: steps[1].wait_port.prot: unknown field (hint: did you mean 'proto'?)",
        "step-fields.yaml:9: steps[2].deploy.dst: unknown field (hint: did you mean 'dest'?)",
    ]),
    # A failed template does not hide what else is wrong.
    ('templates-and-more.yaml', [
        "templates-and-more.yaml:4: steps[0].run: template error: 'dict object' has no attribute 'carol' (hint: nodes: client, server)",
        "templates-and-more.yaml:5: steps[1].node: unknown node 'carol' (hint: nodes of topology pair: client, server)",
        "templates-and-more.yaml:7: steps[2].stop: unknown handle 'nosuch' (hint: start a command with background: NAME on a run step first)",
    ]),
    ('templates.yaml', [
        "templates.yaml:6: steps[0].run: template error: 'dict object' has no attribute 'sever' (hint: did you mean 'server'? nodes: client, server)",
        "templates.yaml:8: steps[1].run: template error: 'dict object' has no attribute 'ipv5' (hint: did you mean 'ipv6'?)",
        "templates.yaml:10: steps[2].run: template error: 'dict object' has no attribute 'lna' (hint: did you mean 'lan'? networks: lan)",
        "templates.yaml:12: steps[3].run: template error: 'dict object' has no attribute 'nmae' (hint: did you mean 'name'?)",
        "templates.yaml:16: steps[5].run: undefined variable 'prot' (hint: did you mean 'port'?)",
    ]),
    ('tracer-names.yaml', [
        "tracer-names.yaml:3: tracers.bpftrace: unknown field (hint: did you mean 'ftrace'?)",
        "tracer-names.yaml:5: tracers.ftrace.comms[0]: 'a-very-long-process-name' is longer than 15 characters (hint: the kernel truncates process names: use 'a-very-long-pro')",
        "tracer-names.yaml:8: steps[0].trace.start: unknown tracer 'strace' (hint: did you mean 'ftrace'? known: ftrace; strace wraps one command: set strace: true on its run step)",
        "tracer-names.yaml:10: steps[1].trace.start: unknown tracer 'ftarce' (hint: did you mean 'ftrace'? known: ftrace; strace wraps one command: set strace: true on its run step)",
        'tracer-names.yaml:12: steps[2].trace.stop: expected the name of a tracer, got 1 (hint: known: ftrace)',
    ]),
    # A misspelt system call would trace nothing (and pass an absent check).
    ('syscall-names.yaml', [
        "syscall-names.yaml:3: tracers.ftrace.syscalls.add[0]: 'sys_connect' is not a system call of x86-64 Linux (hint: did you mean 'connect'?)",
        "syscall-names.yaml:3: tracers.ftrace.syscalls.add[2]: 'conect' is not a system call of x86-64 Linux (hint: did you mean 'connect'?)",
        "syscall-names.yaml:3: tracers.ftrace.syscalls.add[3]: 'frobnicate' is not a system call of x86-64 Linux (hint: e.g. accept4, without the sys_ prefix)",
        "syscall-names.yaml:3: tracers.ftrace.syscalls.add[4]: ftrace names system call 'stat' 'newstat' (hint: write newstat)",
        "syscall-names.yaml:4: tracers.strace.syscalls[0]: '%netwrk' is not a class of system calls strace knows (hint: did you mean '%network'?)",
        "syscall-names.yaml:4: tracers.strace.syscalls[1]: 'writ' is not a system call of x86-64 Linux (hint: did you mean 'write'?)",
        "syscall-names.yaml:4: tracers.strace.syscalls[4]: strace names system call 'newstat' 'stat' (hint: write stat)",
    ]),
    ('tracers.yaml', [
        "tracers.yaml:4: tracers.ftrace.functions.remove[0]: 'tcp_rcv_established' is both added and removed (hint: keep it in one of the two lists)",
        'tracers.yaml:9: steps[1].trace.stop: ftrace is not running on node server (hint: start it first: trace: {start: ftrace})',
        'tracers.yaml:13: steps[3].trace.start: ftrace is already running on node client (started on line 10) (hint: stop it before starting it again)',
        'tracers.yaml:15: steps[4].trace: give start or stop, not both (hint: trace: {start: ftrace} or trace: {stop: ftrace})',
        'tracers.yaml:17: steps[5].trace: trace needs start or stop (hint: trace: {start: ftrace} or trace: {stop: ftrace})',
        'tracers.yaml:19: steps[6].trace.syscalls: syscalls applies when a tracer starts (hint: move it to the trace: {start: ...} step, or to tracers:)',
        "tracers.yaml:23: steps[7].trace.functions.remove[0]: function 'tcp_sendmsgs' is not traced by default (hint: did you mean 'tcp_sendmsg'?)",
        "tracers.yaml:23: steps[7].trace.functions.remove[2]: function 'ip_output' is not traced by default (hint: remove takes functions of the default set: __sys_socket, __sys_bind, __sys_listen, __sys_accept4, __sys_connect, __sys_sendto, __sys_recvfrom, __sys_sendmsg, __sys_recvmsg, __sys_shutdown, __inet_bind, inet_csk_listen_start, tcp_v4_connect, tcp_v6_connect, tcp_connect, inet_csk_accept, tcp_sendmsg, tcp_recvmsg, udp_sendmsg, udp_recvmsg, udpv6_sendmsg, udpv6_recvmsg, move_addr_to_user, tcp_fin, tcp_close)",
        "tracers.yaml:24: steps[7].trace.syscalls.remove[0]: system call 'recvmmsg' is not traced by default (hint: did you mean 'recvmsg'?)",
        'tracers.yaml:29: expect[0].tracer: strace never traces node client (hint: set strace: true on a run step there)',
    ]),
    ('required-fields.yaml', [
        "required-fields.yaml:5: steps[0].pull.dst: required field missing (hint: relative path inside the run's results directory)",
        "required-fields.yaml:6: steps[1].node: unknown node 'sever' (hint: did you mean 'server'?)",
        "required-fields.yaml:9: steps[2].push.src: required field missing (hint: host file; relative paths start from the playbook's directory)",
        "required-fields.yaml:12: expect[0].count.__sys_accept4: expected a count or {min: N, max: N}, got 'many' (hint: e.g. __sys_accept4: 50 or __sys_accept4: {min: 1})",
        "required-fields.yaml:13: expect[1].node: unknown node 'clinet' (hint: did you mean 'client'?)",
    ]),
    ('shape-and-references.yaml', [
        "shape-and-references.yaml:7: steps[0].timout: unknown field (hint: did you mean 'timeout'?)",
        "shape-and-references.yaml:8: steps[1].node: unknown node 'sever' (hint: did you mean 'server'?)",
        "shape-and-references.yaml:10: steps[1].timeout: expected a number, got 'soon'",
        "shape-and-references.yaml:11: steps[2].wait: unknown handle 'sleepr' (hint: did you mean 'sleeper'?)",
    ]),
    ('unknown-fields.yaml', [
        "unknown-fields.yaml:2: step: unknown field (hint: did you mean 'steps'?)",
    ]),
    ('unknown-nodes.yaml', [
        "unknown-nodes.yaml:3: steps[0].node: unknown node 'sever' (hint: did you mean 'server'?)",
        "unknown-nodes.yaml:5: steps[1].nodes[1]: unknown node 'clinet' (hint: did you mean 'client'?)",
        'unknown-nodes.yaml:7: steps[2].nodes[1]: node client is listed twice (hint: all already names every node)',
        'unknown-nodes.yaml:10: steps[3].nodes: give node or nodes, not both (hint: node: NAME for one node, nodes: [NAME, ...] or nodes: all for several)',
        'unknown-nodes.yaml:12: steps[4]: which node? none is given (hint: add node: NAME, or nodes: [NAME, ...], or nodes: all)',
        'unknown-nodes.yaml:13: steps[5].nodes: must not be empty (hint: nodes: all for every node)',
        "unknown-nodes.yaml:16: expect[0].node: unknown node 'router' (hint: nodes of topology pair: client, server)",
        'unknown-nodes.yaml:18: expect[1]: which node? none is given (hint: add node: NAME, or nodes: [NAME, ...], or nodes: all)',
    ]),
]


@pytest.fixture(scope="module")
def pair() -> Topology:
    return load_topology(ROOT / "topologies" / "pair.yaml")


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_playbook(name: str, expected: list[str], pair: Topology,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)  # messages then name the file as given: `name.yaml:LINE: ...`
    with pytest.raises(InputError) as caught:
        load_playbook(Path(name), pair)
    assert [str(issue) for issue in caught.value.issues] == expected
    assert str(caught.value).splitlines() == expected  # one line per issue


def test_every_data_file_is_in_the_table() -> None:
    assert sorted(p.name for p in DATA.glob("*.yaml")) == sorted(c[0] for c in CASES)
