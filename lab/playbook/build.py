"""The C programs a playbook deploys, compiled on the host before anything boots."""

from __future__ import annotations

from pathlib import Path

from lab.errors import InputError, InputIssue, ProgramError
from lab.playbook.plan import Deploy, Playbook
from lab.programs import build_program, compiler_warnings

MAX_WARNINGS = 5  # per program: the first ones say what kind of trouble it is in


async def build_programs(book: Playbook, cache: Path) -> list[InputIssue]:
    """Compile (or find in `cache`) every C program `book` deploys; what the compiler
    warned of, at each deploy step. Raises InputError naming, at its deploy step, each
    program that does not build."""
    issues: list[InputIssue] = []
    warnings: list[InputIssue] = []
    seen: set[str | Path] = set()  # deployed again later: said once
    for step in book.steps:
        if not isinstance(step.action, Deploy) or (program := step.action.to_compile) is None \
                or program in seen:
            continue
        seen.add(program)
        where = (book.path, step.line, f"steps[{step.index}].deploy")
        try:
            binary = await build_program(program, cache)
        except ProgramError as exc:
            issues.append(InputIssue(*where, _problem(step.action, exc), exc.hint))
            continue
        said = compiler_warnings(binary, Path(program)) if isinstance(program, Path) else []
        warnings += [InputIssue(*where, f"program {step.action.program}: {w}")
                     for w in said[:MAX_WARNINGS]]
        if len(said) > MAX_WARNINGS:
            warnings.append(InputIssue(*where, f"program {step.action.program}: and "
                                               f"{len(said) - MAX_WARNINGS} more warnings"))
    if issues:
        raise InputError(issues)
    return warnings


def _problem(action: Deploy, exc: ProgramError) -> str:
    """"program mine does not compile: /x/mine.c:3:1: error: ...", the first error only;
    "program mine: C compiler 'gcc' not found"."""
    if not exc.errors:
        return f"program {action.program}: {exc.reason}"
    more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
    return f"program {action.program} {exc.reason}: {exc.errors[0].strip()}{more}"
