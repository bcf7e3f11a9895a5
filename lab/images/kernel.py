"""Turn a Debian kernel package's bzImage into the uncompressed vmlinux.

Under TCG a guest spends seconds decompressing an xz bzImage; QEMU boots the
ELF vmlinux directly through its PVH entry point, skipping that work.
"""

from __future__ import annotations

import lzma
import zlib
from pathlib import Path

from lab.errors import ImageError

XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b\x08"
ELF_MAGIC = b"\x7fELF"


def extract_vmlinux(bzimage: Path, out: Path) -> None:
    data = bzimage.read_bytes()
    for magic, decompress in ((XZ_MAGIC, _unxz), (GZIP_MAGIC, _gunzip)):
        start = data.find(magic)
        while start != -1:
            try:
                vmlinux = decompress(data[start:])
            except (lzma.LZMAError, zlib.error, EOFError):
                vmlinux = b""
            if vmlinux.startswith(ELF_MAGIC):
                out.write_bytes(vmlinux)
                return
            start = data.find(magic, start + 1)
    raise ImageError(f"found no xz or gzip vmlinux inside {bzimage.name}",
                     hint="the kernel will boot from the compressed bzImage instead")


def _unxz(data: bytes) -> bytes:
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    out = decompressor.decompress(data)
    if not decompressor.eof:  # a cut-off stream would give a truncated vmlinux
        raise EOFError("xz stream ends early")
    return out


def _gunzip(data: bytes) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    out = decompressor.decompress(data)
    if not decompressor.eof:
        raise EOFError("gzip stream ends early")
    return out
