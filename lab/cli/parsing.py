"""The parser every verb gets: it takes --debug, and can end with a command for a node.

`lab exec NODE -- CMD` and `lab ssh NODE -- ARGS` pass words on to a node. lab's
own options may stand anywhere before the first `--`; everything after it is
the command, untouched. Without `--`, the command starts at the first word
after NODE that is neither an option nor an option's value, and none of its
words may start with `-`: such a word could be the command's option or lab's,
and lab stops with a usage error rather than guess.

This module is imported before any verb, so it imports nothing but argparse.
"""

from __future__ import annotations

import argparse
import difflib
import math
import shlex
from collections.abc import Sequence
from typing import Any

DEBUG_HELP = "show tracebacks and debug logs"


class LabHelpFormatter(argparse.HelpFormatter):
    """Fills paragraphs of plain text to the terminal's width, like the default formatter,
    but keeps as written a paragraph with an indented line (a list of examples, a table)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip("\n").split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


class SuggestingParser(argparse.ArgumentParser):
    """An ArgumentParser that answers a misspelt choice (a verb, an action, an --accel)
    with the closest one: "invalid choice: 'valdate' (did you mean 'validate'?)".

    (Python 3.14's suggest_on_error does the same; lab runs on 3.11.)
    """

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in action.choices], n=1)
            if close:
                raise argparse.ArgumentError(
                    action, f"invalid choice: {value!r} (did you mean {close[0]!r}?)")
        super()._check_value(action, value)


class LabParser(SuggestingParser):
    """The parser of a verb: it takes --debug too, and may end with a command for a node,
    which is split off first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", LabHelpFormatter)
        super().__init__(*args, **kwargs)
        # `lab VERB ... --debug` as well as `lab --debug VERB`: suppressed by default, so
        # that a verb without it keeps the value `lab --debug` set.
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help=DEBUG_HELP)
        self.command_dest: str | None = None
        self.command_usage = ""

    def add_command(self, dest: str, *, metavar: str, usage: str, help: str) -> None:
        """End the arguments with a command for a node (the words after `--`);
        `usage` shows it in error messages, e.g. "CMD [ARG...]"."""
        self.allow_abbrev = False  # `--tim` must not quietly become --timeout
        self.add_argument(dest, nargs="*", default=[], metavar=metavar, help=help)
        self.command_dest = dest
        self.command_usage = usage

    def parse_known_args(  # type: ignore[override]
            self, args: Sequence[str] | None = None,
            namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        if self.command_dest is None or args is None:
            parsed, extras = super().parse_known_args(args, namespace)
            if extras:  # said here, with this verb's usage, not the top level's
                self.error(f"unrecognized arguments: {shlex.join(extras)}")
            return parsed, []
        words = list(args)
        cut, dashes = self._command_start(words)
        own, command = words[:cut], words[cut + dashes:]
        parsed, extras = super().parse_known_args(own, namespace)
        stray = [*getattr(parsed, self.command_dest), *extras]
        if stray:
            self._stray(stray)
        if not dashes:
            self._check_undashed(own, command)
        setattr(parsed, self.command_dest, command)
        return parsed, []

    def _command_start(self, words: list[str]) -> tuple[int, int]:
        """Where the command starts, and 1 if a `--` stands there (else 0)."""
        if "--" in words:
            return words.index("--"), 1
        positionals = sum(1 for a in self._actions
                          if not a.option_strings and a.dest != self.command_dest)
        i = 0
        while i < len(words):
            word = words[i]
            if _looks_like_option(word):
                i += 1 + self._values_taken(word)
            elif positionals:
                positionals -= 1
                i += 1
            else:
                return i, 0
        return len(words), 0

    def _values_taken(self, word: str) -> int:
        """How many of the following words the option `word` takes as its value."""
        if "=" in word or (not word.startswith("--") and len(word) > 2):
            return 0  # --lab=NAME, -lNAME: the value is in the word
        action = self._option_string_actions.get(word)
        if action is None:
            return 0  # not lab's: reported once the words are parsed
        return 1 if action.nargs is None else action.nargs if isinstance(action.nargs, int) else 0

    def _stray(self, stray: list[str]) -> None:
        """Words before `--` that are none of lab's: say where they belong."""
        usage = f"{self.prog} [options] NODE -- {self.command_usage}"
        options = [w for w in stray if _looks_like_option(w)]
        if options:
            self.error(f"unrecognized option {', '.join(options)}: not an option of "
                       f"{self.prog}; the command's own options go after --, as in: {usage}")
        self.error(f"{shlex.join(stray)}: unexpected before --, where only NODE and "
                   f"{self.prog}'s options go; the command goes after --, as in: {usage}")

    def _check_undashed(self, own: list[str], command: list[str]) -> None:
        """Without `--`, an option-looking word in the command is ambiguous: refuse it."""
        options = [w for w in command if _looks_like_option(w)]
        if options:
            self.error(f"{options[0]} after the command {command[0]!r}: is it lab's option or "
                       f"the command's? Put the command after -- to pass it on, as in: "
                       f"{self.prog} {shlex.join(own)} -- {shlex.join(command)}")


def seconds(text: str) -> float:
    """An option's number of seconds: more than 0, and finite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") \
            from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _looks_like_option(word: str) -> bool:
    return word.startswith("-") and word != "-"
