"""`airflow-acumatica check`: is this connection usable? Sign in, list endpoints, read one record, sign out.

And the check DataSync can only ask users to do by hand: Acumatica renders date-times in the API user's
profile time zone; when the instance sends them with an offset, that offset is compared with the
connection's `profile_timezone` at the same instants. A mismatch would shift every naive date-time (and a
watermark) by hours, so it fails the check, naming both zones.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TextIO

from airflow_provider_acumatica.cli.common import CommandError, open_hook, say
from airflow_provider_acumatica.client.errors import AcumaticaError

DEFAULT_ENTITY = "Project"
TIMESTAMP_FIELDS = ("LastModifiedDateTime", "LastModified")
SAMPLE = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", required=True, help="the Airflow connection to check")
    parser.add_argument(
        "--entity", default=DEFAULT_ENTITY, help=f"the entity to read one record of (default {DEFAULT_ENTITY})"
    )


def run(arguments: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    hook = open_hook(arguments.conn_id)
    settings = hook.settings
    with hook:
        client = hook.get_conn()
        try:
            say(
                stdout,
                f"Connection {arguments.conn_id!r}: tenant {settings.tenant} at {settings.instance_url} "
                f"({settings.auth_type}).",
            )
            _check_endpoint(client.list_endpoints(), settings.endpoint_name, settings.endpoint_version, stdout)
            records = hook.get_entity_page(arguments.entity, top=1)
            say(
                stdout,
                f"Read {len(records)} {arguments.entity} record (of endpoint {settings.endpoint_name} "
                f"{settings.endpoint_version}).",
            )
            stamps = _offset_stamps(client, arguments.entity)
        except AcumaticaError as error:
            raise CommandError(f"Check failed: {client.masker.redact(str(error))}") from None
    say(stdout, "Signed out.")
    mismatch = zone_mismatch(stamps, settings.profile_timezone, settings.zone, _user(settings))
    if mismatch:
        raise CommandError(
            f"Check failed: {mismatch} Set the connection's profile_timezone to the zone of the "
            "user's profile in Acumatica (My Profile > Time Zone), or change the profile."
        )
    if stamps:
        say(stdout, f"Date-times come with offsets that match profile_timezone {settings.profile_timezone}.")
    else:
        say(
            stdout,
            f"Date-times come without an offset: they are read as wall time in {settings.profile_timezone}; "
            "make sure that is the API user's profile time zone.",
        )
    say(stdout, "OK")
    return 0


def _check_endpoint(answer, name: str, version: str, stdout: TextIO) -> None:
    served = [
        (item.get("name"), item.get("version"))
        for item in (answer or {}).get("endpoints", [])
        if isinstance(item, dict)
    ]
    say(stdout, "Endpoints: " + (", ".join(f"{n} {v}" for n, v in served) or "none listed"))
    if served and (name, version) not in served:
        versions = ", ".join(v for n, v in served if n == name) or "none"
        raise CommandError(
            f"Check failed: the instance does not serve endpoint {name} {version} (versions of "
            f"{name}: {versions}); set the connection's endpoint_name / endpoint_version."
        )


def _offset_stamps(client, entity: str) -> list[datetime]:
    """The instance's own rendering of a few modification timestamps: those that carry an offset."""
    for field in TIMESTAMP_FIELDS:
        try:
            reply = client.transport.request(
                "GET",
                client.entity_path(entity),
                authenticator=client.authenticator,
                params={"$select": field, "$top": str(SAMPLE)},
            )
        except AcumaticaError:
            continue  # no such field on this entity: try the older name
        stamps = []
        for record in reply.data or []:
            text = ((record or {}).get(field) or {}).get("value")
            if isinstance(text, str):
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
                if parsed.tzinfo is not None:
                    stamps.append(parsed)
        return stamps
    return []


def zone_mismatch(stamps: list[datetime], zone_name: str, zone, user: str) -> str | None:
    """What is wrong when a date-time's offset is not the connection zone's offset at that instant; else None."""
    for stamp in stamps:
        expected = stamp.astimezone(zone).utcoffset()
        if stamp.utcoffset() != expected:
            return (
                f"the profile time zone of {user} looks like {_offset(stamp.utcoffset())} in "
                f"{stamp:%B %Y} ({stamp.isoformat()}); the connection says {zone_name} "
                f"({_offset(expected)} then)."
            )
    return None


def _offset(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _user(settings) -> str:
    return f"user {settings.login}" if settings.login else f"the user who authorized client {settings.client_id}"
