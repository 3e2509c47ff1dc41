"""Every SQL statement callguard runs, on asyncpg, one module per resource; functions return
plain dataclasses. Callers name the resource: `store.appeals.create(pool, ...)`."""

from . import (
    allowlist,
    appeals,
    audit,
    changes,
    database,
    imports,
    keys,
    lists,
    reports,
    reviews,
    sessions,
    settings,
    snapshots,
    stats,
    trusted,
)

__all__ = [
    "allowlist",
    "appeals",
    "audit",
    "changes",
    "database",
    "imports",
    "keys",
    "lists",
    "reports",
    "reviews",
    "sessions",
    "settings",
    "snapshots",
    "stats",
    "trusted",
]
