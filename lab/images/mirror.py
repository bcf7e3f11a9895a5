"""Find the Debian mirror this host already uses, so no mirror is written in code."""

from __future__ import annotations

import os
import re
from pathlib import Path

from lab.errors import ImageError

APT_DIR = Path("/etc/apt")


def debian_mirror(explicit: str | None = None, apt_dir: Path = APT_DIR) -> str:
    """The mirror URL: an explicit option, $LAB_DEBIAN_MIRROR, or the host's apt sources."""
    if explicit:
        return explicit.rstrip("/")
    env = os.environ.get("LAB_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    for uri in _apt_uris(apt_dir):
        # The main archive, not debian-security or a third-party repository.
        if re.search(r"/debian/?$", uri):
            return uri.rstrip("/")
    raise ImageError(
        f"found no Debian mirror in {apt_dir}/sources.list or sources.list.d",
        hint="pass --mirror URL or set LAB_DEBIAN_MIRROR")


def _apt_uris(apt_dir: Path) -> list[str]:
    uris: list[str] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":  # deb822 format
            for stanza in re.split(r"\n\s*\n", text):
                fields = {k.lower(): v for k, v in
                          re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M)}
                if "deb" in fields.get("types", "").split() \
                        and "main" in fields.get("components", "").split() \
                        and fields.get("enabled", "yes").lower() not in ("no", "false", "off"):
                    uris.extend(fields.get("uris", "").split())
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                # deb [options] URI SUITE COMPONENT...: Debian's archive has "main".
                m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+(.*)$", line)
                if m and "main" in m.group(2).split():
                    uris.append(m.group(1))
    return uris
