"""GET /v1/categories: the scam categories a report may name."""

from __future__ import annotations

from aiohttp import web

from ..categories import CATEGORIES
from .bodies import json_response


async def list_categories(request: web.Request) -> web.Response:
    """Every category with its Vietnamese and English labels."""
    return json_response(
        {
            "categories": [
                {"id": c.id, "label_vi": c.label_vi, "label_en": c.label_en} for c in CATEGORIES
            ]
        }
    )
