"""Leases on an instance's licence, shared by every process that uses it, kept in the token store's database.

A licence allows a few concurrent requests (and API-user seats) per instance, whatever asks: all tasks of all
DAGs, on any number of workers. Each client that talks to the instance first leases as many requests as it may
run at once (its `max_concurrent_requests`, which also caps its sessions) out of the instance's
`licence_concurrent_requests`, and gives them back at close; so the requests in flight never exceed the licence.
A lease is a row (instance, holder, requests, expires_at); a holder renews it on a thread while it lives, so the
lease of a killed worker lapses after LEASE_SECONDS instead of holding the licence for ever. Taking a lease holds a
lock on the instance's row (`SELECT ... FOR UPDATE`; `BEGIN IMMEDIATE` on SQLite), so two workers never both take
the last requests. A client that cannot get its requests within `licence_wait_seconds` fails saying so (as
DataSync's "pool wait time"). Why a table and not Airflow pools alone: see docs/adr/0007-one-licence-per-instance.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid

import sqlalchemy as sa

from airflow_provider_acumatica.client.errors import AcumaticaError
from airflow_provider_acumatica.client.tokens import _create_engine

LEASE_SECONDS = 60.0
"""How long a lease outlives its holder's last renewal (renewed every third of it)."""
_POLL_CAP_SECONDS = 5.0

_metadata = sa.MetaData()
_instances = sa.Table(
    "acumatica_licence",
    _metadata,
    sa.Column("instance_key", sa.String(64), primary_key=True),
)
_leases = sa.Table(
    "acumatica_licence_leases",
    _metadata,
    sa.Column("instance_key", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(120), primary_key=True),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


class LicenceWaitError(AcumaticaError):
    """No share of the licence came free within `licence_wait_seconds`."""


class Lease:
    """A share of an instance's licence, renewed on a daemon thread until `release()`."""

    def __init__(self, engine: sa.Engine, instance_key: str, holder: str, requests: int) -> None:
        self._engine = engine
        self._instance_key = instance_key
        self.holder = holder
        self.requests = requests
        self._released = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="acumatica-licence-lease", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Give the share back (safe to call twice; a failure leaves the lease to lapse by itself)."""
        if self._released.is_set():
            return
        self._released.set()
        with contextlib.suppress(sa.exc.SQLAlchemyError), self._engine.begin() as connection:
            connection.execute(_leases.delete().where(self._row()))

    def _renew(self) -> None:
        while not self._released.wait(LEASE_SECONDS / 3):
            with contextlib.suppress(sa.exc.SQLAlchemyError), self._engine.begin() as connection:
                connection.execute(_leases.update().where(self._row()).values(expires_at=time.time() + LEASE_SECONDS))

    def _row(self):
        return (_leases.c.instance_key == self._instance_key) & (_leases.c.holder == self.holder)


class LicenceLeases:
    """The leases of every instance in one database (any SQLAlchemy URL: the token store's)."""

    _engines: dict[str, sa.Engine] = {}
    _engines_lock = threading.Lock()

    def __init__(self, url: str, log: logging.Logger) -> None:
        self.log = log
        with self._engines_lock:
            if url not in self._engines:
                engine = _create_engine(url)
                with contextlib.suppress(sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
                    _metadata.create_all(engine, checkfirst=True)  # another process creating them too is fine
                self._engines[url] = engine
            self.engine = self._engines[url]

    def acquire(self, instance_url: str, requests: int, *, licence: int, wait_seconds: float) -> Lease:
        """Lease `requests` (at most `licence`) of the `licence` concurrent requests of `instance_url`, waiting up to
        `wait_seconds`."""
        key = hashlib.sha256(instance_url.encode()).hexdigest()
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:120]
        started, delay, warned = time.monotonic(), 0.05, False
        while True:
            in_use = self._try_take(key, holder, requests, licence)
            if in_use is None:
                return Lease(self.engine, key, holder, requests)
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                raise LicenceWaitError(
                    f"Acumatica instance {instance_url}: waited {waited:.0f} s for {requests} of the licence's "
                    f"{licence} concurrent requests, but other tasks or workers held {in_use} throughout. Raise the "
                    f"connection's licence_wait_seconds ({wait_seconds:g}), run fewer tasks at once against this "
                    "instance (its Airflow pool), or lower max_concurrent_requests."
                )
            if not warned:
                self.log.warning(
                    "Acumatica instance %s: %d of the licence's %d concurrent requests are leased by "
                    "other tasks; waiting up to %g s (licence_wait_seconds) for %d",
                    instance_url,
                    in_use,
                    licence,
                    wait_seconds,
                    requests,
                )
                warned = True
            time.sleep(min(delay, wait_seconds - waited))
            delay = min(delay * 2, _POLL_CAP_SECONDS)

    def in_use(self, instance_url: str) -> int:
        """Requests leased now on `instance_url` (lapsed leases excluded)."""
        key = hashlib.sha256(instance_url.encode()).hexdigest()
        with self.engine.connect() as connection:
            return _leased(connection, key)

    def _try_take(self, key: str, holder: str, requests: int, licence: int) -> int | None:
        """Take the lease if it fits (None), else the requests other holders lease now."""
        self._ensure_instance(key)
        with self.engine.begin() as connection:
            connection.execute(sa.select(_instances).where(_instances.c.instance_key == key).with_for_update()).one()
            connection.execute(
                _leases.delete().where((_leases.c.instance_key == key) & (_leases.c.expires_at < time.time()))
            )
            in_use = _leased(connection, key)
            if in_use + requests > licence:
                return in_use
            connection.execute(
                _leases.insert().values(
                    instance_key=key, holder=holder, requests=requests, expires_at=time.time() + LEASE_SECONDS
                )
            )
        return None

    def _ensure_instance(self, key: str) -> None:
        with self.engine.connect() as connection:
            if connection.execute(sa.select(_instances).where(_instances.c.instance_key == key)).first():
                return
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as connection:
            connection.execute(_instances.insert().values(instance_key=key))


def _leased(connection: sa.Connection, key: str) -> int:
    total = connection.execute(
        sa.select(sa.func.coalesce(sa.func.sum(_leases.c.requests), 0)).where(
            (_leases.c.instance_key == key) & (_leases.c.expires_at >= time.time())
        )
    ).scalar_one()
    return int(total)
