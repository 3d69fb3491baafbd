"""HTTP route ``GET /coverage``: what a payer's rules say about one billing code or one drug on a
date, as JSON or as Da Vinci CRD `coverage-information` extensions (``format=crd``). Needs an API
key with scope ``read``."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from monitor.api.auth import require_scope
from monitor.api.deps import AsOf, OptionalText, StoreDep
from monitor.fhir import FHIR_JSON, coverage_crd, coverage_json, find_coverage

router = APIRouter(dependencies=[Depends(require_scope("read"))])


@router.get(
    "/coverage",
    summary="Coverage answers for one code or drug of one payer (JSON or CRD)",
    responses={
        200: {
            "content": {"application/json": {}, FHIR_JSON: {}},
            "description": '`{"items": [...]}`, or with `format=crd` `{"extension": [...]}`',
        },
        404: {"description": "No rule of the payer matches"},
        422: {"description": "No payer, neither or both of code and drug, or a bad date"},
    },
)
async def coverage(
    request: Request,
    store: StoreDep,
    payer: OptionalText = None,
    code: OptionalText = None,
    drug: OptionalText = None,
    as_of: AsOf = None,
    format: Literal["json", "crd"] = "json",
) -> Response:
    """Per matching rule row: covered / not-covered / conditional, whether PA and clinical
    documentation are needed, the billing code, the reason, the document link and the canonical
    URL of the PA checklist's Questionnaire. `as_of` defaults to today."""
    if payer is None:
        raise HTTPException(422, detail="payer is required")
    if (code is None) == (drug is None):
        raise HTTPException(422, detail="give exactly one of code and drug")
    day = as_of or request.app.state.today()
    answers = await run_in_threadpool(
        find_coverage,
        store,
        payer=payer,
        code=code,
        drug=drug,
        as_of=day,
        public_url=request.app.state.config.api.public_url,
    )
    if not answers:
        what = f"code {code}" if code else f"drug {drug}"
        raise HTTPException(404, detail=f"no rules of payer {payer} for {what} as of {day}")
    if format == "crd":
        return Response(json.dumps(coverage_crd(answers)), media_type=FHIR_JSON)
    body = {"as_of": day.isoformat(), "items": [coverage_json(a) for a in answers]}
    return Response(json.dumps(body), media_type="application/json")
