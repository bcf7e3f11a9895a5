"""One error hierarchy for the whole project.

Every failure a user can cause or meet is a `LabError` with structured fields.
The CLI is the only place that turns one into a message and an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class LabError(Exception):
    """Base of every error socklab reports to its user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


@dataclass(frozen=True)
class InputIssue:
    """One problem in an input file, located as precisely as we can."""

    file: Path
    line: int | None
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else f"{self.file}"
        field = f" {self.path}:" if self.path else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}:{field} {self.message}{hint}"


class InputError(LabError):
    """Bad input: every issue found in the file, reported at once."""

    exit_code = 2

    def __init__(self, issues: list[InputIssue]) -> None:
        if not issues:
            raise ValueError("InputError needs at least one issue")
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    def __str__(self) -> str:
        return self.message


class UsageError(LabError):
    """A command-line option or argument that cannot be honoured."""

    exit_code = 2


class ImageError(LabError):
    """A guest image could not be resolved, downloaded or built."""


class UnknownImage(ImageError):
    """No recipe has that name: bad input."""

    exit_code = 2


class BackendError(LabError):
    """The hypervisor backend (libvirt) refused or failed an operation."""


class PortTaken(BackendError):
    """A host port QEMU was to forward to a guest was taken by the time it bound it."""


class NodeError(LabError):
    """A failure on one node. The message names the node; `detail` says what went
    wrong without it, for what is already shown by node (a step's results)."""

    def __init__(self, node: str, detail: str, *, hint: str | None = None) -> None:
        super().__init__(f"node {node}: {detail}", hint=hint)
        self.node = node
        self.detail = detail


class BootError(NodeError):
    """A node did not become ready; carries the tail of its console."""

    def __init__(self, node: str, detail: str, *, console_tail: str = "",
                 hint: str | None = None) -> None:
        super().__init__(node, detail, hint=hint)
        self.console_tail = console_tail


class SSHError(NodeError):
    """Management SSH to a node failed (connection, host key, command)."""


class LabInUse(LabError):
    """Another lab command holds the lab (makes, runs on or removes it)."""


class LabNotFound(LabError):
    """No lab of that name is recorded, or several match where one is needed: a name
    mistyped or missing is bad input."""

    exit_code = 2


class ProgramError(LabError):
    """A socket program is unknown or does not compile; carries the compiler's errors."""

    def __init__(self, program: str, message: str, *, source: Path | None = None,
                 line: int | None = None, errors: tuple[str, ...] = (),
                 hint: str | None = None) -> None:
        details = "".join(f"\n  {e}" for e in errors)
        super().__init__(f"program {program}: {message}{details}", hint=hint)
        self.program = program
        self.reason = message  # "does not compile"
        self.source = source
        self.line = line  # of the first error, when the compiler named one
        self.errors = errors  # the compiler's first error lines, "file:line:col: error: ..."


def file_problem(exc: OSError) -> str:
    """A file operation this host refused, for people: "runs/x/trace.txt: No space left
    on device" (which file, and why), not where in socklab it happened."""
    why = exc.strerror or str(exc)
    return f"{exc.filename}: {why}" if exc.filename is not None else why
