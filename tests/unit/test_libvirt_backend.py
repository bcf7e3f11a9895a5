"""The libvirt backend on libvirt's own test driver, and its XML against golden files.

Each test opens `test://<tmp>/host.xml`: a test-driver host read from a file,
private to that connection. (`test:///default` is not: every connection in the
process shares one default host until the last of them closes, so a test that
leaks a libvirt object handle would leak its domains into the next test.)
The test driver accepts our domain XML and "runs" it without QEMU; it drops the
qemu:commandline part (management NIC, gdbstub), which the golden files and
the XML tests below check instead.

After a deliberate template change: `pytest --update-golden`, then review the diff.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import libvirt
import pytest

from lab.backends.base import (
    METADATA_NAMESPACE,
    Accelerator,
    DomainSpec,
    ForwardSpec,
    NetworkSpec,
    NicSpec,
)
from lab.backends.libvirt import LibvirtBackend
from lab.backends.libvirt.backend import domain_xml
from lab.errors import BackendError, PortTaken
from lab.lifecycle import events as ev
from lab.lifecycle.down import tear_down
from lab.paths import Paths
from lab.render import render
from lab.state import LabState, NetworkState, NodeState, StateStore

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "libvirt"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"

LAB = "pair-1a2b3c"

TCG_SPEC = DomainSpec(
    name=f"sl-{LAB}-server", lab=LAB, node="server", memory_mib=256, vcpus=1,
    kernel=Path("/var/lib/socklab/images/debian-11-0123456789abcdef/vmlinux"),
    initrd=Path(f"/var/lib/socklab/labs/{LAB}/server.initrd"),
    cmdline="console=ttyS0 panic=-1 quiet",
    accel=Accelerator("tcg", "/dev/kvm is missing or not accessible"),
    mgmt=ForwardSpec("127.0.0.1", 40022, "52:54:00:5c:01:00"),
    console_log=Path(f"/var/lib/socklab/labs/{LAB}/server.console.log"),
    nics=[NicSpec(f"sl-{LAB}-lan", "52:54:00:5c:01:01")],
)

KVM_SPEC = DomainSpec(
    name=f"sl-{LAB}-client", lab=LAB, node="client", memory_mib=512, vcpus=2,
    kernel=Path("/var/lib/socklab/images/debian-12-fedcba9876543210/vmlinux"),
    initrd=Path(f"/var/lib/socklab/labs/{LAB}/client.initrd"),
    cmdline="console=ttyS0 panic=-1 quiet nokaslr",
    accel=Accelerator("kvm", "a KVM probe guest booted in 0.4s"),
    mgmt=ForwardSpec("127.0.0.1", 40023, "52:54:00:5c:00:00"),
    console_log=Path(f"/var/lib/socklab/labs/{LAB}/client.console.log"),
    nics=[NicSpec(f"sl-{LAB}-lan", "52:54:00:5c:00:01"),
          NicSpec(f"sl-{LAB}-wan", "52:54:00:5c:00:02")],
    gdb_port=41234,
)

T = TypeVar("T")

NETWORK = NetworkSpec(f"sl-{LAB}-lan", "sl1a2b3c-1", LAB)


def check_golden(request: pytest.FixtureRequest, name: str, actual: str) -> None:
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert golden.exists(), f"{golden} missing: run pytest --update-golden"
    assert actual == golden.read_text(), f"{golden} differs: run pytest --update-golden if intended"


# Like test:///default: one foreign domain and one foreign network.
HOST_XML = """\
<node>
  <domain type="test">
    <name>test</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
  </domain>
  <network>
    <name>default</name>
    <bridge name="virbr0"/>
  </network>
