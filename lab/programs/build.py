"""Compile socket programs on the host into static binaries for the guests.

A guest carries no C library beyond what dropbear and strace need, so every
program is linked statically against glibc. A program is one C file: a
shipped one by name, or a user's own by path. The binary is cached under a
hash of the source, the compiler and its flags, so an unchanged source is
never rebuilt, and is named like the program: the guest kernel's `comm`,
which the tracers filter on, is the executable's file name.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shlex
import shutil
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

from lab.aio import output_of
from lab.errors import ProgramError
from lab.files import atomic_output, atomic_write

# Bump when the build changes in a way the flags do not show.
FORMAT_VERSION = 2  # 2: the compiler's warnings kept beside the binary
COMPILE_TIMEOUT = 120.0
MAX_ERRORS = 5
COMMON_FLAGS = ("-O2", "-static", "-Wall", "-Wextra",
                "-fdiagnostics-color=never", "-fno-diagnostics-show-caret")
# Shipped programs are held to strict C11; a user's file gets the compiler's
# own dialect and may carry warnings (they are logged, not fatal).
SHIPPED_FLAGS = ("-std=c11", "-Werror")
USER_FLAGS: tuple[str, ...] = ()

_ERROR_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: ", re.M)
_LINK_ERROR = re.compile(r"undefined reference|cannot find|multiple definition|error:")
# "FILE:LINE:COL: warning: ..." from the compiler, "FILE:(SECTION+OFFSET): warning: ..."
# from the linker (using getaddrinfo in a static binary, say).
_WARNING_LINE = re.compile(
    r"^(?P<where>[^:\n]+:(?:\d+:(?:\d+:)?|\([^)\n]*\):)) warning: (?P<what>.*)$", re.M)
WARNINGS = "warnings.txt"  # beside a cached binary: what the compiler said building it
SOURCE = "<source>"  # in it, the path of the source file
_PACKAGE = "lab.programs"


def shipped_programs() -> list[str]:
    """Names of the programs shipped with socklab, e.g. "replyhi"."""
    files = resources.files(_PACKAGE).iterdir()
    return sorted(f.name.removesuffix(".c") for f in files if f.name.endswith(".c"))


async def build_program(program: str | Path, cache: Path, *, compiler: str = "gcc") -> Path:
    """The static binary for a shipped program name or a C file path, built when needed.
    What the compiler warned of when it built it: `compiler_warnings(binary)`."""
    with ExitStack() as stack:
        name, source, shipped = _resolve(program, stack)
        binary = await _build(name, source, shipped, cache, compiler)
    return binary


def _resolve(program: str | Path, stack: ExitStack) -> tuple[str, Path, bool]:
    """(name, C source path, shipped?) for a program name or a path."""
    shipped = shipped_programs()
    if isinstance(program, str) and program in shipped:
        ref = resources.files(_PACKAGE).joinpath(f"{program}.c")
        return program, stack.enter_context(resources.as_file(ref)), True
    path = Path(program)
    if path.suffix != ".c" or not path.is_file():
        what = "not a C file" if path.exists() else "no such program or C file"
        raise ProgramError(str(program), what, source=path,
                           hint=f"name one of {', '.join(shipped)}, or the path of a .c file")
    return path.stem, path.resolve(), False


async def _build(name: str, source: Path, shipped: bool, cache: Path, compiler: str) -> Path:
    flags = COMMON_FLAGS + (SHIPPED_FLAGS if shipped else USER_FLAGS)
    binary = cache / f"{name}-{_cache_key(name, source, compiler, flags)}" / name
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(binary, mode=0o755) as temp:  # readers see no binary or a whole one
        said = await _compile(name, source, temp, compiler, flags)
        # Kept with the binary, and before it (whoever finds the binary finds them): each
        # use warns again, not the first only. The same source elsewhere shares the
        # binary, so its path is put back when they are read.
        if said.strip():
            atomic_write(binary.with_name(WARNINGS),
                         said.replace(str(source), SOURCE).encode(), mode=0o644)
    return binary


def compiler_warnings(binary: Path, source: Path) -> list[str]:
    """The compiler's warnings when it built `binary` from `source` (or from the same
    text elsewhere): "FILE:LINE:COL: what"."""
    try:
        said = binary.with_name(WARNINGS).read_text().replace(SOURCE, str(source.resolve()))
    except FileNotFoundError:
        return []
    return [f"{m['where']} {m['what']}" for m in _WARNING_LINE.finditer(said)]


def _cache_key(name: str, source: Path, compiler: str, flags: tuple[str, ...]) -> str:
    found = shutil.which(compiler)
    if found is None:
        raise ProgramError(name, f"C compiler {compiler!r} not found",
                           source=source, hint="install gcc and libc6-dev")
    stat = Path(found).resolve().stat()  # an upgraded compiler builds afresh
    h = hashlib.sha256()
    h.update(f"format={FORMAT_VERSION}\0{found}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    h.update("\0".join(flags).encode() + b"\0")
    h.update(source.read_bytes())
    return h.hexdigest()[:16]


async def _compile(name: str, source: Path, output: Path, compiler: str,
                   flags: tuple[str, ...]) -> str:
    """Compile; what the compiler said (its warnings), or ProgramError."""
    argv = [compiler, *flags, "-o", str(output), str(source)]
    shown = shlex.join([compiler, *flags, "-o", name, str(source)])  # without the temp name
    # The C locale keeps "error:" untranslated and quotes ASCII, for parsing.
    env = {**os.environ, "LC_ALL": "C"}
    # Its own session, so that on a timeout the whole group (cc1, as, ld) goes.
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True)
    try:
        async with asyncio.timeout(COMPILE_TIMEOUT):  # its group killed when cut short
            raw, _ = await output_of(proc)
    except TimeoutError:
        raise ProgramError(name, f"the compiler took over {COMPILE_TIMEOUT:.0f} s",
                           source=source, hint=f"the command was: {shown}") from None
    output_text = raw.decode(errors="replace")
    if proc.returncode != 0:
        raise _compile_error(name, source, output_text, shown)
    return output_text


def _compile_error(name: str, source: Path, output: str, command: str) -> ProgramError:
    lines = output.splitlines()
    errors = [ln for ln in lines if _ERROR_LINE.match(ln)]
    first = _ERROR_LINE.match(errors[0]) if errors else None
    what = "does not compile"
    if not errors:  # a link error names no line: take what ld said, not that it failed
        what = "does not link"
        errors = [ln for ln in lines if _LINK_ERROR.search(ln)
                  and not ln.startswith("collect2:")] or lines
    hint = f"the command was: {command}"
    if any("cannot find -lc" in ln for ln in lines):
        hint = "static glibc (libc.a) is missing: install libc6-dev"
    return ProgramError(name, what, source=source,
                        line=int(first["line"]) if first else None,
                        errors=tuple(errors[:MAX_ERRORS]), hint=hint)
