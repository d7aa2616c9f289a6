"""The customer's pages, server-rendered: "Your Orders" with the recall banner, "Your recalls and
product safety alerts", one alert in full, and the forms to acknowledge, answer "not affected" and
choose a remedy.

- Authentication: the same customer JWT as the JSON API, carried in an HttpOnly, SameSite=Lax cookie
  set by ``GET /signin?token=...``. No valid cookie: a redirect to the sign-in explanation, never
  anyone's data.
- Authorization: everything goes through :mod:`customer_api.logic`, scoped to the cookie's customer;
  another customer's alert is the same 404 page as a missing one.
- CSRF: every form carries a per-session token (an HMAC of the session token under a key derived
  from the service's secret) that is checked on POST, on top of the SameSite=Lax cookie.
- Escaping: Jinja autoescape is on for every template; seller-written text is never marked safe.
- Language: ``?lang=en|de`` (remembered in a cookie), else Accept-Language, else English.
- Views: the first opening of each version of an alert page is recorded (views.py,
  ``alert.viewed.v1``), for the notifier's "not opened after N days" fall back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import parse_qs, quote, urlencode

import jwt
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api import case_progress, i18n, label_checks, label_form, logic, views
from customer_api.label_form import DateField, LabelForm
from customer_api.models import CustomerAlert, RemedyRequest
from customer_api.templating import TEMPLATES
from recall_shared import events as ev
from recall_shared.auth import CustomerTokenVerifier, InvalidToken, issue_customer_token
from recall_shared.http import SessionDep
from recall_shared.notice_view import fallback_note, notice_items, remedy_texts, untranslated
from recall_shared.remedy_states import ENDED_CASE_STATES

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "recall_session"
LANG_COOKIE = "recall_lang"
MAX_FORM_BYTES = 16_384
DEMO_CUSTOMERS = (
    ("alice", "Alice Example"),
    ("bruno", "Bruno Beispiel"),
    ("carol", "Carol Business"),
    ("dave", "Dave Admin"),
)
# Which case states each remedy passes through, in order (refund-logistics' state machine).
REMEDY_STEPS: dict[str, tuple[str, ...]] = {
    "refund_with_return": ("requested", "label_issued", "item_received", "refunded"),
    "refund_on_destruction": ("requested", "refunded"),
    "replacement": ("requested", "replacement_shipped"),
    "repair": ("requested", "repaired"),
}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Cookie, Accept-Language",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the sign-in URL carries a token; never pass it on
    "X-Frame-Options": "DENY",
}
CSS_PATH = Path(__file__).parent / "templates" / "pages.css"


# ------------------------------------------------------------------ request context


@dataclass(frozen=True)
class PageSession:
    customer_id: str
    csrf_token: str


class _SignInRequired(Exception):
    def __init__(self, path: str, expired: bool) -> None:
        self.path, self.expired = path, expired


def _settings(request: Request) -> Any:
    return request.app.state.runtime.settings


def _csrf_token(request: Request, session_token: str) -> str:
    key = hashlib.sha256(
        b"customer-api/pages/csrf\0" + _settings(request).jwt_secret.encode()
    ).digest()
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()[:40]


def _lang(request: Request) -> str:
    return (
        i18n.supported(request.query_params.get("lang"))
        or i18n.supported(request.cookies.get(LANG_COOKIE))
        or i18n.parse_accept_language(request.headers.get("accept-language"))
        or i18n.DEFAULT
    )


def _session(request: Request) -> PageSession:
    """The signed-in customer, from the session cookie; otherwise off to the sign-in explanation
    (and back to this page, or to the recalls page after a form post, afterwards)."""
    back = request.url.path if request.method == "GET" else "/recalls"
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _SignInRequired(back, expired=False)
    verifier: CustomerTokenVerifier = request.app.state.token_verifier
    try:
        customer_id = verifier.customer_id(token)
    except InvalidToken:
        raise _SignInRequired(back, expired=True) from None
    return PageSession(customer_id=customer_id, csrf_token=_csrf_token(request, token))


def _secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).environment == "production"


def _finish(request: Request, response: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    chosen = i18n.supported(request.query_params.get("lang"))
    if chosen and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            secure=_secure_cookies(request),
            path="/",
        )
    return response


def _render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> Response:
    lang = _lang(request)
    html = TEMPLATES.get_template(template).render(
        lang=lang,
        s=i18n.strings(lang),
        languages=i18n.LANGUAGE_NAMES,
        path=ctx.pop("path", request.url.path),  # a form re-rendered: the page's own address
        session=ctx.pop("session", None),
        **ctx,
    )
    return _finish(request, HTMLResponse(html, status_code=status_code))


def _redirect(request: Request, url: str) -> Response:
    return _finish(request, RedirectResponse(url, status_code=303))


def _not_found(request: Request, session: PageSession | None) -> Response:
    return _render(
        request,
        "message.html.j2",
        404,
        session=session,
        title_key="notfound.title",
        text_key="notfound.text",
    )


def _safe_next(value: str | None, default: str = "/recalls") -> str:
    """Only a path on this site: never an absolute or protocol-relative URL (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the pages' forms), bounded in size."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    return {
        k: v[0]
        for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
    }


