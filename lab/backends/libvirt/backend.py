"""Networks and domains through libvirt, every call run off the event loop.

Objects are transient: destroying one removes it, so nothing lingers in
libvirt's configuration. Domains carry socklab metadata naming their lab;
networks are recognised by their name and bridge pattern.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import libvirt

from lab.backends.base import (
    DEFAULT_URI,
    METADATA_NAMESPACE,
    DomainSpec,
    NetworkSpec,
    Owned,
    is_local,
)
from lab.errors import BackendError, PortTaken
from lab.log import get_logger
from lab.names import LAB_NAME
from lab.render import render

T = TypeVar("T")
CALL_TIMEOUT = 60.0  # seconds; destroying a domain waits for QEMU to exit (~2 s, up to ~15)
HOSTFWD_REFUSED = "could not set up host forwarding rule"  # QEMU: the SSH port is taken
BRIDGE_PATTERN = re.compile(r"^sl[0-9a-f]{6}-\d+$")

# libvirt prints every error to stderr by default; we report them ourselves.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def _retrieved(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()


class LibvirtBackend:
    """A backend on one libvirt connection, given by URI (never a global)."""

    def __init__(self, uri: str = DEFAULT_URI) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._lock = asyncio.Lock()
        self._stuck = False  # a call did not return within CALL_TIMEOUT
        self._log = get_logger(__name__, uri=uri)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args), which blocks, in a thread of its own, within CALL_TIMEOUT: a daemon
        that stopped answering fails the command instead of hanging it. The thread does
        not keep the process from exiting, should libvirt never return."""
        running: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            running.set_running_or_notify_cancel()
            try:
                running.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller, whatever it is
                running.set_exception(exc)
        threading.Thread(target=work, daemon=True, name="libvirt").start()
        answer = asyncio.wrap_future(running)
        answer.add_done_callback(_retrieved)  # an answer after the deadline: no one waits
        try:
            return await asyncio.wait_for(asyncio.shield(answer), CALL_TIMEOUT)
        except TimeoutError:
            self._stuck = True
            raise BackendError(
                f"libvirt at {self.uri} did not answer within {CALL_TIMEOUT:g} s",
                hint="is libvirtd stuck? `lab doctor` checks it; restart it, then "
                     "`lab down --all` removes what is left") from None

    async def connection(self) -> libvirt.virConnect:
        async with self._lock:
            if self._conn is None:
                try:
                    self._conn = await self._call(libvirt.open, self.uri)
                except libvirt.libvirtError as exc:
                    unknown = exc.get_error_code() == libvirt.VIR_ERR_NO_CONNECT or \
                        "URI" in _msg(exc)  # "unexpected qemu URI path"
                    raise BackendError(
                        f"cannot connect to libvirt at {self.uri}: {_msg(exc)}",
                        hint=f"check the URI: labs run on {DEFAULT_URI}" if unknown else
                        "start the daemons: virtlogd -d && libvirtd -d (or run ./setup)",
                    ) from exc
            return self._conn

    async def version(self) -> str:
        """The daemon's libvirt version, "9.0.0"."""
        conn = await self.connection()
        try:
            number: int = await self._call(conn.getLibVersion)
        except libvirt.libvirtError as exc:
            raise BackendError(f"libvirt at {self.uri} does not answer: {_msg(exc)}") from exc
        return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if not self._stuck:  # a daemon that did not answer would not answer this either
                await self._call(conn.close)

    async def create_network(self, spec: NetworkSpec) -> None:
        conn = await self.connection()
        xml = render("network.xml.j2", net=spec)
        try:
            await self._call(conn.networkCreateXML, xml)
        except libvirt.libvirtError as exc:
            raise BackendError(f"cannot create network {spec.name}: {_msg(exc)}") from exc
        self._log.debug("network %s up on bridge %s", spec.name, spec.bridge)

    async def start_domain(self, spec: DomainSpec) -> None:
        conn = await self.connection()
        xml = domain_xml(spec)
        # Cancelled, the call would still create the domain in its thread, after any
        # teardown: it is let finish, and what it made is destroyed.
        created = asyncio.ensure_future(self._call(conn.createXML, xml, 0))
        try:
            dom = await asyncio.shield(created)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # it failed: nothing to destroy
                await self._call((await created).destroy)
            raise
        except libvirt.libvirtError as exc:
            # QEMU's complaint may come after warnings, and older ones spell it in lower case.
            said = str(exc.get_error_message() or exc).splitlines()
            if taken := [line for line in said if HOSTFWD_REFUSED in line.lower()]:
                raise PortTaken(f"cannot start node {spec.node}: {taken[0].strip()}") from exc
            raise BackendError(f"cannot start node {spec.node}: {_msg(exc)}") from exc
        if is_local(self.uri):
            try:
                await self._call(_quiet_taps, dom)
            except libvirt.libvirtError as exc:
                raise BackendError(f"cannot read node {spec.node}'s devices: {_msg(exc)}") \
                    from exc

    async def destroy_domain(self, name: str) -> bool:
        conn = await self.connection()
        try:
            dom = await self._call(conn.lookupByName, name)
            # Ask first: a transient domain is gone once destroyed.
            persistent = await self._call(dom.isPersistent)
            await self._call(dom.destroy)
            if persistent:
                await self._call(dom.undefine)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise BackendError(f"cannot destroy domain {name}: {_msg(exc)}") from exc
        return True

    async def destroy_network(self, name: str) -> bool:
        conn = await self.connection()
        try:
            net = await self._call(conn.networkLookupByName, name)
            persistent = await self._call(net.isPersistent)
            if await self._call(net.isActive):
                await self._call(net.destroy)
            if persistent:
                await self._call(net.undefine)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return False
            raise BackendError(f"cannot destroy network {name}: {_msg(exc)}") from exc
        return True

    async def domain_running(self, name: str) -> bool:
        conn = await self.connection()
        try:
            dom = await self._call(conn.lookupByName, name)
            return bool(await self._call(dom.isActive))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise BackendError(f"cannot tell whether domain {name} runs: {_msg(exc)}") from exc

    async def owned(self) -> Owned:
        conn = await self.connection()
        return await self._call(_owned, conn)


