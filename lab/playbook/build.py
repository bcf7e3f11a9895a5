"""The C programs a playbook deploys, compiled on the host before anything boots."""

from __future__ import annotations

from pathlib import Path

from lab.errors import InputError, InputIssue, ProgramError
from lab.playbook.plan import Deploy, Playbook
from lab.programs import build_program


async def build_programs(book: Playbook, cache: Path) -> None:
    """Compile (or find in `cache`) every C program `book` deploys. Raises InputError
    naming, at its deploy step, each program that does not build."""
    issues: list[InputIssue] = []
    failed: set[str | Path] = set()  # deployed again later: said once
    for step in book.steps:
        if not isinstance(step.action, Deploy) or (program := step.action.to_compile) is None \
                or program in failed:
            continue
        try:
            await build_program(program, cache)
        except ProgramError as exc:
            failed.add(program)
            issues.append(InputIssue(book.path, step.line, f"steps[{step.index}].deploy",
                                     _problem(step.action, exc), exc.hint))
    if issues:
        raise InputError(issues)


def _problem(action: Deploy, exc: ProgramError) -> str:
    """"program mine does not compile: /x/mine.c:3:1: error: ...", the first error only;
    "program mine: C compiler 'gcc' not found"."""
    if not exc.errors:
        return f"program {action.program}: {exc.reason}"
    more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
    return f"program {action.program} {exc.reason}: {exc.errors[0].strip()}{more}"
