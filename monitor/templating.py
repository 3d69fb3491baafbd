"""The one Jinja2 set-up of the project: the change page, checklists and emails all render
through it, with the same rules."""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def template_environment(package: str) -> jinja2.Environment:
    """The templates in `package`'s ``templates/`` folder.

    Everything is autoescaped but plain text and Markdown (``.txt``, ``.md``): what the
    templates show comes from fetched documents. Plain text and Markdown are read by people and
    tools as written, so escaping there would only show "&lt;". A name the template uses and
    the context lacks is an error, not an empty string.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=jinja2.select_autoescape(
            disabled_extensions=("txt", "md"), default=True, default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
