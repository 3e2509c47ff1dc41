"""/v1/reviews: the review queue of suspected brigades; admins read and decide it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast, get_args

import msgspec
from aiohttp import web
from msgspec import Meta

from .. import store
from ..auth import API_KEY, Role, requires
from ..e164 import to_e164
from ..moderation import MODERATION
from ..problems import answers, not_found
from ..reputation import BrigadeSign
from ..state import POOL
from .answers import E164, Body, Id, Time
from .bodies import FreeText, accepts, iso, json_answer, path_id, query_choice, responds
from .documented import (
    BAD_BODY,
    BAD_QUERY,
    ID_MAX,
    after,
    documented,
    integer,
    limit,
    missing,
    path,
    query,
    ref,
)
from .numbers import actor

ReviewStatus = Literal["open", "brigade", "genuine"]
STATUSES: tuple[str, ...] = get_args(ReviewStatus)
Decision = Literal["brigade", "genuine"]
MAX_NOTE_LENGTH = 4000


class Review(Body):
    """A number in the review queue: why it was queued, and the decision."""

    review_id: Id
    number: E164
    sign: Annotated[
        BrigadeSign,
        Meta(
            description="Why it was queued: `newcomers`, many first-time reporters within "
            "minutes; `key_share` or `network_share`, one key or one network (an IPv4 /24, "
            "an IPv6 /48) far above its usual share of reports."
        ),
    ]
    detail: Annotated[dict[str, Any], Meta(description="The figures that queued it.")]
    opened_at: Time
    status: ReviewStatus
    decided_at: Time | None
    note: str | None


class Reviews(Body):
    """Reviews, oldest first."""

    reviews: list[Review]


def review_body(review: store.reviews.Review) -> Review:
    """The body for one review."""
    return Review(
        review_id=review.id,
        number=to_e164(review.number),
        sign=BrigadeSign(review.sign),
        detail=review.detail,
        opened_at=review.opened_at.isoformat(),
        status=cast(ReviewStatus, review.status),
        decided_at=iso(review.decided_at),
        note=review.note,
    )


class ReviewDecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """An admin's decision on an open review."""

    decision: Annotated[
        Decision,
        Meta(
            description="`brigade` ends the number's report evidence at once (its trusted "
            "listings stay) and counts against the reporters who spoke before; `genuine` "
            "leaves it as it is.",
            examples=["brigade"],
        ),
    ]
    note: Annotated[
        FreeText,
        Meta(
            max_length=MAX_NOTE_LENGTH,
            description="Why.",
            examples=["50 new ids from one app in 3 minutes against a shop's number."],
        ),
    ]


REVIEWS_AFTER = after("Only reviews with a higher id.")
REVIEWS_LIMIT = limit(100, 1000)


@requires(Role.ADMIN)
@documented(
    "moderation",
    parameters=(
        query("status", ref("ReviewStatus"), "Only reviews of this status."),
        REVIEWS_AFTER,
        REVIEWS_LIMIT,
    ),
    responses={400: BAD_QUERY},
)
@responds(200, Reviews, "The reviews.")
async def list_reviews(request: web.Request) -> web.Response:
    """Review queue

    Numbers whose recent reports looked like a brigade, oldest first; page with `after` =
    the last `review_id` seen. A review holds back no verdict: it asks a moderator to look.
    """
    status = query_choice(request, "status", STATUSES)
    reviews = await store.reviews.list_reviews(
        request.app[POOL], status, REVIEWS_AFTER.read(request), REVIEWS_LIMIT.read(request)
    )
    return json_answer(Reviews([review_body(review) for review in reviews]))


@requires(Role.ADMIN)
@answers(store.reviews.ReviewNotOpen)
@documented(
    "moderation",
    parameters=(path("review_id", integer(1, ID_MAX), "The review's id.", 1),),
    responses={400: BAD_BODY, 404: missing("There is no such review.")},
)
@responds(200, Review, "Decided.")
@accepts(ReviewDecisionIn)
async def decide_review(request: web.Request, body: ReviewDecisionIn) -> web.Response:
    """Decide a review

    `brigade` ends the number's report evidence at once; `genuine` leaves it. Audited.
    """
    review_id = path_id(request, "review_id", "review")
    review = await request.app[MODERATION].decide_review(
        review_id, body.decision == "brigade", body.note, actor(request[API_KEY])
    )
    if review is None:
        raise not_found(f"There is no review {review_id}.")
    return json_answer(review_body(review))
