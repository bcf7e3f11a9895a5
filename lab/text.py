"""Text for people: counted nouns, values as a file shows them, near misses, and what
a command printed, quoted safely.

A command's output is quoted in terminals, CI logs and XML reports: its control
characters (a colour code, a cursor move, a NUL) are shown, never obeyed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
SHOWN_TEXT = 60  # characters of a value a message quotes
LINE = 1000  # characters of a line said to people, at most (a value may be a megabyte)


def count(n: int, noun: str) -> str:
    """"1 node", "2 nodes"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def visible(text: str) -> str:
    """`text` with its control characters (but tab and newline) written as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def said(line: str) -> str:
    """One line for a terminal: control characters shown, a huge one cut in the middle
    (its end is kept: a hint is there)."""
    if len(line) > LINE:
        cut = len(line) - LINE
        line = f"{line[:LINE // 2]} …({cut} characters left out)… {line[-LINE // 2:]}"
    return visible(line)


def last_line(text: str) -> str:
    """What a command said last (on stderr, most often why it failed), visible."""
    return visible((text.strip().splitlines() or [""])[-1].strip())


def kind_of(value: object) -> str:
    """What a value is, as a message says it: "a mapping", "a list", "'text'", "5"."""
    if isinstance(value, Mapping) or hasattr(value, "keys"):  # incl. ruamel's key maps
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return shown(value) if isinstance(value, str | int | float) or value is None \
        else f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """A value as YAML writes it: 'text', true, null, 5; a long text cut short."""
    if isinstance(value, str):
        return repr(value) if len(value) <= SHOWN_TEXT else \
            f"{value[:SHOWN_TEXT]!r}… ({len(value)} characters)"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value) if isinstance(value, int | float) else kind_of(value)


def closest(name: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known name `name` is likely a typo of, if any (`cutoff`: how alike, 0-1;
    higher where a wrong guess costs more, as for names the user may mean as new)."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None
