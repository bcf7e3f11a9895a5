"""Text for people: counted nouns, and what a command printed, quoted safely.

A command's output is quoted in terminals, CI logs and XML reports: its control
characters (a colour code, a cursor move, a NUL) are shown, never obeyed.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


def count(n: int, noun: str) -> str:
    """"1 node", "2 nodes"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def visible(text: str) -> str:
    """`text` with its control characters (but tab and newline) written as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def last_line(text: str) -> str:
    """What a command said last (on stderr, most often why it failed), visible."""
    return visible((text.strip().splitlines() or [""])[-1].strip())