def _csrf_ok(session: PageSession, form: dict[str, str]) -> bool:
    return hmac.compare_digest(form.get("csrf_token", ""), session.csrf_token)


def install_pages(app: FastAPI) -> None:
    @app.exception_handler(_SignInRequired)
    async def on_sign_in_required(request: Request, exc: _SignInRequired) -> Response:
        query = {"next": exc.path}
        if exc.expired:
            query["expired"] = "1"
        response = _redirect(request, "/signin?" + urlencode(query))
        if exc.expired:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    app.include_router(router)


# ------------------------------------------------------------------ view models


def _localized(recall: ev.RecallContent, lang: str) -> ev.LocalizedText | None:
    """The seller's translation into ``lang``, if there is one and the main texts are in another
    language."""
    if recall.locale.split("-")[0].lower() == lang:
        return None
    for key, texts in recall.texts.items():
        if key.split("-")[0].split("_")[0].lower() == lang:
            return texts
    return None


def _safe_image(url: str) -> bool:
    return url.startswith(("https://", "http://", "/", "data:image/")) and not url.startswith("//")


def _progress(remedy: RemedyRequest, s: Mapping[str, str], lang: str) -> dict[str, Any]:
    state = remedy.case_state
    steps = list(REMEDY_STEPS.get(remedy.remedy, ("requested",)))
    if state == "referred_to_seller":
        steps = ["requested", "referred_to_seller", *steps[1:]]
    elif state == "rejected":
        steps = ["requested", "rejected"]
    elif state == "closed":
        steps = [*steps, "closed"]
    current = steps.index(state) if state in steps else 0
    final = state in ENDED_CASE_STATES
    items = []
    for i, step in enumerate(steps):
        if i < current or (i == current and final):
            marker = s["progress.done"]
        elif i == current:
            marker = s["progress.current"]
        else:
            marker = s["progress.next"]
        items.append(
            {
                "label": s[f"state.{step}"],
                "marker": marker,
                "current": i == current,
                "done": i < current or (i == current and final),
            }
        )
    out: dict[str, Any] = {
        "remedy": s[f"remedy.{remedy.remedy}"],
        "state": s.get(f"state.{state}", state),
        "steps": items,
        "refunded": None,
        "reason": remedy.reason,
    }
    if remedy.refunded_amount and remedy.refunded_amount > 0:
        out["refunded"] = s["progress.refunded"].format(
            amount=i18n.fmt_money(remedy.refunded_amount, remedy.currency, lang)
        )
    out["case"] = _case_details(remedy, s, lang)
    return out


