"""Take the screenshots in docs/screenshots/: start callguard on a temporary embedded Postgres,
fill it with demo data through the HTTP API (twelve weeks of it, by the app's clock), and
photograph each public and moderators' page in Debian's Chromium (/usr/bin/chromium).

    python docs/screenshots/take.py
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.clock import VIETNAM
from callguard.config import Config
from callguard.embedded import database_url
from callguard.lists import LISTS
from callguard.trends import week_of
from playwright.async_api import Browser, Page, async_playwright

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 412, "height": 915}
DESK = {"width": 1280, "height": 800}

LISTED = {
    "0987111222": ("impersonation_authority", "Giả danh công an, đòi chuyển tiền để “xác minh”"),
    "0868555014": ("investment", "Mời đầu tư sàn ngoại hối giả"),
    "0355222901": ("online_loan", "Ứng dụng vay nợ đe dọa người thân"),
}
"""Numbers a moderator has listed as scams: category, note."""
VERIFIED = {
    "02513685134": ("Công an tỉnh Đồng Nai", "Đường dây nóng"),
    "02838291234": ("Tổng đài chăm sóc khách hàng (ví dụ)", "Số demo"),
}
SUSPICIOUS = "0912000001"
REPORTED = "0901234567"
"""The number the report form is photographed sending a report on."""
BRIGADED = "0933333333"
WEEKLY = {
    "impersonation_authority": [3, 4, 2, 5, 4, 3, 6, 4, 5, 4, 3, 4],
    "fake_recruitment": [1, 2, 1, 2, 2, 1, 3, 2, 4, 6, 9, 14],
    "online_loan": [6, 5, 7, 6, 5, 6, 4, 5, 6, 5, 6, 5],
    "account_takeover": [0, 1, 1, 0, 2, 1, 1, 0, 1, 2, 1, 1],
    "gift_romance": [1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0],
    "investment": [2, 3, 2, 2, 3, 4, 3, 2, 3, 3, 2, 3],
    "other": [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1],
}
"""Community reports per category per week, oldest week first: this week is the last."""
DESCRIPTIONS = {
    "impersonation_authority": "Tự xưng công an, nói tôi liên quan đến đường dây rửa tiền",
    "fake_recruitment": "Mời làm cộng tác viên chốt đơn, phải nạp tiền trước",
    "online_loan": "Gọi mời vay không cần thế chấp, lãi 0%",
    "account_takeover": "Giả làm bạn trên Zalo hỏi vay tiền gấp",
    "gift_romance": "Làm quen rồi nói có quà gửi từ nước ngoài, phải đóng phí",
    "investment": "Mời tham gia sàn đầu tư tiền ảo, cam kết lãi cao",
    "other": "Gọi nhiều lần rồi tắt máy",
}


class DemoClock:
    """The app's clock: the real time, or a moment in the past while the demo is seeded."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


@dataclass(frozen=True)
class Demo:
    """The running app: its origin and the keys the demo uses."""

    base: str
    admin: str
    client: str


async def seed(
    http: aiohttp.ClientSession, demo: Demo, clock: DemoClock, app: web.Application
) -> None:
    """Fill the service with demo data through its API, as apps and moderators would."""
    admin = {"Authorization": f"Bearer {demo.admin}"}
    client = {"Authorization": f"Bearer {demo.client}"}
    rng = random.Random(16)
    numbers = [f"09{rng.randrange(10**7, 10**8)}" for _ in range(60)]
    now = datetime.now(UTC)
    this_monday = datetime.combine(week_of(now), time(), VIETNAM)
    reporter = 0
    for week, weeks_back in enumerate(range(11, -1, -1)):
        monday = this_monday - timedelta(weeks=weeks_back)
        span = min(now - monday, timedelta(weeks=1))
        for category, counts in WEEKLY.items():
            for _ in range(counts[week]):
                reporter += 1
                # Anywhere in that week; this week, in the part gone by.
                clock.at = monday + span * rng.random()
                number = SUSPICIOUS if category == "online_loan" and reporter % 3 == 0 else None
                body = {
                    "number": number or rng.choice(numbers),
                    "category": category,
                    "reporter": f"demo-{reporter}",
                    "description": DESCRIPTIONS[category],
                }
                await post(http, f"{demo.base}/v1/reports", body, client)
    for weeks_back, number in enumerate(LISTED):
        clock.at = now - timedelta(weeks=weeks_back, hours=5)
        category, note = LISTED[number]
        await put(
            http, f"{demo.base}/v1/numbers/{number}", {"category": category, "note": note}, admin
        )
        for who in range(3):
            body = {"number": number, "category": category, "reporter": f"victim-{number}-{who}"}
            await post(http, f"{demo.base}/v1/reports", body, client)
        await app[LISTS].publish()  # newly on the published list, that week
    clock.at = None
    for number, (owner, note) in VERIFIED.items():
        await put(http, f"{demo.base}/v1/allowlist/{number}", {"owner": owner, "note": note}, admin)
    for who in range(10):  # ten first-time reporters within minutes: a suspected brigade
        body = {"number": BRIGADED, "category": "online_loan", "reporter": f"new-{who}"}
        await post(http, f"{demo.base}/v1/reports", body, client)
    appeal = {
        "number": "0355222901",
        "contact": "chu.so@example.com",
        "message": "Số này tôi mới mua lại từ nhà mạng tháng trước, không phải của ứng dụng vay.",
    }
    await post(http, f"{demo.base}/v1/appeals", appeal, client)


