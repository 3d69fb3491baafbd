"""Sub-commands for the HTTP API: serve, apikey create/revoke/list, review."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import Config


# monitor.store.api_keys.Scope, lowest first (the CLI names them without importing the store;
# tests/test_cli_startup.py keeps the two equal).
SCOPES = ("read", "review", "admin")


def register(commands: Any) -> None:
    """Add this module's parsers to `commands` (argparse sub-parsers); each sets ``handler``."""
    serve = commands.add_parser("serve", help="serve the HTTP API (uvicorn) until SIGTERM/SIGINT")
    serve.add_argument("--host", help="listen address (default: [api] host)")
    serve.add_argument(
        "--port", type=int, help="TCP port, 0 for any free one (default: [api] port)"
    )
    serve.set_defaults(handler=cmd_serve)

    apikey = commands.add_parser("apikey", help="create, revoke and list API keys")
    actions = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scope",
        required=True,
        choices=list(SCOPES),
        help="read < review < admin; a key holds its scope and every lower one",
    )
    create.set_defaults(handler=cmd_apikey_create)
    revoke = actions.add_parser("revoke", help="revoke a key: its requests get 401 from now on")
    revoke.add_argument("key", metavar="NAME|ID", help="the key's name or id (see apikey list)")
    revoke.set_defaults(handler=cmd_apikey_revoke)
    listing = actions.add_parser("list", help="list keys (names, scopes, prefixes; never keys)")
    listing.set_defaults(handler=cmd_apikey_list)

    review = commands.add_parser("review", help="record a review of a change")
    review.add_argument("change_id", type=int, metavar="CHANGE_ID")
    review.add_argument("--reviewer", required=True, help="who reviewed it")
    review.add_argument("--note", default="", help="what they concluded")
    review.set_defaults(handler=cmd_review)


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from monitor.api.app import create_app
    from monitor.api.server import serve_forever
    from monitor.store.core import Store

    host = args.host or config.api.host
    port = config.api.port if args.port is None else args.port
    store = Store.open(config.database.url)
    try:
        serve_forever(
            create_app(store, config),
            host=host,
            port=port,
            on_ready=lambda url: print(f"serving the API on {url}", flush=True),
        )
    finally:
        store.close()
    return 0


def cmd_apikey_create(config: Config, args: argparse.Namespace) -> int:
    from monitor.api.auth import create_api_key
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        key = create_api_key(store, args.name, args.scope)
    finally:
        store.close()
    print(key)
    print(
        f"API key {args.name!r} (scope {args.scope}) created. It is shown only now: "
        "store it somewhere safe.",
        file=sys.stderr,
    )
    return 0


def cmd_apikey_revoke(config: Config, args: argparse.Namespace) -> int:
    from monitor.api.auth import revoke_api_key
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        info = revoke_api_key(store, args.key)
    finally:
        store.close()
    print(f"revoked API key {info.name!r} (id {info.id}, prefix {info.prefix})")
    return 0


def cmd_apikey_list(config: Config, _args: argparse.Namespace) -> int:
    from monitor.store.api_keys import list_api_keys
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        keys = list_api_keys(store)
    finally:
        store.close()
    print(f"{'id':>4}  {'name':24}  {'scope':6}  {'prefix':12}  {'created':16}  status")
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
        print(
            f"{key.id:>4}  {key.name:24}  {key.scope.value:6}  {key.prefix:12}  "
            f"{key.created_at:%Y-%m-%d %H:%M}  {state}"
        )
    return 0


def cmd_review(config: Config, args: argparse.Namespace) -> int:
    from monitor.store.core import Store
    from monitor.store.reads import record_review

    reviewer = args.reviewer.strip()
    if not reviewer:
        print("policy-monitor: error: --reviewer must not be blank", file=sys.stderr)
        return 2
    store = Store.open(config.database.url)
    try:
        added = record_review(store, args.change_id, reviewer=reviewer, note=args.note)
    finally:
        store.close()
    if added is None:
        print(f"policy-monitor: error: no change with id {args.change_id}", file=sys.stderr)
        return 1
    print(f"change {added.change_id} reviewed by {added.reviewer} (review {added.id})")
    return 0
