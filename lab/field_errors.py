"""The fields of input models: the errors their validators raise, and pydantic's errors
turned into issues located in the file (lab/source.py loads the documents).
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lab.errors import InputIssue
from lab.text import closest, shown

if TYPE_CHECKING:
    from lab.source import Loc, Locator

M = TypeVar("M", bound=BaseModel)


MAPPINGS = {"dict_type", "model_type", "model_attributes_type"}  # pydantic's error kinds


class FieldError(ValueError):
    """Raised by model validators: a one-line message plus an optional hint."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def matching(pattern: str, what: str, rule: str) -> AfterValidator:
    """A validator for names and the like: a one-line message and a hint with the rule."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):  # not match(): "$" would allow a trailing newline
            raise FieldError(f"{shown(value)} is not a valid {what}", hint=rule)
        return value
    return AfterValidator(check)


def pydantic_issues(exc: ValidationError, model: type[BaseModel], data: Any,
                     locator: Locator, muted: list[Loc]) -> list[InputIssue]:
    errors = [(err, _data_loc(data, err["loc"])) for err in exc.errors(include_url=False)]
    # "unknown field 'netwrok' (did you mean 'network'?)" makes "'network' missing" noise.
    misspelt = set()
    for err, loc in errors:
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            close = closest(str(loc[-1]), list(owner.model_fields) if owner else [])
            misspelt.add((*loc[:-1], close))
    issues = []
    for err, loc in errors:
        if any(loc[:len(m)] == m for m in muted):
            continue  # already reported: the template feeding it failed
        if err["type"] == "missing" and loc in misspelt:
            continue
        message, hint = _describe(err, model, loc)
        issues.append(locator.issue(loc, message, hint=hint))
    return issues


def without_faulty_fields(exc: ValidationError, model: type[M], data: Any,
                          ) -> tuple[M, list[Loc]] | None:
    """The document validated without its unknown fields and its faulty optional ones
    (left to their defaults), the model's STAND_INS for its faulty top-level fields that
    have one, and where those were; None when a fault is elsewhere, which nothing can
    stand in for.

    A fault in a required field takes the optional field holding it along (a `pull:`
    without its `dst:`), within the item or entry it is in: list items, named entries
    and top-level fields are never left out, as what refers to them would then be
    wrong. With it a caller checks the rest of the file (references, addresses) in the
    same run: a user sees every problem at once, not one kind after another."""
    faulty = [(err["type"], _data_loc(data, err["loc"])) for err in exc.errors()]
    dropped: list[Loc] = []
    stand_ins: Mapping[str, object] = getattr(model, "STAND_INS", {})
    replaced: dict[str, object] = {}
    for kind, loc in faulty:
        if len(loc) == 1 and loc[0] in stand_ins:  # a top-level field the rest needs
            replaced[str(loc[0])] = stand_ins[str(loc[0])]
            dropped.append(loc)
            continue
        spot = loc if kind == "extra_forbidden" and loc and isinstance(loc[-1], str) \
            else _optional_holder(model, loc)
        if spot is None:
            return None
        dropped.append(spot)
    pruned = copy.deepcopy(data)
    for loc in sorted(dropped, key=len):
        if any(loc[:len(gone)] == gone for gone in dropped if len(gone) < len(loc)):
            continue  # left out with what holds it
        parent = pruned
        for part in loc[:-1]:
            parent = parent[part]
        parent.pop(loc[-1], None)
    pruned.update(replaced)
    try:
        return model.model_validate(pruned), dropped
    except ValidationError:
        return None


def _optional_holder(model: type[BaseModel], loc: Loc) -> Loc | None:
    """The optional field at `loc`, or the nearest one holding it, below the top level and
    within the model the fault is in; None if there is none."""
    for end in range(len(loc), 1, -1):
        owner = _model_at(model, loc[:end - 1])
        if owner is None:  # an item of a list, an entry of a mapping
            if end - 1 < 3:  # of a section (a step, a node): others may refer to it
                return None
            continue  # of a field inside one (count:, in_order:): that field may go
        field = owner.model_fields.get(str(loc[end - 1]))
        if field is None:
            return None
        if not field.is_required():
            return loc[:end]
    return None


def _data_loc(data: Any, loc: tuple[str | int, ...]) -> Loc:
    """Pydantic's loc mapped onto the data: drops `[key]` and union-member tags."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part == "[key]":
            break
        in_dict = isinstance(data, dict) and part in data
        if in_dict or (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            data = data[part]
        elif i < len(loc) - 1:
            continue  # a tag pydantic inserted; it is not in the file
        out.append(part)
    return tuple(out)


def _describe(err: ErrorDetails, model: type[BaseModel], loc: Loc) -> tuple[str, str | None]:
    kind, ctx, value = err["type"], err.get("ctx", {}), err["input"]
    got = f", got {shown(value)}"
    if kind == "missing":
        about = _description(model, loc)
        return "required field missing", _as_hint(about) if about else None
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        elsewhere: Mapping[str, str] = getattr(model, "ELSEWHERE", {}) if len(loc) == 1 else {}
        if str(loc[-1]) in elsewhere:  # a top-level field of the other kind of file
            return "unknown field", elsewhere[str(loc[-1])]
        return "unknown field", _field_hint(str(loc[-1]), list(owner.model_fields) if owner else [])
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        if isinstance(error, FieldError):
            return error.message, error.hint
        return (str(error) if error else err["msg"]), None
    simple = {
        "int_type": "expected an integer", "int_parsing": "expected an integer",
        "int_from_float": "expected a whole number", "string_type": "expected a string",
        "bool_type": "expected true or false", "bool_parsing": "expected true or false",
        "dict_type": "expected a mapping", "model_type": "expected a mapping",
        "model_attributes_type": "expected a mapping", "list_type": "expected a list",
        "tuple_type": "expected a list", "float_type": "expected a number",
    }
    if kind in simple:
        if isinstance(value, float) and value.is_integer() and "integer" in simple[kind]:
            return simple[kind] + got, \
                f"write {int(value)}: YAML reads 1e3 and 2.0 as floating-point numbers"
        about = _description(model, loc) if kind in MAPPINGS else None
        return simple[kind] + got, _as_hint(about) if about else None
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}{got}", None
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty", None
    msg = err["msg"]
    return msg[:1].lower() + msg[1:] + (got if kind != "too_short" else ""), None


def _description(model: type[BaseModel], loc: Loc) -> str | None:
    """What the field at `loc` is, as its model describes it."""
    owner = _model_at(model, loc[:-1])
    field_info = owner.model_fields.get(str(loc[-1])) if owner and loc else None
    return field_info.description if field_info else None


def _as_hint(description: str) -> str:
    """"Lab name; prefixes…." → "lab name; prefixes…" (keeps IPv4 and the like)."""
    text = description.rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _field_hint(name: str, known: list[str]) -> str | None:
    if close := closest(name, known):
        return f"did you mean '{close}'?"
    return f"known fields: {', '.join(known)}" if known else None


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, by following annotations."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(part))
            if info is None:
                return None
            tp = info.annotation
        elif typing.get_origin(tp) in (dict, Mapping):
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) in (list, tuple):
            tp = typing.get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """`Annotated[X, ...]` → X; a union → its model member, if any."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        models = [t for t in typing.get_args(tp)
                  if isinstance(t, type) and issubclass(t, BaseModel)]
        return models[0] if models else tp
    return tp