def _case_details(remedy: RemedyRequest, s: Mapping[str, str], lang: str) -> dict[str, Any]:
    """The case's timeline, what is still needed, the proof upload and the return label
    (case_progress.py decides; issue 14)."""
    entries = remedy.timeline or []
    has_case = remedy.case_id is not None
    label = (
        {"url": remedy.label_url, "tracking": remedy.label_tracking_number or ""}
        if (remedy.label_url or "").startswith(("https://", "http://"))
        and remedy.case_state == "label_issued"
        else None
    )
    need = case_progress.needed(
        remedy.remedy,
        remedy.case_state,
        remedy.waiting_for,
        has_case,
        case_progress.rejected_last(entries),
    )
    return {
        "timeline": [
            {"label": s[step.key], "at": i18n.fmt_date(step.at, lang)}
            for step in case_progress.timeline(entries)
        ],
        "needed": s[need] if need else None,
        "upload": case_progress.may_upload_proof(
            remedy.remedy, remedy.case_state, remedy.waiting_for, has_case
        ),
        "label": label,
    }


def alert_view(
    a: CustomerAlert,
    remedy: RemedyRequest | None,
    lang: str,
    *,
    recall_withdrawn: bool = False,
    dates: Sequence[DateField] = (),
    form: LabelForm | None = None,
) -> dict[str, Any]:
    """Everything a template shows of one alert, in the customer's language; values are plain
    text. ``recall_withdrawn``: the alert closed because its recall was withdrawn. ``dates``: the
    label dates the recall's scope asks for; ``form``: the label check as typed, shown again when
    it was refused (a bad date)."""
    s = i18n.strings(lang)
    st = ev.AlertState.model_validate(a.state)
    rc = st.recall
    tr = _localized(rc, lang)

    def text(field: str) -> str:
        return (getattr(tr, field) if tr else "") or getattr(rc, field)

    title = text("title")
    unknown: list[str] = []
    for line in st.lines:
        for attr in line.unknown_attributes:
            if attr not in unknown:
                unknown.append(attr)
    what = (
        ", ".join(s.get(f"attr.{x}", x) for x in unknown) if unknown else s["check_label.generic"]
    )
    is_open = a.status == "open"
    unresolved = is_open and a.resolution is None and remedy is None
    return {
        "id": a.alert_id,
        "url": f"/recalls/{quote(a.alert_id, safe='')}",
        "kind": s[f"kind.{rc.kind}"],
        "title": title,
        "severity": s[f"severity.{rc.severity}"],
        "severity_key": rc.severity,
        "hazard": text("hazard"),
        "stop_using": text("stop_using"),
        "product_description": text("product_description"),
        "consumer_contact": text("consumer_contact"),
        "images": [
            {"src": url, "alt": s["image_alt"].format(n=i, title=title)}
            for i, url in enumerate((u for u in rc.images if _safe_image(u)), start=1)
        ],
        "lines": [
            {
                "text": s["line"].format(
                    title=line.title or title,
                    order=line.order_id,
                    date=i18n.fmt_date(line.purchased_at, lang),
                    units=line.units,
                ),
                "details": [
                    x
                    for x in (
                        s["line.lot"].format(lot=line.lot) if line.lot else "",
                        s["line.serial"].format(serial=line.serial) if line.serial else "",
                    )
                    if x
                ],
            }
            for line in st.lines
        ],
        "possibly": st.tier == "possibly_affected",
        "tier_text": s[f"tier.{st.tier}"],
        "check_label": s["check_label"].format(what=what),
        "status": a.status,
        "status_text": s["status.recall_withdrawn"]
        if recall_withdrawn and a.status == "closed"
        else s.get(f"status.{a.status}", ""),
        "resolution": a.resolution,
        "acknowledged": a.acknowledged_at is not None,
        "remedies": [
            {
                "type": r.type,
                "label": s[f"remedy.{r.type}"],
                "instructions": r.instructions,
                "lang": r.lang,  # the seller's own words, untranslated: marked so
            }
            for r in remedy_texts(rc, lang)
        ],
        "can_choose": unresolved,
        "can_declare": unresolved and st.tier == "possibly_affected",
        "can_check": unresolved,  # am I affected? (label_checks)
        "label_form": {
            "lot": form.typed["lot"] if form else "",
            "serial": form.typed["serial"] if form else "",
            "dates": label_form.date_inputs(dates, form, s),
        },
        "can_acknowledge": is_open and a.acknowledged_at is None,
        "progress": _progress(remedy, s, lang) if remedy else None,
        **_notice_items(rc, lang),
    }


