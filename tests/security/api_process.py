"""Serve the API over a fresh SQLite store in this process, as `policy-monitor serve` does, and
print its URL: the request-size probes measure this process's memory from outside.

    python tests/security/api_process.py DATABASE_URL
"""

from __future__ import annotations

import sys

from monitor.api.app import create_app
from monitor.api.server import serve_forever
from monitor.config import parse_config
from monitor.store.core import Store


def main() -> None:
    url = sys.argv[1]
    config = parse_config({"database": {"url": url}})
    store = Store.open(url)
    app = create_app(store, config)
    serve_forever(app, host="127.0.0.1", port=0, on_ready=lambda bound: print(bound, flush=True))


if __name__ == "__main__":
    main()
