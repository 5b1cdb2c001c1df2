"""Settings of one Acumatica connection: parsed from plain values and validated once, up front.

Each extra of the connection is one field of `AcumaticaSettings`, declared with its type, default, allowed values
and help (see client/extras.py). That declaration is the only one: the parser, the Airflow connection form
(`get_provider_info`) and the table in docs/connection.md are made from `SETTINGS`;
`python -m airflow_provider_acumatica.client.settings docs/connection.md` rewrites that table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_acumatica.client import extras
from airflow_provider_acumatica.client.errors import AcumaticaConfigError
from airflow_provider_acumatica.client.extras import InvalidExtra, Setting, closest_name, shown
from airflow_provider_acumatica.client.limits import CONCURRENT_REQUESTS, PAGE_SIZES, WholeNumbers

PROBE_PAGE_SIZES = WholeNumbers(1_000, 100_000)
DEFAULT_PROBE_PAGE_SIZE = 50_000
AUTH_TYPES = ("cookie", "oauth2_password", "oauth2_code")
OAUTH_AUTH_TYPES = ("oauth2_password", "oauth2_code")
_UI_PREFIX = "extra__acumatica__"
"""The prefix the Airflow form gives the extras' keys; read as if absent."""


@dataclasses.dataclass(frozen=True)
class AcumaticaSettings:
    """Everything the client needs to talk to one tenant of one instance; secrets stay out of repr.

    The fields made by `extras.*` are the connection's extras (`SETTINGS`); the others come from its host, login
    and password."""

    conn_id: str
    instance_url: str
    tenant: str = extras.text(
        "Tenant", "Acumatica tenant (company) to sign in to, as on the login page.", required=True
    )
    login: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    auth_type: str = extras.choice(
        "Authentication",
        "cookie: a username/password session; oauth2_password: OAuth2 resource-owner password grant; "
        "oauth2_code: OAuth2 authorization code, connected once in a browser.",
        "cookie",
        AUTH_TYPES,
    )
    branch: str | None = extras.text("Branch", "Branch to sign in to (cookie sign-in only; empty: the user's default).")
    client_id: str | None = extras.text(
        "OAuth client ID", "The connected application's (SM303010) client ID, like {GUID}@Tenant."
    )
    client_secret: str | None = extras.text(
        "OAuth client secret", "The connected application's shared secret.", secret=True
    )
    refresh_token: str | None = extras.text(
        "OAuth refresh token",
        "oauth2_code only: a seed refresh token (or press Connect). Tokens rotate: the newest lives in the token store.",
        secret=True,
    )
    scope: str = extras.text(
        "OAuth scope", "Space-separated OAuth scopes; offline_access brings a refresh token.", "api offline_access"
    )
    endpoint_name: str = extras.text(
        "Endpoint name", "Contract-based REST endpoint; customers often extend it under their own name.", "Default"
    )
    endpoint_version: str = extras.text("Endpoint version", "Version of that endpoint.", "24.200.001")
    profile_timezone: str = extras.zone(
        "Profile time zone",
        "IANA time zone of the API user's Acumatica profile (e.g. America/New_York); "
        "date-times sent without an offset are read as wall time there.",
        "UTC",
    )
    convert_to_utc: bool = extras.boolean("Convert date-times to UTC", "Date-times come out as UTC.", True)
    page_size: int = extras.whole("Page size", "Records per request of iter_entity and iter_odata.", 1000, PAGE_SIZES)
    probe_page_size: int = extras.whole(
        "Probe page size",
        "The most timestamps one request asks when the sync operator samples where a table's records lie (most "
        "ask far fewer); lower it if those requests time out on a slow instance (their error says so).",
        DEFAULT_PROBE_PAGE_SIZE,
        PROBE_PAGE_SIZES,
    )
    timeout: float = extras.seconds("Timeout", "Seconds to wait for one answer.", 120.0, minimum=0.001)
    verbosity: int = extras.whole(
        "Log verbosity",
        "1 queries, row counts, errors; 2 + headers; 3 + bodies; 4 + transport; 5 everything. "
        "Secrets are masked at every level.",
        1,
        WholeNumbers(1, 5),
    )
    max_concurrent_requests: int = extras.whole(
        "Max concurrent requests",
        "The licence's concurrent request limit for this instance: the hook never has more requests in flight "
        "or sessions open.",
        3,
        CONCURRENT_REQUESTS,
    )
    requests_per_minute: int | None = extras.whole(
        "Requests per minute",
        "Client-side cap below the licence's per-minute limit (empty: no cap).",
        None,
        WholeNumbers(1, 1_000_000),
    )
    verify_ssl: bool = extras.boolean("Verify TLS certificates", "Verify the instance's certificate.", True)
    token_store: str | None = extras.text(
        "OAuth token store",
        "SQLAlchemy URL of the shared store of rotating OAuth tokens (empty: the SQLite file "
        "$AIRFLOW_HOME/acumatica_tokens.db); use a database every worker reaches, such as the metadata "
        "PostgreSQL, when workers run on several machines.",
    )
    max_retries: int = extras.whole(
        "Max retries",
        "Retries of one request on 429, 5xx, dropped connections and truncated answers.",
        8,
        WholeNumbers(0, 100),
    )
    retry_max_seconds: float = extras.seconds(
        "Retry time limit", "Seconds one request may spend retrying in total.", 600.0
    )
    backoff_seconds: float = extras.seconds(
        "First backoff", "Seconds before the first retry; doubles each time, with jitter.", 1.0
    )
    licence_concurrent_requests: int | None = extras.whole(
        "Licence concurrent requests",
        "The instance licence's concurrent requests, shared by every task and worker through leases in the "
        "token store's database (empty: max concurrent requests per process only).",
        None,
        CONCURRENT_REQUESTS,
    )
    licence_wait_seconds: float = extras.seconds(
        "Licence wait", "Seconds a task waits for its share of the licence before failing.", 600.0
    )
    login_limit_wait_seconds: float = extras.seconds(
        "Login limit wait",
        'Seconds a sign-in refused with "API Login Limit" waits for a seat: sessions a killed process left open '
        "end after about 10 idle minutes.",
        660.0,
    )

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
        instance_url = _instance_url(conn_id, host)
        given = _known_extras(conn_id, extra or {})
        values = {}
        for name, setting in SETTINGS.items():
            try:
                values[name] = setting.read(given.get(name))
            except InvalidExtra as refused:
                raise AcumaticaConfigError(conn_id, name, refused.problem, refused.fix) from None
        settings = cls(
            conn_id=conn_id, instance_url=instance_url, login=login or None, password=password or None, **values
        )
        _check_credentials(settings)
        check_licence_share(settings)
        return settings


