"""The service's configuration: one frozen dataclass built from the environment and flags.

Nothing else in the package reads os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a callguard process needs to know to run."""

    database_url: str | None = None
    """A PostgreSQL URL; None starts the embedded Postgres in data_dir."""
    data_dir: Path = Path(".callguard")
    host: str = "127.0.0.1"
    port: int = 8080
    pool_min_size: int = 2
    pool_max_size: int = 10
    max_body_bytes: int = 1 << 20
    """The largest JSON body accepted; a batch of 1000 numbers is about 20 KB."""
    batch_limit: int = 1000
    filter_backend: str = "rbloom"
    filter_error_rate: float = 0.001
    filter_min_capacity: int = 1_000_000
    """The filter is sized for max(this, 2 x listed numbers) so reports can grow it."""
    key_cache_size: int = 10_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read settings from the environment, then apply flag overrides that are not None."""
        env = os.environ if env is None else env
        config = cls(database_url=env.get("DATABASE_URL") or None)
        if "CALLGUARD_DATA_DIR" in env:
            config = replace(config, data_dir=Path(env["CALLGUARD_DATA_DIR"]))
        if "CALLGUARD_FILTER_BACKEND" in env:
            config = replace(config, filter_backend=env["CALLGUARD_FILTER_BACKEND"])
        given = {name: value for name, value in overrides.items() if value is not None}
        return replace(config, **given)
