"""Settings of one Acumatica connection: parsed from plain values and validated once, up front."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_acumatica.client.errors import AcumaticaConfigError

AUTH_TYPES = ("cookie", "oauth2_password", "oauth2_code")
OAUTH_AUTH_TYPES = ("oauth2_password", "oauth2_code")
MAX_PAGE_SIZE = 10_000
MIN_PROBE_PAGE_SIZE, DEFAULT_PROBE_PAGE_SIZE, MAX_PROBE_PAGE_SIZE = 1_000, 50_000, 100_000
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class AcumaticaSettings:
    """Everything the client needs to talk to one tenant of one instance; secrets stay out of repr."""

    conn_id: str
    instance_url: str
    tenant: str
    auth_type: str = "cookie"
    login: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    branch: str | None = None
    client_id: str | None = None
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    refresh_token: str | None = dataclasses.field(default=None, repr=False)
    scope: str = "api offline_access"
    endpoint_name: str = "Default"
    endpoint_version: str = "24.200.001"
    profile_timezone: str = "UTC"
    convert_to_utc: bool = True
    page_size: int = 1000
    probe_page_size: int = DEFAULT_PROBE_PAGE_SIZE
    """The most timestamps one request of the operator's sample asks (a `$select` of the timestamp alone)."""
    timeout: float = 120.0
    verbosity: int = 1
    max_concurrent_requests: int = 3
    requests_per_minute: int | None = None
    verify_ssl: bool = True
    token_store: str | None = None
    max_retries: int = 8
    retry_max_seconds: float = 600.0
    backoff_seconds: float = 1.0
    licence_concurrent_requests: int | None = None
    """The instance licence's concurrent requests, shared through leases by every process (None: this connection's
    max_concurrent_requests per process only)."""
    licence_wait_seconds: float = 600.0
    login_limit_wait_seconds: float = 660.0
    """How long a sign-in refused with "API Login Limit" waits for a seat: sessions a killed process left open end
    only after about 10 idle minutes."""

    @property
    def is_oauth(self) -> bool:
        return self.auth_type in OAUTH_AUTH_TYPES

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.profile_timezone)

    @property
    def token_key(self) -> str:
        """Identity of a refresh-token chain: one per (instance, tenant, OAuth client)."""
        raw = f"{self.instance_url}|{self.tenant}|{self.client_id}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def secrets(self) -> list[str]:
        """The secret values of these settings, for log masking."""
        return [value for value in (self.password, self.client_secret, self.refresh_token) if value]

    @classmethod
    def from_connection(
        cls,
        conn_id: str,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | None,
    ) -> AcumaticaSettings:
        """Build validated settings from an Airflow-like connection's fields; raise AcumaticaConfigError."""
        parser = _ExtraParser(conn_id, extra or {})
        settings = cls(
            conn_id=conn_id,
            instance_url=_instance_url(conn_id, host),
            tenant=parser.text("tenant", required=True),
            auth_type=parser.choice("auth_type", AUTH_TYPES, "cookie"),
            login=login or None,
            password=password or None,
            branch=parser.text("branch"),
            client_id=parser.text("client_id"),
            client_secret=parser.text("client_secret"),
            refresh_token=parser.text("refresh_token"),
            scope=parser.text("scope") or cls.scope,
            endpoint_name=parser.text("endpoint_name") or cls.endpoint_name,
            endpoint_version=parser.text("endpoint_version") or cls.endpoint_version,
            profile_timezone=parser.zone("profile_timezone"),
            convert_to_utc=parser.boolean("convert_to_utc", True),
            page_size=parser.integer("page_size", 1000, 1, MAX_PAGE_SIZE),
            probe_page_size=parser.integer(
                "probe_page_size", DEFAULT_PROBE_PAGE_SIZE, MIN_PROBE_PAGE_SIZE, MAX_PROBE_PAGE_SIZE
            ),
            timeout=parser.number("timeout", 120.0, 0.001),
            verbosity=parser.integer("verbosity", 1, 1, 5),
            max_concurrent_requests=parser.integer("max_concurrent_requests", 3, 1, 1000),
            requests_per_minute=parser.integer("requests_per_minute", None, 1, 1_000_000),
            verify_ssl=parser.boolean("verify_ssl", True),
            token_store=parser.text("token_store"),
            max_retries=parser.integer("max_retries", 8, 0, 100),
            retry_max_seconds=parser.number("retry_max_seconds", 600.0, 0),
            backoff_seconds=parser.number("backoff_seconds", 1.0, 0),
            licence_concurrent_requests=parser.integer("licence_concurrent_requests", None, 1, 1000),
            licence_wait_seconds=parser.number("licence_wait_seconds", 600.0, 0),
            login_limit_wait_seconds=parser.number("login_limit_wait_seconds", 660.0, 0),
        )
        parser.refuse_unknown()
        _check_credentials(settings)
        check_licence_share(settings)
        return settings


