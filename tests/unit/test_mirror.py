"""Finding the host's Debian mirror in apt's sources (both formats), never hard-coded."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.images.mirror import debian_mirror

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# What Debian 12 containers ship: security first, the main archive second.
DEBIAN_SOURCES = f"""\
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: {KEYRING}

Types: deb deb-src
URIs: http://ftp.example.org/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: {KEYRING}
"""


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_DEBIAN_MIRROR", raising=False)


@pytest.fixture
def apt(tmp_path: Path) -> Path:
    """An empty /etc/apt look-alike."""
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_deb822_skips_security_and_takes_the_main_archive(apt: Path) -> None:
    (apt / "sources.list.d" / "debian.sources").write_text(DEBIAN_SOURCES)
    assert debian_mirror(apt_dir=apt) == "http://ftp.example.org/debian"


def test_deb822_skips_disabled_and_source_only_stanzas(apt: Path) -> None:
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://disabled.example.org/debian\n"
        "Suites: bookworm\n"
        "Components: main\n"
        "Enabled: no\n"
        "\n"
        "Types: deb-src\n"
        "URIs: http://sources.example.org/debian\n"
        "Suites: bookworm\n"
        "Components: main\n"
        "\n"
        "# URIs: http://commented.example.org/debian\n"
        "Types: deb\n"
        "URIs: http://enabled.example.org/debian\n"
        "Suites: bookworm\n"
        "Components: main\n"
        "Enabled: yes\n")
    assert debian_mirror(apt_dir=apt) == "http://enabled.example.org/debian"


def test_deb822_stanza_with_several_uris(apt: Path) -> None:
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://security.example.org/debian-security http://two.example.org/debian\n"
        "Suites: bookworm\n"
        "Components: main\n")
    assert debian_mirror(apt_dir=apt) == "http://two.example.org/debian"


def test_one_line_format_with_options(apt: Path) -> None:
    (apt / "sources.list").write_text(
        "# deb http://commented.example.org/debian bookworm main\n"
        "deb-src http://sources.example.org/debian bookworm main\n"
        f"deb [signed-by={KEYRING}] http://security.debian.org/debian-security "
        "bookworm-security main\n"
        f"deb [ arch=amd64 signed-by={KEYRING} ] https://mirror.example.net/debian/ "
        "bookworm main\n")
    assert debian_mirror(apt_dir=apt) == "https://mirror.example.net/debian"


def test_list_files_in_sources_list_d(apt: Path) -> None:
    (apt / "sources.list.d" / "local.list").write_text(
        "deb http://local.example.org/debian bookworm main\n")
    # Not a sources file apt reads: ignored.
    (apt / "sources.list.d" / "old.list.save").write_text(
        "deb http://saved.example.org/debian bookworm main\n")
    assert debian_mirror(apt_dir=apt) == "http://local.example.org/debian"


def test_sources_list_comes_before_sources_list_d(apt: Path) -> None:
    (apt / "sources.list").write_text("deb http://first.example.org/debian bookworm main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(DEBIAN_SOURCES)
    assert debian_mirror(apt_dir=apt) == "http://first.example.org/debian"


def test_explicit_beats_environment_beats_apt(apt: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (apt / "sources.list.d" / "debian.sources").write_text(DEBIAN_SOURCES)
    monkeypatch.setenv("LAB_DEBIAN_MIRROR", "http://env.example.org/debian/")
    assert debian_mirror(apt_dir=apt) == "http://env.example.org/debian"
    assert debian_mirror("http://cli.example.org/debian/", apt_dir=apt) == \
        "http://cli.example.org/debian"
    # An empty value does not count as set.
    monkeypatch.setenv("LAB_DEBIAN_MIRROR", "")
    assert debian_mirror("", apt_dir=apt) == "http://ftp.example.org/debian"


def test_environment_needs_no_apt_sources(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_DEBIAN_MIRROR", "http://env.example.org/debian")
    assert debian_mirror(apt_dir=tmp_path / "missing") == "http://env.example.org/debian"


@pytest.mark.parametrize("files", [
    {},
    {"sources.list": "deb http://deb.debian.org/debian-security bookworm-security main\n"},
    {"sources.list.d/debian.sources": DEBIAN_SOURCES.replace(
        "Suites: bookworm bookworm-updates", "Suites: bookworm\nEnabled: no")},
    {"sources.list.d/other.list": "deb https://packages.example.com/apt stable main\n"},
], ids=["empty", "security-only", "main-disabled", "third-party"])
def test_no_mirror_is_an_image_error_with_a_hint(apt: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (apt / name).write_text(text)
    with pytest.raises(ImageError) as caught:
        debian_mirror(apt_dir=apt)
    assert caught.value.message == f"found no Debian mirror in {apt}/sources.list or " \
                                   "sources.list.d"
    assert caught.value.hint == "pass --mirror URL or set LAB_DEBIAN_MIRROR"


def test_a_third_party_repository_under_debian_is_not_the_mirror(apt: Path) -> None:
    (apt / "sources.list.d" / "docker.list").write_text(
        "deb [arch=amd64] https://download.example.com/linux/debian bookworm stable\n")
    (apt / "sources.list.d" / "vendor.sources").write_text(
        "Types: deb\nURIs: https://vendor.example.com/debian\nSuites: bookworm\n"
        "Components: stable\n")
    (apt / "sources.list.d" / "zz-debian.sources").write_text(DEBIAN_SOURCES)
    assert debian_mirror(apt_dir=apt) == "http://ftp.example.org/debian"


def test_lowercase_fields_and_enabled_false(apt: Path) -> None:
    (apt / "sources.list.d" / "a.sources").write_text(
        "types: deb\nuris: http://off.example.org/debian\nsuites: bookworm\ncomponents: main\n"
        "enabled: false\n\n"
        "types: deb\nuris: http://on.example.org/debian\nsuites: bookworm\ncomponents: main\n")
    assert debian_mirror(apt_dir=apt) == "http://on.example.org/debian"
