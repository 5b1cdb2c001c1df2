"""Thread-safe counters the control API reports (logins, sessions, concurrency, 429s, refreshes...)."""

from __future__ import annotations

import threading

_NAMES = (
    "logins",
    "logouts",
    "open_sessions",
    "peak_open_sessions",
    "concurrent_requests",
    "peak_concurrency",
    "throttled_429",
    "token_refreshes",
    "invalid_grant",
    "requests",
    "login_limit_refusals",
    "revocations",
    "records_rendered",
)


class Counters:
    """Named integers; `peak_*` follow their gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(_NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount
            self._track_peaks()

    def set(self, name: str, value: int) -> None:
        with self._lock:
            self._values[name] = value
            self._track_peaks()

    def get(self, name: str) -> int:
        return self._values[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        """Zero the counts; gauges (open sessions, requests in flight) keep their current level as new peaks."""
        with self._lock:
            gauges = {name: self._values[name] for name in ("open_sessions", "concurrent_requests")}
            self._values = dict.fromkeys(_NAMES, 0)
            self._values.update(gauges)
            self._track_peaks()

    def _track_peaks(self) -> None:
        values = self._values
        values["peak_open_sessions"] = max(values["peak_open_sessions"], values["open_sessions"])
        values["peak_concurrency"] = max(values["peak_concurrency"], values["concurrent_requests"])
