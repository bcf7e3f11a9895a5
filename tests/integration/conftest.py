"""Real-VM tests: real libvirtd, QEMU, Debian kernels and dropbear in the guests.

`./setup test` installs and starts everything they need; they fail (not
skip) when libvirt is missing, so CI cannot pass hollow.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.vmlab import KERNELS, PAIR, lab, virsh


@pytest.fixture(scope="session", autouse=True)
def libvirt_is_up() -> None:
    try:
        virsh("version")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"libvirt is not reachable ({exc}): run ./setup first")


@pytest.fixture(scope="module", params=sorted(KERNELS))
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A pair lab on each image, shared by a module's tests; (lab name, image)."""
    image = request.param
    name = lab("up", str(PAIR), "--set", f"image={image}").stdout.strip()
    try:
        yield name, image
    finally:
        lab("down", name, check=False)
