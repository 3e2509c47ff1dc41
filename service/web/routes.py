"""Every page route: the public pages, the moderators' pages, and their static files. Kept
apart from the API's routes (routes.py), which the OpenAPI document describes."""

from __future__ import annotations

from aiohttp import web

from . import admin, pages, static

PAGES = [
    web.get("/", pages.home),
    web.get("/so", pages.look_up),
    web.get("/so/{number}", pages.number_page),
    web.post("/so/{number}/bao-cao", pages.send_report),
    web.get("/xu-huong", pages.trends_page),
    web.get("/admin/sign-in", admin.sign_in_page),
    web.post("/admin/sign-in", admin.sign_in),
    web.post("/admin/sign-out", admin.sign_out),
    web.get("/admin", admin.review_queue),
    web.post("/admin/reviews/{review_id}/decide", admin.decide_review),
    web.get("/admin/appeals", admin.appeals_page),
    web.post("/admin/appeals/{appeal_id}/resolve", admin.resolve_appeal),
    web.get("/admin/allowlist", admin.allowlist_page),
    web.post("/admin/allowlist", admin.add_to_allowlist),
    web.post("/admin/allowlist/{number}/remove", admin.remove_from_allowlist),
    web.get("/admin/audit", admin.audit_page),
    web.get(f"{static.STATIC_PATH}/{{name}}", static.static_file),
]
