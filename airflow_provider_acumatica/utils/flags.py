"""Yes or no from what users and databases write for it: a boolean, or its usual spellings in text."""

from __future__ import annotations

from typing import Any

TRUE_TEXTS = frozenset({"true", "t", "yes", "y", "on", "1"})
FALSE_TEXTS = frozenset({"false", "f", "no", "n", "off", "0", "", "none"})


def flag(value: Any) -> bool | None:
    """True or False from a boolean or a spelling of one (case and spaces ignored); None when it is neither."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in TRUE_TEXTS else False if text in FALSE_TEXTS else None
