"""Cookie sessions of /entity/auth/login: a licence limit on open sessions and idle expiry on the clock."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

from airflow_provider_acumatica.sandbox.counters import Counters
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.settings import SANDBOX_PASSWORD, SANDBOX_USER, SandboxSettings

SESSION_COOKIE = ".ASPXAUTH"


class SessionManager:
    """Open sessions by cookie value -> [tenant, last use]; a session not signed out holds its slot until idle."""

    def __init__(self, settings: SandboxSettings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters
        self._sessions: dict[str, list] = {}
        self._lock = threading.Lock()
        self._idle = timedelta(seconds=settings.session_idle_seconds)

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
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= self.settings.max_sessions:
                self.counters.add("login_limit_refusals")
                raise ApiError(429, "API Login Limit: the number of open API sessions has reached the licence limit.")
            token = secrets.token_urlsafe(24)
            self._sessions[token] = [tenant, now]
            self.counters.add("logins")
            self.counters.set("open_sessions", len(self._sessions))
        return token, tenant

    def logout(self, token: str | None, now: datetime) -> None:
        """End a session (no error when it is unknown, as Acumatica answers 204 anyway)."""
        with self._lock:
            self._expire(now)
            if token and self._sessions.pop(token, None) is not None:
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
            session[1] = now
            return session[0]

    def open_count(self, now: datetime) -> int:
        with self._lock:
            self._expire(now)
            return len(self._sessions)

    def _expire(self, now: datetime) -> None:
        expired = [token for token, (_, last) in self._sessions.items() if now - last >= self._idle]
        for token in expired:
            del self._sessions[token]
        if expired:
            self.counters.set("open_sessions", len(self._sessions))
