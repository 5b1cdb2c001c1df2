"""The OAuth2 / OpenID Connect identity server: discovery, authorization code (registered redirect URIs,
state echoed, PKCE checked when sent, single-use codes), password grant, and ROTATING refresh tokens
(the old one dies at once; reuse -> 400 invalid_grant). Tokens are bound to the client's tenant."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from airflow_provider_acumatica.sandbox.counters import Counters
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.settings import (
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SandboxSettings,
    sandbox_client_id,
)

SCOPES = ("api", "offline_access", "api:concurrent_access", "openid", "profile", "email")


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

    def discovery(self, url: str) -> dict:
        issuer = f"{url}/identity"
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/connect/authorize",
            "token_endpoint": f"{issuer}/connect/token",
            "userinfo_endpoint": f"{issuer}/connect/userinfo",
            "end_session_endpoint": f"{issuer}/connect/endsession",
            "revocation_endpoint": f"{issuer}/connect/revocation",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code", "token", "id_token", "code id_token", "code token", "id_token token"],
            "grant_types_supported": ["authorization_code", "client_credentials", "password", "refresh_token", "implicit", "hybrid"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
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
                self._codes[code] = _Grant(tenant, params["client_id"], params.get("scope", "api"),
                                           now + timedelta(seconds=self.settings.authorization_code_ttl),
                                           redirect_uri, params.get("code_challenge"), method)
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

    def tenant_of(self, access_token: str, now: datetime) -> str | None:
        """The tenant an access token is for; None when unknown or expired."""
        grant = self._access.get(access_token)
        if grant is None or grant.expires_at <= now:
            return None
        return grant.tenant

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
        return self._issue(grant.tenant, client_id, grant.scope, now, chain_expires_at=grant.expires_at)

    def _issue(self, tenant: str, client_id: str, scope: str, now: datetime, chain_expires_at: datetime | None = None) -> dict:
        access = secrets.token_urlsafe(32)
        answer = {"access_token": access, "expires_in": self.settings.token_ttl, "token_type": "Bearer", "scope": scope}
        with self._lock:
            self._access[access] = _Grant(tenant, client_id, scope, now + timedelta(seconds=self.settings.token_ttl))
            if "offline_access" in scope.split():
                refresh = secrets.token_urlsafe(32)
                expires = chain_expires_at or now + timedelta(seconds=self.settings.refresh_token_ttl)
                self._refresh[refresh] = _Grant(tenant, client_id, scope, expires)
                answer["refresh_token"] = refresh
        return answer


def _pkce_ok(grant: _Grant, verifier: str | None) -> bool:
    if not verifier:
        return False
    if grant.challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == grant.challenge
    return verifier == grant.challenge