async def post(
    http: aiohttp.ClientSession, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
) -> None:
    async with http.post(url, json=body, headers=headers) as response:
        assert response.status < 300, (url, response.status, await response.text())


async def put(
    http: aiohttp.ClientSession, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
) -> None:
    async with http.put(url, json=body, headers=headers) as response:
        assert response.status < 300, (url, response.status, await response.text())


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=HERE / f"{name}.png", full_page=True, type="png")
    print(f"docs/screenshots/{name}.png")


async def public_pages(browser: Browser, demo: Demo) -> None:
    context = await browser.new_context(base_url=demo.base, viewport=PHONE, locale="vi-VN")
    page = await context.new_page()
    await page.goto("/")
    await shoot(page, "front")
    await page.goto(f"/so/{next(iter(LISTED))}")
    await shoot(page, "number-scam")
    await page.goto(f"/so/{SUSPICIOUS}")
    await shoot(page, "number-suspicious")
    await page.goto(f"/so/{next(iter(VERIFIED))}")
    await shoot(page, "number-verified")
    await page.goto(f"/so/{REPORTED}")
    form = page.locator('form[data-form="report"]')
    await form.locator('select[name="category"]').select_option("fake_recruitment")
    await form.locator('textarea[name="description"]').fill(DESCRIPTIONS["fake_recruitment"])
    async with page.expect_navigation(url=f"{demo.base}/so/{REPORTED}?da-gui=1#bao-cao"):
        await form.locator('button[type="submit"]').click()
    await shoot(page, "report-sent")
    await page.goto("/xu-huong")
    await shoot(page, "trends")
    await context.close()
    english = await browser.new_context(base_url=demo.base, viewport=PHONE, locale="en-US")
    page = await english.new_page()
    await page.goto("/")
    await shoot(page, "front-english")
    await english.close()


async def moderators_pages(browser: Browser, demo: Demo) -> None:
    context = await browser.new_context(base_url=demo.base, viewport=DESK, locale="vi-VN")
    page = await context.new_page()
    await page.goto("/admin")
    await shoot(page, "admin-sign-in")
    await page.locator('input[name="key"]').fill(demo.admin)
    async with page.expect_navigation():
        await page.locator('input[name="key"]').press("Enter")
    if not page.url.endswith("/admin"):
        raise SystemExit(f"signing in ended on {page.url}: {await page.inner_text('main')}")
    await shoot(page, "admin-reviews")
    for name in ("appeals", "allowlist", "audit"):
        await page.goto(f"/admin/{name}")
        await shoot(page, f"admin-{name}")
    await context.close()


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="callguard-screenshots-") as temp:
        data_dir = Path(temp) / "data"
        with database_url(None, data_dir) as url:
            async with await store.database.create_pool(url, 1, 1) as pool:
                async with pool.acquire() as conn:
                    await store.database.apply_schema(conn)
                admin, client = new_key(), new_key()
                await store.keys.create(pool, "Nguyễn Văn A", "admin", hash_key(admin))
                await store.keys.create(pool, "demo app", "client", hash_key(client))
            config = Config(
                database_url=url,
                data_dir=data_dir,
                reporter_key_file=Path(temp) / "reporter.key",
                filter_min_capacity=10_000,
                page_report_work_bits=12,  # the demo's report is sent in a blink
            )
            clock = DemoClock()
            app = create_app(config, clock)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            demo = Demo(f"http://127.0.0.1:{port}", admin, client)
            try:
                async with aiohttp.ClientSession() as http:
                    await seed(http, demo, clock, app)
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                    )
                    await public_pages(browser, demo)
                    await moderators_pages(browser, demo)
                    await browser.close()
            finally:
                await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
