"""Booting a kernel straight under QEMU, without libvirt, until the console says a line.

Two callers need exactly this and nothing more: the KVM probe, and the boot
benchmark's baseline. Both mirror the machine the libvirt domain template
describes (q35, one vCPU, virtio RNG), so their timings compare.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class DirectBoot:
    seen: bool  # the marker appeared before the deadline
    seconds: float  # from starting QEMU to the marker, the deadline or QEMU's exit
    exited: bool  # QEMU ended on its own
    output: bytes  # the console's last bytes


def qemu_argv(kernel: Path, initrd: Path, *, accel: str, cmdline: str, memory_mib: int = 256,
              extra: Sequence[str] = ()) -> list[str]:
    cpu = "host" if accel == "kvm" else "qemu64"
    return [QEMU, "-machine", "q35", "-accel", accel, "-cpu", cpu, "-m", str(memory_mib),
            "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
            "-device", "virtio-rng-pci", *extra]


async def boot_until(argv: Sequence[str], marker: bytes, *, deadline: float) -> DirectBoot:
    """Run QEMU until `marker` shows on its console, then kill it (by its own PID)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    seen = b""
    exited = False
    try:
        async with asyncio.timeout(deadline):
            while marker not in seen:
                chunk = await proc.stdout.read(4096)
                if not chunk:
                    exited = True
                    break
                seen = (seen + chunk)[-8192:]
    except TimeoutError:
        pass
    finally:
        elapsed = time.monotonic() - started
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    return DirectBoot(marker in seen, elapsed, exited, seen)
