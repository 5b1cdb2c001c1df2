"""Authorization requests started from the Airflow UI: a signed, expiring, single-use `state` per request.

The `state` sent to Acumatica is signed with the API server's `[api] secret_key` (itsdangerous) and names
the connection, the Airflow user and a random nonce; it expires after STATE_TTL_SECONDS. The PKCE verifier
never travels: it waits, encrypted with the token store's cipher, in a row of `acumatica_oauth_flows` in the
connection's token store database (shared by every API server process that shares the store), and the
callback claims that row once — a replayed `state` finds it claimed. The row then records who connected
the chain and when, which the Acumatica page shows (never a secret).
"""

from __future__ import annotations

import dataclasses
import secrets
import time

import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from airflow_provider_acumatica.client.tokens import TokenStore

STATE_TTL_SECONDS = 600
FLOWS_TABLE = "acumatica_oauth_flows"
_SALT = "acumatica-oauth2-connect"

_metadata = sa.MetaData()
_flows = sa.Table(
    FLOWS_TABLE,
    _metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("chain_key", sa.String(64), nullable=False, index=True),
    sa.Column("conn_id", sa.String(250), nullable=False),
    sa.Column("airflow_user", sa.String(250), nullable=False),
    sa.Column("code_verifier", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float),
    sa.Column("connected_at", sa.Float),
)


class FlowRefused(Exception):
    """The callback's state cannot be trusted; `reason` is one of tampered, expired, replayed, unknown."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class SignedState:
    """What a verified state says: which connection, for which Airflow user, which flow."""

    conn_id: str
    user: str
    nonce: str


@dataclasses.dataclass(frozen=True)
class Connected:
    """The last chain a user connected from the UI: who and when (seconds since the epoch)."""

    user: str
    at: float


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


class StateSigner:
    """Signs and verifies states with the API server's secret key."""

    def __init__(self, secret_key: str, ttl_seconds: int = STATE_TTL_SECONDS) -> None:
        if not secret_key:
            raise ValueError("[api] secret_key is empty: set it (the same on every API server) to connect from the UI")
        self._serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)
        self.ttl_seconds = ttl_seconds

    def sign(self, conn_id: str, user: str, nonce: str) -> str:
        return self._serializer.dumps({"c": conn_id, "u": user, "n": nonce})

    def verify(self, state: str | None) -> SignedState:
        if not state:
            raise FlowRefused("tampered", "the callback carries no state")
        try:
            payload = self._serializer.loads(state, max_age=self.ttl_seconds)
        except SignatureExpired:
            raise FlowRefused(
                "expired", f"this sign-in was started more than {self.ttl_seconds // 60} minutes ago and has expired"
            ) from None
        except BadSignature:
            raise FlowRefused(
                "tampered", "the state does not carry this Airflow's signature (altered, or from another server)"
            ) from None
        return SignedState(payload["c"], payload["u"], payload["n"])


class FlowStore:
    """Pending and finished authorization requests in the token store's database."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store
        _metadata.create_all(store.engine, checkfirst=True)

    def start(self, nonce: str, chain_key: str, conn_id: str, user: str, code_verifier: str) -> None:
        """Record a new request under its nonce (see `new_nonce`)."""
        sealed = self._store.cipher.encrypt(code_verifier.encode()).decode()
        with self._store.engine.begin() as connection:
            connection.execute(
                _flows.insert().values(
                    nonce=nonce,
                    chain_key=chain_key,
                    conn_id=conn_id,
                    airflow_user=user,
                    code_verifier=sealed,
                    started_at=time.time(),
                )
            )

    def claim(self, signed: SignedState) -> str:
        """Mark the request used, once; return its PKCE verifier (FlowRefused when replayed or unknown)."""
        with self._store.engine.begin() as connection:
            row = connection.execute(sa.select(_flows).where(_flows.c.nonce == signed.nonce).with_for_update()).first()
            if row is None or row.conn_id != signed.conn_id or row.airflow_user != signed.user:
                raise FlowRefused("unknown", "no sign-in was started with this state here")
            if row.claimed_at is not None:
                raise FlowRefused(
                    "replayed", "this sign-in's answer was already used once (a reloaded or replayed callback)"
                )
            connection.execute(_flows.update().where(_flows.c.nonce == signed.nonce).values(claimed_at=time.time()))
        return self._store.cipher.decrypt(row.code_verifier.encode()).decode()

    def finish(self, nonce: str) -> float:
        """The chain is stored: record when (returned) and forget the verifier."""
        now = time.time()
        with self._store.engine.begin() as connection:
            connection.execute(
                _flows.update().where(_flows.c.nonce == nonce).values(connected_at=now, code_verifier="")
            )
        return now

    def last_connected(self, chain_key: str) -> Connected | None:
        query = (
            sa.select(_flows.c.airflow_user, _flows.c.connected_at)
            .where(_flows.c.chain_key == chain_key, _flows.c.connected_at.is_not(None))
            .order_by(_flows.c.connected_at.desc())
            .limit(1)
        )
        with self._store.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else Connected(row.airflow_user, row.connected_at)
