"""Token store on real SQLite and PostgreSQL: encryption at rest, and a lock that serializes processes."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa

from airflow_provider_acumatica.client.tokens import TABLE_NAME, TokenStore, derived_cipher

CIPHER_ARGS = ("client-secret-value", "chain")


def _increment(url: str, times: int) -> None:
    store = TokenStore(url, derived_cipher(*CIPHER_ARGS))
    for _ in range(times):
        with store.locked("chain") as chain:
            value = int(chain.refresh_token or "0")  # read ... (another process may be waiting here)
            chain.refresh_token = str(value + 1)  # ... then write: lost updates if the lock did not hold


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tokens.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"drop table if exists {TABLE_NAME}"))
    engine.dispose()
    TokenStore._engines.pop(url, None)
    return url


def test_tokens_are_encrypted_at_rest(store_url):
    store = TokenStore(store_url, derived_cipher(*CIPHER_ARGS))
    with store.locked("chain") as chain:
        chain.refresh_token, chain.access_token = "refresh-plain-text", "access-plain-text"
    with sa.create_engine(store_url).connect() as connection:
        row = connection.execute(sa.text(f"select refresh_token, access_token from {TABLE_NAME}")).one()
    assert "plain-text" not in row.refresh_token + row.access_token
    assert store.read("chain").refresh_token == "refresh-plain-text"
    other_key = TokenStore(store_url, derived_cipher("another-secret", "chain"))
    assert other_key.read("chain").refresh_token is None  # unreadable under another key: the chain restarts


def test_a_failed_block_writes_nothing(store_url):
    store = TokenStore(store_url, derived_cipher(*CIPHER_ARGS))
    with pytest.raises(RuntimeError), store.locked("chain") as chain:
        chain.refresh_token = "half-done"
        raise RuntimeError("refresh failed")
    assert store.read("chain").refresh_token is None


def test_lock_serializes_processes(store_url):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment, args=(store_url, 15)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert TokenStore(store_url, derived_cipher(*CIPHER_ARGS)).read("chain").refresh_token == "60"
