"""Short advice, in Vietnamese and English, for someone taking a call from a reported number."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

LANGUAGES: Final[tuple[str, ...]] = ("vi", "en")
DEFAULT_LANGUAGE: Final = "vi"

# RFC 4647 language-range and RFC 9110 qvalue grammars; fullmatch-only and free of nested
# quantifiers, so a hostile header can't make them backtrack.
_LANGUAGE_RANGE = re.compile(r"\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True, slots=True)
class Advice:
    """One piece of advice, in each of LANGUAGES."""

    vi: str
    en: str

    def in_language(self, language: str) -> str:
        return self.en if language == "en" else self.vi


# Written from the seed notices: Công an tỉnh Nam Định 5207/CAT-PA05 (2023) and Sở Công Thương
# Đồng Nai (2024, relaying UBND 3043/UBND-THNC); anything beyond them is common-sense safety.
ADVICE: Final[Mapping[str, Advice]] = {
    "impersonation_authority": Advice(
        vi=(
            "Khi cần làm việc, Cơ quan Công an gửi Giấy mời hoặc Giấy triệu tập để bạn đến trụ sở, "
            "không gọi điện yêu cầu cung cấp thông tin hay chuyển tiền, kể cả khi người gọi nói "
            "tài khoản hoặc số điện thoại của bạn liên quan đến một vụ án. Hãy cúp máy, không cung "
            "cấp thông tin và không chuyển tiền."
        ),
        en=(
            "When the police need you, they send a written invitation or summons (Giấy mời, Giấy "
            "triệu tập) to come to the station; they do not phone to ask for information or money, "
            "even if the caller says your account or phone number is linked to a case. Hang up, "
            "give no information and transfer no money."
        ),
    ),
    "impersonation_military": Advice(
        vi=(
            "Người gọi tự xưng là cán bộ, chiến sỹ quân đội có thể là kẻ mạo danh. Đừng chuyển "
            "tiền hay cung cấp thông tin qua điện thoại; hãy tự liên hệ với đơn vị qua số điện "
            "thoại hoặc địa chỉ chính thức mà bạn tự tìm được."
        ),
        en=(
            "Someone calling as a military officer or soldier may be an impostor. Do not transfer "
            "money or give information over the phone; contact the unit yourself through a phone "
            "number or address you found independently."
        ),
    ),
    "fake_recruitment": Advice(
        vi=(
            "Việc làm thật không bắt bạn nộp tiền hay chuyển tiền trước để nhận việc hoặc nhận "
            "thưởng. Đừng nộp tiền để làm cộng tác viên hay làm nhiệm vụ trên sàn thương mại điện "
            "tử."
        ),
        en=(
            "A real job never asks you to pay or transfer money first to get work or to be paid. "
            "Do not pay to become a 'collaborator' or to do tasks on an e-commerce platform."
        ),
    ),
    "online_loan": Advice(
        vi=(
            "Đừng nộp bất kỳ khoản phí nào trước khi nhận được tiền vay, và đừng gửi giấy tờ tùy "
            "thân hay mã OTP cho người gọi. Nếu cần vay, hãy tự liên hệ trực tiếp ngân hàng hoặc "
            "tổ chức tín dụng được cấp phép."
        ),
        en=(
            "Do not pay any fee before you receive a loan, and do not send your ID papers or OTP "
            "codes to the caller. If you need a loan, go to a bank or licensed lender yourself."
        ),
    ),
    "account_takeover": Advice(
        vi=(
            "Lời mượn tiền từ tài khoản mạng xã hội của bạn bè, người thân có thể do kẻ gian đã "
            "chiếm quyền tài khoản đó. Trước khi chuyển tiền, hãy gọi lại cho người đó bằng số "
            "điện thoại bạn đã biết từ trước."
        ),
        en=(
            "A request to borrow money from a friend's or relative's social media account may come "
            "from someone who has taken over that account. Before transferring money, call the "
            "person back on a phone number you already know."
        ),
    ),
    "gift_romance": Advice(
        vi=(
            "Người mới quen hứa tặng quà có giá trị rồi yêu cầu nộp tiền, chuyển tiền để nhận quà "
            "là dấu hiệu lừa đảo. Đừng chuyển tiền cho người bạn chưa từng gặp ngoài đời."
        ),
        en=(
            "A new acquaintance who promises a valuable gift and then asks you to pay or transfer "
            "money to receive it is running a scam. Do not send money to someone you have never "
            "met in person."
        ),
    ),
    "investment": Advice(
        vi=(
            "Kẻ lừa đảo lập App, Website giả để kêu gọi vốn, đầu tư. Đừng nạp tiền hay đầu tư qua "
            "ứng dụng, trang web mà người gọi giới thiệu, nhất là khi được hứa lợi nhuận cao."
        ),
        en=(
            "Scammers set up fake apps and websites to raise money for investment. Do not deposit "
            "or invest money through an app or website a caller points you to, especially one "
            "promising high returns."
        ),
    ),
    "other": Advice(
        vi=(
            "Hãy cảnh giác khi người lạ gọi đến làm bạn hoang mang, lo lắng hoặc thúc giục bạn nộp "
            "tiền, chuyển tiền. Không chuyển tiền, không cung cấp mã OTP, mật khẩu hay thông tin "
            "tài khoản qua điện thoại."
        ),
        en=(
            "Be wary when a stranger on the phone tries to frighten you or rush you into paying or "
            "transferring money. Never transfer money or give OTP codes, passwords or account "
            "details over the phone."
        ),
    ),
}

WHERE_TO_REPORT: Final = Advice(
    vi=(
        "Nếu nghi ngờ bị lừa đảo, hãy trình báo cơ quan Công an nơi gần nhất; ở Đồng Nai, có thể "
        "gọi đường dây nóng 02513.685.134 của Phòng An ninh mạng và phòng, chống tội phạm sử dụng "
        "công nghệ cao, Công an tỉnh Đồng Nai."
    ),
    en=(
        "If you suspect a scam, report it to the nearest police station (Công an nơi gần nhất); "
        "in Đồng Nai province you can also call 02513.685.134, the hotline of the Đồng Nai "
        "Provincial Police's cybersecurity and high-tech crime unit."
    ),
)


def _weight(params: Sequence[str]) -> float | None:
    """The q of a range's parameters: 1 if absent, None if malformed."""
    weight = 1.0
    for param in params:
        if not param:
            continue  # a stray ";" (as in "en;") hides no intent worth dropping the range for
        name, equals, value = param.partition("=")
        if not equals or name.strip().lower() != "q":
            return None
        value = value.strip()
        if not _QVALUE.fullmatch(value):
            return None
        weight = float(value)
    return weight


