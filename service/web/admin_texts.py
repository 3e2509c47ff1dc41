"""The moderators' pages' words in Vietnamese and English (texts.py merges them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

ADMIN_TEXTS: Final[Mapping[str, tuple[str, str]]] = {
    # key: (Vietnamese, English)
    "admin_site": ("Kiểm duyệt", "Moderation"),
    "admin_nav_reviews": ("Hàng chờ xem xét", "Review queue"),
    "admin_nav_appeals": ("Khiếu nại", "Appeals"),
    "admin_nav_allowlist": ("Số chính thức", "Verified numbers"),
    "admin_nav_audit": ("Nhật ký", "Audit log"),
    "admin_sign_out": ("Đăng xuất", "Sign out"),
    "admin_signed_in_as": ("Đăng nhập bằng khóa “{name}”", "Signed in with the key “{name}”"),
    # Signing in
    "admin_sign_in_title": ("Đăng nhập trang kiểm duyệt", "Sign in to moderation"),
    "admin_sign_in_intro": (
        "Dành cho người kiểm duyệt của callguard. Đăng nhập bằng khóa API quản trị (admin). "
        "Phiên đăng nhập kéo dài 8 giờ.",
        "For callguard's moderators. Sign in with an admin API key. A session lasts 8 hours.",
    ),
    "admin_key_label": ("Khóa API quản trị", "Admin API key"),
    "admin_key_hint": (
        "Khóa bắt đầu bằng cg_; lệnh callguard keys create --role admin tạo khóa mới.",
        "The key begins with cg_; callguard keys create --role admin makes one.",
    ),
    "admin_sign_in": ("Đăng nhập", "Sign in"),
    "admin_key_wrong": (
        "Khóa không đúng hoặc đã bị thu hồi. Hãy kiểm tra và nhập lại.",
        "The key is wrong or revoked. Check it and type it again.",
    ),
    "admin_forbidden_title": ("Không được phép", "Not allowed"),
    "admin_not_admin": (
        "Khóa này không dùng được cho trang kiểm duyệt: cần khóa quản trị (admin).",
        "This key cannot open the moderators' pages: an admin key is needed.",
    ),
    "admin_form_refused": (
        "Biểu mẫu không hợp lệ hoặc không được gửi từ trang kiểm duyệt. Hãy mở lại trang và "
        "thử lại.",
        "The form is not valid or was not sent from the moderators' pages. Open the page again "
        "and retry.",
    ),
    "admin_too_many": (
        "Mạng của bạn đã thử đăng nhập quá nhiều lần. Hãy thử lại sau {seconds} giây.",
        "Your network has tried to sign in too many times. Try again in {seconds} seconds.",
    ),
    "admin_back_to_sign_in": ("Quay lại trang đăng nhập", "Back to signing in"),
    # What was just done
    "admin_done_brigade": (
        "Đã quyết định: báo cáo hàng loạt có chủ đích. Bằng chứng báo cáo của số đã bị xóa.",
        "Decided: a brigade. The number's report evidence has ended.",
    ),
    "admin_done_genuine": (
        "Đã quyết định: báo cáo thật. Số được giữ nguyên.",
        "Decided: genuine. The number stays as it is.",
    ),
    "admin_done_delisted": (
        "Đã chấp nhận khiếu nại: số đã được gỡ khỏi danh sách.",
        "Appeal accepted: the number is delisted.",
    ),
    "admin_done_rejected": (
        "Đã từ chối khiếu nại: số vẫn trong danh sách.",
        "Appeal rejected: the number stays listed.",
    ),
    "admin_done_added": ("Đã xác minh số.", "The number is verified."),
    "admin_done_removed": ("Đã gỡ xác minh số.", "The number is no longer verified."),
    "admin_done_not_listed": (
        "Số này không còn trong danh sách số chính thức.",
        "That number is not on the allowlist any more.",
    ),
    "admin_done_already": (
        "Mục này đã được quyết định trước đó, có thể bởi người kiểm duyệt khác.",
        "That one was already decided, perhaps by another moderator.",
    ),
    # Form fields at fault
    "admin_invalid_note": (
        "Hãy ghi lý do cho quyết định, tối đa {max} ký tự.",
        "Write why you decide so, in at most {max} characters.",
    ),
    "admin_invalid_decision": (
        "Hãy chọn quyết định bằng một trong hai nút.",
        "Choose a decision with one of the two buttons.",
    ),
    "admin_invalid_number": (
        "Đây không phải là số điện thoại hợp lệ. Ví dụ: 1900 1234 hoặc 0912 345 678.",
        "This is not a valid phone number. For example 1900 1234 or 0912 345 678.",
    ),
    "admin_invalid_owner": (
        "Hãy nhập tên chủ số, tối đa {max} ký tự.",
        "Type the owner's name, in at most {max} characters.",
    ),
    "admin_invalid_text": (
        "Tối đa {max} ký tự, không chứa ký tự điều khiển.",
        "At most {max} characters, with no control characters.",
    ),
    # The review queue
    "admin_reviews_title": ("Hàng chờ xem xét", "Review queue"),
    "admin_reviews_intro": (
        "Các số có báo cáo gần đây trông giống báo cáo hàng loạt có chủ đích. Quyết định "
        "“báo cáo hàng loạt” xóa ngay bằng chứng báo cáo của số (danh sách của nhà mạng, cơ "
        "quan chức năng vẫn giữ) và trừ uy tín của những người đã báo cáo; “báo cáo thật” giữ "
        "nguyên số.",
        "Numbers whose recent reports looked like a brigade. “Brigade” ends the number's report "
        "evidence at once (operators' and authorities' listings stay) and counts against the "
        "reporters; “genuine” leaves the number as it is.",
    ),
    "admin_reviews_none": (
        "Không có số nào đang chờ xem xét.",
        "No number is waiting for review.",
    ),
    "admin_reviews_caption": ("Các số đang chờ xem xét", "Numbers waiting for review"),
    "admin_number": ("Số", "Number"),
    "admin_sign": ("Dấu hiệu", "Sign"),
    "admin_opened": ("Mở lúc", "Opened"),
    "admin_figures": ("Số liệu", "Figures"),
    "admin_decision": ("Quyết định", "Decision"),
    "admin_why_label": ("Lý do quyết định về số {number}", "Why, for {number}"),
    "admin_sign_newcomers": (
        "Nhiều người báo cáo lần đầu trong vài phút",
        "Many first-time reporters within minutes",
    ),
    "admin_sign_key_share": (
        "Một khóa API báo cáo nhiều bất thường",
        "One API key far above its usual share",
    ),
    "admin_sign_network_share": (
        "Một mạng báo cáo nhiều bất thường",
        "One network far above its usual share",
    ),
    "admin_decide_brigade": ("Là báo cáo hàng loạt", "It is a brigade"),
    "admin_decide_genuine": ("Là báo cáo thật", "The reports are genuine"),
    "admin_more": ("Xem tiếp", "More"),
    # Appeals
    "admin_appeals_title": ("Khiếu nại đang chờ", "Open appeals"),
    "admin_appeals_intro": (
        "Chủ số yêu cầu gỡ số khỏi danh sách lừa đảo. “Gỡ khỏi danh sách” gỡ số ngay lập "
        "tức; “từ chối” giữ số trong danh sách.",
        "A number's owner asks for it to be delisted. “Delist” delists it at once; “reject” "
        "leaves it listed.",
    ),
    "admin_appeals_none": ("Không có khiếu nại nào đang chờ.", "No appeal is waiting."),
    "admin_appeals_caption": ("Các khiếu nại đang chờ", "Appeals waiting for a decision"),
    "admin_contact": ("Liên hệ", "Contact"),
    "admin_appeal_message": ("Nội dung", "Message"),
    "admin_filed": ("Gửi lúc", "Filed"),
    "admin_resolve_delist": ("Gỡ khỏi danh sách", "Delist"),
    "admin_resolve_reject": ("Từ chối", "Reject"),
    # The allowlist
    "admin_allowlist_title": ("Số chính thức đã xác minh", "Verified numbers"),
    "admin_allowlist_intro": (
        "Số của cơ quan, doanh nghiệp đã được xác minh: luôn hiện là “số chính thức”, dù có "
        "bao nhiêu báo cáo.",
        "Numbers of authorities and businesses that have been verified: they always show as "
        "“verified”, whatever the reports.",
    ),
    "admin_allowlist_none": ("Chưa có số nào được xác minh.", "No number is verified yet."),
    "admin_allowlist_caption": ("Các số đã xác minh", "The verified numbers"),
    "admin_owner": ("Chủ số", "Owner"),
    "admin_note": ("Ghi chú", "Note"),
    "admin_added": ("Xác minh lúc", "Verified"),
    "admin_spoofing": ("Báo cáo nghi giả mạo số", "Reports flagged as spoofing"),
    "admin_remove_title": ("Gỡ xác minh", "Un-verify"),
    "admin_reason_label": (
        "Lý do gỡ xác minh số {number} (không bắt buộc)",
        "Why un-verify {number} (optional)",
    ),
    "admin_remove": ("Gỡ xác minh", "Un-verify"),
    "admin_add_title": ("Xác minh một số", "Verify a number"),
    "admin_number_label": ("Số điện thoại", "Phone number"),
    "admin_owner_label": ("Chủ số (cơ quan, doanh nghiệp)", "Owner (authority, business)"),
    "admin_note_label": ("Ghi chú (không bắt buộc)", "Note (optional)"),
    "admin_add": ("Xác minh số", "Verify the number"),
    # The audit log
    "admin_audit_title": ("Nhật ký kiểm duyệt", "Audit log"),
    "admin_audit_intro": (
        "Mọi thao tác kiểm duyệt, mới nhất trước: ai làm, lúc nào, vì sao.",
        "Every moderation action, newest first: who did it, when, and why.",
    ),
    "admin_audit_none": ("Chưa có thao tác nào.", "No action yet."),
    "admin_audit_caption": ("Các thao tác kiểm duyệt", "Moderation actions"),
    "admin_when": ("Lúc", "When"),
    "admin_actor": ("Người làm", "By"),
    "admin_action": ("Thao tác", "Action"),
    "admin_reason": ("Lý do", "Reason"),
    "admin_detail": ("Chi tiết", "Detail"),
    "admin_older": ("Cũ hơn", "Older"),
    # The figures that queued a review (store/reports.py), each with its value.
    "admin_figure_minutes": ("Trong {value:g} phút", "Within {value:g} minutes"),
    "admin_figure_reports": ("{value} báo cáo", "{value} reports"),
    "admin_figure_newcomers": ("{value} người báo cáo lần đầu", "{value} first-time reporters"),
    "admin_figure_top_key_id": ("Khóa gửi nhiều nhất: #{value}", "Busiest key: #{value}"),
    "admin_figure_top_key_reports": (
        "{value} báo cáo qua khóa đó",
        "{value} reports through that key",
    ),
    "admin_figure_top_key_usual_share": (
        "Thường chiếm {value:.0%} báo cáo",
        "Usually {value:.0%} of reports",
    ),
    "admin_figure_top_network_reports": (
        "{value} báo cáo từ mạng gửi nhiều nhất",
        "{value} reports from the busiest network",
    ),
    "admin_figure_top_network_usual_share": (
        "Mạng đó thường chiếm {value:.0%}",
        "That network usually sends {value:.0%}",
    ),
}