SETTINGS: Mapping[str, Setting] = extras.declared(AcumaticaSettings)
"""The connection's extras, in the order the form and the docs show them."""


def _known_extras(conn_id: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The extras by setting name; one no setting reads is a mistake (a misspelt `time_zone`, `tennant`): say so,
    with the closest known name, as the bundle's config does for its keys."""
    given = {key.removeprefix(_UI_PREFIX): value for key, value in extra.items()}
    for name in sorted(set(given) - set(SETTINGS)):
        close = closest_name(name, SETTINGS)
        hint = f"Did you mean {close!r}?" if close else f"Known extras: {', '.join(sorted(SETTINGS))}."
        raise AcumaticaConfigError(
            conn_id, name, "it is not a setting of this connection", f"{hint} Remove or rename it."
        )
    return given


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


TABLE_START = "<!-- extras table: made by `python -m airflow_provider_acumatica.client.settings docs/connection.md` -->"
TABLE_END = "<!-- end of the extras table -->"


def markdown_table() -> str:
    """The extras as the Markdown table of docs/connection.md."""
    rows = ["| Extra | Type | Default | Allowed | Meaning |", "|---|---|---|---|---|"]
    for setting in SETTINGS.values():
        default = "required" if setting.required else shown(setting.default)
        rows.append(f"| `{setting.name}` | {setting.kind} | {default} | {setting.allowed()} | {setting.help} |")
    return "\n".join(rows) + "\n"


def with_markdown_table(document: str) -> str:
    """`document` with the text between TABLE_START and TABLE_END replaced by `markdown_table()`."""
    before, found, rest = document.partition(TABLE_START + "\n")
    _, ended, after = rest.partition(TABLE_END)
    if not found or not ended:
        raise ValueError(f"the document lacks the markers {TABLE_START!r} and {TABLE_END!r}")
    return before + found + markdown_table() + ended + after


if __name__ == "__main__":
    for document in map(Path, sys.argv[1:]):
        document.write_text(with_markdown_table(document.read_text(encoding="utf-8")), encoding="utf-8")
