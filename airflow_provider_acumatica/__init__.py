"""Apache Airflow provider for Acumatica ERP: package version and the provider metadata Airflow reads."""

from __future__ import annotations

import configparser
import os

__version__ = "0.1.0"

_STRING = {"type": ["string", "null"]}


def _field(label: str, description: str, schema: dict | None = None) -> dict:
    return {"label": label, "description": description, "schema": schema or dict(_STRING)}


def _markdown_field(label: str, markdown: str, schema: dict) -> dict:
    """A field whose help is Markdown (links): the UI renders `schema.description_md` when no description is set."""
    return {"label": label, "schema": {**schema, "description_md": markdown}}


def _callback_url() -> str:
    """The redirect URI the UI connect flow uses: the API server's `[api] base_url` + /acumatica/oauth2redirect.

    Airflow reads provider info while its own configuration is still loading, so `airflow.configuration.conf`
    cannot be asked here: the setting is read where Airflow keeps it, the environment or airflow.cfg."""
    base = os.environ.get("AIRFLOW__API__BASE_URL", "")
    if not base:
        parser = configparser.ConfigParser(interpolation=None)
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        parser.read(os.environ.get("AIRFLOW_CONFIG") or os.path.join(home, "airflow.cfg"))
        base = parser.get("api", "base_url", fallback="")
    return f"{base.rstrip('/') or '<your Airflow URL>'}/acumatica/oauth2redirect"


def _connection_fields() -> dict:
    """Extras of the `acumatica` connection, as the Airflow UI form shows them."""
    return {
        "tenant": _field("Tenant", "Acumatica tenant (company) to sign in to, as on the login page."),
        "branch": _field("Branch", "Optional branch to sign in to (cookie sign-in only)."),
        "auth_type": _markdown_field(
            "Authentication",
            "`cookie`: login/password session; `oauth2_password`: OAuth2 resource-owner password grant; "
            "`oauth2_code`: OAuth2 authorization code, connected in a browser. For `oauth2_code`, register the "
            f"callback URL `{_callback_url()}` in Acumatica's Connected Applications (SM303010), save this "
            "connection, then press **Connect** on its line of the "
            "[Acumatica page](/acumatica/status) (or run `airflow-acumatica connect --conn-id ...`).",
            {"type": ["string", "null"], "enum": ["cookie", "oauth2_password", "oauth2_code"], "default": "cookie"},
        ),
        "client_id": _field("OAuth client ID", "Connected application's client ID, like {GUID}@Tenant."),
        "client_secret": _field(
            "OAuth client secret",
            "Connected application's shared secret.",
            {"type": ["string", "null"], "format": "password"},
        ),
        "refresh_token": _field(
            "OAuth refresh token",
            "Seed refresh token for oauth2_code. Tokens rotate: the newest one lives in the token store.",
            {"type": ["string", "null"], "format": "password"},
        ),
        "scope": _field(
            "OAuth scope", "Space-separated scopes.", {"type": ["string", "null"], "default": "api offline_access"}
        ),
        "endpoint_name": _field(
            "Endpoint name", "Contract-based REST endpoint.", {"type": ["string", "null"], "default": "Default"}
        ),
        "endpoint_version": _field(
            "Endpoint version", "Endpoint version.", {"type": ["string", "null"], "default": "24.200.001"}
        ),
        "profile_timezone": _field(
            "Profile time zone",
            "IANA time zone of the API user's Acumatica profile (e.g. America/New_York); "
            "date-times sent without an offset are read as wall time there.",
        ),
        "convert_to_utc": _field(
            "Convert date-times to UTC", "Store date-times as UTC.", {"type": ["boolean", "null"], "default": True}
        ),
        "page_size": _field(
            "Page size",
            "Records per request (1-10000).",
            {"type": ["integer", "null"], "default": 1000, "minimum": 1, "maximum": 10000},
        ),
        "probe_page_size": _field(
            "Probe page size",
            "Timestamps per request when the sync operator probes where a table's records lie (1000-100000); "
            "lower it if those requests time out on a slow instance.",
            {"type": ["integer", "null"], "default": 50000, "minimum": 1000, "maximum": 100000},
        ),
        "timeout": _field("Timeout", "Seconds to wait for one answer.", {"type": ["number", "null"], "default": 120}),
        "verbosity": _field(
            "Log verbosity",
            "1 queries, row counts, errors; 2 + headers; 3 + bodies; 4 + transport; 5 everything. Secrets are always masked.",
            {"type": ["integer", "null"], "default": 1, "minimum": 1, "maximum": 5},
        ),
        "max_concurrent_requests": _field(
            "Max concurrent requests",
            "The licence's concurrent request limit for this instance.",
            {"type": ["integer", "null"], "default": 3, "minimum": 1},
        ),
        "requests_per_minute": _field(
            "Requests per minute",
            "Client-side cap below the licence's per-minute limit (empty: no cap).",
            {"type": ["integer", "null"], "minimum": 1},
        ),
        "verify_ssl": _field(
            "Verify TLS certificates",
            "Verify the instance's certificate.",
            {"type": ["boolean", "null"], "default": True},
        ),
        "token_store": _field(
            "OAuth token store",
            "SQLAlchemy URL of the shared store of rotating OAuth tokens (default: SQLite under $AIRFLOW_HOME; "
            "use a shared database such as the metadata PostgreSQL when workers run on several machines).",
        ),
        "max_retries": _field(
            "Max retries",
            "Retries of one request on 429, 5xx, resets and truncated answers.",
            {"type": ["integer", "null"], "default": 8, "minimum": 0},
        ),
        "retry_max_seconds": _field(
            "Retry time limit",
            "Seconds one request may spend retrying in total.",
            {"type": ["number", "null"], "default": 600},
        ),
        "backoff_seconds": _field(
            "First backoff",
            "Seconds before the first retry; doubles each time, with jitter.",
            {"type": ["number", "null"], "default": 1.0},
        ),
    }


def get_provider_info() -> dict:
    """Provider metadata, found by Airflow through the `apache_airflow_provider` entry point."""
    return {
        "package-name": "airflow-provider-acumatica",
        "name": "Acumatica",
        "description": "Acumatica ERP: sync tenants' tables into a SQL warehouse, publish payroll time entries.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "Acumatica", "external-doc-url": "https://help.acumatica.com/", "tags": ["service"]}
        ],
        "hooks": [{"integration-name": "Acumatica", "python-modules": ["airflow_provider_acumatica.hooks.acumatica"]}],
        "operators": [
            {
                "integration-name": "Acumatica",
                "python-modules": ["airflow_provider_acumatica.operators.acumatica_to_sql"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "acumatica",
                "hook-class-name": "airflow_provider_acumatica.hooks.acumatica.AcumaticaHook",
                "hook-name": "Acumatica",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Instance URL", "login": "Username"},
                    "placeholders": {"host": "https://company.acumatica.com", "login": "admin"},
                },
                "conn-fields": _connection_fields(),
            }
        ],
    }
