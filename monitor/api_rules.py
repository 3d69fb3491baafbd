"""HTTP routes for rule tables and PA checklists (issue 5): included by `monitor.api`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
