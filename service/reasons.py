"""Why a number has its verdict, in words: the rules' reasons (reputation.Reason) in
Vietnamese and English, as the advice is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from .auth import reserved_source
from .reputation import Reason, Why


def _en_count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _listed_vi(reason: Reason) -> str:
    if reserved_source(reason.source):
        return "được kiểm duyệt viên đưa vào danh sách lừa đảo"
    return f"được đưa vào danh sách lừa đảo theo dữ liệu của {reason.source}"


def _listed_en(reason: Reason) -> str:
    if reserved_source(reason.source):
        return "listed as a scam by a moderator"
    return f"listed by an operator import ({reason.source})"


_WORDS: Final[dict[str, dict[Why, Callable[[Reason], str]]]] = {
    "vi": {
        Why.ALLOWLISTED: lambda r: f"số đã được xác minh, thuộc {r.source}",
        Why.LISTED: _listed_vi,
        Why.VERIFIED_REPORTERS: lambda r: (
            f"{r.count} người báo cáo đã xác minh số điện thoại, trong {r.days} ngày"
        ),
        Why.COMMUNITY_REPORTERS: lambda r: f"{r.count} người báo cáo chưa xác minh",
        Why.NOT_SCAM: lambda r: f"{r.count} phản hồi cho biết không phải lừa đảo",
        Why.UNDER_REVIEW: lambda r: "đang được kiểm duyệt viên xem xét",
    },
    "en": {
        Why.ALLOWLISTED: lambda r: f"a verified number of {r.source}",
        Why.LISTED: _listed_en,
        Why.VERIFIED_REPORTERS: lambda r: (
            f"{_en_count(r.count, 'verified reporter', 'verified reporters')} over "
            f"{_en_count(r.days, 'day', 'days')}"
        ),
        Why.COMMUNITY_REPORTERS: lambda r: _en_count(
            r.count, "unverified reporter", "unverified reporters"
        ),
        Why.NOT_SCAM: lambda r: _en_count(r.count, "not-scam answer", "not-scam answers"),
        Why.UNDER_REVIEW: lambda r: "under review by moderators",
    },
}


def reasons_in(reasons: Sequence[Reason], language: str) -> list[str]:
    """The reasons in a language of advice.LANGUAGES (Vietnamese for any other)."""
    words = _WORDS.get(language, _WORDS["vi"])
    return [words[reason.why](reason) for reason in reasons]
