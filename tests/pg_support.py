"""The test PostgreSQL server (127.0.0.1:5432, trust auth, database `test`): its URL and whether it
answers. A module of its own so tests can import it (two conftest modules share one name)."""

from __future__ import annotations

import socket

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_available() -> str | None:
    """None when the server answers, else the reason it cannot be used."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            pass
    except OSError as exc:
        return f"no PostgreSQL server on 127.0.0.1:5432 ({exc})"
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            pass
    except Exception as exc:
        return f"PostgreSQL on 127.0.0.1:5432 refused database 'test' ({exc})"
    return None
