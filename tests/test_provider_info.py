"""Airflow discovers the provider through its entry point: the `acumatica` connection type, its form, its classes."""

from __future__ import annotations

import importlib

from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime


def test_providers_manager_lists_the_acumatica_connection_type():
    assert "airflow-provider-acumatica" in ProvidersManager().providers
    hook = ProvidersManagerTaskRuntime().hooks["acumatica"]
    assert hook.hook_class_name == "airflow_provider_acumatica.hooks.acumatica.AcumaticaHook"
    assert hook.hook_name == "Acumatica"


def test_the_connection_form_shows_the_extras_with_secrets_as_password_fields():
    manager = ProvidersManager()
    widgets = {name: widget for name, widget in manager.connection_form_widgets.items() if "acumatica" in name}
    fields = {name.rsplit("__", 1)[-1]: widget for name, widget in widgets.items()}
    assert {
        "tenant",
        "auth_type",
        "client_id",
        "client_secret",
        "refresh_token",
        "profile_timezone",
        "page_size",
        "verbosity",
        "max_concurrent_requests",
        "requests_per_minute",
        "token_store",
    } <= set(fields)
    assert fields["client_secret"].is_sensitive and fields["refresh_token"].is_sensitive
    assert not fields["tenant"].is_sensitive
    behaviour = manager.field_behaviours["acumatica"]
    assert {"schema", "port"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"]["host"] == "Instance URL"


def test_every_module_the_provider_declares_imports():
    info = ProvidersManager().providers["airflow-provider-acumatica"].data
    modules = [module for kind in ("hooks", "operators") for entry in info[kind] for module in entry["python-modules"]]
    assert "airflow_provider_acumatica.operators.acumatica_to_sql" in modules
    for module in modules:
        importlib.import_module(module)
