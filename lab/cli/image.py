"""`lab image build NAME` / `lab image list`: guest images from recipes in images/."""

from __future__ import annotations

import argparse

from rich.table import Table

from lab.cli.common import Subparsers
from lab.cli.console import err, out
from lab.images.build import build_image
from lab.images.cache import cached_image
from lab.images.recipe import available_names, load_recipe, recipes_dir
from lab.paths import Paths


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "image",
        description="Guest images are built from the recipes in images/ (Debian packages "
                    "unpacked into an initramfs) and cached by content: building an unchanged "
                    "recipe again is instant.",
        epilog="examples:\n  lab image list\n  lab image build debian-12")
    verbs = p.add_subparsers(dest="image_verb", metavar="ACTION", required=True)
    b = verbs.add_parser("build", help="build images (default: every recipe)",
                         description="Build the named images (default: every recipe in "
                                     "images/). An image whose recipe has not changed is "
                                     "cached: building it again is instant.",
                         epilog="examples:\n  lab image build debian-12\n  lab image build --force")
    b.add_argument("names", nargs="*", metavar="NAME",
                   help="recipe name, e.g. debian-12 (see `lab image list`)")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--mirror", metavar="URL",
                   help="Debian mirror (default: $LAB_DEBIAN_MIRROR or the host's apt sources)")
    b.set_defaults(handler=build)
    ls = verbs.add_parser("list", help="list recipes and whether they are built",
                          description="List the recipes in images/: suite, kernel, initrd "
                                      "size and whether each image is built.",
                          epilog="example:\n  lab image list")
    ls.set_defaults(handler=list_images)


async def build(args: argparse.Namespace) -> int:
    paths = Paths.default()
    # Every recipe read first: a typo at the end of the list is said before a long build.
    recipes = [(name, load_recipe(name)) for name in args.names or sorted(available_names())]
    for name, recipe in recipes:
        if cached_image(recipe, paths) and not args.force:
            image = await build_image(recipe, paths)
            out.print(f"{name}: cached, Linux {image.kernel_release} ({image.directory})")
            continue
        with err.status(f"building {name}") as status:
            def progress(step: str, name: str = name) -> None:
                status.update(f"building {name}: {step}")
            image = await build_image(recipe, paths, mirror=args.mirror, force=args.force,
                                      progress=progress)
        seconds = "?" if image.build_seconds is None else f"{image.build_seconds:g}"
        out.print(f"{name}: built in {seconds} s, Linux {image.kernel_release} "
                  f"({image.directory})")
    return 0


async def list_images(args: argparse.Namespace) -> int:
    paths = Paths.default()
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "SUITE", "KERNEL", "INITRD", "STATUS", "DESCRIPTION"):
        table.add_column(column)
    for name in sorted(available_names()):
        recipe = load_recipe(name)
        image = cached_image(recipe, paths)
        if image:
            size = image.initrd_bytes / 1e6
            table.add_row(name, recipe.suite, image.kernel_release, f"{size:.1f} MB", "built",
                          recipe.description)
        else:
            table.add_row(name, recipe.suite, "", "", "not built", recipe.description)
    if not table.row_count:
        out.print(f"no recipes in {recipes_dir()}")
    else:
        out.print(table)
    return 0
