"""One declaration of the connection's extras: the parser, the Airflow form and the docs' table agree with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_acumatica import get_provider_info
from airflow_provider_acumatica.client.errors import AcumaticaConfigError
from airflow_provider_acumatica.client.settings import SETTINGS, AcumaticaSettings, with_markdown_table

DOCS = Path(__file__).parents[2] / "docs" / "connection.md"


def form_fields() -> dict:
    (connection_type,) = get_provider_info()["connection-types"]
    return connection_type["conn-fields"]


def parse(name: str, value) -> AcumaticaSettings:
    extra = {"tenant": "Company", "auth_type": "oauth2_password", "client_id": "a", "client_secret": "b"}
    return AcumaticaSettings.from_connection("acu", "https://x.example", "u", "p", {**extra, name: value})


def test_the_docs_table_is_the_one_the_settings_make():
    document = DOCS.read_text(encoding="utf-8")
    assert with_markdown_table(document) == document, (
        "docs/connection.md's table of extras differs from the settings: run "
        "`python -m airflow_provider_acumatica.client.settings docs/connection.md`"
    )
    for name in SETTINGS:
        assert f"| `{name}` |" in document


def test_the_command_rewrites_a_stale_table(tmp_path):
    stale = DOCS.read_text(encoding="utf-8").replace("| `page_size` |", "| `page_sise` |")
    copy = tmp_path / "connection.md"
    copy.write_text(stale, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "airflow_provider_acumatica.client.settings", str(copy)], check=True)
    assert copy.read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")


def test_the_form_shows_every_setting_with_its_default_and_range():
    fields = form_fields()
    assert list(fields) == list(SETTINGS)
    for name, setting in SETTINGS.items():
        schema = fields[name]["schema"]
        assert fields[name]["label"] == setting.label
        assert schema.get("default") == setting.default
        assert (schema.get("format") == "password") == setting.secret
        assert schema.get("enum", []) == list(setting.choices)
    assert "register the callback URL" in fields["auth_type"]["schema"]["description_md"]


@pytest.mark.parametrize("name", [name for name, setting in SETTINGS.items() if setting.whole])
def test_the_forms_bounds_are_the_parsers(name):
    schema = form_fields()[name]["schema"]
    low, high = schema["minimum"], schema["maximum"]
    if name != "licence_concurrent_requests":  # the licence must hold max_concurrent_requests (default 3)
        assert getattr(parse(name, low), name) == low
    assert getattr(parse(name, str(high)), name) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(AcumaticaConfigError, match=f"field '{name}': '?{outside}'? is not a whole number"):
            parse(name, outside)


def test_a_refused_value_says_what_to_do():
    with pytest.raises(AcumaticaConfigError) as caught:
        parse("page_size", "20000")
    assert str(caught.value).endswith(
        "'20000' is not a whole number from 1 to 10000. Correct it, or remove the extra to get the default (1000)."
    )
