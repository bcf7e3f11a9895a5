"""lab doctor's checks on hosts unlike this one: each says what it finds, none crashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lab.cli import doctor
from lab.paths import Paths


async def test_a_kvm_device_whose_group_has_no_name_here_is_shown_by_number(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a container, whose /dev/kvm belongs to a group of its host."""
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    device.chmod(0o660)
    os.chown(device, -1, 54321)  # a group no name is known for here
    monkeypatch.setattr(doctor, "KVM_DEVICE", str(device))
    check = await doctor._kvm_device()
    assert not check.ok  # group 54321, not kvm: libvirt's QEMU user cannot open it
    assert check.detail.startswith("owner group 54321, mode 660: ")
    assert stat.S_IMODE(device.stat().st_mode) == 0o660


async def test_a_recipe_that_does_not_load_fails_the_images_check_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\nsuite: [not, a, suite]\n")
    monkeypatch.setenv("LAB_IMAGES_DIR", str(tmp_path))
    check = await doctor._images(Paths(tmp_path / "home"))
    assert (check.name, check.ok) == ("images", False)
    assert "broken.yaml:2: suite" in check.detail
