"""Every page route: the public pages, the moderators' pages, and their static files. Kept
apart from the API's routes (routes.py), which the OpenAPI document describes."""

from __future__ import annotations

from aiohttp import web

from . import pages, static

PAGES = [
    web.get("/", pages.home),
    web.get("/so", pages.look_up),
    web.get("/so/{number}", pages.number_page),
    web.post("/so/{number}/bao-cao", pages.send_report),
    web.get("/xu-huong", pages.trends_page),
    web.get(f"{static.STATIC_PATH}/{{name}}", static.static_file),
]
