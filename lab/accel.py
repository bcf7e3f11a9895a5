"""Choose the accelerator by booting a probe guest, not by trusting /dev/kvm.

On a nested or paravirtual host /dev/kvm can exist while guests hang under it.
The probe boots the image's kernel under KVM with a short deadline: a working
KVM guest reaches init well within a second. The verdict is cached per host
boot, so only the first `lab up` after a reboot pays for it. A probe that only
timed out is tried once more (the host may have been busy); a second timeout
in the same boot is kept too.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from lab.backends.base import Accelerator
from lab.direct_boot import QEMU, boot_until, qemu_argv
from lab.errors import UsageError
from lab.files import atomic_write
from lab.images.cpio import CpioWriter
from lab.images.overlay import append_archive
from lab.log import get_logger

PROBE_LINE = b"socklab-probe-ok"
PROBE_DEADLINE = 4.0
KVM_REFUSED = "QEMU could not start a guest under KVM"
TIMED_OUT = "a KVM probe guest did not reach init within {:.0f} s"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

_log = get_logger(__name__)


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


async def choose_accelerator(kernel: Path, initrd: Path, cache: Path,
                             forced: str | None = None) -> Accelerator:
    """KVM when a probe guest boots under it, else TCG; `forced` (or $LAB_ACCEL) decides."""
    source = "--accel" if forced else "LAB_ACCEL"
    match (forced or os.environ.get("LAB_ACCEL") or "").lower():
        case "kvm":
            return Accelerator("kvm", f"chosen by {source}")
        case "tcg":
            return Accelerator("tcg", f"chosen by {source}")
        case "":
            pass
        case other:
            raise UsageError(f"LAB_ACCEL={other}: not an accelerator",
                             hint="kvm or tcg; unset it to let lab up probe for KVM")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accelerator("tcg", "/dev/kvm is missing or not accessible")
    boot_id = _boot_id()
    try:
        cached = json.loads(cache.read_text())
    except (OSError, ValueError):
        cached = None
    this_boot = cached if isinstance(cached, dict) and cached.get("boot_id") == boot_id else {}
    reason = f"{this_boot.get('reason', 'probed')}; probed once per boot"
    match this_boot.get("accel"):
        case "kvm":
            return Accelerator("kvm", reason)
        case "tcg":
            return Accelerator("tcg", reason)
    accel = await probe_kvm(kernel, initrd)
    # Kept until the host reboots when it will not change: not a probe that could not
    # run (QEMU missing), nor one that was only slow once (a busy host).
    verdict: dict[str, object]
    if accel.reason == TIMED_OUT.format(PROBE_DEADLINE):
        before = this_boot.get("timeouts")
        timeouts = (before if isinstance(before, int) else 0) + 1
        if timeouts == 1:  # counted, not kept
            verdict = {"boot_id": boot_id, "timeouts": timeouts}
        else:
            accel = Accelerator("tcg", f"{accel.reason}, twice this boot")
            verdict = {"boot_id": boot_id, "accel": accel.name, "reason": accel.reason}
    elif accel.name == "kvm" or accel.reason == KVM_REFUSED:
        verdict = {"boot_id": boot_id, "accel": accel.name, "reason": accel.reason}
    else:
        return accel
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, (json.dumps(verdict) + "\n").encode(), mode=0o644)
    return accel


async def probe_kvm(kernel: Path, initrd: Path, deadline: float = PROBE_DEADLINE) -> Accelerator:
    if shutil.which(QEMU) is None:
        return Accelerator("tcg", f"{QEMU} not found for the KVM probe")
    with tempfile.TemporaryDirectory(prefix="socklab-probe-") as tmp:
        probe_initrd = Path(tmp) / "initrd"
        _write_probe_initrd(initrd, probe_initrd)
        argv = qemu_argv(kernel, probe_initrd, accel="kvm", cmdline="console=ttyS0 quiet panic=-1")
        boot = await boot_until(argv, PROBE_LINE, deadline=deadline)
    if boot.seen:
        return Accelerator("kvm", f"a KVM probe guest booted in {boot.seconds:.1f} s")
    _log.debug("KVM probe output: %r", boot.output[-500:])
    if boot.exited:
        return Accelerator("tcg", KVM_REFUSED)
    return Accelerator("tcg", TIMED_OUT.format(deadline))


def _write_probe_initrd(base: Path, out: Path) -> None:
    """The image's initrd with /init replaced by a script that reports and powers off."""
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    script = b"#!/bin/busybox sh\n/bin/busybox echo socklab-probe-ok\n/bin/busybox poweroff -f\n"
    cpio.file("init", script, 0o755)
    cpio.close()
    append_archive(base, buf.getvalue(), out)