def domain_xml(spec: DomainSpec) -> str:
    return render("domain.xml.j2", dom=spec, namespace=METADATA_NAMESPACE)


def _owned(conn: libvirt.virConnect) -> Owned:
    domains: dict[str, list[str]] = {}
    for dom in conn.listAllDomains(0):
        try:
            meta = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NAMESPACE, 0)
        except libvirt.libvirtError:
            continue
        lab = ET.fromstring(meta).get("lab")
        if lab and LAB_NAME.fullmatch(lab):  # it names files too: only what we would name
            domains.setdefault(lab, []).append(dom.name())
    networks: dict[str, list[str]] = {}
    for net in conn.listAllNetworks(0):
        try:
            bridge = net.bridgeName()
        except libvirt.libvirtError:
            continue
        if not BRIDGE_PATTERN.match(bridge):
            continue
        # Network names are sl-<lab>-<network>; lab names end in the six hex
        # digits that the bridge name carries too.
        m = re.match(rf"^sl-(.*-{bridge[2:8]})-", net.name())
        if m and LAB_NAME.fullmatch(m.group(1)):
            networks.setdefault(m.group(1), []).append(net.name())
    return Owned(domains, networks)


def _quiet_taps(dom: libvirt.virDomain) -> None:
    """Turn IPv6 off on the host side of the lab's taps: no host chatter in traces."""
    root = ET.fromstring(dom.XMLDesc(0))
    for target in root.findall("./devices/interface/target"):
        dev = target.get("dev", "")
        knob = Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
        if re.fullmatch(r"[\w.-]+", dev) and knob.exists():
            # Without root only trace cleanliness is lost.
            with contextlib.suppress(OSError):
                knob.write_text("1")


def _msg(exc: Exception) -> str:
    text = exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else str(exc)
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else type(exc).__name__
