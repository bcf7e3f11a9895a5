"""`lab up`: from a resolved topology to running nodes that answer over SSH.

Stages: record state → networks, while images, keys, accelerator and node
initrds are prepared → domains (in parallel) → ready line on each console →
SSH answers. Any failure tears down what was created; the state file, which
names everything before it is created, lets `lab down` finish the job even if
this process is killed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from lab import ssh
from lab.accel import choose_accelerator
from lab.aio import all_or_cancel, in_thread, to_the_end
from lab.backends.base import (
    Accelerator,
    Backend,
    DomainSpec,
    ForwardSpec,
    NetworkSpec,
    NicSpec,
    is_local,
)
from lab.errors import BackendError, BootError, LabError, NodeError, PortTaken
from lab.files import atomic_write
from lab.images.build import build_image
from lab.images.cache import Image, cached_image
from lab.images.overlay import GuestConfig, GuestLink, write_node_initrd
from lab.images.recipe import load_recipe
from lab.keys import ensure_lab_keypair, public_key_line, write_known_hosts, write_ssh_config
from lab.lifecycle import events as ev
from lab.lifecycle.console import console_tail, wait_for_ready_line
from lab.lifecycle.down import tear_down
from lab.log import get_logger
from lab.names import bridge_name, domain_name, mgmt_mac, network_name, new_lab_name
from lab.paths import Paths
from lab.state import (
    KNOWN_HOSTS,
    SSH_CONFIG,
    TOPOLOGY_FILE,
    LabState,
    NetworkState,
    NodeState,
    StateStore,
)
from lab.topology import Topology
from lab.topology.expand import ROUTER
from lab.topology.routes import routes

MGMT_HOST = "127.0.0.1"
PORT_ATTEMPTS = 3  # starts of a node whose SSH port was taken meanwhile
GUEST_MGMT_ADDRESS = "10.0.2.15/24"  # QEMU user networking's fixed guest address
CMDLINE = "console=ttyS0 panic=-1 quiet"


@dataclass(frozen=True)
class UpOptions:
    timeout: float = 120.0  # seconds until every node answers SSH
    accel: str | None = None  # "kvm" or "tcg" to skip the probe
    mirror: str | None = None
    name: str | None = None  # the lab's name (new_lab_name); a new one by default


async def bring_up(topology: Topology, source: Path, backend: Backend, paths: Paths, *,
                   options: UpOptions = UpOptions(), events: ev.EventSink = ev.ignore,
                   ) -> LabState:
    if not is_local(backend.uri):
        # Guests are reached through ports forwarded on 127.0.0.1, and KVM is probed and
        # images are read here: all on this host.
        raise BackendError(f"{backend.uri} is a hypervisor on another host; labs run on "
                           "this one", hint="use qemu:///system (the default)")
    started = time.monotonic()
    store = StateStore(paths)
    lab = options.name or new_lab_name(topology.name)
    state = LabState(name=lab, topology=str(source), uri=backend.uri,
                     created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    for index, network in enumerate(topology.networks, start=1):
        state.networks[network.name] = NetworkState(
            name=network_name(lab, network.name), bridge=bridge_name(lab, index))
    store.save(state)  # the networks are named before they exist
    log = get_logger(__name__, lab=lab)
    # libvirt creates the networks (~0.1 s) while this thread prepares the nodes.
    networks_up = asyncio.create_task(_create_networks(backend, state))
    booting = False  # from then on, libvirt may have a domain of the lab
    try:
        # What `lab run --lab` runs playbooks against: the topology the lab is made of,
        # not the file, which may be edited meanwhile.
        atomic_write(paths.lab_dir(lab) / TOPOLOGY_FILE,
                     json.dumps(topology.to_dict()).encode(), mode=0o644)
        images = await _images(topology, paths, lab, options, events)
        lab_dir = paths.lab_dir(lab)
        # Files are written in worker threads so that the event loop is free to
        # hand the networks to libvirt as soon as its connection is open.
        key = await in_thread(partial(ensure_lab_keypair, lab_dir))
        first = next(iter(images.values()))
        accel = await choose_accelerator(first.kernel, first.initrd, paths.home / "accel.json",
                                         options.accel)
        events(ev.AcceleratorChosen(lab, accel))
        state.accel = accel.name
        specs = await in_thread(partial(_domain_specs, topology, lab, lab_dir, images=images,
                                        authorized=public_key_line(key), accel=accel))
        for node in topology.nodes:
            spec = specs[node.name]
            state.nodes[node.name] = NodeState(
                domain=spec.name, image=node.image,
                kernel_release=images[node.image].kernel_release,
                ssh_host=spec.mgmt.host, ssh_port=spec.mgmt.port,
                console_log=str(spec.console_log), role=node.role,
                addresses=[str(a) for i in node.interfaces for a in (i.ipv4, i.ipv6) if a])
        store.save(state)  # the domains are named before they exist
        # asyncssh is slow to import (~0.15 s) and first needed once a guest is
        # up: import it in a worker thread while this one only waits on libvirt.
        ssh_loaded = asyncio.create_task(asyncio.to_thread(ssh.preload))
        try:
            # Shielded: a cancelled `lab up` lets libvirt finish (see _tear_down).
            await asyncio.shield(networks_up)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + options.timeout
            booting = True
            await all_or_cancel(*(
                _boot(backend, specs[n.name], key, deadline=deadline, state=state,
                      events=events, ssh_loaded=ssh_loaded)
                for n in topology.nodes))
        finally:
            await asyncio.wait([ssh_loaded])  # no import left running behind us
        endpoints = state.endpoints()
        write_known_hosts(lab_dir / KNOWN_HOSTS, endpoints)
        write_ssh_config(lab_dir / SSH_CONFIG, endpoints, identity_file=key,
                         known_hosts=lab_dir / KNOWN_HOSTS)
        state.status = "up"
        store.save(state)
    except BaseException as exc:
        log.debug("lab up failed (%r); tearing down", exc)
        if not booting:  # its domains were named, never created: libvirt has none to remove
            state.nodes.clear()
        await _undo(exc, state, backend, store, networks_up, events=events)
        raise
    events(ev.LabReady(lab, time.monotonic() - started))
    return state


async def _create_networks(backend: Backend, state: LabState) -> None:
    """Create the lab's networks in parallel; every call has ended when this returns.

    A network that could not be created leaves `state.networks`, so that a
    teardown (after, say, a failed image build) does not ask libvirt, perhaps
    unreachable, about it.
    """
    names = list(state.networks)
    results = await asyncio.gather(*(
        backend.create_network(NetworkSpec(n.name, n.bridge, state.name))
        for n in state.networks.values()), return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        if isinstance(result, Exception):
            del state.networks[name]
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _undo(failure: BaseException, state: LabState, backend: Backend, store: StateStore,
                networks_up: asyncio.Task[None], *, events: ev.EventSink) -> None:
    """Remove what a failed or interrupted `lab up` made, to the end even when it is
    interrupted meanwhile (half a lab must not be left); `failure`, what stopped it,
    stays the one to tell."""
    try:
        await to_the_end(_tear_down(state, backend, store, networks_up))
    except asyncio.CancelledError:
        if not isinstance(failure, Exception):
            raise
    except Exception as failed:
        events(ev.TeardownFailed(state.name, str(failed)))


async def _tear_down(state: LabState, backend: Backend, store: StateStore,
                     networks_up: asyncio.Task[None]) -> None:
    # A network still being created would outlive a teardown that ran before it.
    await asyncio.wait([networks_up])
    if not networks_up.cancelled():
        networks_up.exception()  # retrieved: the error being raised is the one to report
    await tear_down(state, backend, store)


async def _images(topology: Topology, paths: Paths, lab: str, options: UpOptions,
                  events: ev.EventSink) -> dict[str, Image]:
    async def one(name: str) -> tuple[str, Image]:
        recipe = load_recipe(name)
        cached = cached_image(recipe, paths) is not None
        image = await build_image(recipe, paths, mirror=options.mirror,
                                  progress=lambda step: events(ev.ImageStep(lab, name, step)))
        events(ev.ImageReady(lab, name, image.kernel_release, cached))
        return name, image

    names = sorted({node.image for node in topology.nodes})
    return dict(await all_or_cancel(*(one(n) for n in names)))


def _domain_specs(topology: Topology, lab: str, lab_dir: Path, *, images: dict[str, Image],
                  authorized: str, accel: Accelerator) -> dict[str, DomainSpec]:
    hosts = [(str(a.ip), node.name) for node in topology.nodes
             for i in node.interfaces for a in (i.ipv4, i.ipv6) if a]
    specs = {}
    for node in topology.nodes:
        mgmt = ForwardSpec(MGMT_HOST, free_port(), mgmt_mac(node.index))
        links = [GuestLink(mgmt.mac, "mgmt0", [GUEST_MGMT_ADDRESS])]
        links += [GuestLink(i.mac, i.ifname, [str(a) for a in (i.ipv4, i.ipv6) if a])
                  for i in node.interfaces]
        initrd = lab_dir / f"{node.name}.initrd"
        config = GuestConfig(node.name, authorized, links, hosts, forward=node.role == ROUTER,
                             routes=[(str(r.destination), str(r.via))
                                     for r in routes(topology, node)])
        write_node_initrd(images[node.image].initrd, config, initrd)
        specs[node.name] = DomainSpec(
            name=domain_name(lab, node.name), lab=lab, node=node.name,
            memory_mib=node.memory, vcpus=node.vcpus,
            kernel=images[node.image].kernel, initrd=initrd, cmdline=CMDLINE, accel=accel,
            mgmt=mgmt, console_log=lab_dir / f"{node.name}.console.log",
            nics=[NicSpec(network_name(lab, i.network), i.mac) for i in node.interfaces])
    return specs


async def _boot(backend: Backend, spec: DomainSpec, key: Path, *, deadline: float,
                state: LabState, events: ev.EventSink, ssh_loaded: Awaitable[None]) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            await backend.start_domain(spec)
            break
        except PortTaken as exc:  # free when chosen, not when QEMU bound it: another
            if attempt == PORT_ATTEMPTS:
                raise BootError(spec.node, exc.message, hint="ports on 127.0.0.1 run short: "
                                "close what holds them, or retry") from exc
            spec = replace(spec, mgmt=replace(spec.mgmt, port=free_port()))
            state.nodes[spec.node].ssh_port = spec.mgmt.port
        except BackendError as exc:
            raise BootError(spec.node, exc.message, hint=exc.hint) from exc
    get_logger(__name__, lab=spec.lab, node=spec.node).debug(
        "domain started in %.2f s", loop.time() - started)
    events(ev.NodeStarted(spec.lab, spec.node))
    ready = await wait_for_ready_line(
        spec.node, spec.console_log, deadline=deadline,
        alive=lambda: backend.domain_running(spec.name))
    events(ev.NodeBooted(spec.lab, spec.node, loop.time() - started))
    state.nodes[spec.node].host_key = ready.host_key
    endpoint = ssh.Endpoint(spec.mgmt.host, spec.mgmt.port, ready.host_key)
    await ssh_loaded  # see bring_up
    try:
        session = await ssh.wait_until_ready(spec.node, endpoint, key, deadline=deadline)
    except LabError as exc:
        detail = exc.detail if isinstance(exc, NodeError) else exc.message
        raise BootError(spec.node, detail, console_tail=console_tail(spec.console_log),
                        hint=exc.hint) from exc
    await session.close()
    seconds = loop.time() - started
    state.nodes[spec.node].ready_seconds = round(seconds, 3)
    events(ev.NodeReady(spec.lab, spec.node, seconds))


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, for a node's SSH forward."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((MGMT_HOST, 0))
        return int(s.getsockname()[1])
