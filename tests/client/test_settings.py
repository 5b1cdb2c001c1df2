"""Connection settings: defaults, the UI's string values, and clear errors naming connection and field."""

from __future__ import annotations

import pytest

from airflow_provider_acumatica.client.errors import AcumaticaConfigError
from airflow_provider_acumatica.client.settings import AcumaticaSettings

BASE = {"tenant": "Company"}


def settings(extra=None, host="https://erp.example.com/site/", login="admin", password="secret-pw"):
    return AcumaticaSettings.from_connection("acu_test", host, login, password, {**BASE, **(extra or {})})


def test_defaults_and_normalisation():
    parsed = settings()
    assert parsed.instance_url == "https://erp.example.com/site"
    assert (parsed.auth_type, parsed.endpoint_name, parsed.endpoint_version) == ("cookie", "Default", "24.200.001")
    assert (parsed.page_size, parsed.verbosity, parsed.max_concurrent_requests) == (1000, 1, 3)
    assert parsed.probe_page_size == 50_000
    assert parsed.scope == "api offline_access" and parsed.convert_to_utc and parsed.verify_ssl
    assert parsed.requests_per_minute is None and parsed.profile_timezone == "UTC"
    assert settings(host="erp.example.com").instance_url == "https://erp.example.com"


def test_ui_strings_and_prefixed_keys_are_read():
    parsed = settings(
        {
            "extra__acumatica__page_size": "250",
            "verify_ssl": "false",
            "convert_to_utc": "0",
            "verbosity": "3",
            "requests_per_minute": "120",
            "timeout": "30.5",
            "probe_page_size": "5000",
        }
    )
    assert (parsed.page_size, parsed.verify_ssl, parsed.convert_to_utc) == (250, False, False)
    assert (parsed.verbosity, parsed.requests_per_minute, parsed.timeout) == (3, 120, 30.5)
    assert parsed.probe_page_size == 5000


def test_secrets_stay_out_of_repr():
    parsed = settings(
        {
            "auth_type": "oauth2_password",
            "client_id": "id@Company",
            "client_secret": "cs-value",
            "refresh_token": "rt-value",
        }
    )
    text = repr(parsed)
    assert "secret-pw" not in text and "cs-value" not in text and "rt-value" not in text
    assert set(parsed.secrets()) == {"secret-pw", "cs-value", "rt-value"}


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"auth_type": "saml"}, "auth_type", "not one of cookie, oauth2_password, oauth2_code"),
        ({"tenant": ""}, "tenant", "missing"),
        ({"profile_timezone": "Mars/Olympus"}, "profile_timezone", "not a known IANA time zone"),
        ({"page_size": 0}, "page_size", "from 1 to 10000"),
        ({"page_size": "10001"}, "page_size", "from 1 to 10000"),
        ({"page_size": "many"}, "page_size", "whole number"),
        ({"probe_page_size": 999}, "probe_page_size", "from 1000 to 100000"),
        ({"probe_page_size": 100_001}, "probe_page_size", "from 1000 to 100000"),
        ({"verbosity": 6}, "verbosity", "from 1 to 5"),
        ({"max_concurrent_requests": 0}, "max_concurrent_requests", "from 1"),
        ({"verify_ssl": "maybe"}, "verify_ssl", "not a boolean"),
        ({"timeout": "-1"}, "timeout", "not a number"),
        ({"auth_type": "oauth2_password", "client_secret": "x"}, "client_id", "needs the connected application"),
        ({"auth_type": "oauth2_code", "client_id": "a@Company"}, "client_secret", "needs the connected application"),
    ],
)
def test_invalid_settings_name_connection_and_field(extra, field, words):
    with pytest.raises(AcumaticaConfigError) as caught:
        settings(extra)
    assert caught.value.field == field
    assert "'acu_test'" in str(caught.value) and f"'{field}'" in str(caught.value) and words in str(caught.value)


def test_missing_credentials_and_host():
    with pytest.raises(AcumaticaConfigError, match="'password'.*needs a password"):
        settings(password=None)
    with pytest.raises(AcumaticaConfigError, match="'login'.*needs a username"):
        settings({"auth_type": "oauth2_password", "client_id": "a", "client_secret": "b"}, login="")
    with pytest.raises(AcumaticaConfigError, match="'host'"):
        settings(host="")
    with pytest.raises(AcumaticaConfigError, match="not an http"):
        settings(host="ftp://erp")
    code_flow = settings(
        {"auth_type": "oauth2_code", "client_id": "a", "client_secret": "b"}, login=None, password=None
    )
    assert code_flow.is_oauth


@pytest.mark.parametrize(
    ("extra", "named", "suggested"),
    [
        ({"tenant": "Company", "time_zone": "UTC"}, "time_zone", "profile_timezone"),
        ({"tenant": "Company", "tennant": "Company"}, "tennant", "tenant"),
        ({"tenant": "Company", "extra__acumatica__page_sise": "500"}, "page_sise", "page_size"),
    ],
)
def test_an_unknown_extra_is_refused_naming_the_closest_setting(extra, named, suggested):
    with pytest.raises(AcumaticaConfigError, match=f"field '{named}': it is not a setting.*Did you mean '{suggested}'"):
        AcumaticaSettings.from_connection("acumatica_x", "https://x.example", "u", "p", extra)