def _notice_items(content: ev.RecallContent, lang: str) -> dict[str, Any]:
    """The recall's notice items (brand, where the identifiers are, units, sale, incidents,
    helpline, references; recall_shared.notice_view) and the request to pass it on, shown last."""
    lines = notice_items(content, lang)
    return {
        "items": [x for x in lines if x.item != "pass_it_on"],
        "pass_it_on": next((x.text for x in lines if x.item == "pass_it_on"), ""),
        # the seller's texts left in the recall's language: marked (lang) and said so (note)
        "text_lang": untranslated(content, lang),
        "fallback_note": fallback_note(content, lang),
    }


def _orders(alerts: list[CustomerAlert], lang: str) -> list[dict[str, Any]]:
    """A plausible "Your Orders" list. This service keeps no order history of its own (that belongs
    to the marketplace's order system): the demo page shows the order lines named in the customer's
    alerts."""
    s = i18n.strings(lang)
    orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
    lines_seen: dict[str, dict[str, Any]] = {}
    all_lines = []
    for a in alerts:
        st = ev.AlertState.model_validate(a.state)
        for line in st.lines:
            all_lines.append((line, a, st))
    all_lines.sort(key=lambda t: t[0].purchased_at, reverse=True)
    for line, a, st in all_lines:
        order = orders.setdefault(
            line.order_id,
            {
                "heading": s["orders.order"].format(order=line.order_id),
                "placed": s["orders.placed"].format(date=i18n.fmt_date(line.purchased_at, lang)),
                "lines": [],
            },
        )
        key = f"{line.order_id}/{line.line_id}"
        entry = lines_seen.get(key)
        if entry is None:
            entry = {
                "title": line.title or st.recall.title,
                "qty": s["orders.line"].format(
                    units=line.units, price=i18n.fmt_money(line.unit_price, line.currency, lang)
                ),
                "recalls": [],
            }
            lines_seen[key] = entry
            order["lines"].append(entry)
        if a.status == "open":
            entry["recalls"].append(
                {"url": f"/recalls/{quote(a.alert_id, safe='')}", "label": s["orders.recalled"]}
            )
    return list(orders.values())


# ------------------------------------------------------------------ pages


