"""POST /v1/lookups: verdicts on up to a batch limit of numbers in one call."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from service.numbers import InvalidNumber, normalize
from service.problems import Problem, bad_request
from service.state import CONFIG, LISTINGS

from .bodies import read_object
from .numbers import answer_body, language, lookup_response


async def lookup_batch(request: web.Request) -> web.Response:
    """Answer each number in input order; an invalid item is reported, not fatal."""
    data = await read_object(request, ("numbers",))
    items = data.get("numbers")
    if not isinstance(items, list):
        raise bad_request("'numbers' must be a list of phone numbers as strings.")
    limit = request.app[CONFIG].batch_limit
    if len(items) > limit:
        raise Problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(items)} numbers in one call; the limit is {limit}. Split the batch.",
            kind="batch-too-large",
            limit=limit,
        )
    errors: dict[int, str] = {}
    numbers: dict[int, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            errors[index] = "must be a string"
            continue
        try:
            numbers[index] = normalize(item)
        except InvalidNumber as err:
            errors[index] = str(err)
    answers = iter(await request.app[LISTINGS].lookup_many(list(numbers.values())))
    lang = language(request)
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if index in errors:
            results.append({"input": item, "error": errors[index]})
        else:
            results.append({"input": item, **answer_body(next(answers), lang)})
    return lookup_response({"results": results}, lang)
