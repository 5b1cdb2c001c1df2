"""`acumatica-sandbox`: serve the Acumatica sandbox from the command line until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from airflow_provider_acumatica.sandbox.server import make_server
from airflow_provider_acumatica.sandbox.settings import (
    ENDPOINT_NAME,
    ENDPOINT_VERSIONS,
    SANDBOX_USER,
    SandboxSettings,
    sandbox_client_id,
)


def _positive_or_none(text: str) -> int | None:
    value = int(text)
    return None if value <= 0 else value


def parser() -> argparse.ArgumentParser:
    defaults = SandboxSettings()
    cli = argparse.ArgumentParser(
        prog="acumatica-sandbox",
        description="Serve an Acumatica stand-in over HTTP for tests, demos and offline DAG development.",
    )
    cli.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    cli.add_argument("--port", type=int, default=8777, help="port to listen on; 0 picks a free one (default 8777)")
    cli.add_argument("--tenants", default=",".join(defaults.tenants), help="comma-separated tenant names")
    cli.add_argument(
        "--rows", type=int, default=defaults.rows, help="size of the large tables (TimeEntry, ProjectTransaction)"
    )
    cli.add_argument("--seed", type=int, default=defaults.seed, help="seed of the generated data")
    cli.add_argument(
        "--profile-timezone", default=defaults.profile_timezone, help="IANA zone date-times are rendered in"
    )
    cli.add_argument("--naive-datetimes", action="store_true", help="render local wall time without an offset")
    cli.add_argument("--latency-ms", type=int, default=0, help="delay added to every API answer")
    cli.add_argument(
        "--ms-per-record",
        type=float,
        default=0.0,
        help="server work per record of a list answer, spent holding the request's concurrency slot",
    )
    cli.add_argument("--token-ttl", type=int, default=defaults.token_ttl, help="OAuth access-token lifetime in seconds")
    cli.add_argument(
        "--max-sessions", type=int, default=defaults.max_sessions, help="licence limit of open API sessions"
    )
    cli.add_argument(
        "--requests-per-minute", type=_positive_or_none, default=None, help="licence limit per minute (0: none)"
    )
    cli.add_argument(
        "--max-concurrent", type=_positive_or_none, default=None, help="licence limit of concurrent requests (0: none)"
    )
    cli.add_argument("--redirect-uri", action="append", default=None, help="allowed OAuth redirect URI (repeatable)")
    cli.add_argument(
        "--max-page-size",
        type=_positive_or_none,
        default=None,
        help="at most this many records per answer, whatever $top asks (0: no cap)",
    )
    cli.add_argument(
        "--session-idle-seconds",
        type=int,
        default=defaults.session_idle_seconds,
        help="idle time after which a session expires",
    )
    return cli


def settings_from(arguments: argparse.Namespace) -> SandboxSettings:
    return SandboxSettings(
        tenants=tuple(name.strip() for name in arguments.tenants.split(",") if name.strip()),
        rows=arguments.rows,
        seed=arguments.seed,
        profile_timezone=arguments.profile_timezone,
        naive_datetimes=arguments.naive_datetimes,
        latency_ms=arguments.latency_ms,
        ms_per_record=arguments.ms_per_record,
        token_ttl=arguments.token_ttl,
        max_sessions=arguments.max_sessions,
        requests_per_minute=arguments.requests_per_minute,
        max_concurrent=arguments.max_concurrent,
        session_idle_seconds=arguments.session_idle_seconds,
        max_page_size=arguments.max_page_size,
        redirect_uris=tuple(arguments.redirect_uri or SandboxSettings().redirect_uris),
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        settings = settings_from(arguments)
    except ValueError as error:
        print(f"acumatica-sandbox: {error}", file=sys.stderr)
        return 2
    _, server = make_server(settings, arguments.host, arguments.port)
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    print(f"Acumatica sandbox serving {url}", flush=True)
    print(
        f"  REST:   {url}/entity/{ENDPOINT_NAME}/{ENDPOINT_VERSIONS[-2]}/TimeEntry  (versions {', '.join(ENDPOINT_VERSIONS)})"
    )
    print(
        f"  Sign in as {SANDBOX_USER!r} with the password in SANDBOX_PASSWORD of airflow_provider_acumatica.sandbox "
        f"(tenants: {', '.join(settings.tenants)})"
    )
    print(
        f"  OAuth client: {sandbox_client_id(settings.tenants[0])} (secret: SANDBOX_CLIENT_SECRET of the same module)"
    )
    print(f"  Control API: {url}/_sandbox/counters   Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
