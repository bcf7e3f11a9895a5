"""Where lab speaks: stdout for results, stderr for everything else.

Nothing is read as emoji (a line number in "pair.yaml:100:" would become one),
and text from files is shown as it is, through `escape`, its control characters
visible (an escape sequence in a file's key must not restyle the terminal).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from lab.text import said

# Tables are not cut to 80 columns when the output goes to a file or a pipe.
out = Console(highlight=False, soft_wrap=True, emoji=False,
              width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def warn(text: str) -> None:
    """One line on stderr: "warning: text", the text shown as it is."""
    err.print(f"[yellow]warning:[/yellow] {escape(said(text))}")
