"""The moderators' pages' words in Vietnamese and English (texts.py merges them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

ADMIN_TEXTS: Final[Mapping[str, tuple[str, str]]] = {}
