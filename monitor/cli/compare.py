"""Sub-command ``compare``: one drug's criteria side by side, one row per payer."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Add this module's parser to `commands` (argparse sub-parsers); it sets ``handler``."""
