"""Licence sessions ("API user" seats): cookie sessions of /entity/auth/login and the sessions OAuth access tokens
open on first use, both counted against one limit and expiring on the sandbox clock."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from airflow_provider_acumatica.sandbox.counters import Counters
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.settings import SANDBOX_PASSWORD, SANDBOX_USER, SandboxSettings

SESSION_COOKIE = ".ASPXAUTH"
LOGIN_LIMIT = "API Login Limit"


@dataclass
class _Session:
    """An open seat: its tenant, last use, and a fixed end (a token's expiry) or None for idle expiry."""

    tenant: str
    last_use: datetime
    ends_at: datetime | None = None


@dataclass(frozen=True)
class BearerSeat:
    """The session an access token uses: `key` names it (a grant's chain, or the token itself); `ends_at` is when
    it closes on its own (None: after the idle timeout); `per_request` opens one for each request."""

    tenant: str
    key: str
    ends_at: datetime | None = None
    per_request: bool = False


class SessionManager:
    """Open sessions by key; a session not signed out holds its seat until it expires."""

    def __init__(self, settings: SandboxSettings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._idle = timedelta(seconds=settings.session_idle_seconds)
        self._request = threading.local()

    def login(self, body, now: datetime) -> tuple[str, str]:
        """Validate a login body; returns (cookie value, tenant). ApiError 400/401/429 on refusal."""
        if not isinstance(body, dict):
            raise ApiError(400, "The login body must be a JSON object {name, password, tenant}")
        if "tenant" in body and "company" in body:
            raise ApiError(400, "Specify either 'tenant' or 'company' (its old alias), not both.")
        tenant_name = body.get("tenant", body.get("company"))
        if tenant_name is None and len(self.settings.tenants) == 1:
            tenant_name = self.settings.tenants[0]
        tenant = self.settings.tenant_named(str(tenant_name or ""))
        if body.get("name") != SANDBOX_USER or body.get("password") != SANDBOX_PASSWORD or tenant is None:
            raise ApiError(401, "Invalid credentials. Please try again.", message="An error has occurred.")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._open(token, _Session(tenant, now), now)
        return token, tenant

    def use_bearer(self, seat: BearerSeat, now: datetime) -> str:
        """The tenant of a bearer request, opening the token's session on first use (429 "API Login Limit" when
        every seat is taken); a per-request session closes at `end_request`."""
        with self._lock:
            self._expire(now)
            key = f"request:{secrets.token_urlsafe(12)}" if seat.per_request else seat.key
            session = self._sessions.get(key)
            if session is None:
                self._open(key, _Session(seat.tenant, now, seat.ends_at), now)
                if seat.per_request:
                    self._request.keys = [*getattr(self._request, "keys", []), key]
            else:
                session.last_use = now
        return seat.tenant

    def end_request(self) -> None:
        """Close the per-request sessions the current request opened (each counted as a sign-out)."""
        keys = getattr(self._request, "keys", None)
        if keys:
            self._request.keys = []
            with self._lock:
                for key in keys:
                    if self._sessions.pop(key, None) is not None:
                        self.counters.add("logouts")
                self.counters.set("open_sessions", len(self._sessions))

    def logout(self, key: str | None, now: datetime) -> None:
        """End a session (no error when it is unknown, as Acumatica answers 204 anyway)."""
        with self._lock:
            self._expire(now)
            if key and self._sessions.pop(key, None) is not None:
                self.counters.add("logouts")
            self.counters.set("open_sessions", len(self._sessions))

    def tenant_of(self, token: str | None, now: datetime) -> str | None:
        """The session's tenant, refreshing its idle timer; None when absent or expired."""
        if not token:
            return None
        with self._lock:
            self._expire(now)
            session = self._sessions.get(token)
            if session is None:
                return None
            session.last_use = now
            return session.tenant

    def open_count(self, now: datetime) -> int:
        with self._lock:
            self._expire(now)
            return len(self._sessions)

    def _open(self, key: str, session: _Session, now: datetime) -> None:
        """Take a seat for `key` (the caller holds the lock), or refuse with 429 "API Login Limit"."""
        self._expire(now)
        if len(self._sessions) >= self.settings.max_sessions:
            self.counters.add("login_limit_refusals")
            raise ApiError(
                429,
                f"{LOGIN_LIMIT}: the number of open API sessions has reached the licence limit "
                f"of {self.settings.max_sessions}; sign out a session or wait until one expires.",
            )
        self._sessions[key] = session
        self.counters.add("logins")
        self.counters.set("open_sessions", len(self._sessions))

    def _expire(self, now: datetime) -> None:
        expired = [
            key
            for key, session in self._sessions.items()
            if (now >= session.ends_at if session.ends_at else now - session.last_use >= self._idle)
        ]
        for key in expired:
            del self._sessions[key]
        if expired:
            self.counters.set("open_sessions", len(self._sessions))
