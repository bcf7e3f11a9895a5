"""Where socklab keeps images and lab state on this host.

Everything lives under one home directory, `$LAB_HOME` when set. As root the
default is /var/lib/socklab: the system libvirt daemon runs QEMU as its own
user, which must be able to traverse to kernels and initrds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lab.errors import UsageError
from lab.names import LAB_NAME


@dataclass(frozen=True)
class Paths:
    home: Path

    @classmethod
    def default(cls) -> Paths:
        env = os.environ.get("LAB_HOME")
        if env:
            home = Path(env).resolve()
            made = next(p for p in (home, *home.parents) if p.exists())  # or to be made in
            if not made.is_dir():
                raise UsageError(f"LAB_HOME={env}: {made} is not a directory",
                                 hint="point it at a directory, or unset it for the default")
            return cls(home)
        if os.geteuid() == 0:
            return cls(Path("/var/lib/socklab"))
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return cls(Path(data) / "socklab")

    @property
    def images(self) -> Path:
        """Built guest images, one directory per content hash."""
        return self.home / "images"

    @property
    def downloads(self) -> Path:
        """Debian package downloads and apt metadata, shared by all recipes."""
        return self.home / "downloads"

    @property
    def programs(self) -> Path:
        """Socket programs compiled for the guests, one directory per source hash."""
        return self.home / "programs"

    @property
    def labs(self) -> Path:
        """One directory per lab: state, keys, console logs, ssh_config."""
        return self.home / "labs"

    def lab_dir(self, lab: str) -> Path:
        # A name from elsewhere (a command line, libvirt metadata) never leads out of labs/.
        if not LAB_NAME.fullmatch(lab):
            raise ValueError(f"not a lab name: {lab!r}")
        return self.labs / lab
