"""Builds sharing the images directory: one build of a recipe at a time, images
moved into place whole, earlier builds pruned.

The build itself is a stand-in that writes a small image (a real one needs
Debian packages); everything around it is lab.images.store's own code.
Concurrent builds run in threads, each with its own event loop: a flock is
held by an open file, so two threads contend for it as two processes do.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.images.cache import Image, Manifest, read_image
from lab.images.store import build_once

KEY = "0123456789abcdef"


def write_image(directory: Path, mark: float) -> Path:
    """A complete image whose build_seconds tells which build wrote it."""
    directory.mkdir()
    (directory / "vmlinux").write_bytes(b"kernel")
    (directory / "initrd.img").write_bytes(b"initrd")
    manifest = Manifest(kernel="vmlinux", kernel_release="6.1.0-18-amd64", build_seconds=mark)
    (directory / "manifest.json").write_text(manifest.model_dump_json())
    return directory


class SlowBuild:
    """Builds for `seconds`, and says when the first build has started."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.calls = 0

    async def __call__(self, work: Path) -> Path:
        self.calls += 1
        mark = self.calls
        self.started.set()
        await asyncio.sleep(self.seconds)
        return write_image(work / "image", mark)


def listing(images: Path) -> list[str]:
    return sorted(p.name for p in images.iterdir())


def build_in_thread(images: Path, build: SlowBuild, *, force: bool) -> tuple[Image, list[str]]:
    steps: list[str] = []
    image = asyncio.run(build_once(images, "tiny", KEY, build, force=force,
                                   progress=steps.append))
    return image, steps


@pytest.mark.parametrize("force", [False, True])
def test_parallel_builds_of_a_recipe_take_turns_and_leave_one_image(
        tmp_path: Path, force: bool) -> None:
    images = tmp_path / "images"
    build = SlowBuild(0.3)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(build_in_thread, images, build, force=force)
        assert build.started.wait(5)
        second = pool.submit(build_in_thread, images, build, force=force)
        (image1, steps1), (image2, steps2) = first.result(10), second.result(10)

    assert (steps1, steps2) == ([], ["waiting for another process building it"])
    assert image1.directory == image2.directory == images / f"tiny-{KEY}"
    assert listing(images) == [".tiny.lock", f"tiny-{KEY}"]
    if force:  # built twice, one after the other; the second build's image stays
        assert build.calls == 2
        assert (image1.build_seconds, image2.build_seconds) == (1, 2)
    else:  # the second found the first one's image
        assert build.calls == 1
        assert image1 == image2
    assert read_image("tiny", images / f"tiny-{KEY}") == image2


@pytest.mark.parametrize("force", [False, True])
async def test_an_image_put_in_place_during_the_build_is_kept_unless_forced(
        tmp_path: Path, force: bool) -> None:
    images = tmp_path / "images"
    final = images / f"tiny-{KEY}"

    async def build(work: Path) -> Path:
        write_image(final, 7)  # by a lab that takes no lock
        return write_image(work / "image", 8)

    image = await build_once(images, "tiny", KEY, build, force=force, progress=print)
    assert image.build_seconds == (8 if force else 7)
    assert listing(images) == [".tiny.lock", f"tiny-{KEY}"]
    assert sorted(p.name for p in final.iterdir()) == ["initrd.img", "manifest.json", "vmlinux"]


async def test_an_image_without_a_manifest_is_built_over(tmp_path: Path) -> None:
    images = tmp_path / "images"
    (images / f"tiny-{KEY}").mkdir(parents=True)
    (images / f"tiny-{KEY}" / "initrd.img").write_bytes(b"half removed")
    build = SlowBuild(0)
    image = await build_once(images, "tiny", KEY, build, force=False, progress=print)
    assert (build.calls, image.build_seconds) == (1, 1)
    assert image.initrd.read_bytes() == b"initrd"


async def test_a_build_prunes_the_recipes_older_builds_only(tmp_path: Path) -> None:
    images = tmp_path / "images"
    others = ["tiny-extra-fedcba9876543210", "tinyx-fedcba9876543210", "tiny-notes"]
    for name in ["tiny-fedcba9876543210", *others]:
        (images / name).mkdir(parents=True)
    await build_once(images, "tiny", KEY, SlowBuild(0), force=False, progress=print)
    assert listing(images) == sorted([".tiny.lock", f"tiny-{KEY}", *others])


async def test_a_build_sweeps_what_a_killed_build_of_its_recipe_left_only(
        tmp_path: Path) -> None:
    """A build killed half-way (SIGKILL) leaves its scratch directory: the next build
    of that recipe, holding its lock, removes it; another recipe's may be in use."""
    images = tmp_path / "images"
    left = [".build-tiny-k1ll3d00", ".old-tiny-k1ll3d00"]
    others = [".build-other-1n8u1d00", ".old-other-1n8u1d00",
              ".build-tiny-tc-b31mqd36"]  # recipe tiny-tc's, building under its own lock
    for name in [*left, *others]:
        (images / name / "lib").mkdir(parents=True)
    await build_once(images, "tiny", KEY, SlowBuild(0), force=False, progress=print)
    assert listing(images) == sorted([".tiny.lock", f"tiny-{KEY}", *others])


async def test_a_failed_build_leaves_nothing_behind_and_frees_the_lock(tmp_path: Path) -> None:
    images = tmp_path / "images"

    async def failing(work: Path) -> Path:
        (work / "kernel").mkdir()
        raise ImageError("the recipe's packages provide no /bin/busybox")

    with pytest.raises(ImageError, match="busybox"):
        await build_once(images, "tiny", KEY, failing, force=False, progress=print)
    assert listing(images) == [".tiny.lock"]
    image = await asyncio.wait_for(
        build_once(images, "tiny", KEY, SlowBuild(0), force=False, progress=print), 5)
    assert image.directory == images / f"tiny-{KEY}"


async def test_a_cancelled_build_leaves_nothing_behind_and_frees_the_lock(
        tmp_path: Path) -> None:
    images = tmp_path / "images"
    build = SlowBuild(60)
    task = asyncio.create_task(
        build_once(images, "tiny", KEY, build, force=False, progress=print))
    while not build.started.is_set():
        await asyncio.sleep(0.01)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    assert listing(images) == [".tiny.lock"]
    image = await asyncio.wait_for(
        build_once(images, "tiny", KEY, SlowBuild(0), force=False, progress=print), 5)
    assert image.directory == images / f"tiny-{KEY}"
