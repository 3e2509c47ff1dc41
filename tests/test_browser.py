"""The public and moderators' pages in a real browser: Debian's Chromium (/usr/bin/chromium),
driven by Playwright in the app's own event loop. Nothing is downloaded: Playwright is pointed
at that binary. tests/test_web_pages.py checks the same pages over plain HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pytest
from callguard.app import create_app
from callguard.config import Config
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Response,
    async_playwright,
)

from tests.conftest import AppClient, ClientFactory, MakeKey

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium package (.ci/run installs it). Never `playwright install`."""
PAGE_BUDGET = 50 * 1024
"""What a page may weigh with everything it loads (issue 16)."""
SCAM = "0987111222"
VERIFIED = "02513685134"
BRIGADED = "0933333333"
UNKNOWN = "0912345678"


@dataclass
class Watched:
    """What the pages of one browser context did: every request and response, and every
    console error (a failed load, a CSP violation) or uncaught script error."""

    context: BrowserContext
    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def page(self) -> Page:
        page = await self.context.new_page()
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        return page

    def _console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.problems.append(f"console error: {text}")


OpenContext = Callable[..., Awaitable[Watched]]
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
    console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""
"""Every page says so on its console when its Content-Security-Policy blocks something."""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; started per test, in the test's event loop."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        await browser.close()


@pytest.fixture
async def site(aiohttp_client: ClientFactory, config: Config) -> AppClient:
    """The app, with the report form's proof of work made light (2^12 hashes, not 2^16), so
    a test sends a report in a blink on a slow machine."""
    return await aiohttp_client(create_app(replace(config, page_report_work_bits=12)))


@pytest.fixture
def base(site: AppClient) -> str:
    """The app's origin, as the browser sees it: http://127.0.0.1:PORT."""
    return str(site.make_url("/")).rstrip("/")


@pytest.fixture
async def open_context(browser: Browser, base: str) -> AsyncIterator[OpenContext]:
    """Open a browser context (new_context's options) whose every request and console
    error is recorded; after the test, none may have reported an error."""
    opened: list[Watched] = []

    async def open_one(**options: Any) -> Watched:
        options.setdefault("locale", "vi-VN")
        context = await browser.new_context(base_url=base, **options)
        await context.add_init_script(REPORT_CSP_VIOLATIONS)
        watched = Watched(context)
        context.on("request", lambda request: watched.requests.append(request))
        context.on("response", lambda response: watched.responses.append(response))
        opened.append(watched)
        return watched

    yield open_one
    for watched in opened:
        await watched.context.close()
    problems = [problem for watched in opened for problem in watched.problems]
    assert not problems, problems


async def admin_headers(make_key: MakeKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key('admin')}"}


async def list_scam(site: AppClient, make_key: MakeKey, number: str = SCAM) -> None:
    body = {"category": "impersonation_authority", "note": "Giả danh công an"}
    listed = await site.put(
        f"/v1/numbers/{number}", json=body, headers=await admin_headers(make_key)
    )
    assert listed.status == HTTPStatus.OK, await listed.text()


async def verify(site: AppClient, make_key: MakeKey, number: str = VERIFIED) -> None:
    body = {"owner": "Công an tỉnh Đồng Nai", "note": "Đường dây nóng"}
    added = await site.put(
        f"/v1/allowlist/{number}", json=body, headers=await admin_headers(make_key)
    )
    assert added.status in (HTTPStatus.OK, HTTPStatus.CREATED), await added.text()


async def report(
    site: AppClient, auth: dict[str, str], number: str, category: str, reporter: str
) -> None:
    body = {"number": number, "category": category, "reporter": reporter}
    response = await site.post("/v1/reports", json=body, headers=auth)
    assert response.status == HTTPStatus.CREATED, await response.text()


async def queue_for_review(site: AppClient, auth: dict[str, str]) -> None:
    """Ten first-time reporters on one number within minutes: a suspected brigade."""
    for reporter in range(10):
        await report(site, auth, BRIGADED, "online_loan", f"new-{reporter}")


