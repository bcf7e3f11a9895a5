"""Image recipes: the declarative YAML files under the top-level images/ directory."""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lab.errors import ImageError, UnknownImage
from lab.source import load_document
from lab.text import closest

NAME_PATTERN = r"^[a-z][a-z0-9.-]{0,31}$"


class Recipe(BaseModel):
    """A minimal initramfs guest assembled from one Debian suite's packages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="Image name used by topologies")]
    description: str = Field("", description="One line shown by `lab image list`")
    suite: Annotated[str, Field(pattern=r"^[a-z]+$", description="Debian suite, e.g. bullseye")]
    kernel: str = Field(
        "linux-image-amd64",
        description="Kernel package; a metapackage is resolved to the versioned one")
    packages: list[str] = Field(
        default_factory=list, description="Userland packages unpacked for the binaries below")
    binaries: list[str] = Field(
        default_factory=list,
        description="Absolute paths copied into the guest with the shared libraries they need")
    modules: list[str] = Field(
        default_factory=list,
        description="Kernel modules loaded at boot in this order, dependencies first")


def recipes_dir() -> Path:
    """The recipe directory: $LAB_IMAGES_DIR, else images/ beside the `lab` package."""
    env = os.environ.get("LAB_IMAGES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "images"


def available_names() -> set[str]:
    directory = recipes_dir()
    if not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.yaml") if re.match(NAME_PATTERN, p.stem)}


def recipe_path(name: str) -> Path:
    path = recipes_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UnknownImage(f"no image recipe named {name!r} in {recipes_dir()}",
                         hint=image_hint(name, available_names()))
    return path


def image_hint(image: str, images: Collection[str]) -> str:
    """What to say of an unknown image name, so that `lab image build` and a topology
    answer a misspelt one alike: "did you mean 'debian-12'? available: …"."""
    if not images:
        if os.environ.get("LAB_IMAGES_DIR"):
            return f"LAB_IMAGES_DIR={recipes_dir()} holds no recipes: unset it for images/"
        return f"{recipes_dir()} holds no recipes"
    close = closest(image, list(images))
    available = f"available: {', '.join(sorted(images))}"
    return f"did you mean '{close}'? {available}" if close else available


def load_recipe(name: str) -> Recipe:
    path = recipe_path(name)
    recipe = load_document(path, Recipe).model
    if recipe.name != name:
        raise ImageError(f"{path}: recipe is named {recipe.name!r}, file says {name!r}",
                         hint="make `name:` match the file name")
    return recipe
