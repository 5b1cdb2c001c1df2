"""An Acumatica stand-in over real HTTP for tests, demos and offline DAG development (never imported by
the product): REST entity API, cookie and OAuth2 sign-in, OData DAC and GI, licence throttling, faults,
and a /_sandbox/ control API. See `catalog.py` for the entities, their fields and keys."""

from __future__ import annotations

from airflow_provider_acumatica.sandbox.client import SandboxControl, SandboxControlError
from airflow_provider_acumatica.sandbox.process import sandbox_process
from airflow_provider_acumatica.sandbox.server import Sandbox, start_sandbox
from airflow_provider_acumatica.sandbox.settings import (
    ENDPOINT_NAME,
    ENDPOINT_VERSIONS,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_GI,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SandboxSettings,
    sandbox_client_id,
)

__all__ = [
    "ENDPOINT_NAME",
    "ENDPOINT_VERSIONS",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_GI",
    "SANDBOX_PASSWORD",
    "SANDBOX_USER",
    "Sandbox",
    "SandboxControl",
    "SandboxControlError",
    "SandboxSettings",
    "sandbox_client_id",
    "sandbox_process",
    "start_sandbox",
]
