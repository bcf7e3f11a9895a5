"""The images directory, shared by every lab process on the host.

A recipe is built by one process at a time, under an exclusive flock on
images/.NAME.lock: a second `lab up` or `lab image build` of it waits, then
finds the first one's image instead of building it again or deleting it
half-way through being booted. A build happens in a scratch directory and
is renamed into place whole, so readers (lab.images.cache), which take no
lock, see an image completely or not at all.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from lab.aio import in_thread
from lab.errors import ImageError
from lab.images.cache import Image, read_image

LOCK_POLL = 0.2  # seconds between attempts to take a recipe's lock; builds take minutes

T = TypeVar("T")

# Builds into the empty scratch directory it is given; returns the image directory in it.
Build = Callable[[Path], Awaitable[Path]]


async def build_once(images: Path, name: str, key: str, build: Build, *, force: bool,
                     progress: Callable[[str], None]) -> Image:
    """The image of recipe `name` in images/NAME-KEY, built by `build` unless another
    process built it while this one waited for the lock (`force`: built regardless)."""
    final = images / f"{name}-{key}"
    async with exclusive(images / f".{name}.lock", progress, "another process building it"):
        image = read_image(name, final)
        if image is not None and not force:
            return image
        await in_thread(lambda: _sweep_scratch(images, name))
        work = Path(tempfile.mkdtemp(dir=images, prefix=f".build-{name}-"))
        try:
            out = await build(work)
            await in_thread(lambda: _move_into_place(name, out, final, replace=force))
        finally:
            await in_thread(lambda: shutil.rmtree(work, ignore_errors=True))
        await in_thread(lambda: prune_older_builds(name, keep=final, images=images))
        image = read_image(name, final)
    if image is None:
        raise ImageError(f"the build of {name} left no readable image in {final}")
    return image


@asynccontextmanager
async def exclusive(lock_file: Path, progress: Callable[[str], None],
                    holder: str) -> AsyncIterator[None]:
    """Hold an exclusive flock on `lock_file`, waiting (and saying so) while `holder`
    has it."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    # Never removed: removing it would let two processes lock two different files.
    with lock_file.open("a") as lock:
        waited = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    progress(f"waiting for {holder}")
                    waited = True
                # Polled, not waited for in a thread: a thread blocked in flock cannot
                # be cancelled, so Ctrl-C would wait for the other build to finish.
                await asyncio.sleep(LOCK_POLL)
        yield  # closing the file releases the lock


def _move_into_place(name: str, out: Path, final: Path, *, replace: bool) -> None:
    try:
        out.rename(final)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    # `final` is there although the lock was held: built by a lab that takes no lock,
    # or left half-removed. A complete image is kept unless a rebuild was asked for.
    if not replace and read_image(name, final) is not None:
        return
    # Moved aside, not removed first: the image is missing only between two renames,
    # and a path into it that a reader already holds then leads to the new build.
    aside = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".old-{name}-"))
    final.rename(aside / final.name)
    out.rename(final)
    shutil.rmtree(aside, ignore_errors=True)


def _sweep_scratch(images: Path, name: str) -> None:
    """Remove what a build of `name` killed half-way left (SIGKILL, power loss): with
    its lock held, no build of it is running."""
    for prefix in (".build-", ".old-"):  # then mkdtemp's 8 characters: not debian-12-tc's
        for left in images.glob(f"{prefix}{name}-*"):
            if re.fullmatch(rf"{re.escape(prefix + name)}-[a-z0-9_]{{8}}", left.name):
                shutil.rmtree(left, ignore_errors=True)


def prune_older_builds(name: str, *, keep: Path, images: Path) -> None:
    """Remove builds of earlier versions of a recipe: only the newest is ever booted.

    Running guests are unaffected: QEMU has read their kernel and initrd.
    """
    for old in images.glob(f"{name}-*"):
        if old != keep and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}", old.name):
            shutil.rmtree(old, ignore_errors=True)
