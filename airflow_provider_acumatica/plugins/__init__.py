"""The Airflow plugin of this provider: the connect flow and the Acumatica page, mounted under /acumatica.

Registered through the `airflow.plugins` entry point (pyproject.toml), which Airflow always loads; the
provider-info `plugins` list is read only with `[core] lazy_discover_providers = False`, and listing the
plugin there too would load it twice then.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class AcumaticaPlugin(AirflowPlugin):
    """Mounts the Acumatica app on the API server and adds the Acumatica page to the UI's Browse menu."""

    name = "acumatica"

    @property
    def fastapi_apps(self) -> list[dict]:  # built on the API server only, when Airflow asks for it
        from airflow_provider_acumatica.plugins.app import URL_PREFIX, app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Acumatica"}]

    external_views = [
        {
            "name": "Acumatica",
            "href": "/acumatica/status",
            "destination": "nav",
            "category": "browse",
            "url_route": "acumatica",
        }
    ]
