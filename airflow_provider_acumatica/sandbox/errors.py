"""Acumatica-shaped error answers: {"message", "exceptionMessage", "exceptionType", "stackTrace"}."""

from __future__ import annotations

_EXCEPTION_TYPES = {
    400: "PX.Api.ContractBased.BadRequestException",
    401: "PX.Data.PXNotLoggedInException",
    403: "PX.Data.PXAccessDeniedException",
    404: "PX.Api.ContractBased.NoEntitySatisfiesTheConditionException",
    412: "PX.Api.ContractBased.PreconditionFailedException",
    429: "PX.Data.PXException",
    500: "PX.Data.PXException",
}
_MESSAGES = {
    400: "The request is invalid.",
    401: "You are not logged in.",
    404: "No entity satisfies the condition.",
    429: "API Login Limit",
    500: "An error has occurred.",
}


class ApiError(Exception):
    """An answer other than success; `body` overrides the standard error body (e.g. OAuth's or a 422 echo)."""

    def __init__(
        self, status: int, detail: str, *, message: str | None = None, body=None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.message = message or _MESSAGES.get(status, "An error has occurred.")
        self.body = body
        self.headers = headers or {}

    def payload(self):
        """The JSON body Acumatica would send."""
        if self.body is not None:
            return self.body
        return {
            "message": self.message,
            "exceptionMessage": self.detail,
            "exceptionType": _EXCEPTION_TYPES.get(self.status, "System.Exception"),
            "stackTrace": "   at PX.Api.ContractBased.EntityService.Process()\r\n   at PX.Api.Services.ApiController.Invoke()",
        }


class DropConnection(Exception):
    """Close the socket without answering (a fault)."""


def number_field(payload: dict, field: str, default: float | None, kind: type[int] | type[float], where: str) -> float:
    """`field` of a control request's JSON as `kind`: a 400 naming it (and `where`), not a 500, when not a number."""
    value = payload.get(field, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{where}: `{field}` must be a number, got {value!r}") from None
