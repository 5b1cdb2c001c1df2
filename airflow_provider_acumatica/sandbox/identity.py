"""The OAuth2 identity server: discovery, authorization code (registered redirect URIs, state echoed, PKCE checked
when sent, single-use codes), password grant, ROTATING refresh tokens (the old one dies at once; reuse -> 400
invalid_grant) and revocation (RFC 7009). Tokens are bound to the client's tenant; every token refreshed from one
offline_access grant belongs to that grant's chain, which uses one licence session (see sessions)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from airflow_provider_acumatica.sandbox.counters import Counters
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.responses import Response, empty, json_response
from airflow_provider_acumatica.sandbox.sessions import BearerSeat
from airflow_provider_acumatica.sandbox.settings import (
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SandboxSettings,
    sandbox_client_id,
)

SCOPES = ("api", "offline_access", "api:concurrent_access")


@dataclass
class _Grant:
    """What an access token, refresh token or authorization code stands for."""

    tenant: str
    client_id: str
    scope: str
    expires_at: datetime
    redirect_uri: str = ""
    challenge: str | None = None
    challenge_method: str = "plain"
    chain: str = ""


def _oauth_error(error: str, description: str, status: int = 400) -> ApiError:
    return ApiError(status, description, body={"error": error, "error_description": description})


class IdentityServer:
    """Issues and checks tokens; `now` always comes from the sandbox clock."""

    def __init__(self, settings: SandboxSettings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters
        self._clients = {sandbox_client_id(tenant).lower(): tenant for tenant in settings.tenants}
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def route(self, method: str, path: str, params: dict, headers, body: bytes, now: datetime, url: str) -> Response:
        """Answer a request under /identity/."""
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if method == "POST" else {}
        if path == "/identity/.well-known/openid-configuration" and method == "GET":
            return json_response(self.discovery(url))
        if path == "/identity/connect/authorize" and method in ("GET", "POST"):
            return empty(302, [("Location", self.authorize({**params, **form}, now))])
        if path == "/identity/connect/token" and method == "POST":
            answer = self.token(form, headers.get("Authorization", ""), now)
            return json_response(answer, headers=[("Cache-Control", "no-store")])
        if path == "/identity/connect/revocation" and method == "POST":
            self.revoke(form, headers.get("Authorization", ""))
            return empty(200)
        raise ApiError(404, f"The identity resource {method} {path} is not found.")

    def discovery(self, url: str) -> dict:
        """The discovery document: only what this server serves (no id_token, userinfo or end-session)."""
        issuer = f"{url}/identity"
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/connect/authorize",
            "token_endpoint": f"{issuer}/connect/token",
            "revocation_endpoint": f"{issuer}/connect/revocation",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "password", "refresh_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }

    def authorize(self, params: dict, now: datetime) -> str:
        """The redirect Location for an authorization request; the sandbox user is taken as signed in and
        consenting. ApiError(400) when the client or redirect URI is not registered (no redirect then)."""
        tenant = self._clients.get(params.get("client_id", "").lower())
        if tenant is None:
            raise _oauth_error("invalid_client", f"Unknown client_id {params.get('client_id')!r}")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.settings.redirect_uris:
            raise _oauth_error("invalid_request", f"redirect_uri {redirect_uri!r} is not registered for this client")
        answer = {"state": params["state"]} if "state" in params else {}
        method = params.get("code_challenge_method", "plain")
        if params.get("response_type") != "code":
            answer.update(error="unsupported_response_type")
        elif not self._scope_ok(params.get("scope", "api")):
            answer.update(error="invalid_scope")
        elif "code_challenge" in params and method not in ("plain", "S256"):
            answer.update(error="invalid_request", error_description="code_challenge_method must be S256 or plain")
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Grant(
                    tenant,
                    params["client_id"],
                    params.get("scope", "api"),
                    now + timedelta(seconds=self.settings.authorization_code_ttl),
                    redirect_uri,
                    params.get("code_challenge"),
                    method,
                )
            answer = {"code": code, **answer, "scope": params.get("scope", "api")}
        return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(answer)}"

    def token(self, form: dict, authorization: str, now: datetime) -> dict:
        """The token endpoint; raises ApiError(400) with an OAuth error body when refused."""
        client_id, tenant = self._client(form, authorization)
        grant_type = form.get("grant_type")
        if grant_type == "password":
            if form.get("username", "").split("@")[0] != SANDBOX_USER or form.get("password") != SANDBOX_PASSWORD:
                raise _oauth_error("invalid_grant", "invalid_username_or_password")
            scope = form.get("scope", "api")
            if not self._scope_ok(scope):
                raise _oauth_error("invalid_scope", f"unknown scope in {scope!r}")
            return self._issue(tenant, client_id, scope, now)
        if grant_type == "authorization_code":
            return self._issue(tenant, client_id, self._redeem_code(form, client_id, now), now)
        if grant_type == "refresh_token":
            return self._refresh_grant(form, client_id, tenant, now)
        raise _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def seat_of(self, access_token: str, now: datetime) -> BearerSeat | None:
        """The licence session an access token uses; None when the token is unknown, expired or revoked. With
        offline_access it is its chain's; with api:concurrent_access one per request; else the token's own,
        closing when the token expires."""
        grant = self._access.get(access_token)
        if grant is None or grant.expires_at <= now:
            return None
        scopes = grant.scope.split()
        if "api:concurrent_access" in scopes:
            return BearerSeat(grant.tenant, "", per_request=True)
        if "offline_access" in scopes:
            return BearerSeat(grant.tenant, f"chain:{grant.chain}")
        return BearerSeat(grant.tenant, f"token:{grant.chain}", ends_at=grant.expires_at)

    def revoke(self, form: dict, authorization: str) -> None:
        """RFC 7009: revoke a refresh token (its whole chain: every access token refreshed from its grant) or an
        access token; an unknown token is no error. The chain's licence session stays open until it is signed out
        or expires."""
        client_id, _ = self._client(form, authorization)
        token = form.get("token")
        if not token:
            raise _oauth_error("invalid_request", "the token to revoke is missing")
        with self._lock:
            grant = self._refresh.get(token) or self._access.get(token)
            if grant is None:
                return
            if grant.client_id.lower() != client_id.lower():
                raise _oauth_error("invalid_request", "the token was not issued to this client")
            if token in self._access:
                del self._access[token]
                return
            for store in (self._refresh, self._access):
                for key in [key for key, other in store.items() if other.chain == grant.chain]:
                    del store[key]
        self.counters.add("revocations")

    def _client(self, form: dict, authorization: str) -> tuple[str, str]:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except ValueError:
                decoded = ":"
            client_id, _, secret = decoded.partition(":")
        tenant = self._clients.get(client_id.lower())
        if tenant is None or secret != SANDBOX_CLIENT_SECRET:
            raise _oauth_error("invalid_client", "Unknown client or wrong client secret")
        return client_id, tenant

    def _scope_ok(self, scope: str) -> bool:
        return all(part in SCOPES for part in scope.split())

    def _redeem_code(self, form: dict, client_id: str, now: datetime) -> str:
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at <= now or grant.client_id.lower() != client_id.lower():
            self.counters.add("invalid_grant")
            raise _oauth_error("invalid_grant", "The authorization code is invalid, expired or already used")
        if form.get("redirect_uri") != grant.redirect_uri:
            self.counters.add("invalid_grant")
            raise _oauth_error("invalid_grant", "redirect_uri does not match the authorization request")
        if grant.challenge is not None and not _pkce_ok(grant, form.get("code_verifier")):
            self.counters.add("invalid_grant")
            raise _oauth_error("invalid_grant", "PKCE code_verifier does not match the code_challenge")
        return grant.scope

    def _refresh_grant(self, form: dict, client_id: str, tenant: str, now: datetime) -> dict:
        with self._lock:
            grant = self._refresh.pop(form.get("refresh_token", ""), None)
        if grant is None or grant.expires_at <= now or grant.client_id.lower() != client_id.lower():
            self.counters.add("invalid_grant")
            raise _oauth_error("invalid_grant", "invalid_grant")
        self.counters.add("token_refreshes")
        return self._issue(
            grant.tenant, client_id, grant.scope, now, chain=grant.chain, chain_expires_at=grant.expires_at
        )

    def _issue(
        self,
        tenant: str,
        client_id: str,
        scope: str,
        now: datetime,
        chain: str | None = None,
        chain_expires_at: datetime | None = None,
    ) -> dict:
        """New tokens; a refresh continues its grant's `chain`, a new grant starts one."""
        access = secrets.token_urlsafe(32)
        chain = chain or secrets.token_urlsafe(16)
        answer = {"access_token": access, "expires_in": self.settings.token_ttl, "token_type": "Bearer", "scope": scope}
        with self._lock:
            self._access[access] = _Grant(
                tenant, client_id, scope, now + timedelta(seconds=self.settings.token_ttl), chain=chain
            )
            if "offline_access" in scope.split():
                refresh = secrets.token_urlsafe(32)
                expires = chain_expires_at or now + timedelta(seconds=self.settings.refresh_token_ttl)
                self._refresh[refresh] = _Grant(tenant, client_id, scope, expires, chain=chain)
                answer["refresh_token"] = refresh
        return answer


def _pkce_ok(grant: _Grant, verifier: str | None) -> bool:
    if not verifier:
        return False
    if grant.challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == grant.challenge
    return verifier == grant.challenge
