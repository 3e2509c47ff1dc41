"""Response bodies several resources share: the verdict on a number (lookups, batches,
moderation) and the field types the bodies of every resource use. Each is declared once,
as a msgspec Struct; the handlers encode it (bodies.json_answer) and the OpenAPI document
takes its schema from it (bodies.responds, openapi._components)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from ..categories import CategoryId
from ..reputation import Verdict

__all__ = ["CategoryId"]

E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"

E164 = Annotated[
    str,
    Meta(pattern=E164_PATTERN, description="A number in E.164 form.", examples=["+84912345678"]),
]
Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
"""A time as bodies.iso writes it: ISO 8601 with its UTC offset (RFC 3339)."""
DAY_ONLY = (
    "The day only, in Vietnam time (UTC+7): an exact time would tell the number's owner "
    "when, and so who, reported it."
)
Count = Annotated[int, Meta(ge=0)]
Id = Annotated[int, Meta(ge=1)]


class Body(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A JSON response body: no fields beyond those declared; an UNSET field is left out."""


class NumberVerdict(Body):
    """The verdict on one number, judged afresh at every lookup."""

    number: E164
    verdict: Verdict
    score: Annotated[
        int,
        Meta(
            ge=0,
            le=100,
            description="0-100: trusted (70 if a trusted source lists it) + verified "
            "reporters' net units (30 each, at most 90) + community reporters' net units (10 "
            "each, at most 30); docs/verdicts.md.",
        ),
    ]
    report_count: Annotated[Count, Meta(description="Reports since the number's last delisting.")]
    reporter_count: Annotated[
        Count,
        Meta(
            description="Distinct reporters whose word counts now (reports and not-scam "
            "answers, both lanes)."
        ),
    ]
    categories: list[CategoryId]
    first_reported_at: (
        Annotated[
            date,
            Meta(description=f"The day of the first report since the last delisting. {DAY_ONLY}"),
        ]
        | None
    )
    last_reported_at: (
        Annotated[
            date,
            Meta(description=f"The day of the latest report since the last delisting. {DAY_ONLY}"),
        ]
        | None
    )
    owner: (
        Annotated[str, Meta(description="Only for a `verified` number: who owns it.")] | UnsetType
    ) = UNSET
    sources: (
        Annotated[
            list[str],
            Meta(description="Only for a `scam` number a trusted source lists: the sources."),
        ]
        | UnsetType
    ) = UNSET
    reasons: (
        Annotated[
            list[str],
            Meta(
                description="Why the number has its verdict, for every verdict but a plain "
                '`unknown`: e.g. "3 verified reporters over 5 days", "listed by an operator '
                'import (viettel)", "2 not-scam answers", "under review by moderators". In '
                "the language Content-Language names (docs/verdicts.md lists them all).",
                examples=[["3 verified reporters over 5 days"]],
            ),
        ]
        | UnsetType
    ) = UNSET
    advice: (
        Annotated[
            list[str],
            Meta(
                description="Only for `suspicious` and `scam`: advice per category, in the "
                "language Content-Language names."
            ),
        ]
        | UnsetType
    ) = UNSET
    degraded: (
        Annotated[
            bool,
            Meta(
                description="Present (true) when Postgres was unreachable and the answer came "
                "from the Bloom filter and the cache alone."
            ),
        ]
        | UnsetType
    ) = UNSET


class LookupAnswer(NumberVerdict, kw_only=True):
    """A valid item of a batch: its verdict and its input."""

    input: Annotated[str, Meta(description="The item as sent.")]


class LookupItemError(Body):
    """An invalid item of a batch; it does not fail the batch."""

    input: Annotated[str, Meta(description="The item as sent.")]
    error: Annotated[str, Meta(description="Why it is not a number.")]


class LookupResults(Body):
    """The answer to a batch: one result per number sent, in input order."""

    results: Annotated[
        list[
            Annotated[
                Raw,
                Meta(
                    extra_json_schema={
                        "oneOf": [
                            {"$ref": "#/components/schemas/LookupAnswer"},
                            {"$ref": "#/components/schemas/LookupItemError"},
                        ]
                    }
                ),
            ]
        ],
        Meta(description="One per number sent, in input order."),
    ]
    """Each result is a LookupAnswer or a LookupItemError, encoded already: the batch's fast
    path writes them as text (api/lookups.py)."""


BATCH_RESULT_TYPES = (LookupAnswer, LookupItemError)
"""The result types LookupResults' schema names (msgspec takes no union of untagged Structs,
so its items are described with their references): the OpenAPI document declares both."""
