"""The recalls page's remedy case (issue 14): what is still needed, the proof of destruction upload
and its checks (each failure with its own message), the case's timeline and the return label, as
remedies.v1 tells the read model. Forwarding an accepted upload to refund-logistics is tested
through the five processes (tests/e2e/test_remedy_in_browser.py); here refund-logistics is
unreachable."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2000 + b"\xff\xd9"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert m, "the page has no CSRF token"
    return m.group(1)


def texts(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def _case(api, events, remedy: str = "refund_on_destruction"):
    customer = events.new_customer()
    alert = events.alert(customer, remedies=("refund_on_destruction", "refund_with_return"))
    await api.raise_alert(alert)
    r = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/remedy",
        json={"remedy": remedy},
        headers=api.auth(customer),
    )
    assert r.status_code == 202, r.text
    return customer, alert, r.json()["request_id"]


async def _page_when(api, customer: str | dict, alert: ev.AlertState, text: str) -> str:
    cookie = api.page_cookie(customer) if isinstance(customer, str) else customer

    async def shown() -> str | None:
        r = await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)
        return r.text if text in texts(r.text) else None

    return await eventually(shown, timeout=15, interval=0.1)


def _progressed(request_id: str, alert: ev.AlertState, step: str, attempt: int, **kw: object):
    return ev.RemedyCaseProgressed(
        case_id=f"case-{request_id[:8]}",
        request_id=request_id,
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        remedy="refund_on_destruction",
        step=step,
        attempt=attempt,
        state="requested",
        occurred_at=datetime.now(UTC),
        **kw,
    )


async def _upload(api, cookie: dict, alert: ev.AlertState, csrf: str | None, photo, **form):
    """Upload as the session of ``cookie`` (the CSRF token is that session's: one cookie per
    test)."""
    data = {"return_to": "detail", **form}
    if csrf is not None:
        data["csrf_token"] = csrf
    return await api.client.post(
        f"/recalls/{alert.alert_id}/proof",
        data=data,
        files={"photo": photo} if photo is not None else {"other": ("x.txt", b"x", "text/plain")},
        headers=cookie,
    )


def _error(r) -> str | None:
    assert r.status_code == 303, r.text
    return parse_qs(urlsplit(r.headers["location"]).query).get("error", [None])[0]


async def test_a_case_waiting_for_the_photo_asks_for_it_and_checks_each_upload(api, events) -> None:
    customer, alert, request_id = await _case(api, events)
    opened = events.case_transitioned(
        request_id, alert, state="requested", transition="open", from_state=None
    ).model_copy(update={"waiting_for": "proof"})
    await api.publish(opened)
    cookie = api.page_cookie(customer)
    html = await _page_when(api, cookie, alert, "A photo of the product, destroyed")
    assert "What we need from you:" in texts(html)
    assert 'enctype="multipart/form-data"' in html and 'name="photo"' in html
    assert 'accept="image/jpeg,image/png,image/gif,image/webp"' in html
    csrf = csrf_of(html)

    no_csrf = await _upload(api, cookie, alert, None, ("k.jpg", JPEG, "image/jpeg"))
    assert no_csrf.status_code == 403
    assert _error(await _upload(api, cookie, alert, csrf, None)) == "proof_missing"
    assert _error(await _upload(api, cookie, alert, csrf, ("k.jpg", b"", "image/jpeg"))) == (
        "proof_missing"
    )
    not_image = ("k.jpg", b"GIF? no: just text pretending", "image/jpeg")
    assert _error(await _upload(api, cookie, alert, csrf, not_image)) == "proof_type"
    huge = ("k.jpg", JPEG[:4] + b"\x00" * (api.settings.proof_max_bytes + 1), "image/jpeg")
    assert _error(await _upload(api, cookie, alert, csrf, huge)) == "proof_too_large"
    # A photo that passes the page's checks goes to refund-logistics, unreachable here.
    fine = await _upload(api, cookie, alert, csrf, ("k.jpg", JPEG, "image/jpeg"))
    assert _error(fine) == "proof_unavailable"
    shown = await api.client.get(fine.headers["location"], headers=cookie)
    assert "The upload is not available right now." in texts(shown.text)

    someone_else = events.new_customer()
    other = await api.client.post(
        f"/recalls/{alert.alert_id}/proof",
        data={"csrf_token": csrf},
        files={"photo": ("k.jpg", JPEG, "image/jpeg")},
        headers=api.page_cookie(someone_else),
    )
    assert other.status_code in (403, 404)  # the CSRF token is the owner's session's


async def test_the_review_steps_and_the_refund_make_the_timeline(api, events) -> None:
    customer, alert, request_id = await _case(api, events)
    await api.publish(
        events.case_transitioned(
            request_id, alert, state="requested", transition="open", from_state=None
        ).model_copy(update={"waiting_for": "proof"})
    )
    await api.publish(_progressed(request_id, alert, "proof_under_review", 1, waiting_for="review"))
    html = await _page_when(api, customer, alert, "We are checking your photo.")
    assert 'name="photo"' not in html
    reason = "The photo does not show the kettle."
    await api.publish(
        _progressed(request_id, alert, "proof_rejected", 1, waiting_for="proof", reason=reason)
    )
    html = texts(await _page_when(api, customer, alert, "A new photo of the product"))
    assert f"Reason: {reason}" in html
    await api.publish(_progressed(request_id, alert, "proof_accepted", 2, waiting_for="payment"))
    await api.publish(
        events.case_transitioned(
            request_id,
            alert,
            state="refunded",
            transition="issue_refund",
            from_state="requested",
            refunded="39.98",
            currency="EUR",
        )
    )
    html = await _page_when(api, customer, alert, "Status: Refunded")
    timeline = re.findall(r"<li>([^<]*)</li>", html.split('class="timeline"')[1].split("</ol>")[0])
    assert [t.split(": ", 1)[1] for t in timeline] == [
        "Remedy requested",
        "Photo received, being checked",
        "Photo not accepted",
        "Photo accepted",
        "Refunded",
    ]
    assert "What we need from you:" not in texts(html) and 'name="photo"' not in html
    german = await api.client.get(
        f"/recalls/{alert.alert_id}?lang=de", headers=api.page_cookie(customer)
    )
    assert "Bisheriger Verlauf" in german.text and "Foto angenommen" in german.text


async def test_the_return_label_is_a_download_on_the_page(api, events) -> None:
    customer, alert, request_id = await _case(api, events, "refund_with_return")
    label = ev.ReturnLabelRef(
        tracking_number="TRK123", label_url="https://carrier.example/labels/TRK123.pdf"
    )
    for transition, state, previous, extra in (
        ("open", "requested", None, {"waiting_for": "label"}),
        ("issue_label", "label_issued", "requested", {"waiting_for": "item", "label": label}),
    ):
        await api.publish(
            events.case_transitioned(
                request_id,
                alert,
                state=state,
                transition=transition,
                from_state=previous,
                remedy="refund_with_return",
            ).model_copy(update=extra)
        )
    html = await _page_when(api, customer, alert, "Download your return label")
    assert '<a href="https://carrier.example/labels/TRK123.pdf" download>' in html
    assert "(parcel tracking number TRK123)" in texts(html)
    assert "Print the return label" in texts(html)
    status = (
        await api.client.get(f"/v1/me/alerts/{alert.alert_id}/remedy", headers=api.auth(customer))
    ).json()
    assert status["waiting_for"] == "item" and status["label_tracking_number"] == "TRK123"
    assert status["label_url"] == label.label_url
    assert [t["step"] for t in status["timeline"]] == ["open", "issue_label"]
