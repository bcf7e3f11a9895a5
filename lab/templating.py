"""The Jinja2 environment of the templates in users' files (topologies, playbooks).

Native types, so that `"{{ mem }}"` stays an int when `mem` is one; in Jinja2's
immutable sandbox, because a file may come from anyone (`lab validate` on a
topology from elsewhere): a template reads variables and calls harmless
methods, and never reaches Python's internals (`cycler.__init__.__globals__`)
nor changes a variable. Repetition and powers (`'x' * 10**9`) are bounded, as
the sandbox bounds `range()`; a width given to a string method or a format
(`'x'.ljust(10**8)`) is not.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeEnvironment
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lab.text import shown

MAX_ITEMS = 1_000_000  # characters or items a repetition (`*`) may make
MAX_BITS = 1 << 16  # bits of the number a power (`**`) may make


class TemplateEnvironment(ImmutableSandboxedEnvironment, NativeEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=True)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for repeated, times in ((left, right), (right, left)):
                if isinstance(repeated, str | list | tuple) and isinstance(times, int) \
                        and len(repeated) * times > MAX_ITEMS:
                    raise SecurityError(f"{shown(repeated)} * {times} would be longer "
                                        f"than {MAX_ITEMS:,}")
        elif isinstance(left, int) and isinstance(right, int) and right > 0 \
                and right * abs(left).bit_length() > MAX_BITS:
            raise SecurityError(f"{left} ** {right} is a number too large")
        return super().call_binop(context, operator, left, right)
