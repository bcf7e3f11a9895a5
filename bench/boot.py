"""Boot benchmark: `lab up` of the pair against one bare QEMU boot, in one run.

(a) bare: qemu-system-x86_64 started by hand with the same kernel, initrd,
    machine and accelerator, until the guest prints its ready line;
(b) lab:  `lab up topologies/pair.yaml` as a user runs it, until it returns,
    that is until both nodes answer a command over SSH;
(c) api:  the same through the Python API (`bring_up`), as the test suite and
    nightly runs use it: (b) without the interpreter's start-up.

Rounds alternate (a) and (b) so machine noise hits both alike; the figure
that matters is the ratio of medians. Target: (b) <= 1.3 x (a).

    .venv/bin/python bench/boot.py [--rounds 3] [--image debian-11]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.accel import choose_accelerator
from lab.backends.libvirt import LibvirtBackend
from lab.direct_boot import boot_until, qemu_argv
from lab.images.build import build_image
from lab.images.overlay import GuestConfig, GuestLink, write_node_initrd
from lab.images.recipe import load_recipe
from lab.keys import ensure_lab_keypair, public_key_line
from lab.lifecycle.down import tear_down
from lab.lifecycle.up import CMDLINE, GUEST_MGMT_ADDRESS, bring_up, free_port
from lab.paths import Paths
from lab.state import StateStore
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
PAIR = ROOT / "topologies" / "pair.yaml"
READY = b"socklab-ready"


async def bare_boot(kernel: Path, initrd: Path, accel: str) -> float:
    forward = f"user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:{free_port()}-:22"
    argv = qemu_argv(kernel, initrd, accel=accel, cmdline=CMDLINE, extra=[
        "-netdev", forward,
        "-device", "virtio-net-pci,netdev=mgmt,mac=52:54:00:5c:01:00,romfile="])
    boot = await boot_until(argv, READY, deadline=120)
    if not boot.seen:
        raise RuntimeError(f"bare boot failed: {boot.output[-500:]!r}")
    return boot.seconds


async def api_up(image: str) -> float:
    topology = load_topology(PAIR, overrides={"image": image})
    paths = Paths.default()
    backend = LibvirtBackend()
    try:
        started = time.monotonic()
        state = await bring_up(topology, PAIR, backend, paths)
        elapsed = time.monotonic() - started
        await tear_down(state, backend, StateStore(paths))
    finally:
        await backend.close()
    return elapsed


def lab_up(image: str) -> float:
    started = time.monotonic()
    up = subprocess.run([sys.executable, "-m", "lab.cli.main", "up", "topologies/pair.yaml",
                         "--set", f"image={image}"], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if up.returncode != 0:
        raise RuntimeError(f"lab up failed: {up.stderr}")
    subprocess.run([sys.executable, "-m", "lab.cli.main", "down", up.stdout.strip()],
                   cwd=ROOT, capture_output=True, check=True)
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", default="debian-11")
    args = parser.parse_args()
    paths = Paths.default()
    image = await build_image(load_recipe(args.image), paths)
    accel = await choose_accelerator(image.kernel, image.initrd, paths.home / "accel.json")
    with tempfile.TemporaryDirectory() as tmp:
        key = ensure_lab_keypair(Path(tmp))
        initrd = Path(tmp) / "node.initrd"
        write_node_initrd(image.initrd, GuestConfig(
            "server", public_key_line(key),
            [GuestLink("52:54:00:5c:01:00", "mgmt0", [GUEST_MGMT_ADDRESS])]), initrd)
        bare: list[float] = []
        lab: list[float] = []
        api: list[float] = []
        print(f"image {args.image} (Linux {image.kernel_release}), accelerator {accel.name}")
        for n in range(1, args.rounds + 1):
            bare.append(await bare_boot(image.kernel, initrd, accel.name))
            lab.append(await asyncio.to_thread(lab_up, args.image))
            api.append(await api_up(args.image))
            print(f"round {n}: (a) bare boot {bare[-1]:.2f} s   (b) lab up {lab[-1]:.2f} s   "
                  f"(c) bring_up() {api[-1]:.2f} s")
    b, u, a = statistics.median(bare), statistics.median(lab), statistics.median(api)
    print(f"median: (a) {b:.2f} s   (b) {u:.2f} s   (c) {a:.2f} s")
    print(f"ratio (b)/(a) = {u / b:.2f}   ratio (c)/(a) = {a / b:.2f}   (target <= 1.30)")


if __name__ == "__main__":
    asyncio.run(main())
