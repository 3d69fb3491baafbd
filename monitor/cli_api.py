"""Sub-commands for the HTTP API: serve, apikey, review (issue 5)."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Add this module's parsers to `commands` (argparse sub-parsers); each sets ``handler``."""