async def open_reviews(site: AppClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    response = await site.get("/v1/reviews", params={"status": "open"}, headers=admin)
    assert response.status == HTTPStatus.OK
    reviews: list[dict[str, Any]] = (await response.json())["reviews"]
    return reviews


async def sign_in(page: Page, key: str) -> None:
    """Sign in on the moderators' sign-in page, as a moderator types it."""
    await page.goto("/admin")
    assert urlsplit(page.url).path == "/admin/sign-in"
    form = page.locator('form[data-form="sign-in"]')
    await form.locator('input[name="key"]').fill(key)
    async with page.expect_navigation():
        await form.locator('input[name="key"]').press("Enter")
    assert urlsplit(page.url).path == "/admin", await page.inner_text("main")


async def look_up_by_keyboard(page: Page, text: str) -> None:
    """Type a number in the number box and press Enter."""
    box = page.locator('form[data-form="lookup"] input[name="so"]')
    await box.focus()
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")


def documents(watched: Watched) -> list[str]:
    return [request.url for request in watched.requests if request.resource_type == "document"]


async def test_a_typed_number_shows_its_verdict_in_place_with_javascript(
    site: AppClient, make_key: MakeKey, open_context: OpenContext, base: str
) -> None:
    await list_scam(site, make_key)
    watched = await open_context()
    page = await watched.page()
    await page.goto("/")
    assert await page.get_by_label("Số điện thoại").get_attribute("name") == "so"
    await look_up_by_keyboard(page, "0987 111 222")
    verdict = page.locator("[data-verdict]")
    await verdict.wait_for()
    assert await verdict.get_attribute("data-verdict") == "scam"
    assert await page.locator("[data-what-to-do] li").count() == 3
    assert await page.locator("[data-what-to-do]").is_visible()
    assert page.url == f"{base}/so/{SCAM}"  # shareable, by pushState
    assert documents(watched) == [f"{base}/"], "the page was swapped in place, not loaded"
    await page.go_back()  # back to the front page, its number box
    await page.locator("[data-verdict]").wait_for(state="detached")
    assert page.url == f"{base}/"


async def test_a_typed_number_shows_its_verdict_without_javascript(
    site: AppClient, make_key: MakeKey, open_context: OpenContext, base: str
) -> None:
    await list_scam(site, make_key)
    watched = await open_context(java_script_enabled=False)
    page = await watched.page()
    await page.goto("/")
    async with page.expect_navigation(url=f"{base}/so/{SCAM}"):
        await look_up_by_keyboard(page, "+84 987 111 222")
    assert await page.locator("[data-verdict]").get_attribute("data-verdict") == "scam"
    assert await page.locator("[data-what-to-do]").is_visible()
    assert documents(watched)[1:] == [f"{base}/so?so=%2B84+987+111+222", f"{base}/so/{SCAM}"]


async def test_a_report_sent_from_the_page_is_counted(open_context: OpenContext, base: str) -> None:
    watched = await open_context()
    page = await watched.page()
    await page.goto(f"/so/{UNKNOWN}")
    assert await page.locator("[data-report-count]").get_attribute("data-report-count") == "0"
    form = page.locator('form[data-form="report"]')
    await form.get_by_label("Loại lừa đảo").select_option("online_loan")
    await form.locator('textarea[name="description"]').fill("Gọi mời vay lãi thấp")
    async with page.expect_navigation(url=f"{base}/so/{UNKNOWN}?da-gui=1#bao-cao"):
        await form.locator('button[type="submit"]').click()
    assert await page.locator("[data-report-sent]").is_visible()
    assert await page.locator("[data-report-count]").get_attribute("data-report-count") == "1"
    assert await page.locator("[data-verdict]").get_attribute("data-verdict") == "suspicious"


async def test_the_trends_page_draws_its_charts(
    site: AppClient, make_key: MakeKey, auth: dict[str, str], open_context: OpenContext
) -> None:
    for reporter in range(6):
        await report(site, auth, "0912000001", "fake_recruitment", f"r{reporter}")
    await report(site, auth, "0912000002", "online_loan", "r9")
    await verify(site, make_key)
    watched = await open_context()
    page = await watched.page()
    await page.goto("/xu-huong")
    charts = page.locator('svg[data-chart="category"]')
    assert await charts.count() >= 7  # one per category
    drawn = []
    for chart in await charts.all():
        box = await chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 40
        # Each bar's count and its height as laid out on the screen.
        bars = await chart.locator("rect[data-count]").evaluate_all(
            "bars => bars.map(bar => [Number(bar.dataset.count), "
            "bar.getBoundingClientRect().height])"
        )
        assert len(bars) == 12
        for count, height in bars:
            assert (height > 0) == (count > 0), bars
            if count:
                drawn.append(count)
    assert sorted(drawn) == [1, 6]
    assert await page.locator('[data-rising] [data-category="fake_recruitment"]').is_visible()
    assert await page.locator("table[data-networks]").count() == 1
    assert "Công an tỉnh Đồng Nai" in await page.locator("[data-official]").inner_text()


async def test_english_by_accept_language_and_back_by_the_switch(
    open_context: OpenContext,
) -> None:
    watched = await open_context(locale="en-US")
    page = await watched.page()
    await page.goto("/")
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.get_by_label("Phone number").is_visible()
    switch = page.locator("a[data-lang-switch]")
    assert await switch.is_visible()
    await switch.click()
    await page.locator('html[lang="vi"]').wait_for()
    assert await page.get_by_label("Số điện thoại").is_visible()
    await page.goto("/xu-huong")  # the choice is remembered
    assert await page.locator("html").get_attribute("lang") == "vi"


async def test_no_request_leaves_the_origin(
    site: AppClient,
    make_key: MakeKey,
    auth: dict[str, str],
    open_context: OpenContext,
    base: str,
) -> None:
    await list_scam(site, make_key)
    await verify(site, make_key)
    await queue_for_review(site, auth)
    watched = await open_context()
    page = await watched.page()
    await page.goto("/")
    await look_up_by_keyboard(page, SCAM)
    await page.locator('[data-verdict="scam"]').wait_for()
    for path in (f"/so/{VERIFIED}", f"/so/{UNKNOWN}", "/xu-huong"):
        await page.goto(path)
    await page.goto(f"/so/{UNKNOWN}")
    await page.locator('select[name="category"]').select_option("online_loan")
    async with page.expect_navigation(url=f"{base}/so/{UNKNOWN}?da-gui=1#bao-cao"):
        await page.locator('form[data-form="report"] button[type="submit"]').click()
    await sign_in(page, await make_key("admin"))
    for path in ("/admin/appeals", "/admin/allowlist", "/admin/audit"):
        response = await page.goto(path)
        assert response is not None and response.ok, path
    urls = [request.url for request in watched.requests]
    assert len(urls) > 10
    elsewhere = [url for url in urls if not url.startswith(f"{base}/") and url != "data:,"]
    assert not elsewhere


async def test_each_page_weighs_at_most_50_kb_with_all_it_loads(
    site: AppClient, make_key: MakeKey, auth: dict[str, str], open_context: OpenContext
) -> None:
    await list_scam(site, make_key)
    await verify(site, make_key)
    for category in ("online_loan", "fake_recruitment", "investment", "impersonation_authority"):
        await report(site, auth, "0912000001", category, f"r-{category}")
    weights = {}
    for locale, paths in (
        ("vi-VN", ["/", f"/so/{SCAM}", f"/so/{UNKNOWN}", "/xu-huong"]),
        ("en-US", [f"/so/{SCAM}", "/xu-huong"]),
    ):
        watched = await open_context(locale=locale)
        page = await watched.page()
        # Nothing from the cache: each page loads everything, as on a first visit.
        devtools = await watched.context.new_cdp_session(page)
        await devtools.send("Network.setCacheDisabled", {"cacheDisabled": True})
        for path in paths:
            watched.responses.clear()
            await page.goto(path, wait_until="load")
            responses = list(watched.responses)
            assert len(responses) >= 2, path  # the page and its style sheet at least
            weight = 0
            for response in responses:
                assert response.ok, response.url
                weight += len(await response.body())  # decoded: more than was sent gzipped
            weights[path, locale] = weight
    assert max(weights.values()) <= PAGE_BUDGET, weights


async def test_a_moderator_signs_in_and_decides_a_review(
    site: AppClient, make_key: MakeKey, auth: dict[str, str], open_context: OpenContext
) -> None:
    admin = await admin_headers(make_key)
    await queue_for_review(site, auth)
    (review,) = await open_reviews(site, admin)
    watched = await open_context()
    page = await watched.page()
    await sign_in(page, await make_key("admin"))
    row = page.locator(f'tr[data-review-id="{review["review_id"]}"]')
    assert await row.is_visible()
    decide = row.locator('form[data-form="decide-review"]')
    await decide.locator('textarea[name="note"]').fill("Mười mã mới trong ba phút")
    async with page.expect_navigation():
        await decide.locator('button[name="decision"][value="brigade"]').click()
    assert await row.count() == 0
    assert await open_reviews(site, admin) == []
    response = await site.get("/v1/reviews", params={"status": "brigade"}, headers=admin)
    (decided,) = (await response.json())["reviews"]
    assert decided["review_id"] == review["review_id"]
    assert decided["note"] == "Mười mã mới trong ba phút"


async def test_the_number_box_is_reached_by_tab_and_shows_focus(
    open_context: OpenContext,
) -> None:
    watched = await open_context()
    page = await watched.page()
    await page.goto("/")
    reached = []
    for _ in range(10):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            """() => {
                const element = document.activeElement;
                const style = getComputedStyle(element);
                return {
                    href: element.getAttribute("href"),
                    name: element.getAttribute("name") || element.getAttribute("type")
                        || element.textContent.trim(),
                    tag: element.tagName,
                    visible: element.matches(":focus-visible") && style.outlineStyle !== "none"
                        && parseFloat(style.outlineWidth) >= 2,
                };
            }"""
        )
        reached.append(focused)
        if focused["name"] == "submit":
            break
    names = [focused["name"] for focused in reached]
    assert reached[0]["href"] == "#main", "the skip link comes first"
    assert "so" in names and names[-1] == "submit"
    assert names.index("so") == len(names) - 2, "Enter or Tab: the box, then its button"
    assert all(focused["visible"] for focused in reached), reached
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.type("0912345678")
    await page.keyboard.press("Enter")
    await page.locator('[data-verdict="unknown"]').wait_for()
    # The answer's heading takes focus, so a screen reader reads the verdict next.
    assert await page.evaluate("document.activeElement.id") == "verdict-title"
