"""A private apt configuration per Debian suite: resolve and download packages.

The host's own apt state is never touched; everything lives under the
downloads directory, so any suite (bullseye on a bookworm host) works.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from lab.aio import output_of
from lab.errors import ImageError
from lab.log import get_logger

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
ARCH = "amd64"
LISTS_FRESH = 24 * 3600  # seconds the package lists are used for before they are fetched again
FETCHED = "lists-fetched"  # touched as they are fetched


@dataclass(frozen=True)
class AptSuite:
    suite: str
    mirror: str
    root: Path

    @property
    def debs(self) -> Path:
        return self.root / "debs"

    def _config(self) -> Path:
        conf = self.root / "apt.conf"
        sources = self.root / "sources.list"
        signed = f"[signed-by={KEYRING}] " if KEYRING.exists() else ""
        sources_text = f"deb {signed}{self.mirror} {self.suite} main\n"
        conf_text = "\n".join([
            f'Dir::State "{self.root}/state";',
            f'Dir::State::Lists "{self.root}/lists";',
            'Dir::State::status "/dev/null";',
            f'Dir::Cache "{self.root}/cache";',
            f'Dir::Etc::SourceList "{sources}";',
            'Dir::Etc::SourceParts "/nonexistent";',
            'Dir::Etc::Preferences "/nonexistent";',
            'Dir::Etc::PreferencesParts "/nonexistent";',
            f'APT::Architecture "{ARCH}";',
            'APT::Architectures { "' + ARCH + '"; };',
            'Acquire::Languages "none";',
            "",
        ])
        for d in ("state", "lists/partial", "cache/archives/partial", "debs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        if not sources.exists() or sources.read_text() != sources_text:
            sources.write_text(sources_text)
            for stale in (self.root / "lists").glob("*_Packages*"):
                stale.unlink()
            (self.root / FETCHED).unlink(missing_ok=True)  # another mirror's were
        if not conf.exists() or conf.read_text() != conf_text:
            conf.write_text(conf_text)
        return conf

    async def _apt(self, *argv: str, cwd: Path | None = None) -> str:
        env = dict(os.environ, APT_CONFIG=str(self._config()), LC_ALL="C")
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, start_new_session=True,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await output_of(proc)
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise ImageError(f"{' '.join(argv[:2])} for {self.suite} failed: {' / '.join(tail)}",
                             hint=f"check that {self.mirror} serves suite {self.suite}")
        return out.decode(errors="replace")

    async def update(self) -> None:
        """Fetch the package lists, unless fetched within LISTS_FRESH: a Debian point
        release removes the versions that older lists name (their download would fail)."""
        self._config()
        fetched = self.root / FETCHED
        with suppress(FileNotFoundError):
            if time.time() - fetched.stat().st_mtime < LISTS_FRESH:
                return
        get_logger(__name__, suite=self.suite).info("apt-get update from %s", self.mirror)
        await self._apt("apt-get", "-q", "update")
        fetched.touch()

    async def resolve_kernel(self, package: str) -> str:
        """A metapackage such as linux-image-amd64 → the versioned image package."""
        out = await self._apt("apt-cache", "depends", "--no-recommends", "--no-suggests", package)
        for dep in re.findall(r"Depends:\s*(linux-image-[\w.+-]+)", out):
            if dep != package:
                return await self.resolve_kernel(dep)
        return package

    async def closure(self, packages: list[str]) -> list[str]:
        """The packages with every package they depend on (the runtime closure)."""
        if not packages:
            return []
        out = await self._apt(
            "apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
            "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages)
        names = {line.strip() for line in out.splitlines() if line and not line[0].isspace()}
        return sorted(n for n in names if not n.startswith("<"))

    async def download(self, packages: list[str]) -> dict[str, Path]:
        """Download (once) the candidate .deb of each package; name → file."""
        out = await self._apt("apt-cache", "policy", *packages)
        wanted: dict[str, str] = {}
        name = ""
        for line in out.splitlines():
            if line and not line[0].isspace() and line.endswith(":"):
                name = line[:-1]
            elif line.strip().startswith("Candidate:") and name:
                wanted[name] = line.split(":", 1)[1].strip()
        missing = [p for p in packages if wanted.get(p, "(none)") == "(none)"]
        if missing:
            raise ImageError(f"suite {self.suite} has no package {', '.join(missing)}",
                             hint="check the recipe's package names")
        todo = [f"{n}={v}" for n, v in wanted.items() if self._cached(n, v) is None]
        if todo:
            get_logger(__name__, suite=self.suite).info("downloading %d packages", len(todo))
            await self._apt("apt-get", "-q", "download", *todo, cwd=self.debs)
        files: dict[str, Path] = {}
        for name, version in wanted.items():
            found = self._cached(name, version)
            if found is None:
                raise ImageError(f"apt-get download left no .deb for {name} {version}")
            files[name] = found
        return files

    def _cached(self, name: str, version: str) -> Path | None:
        # apt names downloads name_version_arch.deb, escaping ':' (epochs) as %3a.
        pattern = f"{name}_{version.replace(':', '%3a')}_*.deb"
        return next(iter(sorted(self.debs.glob(pattern))), None)
