"""Kernel and ELF handling for image builds: vmlinux extraction, module and binary info.

The bzImage stand-ins are junk bytes around an xz or gzip stream of a fake ELF
(a real bzImage is a boot stub plus such a stream); the ELF objects are built
with gcc, which the tests skip without.
"""

from __future__ import annotations

import gzip
import lzma
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.images import elf
from lab.images.kernel import GZIP_MAGIC, XZ_MAGIC, extract_vmlinux

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")

# An ELF header's start, then enough bytes to make it look like a kernel.
VMLINUX = b"\x7fELF\x02\x01\x01" + bytes(9) + bytes(range(256)) * 64


def junk(size: int, seed: int) -> bytes:
    """Random bytes with no xz or gzip magic in them."""
    data = random.Random(seed).randbytes(size)
    data = data.replace(b"\xfd", b"\xfe").replace(b"\x1f", b"\x1e")
    assert XZ_MAGIC not in data and GZIP_MAGIC not in data
    return data


def xz(data: bytes) -> bytes:
    # The kernel's build compresses with a CRC32 check.
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)


def bzimage(tmp_path: Path, *parts: bytes) -> Path:
    path = tmp_path / "vmlinuz-6.1.0-18-amd64"
    path.write_bytes(b"".join(parts))
    return path


@pytest.mark.parametrize("compress", [xz, lambda d: gzip.compress(d, mtime=0)],
                         ids=["xz", "gzip"])
def test_payload_after_junk_is_extracted(tmp_path: Path,
                                         compress: Callable[[bytes], bytes]) -> None:
    source = bzimage(tmp_path, junk(17_000, 1), compress(VMLINUX), junk(3000, 2))
    extract_vmlinux(source, tmp_path / "vmlinux")
    assert (tmp_path / "vmlinux").read_bytes() == VMLINUX


def test_false_magic_before_the_real_stream_is_skipped(tmp_path: Path) -> None:
    # Magic bytes that start no valid stream, then the real one.
    source = bzimage(tmp_path, junk(500, 3), XZ_MAGIC + junk(40, 4), GZIP_MAGIC + junk(40, 5),
                     xz(VMLINUX), junk(100, 6))
    extract_vmlinux(source, tmp_path / "vmlinux")
    assert (tmp_path / "vmlinux").read_bytes() == VMLINUX


def test_a_stream_that_is_not_an_elf_is_skipped(tmp_path: Path) -> None:
    # An xz stream of something else (say, a firmware blob), then the gzip vmlinux.
    source = bzimage(tmp_path, junk(500, 7), xz(b"not a kernel" * 100),
                     gzip.compress(VMLINUX, mtime=0))
    extract_vmlinux(source, tmp_path / "vmlinux")
    assert (tmp_path / "vmlinux").read_bytes() == VMLINUX


@pytest.mark.parametrize("parts", [
    (),
    (b"\x7fELF plain, uncompressed",),
    (xz(b"MZ not an ELF"), gzip.compress(b"#!/bin/sh\n", mtime=0)),
], ids=["empty", "uncompressed", "no-elf-inside"])
def test_no_vmlinux_is_an_image_error(tmp_path: Path, parts: tuple[bytes, ...]) -> None:
    source = bzimage(tmp_path, junk(2000, 8), *parts)
    with pytest.raises(ImageError) as caught:
        extract_vmlinux(source, tmp_path / "vmlinux")
    assert caught.value.message == "found no xz or gzip vmlinux inside vmlinuz-6.1.0-18-amd64"
    assert caught.value.hint == "the kernel will boot from the compressed bzImage instead"
    assert not (tmp_path / "vmlinux").exists()


# --- ELF objects built with gcc -----------------------------------------------

