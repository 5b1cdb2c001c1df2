"""How a sign-in's failure is read: a passing server error (retried), refused credentials (permanent), or the
licence's seat limit ("API Login Limit", waited out by the cookie sessions up to `login_limit_wait_seconds`)."""

from __future__ import annotations

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError
from airflow_provider_acumatica.client.settings import AcumaticaSettings

CREDENTIALS_REFUSED_MARKERS = (
    "credentials",
    "password",
    "user name",
    "username",
    "locked",
    "disabled",
    "company",
    "tenant",
    "branch",
)
"""Words of a sign-in error that blame what was sent: Acumatica refuses wrong credentials (or a tenant or branch the
user cannot enter) with a 500 as often as with a 4xx, "Invalid credentials. Please try again."; a 500 without any of
them is a passing server error, worth another try."""


def is_login_limit(message: str) -> bool:
    return "login limit" in message.lower()


def _credentials_refused(status: int | None, message: str) -> bool:
    lowered = message.lower()
    return status in (400, 401, 403) or (
        status is not None and any(word in lowered for word in CREDENTIALS_REFUSED_MARKERS)
    )


def login_retryable(status: int | None, message: str) -> bool:
    """Retry a sign-in that got no answer, a 429 or a 5xx, unless the answer says the credentials are refused; the
    licence's seat limit is waited for by the caller instead (CookieSessions._post_login)."""
    if is_login_limit(message):
        return False
    return (status is None or status == 429 or status >= 500) and not _credentials_refused(status, message)


def sign_in_error(settings: AcumaticaSettings, error: AcumaticaApiError) -> AcumaticaAuthError:
    """A sign-in that failed: refused credentials (permanent: check the connection) or a server that stayed in
    error through the retries (transient: a later try may succeed)."""
    who = f"user {settings.login!r} to tenant {settings.tenant!r}"
    if _credentials_refused(error.status, error.message):
        return AcumaticaAuthError(
            error.method,
            error.path,
            error.status,
            (
                f"sign-in of {who} refused: {error.message}. Check the connection's username, password, tenant and "
                "branch."
            ),
            permanent=True,
        )
    return AcumaticaAuthError(
        error.method,
        error.path,
        error.status,
        (
            f"sign-in of {who} failed through every retry: {error.message}. The instance is unreachable or in error; "
            "the credentials were not refused."
        ),
        permanent=False,
    )


def seats_taken_error(settings: AcumaticaSettings, error: AcumaticaApiError, waited: float) -> AcumaticaAuthError:
    return AcumaticaAuthError(
        error.method,
        error.path,
        error.status,
        (
            f'no API-user seat became free for tenant {settings.tenant!r} in {waited:.0f} s ("API Login Limit"): '
            "other tasks or workers hold every seat, or sessions left open by a killed process have not ended yet "
            "(about 10 idle minutes). Raise the connection's login_limit_wait_seconds "
            f"({settings.login_limit_wait_seconds:g}), or run fewer tasks at once against this instance."
        ),
        permanent=False,
    )
