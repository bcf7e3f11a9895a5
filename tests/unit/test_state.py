"""Lab state files: what `lab down`, `lab status` and `lab exec` find on disk."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

import pytest

from lab.errors import LabError, LabInUse, LabNotFound
from lab.paths import Paths
from lab.ssh import Endpoint
from lab.state import STATE_FILE, LabState, NetworkState, NodeState, StateStore

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2bzpYMVUGgdhJ7aOnUzNIs2i/tRzyDtQRYG1oXw8ab"


def lab_state(name: str, *, booted: bool = True) -> LabState:
    def node(node: str, port: int) -> NodeState:
        return NodeState(domain=f"sl-{name}-{node}", image="debian-11",
                         kernel_release="5.10.0-28-amd64", ssh_host="127.0.0.1", ssh_port=port,
                         host_key=KEY if booted else None,
                         console_log=f"/labs/{name}/{node}.console.log", role=node,
                         addresses=[f"10.0.1.{port % 100}/24"])
    return LabState(
        name=name, topology="topologies/pair.yaml", uri="test:///default",
        created_at="2024-05-01T12:00:00Z", status="up" if booted else "creating", accel="tcg",
        nodes={"client": node("client", 40010), "server": node("server", 40020)},
        networks={"lan": NetworkState(name=f"sl-{name}-lan", bridge="sl1a2b3c-1")})


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(Paths(tmp_path / "home"))


def test_save_then_load_gives_the_same_state(store: StateStore) -> None:
    state = lab_state("pair-1a2b3c")
    store.save(state)
    path = store.paths.labs / "pair-1a2b3c" / STATE_FILE
    assert json.loads(path.read_text())["nodes"]["server"]["ssh_port"] == 40020
    assert store.load("pair-1a2b3c") == state


def test_save_replaces_the_file_and_leaves_no_temporary(store: StateStore) -> None:
    state = lab_state("pair-1a2b3c", booted=False)
    store.save(state)
    state.status = "up"
    state.nodes["server"].host_key = KEY
    store.save(state)
    assert store.load("pair-1a2b3c").status == "up"
    assert [p.name for p in (store.paths.labs / "pair-1a2b3c").iterdir()] == [STATE_FILE]


def test_names_and_all(store: StateStore) -> None:
    assert store.names() == []
    assert store.all() == []
    for name in ("tri-00ff00", "pair-1a2b3c"):
        store.save(lab_state(name))
    # A lab directory without a state file (say, a half-removed lab) is not a lab.
    (store.paths.labs / "pair-999999").mkdir()
    assert store.names() == ["pair-1a2b3c", "tri-00ff00"]
    assert [s.name for s in store.all()] == ["pair-1a2b3c", "tri-00ff00"]
    store.remove("pair-1a2b3c")
    assert store.names() == ["tri-00ff00"]


def test_resolve_with_no_lab(store: StateStore) -> None:
    with pytest.raises(LabNotFound) as caught:
        store.resolve(None)
    assert str(caught.value) == "no lab is up (hint: start one with `lab up TOPOLOGY`)"


def test_resolve_the_only_lab(store: StateStore) -> None:
    store.save(lab_state("pair-1a2b3c"))
    assert store.resolve(None).name == "pair-1a2b3c"
    assert store.resolve("").name == "pair-1a2b3c"


def test_resolve_with_several_labs_needs_a_name(store: StateStore) -> None:
    for name in ("tri-00ff00", "pair-1a2b3c"):
        store.save(lab_state(name))
    with pytest.raises(LabNotFound) as caught:
        store.resolve(None)
    assert str(caught.value) == ("2 labs are up: pair-1a2b3c, tri-00ff00 "
                                 "(hint: choose one with --lab NAME)")
    assert store.resolve("tri-00ff00").name == "tri-00ff00"


def test_a_lab_still_being_created_is_not_up(store: StateStore) -> None:
    store.save(lab_state("pair-1a2b3c").model_copy(update={"status": "creating"}))
    with pytest.raises(LabNotFound) as caught:
        store.resolve(None)
    assert str(caught.value) == (
        "no lab is up (hint: pair-1a2b3c is not up yet; if its `lab up` was stopped, "
        "remove it: lab down pair-1a2b3c)")
    store.save(lab_state("tri-00ff00"))
    assert store.resolve(None).name == "tri-00ff00"  # the only one that is up


def test_unknown_name(store: StateStore) -> None:
    store.save(lab_state("pair-1a2b3c"))
    with pytest.raises(LabNotFound) as caught:
        store.resolve("pair-000000")
    assert str(caught.value) == ("no lab named 'pair-000000' "
                                 "(hint: `lab status` lists the labs that are up)")


@pytest.mark.parametrize("name", ["..", "../pair-1a2b3c", "pair", "Pair-1a2b3c"])
def test_a_name_that_is_no_lab_name_is_no_lab(store: StateStore, name: str) -> None:
    with pytest.raises(LabNotFound, match=r"^no lab named "):
        store.load(name)
    with pytest.raises(ValueError, match=r"^not a lab name: "):
        store.paths.lab_dir(name)


def test_a_directory_not_named_as_a_lab_is_no_lab(store: StateStore) -> None:
    store.save(lab_state("pair-1a2b3c"))
    (store.paths.labs / "notes").mkdir()
    (store.paths.labs / "notes" / STATE_FILE).write_text("{}")
    assert store.names() == ["pair-1a2b3c"]


def _edited(**changes: str) -> str:
    """A state file edited by hand to send lab elsewhere."""
    data = lab_state("x").model_dump()
    if "ssh_host" in changes:
        data["nodes"]["client"]["ssh_host"] = changes["ssh_host"]
    data.update({k: v for k, v in changes.items() if k != "ssh_host"})
    return json.dumps(data)


@pytest.mark.parametrize("content", ["", "{not json", '{"name": "x"}', "[]",
                                     json.dumps({**lab_state("x").model_dump(), "extra": 1}),
                                     _edited(ssh_host="192.0.2.7"),
                                     _edited(uri="qemu+ssh://192.0.2.7/system")],
                         ids=["empty", "syntax", "incomplete", "not-an-object", "unknown-field",
                              "ssh-elsewhere", "libvirt-elsewhere"])
def test_corrupt_state_is_an_error_naming_the_file(store: StateStore, content: str) -> None:
    store.save(lab_state("pair-1a2b3c"))
    path = store.paths.labs / "pair-1a2b3c" / STATE_FILE
    path.write_text(content)
    with pytest.raises(LabError) as caught:
        store.load("pair-1a2b3c")
    assert not isinstance(caught.value, LabNotFound)
    assert caught.value.message.startswith(f"{path}: unreadable lab state (")
    assert "\n" not in caught.value.message
    assert caught.value.hint == "remove the lab with `lab down pair-1a2b3c`"
    # Listing skips it rather than failing every other lab, and says which it skipped.
    store.save(lab_state("tri-00ff00"))
    assert [s.name for s in store.all()] == ["tri-00ff00"]
    assert list(store.unreadable()) == ["pair-1a2b3c"]
    assert store.names() == ["pair-1a2b3c", "tri-00ff00"]


def test_endpoint_of_a_booted_node() -> None:
    state = lab_state("pair-1a2b3c")
    assert state.endpoint("server") == Endpoint("127.0.0.1", 40020, KEY)
    assert state.endpoints() == {"client": Endpoint("127.0.0.1", 40010, KEY),
                                 "server": Endpoint("127.0.0.1", 40020, KEY)}


def test_endpoint_of_an_unknown_node() -> None:
    with pytest.raises(LabNotFound) as caught:
        lab_state("pair-1a2b3c").endpoint("router")
    assert str(caught.value) == ("lab pair-1a2b3c has no node 'router' "
                                 "(hint: its nodes: client, server)")


def test_endpoint_of_a_node_that_has_not_booted() -> None:
    state = lab_state("pair-1a2b3c", booted=False)
    with pytest.raises(LabError) as caught:
        state.endpoint("server")
    assert not isinstance(caught.value, LabNotFound)
    assert str(caught.value) == (
        "node server of lab pair-1a2b3c has not booted "
        "(hint: the lab is creating; `lab down pair-1a2b3c` and up again)")
    with pytest.raises(LabError):
        state.endpoints()


def test_a_lab_in_use_is_refused_to_another_holder_until_let_go(store: StateStore) -> None:
    with store.in_use("pair-1a2b3c"):
        store.save(lab_state("pair-1a2b3c"))
        with pytest.raises(LabInUse, match=rf"^lab pair-1a2b3c is in use by process "
                                           rf"{os.getpid()} \(lab"), store.in_use("pair-1a2b3c"):
            pass
    with store.in_use("pair-1a2b3c"):  # let go: the next holder has it
        assert store.load("pair-1a2b3c").name == "pair-1a2b3c"


def test_holding_a_lab_that_never_came_to_be_leaves_nothing(store: StateStore) -> None:
    with store.in_use("pair-1a2b3c"):
        pass  # `lab up` failed before it recorded anything
    assert not store.paths.lab_dir("pair-1a2b3c").exists()
    assert store.names() == []


def test_asking_whether_a_lab_is_held_keeps_no_one_from_holding_it(store: StateStore) -> None:
    """`lab status` asks (a shared lock for a moment) as `lab down` takes the lab: down
    waits the moment out, and once let go no holder is named any more."""
    store.save(lab_state("pair-1a2b3c"))
    lock = store.paths.lab_dir("pair-1a2b3c") / "lock"
    with store.in_use("pair-1a2b3c"):
        assert store.held("pair-1a2b3c")
    assert not store.held("pair-1a2b3c") and lock.read_text() == ""
    fd = os.open(lock, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # as held() does, let go 30 ms later
    threading.Timer(0.03, os.close, (fd,)).start()
    with store.in_use("pair-1a2b3c"):
        pass
