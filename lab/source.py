"""Typed YAML documents: read, template, validate, and locate every issue.

One loader for topologies, image recipes and playbooks:

1. YAML is read with ruamel.yaml's round-trip loader, which remembers the line
   of every mapping key and list item; duplicate keys are errors.
2. Each string scalar containing `{{` or `{%` is rendered on its own with
   Jinja2's native types, so `"{{ mem }}"` stays an int when `mem` is one, in
   its sandbox (lab/templating.py).
   Variables: the document's top-level `vars:` mapping (taken literally),
   overridden by `--set KEY=VALUE` (VALUE read as YAML). An override no
   template uses and `vars:` does not declare is not an error: it is listed in
   `Document.unused_overrides` so a caller can warn (the same `--set` may be
   meant for another document). Mapping keys are never templated.
3. The plain data is validated by the caller's pydantic model; every pydantic
   error becomes an `InputIssue` with file:line, dotted path and a hint
   (lab/field_errors.py, with the errors models' own validators raise). A
   caller that checks more (references, addresses) can ask to go on past
   failed templates, unknown fields and faulty optional ones (`keep_going`).

Everything wrong is raised at once as one `InputError`; never a traceback.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from jinja2 import Template, TemplateError, Undefined, UndefinedError, meta
from jinja2.exceptions import SecurityError
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from lab.errors import InputError, InputIssue, UsageError
from lab.field_errors import pydantic_issues, without_faulty_fields
from lab.templating import TemplateEnvironment
from lab.text import closest, kind_of

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]

VARS_KEY = "vars"
# Far beyond any real lab; a few lines of nested YAML aliases can expand to billions
# of values, or a long text to gigabytes.
MAX_VALUES = 100_000
MAX_CHARACTERS = 10_000_000
KEY_RULE = ("YAML reads 007, 1e3 or true as a number or a truth value; a name starts with "
            "a letter")
YAML_WORDS = {"True": "true", "False": "false", "None": "null"}  # keys as Python shows them
_NUMBER = re.compile(r"[-+]?[0-9][0-9_.e+-]*")
VARIABLE_NAME = r"[A-Za-z_][A-Za-z0-9_]*"  # what a template can name
VARIABLE_RULE = "use letters, digits and '_', not starting with a digit"
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])\*[\w-]")  # a YAML alias: *name


@dataclass(frozen=True)
class Locator:
    """Maps a path inside a document to the line it came from."""

    file: Path
    lines: Mapping[Loc, int] = field(default_factory=dict)
    sequences: frozenset[Loc] = frozenset()
    # Values a template made from --set options: "--set image=debian-13", by path.
    overridden: Mapping[Loc, str] = field(default_factory=dict)

    def line(self, loc: Iterable[str | int]) -> int | None:
        """Line of `loc`, else of its nearest ancestor that has one."""
        loc = tuple(loc)
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def dotted(self, loc: Iterable[str | int]) -> str:
        """`links[0].nodes[1]` style: keys are names (the walker refuses others), ints index."""
        out = ""
        for part in loc:
            out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
        return out

    def issue(self, loc: Iterable[str | int], message: str, *,
              hint: str | None = None) -> InputIssue:
        loc = tuple(loc)
        return InputIssue(self.file, self.line(loc), self.dotted(loc),
                          message + self.origin(loc), hint)

    def origin(self, loc: Loc) -> str:
        """" (from --set image=debian-13)" when the value at `loc` came from there:
        the file's line shows only the template."""
        for end in range(len(loc), -1, -1):
            if (options := self.overridden.get(loc[:end])) is not None:
                return f" (from {options})"
        return ""


@dataclass(frozen=True)
class Document(Generic[M]):
    """A validated document and where each of its parts came from."""

    model: M
    locator: Locator
    unused_overrides: frozenset[str] = frozenset()
    variables: frozenset[str] = frozenset()  # what its templates use and its `vars:` declare
    # What failed (templates, fields), when the caller goes on to check the rest
    # (`keep_going`): the issues, to raise with its own, and where, to say nothing more
    # of those places.
    issues: tuple[InputIssue, ...] = ()
    failed: tuple[Loc, ...] = ()

    def already_reported(self, loc: Loc) -> bool:
        """Whether an issue at `loc` would only repeat one in `issues` (a failed template,
        a faulty field): it is at that place or inside it, or holds it (its step, its
        item, its network)."""
        return any(loc[:len(f)] == f or (len(loc) >= 2 and f[:len(loc)] == loc)
                   for f in self.failed)


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`["mem=512", ...]` from `--set` options; the last of a repeated key wins."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set memory=512")
        if not re.fullmatch(VARIABLE_NAME, key):
            raise UsageError(f"--set {item!r}: {key!r} is not a variable name",
                             hint=VARIABLE_RULE)
        out[key] = value
    return out


