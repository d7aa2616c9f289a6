"""The public recall pages: anyone, signed in or not, may read every published recall (a gift
recipient, a second owner, a buyer we cannot reach; GPSR Art. 35(4)).

``/public/recalls`` (the index), ``/public/recalls/{recall_id}`` (one recall, with schema.org
JSON-LD) and ``/public/recalls.atom`` (the feed). They read ``public_recalls`` only, never a
customer's data, set no cookie and read none: the language is ``?lang=`` or Accept-Language. Each
answer carries a weak ETag of what it shows and may be cached by anyone (``public``); a request
whose If-None-Match matches gets 304.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from customer_api import i18n, label_form
from customer_api.models import PublicRecall as Row
from customer_api.public_view import (
    PublicRecall,
    atom_feed,
    etag,
    json_ld,
    label_check_view,
    matches,
    recall_view,
)
from customer_api.templating import TEMPLATES
from recall_shared import events as ev
from recall_shared.http import SessionDep

router = APIRouter(include_in_schema=False)

MAX_LISTED = 500
HEADERS = {
    "Cache-Control": "public, max-age=300",
    "Vary": "Accept-Language",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _lang(request: Request) -> str:
    return (
        i18n.supported(request.query_params.get("lang"))
        or i18n.parse_accept_language(request.headers.get("accept-language"))
        or i18n.DEFAULT
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _row(row: Row) -> PublicRecall:
    return PublicRecall(
        recall_id=row.recall_id,
        version=row.version,
        status=row.status,
        snapshot=ev.RecallSnapshot.model_validate(row.snapshot),
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        close_reason=row.close_reason,
    )


def _answer(
    request: Request, tag: str, body: bytes | None, media_type: str, status_code: int = 200
) -> Response:
    if status_code == 200 and matches(request.headers.get("if-none-match"), tag):
        response = Response(status_code=304)
    else:
        response = Response(body, status_code=status_code, media_type=media_type)
    response.headers.update(HEADERS)
    if status_code == 200:
        response.headers["ETag"] = tag
    return response


def _page(request: Request, template: str, lang: str, **ctx: Any) -> bytes:
    return (
        TEMPLATES.get_template(template)
        .render(
            lang=lang,
            s=i18n.strings(lang),
            languages=i18n.LANGUAGE_NAMES,
            path=request.url.path,
            session=None,
            **ctx,
        )
        .encode()
    )


async def _listed(session: SessionDep) -> list[PublicRecall]:
    rows = await session.scalars(
        select(Row).order_by(Row.published_at.desc(), Row.recall_id).limit(MAX_LISTED)
    )
    return [_row(r) for r in rows]


@router.get("/public/recalls", response_class=HTMLResponse)
async def public_index(request: Request, session: SessionDep) -> Response:
    lang = _lang(request)
    rows = await _listed(session)
    tag = etag("index", lang, [(r.recall_id, r.version, r.status) for r in rows])
    if matches(request.headers.get("if-none-match"), tag):
        return _answer(request, tag, None, "text/html")
    recalls = [recall_view(r, lang) for r in rows]
    body = _page(request, "public_index.html.j2", lang, recalls=recalls)
    return _answer(request, tag, body, "text/html; charset=utf-8")


@router.get("/public/recalls.atom")
async def public_feed(request: Request, session: SessionDep) -> Response:
    lang = _lang(request)
    rows = await _listed(session)
    tag = etag("feed", lang, _base_url(request), [(r.recall_id, r.version, r.status) for r in rows])
    body = atom_feed(rows, _base_url(request), lang)
    return _answer(request, tag, body, "application/atom+xml; charset=utf-8")


@router.get("/public/recalls/{recall_id}", response_class=HTMLResponse)
async def public_recall(request: Request, recall_id: str, session: SessionDep) -> Response:
    lang = _lang(request)
    row = await session.get(Row, recall_id) if len(recall_id) <= 36 else None
    if row is None:
        body = _page(request, "public_missing.html.j2", lang)
        return _answer(request, "", body, "text/html; charset=utf-8", status_code=404)
    recall = _row(row)
    typed = label_form.read(request.query_params)
    # an answer to what someone typed (nothing to check once withdrawn); a bad date: none, the
    # form again with the date named at its field (422)
    answering = typed.anything and recall.status != "withdrawn"
    refused = answering and bool(typed.bad_dates)
    checked = label_check_view(recall, typed, lang) if answering and not refused else None
    tag = etag("recall", lang, _base_url(request), recall.recall_id, recall.version, recall.status)
    if not answering and matches(request.headers.get("if-none-match"), tag):
        return _answer(request, tag, None, "text/html")
    body = _page(
        request,
        "public_recall.html.j2",
        lang,
        r=recall_view(recall, lang),
        json_ld=json_ld(recall, _base_url(request)),
        typed=typed.typed,
        dates=label_form.date_inputs(
            label_form.dates_asked(recall.snapshot.rules), typed, i18n.strings(lang)
        ),
        checked=checked,
        refused=refused,
    )
    response = _answer(
        request, tag, body, "text/html; charset=utf-8", status_code=422 if refused else 200
    )
    if answering:  # an answer to what someone typed: neither cached nor validated
        response.headers["Cache-Control"] = "no-store"
        if "etag" in response.headers:
            del response.headers["ETag"]
    return response
