# ruff: noqa: E501  (expected messages stay one line each, as printed)
"""The generic document loader: YAML, line numbers, templating, pydantic errors."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from lab.errors import InputError, UsageError
from lab.playbook import load_playbook
from lab.source import Document, load_document, parse_overrides
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="What the item is called.")
    size: int = 1


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vars: dict[str, Any] = {}
    title: str
    count: int = 0
    items: list[Item] = []
    table: dict[str, Item] = {}
    extra: Any = None


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "doc.yaml") -> Path:
        path = Path(name)
        path.write_text(textwrap.dedent(text))
        return path
    return write


def load(path: Path, **overrides: str) -> Document[Doc]:
    return load_document(path, Doc, overrides=overrides)


def errors(path: Path, **overrides: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        load(path, **overrides)
    return [str(i) for i in caught.value.issues]


# --- reading and YAML ----------------------------------------------------------

def test_loads_a_valid_document_with_its_lines(write: Any) -> None:
    doc = load(write("""\
        title: hello
        items:
          - name: a
          - {name: b, size: 3}
        table:
          x:
            name: c
        """))
    assert doc.model.items[1] == Item(name="b", size=3)
    loc = doc.locator
    assert loc.line(("items", 1, "size")) == 4
    assert loc.line(("table", "x", "name")) == 7
    assert loc.line(("items", 7, "nope")) == 2  # falls back to the nearest known ancestor
    assert loc.dotted(("items", 1, "size")) == "items[1].size"
    issue = loc.issue(("table", "x", "name"), "taken", hint="rename it")
    assert str(issue) == "doc.yaml:7: table.x.name: taken (hint: rename it)"


def test_a_key_yaml_reads_as_a_number_is_refused_with_the_naming_rule(write: Any) -> None:
    assert errors(write("title: t\nextra:\n  1: one\n")) == [
        "doc.yaml:3: extra: a key must be a name, not 1 (hint: YAML reads 007, 1e3 or true "
        "as a number or a truth value; a name starts with a letter)"]


def test_missing_file(write: Any) -> None:
    assert errors(Path("nope.yaml")) == ["nope.yaml: file not found (hint: check the path)"]


def test_directory(write: Any, tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert errors(Path("dir.yaml")) == ["dir.yaml: is a directory, not a file"]


def test_a_pipe_or_a_device_is_refused_not_waited_on(write: Any, tmp_path: Path) -> None:
    """Reading a pipe no one writes would block where no signal can stop it; a device
    such as /dev/zero never ends."""
    os.mkfifo(tmp_path / "fifo.yaml")
    assert errors(Path("fifo.yaml")) == [
        "fifo.yaml: not a regular file (hint: save it to a file first)"]
    assert errors(Path("/dev/zero")) == [
        "/dev/zero: not a regular file (hint: save it to a file first)"]


def test_a_file_nested_too_deeply_is_refused(write: Any) -> None:
    path = write("title: t\nextra: " + "[" * 1000 + "]" * 1000 + "\n")
    assert errors(path) == ["doc.yaml: nested too deeply to read "
                            "(hint: a lab file nests a few levels: was it generated?)"]


def test_not_utf8(write: Any, tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"title: t\nextra: \xff\n")
    assert errors(Path("bin.yaml")) == [
        "bin.yaml:2: not UTF-8 text (byte 16) (hint: save it as UTF-8; is it a YAML file?)"]


def test_an_unclosed_quote_is_said_where_it_opened(write: Any) -> None:
    assert errors(write('title: "t\nextra:\n  - x\n')) == [
        "doc.yaml:4: YAML syntax error while scanning a quoted scalar started on line 1: "
        "found unexpected end of stream (hint: close the quote opened on line 1)"]


def test_empty_file(write: Any) -> None:
    assert errors(write("")) == [
        "doc.yaml: file is empty (hint: start with the required fields: title)"]


def test_top_level_scalar(write: Any) -> None:
    assert errors(write("just text\n")) == [
        "doc.yaml:1: expected a mapping at the top level, got 'just text'"]


def test_duplicate_keys(write: Any) -> None:
    assert errors(write("title: a\ncount: 1\ntitle: b\n")) == [
        "doc.yaml:3: duplicate key 'title' "
        "(hint: each key may appear once per mapping; merge the two entries)"]


@pytest.mark.parametrize(("keys", "word"), [("1: a, true: b", "true"), ("1: a, 1.0: b", "1.0")])
def test_keys_only_python_finds_alike_are_no_names_not_duplicates(
        write: Any, keys: str, word: str) -> None:
    assert errors(write(f"title: t\nextra: {{{keys}}}\n")) == [
        f"doc.yaml:2: a key must be a name, not {word} (hint: YAML reads 007, 1e3 or true "
        "as a number or a truth value; a name starts with a letter)"]


def test_syntax_error(write: Any) -> None:
    assert errors(write("title: a\ncount: 1: 2\n")) == [
        "doc.yaml:2: YAML syntax error: mapping values are not allowed here "
        "(hint: check indentation, and quote values containing ': ' or ' #')"]


def test_merge_keys_have_a_line(write: Any) -> None:
    doc = load(write("""\
        title: t
        table:
          base: &base {name: a, size: 2}
          copy:
            <<: *base
            name: b
        """))
    assert doc.model.table["copy"] == Item(name="b", size=2)
    assert doc.locator.line(("table", "copy", "size")) == 4  # merged: the mapping's line


# --- pydantic errors ---------------------------------------------------------------

def test_all_pydantic_errors_at_once_in_file_order(write: Any) -> None:
    assert errors(write("""\
        count: many
        items:
          - size: 2
          - {name: b, colour: red}
        table:
          x: 5
        """)) == [
        "doc.yaml:1: title: required field missing",
        "doc.yaml:1: count: expected an integer, got 'many'",
        "doc.yaml:3: items[0].name: required field missing (hint: what the item is called)",
        "doc.yaml:4: items[1].colour: unknown field (hint: known fields: name, size)",
        "doc.yaml:6: table.x: expected a mapping, got 5",
    ]


def test_unknown_field_suggests_the_closest_one(write: Any) -> None:
    # The "missing" error for the intended field would only repeat the point.
    assert errors(write("titel: t\n")) == [
        "doc.yaml:1: titel: unknown field (hint: did you mean 'title'?)"]


# --- templating ---------------------------------------------------------------------

def test_template_keeps_native_types(write: Any) -> None:
    doc = load(write("""\
        vars: {n: 4, word: hi}
        title: "{{ word }} x{{ n }}"
        count: "{{ n * 2 }}"
        items: "{{ [{'name': word}] }}"
        """))
    assert doc.model.title == "hi x4"
    assert doc.model.count == 8
    assert doc.model.items == [Item(name="hi")]


def test_overrides_win_over_vars_and_are_yaml(write: Any) -> None:
    path = write("""\
        vars: {n: 4}
        title: "{{ name }}"
        count: "{{ n }}"
        """)
    doc = load(path, n="512", name="yes")
    assert (doc.model.count, doc.model.title) == (512, "yes")  # YAML 1.2: yes is a string
    assert load(path, n="7", name="").model.title == ""


def test_vars_are_taken_literally(write: Any) -> None:
    doc = load(write("""\
        vars: {raw: "{{ not_rendered }}"}
        title: t
        """))
    assert doc.model.vars == {"raw": "{{ not_rendered }}"}


def test_unused_overrides_are_reported_not_rejected(write: Any) -> None:
    path = write("""\
        vars: {declared: 1}
        title: "{{ used }}"
        """)
    doc = load(path, used="a", declared="2", stray="3")
    assert doc.unused_overrides == {"stray"}


def test_undefined_variables(write: Any) -> None:
    assert errors(write("""\
        title: "{{ a }} and {{ b }}"
        count: "{{ c.d }}"
        extra: ["{{ e | default('fine') }}", "{{ [f] }}", "{{ {'g': h} }}"]
        """), c="{}") == [
        # One per value: the first name Jinja2 trips over, inside a list or mapping too.
        "doc.yaml:1: title: undefined variable 'a' (hint: define it under vars: or pass --set a=VALUE)",
        "doc.yaml:2: count: template error: 'dict object' has no attribute 'd'",
        "doc.yaml:3: extra[1]: undefined variable 'f' (hint: define it under vars: or pass --set f=VALUE)",
        "doc.yaml:3: extra[2]: undefined variable 'h' (hint: define it under vars: or pass --set h=VALUE)",
    ]


def test_template_in_list_item_and_block_scalar(write: Any) -> None:
    assert errors(write("""\
        title: t
        items:
          - name: ok
          - name: |
              {{ missing }}
        """)) == ["doc.yaml:4: items[1].name: undefined variable 'missing' "
                  "(hint: define it under vars: or pass --set missing=VALUE)"]


def test_template_result_of_the_wrong_type(write: Any) -> None:
    assert errors(write('vars: {n: x}\ntitle: t\ncount: "{{ n }}"\n')) == [
        "doc.yaml:3: count: expected an integer, got 'x'"]


# --- --set parsing ------------------------------------------------------------------

def test_parse_overrides() -> None:
    assert parse_overrides(["a=1", "b = x=y", "a=2", "c="]) == {"a": "2", "b": " x=y", "c": ""}


@pytest.mark.parametrize(("item", "message"), [
    ("novalue", "--set 'novalue': expected KEY=VALUE (hint: e.g. --set memory=512)"),
    ("=1", "--set '=1': expected KEY=VALUE (hint: e.g. --set memory=512)"),
    ("1x=1", "--set '1x=1': '1x' is not a variable name "
             "(hint: use letters, digits and '_', not starting with a digit)"),
    ("a-b=1", "--set 'a-b=1': 'a-b' is not a variable name "
              "(hint: use letters, digits and '_', not starting with a digit)"),
])
def test_parse_overrides_rejects(item: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_overrides([item])
    assert str(caught.value) == message


def test_nested_aliases_cannot_blow_the_document_up(write: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.source.MAX_VALUES", 1000)
    path = write("""\
        title: t
        a: &a [x, x, x, x, x, x, x, x, x, x]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        extra: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        """)
    assert errors(path) == [
        "doc.yaml:2: the document expands to more than 1000 values "
        "(hint: YAML aliases (*name) repeat what they name: use fewer, or none)"]
    # An alias or two is fine.
    assert load(write("title: t\nitems: [&i {name: n}, *i]\n")).model.items[1].name == "n"


def test_a_file_that_is_itself_too_large_is_not_blamed_on_aliases(
        write: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.source.MAX_VALUES", 1000)
    items = "".join(f"  - {{a: {i}, b: '*{i}'}}\n" for i in range(400))  # no alias
    assert errors(write(f"title: t\nextra:\n{items}")) == [
        "doc.yaml:335: the document expands to more than 1000 values "
        "(hint: a lab's file is far smaller: is it the right file?)"]


def test_a_template_error_keeps_its_hint_and_blames_no_set_option(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The playbook names a --set variable too, but the error is the node's name.
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text('name: p\nsteps:\n  - node: client\n'
                              '    run: "echo {{ nodes.sever.ipv4 }} {{ port }}"\n')
    topology = load_topology(ROOT / "topologies" / "pair.yaml")
    with pytest.raises(InputError) as caught:
        load_playbook(Path("p.yaml"), topology, overrides={"port": "8000"})
    assert [str(i) for i in caught.value.issues] == [
        "p.yaml:4: steps[0].run: template error: 'dict object' has no attribute 'sever' "
        "(hint: did you mean 'server'? nodes: client, server)"]


def test_a_template_cannot_reach_python_s_internals(write: Any, tmp_path: Path) -> None:
    """A file from anyone is safe to validate: its templates run in Jinja2's sandbox."""
    touched = tmp_path / "touched"
    path = write(f"""\
        title: "{{{{ cycler.__init__.__globals__.os.system('touch {touched}') }}}}"
        extra: "{{{{ [].append(1) }}}}"
        """)
    assert errors(path) == [
        "doc.yaml:1: title: template error: access to attribute '__init__' of 'type' object "
        "is unsafe (hint: a template reads its variables and works on plain values only)",
        "doc.yaml:2: extra: template error: access to attribute 'append' of 'list' object "
        "is unsafe (hint: a template reads its variables and works on plain values only)"]
    assert not touched.exists()


