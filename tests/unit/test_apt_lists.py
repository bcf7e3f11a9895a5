"""When an image build fetches Debian's package lists again (apt itself is not run)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lab.images.apt import FETCHED, AptSuite


async def test_lists_are_fetched_again_after_a_day_or_for_another_mirror(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A point release removes the versions older lists name: their downloads would fail."""
    fetched: list[str] = []

    async def apt(self: AptSuite, *argv: str, cwd: Path | None = None) -> str:
        fetched.append(self.mirror)
        return ""
    monkeypatch.setattr(AptSuite, "_apt", apt)
    suite = AptSuite("bookworm", "http://deb.example/debian", tmp_path)
    await suite.update()
    await suite.update()  # fetched just now: used as they are
    assert fetched == ["http://deb.example/debian"]
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(tmp_path / FETCHED, (two_days_ago, two_days_ago))
    await suite.update()
    other = AptSuite("bookworm", "http://mirror.example/debian", tmp_path)
    await other.update()
    assert fetched == ["http://deb.example/debian", "http://deb.example/debian",
                       "http://mirror.example/debian"]
