"""The one Jinja2 environment for the project's own templates (lab/templates)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def environment() -> Environment:
    # Autoescape XML/HTML templates: node names and paths end up inside them.
    return Environment(
        loader=PackageLoader("lab", "templates"),
        undefined=StrictUndefined,
        autoescape=lambda name: (name or "").endswith((".xml.j2", ".html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