def test_a_template_cannot_make_a_value_that_exhausts_memory(write: Any) -> None:
    path = write("""\
        title: "{{ 'ab' * 3 }}"
        count: "{{ 2 ** 64 }}"
        extra: ["{{ 'x' * 10**9 }}", "{{ [0] * 10**7 }}", "{{ 7 ** 1000000 }}"]
        """)
    said = errors(path)
    assert [s.split(": template error: ")[-1].split(" (hint")[0] for s in said] == [
        "'x' * 1000000000 would be longer than 1,000,000",
        "a list * 10000000 would be longer than 1,000,000",
        "7 ** 1000000 is a number too large"]
    assert [s.split(":")[1] for s in said] == ["3"] * 3
    assert load(write("title: \"{{ 'ab' * 3 }}\"\ncount: \"{{ 2 ** 64 }}\"\n")).model == Doc(
        title="ababab", count=2 ** 64)


def test_a_long_text_repeated_by_aliases_is_stopped_early(
        write: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.source.MAX_CHARACTERS", 10_000)
    path = write(f"""\
        title: t
        a: &a "{'x' * 1000}"
        extra: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        """)
    assert errors(path) == [
        "doc.yaml:2: the document expands to more than 10000 characters "
        "(hint: YAML aliases (*name) repeat what they name: use fewer, or none)"]


def test_an_expression_failing_on_a_set_value_names_the_option(write: Any) -> None:
    path = write("""\
        title: t
        count: "{{ 256 // per }}"
        """)
    assert errors(path, per="0") == [
        "doc.yaml:2: count: template error: ZeroDivisionError: integer division or modulo "
        "by zero (from --set per=0)"]
