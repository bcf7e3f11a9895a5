"""Build a recipe into a cached image: an uncompressed vmlinux and a gzipped initrd
(how it is put in place: lab.images.store; how it is found again: lab.images.cache)."""

from __future__ import annotations

import asyncio
import gzip
import lzma
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from lab.aio import in_thread, output_of
from lab.errors import ImageError
from lab.images.apt import AptSuite
from lab.images.cache import (
    Image,
    KernelFile,
    Manifest,
    cache_key,
    cached_image,
    guest_file,
)
from lab.images.cpio import CpioWriter
from lab.images.kernel import extract_vmlinux
from lab.images.mirror import debian_mirror
from lab.images.recipe import Recipe
from lab.images.store import build_once, exclusive
from lab.paths import Paths

LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib")

Progress = Callable[[str], None]


async def build_image(recipe: Recipe, paths: Paths, *, mirror: str | None = None,
                      force: bool = False, progress: Progress = lambda _: None) -> Image:
    """The cached image for a recipe, building it first when needed."""
    image = cached_image(recipe, paths)
    if image is not None and not force:
        return image

    async def build(work: Path) -> Path:
        return await _build(recipe, paths, work, mirror=mirror, progress=progress)

    return await build_once(paths.images, recipe.name, cache_key(recipe), build,
                            force=force, progress=progress)


async def _build(recipe: Recipe, paths: Paths, work: Path, *, mirror: str | None,
                 progress: Progress) -> Path:
    """Build the recipe in the scratch directory `work`; return the image directory."""
    started = time.monotonic()
    suite = AptSuite(recipe.suite, debian_mirror(mirror), paths.downloads / recipe.suite)
    # Recipes of one suite share its lists and downloads: one build at a time uses them.
    async with exclusive(paths.downloads / f".{recipe.suite}.lock", progress,
                         f"another build's downloads from {recipe.suite}"):
        progress(f"resolving packages of {recipe.suite}")
        await suite.update()
        kernel_pkg = await suite.resolve_kernel(recipe.kernel)
        userland = await suite.closure(recipe.packages)
        progress(f"downloading {len(userland) + 1} packages")
        debs = await suite.download([kernel_pkg, *userland])
    progress("unpacking")
    await _unpack([debs[kernel_pkg]], work / "kernel")
    await _unpack([debs[p] for p in userland], work / "userland")
    progress("assembling initrd")
    out = work / "image"
    out.mkdir()
    kernel, release, modules = await in_thread(
        lambda: _assemble(recipe, work / "kernel", work / "userland", out))
    manifest = Manifest(
        kernel=kernel, kernel_release=release, modules=modules,
        initrd_bytes=(out / "initrd.img").stat().st_size,
        kernel_bytes=(out / kernel).stat().st_size,
        name=recipe.name, key=f"{recipe.name}-{cache_key(recipe)}", suite=recipe.suite,
        packages={p: debs[p].name for p in sorted(debs)},
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(time.monotonic() - started, 1))
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
    out.chmod(0o755)
    return out


