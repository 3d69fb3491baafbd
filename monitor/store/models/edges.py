"""The page edges a payer document version hands its successor's parse (a light reference:
each page's first and last lines, never the document)."""

from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models.core import Base


class PageEdgesRow(Base):
    """By the sha256 of the version's bytes (like `Payload`): written when a worker parsed
    them, before and whatever the publishing, so a version held for review has one too."""

    __tablename__ = "page_edges"

    content_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    pages: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed JSON: [[line, …], …]