def load_document(path: Path, model: type[M], *, overrides: Mapping[str, str] = {},
                  facts: Mapping[str, Any] = {}, keep_going: bool = False) -> Document[M]:
    """Read, template and validate `path` as `model`; raises InputError.

    Templates see `vars:`, then the `--set` overrides (text, read as YAML), then
    `facts` (values given by the caller, which nothing overrides). With `keep_going`,
    failed templates, unknown fields and faulty optional fields do not raise: they
    come back in `Document.issues`, for the caller's own checks to be reported with
    them, and the model holds the rest (defaults in their place)."""
    try:
        return _load_document(path, model, overrides, facts, keep_going)
    except RecursionError:  # in the YAML parser, or any step after it
        raise InputError([InputIssue(path, None, "", "nested too deeply to read",
                                     "a lab file nests a few levels: was it generated?")],
                         ) from None


def _load_document(path: Path, model: type[M], overrides: Mapping[str, str],
                   facts: Mapping[str, Any], keep_going: bool) -> Document[M]:
    text = _read(path)
    root = _parse(path, text)
    if root is None:
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        hint = f"start with the required fields: {', '.join(required)}" if required else None
        raise InputError([InputIssue(path, None, "", "file is empty", hint)])
    if not isinstance(root, CommentedMap):
        raise InputError([InputIssue(path, 1, "",
                                     f"expected a mapping at the top level, got {kind_of(root)}")])
    variables = {**_variables(path, root, overrides), **facts}
    # A --set of a fact's name is shadowed by the fact: it is never blamed for a value.
    options = {k: v for k, v in overrides.items() if k not in facts}
    walker = _Walker(path, text.splitlines(), variables, options)
    data = walker.convert(root, ())
    locator = Locator(path, walker.lines, frozenset(walker.sequences), walker.overridden)
    issues = list(walker.issues)
    failed = list(walker.failed)
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        issues += pydantic_issues(exc, model, data, locator, walker.failed)
        repaired = without_faulty_fields(exc, model, data) if keep_going else None
        if repaired is None:
            raise InputError(sort_issues(issues)) from None
        instance, dropped = repaired
        failed += dropped
    if issues and not keep_going:
        raise InputError(sort_issues(issues))
    known = frozenset(walker.used | set(root.get(VARS_KEY) or ()))
    return Document(instance, locator, frozenset(overrides) - known, known,
                    tuple(issues), tuple(failed))


def unused_overrides(overrides: Mapping[str, str], documents: Iterable[Document[Any]],
                     ) -> list[str]:
    """The `--set` names that none of `documents` uses or declares, sorted."""
    return sorted(set(overrides).intersection(*(d.unused_overrides for d in documents)))


def refuse_unused_overrides(overrides: Mapping[str, str], documents: Iterable[Document[Any]],
                            *, reserved: Mapping[str, str] = {}, note: str = "") -> None:
    """A `--set` that none of the files a verb runs uses or declares is a typo (the
    lab would boot without it): refused before anything starts. `lab validate` given
    a topology alone only warns: the `--set` may be meant for a playbook.
    `reserved` names say why they cannot be set ("a fact of the topology"); `note`
    ends the message, on why other files do not count."""
    documents = list(documents)
    unused = unused_overrides(overrides, documents)
    if not unused:
        return
    if why := next(((name, reserved[name]) for name in unused if name in reserved), None):
        raise UsageError(f"--set {why[0]}: {why[1]}",
                         hint="name the variable otherwise, in vars: and in the templates")
    known = sorted(set().union(*(d.variables for d in documents)))
    files = " or ".join(str(d.locator.file) for d in documents)
    close = closest(unused[0], known)
    hint = (f"did you mean '{close}'?" if close else
            f"the variables these files take: {', '.join(known)}" if known else
            "these files declare no variables (vars:) and use none")
    raise UsageError(f"--set {', '.join(unused)}: no variable of that name in {files}{note}",
                     hint=hint)


def sort_issues(issues: Iterable[InputIssue]) -> list[InputIssue]:
    """File order, so a reader can walk down the file fixing them."""
    return sorted(issues, key=lambda i: (str(i.file), i.line or 0))


# --- reading and parsing -----------------------------------------------------

def _read(path: Path) -> str:
    line = None
    try:
        if not is_regular(path):  # a pipe would block (no signal stops that), a device not end
            raise InputError([InputIssue(path, None, "", "not a regular file",
                                         "save it to a file first")])
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem, hint = "file not found", "check the path"
    except IsADirectoryError:
        problem, hint = "is a directory, not a file", None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        problem, hint = f"not UTF-8 text (byte {exc.start})", \
            "save it as UTF-8; is it a YAML file?"
    except OSError as exc:
        problem, hint = f"cannot read: {exc.strerror or exc}", None
    raise InputError([InputIssue(path, line, "", problem, hint)])