</node>
"""


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[LibvirtBackend]:
    host = tmp_path / "host.xml"
    host.write_text(HOST_XML)
    b = LibvirtBackend(f"test://{host}")
    try:
        yield b
    finally:
        await b.close()


# --- rendered XML -------------------------------------------------------------

@pytest.mark.parametrize(("spec", "golden"), [(TCG_SPEC, "domain-tcg.xml"),
                                              (KVM_SPEC, "domain-kvm.xml")])
def test_domain_xml_matches_golden(request: pytest.FixtureRequest, spec: DomainSpec,
                                   golden: str) -> None:
    check_golden(request, golden, domain_xml(spec))


def test_network_xml_matches_golden(request: pytest.FixtureRequest) -> None:
    check_golden(request, "network.xml", render("network.xml.j2", net=NETWORK))


def qemu_args(xml: str) -> list[str]:
    root = ET.fromstring(xml)
    return [a.get("value", "") for a in root.iter(f"{{{QEMU_NS}}}arg")]


def test_management_forward_listens_on_loopback_only() -> None:
    args = qemu_args(domain_xml(KVM_SPEC))
    netdev = args[args.index("-netdev") + 1]
    assert netdev == "user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:40023-:22"
    assert args[args.index("-gdb") + 1] == "tcp:127.0.0.1:41234"
    assert "-gdb" not in qemu_args(domain_xml(TCG_SPEC))
    for exposed in ("0.0.0.0", "::", "10.0.2.15"):
        with pytest.raises(ValueError, match="only loopback"):
            ForwardSpec(exposed, 40023, "52:54:00:5c:00:00")


def test_network_has_no_address_and_no_forward() -> None:
    root = ET.fromstring(render("network.xml.j2", net=NETWORK))
    assert root.find("ip") is None and root.find("forward") is None
    bridge = root.find("bridge")
    assert bridge is not None and bridge.get("name") == "sl1a2b3c-1"


def test_special_characters_in_paths_are_escaped() -> None:
    odd = Path("/tmp/a&b <c> \"d\" 'e'/console.log")
    spec = replace(TCG_SPEC, console_log=odd, cmdline="console=ttyS0 x=\"<&>\"")
    root = ET.fromstring(domain_xml(spec))
    log = root.find("./devices/serial/log")
    assert log is not None and log.get("file") == str(odd)
    assert root.findtext("./os/cmdline") == "console=ttyS0 x=\"<&>\""


# --- the test driver ----------------------------------------------------------

async def test_network_is_created_owned_and_destroyed_once(backend: LibvirtBackend) -> None:
    await backend.create_network(NETWORK)
    owned = await backend.owned()
    assert owned.networks == {LAB: [NETWORK.name]}
    assert owned.domains == {}
    conn = await backend.connection()
    net = conn.networkLookupByName(NETWORK.name)
    assert net.bridgeName() == "sl1a2b3c-1"
    assert not net.isPersistent()  # transient: nothing lingers in libvirt's configuration
    assert await backend.destroy_network(NETWORK.name) is True
    assert await backend.destroy_network(NETWORK.name) is False
    assert (await backend.owned()).networks == {}


async def test_creating_a_network_twice_is_a_backend_error(backend: LibvirtBackend) -> None:
    await backend.create_network(NETWORK)
    with pytest.raises(BackendError, match=f"^cannot create network {NETWORK.name}: "):
        await backend.create_network(NETWORK)


async def test_domain_starts_runs_and_is_destroyed_once(backend: LibvirtBackend) -> None:
    await backend.create_network(NETWORK)
    await backend.start_domain(TCG_SPEC)
    assert await backend.domain_running(TCG_SPEC.name) is True
    owned = await backend.owned()
    assert owned.domains == {LAB: [TCG_SPEC.name]}
    # What libvirt kept of our XML: metadata, accelerator, direct kernel boot.
    conn = await backend.connection()
    dom = conn.lookupByName(TCG_SPEC.name)
    assert not dom.isPersistent()
    root = ET.fromstring(dom.XMLDesc(0))
    assert root.get("type") == "qemu"
    meta = root.find(f"./metadata/{{{METADATA_NAMESPACE}}}node")
    assert meta is not None and meta.attrib == {"lab": LAB, "node": "server"}
    assert root.findtext("./os/kernel") == str(TCG_SPEC.kernel)
    assert root.findtext("./os/initrd") == str(TCG_SPEC.initrd)
    assert root.findtext("./os/cmdline") == TCG_SPEC.cmdline
    assert [s.get("network") for s in root.findall("./devices/interface/source")] == [
        f"sl-{LAB}-lan"]
    assert [m.get("address") for m in root.findall("./devices/interface/mac")] == [
        "52:54:00:5c:01:01"]

    assert await backend.destroy_domain(TCG_SPEC.name) is True
    assert await backend.domain_running(TCG_SPEC.name) is False
    assert await backend.destroy_domain(TCG_SPEC.name) is False
    assert (await backend.owned()).domains == {}


async def test_starting_a_domain_twice_is_a_backend_error(backend: LibvirtBackend) -> None:
    await backend.start_domain(KVM_SPEC)
    with pytest.raises(BackendError, match=r"^cannot start node client: "):
        await backend.start_domain(KVM_SPEC)


class SlowStart(LibvirtBackend):
    """libvirt taking its time to create a domain, in its worker thread."""

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if getattr(fn, "__name__", "") == "createXML":
            def slow() -> T:
                time.sleep(0.2)
                return fn(*args)
            return await asyncio.to_thread(slow)
        return await super()._call(fn, *args)


async def test_a_start_cancelled_while_libvirt_creates_the_domain_leaves_none(
        tmp_path: Path) -> None:
    host = tmp_path / "host.xml"
    host.write_text(HOST_XML)
    backend = SlowStart(f"test://{host}")
    try:
        await backend.create_network(NETWORK)
        start = asyncio.create_task(backend.start_domain(TCG_SPEC))
        await asyncio.sleep(0.05)  # libvirt's thread is in createXML
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        await asyncio.sleep(0.3)  # long past the end of libvirt's call
        assert await backend.domain_running(TCG_SPEC.name) is False
        assert (await backend.owned()).domains == {}
    finally:
        await backend.close()


class PortGone(LibvirtBackend):
    """libvirt failing to start a guest because QEMU found its SSH port taken."""

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if getattr(fn, "__name__", "") == "createXML":
            raise libvirt.libvirtError(
                "internal error: qemu unexpectedly closed the monitor: warning: host doesn't "
                "support requested feature\nqemu-system-x86_64: -netdev user,id=mgmt: Could "
                "not set up host forwarding rule 'tcp:127.0.0.1:40022-:22'")
        return await super()._call(fn, *args)


async def test_a_taken_ssh_port_is_told_apart_with_qemus_words(tmp_path: Path) -> None:
    host = tmp_path / "host.xml"
    host.write_text(HOST_XML)
    backend = PortGone(f"test://{host}")
    try:
        with pytest.raises(PortTaken) as caught:
            await backend.start_domain(TCG_SPEC)
    finally:
        await backend.close()
    assert str(caught.value).endswith(
        "Could not set up host forwarding rule 'tcp:127.0.0.1:40022-:22'")


async def test_unknown_domain_is_not_running(backend: LibvirtBackend) -> None:
    assert await backend.domain_running("sl-nope-000000-x") is False


def network(conn: Any, name: str, bridge: str) -> None:
    conn.networkCreateXML(f"<network><name>{name}</name><bridge name='{bridge}'/></network>")


async def test_owned_attributes_networks_by_name_and_bridge(backend: LibvirtBackend) -> None:
    conn = await backend.connection()
    # Lab names that look like other labs' names, or carry hex themselves.
    network(conn, "sl-cafe-0123ab-lan", "sl0123ab-1")
    network(conn, "sl-cafe-0123ab-4d5e6f-lan", "sl4d5e6f-1")
    network(conn, "sl-cafe-0123ab-4d5e6f-back-end", "sl4d5e6f-2")
    network(conn, "sl-abcdef-abcdef-lan", "slabcdef-1")
    # Not socklab's: the test driver's "default", a foreign bridge, a name
    # that is not sl-<lab>-..., and a bridge id that is not the name's lab id.
    network(conn, "sl-pair-1a2b3c-lan", "virbr7")
    network(conn, "other-net", "sl1a2b3c-1")
    network(conn, "sl-pair-1a2b3c-wan", "sl999999-1")
    assert {"default", "other-net"} <= {n.name() for n in conn.listAllNetworks(0)}
    owned = await backend.owned()
    assert {lab: sorted(nets) for lab, nets in owned.networks.items()} == {
        "cafe-0123ab": ["sl-cafe-0123ab-lan"],
        "cafe-0123ab-4d5e6f": ["sl-cafe-0123ab-4d5e6f-back-end", "sl-cafe-0123ab-4d5e6f-lan"],
        "abcdef-abcdef": ["sl-abcdef-abcdef-lan"],
    }


async def test_owned_attributes_domains_by_metadata_only(backend: LibvirtBackend) -> None:
    conn = await backend.connection()
    other = "<domain type='qemu'><name>{}</name><memory>65536</memory>" \
            "<os><type arch='x86_64'>hvm</type></os>{}</domain>"
    conn.createXML(other.format("sl-pair-1a2b3c-impostor", ""), 0)
    conn.createXML(other.format("tagged", "<metadata><x:node xmlns:x='https://example.org/x' "
                                          "lab='pair-1a2b3c'/></metadata>"), 0)
    # Our metadata, but a lab name that is no lab's: `lab down --all` would remove its
    # directory, here the whole socklab home.
    conn.createXML(other.format("sl-x", f"<metadata><s:node xmlns:s='{METADATA_NAMESPACE}' "
                                         "lab='..' node='x'/></metadata>"), 0)
    await backend.start_domain(TCG_SPEC)
    await backend.start_domain(replace(KVM_SPEC, lab="cafe-0123ab", name="sl-cafe-0123ab-client"))
    assert len(conn.listAllDomains(0)) == 6  # "test" from host.xml, and the five above
    owned = await backend.owned()
    assert owned.domains == {LAB: [TCG_SPEC.name], "cafe-0123ab": ["sl-cafe-0123ab-client"]}


async def test_tear_down_removes_the_labs_objects_and_state(backend: LibvirtBackend,
                                                            tmp_path: Path) -> None:
    await backend.create_network(NETWORK)
    await backend.start_domain(TCG_SPEC)
    store = StateStore(Paths(tmp_path / "home"))
    state = LabState(
        name=LAB, topology="pair.yaml", uri=backend.uri, created_at="2024-01-01T00:00:00Z",
        nodes={"server": NodeState(domain=TCG_SPEC.name, image="debian-11", ssh_host="127.0.0.1",
                                   ssh_port=40022, console_log=str(TCG_SPEC.console_log))},
        networks={"lan": NetworkState(name=NETWORK.name, bridge=NETWORK.bridge)})
    store.save(state)
    events: list[ev.Event] = []
    await tear_down(state, backend, store, events.append)
    assert events == [ev.Removed(LAB, "domain", TCG_SPEC.name),
                      ev.Removed(LAB, "network", NETWORK.name)]
    owned = await backend.owned()
    assert (owned.domains, owned.networks) == ({}, {})
    assert store.names() == []
    # Again: nothing left to remove, and no error.
    events.clear()
    await tear_down(state, backend, store, events.append)
    assert events == []


async def test_unreachable_uri_is_a_backend_error_with_a_hint() -> None:
    backend = LibvirtBackend("test:///nonexistent/path.xml")
    with pytest.raises(BackendError) as caught:
        await backend.connection()
    assert caught.value.message.startswith(
        "cannot connect to libvirt at test:///nonexistent/path.xml: ")
    assert "\n" not in caught.value.message
    assert caught.value.hint is not None and "libvirtd" in caught.value.hint
    # Every operation reports the same, not a traceback.
    with pytest.raises(BackendError, match=r"^cannot connect to libvirt"):
        await backend.owned()
    await backend.close()


async def test_version_is_the_daemons_libvirt_release(backend: LibvirtBackend) -> None:
    number = libvirt.getVersion()  # the library's own: the test driver runs in-process
    assert await backend.version() == \
        f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


async def test_a_libvirt_that_stops_answering_fails_the_call_within_its_deadline(
        backend: LibvirtBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung libvirtd: the command fails with what to do, instead of hanging for ever."""
    monkeypatch.setattr("lab.backends.libvirt.backend.CALL_TIMEOUT", 0.2)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        await backend._call(time.sleep, 5)  # as a call into a daemon that never answers
    assert time.monotonic() - started < 1
    assert caught.value.message == f"libvirt at {backend.uri} did not answer within 0.2 s"
    assert caught.value.hint is not None and "lab down --all" in caught.value.hint

    class Hung:  # the connection to that daemon: closing it would wait as long
        def close(self) -> None:
            time.sleep(5)
    backend._conn = Hung()  # type: ignore[assignment]
    started = time.monotonic()
    await backend.close()  # not asked again: it would not answer that either
    assert time.monotonic() - started < 0.1
