"""A SQLite database already at the schema head, copied from one the session migrated once."""

from __future__ import annotations

import shutil
from pathlib import Path


def migrated_sqlite(template: Path, path: Path) -> str:
    """The URL of a new SQLite database at `path` already at the schema head (a copy of
    `template`, the `migrated_sqlite_template` fixture); opening it migrates nothing."""
    assert not path.exists(), path
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"