def _instance_url(conn_id: str, host: str | None) -> str:
    if not host or not host.strip():
        raise AcumaticaConfigError(
            conn_id, "host", "the instance URL is empty", "Set Host to e.g. https://company.acumatica.com."
        )
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    if not url.startswith(("http://", "https://")):
        raise AcumaticaConfigError(conn_id, "host", f"{url!r} is not an http(s) URL", "Use https://your-instance.")
    return url


def check_licence_share(settings: AcumaticaSettings) -> None:
    """A connection's concurrency must fit in the licence it leases it from."""
    licence = settings.licence_concurrent_requests
    if licence is not None and settings.max_concurrent_requests > licence:
        raise AcumaticaConfigError(
            settings.conn_id,
            "max_concurrent_requests",
            f"{settings.max_concurrent_requests} concurrent requests asked, but the licence allows {licence} "
            "(licence_concurrent_requests)",
            "Lower max_concurrent_requests, or correct licence_concurrent_requests.",
        )


def _check_credentials(settings: AcumaticaSettings) -> None:
    conn_id, auth_type = settings.conn_id, settings.auth_type
    needs_user = auth_type in ("cookie", "oauth2_password")
    if needs_user and not settings.login:
        raise AcumaticaConfigError(conn_id, "login", f"auth_type {auth_type} needs a username", "Set Username.")
    if needs_user and not settings.password:
        raise AcumaticaConfigError(conn_id, "password", f"auth_type {auth_type} needs a password", "Set Password.")
    if settings.is_oauth:
        for name in ("client_id", "client_secret"):
            if not getattr(settings, name):
                raise AcumaticaConfigError(
                    conn_id,
                    name,
                    f"auth_type {auth_type} needs the connected application's {name}",
                    "Copy it from Acumatica's Connected Applications form (SM303010) into the connection extra.",
                )


class _ExtraParser:
    """Reads typed values from a connection's extra; accepts the UI's strings and `extra__acumatica__` keys."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extra = {key.removeprefix("extra__acumatica__"): value for key, value in extra.items()}
        self.known: set[str] = set()

    def refuse_unknown(self) -> None:
        """An extra no setting reads is a mistake (a misspelt `time_zone`, `tennant`): say so, with the closest
        known name, as the bundle's config does for its keys."""
        for name in sorted(set(self.extra) - self.known):
            close = difflib.get_close_matches(name, self.known, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known extras: {', '.join(sorted(self.known))}."
            raise self._fail(name, "it is not a setting of this connection", f"{hint} Remove or rename it.")

    def _raw(self, name: str) -> Any:
        self.known.add(name)
        value = self.extra.get(name)
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def _fail(self, name: str, problem: str, fix: str) -> AcumaticaConfigError:
        return AcumaticaConfigError(self.conn_id, name, problem, fix)

    def text(self, name: str, required: bool = False) -> str | None:
        value = self._raw(name)
        if value is None and required:
            raise self._fail(name, "it is missing", f"Set the extra {name!r}.")
        return None if value is None else str(value).strip()

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(name) or default
        if value not in allowed:
            raise self._fail(name, f"{value!r} is not one of {', '.join(allowed)}", "Pick one of those.")
        return value

    def zone(self, name: str) -> str:
        value = self.text(name) or "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self._fail(
                name, f"{value!r} is not a known IANA time zone", "Use a name like America/New_York or Europe/Berlin."
            ) from None
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None or isinstance(value, bool):
            return default if value is None else value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise self._fail(name, f"{value!r} is not a boolean", "Use true or false.")

    def number(self, name: str, default: float | None, minimum: float) -> float | None:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number >= minimum:
            raise self._fail(name, f"{value!r} is not a number >= {minimum:g}", "Fix or remove the extra.")
        return number

    def integer(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not minimum <= number <= maximum:
            raise self._fail(
                name, f"{value!r} is not a whole number from {minimum} to {maximum}", "Fix or remove the extra."
            )
        return number