def is_regular(path: Path) -> bool:
    """Whether `path` is a regular file, or missing or a directory (which reading says);
    not a pipe, a socket or a device."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def _parse(path: Path, text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        raise InputError([_syntax_issue(path, text, exc)]) from None
    except YAMLError as exc:  # unmarked: rare, but must not become a traceback
        raise InputError([InputIssue(path, None, "", f"YAML error: {exc}")]) from None


def _syntax_issue(path: Path, text: str, exc: MarkedYAMLError) -> InputIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
    context = ""
    if exc.problem and exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
        context = f" {exc.context} started on line {exc.context_mark.line + 1}"
    if dup := re.match(r'found duplicate key "(.*?)" with value', problem):
        key = dup.group(1)
        if key in YAML_WORDS or _NUMBER.fullmatch(key):  # `1` and `true`: alike to Python
            return InputIssue(path, line, "",
                              f"a key must be a name, not {YAML_WORDS.get(key, key)}", KEY_RULE)
        return InputIssue(path, line, "", f"duplicate key '{key}'",
                          "each key may appear once per mapping; merge the two entries")
    if problem == "but found another document":
        return InputIssue(path, line, "", "a second YAML document ('---'): a file holds one",
                          "put each topology or playbook in a file of its own")
    source = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
    if "'\\t'" in problem:
        hint = "indent with spaces; YAML does not allow tabs"
    elif exc.context == "while scanning a quoted scalar" and exc.context_mark is not None:
        hint = f"close the quote opened on line {exc.context_mark.line + 1}"
    elif "{{" in source or "{%" in source:
        hint = 'quote values that start with a template, e.g. memory: "{{ mem }}"'
    else:
        hint = "check indentation, and quote values containing ': ' or ' #'"
    return InputIssue(path, line, "", f"YAML syntax error{context}: {problem}", hint)


# --- conversion to plain data, with templating --------------------------------

@cache
def _jinja() -> TemplateEnvironment:
    return TemplateEnvironment()


@lru_cache(maxsize=1024)  # a template repeated (by YAML aliases) is compiled once
def _template(text: str) -> tuple[Template, frozenset[str]]:
    """The compiled template, and the variables it uses."""
    env = _jinja()
    return env.from_string(text), frozenset(meta.find_undeclared_variables(env.parse(text)))


def _variables(path: Path, root: CommentedMap,
               overrides: Mapping[str, str]) -> dict[str, Any]:
    raw = root.get(VARS_KEY)
    if raw is not None and not isinstance(raw, CommentedMap):
        line = root.lc.key(VARS_KEY)[0] + 1
        raise InputError([InputIssue(path, line, VARS_KEY,
                                     f"expected a mapping of variables, got {kind_of(raw)}")])
    plain = _Walker(path, [], None).convert(raw, ()) if raw is not None else {}
    return {**plain, **{k: override_value(v) for k, v in overrides.items()}}


def override_value(text: str) -> Any:
    """`--set` values are YAML (`512` is an int); unparsable text stays a string."""
    if not text.strip():
        return text
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return text


class _Walker:
    """Turns a round-trip tree into plain data, recording lines and issues."""

    def __init__(self, path: Path, source: list[str], variables: dict[str, Any] | None,
                 overrides: Mapping[str, str] = {}) -> None:
        self.path = path
        self.source = source
        self.variables = variables  # None: no templating at all
        self.overrides = overrides  # the --set options among the variables
        self.overridden: dict[Loc, str] = {}
        self.values = 0  # converted so far, aliases counted each time they are used
        self.characters = 0  # of the texts among them
        self.lines: dict[Loc, int] = {}
        self.sequences: set[Loc] = set()
        self.issues: list[InputIssue] = []
        self.failed: list[Loc] = []  # paths whose value is unknown: mute pydantic there
        self.used: set[str] = set()

    def convert(self, node: Any, loc: Loc, *, template: bool = True) -> Any:
        if isinstance(node, CommentedMap):
            self.lines.setdefault(loc, node.lc.line + 1)
            out: dict[Any, Any] = {}
            for key, value in node.items():
                line = _line(node.lc.key, key) or self.lines[loc]
                if not isinstance(key, str):
                    self._bad_key(loc, line, key)
                    continue
                sub = (*loc, key)
                self.lines[sub] = line
                # The vars block itself is taken literally, never templated.
                literal = not template or (loc == () and key == VARS_KEY)
                out[key] = self._child(value, sub, _line(node.lc.value, key) or line,
                                       template=not literal)
            return out
        if isinstance(node, CommentedSeq):
            self.lines.setdefault(loc, node.lc.line + 1)
            self.sequences.add(loc)
            items = []
            for i, value in enumerate(node):
                line = _line(node.lc.item, i) or self.lines[loc]
                self.lines[(*loc, i)] = line
                items.append(self._child(value, (*loc, i), line, template=template))
            return items
        return self._child(node, loc, self.lines.get(loc, 1), template=template)

    def _child(self, value: Any, loc: Loc, line: int, *, template: bool) -> Any:
        self.values += 1
        if isinstance(value, str):
            self.characters += len(value)
        if self.values > MAX_VALUES or self.characters > MAX_CHARACTERS:
            what = (f"{MAX_VALUES} values" if self.values > MAX_VALUES
                    else f"{MAX_CHARACTERS} characters")
            aliased = any(map(_ALIAS.search, self.source))
            raise InputError([InputIssue(
                self.path, line, "", f"the document expands to more than {what}",
                "YAML aliases (*name) repeat what they name: use fewer, or none" if aliased
                else "a lab's file is far smaller: is it the right file?")])
        if isinstance(value, CommentedMap | CommentedSeq):
            return self.convert(value, loc, template=template)
        if isinstance(value, TaggedScalar):
            tag = str(value.tag).replace("tag:yaml.org,2002:", "!!")
            self._fail(loc, line, f"unsupported YAML tag '{tag}'",
                       "remove the tag; plain YAML values only")
            return None
        # ruamel's scalar subclasses → builtins (bool first: it is an int).
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            if template and self.variables is not None and ("{{" in value or "{%" in value):
                return self._render(str(value), loc, line)
            return str(value)
        return value

    def _render(self, text: str, loc: Loc, line: int) -> Any:
        assert self.variables is not None
        try:
            template, names = _template(text)
            self.used |= names
            if given := sorted(names & self.overrides.keys()):
                self.overridden[loc] = ", ".join(f"--set {n}={self.overrides[n]}" for n in given)
            value = template.render(self.variables)
            _raise_undefined(value)
            return value
        except UndefinedError as exc:
            # Only a bare name is a missing variable; `d.x` is a template error.
            if name := re.fullmatch(r"'(\w+)' is undefined", str(exc)):
                missing = name.group(1)
                close = closest(missing, sorted(self.variables))
                self._fail(loc, line, f"undefined variable '{missing}'",
                           f"did you mean '{close}'?" if close else
                           f"define it under vars: or pass --set {missing}=VALUE")
            else:
                self._fail(loc, line, f"template error: {exc}")
        except SecurityError as exc:
            self._fail(loc, line, f"template error: {str(exc).strip().rstrip('.')}",
                       "a template reads its variables and works on plain values only")
        except TemplateError as exc:
            self._fail(loc, line, f"template error: {str(exc).strip().rstrip('.')}",
                       "templates are Jinja2: {{ expression }} and {% statement %}")
        except Exception as exc:  # a user expression failed on its values (1/0, bad args…)
            self._fail(loc, line, f"template error: {type(exc).__name__}: {exc}",
                       blame_options=True)
        return None

    def _fail(self, loc: Loc, line: int, message: str, hint: str | None = None, *,
              blame_options: bool = False) -> None:
        """A template that could not be rendered. Only an expression that failed on its
        values says which --set options gave them: a misspelt name or a syntax error
        is the file's, whatever options the template also uses."""
        message = " ".join(message.split())  # Jinja2's messages may span lines
        self.failed.append(loc)
        locator = Locator(self.path, self.lines, frozenset(self.sequences), self.overridden)
        origin = locator.origin(loc) if blame_options else ""
        self.issues.append(InputIssue(self.path, line, locator.dotted(loc), message + origin,
                                      hint))

    def _bad_key(self, loc: Loc, line: int, key: object) -> None:
        text = self.source[line - 1] if 0 < line <= len(self.source) else ""
        unquoted = re.match(r"(\s*(?:- )?[^:#]*:\s*)(\{[{%].*[}%]\})\s*(#.*)?$", text)
        if unquoted:  # `memory: {{ mem }}` parses as a mapping with a mapping key
            self._fail(loc, line, "unquoted template: YAML reads it as a mapping",
                       f'quote it: {unquoted.group(1).strip()} "{unquoted.group(2)}"')
        else:
            self._fail(loc, line, f"a key must be a name, not {kind_of(key)}", KEY_RULE)


def _line(lookup: Any, key: Any) -> int | None:
    try:  # keys from `<<:` merges have no recorded position
        return int(lookup(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return None


def _raise_undefined(value: Any) -> None:
    """NativeEnvironment returns a bare Undefined instead of raising: make it raise."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError with its message
    elif isinstance(value, Mapping):
        for item in value.values():
            _raise_undefined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _raise_undefined(item)