@router.get("/assets/pages.css")
async def stylesheet() -> Response:
    return Response(
        CSS_PATH.read_text(encoding="utf-8"),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/")
async def home(request: Request) -> Response:
    return _redirect(request, "/orders")


@router.get("/orders", response_class=HTMLResponse)
async def orders_page(request: Request, db: SessionDep) -> Response:
    session = _session(request)
    lang = _lang(request)
    # The same query as GET /v1/me/banner chooses the alert and counts them (logic.banner).
    count, top = await logic.banner(db, request.app.state.read_pool, session.customer_id)
    banner = None
    if count and top is not None:
        s = i18n.strings(lang)
        banner = {
            "heading": s["banner.heading.one"]
            if count == 1
            else s["banner.heading.many"].format(count=count),
            "top": alert_view(top, None, lang),
        }
    alerts, _ = await logic.list_alerts(db, session.customer_id, state="all", limit=100)
    return _render(
        request, "orders.html.j2", session=session, banner=banner, orders=_orders(alerts, lang)
    )


@router.get("/recalls", response_class=HTMLResponse)
async def recalls_page(request: Request, db: SessionDep, cursor: str | None = None) -> Response:
    session = _session(request)
    lang = _lang(request)
    try:
        alerts, next_cursor = await logic.list_alerts(
            db, session.customer_id, state="all", limit=20, cursor=cursor
        )
    except logic.BadCursor:
        return _redirect(request, "/recalls")
    remedies = await logic.remedies_of(db, session.customer_id, [a.alert_id for a in alerts])
    # Open alerts that still need the customer first, then the rest, each newest first.
    alerts.sort(key=lambda a: 0 if (a.status == "open" and a.resolution is None) else 1)
    withdrawn = await logic.withdrawn_recalls(
        db, [a.recall_id for a in alerts if a.status == "closed"]
    )
    dates = await label_checks.dates_asked_of(db, [a.recall_id for a in alerts])
    views = [
        alert_view(
            a,
            remedies.get(a.alert_id),
            lang,
            recall_withdrawn=a.recall_id in withdrawn,
            dates=dates.get(a.recall_id, ()),
        )
        for a in alerts
    ]
    return _render(
        request,
        "recalls.html.j2",
        session=session,
        alerts=views,
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
        focus=request.query_params.get("alert"),
        older=f"/recalls?{urlencode({'cursor': next_cursor})}" if next_cursor else None,
    )


@router.get("/recalls/{alert_id}", response_class=HTMLResponse)
async def alert_page(alert_id: str, request: Request, db: SessionDep) -> Response:
    session = _session(request)
    return await _alert_page(
        request,
        db,
        session,
        alert_id,
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
        viewed=True,
    )


async def _alert_page(
    request: Request,
    db: AsyncSession,
    session: PageSession,
    alert_id: str,
    *,
    status_code: int = 200,
    form: LabelForm | None = None,
    done: str | None = None,
    error: str | None = None,
    viewed: bool = False,
) -> Response:
    """One alert in full; with ``form``, its label check as typed (refused: a bad date). With
    ``viewed`` (the page opened), its first view is recorded (views.py), never failing the page."""
    try:
        a = await logic.own_alert(db, session.customer_id, alert_id)
    except logic.AlertNotFound:
        return _not_found(request, session)
    withdrawn = a.status == "closed" and bool(await logic.withdrawn_recalls(db, [a.recall_id]))
    dates = await label_checks.dates_asked_of(db, [a.recall_id])
    view = alert_view(
        a,
        await logic.remedy_of(db, alert_id),
        _lang(request),
        recall_withdrawn=withdrawn,
        dates=dates.get(a.recall_id, ()),
        form=form,
    )
    if viewed:
        await views.recorder(request).record_or_log(db, a)
    return _render(
        request,
        "alert.html.j2",
        status_code,
        session=session,
        path=view["url"],
        alert=view,
        done=done,
        error=error,
    )


def _offered(remedy: str) -> TypeGuard[ev.RemedyType]:
    """Whether the form's remedy is one this page knows (REMEDY_STEPS has every RemedyType)."""
    return remedy in REMEDY_STEPS


# ------------------------------------------------------------------ forms


async def _act(request: Request, alert_id: str, action: str, db: Any) -> Response:
    session = _session(request)
    form = await _form(request)
    if not _csrf_ok(session, form):
        return _render(
            request,
            "message.html.j2",
            403,
            session=session,
            title_key="forbidden.title",
            text_key="forbidden.text",
        )
    runtime = request.app.state.runtime
    back = (
        f"/recalls/{quote(alert_id, safe='')}" if form.get("return_to") == "detail" else "/recalls"
    )
    anchor = f"#alert-{quote(alert_id, safe='')}"
    extra = {} if back != "/recalls" else {"alert": alert_id}
    try:
        await logic.own_alert(
            db, session.customer_id, alert_id
        )  # another customer's alert: 404 whatever the form says
        if action == "remedy":
            remedy = form.get("remedy", "")
            if not remedy:
                return _redirect(
                    request, f"{back}?{urlencode({**extra, 'error': 'choose'})}{anchor}"
                )
            if not _offered(remedy):
                raise logic.RemedyNotOffered(remedy)
            await logic.choose_remedy(db, runtime, session.customer_id, alert_id, remedy)
        elif action == "acknowledge":
            acknowledged = await logic.acknowledge(db, session.customer_id, alert_id)
            # "I have read this notice" on the list counts as opening the alert (views.py).
            await views.recorder(request).record_or_log(db, acknowledged)
        elif action == "label_check":
            label = label_form.read(form)
            if label.bad_dates:  # the form again, as typed, the bad date named at its field
                return await _alert_page(
                    request, db, session, alert_id, status_code=422, form=label, error="label_date"
                )
            typed = label_checks.Typed(
                lot=label.text("lot"),
                serial=label.text("serial"),
                manufactured_on=label.day("manufactured_on"),
                best_before=label.day("best_before"),
                expires_on=label.day("expires_on"),
            )
            answer, _ = await label_checks.check_label(
                db, runtime, session.customer_id, alert_id, typed
            )
            action = f"label_{answer.answer}"
        else:
            await logic.declare_not_affected(
                db, runtime, session.customer_id, alert_id, form.get("reason", "")[:1000]
            )
    except logic.AlertNotFound:
        return _not_found(request, session)
    except logic.RemedyNotOffered:
        return _redirect(request, f"{back}?{urlencode({**extra, 'error': 'not_offered'})}{anchor}")
    except logic.AlertError:
        return _redirect(request, f"{back}?{urlencode({**extra, 'error': 'conflict'})}{anchor}")
    return _redirect(request, f"{back}?{urlencode({**extra, 'done': action})}{anchor}")


@router.post("/recalls/{alert_id}/remedy")
async def remedy_form(alert_id: str, request: Request, db: SessionDep) -> Response:
    return await _act(request, alert_id, "remedy", db)


@router.post("/recalls/{alert_id}/acknowledge")
async def acknowledge_form(alert_id: str, request: Request, db: SessionDep) -> Response:
    return await _act(request, alert_id, "acknowledge", db)


@router.post("/recalls/{alert_id}/label-check")
async def label_check_form(alert_id: str, request: Request, db: SessionDep) -> Response:
    return await _act(request, alert_id, "label_check", db)


@router.post("/recalls/{alert_id}/not-affected")
async def not_affected_form(alert_id: str, request: Request, db: SessionDep) -> Response:
    return await _act(request, alert_id, "not_affected", db)


# ------------------------------------------------------------------ signing in and out


@router.get("/signin", response_class=HTMLResponse)
async def signin(request: Request, token: str | None = None, next: str | None = None) -> Response:
    target = _safe_next(next)
    if token:
        verifier: CustomerTokenVerifier = request.app.state.token_verifier
        try:
            verifier.customer_id(token)
        except InvalidToken:
            return _render(
                request, "signin.html.j2", 401, expired=True, signed_out=False, dev=_dev(request)
            )
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        max_age = (
            max(int(exp - datetime.now(UTC).timestamp()), 0)
            if isinstance(exp, int | float)
            else None
        )
        response = _redirect(request, target)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=_secure_cookies(request),
            path="/",
        )
        return response
    return _render(
        request,
        "signin.html.j2",
        200,
        expired=request.query_params.get("expired") == "1",
        signed_out=request.query_params.get("signed_out") == "1",
        dev=_dev(request),
    )


