"""Durable, shared store of OAuth token chains, so that rotating refresh tokens survive parallel workers.

Why a SQL table and not an Airflow Variable: Acumatica rotates refresh tokens (each refresh kills the
previous one), so two workers refreshing at once break the chain for good unless refreshes are serialized
and the newest token is written durably before anyone else reads it. A Variable has no lock; a database row
has one. The store is any SQLAlchemy URL (extra `token_store`; default a SQLite file under $AIRFLOW_HOME,
fine for one machine; use the metadata PostgreSQL or another shared database across machines). One row per
chain (instance URL, tenant, client id); a refresh holds the row lock (`SELECT ... FOR UPDATE`, and
`BEGIN IMMEDIATE` on SQLite) from reading the old refresh token to committing the new one. Tokens are
encrypted at rest with Fernet (Airflow's [core] fernet_key when set, else a key derived from the client
secret). The connection's `refresh_token` extra is only the seed: the row keeps a hash of it, and a new
seed (the user re-authorized) restarts the chain from it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

TABLE_NAME = "acumatica_oauth_tokens"
_metadata = sa.MetaData()
_tokens = sa.Table(
    TABLE_NAME,
    _metadata,
    sa.Column("chain_key", sa.String(64), primary_key=True),
    sa.Column("seed_hash", sa.String(64)),
    sa.Column("refresh_token", sa.Text),
    sa.Column("access_token", sa.Text),
    sa.Column("issued_at", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("refreshes", sa.Integer, nullable=False, default=0),
)


class Cipher(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, token: bytes) -> bytes: ...


def derived_cipher(secret: str, context: str) -> Cipher:
    """A Fernet whose key is derived from `secret` (the client secret) and `context`."""
    digest = hashlib.sha256(f"acumatica-token-store|{context}|{secret}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seed_hash(seed: str | None) -> str | None:
    return hashlib.sha256(seed.encode()).hexdigest() if seed else None


@dataclasses.dataclass
class TokenChain:
    """The decrypted row of one chain, as read under its lock; edit it and the store writes it back."""

    seed_hash: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    issued_at: float = 0.0
    expires_at: float = 0.0
    refreshes: int = 0

    def access_valid(self, now: float | None = None) -> bool:
        """True while the access token is not within its renewal margin (a quarter of its life, <= 60 s)."""
        if not self.access_token:
            return False
        margin = min(60.0, (self.expires_at - self.issued_at) / 4)
        return (now or time.time()) < self.expires_at - margin


@dataclasses.dataclass(frozen=True)
class ChainStatus:
    """What may be shown of a chain: whether it holds a refresh token, and when it was last granted."""

    connected: bool
    issued_at: float
    expires_at: float
    refreshes: int


class TokenStore:
    """Token chains in one SQL table; `locked(key)` serializes work on a chain across processes."""

    _engines: dict[str, sa.Engine] = {}
    _engines_lock = threading.Lock()

    def __init__(self, url: str, cipher: Cipher) -> None:
        self.url = url
        self.cipher = cipher
        self.engine = self._engine(url)

    @classmethod
    def _engine(cls, url: str) -> sa.Engine:
        with cls._engines_lock:
            engine = cls._engines.get(url)
            if engine is None:
                engine = _create_engine(url)
                _create_table(engine)
                cls._engines[url] = engine
            return engine

    @contextlib.contextmanager
    def locked(self, chain_key: str) -> Iterator[TokenChain]:
        """Hold the chain's row lock; yield it decrypted; write it back when the block ends without error."""
        self._ensure_row(chain_key)
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(_tokens).where(_tokens.c.chain_key == chain_key).with_for_update()).one()
            chain = self._decrypt(row)
            before = dataclasses.replace(chain)
            yield chain
            if chain != before:
                connection.execute(
                    _tokens.update().where(_tokens.c.chain_key == chain_key).values(**self._encrypt(chain))
                )

    def read(self, chain_key: str) -> TokenChain | None:
        """The chain as stored now, without locking (for inspection and tests)."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(_tokens).where(_tokens.c.chain_key == chain_key)).first()
        return None if row is None else self._decrypt(row)

    def status(self, chain_key: str) -> ChainStatus | None:
        """The chain's metadata, nothing decrypted (for status pages); None when it was never started."""
        columns = (_tokens.c.refresh_token.is_not(None), _tokens.c.issued_at, _tokens.c.expires_at, _tokens.c.refreshes)
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(*columns).where(_tokens.c.chain_key == chain_key)).first()
        if row is None:
            return None
        return ChainStatus(bool(row[0]), row[1] or 0.0, row[2] or 0.0, row[3] or 0)

    def _ensure_row(self, chain_key: str) -> None:
        with self.engine.connect() as connection:
            exists = connection.execute(sa.select(_tokens.c.chain_key).where(_tokens.c.chain_key == chain_key)).first()
        if exists:
            return
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as connection:
            connection.execute(_tokens.insert().values(chain_key=chain_key, refreshes=0))

    def _decrypt(self, row) -> TokenChain:
        return TokenChain(
            seed_hash=row.seed_hash,
            refresh_token=self._open(row.refresh_token),
            access_token=self._open(row.access_token),
            issued_at=row.issued_at or 0.0,
            expires_at=row.expires_at or 0.0,
            refreshes=row.refreshes or 0,
        )

    def _encrypt(self, chain: TokenChain) -> dict:
        values = dataclasses.asdict(chain)
        values["refresh_token"] = self._seal(chain.refresh_token)
        values["access_token"] = self._seal(chain.access_token)
        return values

    def _seal(self, value: str | None) -> str | None:
        return None if value is None else self.cipher.encrypt(value.encode()).decode()

    def _open(self, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return self.cipher.decrypt(value.encode()).decode()
        except InvalidToken:
            return None  # written under another key: treated as no token, the chain restarts


def _create_table(engine: sa.Engine) -> None:
    """Create the table unless it exists; another process creating it at the same moment is fine."""
    try:
        _metadata.create_all(engine, checkfirst=True)
    except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
        if not sa.inspect(engine).has_table(TABLE_NAME):
            raise


def _create_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" listener start transactions

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take SQLite's write lock before reading the chain

    return engine
