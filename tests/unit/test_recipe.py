"""Image recipes: loading from images/ (or $LAB_IMAGES_DIR), errors, and the cache key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.errors import ImageError, InputError
from lab.images import cache
from lab.images.cache import cache_key, cached_image
from lab.images.recipe import available_names, load_recipe, recipes_dir
from lab.paths import Paths

ROOT = Path(__file__).parents[2]
SHIPPED = sorted(p.stem for p in (ROOT / "images").glob("*.yaml"))

RECIPE = """\
# A test recipe.
name: tiny
description: a tiny image
suite: bookworm
packages: [busybox-static, dropbear-bin]
binaries: [/usr/sbin/dropbear]
modules: [virtio_net, virtio_rng]
"""


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "images"
    directory.mkdir()
    monkeypatch.setenv("LAB_IMAGES_DIR", str(directory))
    return directory


def test_the_default_directory_is_images_in_the_checkout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_IMAGES_DIR", raising=False)
    assert recipes_dir() == ROOT / "images"
    assert SHIPPED, "no recipes in images/"
    assert available_names() == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_load_and_match_their_file_names(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_IMAGES_DIR", raising=False)
    recipe = load_recipe(name)
    assert recipe.name == name
    # The builder needs busybox for /init and absolute paths for binaries.
    assert "busybox-static" in recipe.packages
    assert all(b.startswith("/") for b in recipe.binaries)
    assert recipe.description


def test_a_bad_recipe_reports_every_issue_with_file_and_line(recipes: Path) -> None:
    path = recipes / "bad.yaml"
    path.write_text("name: bad\nsuite: Bookworm\npackages: [a]\nmoduls: [virtio_net]\n")
    with pytest.raises(InputError) as caught:
        load_recipe("bad")
    assert [str(i) for i in caught.value.issues] == [
        f"{path}:2: suite: string should match pattern '^[a-z]+$', got 'Bookworm'",
        f"{path}:4: moduls: unknown field (hint: did you mean 'modules'?)",
    ]


def test_a_recipe_named_unlike_its_file(recipes: Path) -> None:
    (recipes / "other.yaml").write_text(RECIPE)
    with pytest.raises(ImageError) as caught:
        load_recipe("other")
    assert caught.value.message == \
        f"{recipes / 'other.yaml'}: recipe is named 'tiny', file says 'other'"
    assert caught.value.hint == "make `name:` match the file name"


def test_an_unknown_recipe_lists_the_available_ones(recipes: Path) -> None:
    (recipes / "tiny.yaml").write_text(RECIPE)
    (recipes / "alpha.yaml").write_text(RECIPE.replace("tiny", "alpha"))
    (recipes / "Not_A_Name.yaml").write_text(RECIPE)  # not a valid image name: not offered
    (recipes / "notes.txt").write_text("not a recipe\n")
    assert available_names() == {"alpha", "tiny"}
    with pytest.raises(ImageError) as caught:
        load_recipe("debian-13")
    assert caught.value.message == f"no image recipe named 'debian-13' in {recipes}"
    assert caught.value.hint == "available: alpha, tiny"
    with pytest.raises(ImageError) as caught:
        load_recipe("tinny")
    assert caught.value.hint == "did you mean 'tiny'? available: alpha, tiny"


def test_no_recipes_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_IMAGES_DIR", str(tmp_path / "missing"))
    assert available_names() == set()
    with pytest.raises(ImageError) as caught:
        load_recipe("tiny")
    assert caught.value.hint == (f"LAB_IMAGES_DIR={tmp_path / 'missing'} holds no recipes: "
                                 "unset it for images/")


def key_of(recipes: Path, text: str) -> str:
    (recipes / "tiny.yaml").write_text(text)
    return cache_key(load_recipe("tiny"))


def test_cache_key_is_stable_for_the_same_recipe(recipes: Path) -> None:
    key = key_of(recipes, RECIPE)
    assert len(key) == 16 and int(key, 16) >= 0
    assert key_of(recipes, RECIPE) == key
    # Comments and YAML layout do not shape the image: same key.
    reformatted = RECIPE.replace("# A test recipe.\n", "").replace(
        "modules: [virtio_net, virtio_rng]", "modules:\n  - virtio_net  # net\n  - virtio_rng")
    assert key_of(recipes, reformatted) == key


@pytest.mark.parametrize(("old", "new"), [
    ("suite: bookworm", "suite: bullseye"),
    ("[virtio_net, virtio_rng]", "[virtio_rng, virtio_net]"),  # load order matters
    ("[virtio_net, virtio_rng]", "[virtio_net, virtio_rng, tcp_diag]"),
    ("dropbear-bin]", "dropbear-bin, strace]"),
    ("binaries: [/usr/sbin/dropbear]", "binaries: [/usr/sbin/dropbear, /usr/bin/strace]"),
    ("suite: bookworm", "suite: bookworm\nkernel: linux-image-cloud-amd64"),
])
def test_cache_key_changes_with_the_recipe(recipes: Path, old: str, new: str) -> None:
    assert old in RECIPE
    assert key_of(recipes, RECIPE.replace(old, new)) != key_of(recipes, RECIPE)


def test_cache_key_changes_with_the_builder_code(
        recipes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_of(recipes, RECIPE)
    original = cache._builder_source
    monkeypatch.setattr(cache, "_builder_source", lambda: original() + b"# changed\n")
    assert key_of(recipes, RECIPE) != key


def test_cache_key_changes_with_the_guest_boot_script(
        recipes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_of(recipes, RECIPE)
    original = cache.guest_file
    monkeypatch.setattr(cache, "guest_file",
                        lambda name: original(name) + (b"# changed\n" if name == "rc" else b""))
    assert key_of(recipes, RECIPE) != key


def test_cached_image_is_found_by_key_and_missed_after_a_change(
        recipes: Path, tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    (recipes / "tiny.yaml").write_text(RECIPE)
    recipe = load_recipe("tiny")
    assert cached_image(recipe, paths) is None
    directory = paths.images / f"tiny-{cache_key(recipe)}"
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text(json.dumps(
        {"kernel": "vmlinux", "kernel_release": "6.1.0-18-amd64", "modules": []}))
    image = cached_image(recipe, paths)
    assert image is not None
    assert (image.name, image.directory) == ("tiny", directory)
    assert (image.kernel, image.initrd) == (directory / "vmlinux", directory / "initrd.img")
    assert image.kernel_release == "6.1.0-18-amd64"
    assert (image.initrd_bytes, image.build_seconds) == (0, None)  # not recorded then
    (recipes / "tiny.yaml").write_text(RECIPE.replace("virtio_rng", "virtio_rng, tcp_diag"))
    assert cached_image(load_recipe("tiny"), paths) is None


# A manifest as lab.images.build wrote it before the manifest had a model.
WRITTEN = {
    "kernel": "vmlinuz", "kernel_release": "6.1.0-18-amd64", "modules": ["/lib/m/a.ko"],
    "initrd_bytes": 4096, "kernel_bytes": 8192, "name": "tiny", "key": "tiny-0123456789abcdef",
    "suite": "bookworm", "packages": {"busybox-static": "busybox-static_1.35.0_amd64.deb"},
    "built_at": "2024-03-01T12:00:00Z", "build_seconds": 41.5,
}


def image_dir(recipes: Path, tmp_path: Path) -> tuple[Paths, Path]:
    paths = Paths(tmp_path / "home")
    (recipes / "tiny.yaml").write_text(RECIPE)
    directory = paths.images / f"tiny-{cache_key(load_recipe('tiny'))}"
    directory.mkdir(parents=True)
    return paths, directory


def test_a_manifest_keeps_the_format_images_were_built_with(
        recipes: Path, tmp_path: Path) -> None:
    paths, directory = image_dir(recipes, tmp_path)
    (directory / "manifest.json").write_text(json.dumps(WRITTEN, indent=2) + "\n")
    image = cached_image(load_recipe("tiny"), paths)
    assert image is not None
    assert (image.kernel, image.kernel_release) == (directory / "vmlinuz", "6.1.0-18-amd64")
    assert (image.initrd_bytes, image.build_seconds) == (4096, 41.5)
    # What the builder writes now reads back as the same JSON.
    assert json.loads(cache.Manifest.model_validate(WRITTEN).model_dump_json()) == WRITTEN


@pytest.mark.parametrize("content", [
    b'{"kernel": "vml',  # a build cut short
    b"[]",
    b'{"kernel": "vmlinux"}',
    b'{"kernel": "../../bin/sh", "kernel_release": "6.1.0-18-amd64"}',
    b'{"kernel": "vmlinux", "kernel_release": "6.1", "initrd_bytes": "many"}',
    b"\xff\xfe",
])
def test_an_unreadable_manifest_means_a_rebuild(recipes: Path, tmp_path: Path,
                                                content: bytes) -> None:
    paths, directory = image_dir(recipes, tmp_path)
    (directory / "manifest.json").write_bytes(content)
    assert cached_image(load_recipe("tiny"), paths) is None


def test_a_manifest_that_cannot_be_read_means_a_rebuild(recipes: Path, tmp_path: Path) -> None:
    paths, directory = image_dir(recipes, tmp_path)
    (directory / "manifest.json").mkdir()
    assert cached_image(load_recipe("tiny"), paths) is None
