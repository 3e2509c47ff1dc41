"""The pages' words in Vietnamese and English, and which of the two a visitor reads.

A visitor reads Vietnamese unless they chose English with the switch on every page (a
`lang` query, remembered in a cookie) or their browser prefers it (Accept-Language).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from aiohttp import web

from ..advice import DEFAULT_LANGUAGE, LANGUAGES, pick_language
from ..categories import CATEGORIES
from .admin_texts import ADMIN_TEXTS

LANGUAGE_COOKIE: Final = "lang"
LANGUAGE_QUERY: Final = "lang"

Translate = Callable[[str], str]

TEXTS: Final[Mapping[str, tuple[str, str]]] = {
    # key: (Vietnamese, English)
    "site": ("callguard: kiểm tra số điện thoại lừa đảo", "callguard: check a scam number"),
    "site_short": ("Kiểm tra số lừa đảo", "Scam number check"),
    "switch": ("English", "Tiếng Việt"),
    "nav_check": ("Kiểm tra số", "Check a number"),
    "nav_trends": ("Xu hướng lừa đảo", "Scam trends"),
    "skip": ("Bỏ qua, đến nội dung chính", "Skip to the main content"),
    "intro": (
        "Nhận được cuộc gọi lạ? Nhập số điện thoại để xem số đó đã bị người dân, nhà mạng "
        "hoặc cơ quan chức năng báo là lừa đảo hay chưa.",
        "A strange call? Type the number to see whether people, operators or the authorities "
        "have reported it as a scam.",
    ),
    "number_label": ("Số điện thoại", "Phone number"),
    "number_hint": (
        "Ví dụ: 0912 345 678 hoặc +84 912 345 678",
        "For example 0912 345 678 or +84 912 345 678",
    ),
    "check": ("Kiểm tra", "Check"),
    "checking": ("Đang kiểm tra…", "Checking…"),
    "stay_alert": ("Luôn cảnh giác", "Stay alert"),
    "stay_alert_1": (
        "Công an không gọi điện yêu cầu cung cấp thông tin hay chuyển tiền; khi cần làm việc, "
        "Công an gửi Giấy mời hoặc Giấy triệu tập.",
        "The police do not phone to ask for information or money; when they need you, they "
        "send a written invitation or summons.",
    ),
    "stay_alert_2": (
        "Không chuyển tiền, không cung cấp mã OTP, mật khẩu, số tài khoản cho người lạ.",
        "Never transfer money or give an OTP code, password or account number to a stranger.",
    ),
    "stay_alert_3": (
        "Không cài ứng dụng, không bấm vào đường link do người lạ gửi.",
        "Do not install apps or open links that strangers send you.",
    ),
    "bad_number_title": ("Không phải số điện thoại", "Not a phone number"),
    "bad_number": (
        "“{text}” không phải là số điện thoại hợp lệ: hãy nhập lại, ví dụ 0912 345 678.",
        "“{text}” is not a valid phone number: type it again, for example 0912 345 678.",
    ),
    "too_many_title": ("Quá nhiều yêu cầu", "Too many requests"),
    "too_many": (
        "Mạng của bạn đã gửi quá nhiều yêu cầu. Hãy thử lại sau {seconds} giây.",
        "Your network has sent too many requests. Try again in {seconds} seconds.",
    ),
    "number_title": ("Số {number}", "Number {number}"),
    "verdict_scam": ("Số lừa đảo", "Scam number"),
    "verdict_suspicious": ("Số đáng ngờ", "Suspicious number"),
    "verdict_verified": ("Số chính thức đã xác minh", "Verified official number"),
    "verdict_unknown": ("Chưa có báo cáo", "Not reported"),
    "explain_scam": (
        "Số này đã bị xác định là số lừa đảo. Đừng nghe máy, đừng gọi lại.",
        "This number has been found to be a scam number. Do not answer, do not call back.",
    ),
    "explain_suspicious": (
        "Số này đã bị một số người báo là lừa đảo, nhưng chưa đủ để kết luận. Hãy thận trọng.",
        "Some people have reported this number as a scam, but not enough to conclude it is "
        "one. Be careful.",
    ),
    "explain_verified": (
        "Đây là số chính thức của một cơ quan hoặc doanh nghiệp đã được xác minh.",
        "This is the verified official number of an authority or a business.",
    ),
    "explain_unknown": (
        "Chưa ai báo số này là lừa đảo. Điều đó không có nghĩa là số an toàn: kẻ gian thường "
        "dùng số mới. Hãy luôn cảnh giác.",
        "Nobody has reported this number as a scam. That does not make it safe: scammers "
        "often use new numbers. Stay alert.",
    ),
    "owner": ("Chủ số", "Owner"),
    "reasons": ("Vì sao", "Why"),
    "categories": ("Loại lừa đảo được báo", "Kinds of scam reported"),
    "reports_count": ("Số báo cáo", "Reports"),
    "first_last": (
        "Báo cáo đầu tiên {first}, gần nhất {last}",
        "First report {first}, latest {last}",
    ),
    "advice": ("Lời khuyên", "Advice"),
    "what_to_do": ("Nên làm gì", "What to do"),
    "what_to_do_1": (
        "Không nghe máy, không gọi lại, không làm theo yêu cầu của người gọi.",
        "Do not answer, do not call back, do not do what the caller asks.",
    ),
    "what_to_do_2": (
        "Nếu đã chuyển tiền hoặc cung cấp thông tin, hãy gọi ngay cho ngân hàng để khóa tài "
        "khoản và trình báo cơ quan Công an nơi gần nhất.",
        "If you have transferred money or given information, call your bank at once to freeze "
        "the account, and report it to the nearest police station.",
    ),
    "what_to_do_3": (
        "Báo cáo số lừa đảo cho nhà mạng qua tổng đài 5656 (tin nhắn rác, cuộc gọi rác).",
        "Report the scam number to your network through the 5656 spam hotline.",
    ),
    "report_title": ("Báo cáo số này", "Report this number"),
    "report_intro": (
        "Số này vừa gọi lừa đảo bạn? Hãy cho mọi người biết.",
        "Did this number just try to scam you? Let others know.",
    ),
    "category_label": ("Loại lừa đảo", "Kind of scam"),
    "choose_category": ("Chọn một loại", "Choose one"),
    "when_reported": ("Thời gian", "When"),
    "description_label": ("Chuyện gì đã xảy ra (không bắt buộc)", "What happened (optional)"),
    "description_hint": (
        "Không ghi thông tin cá nhân của bạn.",
        "Do not write your own personal details.",
    ),
    "send_report": ("Gửi báo cáo", "Send the report"),
    "sending": (
        "Đang gửi… (trình duyệt đang giải một phép tính nhỏ)",
        "Sending… (your browser is solving a small puzzle)",
    ),
    "needs_script": (
        "Để chống gửi báo cáo giả hàng loạt, trình duyệt cần giải một phép tính nhỏ trước khi "
        "gửi. Hãy bật JavaScript để gửi báo cáo; tra cứu vẫn dùng được khi không có JavaScript.",
        "To stop fake reports sent in bulk, your browser solves a small puzzle before sending. "
        "Turn JavaScript on to send a report; looking numbers up works without it.",
    ),
    "report_sent_title": ("Đã nhận báo cáo của bạn", "Your report was received"),
    "report_sent": (
        "Cảm ơn bạn. Báo cáo đã được tính vào số báo cáo của số này. Báo cáo từ trang web "
        "chỉ có thể khiến số bị đánh dấu “đáng ngờ”: số chỉ bị coi là lừa đảo khi có báo cáo "
        "từ người dùng đã xác minh số điện thoại, từ nhà mạng hoặc cơ quan chức năng, hoặc sau "
        "khi người kiểm duyệt xem xét. Chủ số có thể khiếu nại nếu bị báo sai.",
        "Thank you. Your report now counts in this number's reports. A report from this page "
        "can only make a number “suspicious”: it is judged a scam only on reports from people "
        "whose phones are verified, on an operator's or the authorities' list, or after "
        "moderators review it. The number's owner can appeal a wrong report.",
    ),
    "report_refused_title": ("Chưa gửi được báo cáo", "The report was not sent"),
    "report_limit": (
        "Mạng của bạn đã gửi đủ số báo cáo cho phép hôm nay. Hãy thử lại vào ngày mai.",
        "Your network has sent as many reports as it may today. Try again tomorrow.",
    ),
    "report_stale": (
        "Biểu mẫu đã hết hạn hoặc đã được dùng. Hãy gửi lại từ trang của số.",
        "The form expired or was already used. Send it again from the number's page.",
    ),
    "report_off": (
        "Tạm thời không nhận báo cáo từ trang web.",
        "Reports from this page are switched off for now.",
    ),
    "back_to_number": ("Quay lại trang của số {number}", "Back to the page of {number}"),
    "share": ("Đường dẫn để chia sẻ", "Link to share"),
    "trends_title": ("Xu hướng lừa đảo", "Scam trends"),
    "trends_intro": (
        "Cho những người cảnh báo người khác: các thủ đoạn đang được báo nhiều, theo tuần, "
        "trong 12 tuần gần nhất.",
        "For those who warn others: the tricks being reported, week by week, over the last "
        "12 weeks.",
    ),
    "rising": ("Đang tăng tuần này", "Rising this week"),
    "rising_item": (
        "{label}: {this_week} báo cáo tuần này, thường khoảng {usual} một tuần",
        "{label}: {this_week} reports this week, usually about {usual} a week",
    ),
    "rising_none": (
        "Tuần này không có loại nào tăng đột biến.",
        "Nothing is rising sharply this week.",
    ),
    "by_category": ("Báo cáo theo loại, theo tuần", "Reports by kind, per week"),
    "chart_label": (
        "{label}: {total} báo cáo trong 12 tuần, {last} tuần này",
        "{label}: {total} reports over 12 weeks, {last} this week",
    ),
    "week_of": ("Tuần từ {day}", "Week of {day}"),
    "listed_by_network": (
        "Số mới bị đưa vào danh sách lừa đảo, theo nhà mạng",
        "Numbers newly listed as scams, by network",
    ),
    "listed_none": (
        "Chưa có số nào mới bị đưa vào danh sách trong 12 tuần qua.",
        "No number was newly listed in the last 12 weeks.",
    ),
    "network": ("Nhà mạng", "Network"),
    "total": ("Tổng", "Total"),
    "other_network": ("Khác (cố định, nước ngoài…)", "Other (landlines, foreign…)"),
    "official": ("Số điện thoại chính thức", "Official numbers to call"),
    "official_none": (
        "Chưa có số chính thức nào được xác minh.",
        "No official number is verified yet.",
    ),
    "footer": (
        "callguard giúp người dân kiểm tra và báo cáo số điện thoại lừa đảo.",
        "callguard helps people check and report scam phone numbers.",
    ),
    "not_found_title": ("Không tìm thấy trang", "Page not found"),
    "not_found": ("Trang này không có.", "There is no such page."),
    "unavailable_title": ("Dịch vụ tạm thời gián đoạn", "The service is briefly unavailable"),
    "unavailable": (
        "Không trả lời được lúc này. Hãy thử lại sau {seconds} giây.",
        "It cannot answer just now. Try again in {seconds} seconds.",
    ),
    "bad_request_title": ("Yêu cầu không hợp lệ", "Invalid request"),
    "bad_request": (
        "Trang không hiểu yêu cầu này. Hãy quay lại và thử lại.",
        "The page could not understand this request. Go back and try again.",
    ),
    "degraded": (
        "Hệ thống đang trả lời từ dữ liệu dự phòng; kết quả có thể chưa đầy đủ.",
        "The service is answering from its backup data; the answer may be incomplete.",
    ),
    **{f"category_{c.id}": (c.label_vi, c.label_en) for c in CATEGORIES},
    **ADMIN_TEXTS,
}


def page_language(request: web.Request) -> str:
    """The visitor's language: the switch's choice (this request's query, else the cookie it
    set), else the browser's Accept-Language, else Vietnamese."""
    for chosen in (request.query.get(LANGUAGE_QUERY), request.cookies.get(LANGUAGE_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    return pick_language(request.headers.get("Accept-Language"))


def translator(language: str) -> Translate:
    """The function templates call as t("key"): the key's words in the language."""
    position = 1 if language == "en" else 0

    def translate(key: str) -> str:
        return TEXTS[key][position]

    return translate


def other_language(language: str) -> str:
    return "en" if language == DEFAULT_LANGUAGE else DEFAULT_LANGUAGE
