"""The HTML pages at request level: who may see what, CSRF, sign-in, escaping, language.

The pages carry the same customer JWT as the JSON API in an HttpOnly, SameSite=Lax cookie. Without a
valid one every page redirects to the sign-in explanation; another customer's alert is the same 404
page as a missing one; a form without its CSRF token is refused with 403 and changes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from customer_api.app import create_app
from customer_api.settings import Settings
from recall_shared import events as ev

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MISSING = "00000000-0000-0000-0000-000000000000"
PAGES = ["/orders", "/recalls", "/recalls/{id}"]
FORMS = [
    ("/recalls/{id}/remedy", {"remedy": "replacement"}),
    ("/recalls/{id}/remedy", {}),
    ("/recalls/{id}/acknowledge", {}),
    ("/recalls/{id}/not-affected", {"reason": "lot 999"}),
]
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert m, "the page has no CSRF token"
    return m.group(1)


class World:
    def __init__(
        self, api, owner: str, other: str, alert: ev.AlertState, others_alert: ev.AlertState
    ) -> None:
        self.api, self.owner, self.other, self.alert, self.others_alert = (
            api,
            owner,
            other,
            alert,
            others_alert,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(api, events) -> World:
    owner, other = events.new_customer(), events.new_customer()
    alert = events.alert(owner, title="Owner's secret kettle", tier="possibly_affected")
    mine = events.alert(other, title="Other's own heater")
    await api.raise_alert(alert)
    await api.raise_alert(mine)
    return World(api, owner, other, alert, mine)


async def unchanged(world: World) -> None:
    body = (await world.api.get_alert(world.owner, world.alert.alert_id)).json()
    assert body["acknowledged"] is False and body["resolution"] is None and body["remedy"] is None


# ------------------------------------------------------------------ authentication


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("case", ["no_cookie", "malformed", "wrong_signature", "expired"])
async def test_pages_without_a_valid_session_redirect_to_sign_in(
    world: World, events, path: str, case: str
) -> None:
    api = world.api
    headers = {
        "no_cookie": {},
        "malformed": {"Cookie": "recall_session=not.a.jwt"},
        "wrong_signature": api.page_cookie(world.owner, secret=events.other_secret),
        "expired": api.page_cookie(world.owner, ttl=timedelta(minutes=-10)),
    }[case]
    url = path.replace("{id}", world.alert.alert_id)
    r = await api.client.get(url, headers=headers)
    assert r.status_code == 303, r.text
    loc = urlsplit(r.headers["location"])
    assert loc.path == "/signin"
    assert parse_qs(loc.query)["next"] == [url]
    assert "secret kettle" not in r.text
    if case != "no_cookie":
        assert parse_qs(loc.query).get("expired") == ["1"]
        assert 'recall_session=""' in r.headers.get("set-cookie", ""), (
            "a bad session cookie is cleared"
        )
    explained = await api.client.get(r.headers["location"])
    assert explained.status_code == 200
    assert "Sign in to see your recalls" in explained.text


@pytest.mark.parametrize(
    ("path", "data"), FORMS, ids=[f"{f[0].rsplit('/', 1)[1]}-{len(f[1])}" for f in FORMS]
)
@pytest.mark.parametrize("case", ["no_cookie", "expired"])
async def test_forms_without_a_valid_session_change_nothing(
    world: World, path: str, data: dict, case: str
) -> None:
    api = world.api
    headers = (
        {} if case == "no_cookie" else api.page_cookie(world.owner, ttl=timedelta(minutes=-10))
    )
    r = await api.client.post(
        path.replace("{id}", world.alert.alert_id), data=data, headers={**headers, **FORM_HEADERS}
    )
    assert r.status_code == 303
    loc = urlsplit(r.headers["location"])
    assert loc.path == "/signin" and parse_qs(loc.query)["next"] == ["/recalls"]
    await unchanged(world)


async def test_another_customers_alert_is_the_same_404_page_as_a_missing_one(world: World) -> None:
    api = world.api
    cookie = api.page_cookie(
        world.other
    )  # one session: its CSRF token (in the sign-out form) is the same
    theirs = await api.client.get(f"/recalls/{world.alert.alert_id}", headers=cookie)
    missing = await api.client.get(f"/recalls/{MISSING}", headers=cookie)
    assert theirs.status_code == missing.status_code == 404
    assert "secret kettle" not in theirs.text
    assert "Alert not found" in theirs.text
    # The same page, but for the id echoed in the language links.
    assert theirs.text.replace(world.alert.alert_id, "ID") == missing.text.replace(MISSING, "ID")
    # Nor does it show anywhere in the other customer's pages.
    for page in ("/orders", "/recalls"):
        r = await api.client.get(page, headers=api.page_cookie(world.other))
        assert r.status_code == 200
        assert "secret kettle" not in r.text and "Other&#39;s own heater" in r.text


@pytest.mark.parametrize(
    ("path", "data"), FORMS, ids=[f"{f[0].rsplit('/', 1)[1]}-{len(f[1])}" for f in FORMS]
)
async def test_another_customer_cannot_act_on_the_alert(
    world: World, path: str, data: dict
) -> None:
    api = world.api
    cookie = api.page_cookie(world.other)
    page = await api.client.get("/recalls", headers=cookie)
    form = {**data, "csrf_token": csrf_of(page.text)}
    r = await api.client.post(
        path.replace("{id}", world.alert.alert_id), data=form, headers={**cookie, **FORM_HEADERS}
    )
    assert r.status_code == 404
    assert "secret kettle" not in r.text
    await unchanged(world)


# ------------------------------------------------------------------ CSRF


@pytest.mark.parametrize(
    ("path", "data"), FORMS, ids=[f"{f[0].rsplit('/', 1)[1]}-{len(f[1])}" for f in FORMS]
)
@pytest.mark.parametrize("case", ["missing", "wrong", "other_session"])
async def test_forms_without_the_csrf_token_are_refused(
    world: World, path: str, data: dict, case: str
) -> None:
    api = world.api
    form = dict(data)
    if case == "wrong":
        form["csrf_token"] = "0" * 40
    elif case == "other_session":  # a token from another customer's page does not fit this session
        form["csrf_token"] = csrf_of(
            (await api.client.get("/recalls", headers=api.page_cookie(world.other))).text
        )
    r = await api.client.post(
        path.replace("{id}", world.alert.alert_id),
        data=form,
        headers={**api.page_cookie(world.owner), **FORM_HEADERS},
    )
    assert r.status_code == 403, r.text
    assert "This form has expired" in r.text
    await unchanged(world)


async def test_signout_needs_the_csrf_token(world: World) -> None:
    api = world.api
    cookie = api.page_cookie(world.owner)
    refused = await api.client.post("/signout", data={}, headers={**cookie, **FORM_HEADERS})
    assert refused.status_code == 403
    token = csrf_of((await api.client.get("/orders", headers=cookie)).text)
    r = await api.client.post(
        "/signout", data={"csrf_token": token}, headers={**cookie, **FORM_HEADERS}
    )
    assert r.status_code == 303 and r.headers["location"] == "/signin?signed_out=1"
    assert 'recall_session=""' in r.headers["set-cookie"]


# ------------------------------------------------------------------ the forms reuse the API's logic


async def test_page_forms_act_like_the_json_api(api, events, customer_id) -> None:
    alert = events.alert(customer_id, tier="possibly_affected")
    other = events.alert(customer_id, tier="possibly_affected")
    await api.raise_alert(alert)
    await api.raise_alert(other)
    cookie = api.page_cookie(customer_id)
    token = csrf_of((await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)).text)

    def post(path: str, data: dict[str, str]):
        return api.client.post(
            path, data={**data, "csrf_token": token}, headers={**cookie, **FORM_HEADERS}
        )

    r = await post(f"/recalls/{alert.alert_id}/acknowledge", {"return_to": "detail"})
    assert (
        r.status_code == 303
        and r.headers["location"]
        == f"/recalls/{alert.alert_id}?done=acknowledge#alert-{alert.alert_id}"
    )
    assert (await api.get_alert(customer_id, alert.alert_id)).json()["acknowledged"] is True

    # No remedy chosen, or one the recall does not offer: back to the form with a message, nothing
    # recorded.
    r = await post(f"/recalls/{alert.alert_id}/remedy", {"return_to": "list"})
    assert r.status_code == 303 and "error=choose" in r.headers["location"]
    r = await post(f"/recalls/{alert.alert_id}/remedy", {"remedy": "repair"})
    assert r.status_code == 303 and "error=not_offered" in r.headers["location"]
    page = await api.client.get(r.headers["location"].split("#")[0], headers=cookie)
    assert "Please choose one of the remedies offered." in page.text
    assert (await api.get_alert(customer_id, alert.alert_id)).json()["remedy"] is None

    r = await post(f"/recalls/{alert.alert_id}/remedy", {"remedy": "replacement"})
    assert r.status_code == 303
    assert (
        r.headers["location"]
        == f"/recalls?alert={alert.alert_id}&done=remedy#alert-{alert.alert_id}"
    )
    remedy = (await api.get_alert(customer_id, alert.alert_id)).json()["remedy"]
    assert remedy["remedy"] == "replacement" and remedy["state"] == "requested"
    # The same choice again is harmless; a different one is a conflict shown on the page.
    assert (await post(f"/recalls/{alert.alert_id}/remedy", {"remedy": "replacement"})).headers[
        "location"
    ].count("done=remedy") == 1
    r = await post(f"/recalls/{alert.alert_id}/remedy", {"remedy": "refund_on_destruction"})
    assert "error=conflict" in r.headers["location"]
    # The JSON API sees the page's choice, and vice versa.
    j = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/remedy",
        json={"remedy": "replacement"},
        headers=api.auth(customer_id),
    )
    assert j.status_code == 200 and j.headers["Idempotent-Replayed"] == "true"
    page = await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)
    assert "Status: Requested" in page.text and 'name="remedy"' not in page.text

    r = await post(f"/recalls/{other.alert_id}/not-affected", {"reason": "lot 999"})
    assert r.status_code == 303 and "done=not_affected" in r.headers["location"]
    assert (await api.get_alert(customer_id, other.alert_id)).json()["resolution"] == "not_affected"


# ------------------------------------------------------------------ sign-in


async def test_signin_sets_an_httponly_samesite_cookie_and_redirects_only_locally(
    api, customer_id
) -> None:
    token = api.token(customer_id)
    r = await api.client.get("/signin", params={"token": token, "next": "/recalls/abc"})
    assert r.status_code == 303 and r.headers["location"] == "/recalls/abc"
    cookie = r.headers["set-cookie"].lower()
    assert f"recall_session={token}".lower() in cookie
    assert (
        "httponly" in cookie
        and "samesite=lax" in cookie
        and "path=/" in cookie
        and "max-age=" in cookie
    )
    for evil in (
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        r = await api.client.get("/signin", params={"token": token, "next": evil})
        assert r.headers["location"] == "/recalls", evil
    bad = await api.client.get("/signin", params={"token": "not.a.jwt"})
    assert bad.status_code == 401
    assert "set-cookie" not in bad.headers or "recall_session=not" not in bad.headers["set-cookie"]


async def test_dev_signin_is_not_served_outside_development(api) -> None:
    r = await api.client.get("/dev/signin")
    assert r.status_code == 404
    assert "alice" not in r.text
    r = await api.client.get("/dev/signin", params={"customer_id": "alice"})
    assert r.status_code == 404


async def test_dev_signin_in_development_lists_the_demo_customers_with_working_links(api) -> None:
    settings = Settings(
        database_url=api.settings.database_url,
        environment="development",
        jwt_secret="dev-secret-for-this-test-" + "d" * 20,
        log_json=False,
    )
    app = create_app(
        settings
    )  # this page needs no database or broker, so the runtime is not started
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        r = await client.get("/dev/signin")
        assert r.status_code == 200
        for name in ("alice", "bruno", "carol", "dave"):
            assert f"({name})" in r.text
        found = re.search(r'href="(/signin\?token=[^"]+)"', r.text)
        assert found, r.text
        link = found.group(1).replace("&amp;", "&")
        signed = await client.get(link)
        assert signed.status_code == 303 and signed.headers["location"] == "/orders"
        assert "recall_session=" in signed.headers["set-cookie"]
        custom = await client.get("/dev/signin", params={"customer_id": "erin"})
        assert custom.status_code == 303 and custom.headers["location"].startswith("/signin?token=")
        token = parse_qs(urlsplit(custom.headers["location"]).query)["token"][0]
        assert app.state.token_verifier.customer_id(token) == "erin"


# ------------------------------------------------------------------ content, escaping, language


async def test_seller_text_is_escaped_everywhere(api, events, customer_id) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    alert = events.alert(customer_id, title=evil)
    alert = alert.model_copy(
        update={
            "recall": alert.recall.model_copy(
                update={
                    "hazard": evil,
                    "stop_using": evil,
                    "images": ["javascript:alert(1)", "https://img.example/k.jpg"],
                }
            )
        }
    )
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    for page in ("/orders", "/recalls", f"/recalls/{alert.alert_id}"):
        r = await api.client.get(page, headers=cookie)
        assert r.status_code == 200
        assert "<script>" not in r.text and "<img src=x" not in r.text, page
        assert "&lt;script&gt;" in r.text, page
        assert "javascript:" not in r.text
    assert 'src="https://img.example/k.jpg"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"


async def test_language_from_query_cookie_and_accept_language(api, events, customer_id) -> None:
    alert = events.alert(customer_id, title="Kettle KX-1")
    texts = {
        "de": ev.LocalizedText(title="Wasserkocher KX-1", hazard="Der Sockel kann überhitzen.")
    }
    alert = alert.model_copy(update={"recall": alert.recall.model_copy(update={"texts": texts})})
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    en = await api.client.get("/recalls", headers=cookie)
    assert '<html lang="en">' in en.text and "Your recalls and product safety alerts" in en.text
    assert "Kettle KX-1" in en.text and "Wasserkocher" not in en.text

    de = await api.client.get(
        "/recalls", headers={**cookie, "Accept-Language": "pt;q=1, de-DE;q=0.8, en;q=0.5"}
    )
    assert '<html lang="de">' in de.text
    assert "Ihre Rückrufe und Produktsicherheitswarnungen" in de.text
    assert "Wasserkocher KX-1" in de.text and "Der Sockel kann überhitzen." in de.text
    assert "Unplug the kettle" in de.text, "an untranslated field falls back to the main text"

    q = await api.client.get("/recalls?lang=de", headers={**cookie, "Accept-Language": "en"})
    assert '<html lang="de">' in q.text
    assert "recall_lang=de" in q.headers["set-cookie"]
    remembered = await api.client.get(
        "/orders", headers={"Cookie": f"{cookie['Cookie']}; recall_lang=de"}
    )
    assert "Meine Bestellungen" in remembered.text and "Rückruf:" in remembered.text


async def test_orders_banner_matches_the_banner_api(api, events) -> None:
    affected, unaffected = events.new_customer(), events.new_customer()
    low = events.alert(affected, severity="low", title="Low lamp")
    critical = events.alert(affected, severity="critical", title="Critical heater")
    await api.raise_alert(low)
    await api.raise_alert(critical)
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(affected))).json()
    page = await api.client.get("/orders", headers=api.page_cookie(affected))
    assert page.status_code == 200
    assert 'id="recall-banner"' in page.text
    assert f"{banner['open_alerts']} products you bought need your attention" in page.text
    assert f'href="/recalls/{banner["most_severe"]["alert_id"]}"' in page.text
    assert page.text.index('id="recall-banner"') < page.text.index("Order ord-20250314-1")
    none = await api.client.get("/orders", headers=api.page_cookie(unaffected))
    assert none.status_code == 200 and 'id="recall-banner"' not in none.text
