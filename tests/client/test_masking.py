"""Secret masking: known values, secret-bearing fields and credential headers are hidden."""

from __future__ import annotations

from airflow_provider_acumatica.client.masking import SecretMasker


def test_known_secrets_and_fields_are_redacted():
    masker = SecretMasker()
    told: list[str] = []
    masker.add("s3cr3t-token", None, "")
    masker.add_listener(told.append)
    masker.add("pw-long-value")
    text = masker.redact('Bearer s3cr3t-token {"name": "admin", "password": "other", "CostCode": {"value": "01"}}')
    assert "s3cr3t-token" not in text and '"password": "***"' in text and "other" not in text
    assert '"CostCode": {"value": "01"}' in text
    assert masker.redact("grant_type=refresh_token&refresh_token=abc&client_secret=def") == (
        "grant_type=refresh_token&refresh_token=***&client_secret=***"
    )
    assert told == ["s3cr3t-token", "pw-long-value"]


def test_credential_headers_are_hidden():
    masker = SecretMasker()
    shown = masker.headers({"Authorization": "Bearer abc", "Cookie": "ASP.NET_SessionId=xyz", "Accept": "json"})
    assert "abc" not in shown and "xyz" not in shown and "Accept: json" in shown
