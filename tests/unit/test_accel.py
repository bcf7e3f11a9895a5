"""Choosing KVM or TCG: forced choices, /dev/kvm access, and the per-boot probe cache.

No QEMU runs here: `probe_kvm` is replaced by a recorder wherever the choice
would otherwise boot a probe guest, and /dev/kvm access is decided by the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import pytest

import lab.accel
from lab.accel import KVM_REFUSED, choose_accelerator, probe_kvm
from lab.backends.base import Accelerator
from lab.errors import UsageError

KERNEL, INITRD = Path("/images/vmlinux"), Path("/images/initrd.img")


class Probe:
    """Stands in for booting a probe guest; remembers that it was asked."""

    def __init__(self, result: Accelerator) -> None:
        self.result = result
        self.calls: list[tuple[Path, Path]] = []

    async def __call__(self, kernel: Path, initrd: Path) -> Accelerator:
        self.calls.append((kernel, initrd))
        return self.result


@pytest.fixture
def boot_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "boot_id"
    path.write_text("11111111-2222-3333-4444-555555555555\n")
    monkeypatch.setattr(lab.accel, "BOOT_ID", path)
    monkeypatch.delenv("LAB_ACCEL", raising=False)
    return path


def kvm_device(monkeypatch: pytest.MonkeyPatch, *, accessible: bool) -> None:
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if str(path) == "/dev/kvm":
            return accessible
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(os, "access", access)  # what lab.accel calls


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch, boot_id: Path) -> Probe:
    fake = Probe(Accelerator("kvm", "a KVM probe guest booted in 0.4s"))
    monkeypatch.setattr(lab.accel, "probe_kvm", fake)
    kvm_device(monkeypatch, accessible=True)
    return fake


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "home" / "accel.json"


@pytest.mark.parametrize("forced", ["kvm", "tcg"])
async def test_forced_choice_wins(probe: Probe, cache: Path, forced: Literal["kvm", "tcg"],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_ACCEL", "tcg" if forced == "kvm" else "kvm")
    kvm_device(monkeypatch, accessible=False)  # the user knows better
    accel = await choose_accelerator(KERNEL, INITRD, cache, forced)
    assert accel == Accelerator(forced, "chosen by --accel")
    assert probe.calls == [] and not cache.exists()


@pytest.mark.parametrize("value", ["kvm", "tcg"])
async def test_lab_accel_environment(probe: Probe, cache: Path, value: Literal["kvm", "tcg"],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_ACCEL", value)
    accel = await choose_accelerator(KERNEL, INITRD, cache)
    assert accel == Accelerator(value, "chosen by LAB_ACCEL")
    assert probe.calls == [] and not cache.exists()


async def test_inaccessible_dev_kvm_means_tcg_without_probing(
        probe: Probe, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kvm_device(monkeypatch, accessible=False)
    accel = await choose_accelerator(KERNEL, INITRD, cache)
    assert accel == Accelerator("tcg", "/dev/kvm is missing or not accessible")
    assert probe.calls == [] and not cache.exists()


async def test_probe_runs_once_per_boot(probe: Probe, cache: Path, boot_id: Path) -> None:
    first = await choose_accelerator(KERNEL, INITRD, cache)
    assert first == probe.result
    assert probe.calls == [(KERNEL, INITRD)]
    assert json.loads(cache.read_text()) == {
        "boot_id": "11111111-2222-3333-4444-555555555555", "accel": "kvm",
        "reason": "a KVM probe guest booted in 0.4s"}

    again = await choose_accelerator(KERNEL, INITRD, cache)
    assert again.name == "kvm"
    assert again.reason.startswith("a KVM probe guest booted in 0.4s")
    assert again.reason != first.reason  # says it was not probed just now
    assert len(probe.calls) == 1


async def test_a_cached_tcg_verdict_is_kept_too(probe: Probe, cache: Path) -> None:
    probe.result = Accelerator("tcg", KVM_REFUSED)
    await choose_accelerator(KERNEL, INITRD, cache)
    probe.result = Accelerator("kvm", "would have booted")
    accel = await choose_accelerator(KERNEL, INITRD, cache)
    assert accel.name == "tcg"
    assert len(probe.calls) == 1


@pytest.mark.parametrize("reason", ["a KVM probe guest did not reach init within 4 s",
                                    "qemu-system-x86_64 not found for the KVM probe"])
async def test_a_probe_that_was_slow_or_could_not_run_is_tried_again(
        probe: Probe, cache: Path, reason: str) -> None:
    probe.result = Accelerator("tcg", reason)  # a busy host, a QEMU installed later
    await choose_accelerator(KERNEL, INITRD, cache)
    probe.result = Accelerator("kvm", "booted this time")
    assert await choose_accelerator(KERNEL, INITRD, cache) == probe.result
    assert len(probe.calls) == 2


async def test_a_probe_that_timed_out_twice_in_a_boot_is_not_tried_again(
        probe: Probe, cache: Path, boot_id: Path) -> None:
    # KVM that hangs (a nested host) would cost every lab up the probe's deadline.
    probe.result = Accelerator("tcg", "a KVM probe guest did not reach init within 4 s")
    await choose_accelerator(KERNEL, INITRD, cache)
    second = await choose_accelerator(KERNEL, INITRD, cache)
    assert second == Accelerator(
        "tcg", "a KVM probe guest did not reach init within 4 s, twice this boot")
    third = await choose_accelerator(KERNEL, INITRD, cache)
    assert third.name == "tcg" and third.reason.endswith("twice this boot; probed once per boot")
    assert len(probe.calls) == 2
    boot_id.write_text("another boot\n")
    await choose_accelerator(KERNEL, INITRD, cache)
    assert len(probe.calls) == 3


async def test_an_unknown_lab_accel_is_an_error(probe: Probe, cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_ACCEL", "xen")
    with pytest.raises(UsageError, match="LAB_ACCEL=xen: not an accelerator"):
        await choose_accelerator(KERNEL, INITRD, cache)
    monkeypatch.setenv("LAB_ACCEL", "KVM")  # as people write it
    assert (await choose_accelerator(KERNEL, INITRD, cache)).name == "kvm"
    assert probe.calls == []


async def test_a_new_boot_probes_again(probe: Probe, cache: Path, boot_id: Path) -> None:
    await choose_accelerator(KERNEL, INITRD, cache)
    boot_id.write_text("99999999-2222-3333-4444-555555555555\n")
    probe.result = Accelerator("tcg", KVM_REFUSED)
    accel = await choose_accelerator(KERNEL, INITRD, cache)
    assert accel == probe.result
    assert len(probe.calls) == 2
    assert json.loads(cache.read_text())["boot_id"] == "99999999-2222-3333-4444-555555555555"


@pytest.mark.parametrize("content", [
    "", "{", '{"boot_id": "11111111-2222-3333-4444-555555555555"}',
    '{"boot_id": "11111111-2222-3333-4444-555555555555", "accel": "xen", "reason": "?"}',
], ids=["empty", "syntax", "no-verdict", "unknown-accelerator"])
async def test_an_unusable_cache_is_probed_over(probe: Probe, cache: Path, content: str) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text(content)
    assert await choose_accelerator(KERNEL, INITRD, cache) == probe.result
    assert len(probe.calls) == 1
    assert json.loads(cache.read_text())["accel"] == "kvm"


async def test_probe_without_qemu_is_tcg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-system-x86_64 here
    accel = await probe_kvm(KERNEL, INITRD)
    assert accel == Accelerator("tcg", "qemu-system-x86_64 not found for the KVM probe")
