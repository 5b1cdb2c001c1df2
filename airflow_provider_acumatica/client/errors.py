"""Exceptions of the Acumatica client: every message names the request or setting, never a secret."""

from __future__ import annotations


class AcumaticaError(Exception):
    """Base class of everything the Acumatica client raises."""


class AcumaticaConfigError(AcumaticaError, ValueError):
    """A connection setting is missing or invalid; the message names the connection and the field."""

    def __init__(self, conn_id: str, field: str, problem: str, fix: str) -> None:
        self.conn_id = conn_id
        self.field = field
        super().__init__(f"Acumatica connection {conn_id!r}, field {field!r}: {problem}. {fix}")


class AcumaticaUnknownTableError(AcumaticaError, ValueError):
    """The instance does not describe a table asked for (a DAC or generic inquiry missing from `$metadata`): as
    permanent as a 404, though no request failed."""


PERMANENT_STATUSES = frozenset((400, 401, 403, 404, 405, 412, 422))
"""Answers that the same request would get again however often it is retried: a bad query or record, an unknown
entity or field, missing rights, credentials refused after a renewal."""


class AcumaticaApiError(AcumaticaError):
    """Acumatica answered a request with an error (after any retries).

    `permanent`: retrying the work later would meet the same answer (see PERMANENT_STATUSES), so a task should fail
    at once rather than be retried; by default judged from the status, or stated by whoever knows better (a sign-in
    refused for its credentials whatever its status, a sign-in answered 500 for a passing reason).
    """

    def __init__(
        self, method: str, path: str, status: int | None, message: str, *, permanent: bool | None = None
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.permanent = status in PERMANENT_STATUSES if permanent is None else permanent
        status_text = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{method} {path} failed: {status_text}: {message}")


class AcumaticaAuthError(AcumaticaApiError):
    """Sign-in or token request refused (wrong credentials, tenant or client secret, broken token chain)."""


class AcumaticaValidationError(AcumaticaApiError):
    """HTTP 422: the record was refused; `field_errors` maps each bad field to Acumatica's error text."""

    def __init__(self, method: str, path: str, message: str, field_errors: dict[str, str], record: dict) -> None:
        self.field_errors = field_errors
        self.record = record
        details = "; ".join(f"{name}: {error}" for name, error in field_errors.items())
        super().__init__(method, path, 422, f"{message} ({details})" if details else message)


class AcumaticaClosedError(AcumaticaError):
    """The client was closed (for instance by on_kill) while work was still asking for it."""
