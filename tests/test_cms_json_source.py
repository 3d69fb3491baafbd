"""The Coverage API source reads its responses with orjson: its bundles and report-row
fingerprints must be the bytes json gave, whatever the API sends (floats, ints past 64 bits,
NaN, escapes, a byte-order mark), served here by a small loopback API."""

from __future__ import annotations

import asyncio
import hashlib
import json

import orjson
import pytest
from aiohttp import web

from diffing.serialize import plain_json
from sources.cms_coverage import CmsCoverageSource
from sources.options import CmsCoverageOptions

# Raw JSON texts, so what json and orjson read differently is in the bytes themselves.
ARTICLES: dict[int, dict[str, str]] = {
    # Plain values only: read by orjson, written by orjson.
    1: {
        "detail": '{"article_id": 1, "title": "Plain \\u00e9 \\u2028", "description": "<p>x</p>"}',
        "hcpc_code": '{"hcpc_code_id": "11200", "hcpc_code_group": 1, "long_description": "a"}',
    },
    # Floats in a table, and a number json writes as 1e-05 and orjson as 0.00001.
    2: {
        "detail": '{"article_id": 2, "title": "Floats", "score": 1.5}',
        "hcpc_code": '{"hcpc_code_id": "11201", "hcpc_code_group": 2, "ratio": 0.00001}',
    },
    # An int past 64 bits (orjson reads a float) in the detail record only.
    3: {
        "detail": '{"article_id": 3, "title": "Big", "big": 123456789012345678901234567890}',
        "hcpc_code": '{"hcpc_code_id": "11202", "hcpc_code_group": 18446744073709551616}',
    },
    # NaN and Infinity (json reads them, orjson refuses).
    4: {
        "detail": '{"article_id": 4, "title": "Not numbers", "nan": NaN, "inf": -Infinity}',
        "hcpc_code": '{"hcpc_code_id": "11203", "hcpc_code_group": 1e400}',
    },
}
REPORT_ROWS = [
    f'{{"document_id": {n}, "document_version": 1, "title": "Article {n}", "url": ""'
    + (', "weight": 2.50' if n == 2 else "")
    + (', "serial": 98765432109876543210' if n == 3 else "")
    + "}"
    for n in ARTICLES
]


def _envelope(rows: list[str]) -> str:
    return '{"data": [' + ", ".join(rows) + '], "meta": {"next_token": ""}}'


def _app() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if path == "/v1/metadata/license-agreement/":
            body = '{"data": [{"Token": "t"}]}'
        elif path == "/v1/reports/local-coverage-articles/":
            body = _envelope(REPORT_ROWS)
        elif path == "/v1/data/article/":
            body = _envelope([ARTICLES[int(request.query["articleid"])]["detail"]])
        elif path.startswith("/v1/data/article/"):
            table = path.rsplit("/", 1)[1].replace("-", "_")
            row = ARTICLES[int(request.query["articleid"])].get(table)
            body = _envelope([row] if row else [])
        else:
            body = _envelope([])
        data = body.encode("utf-8")
        if request.query.get("articleid") == "2" and path == "/v1/data/article/":
            data = b"\xef\xbb\xbf" + data  # a byte-order mark: json reads it, orjson not
        return web.Response(body=data, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _expected_bundle(n: int) -> bytes:
    """The bundle as json made it: `diffing.cms.make_bundle` of json.loads's values."""
    report = json.loads(REPORT_ROWS[n - 1])
    tables = {
        name: [json.loads(ARTICLES[n][name])] if name in ARTICLES[n] else []
        for name in (
            "hcpc_code",
            "icd10_covered",
            "icd10_covered_group",
            "icd10_noncovered",
            "hcpc_modifier",
        )
    }
    body = {
        "format": "cms-coverage-bundle/1",
        "doc_type": "Article",
        "report": report,
        "detail": json.loads(ARTICLES[n]["detail"]),
        "tables": dict(sorted(tables.items())),
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        errors="surrogatepass"
    )


async def _fetch_all() -> tuple[dict[str, str], dict[str, bytes | str]]:
    runner = web.AppRunner(_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    source = CmsCoverageSource(
        name="cms",
        options=CmsCoverageOptions(
            base_url=f"http://127.0.0.1:{port}", document_types=("article",), max_retries=0
        ),
    )
    try:
        listing = await source.list_documents()
        fingerprints = {d.key: d.fingerprint for d in listing.documents}
        fetched: dict[str, bytes | str] = {}
        async for result in source.fetch(listing.documents):
            content = getattr(result, "content", None)
            fetched[result.key] = content if content is not None else result.message  # type: ignore[union-attr]
    finally:
        await source.aclose()
        await runner.cleanup()
    return fingerprints, fetched


def test_bundles_and_fingerprints_are_the_bytes_json_gave() -> None:
    fingerprints, fetched = asyncio.run(_fetch_all())
    for n in ARTICLES:
        row = json.loads(REPORT_ROWS[n - 1])
        assert fingerprints[f"A{n}"] == hashlib.sha256(_json_bytes(row)).hexdigest()
    for n in ARTICLES:
        assert fetched[f"A{n}"] == _expected_bundle(n), n


def test_the_awkward_values_here_reach_json() -> None:
    """The cases above take json's paths: orjson reads them otherwise, or not at all."""
    assert plain_json(orjson.loads(ARTICLES[1]["detail"]))
    assert not plain_json(orjson.loads(ARTICLES[2]["hcpc_code"]))  # a float
    assert not plain_json(orjson.loads(ARTICLES[3]["detail"]))  # a big int read as a float
    assert plain_json(json.loads(ARTICLES[3]["detail"]))  # which json reads as an int
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(ARTICLES[4]["detail"])
