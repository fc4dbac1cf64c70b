"""How the explanations render (``explain`` and ``canonical_why``): a time as UTC text, and a
record's fields as JSON-ready values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np


def _utc(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value
