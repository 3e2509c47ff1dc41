"""Every route of the service, declared once: app.py adds them to the router, and the
OpenAPI document (openapi.py) is built from the router."""

from __future__ import annotations

from aiohttp import web

from .api import (
    allowlist,
    appeals,
    audit,
    categories,
    docs,
    health,
    imports,
    lists,
    lookups,
    numbers,
    reports,
    reviews,
    stats,
)

ROUTES = [
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
    web.get("/metrics", health.metrics),
    web.get("/openapi.json", docs.openapi_json),
    web.get("/docs", docs.docs_page),
    web.get("/v1/categories", categories.list_categories),
    web.get("/v1/numbers/{number}", numbers.get_number),
    web.put("/v1/numbers/{number}", numbers.list_number),
    web.delete("/v1/numbers/{number}", numbers.delist_number),
    web.post("/v1/lookups", lookups.lookup_batch),
    web.get("/v1/lists/{name}.tsv.gz", lists.export_list),
    web.get("/v1/lists/{name}", lists.get_list),
    web.post("/v1/reports", reports.create_report),
    web.post("/v1/feedback", reports.create_feedback),
    web.get("/v1/allowlist", allowlist.list_allowlist),
    web.get("/v1/allowlist/{number}", allowlist.get_allowlist_entry),
    web.put("/v1/allowlist/{number}", allowlist.put_allowlist_entry),
    web.delete("/v1/allowlist/{number}", allowlist.delete_allowlist_entry),
    web.post("/v1/appeals", appeals.create_appeal),
    web.get("/v1/appeals", appeals.list_appeals),
    web.post("/v1/appeals/{appeal_id}/resolve", appeals.resolve_appeal),
    web.get("/v1/stats/trends", stats.get_trends),
    web.get("/v1/reviews", reviews.list_reviews),
    web.post("/v1/reviews/{review_id}/decide", reviews.decide_review),
    web.get("/v1/audit", audit.list_audit),
    web.post("/v1/imports", imports.create_import),
    web.get("/v1/imports", imports.list_imports),
    web.get("/v1/imports/{import_id}", imports.get_import),
    web.get("/v1/imports/{import_id}/errors", imports.get_import_errors),
]
