"""The embedded PostgreSQL (the pgserver package) used when no DATABASE_URL is given."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import get_server


@contextmanager
def database_url(database_url: str | None, data_dir: Path) -> Iterator[str]:
    """Yield database_url, or start the embedded Postgres in data_dir and yield its URL.

    pgserver shares one server among the processes using a data dir and stops it when
    the last of them lets go, so `callguard keys` can run beside `callguard serve`.
    """
    if database_url:
        yield database_url
        return
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
