"""`bring_up` up to its first domain, on a fake backend: what is recorded and
created when, and what is torn down after a failure or a cancellation."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import pytest

from lab.backends.base import DomainSpec, NetworkSpec, Owned
from lab.errors import BackendError, BootError, LabError, PortTaken
from lab.images.cache import cache_key
from lab.images.recipe import load_recipe
from lab.lifecycle import events as ev
from lab.lifecycle import up
from lab.lifecycle.down import tear_down
from lab.lifecycle.up import UpOptions, bring_up
from lab.paths import Paths
from lab.state import STATE_FILE, LabState, NetworkState, NodeState, StateStore
from lab.topology import Topology, load_topology

RECIPE = """\
name: tiny
suite: bookworm
"""

TOPOLOGY = """\
name: pair
defaults: {image: tiny}
nodes: {client: {}, server: {}}
networks: {lan: {}, wan: {}}
links:
  - {network: lan, nodes: [client, server]}
  - {network: wan, nodes: [client, server]}
"""


class FakeBackend:
    """Records calls; each network takes `network_seconds` to create."""

    uri = "test:///fake"

    def __init__(self, paths: Paths, *, network_seconds: float = 0.0,
                 network_error: BackendError | None = None,
                 start_seconds: dict[str, float] | None = None,
                 destroy_error: BackendError | None = None,
                 port_taken: dict[str, int] | None = None,
                 domain_error: BackendError | None = None) -> None:
        self.paths = paths
        self.network_seconds = network_seconds
        self.network_error = network_error
        self.start_seconds = start_seconds or {}  # node → seconds to start; others fail
        self.destroy_error = destroy_error  # of every network
        self.domain_error = domain_error  # of every domain's removal
        self.port_taken = port_taken or {}  # node → starts whose SSH port QEMU finds taken
        self.ports: list[tuple[str, int]] = []  # (node, SSH port) of each start
        self.calls: list[tuple[str, str]] = []
        self.state_at_network: list[dict[str, Any]] = []

    def _state(self) -> dict[str, Any]:
        (path,) = self.paths.labs.glob(f"*/{STATE_FILE}")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    async def create_network(self, spec: NetworkSpec) -> None:
        self.calls.append(("create_network", spec.name))
        self.state_at_network.append(self._state())
        await asyncio.sleep(self.network_seconds)
        if self.network_error:
            raise self.network_error
        self.calls.append(("network_created", spec.name))

    async def start_domain(self, spec: DomainSpec) -> None:
        self.calls.append(("start_domain", spec.name))
        self.ports.append((spec.node, spec.mgmt.port))
        if self.port_taken.get(spec.node):
            self.port_taken[spec.node] -= 1
            raise PortTaken(f"cannot start node {spec.node}: Could not set up host "
                            f"forwarding rule 'tcp:127.0.0.1:{spec.mgmt.port}-:22'")
        if spec.node not in self.start_seconds:
            raise BackendError("no domains here")
        try:
            await asyncio.sleep(self.start_seconds[spec.node])
        except asyncio.CancelledError:
            self.calls.append(("start_cancelled", spec.name))
            raise
        self.calls.append(("domain_started", spec.name))

    async def destroy_domain(self, name: str) -> bool:
        self.calls.append(("destroy_domain", name))
        if self.domain_error:
            raise self.domain_error
        return False

    async def destroy_network(self, name: str) -> bool:
        self.calls.append(("destroy_network", name))
        if self.destroy_error:
            raise self.destroy_error
        return ("network_created", name) in self.calls

    async def domain_running(self, name: str) -> bool:
        return False

    async def owned(self) -> Owned:
        return Owned({}, {})

    async def close(self) -> None:
        pass


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A home with the tiny image cached (a stand-in kernel and initrd)."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.yaml").write_text(RECIPE)
    monkeypatch.setenv("LAB_IMAGES_DIR", str(recipes))
    paths = Paths(tmp_path / "home")
    image = paths.images / f"tiny-{cache_key(load_recipe('tiny'))}"
    image.mkdir(parents=True)
    (image / "manifest.json").write_text(
        json.dumps({"kernel": "vmlinux", "kernel_release": "6.1.0-18-amd64"}))
    (image / "vmlinux").write_bytes(b"")
    (image / "initrd.img").write_bytes(b"\0" * 1024)
    return paths


@pytest.fixture
def topology(tmp_path: Path, paths: Paths) -> Topology:
    path = tmp_path / "pair.yaml"
    path.write_text(TOPOLOGY)
    return load_topology(path, images={"tiny"})


async def test_networks_are_recorded_first_and_created_while_the_nodes_are_prepared(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths, network_seconds=0.05)
    with pytest.raises(BootError, match="no domains here"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    # Named in the state file before libvirt is asked, before any node is.
    for state in backend.state_at_network:
        assert sorted(state["networks"]) == ["lan", "wan"]
        assert state["nodes"] == {}
    kinds = [kind for kind, _ in backend.calls]
    first_domain = kinds.index("start_domain")
    assert kinds[:first_domain].count("network_created") == 2
    # Then torn down: everything, and the state with it.
    assert {name for kind, name in backend.calls if kind == "destroy_network"} == {
        name for kind, name in backend.calls if kind == "create_network"}
    assert not any(paths.labs.iterdir())


async def test_a_failure_while_networks_are_created_tears_down_once_they_exist(
        topology: Topology, paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_key(directory: Path) -> Path:
        raise LabError("no key today")

    monkeypatch.setattr(up, "ensure_lab_keypair", no_key)
    backend = FakeBackend(paths, network_seconds=0.1)
    with pytest.raises(LabError, match="no key today"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    kinds = [kind for kind, _ in backend.calls]
    assert kinds.count("network_created") == 2
    assert kinds.index("destroy_network") > max(
        i for i, kind in enumerate(kinds) if kind == "network_created")
    assert not any(paths.labs.iterdir())


async def test_networks_that_could_not_be_created_are_not_torn_down(
        topology: Topology, paths: Paths, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def no_key(directory: Path) -> Path:
        raise LabError("no key today")

    monkeypatch.setattr(up, "ensure_lab_keypair", no_key)
    # Say libvirt is down: its error must not hide the one that stopped `lab up`.
    backend = FakeBackend(paths, network_error=BackendError("cannot connect to libvirt"))
    with pytest.raises(LabError, match="no key today"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    assert [kind for kind, _ in backend.calls] == ["create_network"] * 2
    gc.collect()  # nor be logged as a task's exception that nobody retrieved
    assert "never retrieved" not in caplog.text


async def test_a_network_error_stops_up_before_any_domain_starts(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths, network_error=BackendError("cannot create network"))
    with pytest.raises(BackendError, match="cannot create network"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    assert "start_domain" not in [kind for kind, _ in backend.calls]


async def test_an_unreachable_libvirt_leaves_no_lab_behind(
        topology: Topology, paths: Paths) -> None:
    """No domain was created, so nothing needs libvirt to go: no lab is left "creating"
    for a `lab down` that could not reach libvirt either."""
    down = BackendError("cannot connect to libvirt")
    backend = FakeBackend(paths, network_error=down, destroy_error=down, domain_error=down)
    with pytest.raises(BackendError, match="cannot connect to libvirt"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    assert [kind for kind, _ in backend.calls] == ["create_network"] * 2
    assert StateStore(paths).names() == []


async def test_a_cancelled_up_lets_the_networks_be_created_then_removes_them(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths, network_seconds=0.2)
    task = asyncio.create_task(bring_up(
        topology, Path("pair.yaml"), backend, paths,
        options=UpOptions(accel="tcg")))
    while not backend.calls:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    kinds = [kind for kind, _ in backend.calls]
    assert kinds.count("network_created") == 2
    assert kinds.count("destroy_network") == 2
    assert kinds.index("destroy_network") > kinds.index("network_created")
    assert not any(paths.labs.iterdir())


async def test_when_one_node_fails_to_start_the_others_stop_before_the_teardown(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths, start_seconds={"server": 0.3})
    with pytest.raises(BootError, match="no domains here"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    kinds = [kind for kind, _ in backend.calls]
    # The server's start was cancelled, and had ended, before anything was removed:
    # no node of the lab comes up behind its teardown.
    assert "domain_started" not in kinds
    assert kinds.index("start_cancelled") < kinds.index("destroy_domain")
    assert not any(paths.labs.iterdir())


async def test_an_interrupt_during_the_teardown_after_a_failure_lets_it_finish(
        topology: Topology, paths: Paths) -> None:
    """Ctrl-C as a failed `lab up` removes its domains: the networks go too, and the
    failure stays the error told."""
    class SlowToDestroy(FakeBackend):
        async def destroy_domain(self, name: str) -> bool:
            self.calls.append(("destroy_domain", name))
            await asyncio.sleep(0.2)  # `virsh destroy` takes seconds
            return False

    backend = SlowToDestroy(paths)
    task = asyncio.create_task(bring_up(topology, Path("pair.yaml"), backend, paths,
                                        options=UpOptions(accel="tcg")))
    while "destroy_domain" not in [kind for kind, _ in backend.calls]:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(BootError, match="no domains here"):
        await task
    assert [kind for kind, _ in backend.calls].count("destroy_network") == 2
    assert not any(paths.labs.iterdir())


async def test_a_failed_teardown_is_told_and_the_failure_of_up_is_the_error(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths, destroy_error=BackendError("cannot destroy network lan"))
    told: list[ev.Event] = []
    with pytest.raises(BootError, match="no domains here"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"), events=told.append)
    [failed] = [e for e in told if isinstance(e, ev.TeardownFailed)]
    assert failed.error == "cannot destroy network lan"
    assert any(paths.labs.iterdir())  # the state stays, for `lab down` to finish


async def test_a_hypervisor_on_another_host_is_refused_before_anything_is_made(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths)
    backend.uri = "qemu+ssh://lab-host/system"
    with pytest.raises(BackendError, match="on another host"):
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    assert backend.calls == []
    assert not paths.labs.exists() or not any(paths.labs.iterdir())


async def test_an_ssh_port_taken_before_qemu_binds_it_is_chosen_again(
        topology: Topology, paths: Paths) -> None:
    backend = FakeBackend(paths, port_taken={"client": 1})
    with pytest.raises(BootError, match="no domains here"):  # the second start got that far
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    first, second = [port for node, port in backend.ports if node == "client"]
    assert first != second


async def test_ports_taken_again_and_again_fail_the_node(topology: Topology,
                                                         paths: Paths) -> None:
    backend = FakeBackend(paths, port_taken={"client": 3, "server": 3})
    with pytest.raises(BootError, match="host forwarding rule") as caught:
        await bring_up(topology, Path("pair.yaml"), backend, paths,
                       options=UpOptions(accel="tcg"))
    assert caught.value.hint is not None and "run short" in caught.value.hint
    assert len({port for node, port in backend.ports if node == "client"}) == 3


async def test_a_domain_that_cannot_be_removed_leaves_the_networks_to_go_anyway(
        paths: Paths) -> None:
    backend = FakeBackend(paths, domain_error=BackendError("cannot destroy domain a"))
    state = LabState(name="pair-1a2b3c", topology="t.yaml", uri=backend.uri, created_at="",
                     networks={"lan": NetworkState(name="sl-pair-1a2b3c-lan",
                                                   bridge="sl1a2b3c-1")},
                     nodes={"a": NodeState(domain="sl-pair-1a2b3c-a", image="x",
                                           kernel_release="k", ssh_host="127.0.0.1",
                                           ssh_port=1, console_log="c")})
    store = StateStore(paths)
    store.save(state)
    with pytest.raises(BackendError, match="cannot destroy domain a"):
        await tear_down(state, backend, store)
    assert ("destroy_network", "sl-pair-1a2b3c-lan") in backend.calls
    assert store.load("pair-1a2b3c").name == "pair-1a2b3c"  # kept, for lab down
