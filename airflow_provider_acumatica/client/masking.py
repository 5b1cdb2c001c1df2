"""Keeps secrets out of logs and error texts: known secret values and secret-bearing fields are redacted.

Every value the client learns to be secret (password, client secret, refresh and access tokens, session
cookies) is registered here; the client formats each log line itself and passes it through `redact`, so
standalone use is safe without Airflow. Listeners (the hook registers Airflow's `mask_secret`) are told
of each new secret so that Airflow's own masker covers anything else that might print it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
_SECRET_FIELDS = re.compile(
    r'(?P<key>(?<![A-Za-z0-9_])"?(?:password|client_secret|access_token|refresh_token|id_token|code_verifier)"?\s*[:=]\s*"?)'
    r'(?P<value>[^"&\s,}]+)',
    re.IGNORECASE,
)


class SecretMasker:
    """A thread-safe set of secret strings and the redaction of text against them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(secret)` for every secret known now and added later."""
        with self._lock:
            self._listeners.append(listener)
            known = list(self._secrets)
        for secret in known:
            listener(secret)

    def add(self, *secrets: str | None) -> None:
        """Register secret values (None and empty are ignored)."""
        new = [secret for secret in secrets if secret and secret not in self._secrets]
        if not new:
            return
        with self._lock:
            self._secrets.update(new)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(secret) for secret in ordered))
            listeners = list(self._listeners)
        for secret in new:
            for listener in listeners:
                listener(secret)

    def redact(self, text: str) -> str:
        """`text` with every known secret and every `password=...`-like field value replaced by ***."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _SECRET_FIELDS.sub(lambda match: match.group("key") + MASK, text)

    def headers(self, headers: Mapping[str, str]) -> str:
        """Headers as text, with credential headers hidden entirely."""
        shown: Iterable[str] = (
            f"{name}: {MASK if name.lower() in SECRET_HEADERS else value}" for name, value in headers.items()
        )
        return self.redact("; ".join(shown))
