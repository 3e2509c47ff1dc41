"""The scam categories a report can name, from what police and provincial notices describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta


@dataclass(frozen=True, slots=True)
class Category:
    """A kind of scam call, with labels for people in Vietnamese and English."""

    id: str
    label_vi: str
    label_en: str


CATEGORIES: tuple[Category, ...] = (
    Category(
        "impersonation_authority",
        "Giả danh cơ quan tư pháp (Công an, Viện Kiểm sát, Tòa án)",
        "Impersonating the police, procuracy or courts",
    ),
    Category(
        "impersonation_military",
        "Mạo danh cán bộ, chiến sỹ quân đội",
        "Impersonating military officers or soldiers",
    ),
    Category(
        "fake_recruitment",
        "Tuyển cộng tác viên, làm nhiệm vụ trên sàn thương mại điện tử",
        "Recruiting 'collaborators' for tasks on e-commerce platforms",
    ),
    Category("online_loan", "Vay tiền online", "Online loans"),
    Category(
        "account_takeover",
        "Chiếm quyền tài khoản mạng xã hội để vay tiền bạn bè, người thân",
        "Hijacked social media account borrowing money from friends and family",
    ),
    Category(
        "gift_romance",
        "Kết bạn làm quen, hứa hẹn tặng quà có giá trị",
        "Befriending and promising valuable gifts",
    ),
    Category(
        "investment",
        "Lập App, Website giả để kêu gọi vốn, đầu tư",
        "Fake apps or websites raising money for investment",
    ),
    Category("other", "Thủ đoạn khác", "Other"),
)

CATEGORY_IDS: frozenset[str] = frozenset(category.id for category in CATEGORIES)

CategoryId = Annotated[
    str,
    Meta(
        description="A scam category; GET /v1/categories lists them with labels.",
        extra_json_schema={"enum": [category.id for category in CATEGORIES]},
    ),
]
"""A category id in a body: one of CATEGORIES (the schema lists them)."""