MODINFO_C = """\
#define MODINFO(n, s) \\
    static const char n[] __attribute__((section(".modinfo"), used, aligned(1))) = s
MODINFO(a, "license=GPL");
MODINFO(b, "depends=virtio,virtio_ring");
MODINFO(c, "alias=pci:v00001AF4d00001000sv*sd*bc*sc*i*");
MODINFO(d, "alias=virtio:d00000001v*");
MODINFO(e, "vermagic=6.1.0-18-amd64 SMP preempt mod_unload modversions ");
int socklab_test_symbol(void) { return 0; }
"""


def gcc(tmp_path: Path, name: str, source: str, *args: str) -> Path:
    assert GCC is not None
    src = tmp_path / name
    src.write_text(source)
    out = tmp_path / (src.stem + (".o" if "-c" in args else ""))
    subprocess.run([GCC, *args, "-o", str(out), str(src)], check=True, timeout=30,
                   capture_output=True)
    return out


@needs_gcc
def test_module_info_reads_the_modinfo_section(tmp_path: Path) -> None:
    module = gcc(tmp_path, "virtio_net.c", MODINFO_C, "-c")
    info = elf.module_info(module.read_bytes())
    assert info["depends"] == "virtio,virtio_ring"
    assert info["license"] == "GPL"
    # A repeated key keeps its first value; values keep '=' and spaces.
    assert info["alias"] == "pci:v00001AF4d00001000sv*sd*bc*sc*i*"
    assert info["vermagic"] == "6.1.0-18-amd64 SMP preempt mod_unload modversions "
    assert set(info) == {"license", "depends", "alias", "vermagic"}


@needs_gcc
def test_module_info_of_a_module_without_dependencies(tmp_path: Path) -> None:
    source = MODINFO_C.replace("virtio,virtio_ring", "")
    module = gcc(tmp_path, "virtio.c", source, "-c")
    assert elf.module_info(module.read_bytes())["depends"] == ""
    plain = gcc(tmp_path, "plain.c", "int f(void) { return 1; }\n", "-c")
    assert elf.module_info(plain.read_bytes()) == {}


@needs_gcc
def test_interpreter_and_needed_of_a_dynamic_program(tmp_path: Path) -> None:
    program = gcc(tmp_path, "prog.c",
                  "#include <math.h>\nint main(int c, char **v) { return (int)sqrt(c); }\n",
                  "-O0", "-Wl,--no-as-needed", "-lm")
    assert elf.is_elf(program)
    interp, needed = elf.interpreter_and_needed(program)
    assert interp is not None and interp.endswith("ld-linux-x86-64.so.2")
    assert "libm.so.6" in needed and "libc.so.6" in needed
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not elf.is_elf(script)


PVH_NOTE_S = """\
.section .note.Xen,"a",@note
.align 4
.long 4          /* name size */
.long 4          /* descriptor size */
.long {type}     /* 18: XEN_ELFNOTE_PHYS32_ENTRY */
.asciz "Xen"
.align 4
.long 0x1000000
.text
.globl _start
_start:
ret
"""


@needs_gcc
@pytest.mark.parametrize(("note_type", "expected"), [(18, True), (17, False)])
def test_pvh_entry_note(tmp_path: Path, note_type: int, expected: bool) -> None:
    kernel = gcc(tmp_path, "vmlinux.S", PVH_NOTE_S.format(type=note_type),
                 "-nostdlib", "-static")
    assert elf.has_pvh_entry(kernel) is expected


@pytest.mark.parametrize("compress", [xz, lambda d: gzip.compress(d, mtime=0)],
                         ids=["xz", "gzip"])
def test_a_cut_off_stream_is_not_taken_for_a_vmlinux(tmp_path: Path,
                                                     compress: Callable[[bytes], bytes]) -> None:
    stream = compress(VMLINUX)
    source = bzimage(tmp_path, junk(500, 8), stream[: len(stream) // 2])
    with pytest.raises(ImageError):
        extract_vmlinux(source, tmp_path / "vmlinux")
    assert not (tmp_path / "vmlinux").exists()
