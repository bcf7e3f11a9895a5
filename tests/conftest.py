"""Options shared by every test directory."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    # Golden files (tests/golden/) are compared by default; after a deliberate
    # change, `pytest --update-golden` rewrites them — review the diff.
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output instead of comparing")
