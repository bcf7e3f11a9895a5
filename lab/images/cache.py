"""Built images, found by a hash of everything that shapes them: the recipe, the
guest boot files and the builder's own source (lab.images.build and what it uses).
An unchanged recipe is found instantly; any change builds a new image beside it.
This module only finds images, so changing it rebuilds none."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from lab.images.recipe import Recipe
from lab.paths import Paths

# The modules whose code decides what an image contains: part of the cache key.
BUILDER_MODULES = ("build.py", "cpio.py", "kernel.py", "elf.py")
GUEST_FILES = ("rc", "inittab", "shell")

KernelFile = Literal["vmlinux", "vmlinuz"]  # vmlinuz: no PVH entry, booted compressed


class Manifest(BaseModel):
    """manifest.json in an image's directory, written last by lab.images.build."""

    model_config = ConfigDict(frozen=True)

    kernel: KernelFile
    kernel_release: str
    modules: list[str] = []  # loaded at boot, in this order
    # Defaults stand for what earlier builders did not record.
    initrd_bytes: int = 0
    kernel_bytes: int = 0
    name: str = ""
    key: str = ""
    suite: str = ""
    packages: dict[str, str] = {}  # package name -> .deb file
    built_at: str = ""  # UTC, ISO 8601
    build_seconds: float | None = None


@dataclass(frozen=True)
class Image:
    """A built image as the backend boots it."""

    name: str
    directory: Path
    kernel: Path
    initrd: Path
    kernel_release: str
    initrd_bytes: int
    build_seconds: float | None  # None for a build that did not record it


def guest_file(name: str) -> bytes:
    return resources.files("lab").joinpath("guest", name).read_bytes()


def _builder_source() -> bytes:
    package = resources.files("lab.images")
    return b"".join(m.encode() + b"\0" + package.joinpath(m).read_bytes()
                    for m in BUILDER_MODULES)


def cache_key(recipe: Recipe) -> str:
    h = hashlib.sha256()
    h.update(recipe.model_dump_json().encode())
    h.update(_builder_source())
    for name in GUEST_FILES:
        h.update(name.encode() + b"\0" + guest_file(name))
    return h.hexdigest()[:16]


def cached_image(recipe: Recipe, paths: Paths) -> Image | None:
    return read_image(recipe.name, paths.images / f"{recipe.name}-{cache_key(recipe)}")


def read_image(name: str, directory: Path) -> Image | None:
    """The image built into `directory`, or None when its manifest is missing or unreadable."""
    try:
        manifest = Manifest.model_validate_json((directory / "manifest.json").read_bytes())
    except (OSError, ValidationError):
        return None  # not built, or a build cut short: built again
    return Image(name, directory, directory / manifest.kernel, directory / "initrd.img",
                 manifest.kernel_release, manifest.initrd_bytes, manifest.build_seconds)
