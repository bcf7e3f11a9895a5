"""Just enough ELF reading for image assembly: shared-library needs and module deps."""

from __future__ import annotations

import io
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment, NoteSegment


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def interpreter_and_needed(path: Path) -> tuple[str | None, list[str]]:
    """The program interpreter (dynamic loader) and DT_NEEDED sonames of an ELF file."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        interp: str | None = None
        for seg in elf.iter_segments():
            if isinstance(seg, InterpSegment):
                interp = seg.get_interp_name()
        needed: list[str] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                # pyelftools sets `needed` on DT_NEEDED tags only, untyped.
                needed += [str(t.needed) for t in section.iter_tags()  # type: ignore[attr-defined]
                           if t.entry.d_tag == "DT_NEEDED"]
        return interp, needed


def module_info(data: bytes) -> dict[str, str]:
    """The key=value pairs of a kernel module's .modinfo section."""
    elf = ELFFile(io.BytesIO(data))
    section = elf.get_section_by_name(".modinfo")
    if section is None:
        return {}
    info: dict[str, str] = {}
    for item in section.data().split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep and key not in info:
            info[key] = value
    return info


def has_pvh_entry(path: Path) -> bool:
    """Whether a vmlinux carries the Xen PVH entry note QEMU needs to boot it directly."""
    xen_elfnote_phys32_entry = 18
    with path.open("rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if not isinstance(seg, NoteSegment):
                continue
            for note in seg.iter_notes():
                note_type: object = note["n_type"]  # an int for notes pyelftools does not name
                if note["n_name"] == "Xen" and note_type == xen_elfnote_phys32_entry:
                    return True
    return False