async def _unpack(debs: list[Path], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        proc = await asyncio.create_subprocess_exec(
            "dpkg-deb", "-x", str(deb), str(into), stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        _, err = await output_of(proc)
        if proc.returncode != 0:
            raise ImageError(f"cannot unpack {deb.name}: {err.decode().strip()}")


def _assemble(recipe: Recipe, kroot: Path, uroot: Path,
              out: Path) -> tuple[KernelFile, str, list[str]]:
    """Write the kernel and initrd.img into `out`; return the kernel's file name, its
    release and the modules the guest loads."""
    # Here and in the helpers below, not at the top: pyelftools takes ~20 ms to
    # import, which `lab up` of a cached image would pay for nothing.
    from lab.images import elf  # noqa: PLC0415

    vmlinuz = sorted((kroot / "boot").glob("vmlinuz-*"))
    if not vmlinuz:
        raise ImageError(f"kernel package for {recipe.name} holds no /boot/vmlinuz-*")
    release = vmlinuz[0].name.removeprefix("vmlinuz-")
    kernel_file: KernelFile = "vmlinux"
    try:
        extract_vmlinux(vmlinuz[0], out / "vmlinux")
        if not elf.has_pvh_entry(out / "vmlinux"):
            raise ImageError("vmlinux has no PVH entry")
    except ImageError:
        (out / "vmlinux").unlink(missing_ok=True)
        shutil.copyfile(vmlinuz[0], out / "vmlinuz")
        kernel_file = "vmlinuz"
    root = out.parent / "root"
    _skeleton(root)
    _install_busybox(uroot, root)
    for binary in recipe.binaries:
        _install_with_libraries(uroot, root, binary.lstrip("/"))
    modules = _install_modules(recipe, kroot / "lib" / "modules" / release, root, release)
    (root / "etc/socklab/modules").write_text("".join(f"{m}\n" for m in modules))
    with (out / "initrd.img").open("wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
        cpio = CpioWriter(gz)
        cpio.tree(root)
        cpio.close()
    return kernel_file, release, modules


def _skeleton(root: Path) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/socklab", "proc", "sys", "dev",
              "run", "tmp", "var/log", "root/.ssh", "lib", "lib64"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/lab-shell\n",
        "etc/group": "root:x:0:\ntty:x:5:\n",
        "etc/shells": "/bin/sh\n/bin/lab-shell\n",
        "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
        "etc/profile": "export PS1='\\h:\\w# '\n",  # PATH comes from lab-shell
        "etc/inittab": guest_file("inittab").decode(),
    }
    for name, text in files.items():
        (root / name).write_text(text)
    for source, target in (("rc", "etc/socklab/rc"), ("shell", "bin/lab-shell")):
        (root / target).write_bytes(guest_file(source))
        (root / target).chmod(0o755)
    (root / "init").symlink_to("bin/busybox")


def _install_busybox(uroot: Path, root: Path) -> None:
    busybox = uroot / "bin/busybox"
    if not busybox.is_file():
        raise ImageError("the recipe's packages provide no /bin/busybox",
                         hint="add busybox-static to packages")
    shutil.copy2(busybox, root / "bin/busybox")
    # The static busybox runs on the host too: ask it for its applets.
    listing = subprocess.run([str(busybox), "--list-full"], capture_output=True,
                             text=True, check=True).stdout
    for applet in listing.split():
        link = root / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")


def _install_with_libraries(uroot: Path, root: Path, rel: str) -> None:
    from lab.images import elf  # noqa: PLC0415 (see _assemble)

    source = _resolve(uroot, rel)
    if source is None:
        raise ImageError(f"the recipe's packages provide no /{rel}",
                         hint="add the package that ships it to packages")
    target = root / rel
    if target.is_symlink():
        # A busybox applet (sbin/tc): the recipe's own binary replaces it. Its link is
        # absolute (/bin/busybox), and on this host leads out of the image: never through it.
        target.unlink()
    elif target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    if not elf.is_elf(source):
        return
    interp, needed = elf.interpreter_and_needed(source)
    if interp:
        _install_with_libraries(uroot, root, interp.lstrip("/"))
    for soname in needed:
        lib = next((f"{d}/{soname}" for d in LIB_DIRS if _resolve(uroot, f"{d}/{soname}")), None)
        if lib is None:
            raise ImageError(f"/{rel} needs {soname}, which no package of the recipe ships",
                             hint="add the library's package to packages")
        _install_with_libraries(uroot, root, lib)


def _resolve(uroot: Path, rel: str) -> Path | None:
    """A path inside the unpacked tree, following symlinks within that tree."""
    path = uroot / rel
    for _ in range(16):
        if path.is_symlink():
            target = path.readlink()
            path = (uroot / str(target).lstrip("/")) if target.is_absolute() \
                else path.parent / target
            continue
        return path if path.is_file() else None
    return None


def _install_modules(recipe: Recipe, moddir: Path, root: Path, release: str) -> list[str]:
    """Copy the wanted modules and their dependencies; return them in load order."""
    from lab.images import elf  # noqa: PLC0415 (see _assemble)

    by_name: dict[str, Path] = {}
    for ko in moddir.rglob("*.ko*"):
        by_name[ko.name.split(".ko")[0].replace("-", "_")] = ko
    order: list[str] = []
    contents: dict[str, bytes] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in contents:
            return
        if name not in by_name:
            raise ImageError(f"kernel {release} has no module {name}"
                             + (f" (needed by {chain[-1]})" if chain else ""),
                             hint="remove it from the recipe's modules if it is built in")
        ko = by_name[name]
        data = ko.read_bytes()
        if ko.name.endswith(".xz"):
            data = lzma.decompress(data)
        contents[name] = data
        for dep in filter(None, elf.module_info(data).get("depends", "").split(",")):
            visit(dep, (*chain, name))
        order.append(name)

    for module in recipe.modules:
        visit(module, ())
    paths = []
    for name in order:
        rel = f"lib/modules/{release}/{name}.ko"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(contents[name])
        paths.append(f"/{rel}")
    return paths
