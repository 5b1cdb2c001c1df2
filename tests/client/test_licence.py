"""Licence leases: the requests leased on one instance never exceed its licence, across hooks, threads and
processes; a lease of a killed holder lapses; a waiter gives up after licence_wait_seconds saying so."""

from __future__ import annotations

import logging
import threading

import pytest

from airflow_provider_acumatica.client.errors import AcumaticaConfigError
from airflow_provider_acumatica.client.licence import LicenceLeases, LicenceWaitError, _leases
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

INSTANCE = "https://company.acumatica.com"
LOG = logging.getLogger(__name__)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def leases(request, tmp_path):
    if request.param == "sqlite":
        return LicenceLeases(f"sqlite:///{tmp_path / 'tokens.db'}", LOG)
    return LicenceLeases(request.getfixturevalue("postgres_url"), LOG)


def test_a_lease_that_does_not_fit_waits_for_a_release(leases):
    instance = f"{INSTANCE}/{id(leases)}-wait"
    first = leases.acquire(instance, 2, licence=3, wait_seconds=0)
    with pytest.raises(LicenceWaitError, match=r"licence_wait_seconds \(0\)"):
        leases.acquire(instance, 2, licence=3, wait_seconds=0)
    got = []
    waiter = threading.Thread(target=lambda: got.append(leases.acquire(instance, 2, licence=3, wait_seconds=60)))
    waiter.start()
    first.release()
    waiter.join(60)
    assert got and leases.in_use(instance) == 2
    got[0].release()
    assert leases.in_use(instance) == 0


def test_the_lease_of_a_killed_holder_lapses(leases):
    instance = f"{INSTANCE}/{id(leases)}-lapse"
    killed = leases.acquire(instance, 3, licence=3, wait_seconds=0)
    killed._released.set()  # its renewals stop, as when its process is killed
    with leases.engine.begin() as connection:  # ... and its last renewal is older than the lease
        connection.execute(_leases.update().where(_leases.c.holder == killed.holder).values(expires_at=0))
    leases.acquire(instance, 3, licence=3, wait_seconds=0).release()


def test_hooks_of_several_workers_never_exceed_the_licence(new_sandbox, acumatica_connection, tmp_path):
    sandbox = new_sandbox(rows=400, tenants=("Company",), max_concurrent=3, latency_ms=20)
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    # three connections stand for three workers: each has its own per-process cap of 2 requests at once
    conn_ids = [
        acumatica_connection(
            sandbox,
            conn_id=f"worker{index}",
            max_concurrent_requests=2,
            licence_concurrent_requests=3,
            token_store=store,
        )
        for index in range(3)
    ]
    errors = []

    def work(conn_id: str) -> None:
        try:
            with AcumaticaHook(conn_id) as hook:
                pages = [
                    threading.Thread(
                        target=hook.get_entity_page, args=("TimeEntry",), kwargs={"top": 20, "skip": 20 * page}
                    )
                    for page in range(6)
                ]
                for page in pages:
                    page.start()
                for page in pages:
                    page.join()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(conn_id,)) for conn_id in conn_ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    counters = sandbox.control.counters()
    assert not errors
    assert counters["peak_concurrency"] <= 3 and counters["throttled_429"] == 0
    assert counters["logins"] == counters["logouts"] and counters["open_sessions"] == 0
    assert LicenceLeases(store, LOG).in_use(sandbox.url) == 0


def test_a_share_larger_than_the_licence_is_a_setting_error(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    conn_id = acumatica_connection(sandbox, licence_concurrent_requests=3)
    with pytest.raises(AcumaticaConfigError, match="max_concurrent_requests"):
        AcumaticaHook(conn_id, max_concurrent_requests=4)
