"""The moderators' pages over HTTP, on the real database: signing in with an admin key (the
cookie, the limit, wrong and non-admin keys), the session's end (sign-out, expiry, a revoked
key), CSRF and Origin checks, and each page's forms doing what the API would: deciding a
review, resolving an appeal, the allowlist, the audit log."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key
from callguard.config import Config
from callguard.state import REQUEST_LOG

from tests.conftest import AppClient, ClientFactory, FakeClock, MakeKey, report_verified
from tests.test_auth import wait_for_status
from tests.test_web_pages import attribute

SIGN_IN = "/admin/sign-in"
COOKIE = "callguard_admin"
BRIGADED = "0933333333"
SCAM = "0912345678"
HOTLINE = "02838225678"
PAGES = ["/admin", "/admin/appeals", "/admin/allowlist", "/admin/audit"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def csrf_of(page: str) -> str:
    return attribute(page, 'name="csrf" value')


async def sign_in(client: AppClient, key: str, **headers: str) -> ClientResponse:
    return await client.post(SIGN_IN, data={"key": key}, headers=headers, allow_redirects=False)


async def signed_in(client: AppClient, make_key: MakeKey) -> tuple[str, str]:
    """Sign a new admin key in; (the key, the CSRF token its pages carry)."""
    key = await make_key("admin")
    response = await sign_in(client, key)
    assert response.status == HTTPStatus.SEE_OTHER, await response.text()
    assert response.headers["Location"] == "/admin"
    page = await (await client.get("/admin")).text()
    return key, csrf_of(page)


async def get_json(client: AppClient, headers: dict[str, str], path: str) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == HTTPStatus.OK, await response.text()
    return await response.json()


async def verdict(client: AppClient, headers: dict[str, str], number: str) -> str:
    body = await get_json(client, headers, f"/v1/numbers/{number}")
    found: str = body["verdict"]
    return found


async def queue_for_review(client: AppClient, auth: dict[str, str]) -> int:
    """Ten first-time community reporters on BRIGADED within minutes open a review; its id."""
    for reporter in range(10):
        body = {"number": BRIGADED, "category": "online_loan", "reporter": f"new-{reporter}"}
        response = await client.post("/v1/reports", json=body, headers=auth)
        assert response.status == HTTPStatus.CREATED
    page = await (await client.get("/admin")).text()
    return int(attribute(page, "data-review-id"))


async def review_status(client: AppClient, admin: dict[str, str], review_id: int) -> str:
    reviews = (await get_json(client, admin, "/v1/reviews"))["reviews"]
    (status,) = [review["status"] for review in reviews if review["review_id"] == review_id]
    found: str = status
    return found


# --- signing in --------------------------------------------------------------------------


async def test_the_sign_in_page_has_a_labelled_password_box(client: AppClient) -> None:
    response = await client.get(SIGN_IN)
    assert response.status == HTTPStatus.OK
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert 'data-form="sign-in" method="post" action="/admin/sign-in"' in page
    assert '<label for="key">Khóa API quản trị</label>' in page
    assert re.search(r'<input type="password" id="key" name="key" autocomplete="off"', page)
    assert "<h1>Đăng nhập trang kiểm duyệt</h1>" in page
    english = await (await client.get(SIGN_IN, headers={"Accept-Language": "en"})).text()
    assert '<label for="key">Admin API key</label>' in english


@pytest.mark.parametrize("path", PAGES)
async def test_pages_without_a_session_lead_to_signing_in(client: AppClient, path: str) -> None:
    for cookie in ({}, {"Cookie": f"{COOKIE}=made-up"}):
        response = await client.get(path, headers=cookie, allow_redirects=False)
        assert response.status == HTTPStatus.SEE_OTHER
        assert response.headers["Location"] == SIGN_IN


async def test_a_wrong_key_gets_the_form_again_and_no_cookie(
    client: AppClient, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    wrong = "cg_" + "x" * 43
    for key in (wrong, "", "  "):
        response = await sign_in(client, key)
        assert response.status == HTTPStatus.UNAUTHORIZED
        assert COOKIE not in response.cookies
        page = await response.text()
        assert 'aria-invalid="true"' in page and 'role="alert"' in page
        assert "Khóa không đúng hoặc đã bị thu hồi" in page
        assert 'data-form="sign-in"' in page
    assert wrong not in page
    # A revoked admin key reads the same as one that never existed.
    revoked = await make_key("admin")
    at = datetime.now(UTC)
    await store.keys.revoke(pool, None, hash_key(revoked), store.audit.Actor(None, "cli"), at)
    # A revocation reaches the key cache with its notification, milliseconds later.
    await wait_for_status(client, bearer(revoked), HTTPStatus.UNAUTHORIZED)
    response = await sign_in(client, revoked)
    assert response.status == HTTPStatus.UNAUTHORIZED
    assert revoked not in await response.text()
    assert await pool.fetchval("SELECT count(*) FROM admin_sessions") == 0


@pytest.mark.parametrize("role", ["client", "operator", "metrics"])
async def test_only_an_admin_key_signs_in(client: AppClient, make_key: MakeKey, role: str) -> None:
    key = await make_key(role)
    response = await sign_in(client, key)
    assert response.status == HTTPStatus.FORBIDDEN
    assert COOKIE not in response.cookies
    page = await response.text()
    assert "cần khóa quản trị (admin)" in page and key not in page
    followed = await client.get("/admin", allow_redirects=False)
    assert followed.headers["Location"] == SIGN_IN


async def test_signing_in_sets_a_strict_http_only_cookie_for_the_admin_pages(
    config: Config, make_key: MakeKey
) -> None:
    lines = io.StringIO()
    async with TestClient(TestServer(create_app(config, log_stream=lines))) as client:
        key = await make_key("admin")
        response = await sign_in(client, key)
        assert response.status == HTTPStatus.SEE_OTHER
        assert response.headers["Location"] == "/admin"
        set_cookie = response.headers["Set-Cookie"]
        assert set_cookie.startswith(f"{COOKIE}=")
        attributes = {part.strip().split("=")[0].lower(): part for part in set_cookie.split(";")}
        assert "httponly" in attributes
        assert attributes["samesite"].strip() == "SameSite=Strict"
        assert attributes["path"].strip() == "Path=/admin"
        assert attributes["max-age"].strip() == "Max-Age=28800"
        assert "secure" not in attributes  # plain http here; over https it is Secure
        token = response.cookies[COOKIE].value
        assert len(token) >= 43 and token not in key
        page = await (await client.get("/admin")).text()
        assert "<h1>Hàng chờ xem xét</h1>" in page and key not in page
        assert "test admin" in page  # the key's name, never the key
        # Already signed in: the sign-in page leads on to the queue.
        again = await client.get(SIGN_IN, allow_redirects=False)
        assert again.headers["Location"] == "/admin"
        client.app[REQUEST_LOG].buffer.flush()
    log = lines.getvalue()
    assert "/admin/sign-in" in log
    assert key not in log and token not in log


async def test_sign_in_attempts_are_limited_per_network(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    client = await aiohttp_client(create_app(replace(config, admin_sign_in_burst_per_network=2)))
    key = await make_key("admin")
    assert (await sign_in(client, "cg_wrong")).status == HTTPStatus.UNAUTHORIZED
    assert (await sign_in(client, "cg_wrong")).status == HTTPStatus.UNAUTHORIZED
    # Counted before the key is checked: the right key waits too.
    response = await sign_in(client, key)
    assert response.status == HTTPStatus.TOO_MANY_REQUESTS
    assert int(response.headers["Retry-After"]) >= 1
    assert COOKIE not in response.cookies
    assert "quá nhiều lần" in await response.text()


async def test_a_sign_in_from_another_site_is_refused(client: AppClient, make_key: MakeKey) -> None:
    key = await make_key("admin")
    response = await sign_in(client, key, Origin="https://evil.example")
    assert response.status == HTTPStatus.FORBIDDEN
    assert COOKIE not in response.cookies
    own = str(client.make_url("")).rstrip("/")
    # X-Forwarded-Proto counts only from a trusted proxy (none here).
    forwarded = {"Origin": own.replace("http:", "https:"), "X-Forwarded-Proto": "https"}
    assert (await sign_in(client, key, **forwarded)).status == HTTPStatus.FORBIDDEN
    assert (await sign_in(client, key, Origin=own)).status == HTTPStatus.SEE_OTHER


async def test_behind_a_balancer_ending_tls_the_cookie_is_secure_and_https_is_our_origin(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    client = await aiohttp_client(
        create_app(replace(config, trusted_proxies=frozenset({"127.0.0.1"})))
    )
    key = await make_key("admin")
    host = client.make_url("").host
    port = client.make_url("").port
    https = {"X-Forwarded-Proto": "https"}
    plain = await sign_in(client, key, Origin=f"http://{host}:{port}", **https)
    assert plain.status == HTTPStatus.FORBIDDEN
    response = await sign_in(client, key, Origin=f"https://{host}:{port}", **https)
    assert response.status == HTTPStatus.SEE_OTHER
    assert "Secure" in response.headers["Set-Cookie"]


# --- a session's end ---------------------------------------------------------------------


async def test_signing_out_ends_the_session(client: AppClient, make_key: MakeKey) -> None:
    await signed_in(client, make_key)
    token = client.session.cookie_jar.filter_cookies(client.make_url("/admin"))[COOKIE].value
    refused = await client.post("/admin/sign-out", data={"csrf": "x"}, allow_redirects=False)
    assert refused.status == HTTPStatus.FORBIDDEN
    page = await (await client.get("/admin")).text()
    assert 'data-form="sign-out"' in page
    response = await client.post(
        "/admin/sign-out", data={"csrf": csrf_of(page)}, allow_redirects=False
    )
    assert response.status == HTTPStatus.SEE_OTHER
    assert response.headers["Location"] == SIGN_IN
    assert response.cookies[COOKIE].value == ""
    # The old cookie, kept by someone, opens nothing.
    kept = await client.get(
        "/admin", headers={"Cookie": f"{COOKIE}={token}"}, allow_redirects=False
    )
    assert kept.headers["Location"] == SIGN_IN


async def test_a_revoked_keys_session_stops_at_once(
    client: AppClient, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    key, _ = await signed_in(client, make_key)
    assert (await client.get("/admin/audit", allow_redirects=False)).status == HTTPStatus.OK
    at = datetime.now(UTC)
    await store.keys.revoke(pool, None, hash_key(key), store.audit.Actor(None, "cli"), at)
    response = await client.get("/admin/audit", allow_redirects=False)
    assert response.status == HTTPStatus.SEE_OTHER
    assert response.headers["Location"] == SIGN_IN


async def test_a_session_ends_eight_hours_after_signing_in(
    timed_client: AppClient, make_key: MakeKey, clock: FakeClock
) -> None:
    await signed_in(timed_client, make_key)
    clock.advance(hours=7, minutes=59)
    assert (await timed_client.get("/admin", allow_redirects=False)).status == HTTPStatus.OK
    clock.advance(minutes=1)
    response = await timed_client.get("/admin", allow_redirects=False)
    assert response.headers["Location"] == SIGN_IN


# --- the review queue --------------------------------------------------------------------


async def test_an_admin_decides_a_review_through_the_page(
    client: AppClient, make_key: MakeKey, auth: dict[str, str]
) -> None:
    key, csrf = await signed_in(client, make_key)
    review_id = await queue_for_review(client, auth)
    page = await (await client.get("/admin")).text()
    form = f'action="/admin/reviews/{review_id}/decide"'
    assert f'data-form="decide-review" method="post" {form}' in page
    assert f'<label for="note-{review_id}">' in page
    assert '<button name="decision" value="brigade"' in page
    assert '<button name="decision" value="genuine"' in page
    assert '<th scope="row" data-number="+84933333333">0933 333 333</th>' in page
    assert "Nhiều người báo cáo lần đầu trong vài phút" in page
    response = await client.post(
        f"/admin/reviews/{review_id}/decide",
        data={"csrf": csrf, "note": "Mười người mới trong một phút", "decision": "brigade"},
        allow_redirects=False,
    )
    assert response.status == HTTPStatus.SEE_OTHER
    assert response.headers["Location"] == "/admin?done=brigade"
    after = await (await client.get(response.headers["Location"])).text()
    assert 'role="status" data-notice="brigade"' in after
    assert "data-review-id" not in after and "data-reviews-none" in after
    assert await review_status(client, bearer(key), review_id) == "brigade"
    assert await verdict(client, auth, BRIGADED) == "unknown"
    audit = await (await client.get("/admin/audit")).text()
    assert 'data-action="review_brigade"' in audit and "Mười người mới trong một phút" in audit
    # Deciding it again (another moderator's tab) says it was decided already.
    again = await client.post(
        f"/admin/reviews/{review_id}/decide",
        data={"csrf": csrf, "note": "x", "decision": "genuine"},
        allow_redirects=False,
    )
    assert again.headers["Location"] == "/admin?done=already"
    assert await review_status(client, bearer(key), review_id) == "brigade"
    missing = await client.post(
        "/admin/reviews/999/decide", data={"csrf": csrf, "note": "x", "decision": "genuine"}
    )
    assert missing.status == HTTPStatus.NOT_FOUND and missing.content_type == "text/html"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"decision": "brigade", "note": "  "}, "note"),
        ({"decision": "brigade"}, "note"),
        ({"decision": "brigade", "note": "x" * 4001}, "note"),
        ({"decision": "maybe", "note": "x"}, "decision"),
        ({"note": "x"}, "decision"),
    ],
)
async def test_a_decision_form_not_filled_in_is_sent_back_saying_why(
    client: AppClient,
    make_key: MakeKey,
    auth: dict[str, str],
    form: dict[str, str],
    field: str,
) -> None:
    key, csrf = await signed_in(client, make_key)
    review_id = await queue_for_review(client, auth)
    response = await client.post(f"/admin/reviews/{review_id}/decide", data={"csrf": csrf, **form})
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.content_type == "text/html"
    page = await response.text()
    assert 'role="alert"' in page
    if field == "note":
        assert f'aria-invalid="true" aria-describedby="note-{review_id}-error"' in page
    else:
        assert "Hãy chọn quyết định" in page
    assert await review_status(client, bearer(key), review_id) == "open"


async def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(
    client: AppClient, make_key: MakeKey, auth: dict[str, str]
) -> None:
    key, csrf = await signed_in(client, make_key)
    review_id = await queue_for_review(client, auth)
    url = f"/admin/reviews/{review_id}/decide"
    decision = {"note": "forged", "decision": "brigade"}
    for form, headers in [
        (decision, {}),
        ({**decision, "csrf": ""}, {}),
        ({**decision, "csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}, {}),
        ({**decision, "csrf": "ý" * 43}, {}),
        ({**decision, "csrf": csrf}, {"Origin": "https://evil.example"}),
        ({**decision, "csrf": csrf}, {"Origin": "null"}),
    ]:
        response = await client.post(url, data=form, headers=headers, allow_redirects=False)
        assert response.status == HTTPStatus.FORBIDDEN, form
        assert response.content_type == "text/html"
        assert "không được gửi từ trang kiểm duyệt" in await response.text()
    assert await review_status(client, bearer(key), review_id) == "open"
    # The same form from our own page goes through.
    own = str(client.make_url("")).rstrip("/")
    response = await client.post(
        url, data={**decision, "csrf": csrf}, headers={"Origin": own}, allow_redirects=False
    )
    assert response.status == HTTPStatus.SEE_OTHER
    assert await review_status(client, bearer(key), review_id) == "brigade"


async def test_a_form_without_a_session_changes_nothing(
    client: AppClient, make_key: MakeKey, auth: dict[str, str]
) -> None:
    key, csrf = await signed_in(client, make_key)
    review_id = await queue_for_review(client, auth)
    client.session.cookie_jar.clear()
    response = await client.post(
        f"/admin/reviews/{review_id}/decide",
        data={"csrf": csrf, "note": "x", "decision": "brigade"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == SIGN_IN
    assert await review_status(client, bearer(key), review_id) == "open"


# --- appeals -----------------------------------------------------------------------------


async def test_an_admin_resolves_an_appeal_through_the_page(
    client: AppClient, make_key: MakeKey, auth: dict[str, str], attesting: dict[str, str]
) -> None:
    key, csrf = await signed_in(client, make_key)
    await report_verified(client, attesting, SCAM)
    assert await verdict(client, auth, SCAM) == "scam"
    filed = await client.post(
        "/v1/appeals",
        json={
            "number": SCAM,
            "contact": "chu.so@example.vn",
            "message": "Số của tiệm bánh <b>nhà tôi</b>",
        },
        headers=auth,
    )
    appeal_id = (await filed.json())["appeal_id"]
    page = await (await client.get("/admin/appeals")).text()
    assert f'<tr data-appeal-id="{appeal_id}">' in page
    assert "Số của tiệm bánh &lt;b&gt;nhà tôi&lt;/b&gt;" in page  # escaped, as all text is
    assert f'action="/admin/appeals/{appeal_id}/resolve"' in page
    empty = await client.post(
        f"/admin/appeals/{appeal_id}/resolve", data={"csrf": csrf, "decision": "delist"}
    )
    assert empty.status == HTTPStatus.BAD_REQUEST
    assert f'aria-describedby="note-{appeal_id}-error"' in await empty.text()
    response = await client.post(
        f"/admin/appeals/{appeal_id}/resolve",
        data={"csrf": csrf, "decision": "delist", "note": "Đã xác minh chủ số"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/admin/appeals?done=delisted"
    after = await (await client.get(response.headers["Location"])).text()
    assert 'data-notice="delisted"' in after and "data-appeals-none" in after
    (appeal,) = (await get_json(client, bearer(key), "/v1/appeals"))["appeals"]
    assert (appeal["status"], appeal["resolution_note"]) == ("delisted", "Đã xác minh chủ số")
    assert await verdict(client, auth, SCAM) != "scam"


# --- the allowlist -----------------------------------------------------------------------


async def test_an_admin_verifies_and_unverifies_a_number_through_the_page(
    client: AppClient, make_key: MakeKey, auth: dict[str, str]
) -> None:
    _, csrf = await signed_in(client, make_key)
    page = await (await client.get("/admin/allowlist")).text()
    for name in ("number", "owner", "note"):
        assert f'<label for="add-{name}">' in page and f'id="add-{name}" name="{name}"' in page
    form = {"csrf": csrf, "number": "028 3822 5678", "owner": "Công an TP.HCM", "note": ""}
    response = await client.post("/admin/allowlist", data=form, allow_redirects=False)
    assert response.headers["Location"] == "/admin/allowlist?done=added"
    assert await verdict(client, auth, HOTLINE) == "verified"
    page = await (await client.get("/admin/allowlist")).text()
    assert '<tr data-allowlisted="+842838225678">' in page and "Công an TP.HCM" in page
    assert 'action="/admin/allowlist/%2B842838225678/remove"' in page
    response = await client.post(
        "/admin/allowlist/%2B842838225678/remove",
        data={"csrf": csrf, "reason": "Đổi số tổng đài"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/admin/allowlist?done=removed"
    assert await verdict(client, auth, HOTLINE) == "unknown"
    after = await (await client.get(response.headers["Location"])).text()
    assert "data-allowlisted" not in after and 'data-notice="removed"' in after
    again = await client.post(
        "/admin/allowlist/%2B842838225678/remove", data={"csrf": csrf}, allow_redirects=False
    )
    assert again.headers["Location"] == "/admin/allowlist?done=not_listed"
    audit = await (await client.get("/admin/audit")).text()
    actions = re.findall(r'data-action="(\w+)"', audit)
    assert actions == ["allowlist_remove", "allowlist_add"]  # newest first
    assert "Đổi số tổng đài" in audit


@pytest.mark.parametrize(
    ("number", "owner", "field"),
    [("12", "Công an", "number"), (HOTLINE, " ", "owner"), (HOTLINE, "\u200b", "owner")],
)
async def test_an_allowlist_form_not_right_is_sent_back_with_what_was_typed(
    client: AppClient, make_key: MakeKey, auth: dict[str, str], number: str, owner: str, field: str
) -> None:
    _, csrf = await signed_in(client, make_key)
    form = {"csrf": csrf, "number": number, "owner": owner, "note": "Tổng đài"}
    response = await client.post("/admin/allowlist", data=form)
    assert response.status == HTTPStatus.BAD_REQUEST
    page = await response.text()
    assert f'aria-invalid="true" aria-describedby="add-{field}-error"' in page
    assert f'id="add-{field}-error" role="alert"' in page
    assert 'value="Tổng đài"' in page  # the note, kept
    assert await verdict(client, auth, HOTLINE) == "unknown"


# --- the audit log -----------------------------------------------------------------------


async def test_the_audit_log_lists_actions_newest_first_with_paging(
    client: AppClient, make_key: MakeKey
) -> None:
    _, csrf = await signed_in(client, make_key)
    for number in ("02838225678", "02438251234", "02363822222"):
        form = {"csrf": csrf, "number": number, "owner": "Tổng đài", "note": ""}
        assert (
            await client.post("/admin/allowlist", data=form, allow_redirects=False)
        ).status == HTTPStatus.SEE_OTHER
    page = await (await client.get("/admin/audit")).text()
    ids = [int(found) for found in re.findall(r'data-audit-id="(\d+)"', page)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3
    assert '<th scope="col">' in page and "key:" in page and "test admin" in page
    older = await (await client.get("/admin/audit", params={"before": str(ids[0])})).text()
    assert [int(found) for found in re.findall(r'data-audit-id="(\d+)"', older)] == ids[1:]
    bad = await client.get("/admin/audit", params={"before": "x"})
    assert bad.status == HTTPStatus.BAD_REQUEST and bad.content_type == "text/html"


# --- what every moderator's page promises ------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
async def test_every_moderators_page_is_labelled_uncached_and_runs_no_inline_code(
    client: AppClient, make_key: MakeKey, path: str
) -> None:
    await signed_in(client, make_key)
    response = await client.get(path)
    assert response.status == HTTPStatus.OK
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Encoding" not in response.headers  # it holds the CSRF token: BREACH
    page = await response.text()
    assert not re.search(r"<script", page) and not re.search(r"\s(style|on\w+)=", page)
    assert page.count("<h1>") == 1
    assert 'aria-current="page"' in page
    inputs = re.findall(r"<(?:input|textarea)\b[^>]*>", page)
    for tag in inputs:
        if 'type="hidden"' in tag:
            continue
        field_id = attribute(tag, "id")
        assert f'<label for="{field_id}">' in page, tag
