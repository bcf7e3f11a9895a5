"""report.html: the report data drawn as one self-contained page.

The page (lab/templates/report.html.j2) embeds the data as JSON and draws it
with inline JavaScript when it loads, so it needs nothing but a browser: no
server, no network, works from file://.
"""

from __future__ import annotations

from typing import Any

from lab.render import render


def render_report(data: dict[str, Any]) -> str:
    """The page for `data`, shaped as `lab.export.report_data.report_data` documents."""
    # The template embeds `data` through Jinja's `tojson`, which escapes <, >, & and ' as
    # \u003c…: a traced name such as "</script>" cannot end the <script> that holds it.
    return render("report.html.j2", title=data["title"], data=data)
