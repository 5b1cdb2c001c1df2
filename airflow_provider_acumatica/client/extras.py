"""How one extra of a connection is read from what Airflow holds, and what the form and the docs say of it.

`AcumaticaSettings` (client/settings.py) declares each extra as a field made by `text`, `choice`, `zone`, `boolean`,
`whole` or `seconds`. The form gives every value as a string, so each kind reads strings as well as typed values.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_acumatica.client.limits import WholeNumbers
from airflow_provider_acumatica.utils.flags import flag

Kind = Literal["text", "choice", "time zone", "boolean", "whole number", "number"]


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` is most likely a misspelling of, if any: unknown keys are refused naming it."""
    matches = difflib.get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


class InvalidExtra(ValueError):
    """A value a setting does not allow: what is wrong, and what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclasses.dataclass(frozen=True)
class Setting:
    """One extra of the `acumatica` connection: how it is read, and what the form and the docs say of it."""

    kind: Kind
    """How the value is read (`_READERS`); the docs' table shows it as the extra's type."""
    label: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    whole: WholeNumbers | None = None
    minimum: float | None = None
    required: bool = False
    secret: bool = False
    name: str = ""

    def read(self, raw: Any) -> Any:
        """The value from what the connection holds (the form gives strings; empty is absent); raise InvalidExtra."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise InvalidExtra("it is missing", f"Set the extra {self.name!r}.")
            return self.default
        return _READERS[self.kind](self, raw)

    def allowed(self) -> str:
        """The values allowed, in words, or '' when any is."""
        if self.choices:
            return ", ".join(self.choices)
        if self.whole:
            return str(self.whole)
        if self.minimum is not None:
            return f">= {self.minimum:g}"
        return ""

    def or_default(self, fix: str = "Correct it") -> str:
        """What to do about a refused value: `fix` it, or let the default hold."""
        return f"{fix}, or remove the extra to get the default ({shown(self.default)})."


def shown(value: Any) -> str:
    """A default as the form's user would type it."""
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _read_text(setting: Setting, raw: Any) -> str:
    return str(raw).strip()


def _read_choice(setting: Setting, raw: Any) -> str:
    value = str(raw).strip()
    if value not in setting.choices:
        raise InvalidExtra(f"{value!r} is not one of {', '.join(setting.choices)}", "Pick one of those.")
    return value


def _read_zone(setting: Setting, raw: Any) -> str:
    value = str(raw).strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidExtra(
            f"{value!r} is not a known IANA time zone", "Use a name like America/New_York or Europe/Berlin."
        ) from None
    return value


def _read_boolean(setting: Setting, raw: Any) -> bool:
    value = flag(raw)
    if value is not None:
        return value
    raise InvalidExtra(f"{raw!r} is not a boolean", setting.or_default("Use true or false"))


def _read_whole(setting: Setting, raw: Any) -> int:
    try:
        number = int(str(raw).strip()) if not isinstance(raw, bool) else None
    except ValueError:
        number = None
    if number not in setting.whole:
        raise InvalidExtra(f"{raw!r} is not a whole number {setting.whole}", setting.or_default())
    return number


def _read_number(setting: Setting, raw: Any) -> float:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        number = float("nan")
    if not number >= setting.minimum:
        raise InvalidExtra(f"{raw!r} is not a number >= {setting.minimum:g}", setting.or_default())
    return number


_READERS: Mapping[str, Callable[[Setting, Any], Any]] = {
    "text": _read_text,
    "choice": _read_choice,
    "time zone": _read_zone,
    "boolean": _read_boolean,
    "whole number": _read_whole,
    "number": _read_number,
}


_METADATA_KEY = "acumatica_setting"


def declared(settings_class: type) -> dict[str, Setting]:
    """The extras a dataclass declares with the helpers below, by field name, in the order declared."""
    return {
        field.name: dataclasses.replace(field.metadata[_METADATA_KEY], name=field.name)
        for field in dataclasses.fields(settings_class)
        if _METADATA_KEY in field.metadata
    }


def _field(setting: Setting) -> Any:
    """A dataclass field that an extra sets, holding its `Setting`."""
    metadata = {_METADATA_KEY: setting}
    if setting.required:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=setting.default, repr=not setting.secret, metadata=metadata)


def text(label: str, help: str, default: str | None = None, *, required: bool = False, secret: bool = False) -> Any:
    return _field(Setting("text", label, help, default, required=required, secret=secret))


def choice(label: str, help: str, default: str, choices: tuple[str, ...]) -> Any:
    return _field(Setting("choice", label, help, default, choices=choices))


def zone(label: str, help: str, default: str) -> Any:
    return _field(Setting("time zone", label, help, default))


def whole(label: str, help: str, default: int | None, allowed: WholeNumbers) -> Any:
    """A whole number within `allowed` (default None: the setting is off unless given)."""
    return _field(Setting("whole number", label, help, default, whole=allowed))


def seconds(label: str, help: str, default: float, minimum: float = 0) -> Any:
    """A duration in seconds, at least `minimum`; fractions allowed."""
    return _field(Setting("number", label, help, default, minimum=minimum))


def boolean(label: str, help: str, default: bool) -> Any:
    return _field(Setting("boolean", label, help, default))
