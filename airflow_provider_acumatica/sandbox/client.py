"""SandboxControl: a small HTTP client of the sandbox's /_sandbox/ control API, for tests and demos."""

from __future__ import annotations

from datetime import datetime

import requests


class SandboxControlError(RuntimeError):
    """The control API refused a request; the message carries its explanation."""


class SandboxControl:
    """Methods mirror the control API routes; every call is one HTTP request."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()

    def counters(self) -> dict[str, int]:
        return self._call("GET", "/_sandbox/counters")

    def reset_counters(self) -> dict[str, int]:
        return self._call("POST", "/_sandbox/counters/reset")

    def now(self) -> datetime:
        """The sandbox clock (aware UTC)."""
        return _parse(self._call("GET", "/_sandbox/clock")["now"])

    def advance_clock(self, seconds: float) -> datetime:
        return _parse(self._call("POST", "/_sandbox/clock", {"advance_seconds": seconds})["now"])

    def set_clock(self, moment: datetime | str) -> datetime:
        text = moment if isinstance(moment, str) else moment.isoformat()
        return _parse(self._call("POST", "/_sandbox/clock", {"set": text})["now"])

    def insert(
        self,
        tenant: str,
        entity: str,
        records: list[dict] | None = None,
        random: int | None = None,
        timestamp: str | None = None,
    ) -> list[str]:
        return self._records(tenant, entity, "insert", records=records, random=random, timestamp=timestamp)

    def update(
        self,
        tenant: str,
        entity: str,
        records: list[dict] | None = None,
        random: int | None = None,
        timestamp: str | None = None,
    ) -> list[str]:
        return self._records(tenant, entity, "update", records=records, random=random, timestamp=timestamp)

    def delete(self, tenant: str, entity: str, ids: list[str] | None = None, random: int | None = None) -> list[str]:
        return self._records(tenant, entity, "delete", ids=ids, random=random)

    def truth(self, tenant: str, entity: str) -> dict:
        """{"records": [plain records in key order], "deleted": [{"id", "deleted_at"}]}."""
        return self._call("GET", f"/_sandbox/tenants/{tenant}/entities/{entity}/truth")

    def inject_fault(self, kind: str, **options) -> int:
        """Arm a fault (see the control API); returns its id."""
        return self._call("POST", "/_sandbox/faults", {"kind": kind, **options})["id"]

    def wait_held(self, count: int = 1, timeout: float = 30) -> int:
        """Wait until at least `count` requests are held in a slow fault (at most `timeout` s); how many are."""
        return self._call("POST", "/_sandbox/faults/held", {"count": count, "timeout_seconds": timeout})["held"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def close(self) -> None:
        self._http.close()

    def _records(self, tenant: str, entity: str, op: str, **payload) -> list[str]:
        body = {name: value for name, value in payload.items() if value is not None}
        return self._call("POST", f"/_sandbox/tenants/{tenant}/entities/{entity}/{op}", body)["ids"]

    def _call(self, method: str, path: str, payload: dict | None = None):
        response = self._http.request(method, self.url + path, json=payload, timeout=self.timeout)
        if response.status_code >= 400:
            try:
                detail = response.json().get("exceptionMessage", response.text)
            except ValueError:
                detail = response.text
            raise SandboxControlError(f"{method} {path} -> HTTP {response.status_code}: {detail}")
        return response.json()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
