"""GET /v1/categories: the scam categories a report may name."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from msgspec import Meta

from ..categories import CATEGORIES
from .answers import Body, CategoryId
from .bodies import json_answer, responds
from .documented import documented


class Category(Body):
    """A scam category and its labels."""

    id: CategoryId
    label_vi: Annotated[str, Meta(description="In Vietnamese.")]
    label_en: Annotated[str, Meta(description="In English.")]


class Categories(Body):
    """Every category a report may name."""

    categories: list[Category]


CATEGORIES_ANSWER = Categories([Category(c.id, c.label_vi, c.label_en) for c in CATEGORIES])


@documented("lookups")
@responds(200, Categories, "The categories.")
async def list_categories(request: web.Request) -> web.Response:
    """The scam categories

    Every category a report may name, with Vietnamese and English labels.
    """
    return json_answer(CATEGORIES_ANSWER)
