"""Sub-commands for the MCD bulk exports: backfill, reconcile (issue 4)."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Add this module's parsers to `commands` (argparse sub-parsers); each sets ``handler``."""
