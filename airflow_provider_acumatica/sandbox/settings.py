"""SandboxSettings: every knob of the Acumatica sandbox, plus its fixed credentials and OAuth client ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

SANDBOX_USER = "admin"
SANDBOX_PASSWORD = "Sandbox#123"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SANDBOX_GI = "TimeActivities"
ENDPOINT_NAME = "Default"
ENDPOINT_VERSIONS = ("22.200.001", "23.200.001", "24.200.001", "25.200.001")

_CLIENT_NAMESPACE = uuid.UUID("6f1d3c1e-7a2b-4d5e-9c8f-0a1b2c3d4e5f")


def sandbox_client_id(tenant: str) -> str:
    """The OAuth client registered for `tenant`: a fixed GUID per tenant, `{GUID}@{Tenant}` like Acumatica's."""
    guid = str(uuid.uuid5(_CLIENT_NAMESPACE, tenant.lower())).upper()
    return f"{guid}@{tenant}"


@dataclass(frozen=True)
class SandboxSettings:
    """What the sandbox serves and how hostile it is; `None` limits mean unlimited."""

    tenants: tuple[str, ...] = ("Company", "Subsidiary")
    rows: int = 2000
    seed: int = 7
    profile_timezone: str = "America/New_York"
    naive_datetimes: bool = False
    latency_ms: int = 0
    ms_per_record: float = 0.0
    """Server work per record of a list answer ($select or not), spent holding the request's concurrency slot."""
    token_ttl: int = 3600
    max_sessions: int = 10
    requests_per_minute: int | None = None
    max_concurrent: int | None = None
    redirect_uris: tuple[str, ...] = ("http://localhost:8080/oauth/callback",)
    session_idle_seconds: int = 600
    max_page_size: int | None = None
    """At most this many records per answer, whatever $top asks (as an instance configured to cap pages)."""
    refresh_token_ttl: int = 30 * 24 * 3600
    authorization_code_ttl: int = 300
    data_anchor: datetime | None = None

    def __post_init__(self) -> None:
        if not self.tenants:
            raise ValueError("SandboxSettings.tenants: give at least one tenant name, e.g. ('Company',)")
        if len({tenant.lower() for tenant in self.tenants}) != len(self.tenants):
            raise ValueError(f"SandboxSettings.tenants: names must be unique (case-insensitive): {self.tenants}")
        if self.rows < 0:
            raise ValueError(f"SandboxSettings.rows must be >= 0, got {self.rows}")
        try:
            ZoneInfo(self.profile_timezone)
        except Exception as error:  # noqa: BLE001 - zoneinfo raises several kinds
            raise ValueError(
                f"SandboxSettings.profile_timezone: {self.profile_timezone!r} is not an IANA zone name "
                "(e.g. 'America/New_York')"
            ) from error
        if self.ms_per_record < 0:
            raise ValueError(f"SandboxSettings.ms_per_record must be >= 0, got {self.ms_per_record}")
        for name in ("token_ttl", "max_sessions", "session_idle_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxSettings.{name} must be > 0, got {getattr(self, name)}")

    @property
    def zone(self) -> ZoneInfo:
        """The profile time zone the API user sees date-times in."""
        return ZoneInfo(self.profile_timezone)

    def tenant_named(self, name: str) -> str | None:
        """The configured spelling of tenant `name` (Acumatica matches tenant names case-insensitively)."""
        for tenant in self.tenants:
            if tenant.lower() == name.lower():
                return tenant
        return None
