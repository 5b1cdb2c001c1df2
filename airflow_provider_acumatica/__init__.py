"""Apache Airflow provider for Acumatica ERP: package version and the provider metadata Airflow reads."""

from __future__ import annotations

import configparser
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_acumatica.client.extras import Setting

__version__ = "0.1.0"

_JSON_TYPES = {"boolean": "boolean", "whole number": "integer", "number": "number"}


def _form_field(setting: Setting) -> dict:
    """One extra as the Airflow form shows it."""
    schema: dict[str, Any] = {"type": [_JSON_TYPES.get(setting.kind, "string"), "null"]}
    if setting.default is not None:
        schema["default"] = setting.default
    if setting.choices:
        schema["enum"] = list(setting.choices)
    if setting.whole:
        schema["minimum"], schema["maximum"] = setting.whole.low, setting.whole.high
    elif setting.minimum is not None:
        schema["minimum"] = setting.minimum
    if setting.secret:
        schema["format"] = "password"
    return {"label": setting.label, "description": setting.help, "schema": schema}


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
    """Extras of the `acumatica` connection, as the Airflow form shows them: one field per connection setting."""
    from airflow_provider_acumatica.client.settings import SETTINGS  # at call time: `python -m` runs that module

    fields = {name: _form_field(setting) for name, setting in SETTINGS.items()}
    # The form renders `description_md` (Markdown, links) when no plain description is set.
    authentication = fields["auth_type"]
    authentication["schema"]["description_md"] = (
        f"{authentication.pop('description')} For `oauth2_code`, register the callback URL `{_callback_url()}` in "
        "Acumatica's Connected Applications (SM303010), save this connection, then press **Connect** on its line "
        "of the [Acumatica page](/acumatica/status) (or run `airflow-acumatica connect --conn-id ...`)."
    )
    return fields


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