def pick_language(accept_language: str | None) -> str:
    """The supported language an Accept-Language header (RFC 9110) prefers most; default vi.

    A language named by several ranges (en, en-GB) takes the highest of their weights, so any
    acceptable English variant is enough for our plain English; "*" only covers languages the
    header does not name. Malformed ranges are skipped rather than rejected, since a caller's
    phone sends whatever it sends and an answer in the default language beats an error.
    """
    if not accept_language:
        return DEFAULT_LANGUAGE
    named: dict[str, tuple[float, int]] = {}
    wildcard: tuple[float, int] | None = None
    for position, part in enumerate(accept_language.split(",")):
        language_range, *params = (piece.strip() for piece in part.split(";"))
        weight = _weight(params)
        if weight is None or not _LANGUAGE_RANGE.fullmatch(language_range):
            continue
        if language_range == "*":
            if wildcard is None or weight > wildcard[0]:
                wildcard = (weight, position)
            continue
        primary = language_range.partition("-")[0].lower()
        if primary in LANGUAGES and (primary not in named or weight > named[primary][0]):
            named[primary] = (weight, position)
    best = DEFAULT_LANGUAGE
    best_key: tuple[float, int] | None = None
    for language in LANGUAGES:
        weight_position = named.get(language, wildcard)
        if weight_position is None or weight_position[0] <= 0:
            continue
        weight, position = weight_position
        # Higher q wins, then the earlier range; on a full tie LANGUAGES order keeps vi first.
        if best_key is None or (-weight, position) < (-best_key[0], best_key[1]):
            best, best_key = language, weight_position
    return best


def advice_for(categories: Sequence[str], language: str) -> list[str]:
    """Advice for these categories in order, once each, then where to report; unknown ids skipped.

    An unsupported language gets the default one rather than an error: some advice always helps.
    """
    if isinstance(categories, str):
        # A bare id is a Sequence[str] too, and would silently be read as its letters.
        raise TypeError("categories must be a sequence of category ids, not a str")
    texts = [
        ADVICE[category].in_language(language)
        for category in dict.fromkeys(categories)
        if category in ADVICE
    ]
    texts.append(WHERE_TO_REPORT.in_language(language))
    return texts
