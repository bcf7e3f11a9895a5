"""`lab doctor`: check this host can run labs, and say what to do about each problem."""

from __future__ import annotations

import argparse
import grp
import os
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lab.accel import choose_accelerator
from lab.backends.libvirt import LibvirtBackend
from lab.cli.common import Subparsers, add_connect_option, libvirt_uri
from lab.cli.console import out
from lab.errors import LabError
from lab.images.cache import cached_image
from lab.images.recipe import available_names, load_recipe
from lab.paths import Paths

MIN_FREE_BYTES = 2 * 1024**3
KVM_DEVICE = "/dev/kvm"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "doctor",
        description="Check libvirt, QEMU, the accelerator, disk space and the "
                    "image cache, and print what to do about each problem. Exits 1 when a "
                    "check fails.",
        epilog="examples:\n  lab doctor\n  lab doctor --connect qemu:///session")
    add_connect_option(p)
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    paths = Paths.default()
    uri = libvirt_uri(args.connect)
    checks: list[Callable[[], Awaitable[Check]]] = [
        lambda: _libvirt(uri), _qemu, _kvm_device, lambda: _disk(paths),
        lambda: _images(paths), lambda: _accelerator(paths)]
    failed = 0
    for check in checks:
        result = await check()
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        out.print(f"{mark} {result.name}: {result.detail}")
        if not result.ok:
            failed += 1
            out.print(f"      fix: {result.fix}")
    return 1 if failed else 0


async def _libvirt(uri: str) -> Check:
    backend = LibvirtBackend(uri)
    try:
        return Check("libvirt", True, f"{uri} answers (libvirt {await backend.version()})")
    except LabError as exc:
        return Check("libvirt", False, exc.message, exc.hint or "run ./setup")
    finally:
        await backend.close()


async def _qemu() -> Check:
    path = shutil.which("qemu-system-x86_64")
    if path:
        return Check("qemu", True, path)
    return Check("qemu", False, "qemu-system-x86_64 not found",
                 "apt-get install qemu-system-x86 (or run ./setup)")


async def _kvm_device() -> Check:
    """libvirt checks /dev/kvm as its QEMU user (group kvm on Debian).

    When it is root-only, as without udev, libvirt thinks its cached QEMU
    capabilities are stale on every call and starting a domain never returns.
    """
    try:
        st = os.stat(KVM_DEVICE)
    except FileNotFoundError:
        return Check("/dev/kvm", True, "absent: guests run under TCG (software emulation)")
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:  # a group with no name here (a container's host's)
        group = str(st.st_gid)
    mode = stat.S_IMODE(st.st_mode)
    detail = f"owner group {group}, mode {mode:o}"
    if mode & 0o006 == 0o006 or (group == "kvm" and mode & 0o060 == 0o060):
        return Check("/dev/kvm", True, detail)
    return Check("/dev/kvm", False, f"{detail}: libvirt's QEMU user cannot open it, and libvirt "
                                    "then hangs re-probing QEMU",
                 "chgrp kvm /dev/kvm && chmod 660 /dev/kvm (Debian's udev rule; ./setup does it)")


async def _disk(paths: Paths) -> Check:
    probe = paths.home if paths.home.exists() else paths.home.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / 1024**3:.1f} GiB free under {probe}"
    if free >= MIN_FREE_BYTES:
        return Check("disk", True, detail)
    return Check("disk", False, detail, "free at least 2 GiB, or set LAB_HOME elsewhere")


async def _images(paths: Paths) -> Check:
    names = sorted(available_names())
    if not names:
        return Check("images", False, "no image recipes found", "run lab from a socklab checkout")
    try:
        missing = [n for n in names if cached_image(load_recipe(n), paths) is None]
    except LabError as exc:  # a recipe that does not load: this check fails, not doctor
        return Check("images", False, exc.message, exc.hint or "fix the recipe in images/")
    if missing:
        return Check("images", False, f"not built: {', '.join(missing)}",
                     f"lab image build {' '.join(missing)}")
    return Check("images", True, f"built: {', '.join(names)} (in {paths.images})")


async def _accelerator(paths: Paths) -> Check:
    for name in sorted(available_names()):
        try:
            image = cached_image(load_recipe(name), paths)
        except LabError:  # said by the images check
            continue
        if image:
            accel = await choose_accelerator(image.kernel, image.initrd,
                                             paths.home / "accel.json")
            if accel.name == "kvm":
                return Check("accelerator", True, f"KVM ({accel.reason})")
            return Check("accelerator", True, f"TCG, software emulation: slower guests "
                                              f"({accel.reason})")
    return Check("accelerator", False, "cannot probe KVM without a built image",
                 "lab image build")