@router.post("/signout")
async def signout(request: Request) -> Response:
    session = _session(request)
    if not _csrf_ok(session, await _form(request)):
        return _render(
            request,
            "message.html.j2",
            403,
            session=session,
            title_key="forbidden.title",
            text_key="forbidden.text",
        )
    response = _redirect(request, "/signin?signed_out=1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _dev(request: Request) -> bool:
    return _settings(request).environment == "development"


@router.get("/dev/signin", response_class=HTMLResponse)
async def dev_signin(request: Request, customer_id: str | None = None) -> Response:
    """Development only: sign in as a demo customer with a token minted with this service's
    secret."""
    settings = _settings(request)
    if not _dev(request):
        return _render(
            request, "message.html.j2", 404, title_key="notfound.title", text_key="notfound.text"
        )

    def link(cid: str) -> str:
        token = issue_customer_token(
            cid, settings.jwt_secret, ttl=timedelta(hours=12), audience=settings.jwt_audience
        )
        return "/signin?" + urlencode({"token": token, "next": "/orders"})

    if customer_id:
        return _redirect(request, link(customer_id.strip()[:100]))
    return _render(
        request,
        "dev_signin.html.j2",
        customers=[{"id": c, "name": n, "url": link(c)} for c, n in DEMO_CUSTOMERS],
        rs256=bool(settings.jwt_public_key),
    )
