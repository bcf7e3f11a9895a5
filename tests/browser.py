"""Pages rendered by a real browser: Debian's headless Chromium, offline.

The DOM comes back after the page's scripts ran, so tests check what the
JavaScript drew, not just the HTML that was served.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60

# This machine has no network: nothing may try to reach it (updates, sync, DNS, QUIC...).
OFFLINE_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--metrics-recording-only", "--host-resolver-rules=MAP * ~NOTFOUND",
    # Virtual time runs the page's scripts to completion before the dump or the screenshot.
    "--virtual-time-budget=5000",
]


def render_in_chromium(html_path: Path, screenshot: Path) -> str:
    """The DOM of `html_path` once its scripts ran; a 1400x2000 screenshot goes to `screenshot`."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./setup, which installs the chromium package")
    url = html_path.resolve().as_uri()
    dom = _chromium("--dump-dom", url)
    _chromium(f"--screenshot={screenshot}", "--window-size=1400,2000", url)
    if not screenshot.exists():
        pytest.fail(f"chromium wrote no screenshot at {screenshot}")
    return dom


def _chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        # Its own session, so that on timeout the browser and its helper processes go together.
        process = subprocess.Popen(
            [str(CHROMIUM), *OFFLINE_FLAGS, f"--user-data-dir={profile}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(args)}")
    if process.returncode != 0:
        pytest.fail(f"chromium exited with {process.returncode}: {err[-2000:]}")
    return out


def drawn_page(page: Path, screenshot: Path) -> Element:
    """The DOM Chromium drew from a report.html, checked to have rendered without error."""
    builder = _TreeBuilder()
    builder.feed(render_in_chromium(page, screenshot))
    builder.close()
    dom = builder.root
    bodies = [e for e in dom.walk() if e.tag == "body"]
    assert bodies and bodies[0].attrs.get("data-rendered") == "true", "the page's script failed"
    assert not dom.select("render-error")
    return dom


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: str = ""  # its own text, not its children's

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> list[Element]:
        return [self, *(e for child in self.children for e in child.walk())]

    def select(self, cls: str, tag: str | None = None) -> list[Element]:
        return [e for e in self.walk() if cls in e.classes and tag in (None, e.tag)]


# HTML elements that never have an end tag.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Element("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.open[-1].text += data

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, 0, -1):  # tolerate unclosed elements
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return
