"""OAuth2 tokens of the iSeller sandbox.

Public facts: ``POST /oauth/token`` with ``grant_type=client_credentials`` (or ``refresh_token``)
and ``client_id``/``client_secret`` answers ``access_token``, ``token_type: bearer``,
``expires_in`` (about 14 days), ``refresh_token`` and ``resource_url`` (the store's base URL); an API
call with an expired token gets HTTP 401 and the client refreshes. The sandbox adds
``POST /_sandbox/tokens/expire`` to make every access token expire at once, and
``GET /_sandbox/tokens/issued``: every access and refresh token it ever handed out (the secret-leak
scan of the end-to-end tests looks for each of them in logs and databases).

Assumption: a refresh token is single-use (refreshing rotates both tokens) and never expires.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TOKEN_TTL = 14 * 24 * 3600


@dataclass
class IssuedToken:
    """An access token, the client it was issued to, and when it stops working."""

    access_token: str
    refresh_token: str
    client_id: str
    expires_at: float


class TokenStore:
    """Client credentials check, token issue/refresh/expiry."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        ttl_seconds: int = DEFAULT_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._access: dict[str, IssuedToken] = {}
        self._refresh: dict[str, IssuedToken] = {}
        #: Every pair ever issued, oldest first (refreshed or expired ones included).
        self.issued: list[IssuedToken] = []

    def check_client(self, client_id: str | None, client_secret: str | None) -> bool:
        """Whether the client credentials are the sandbox's (compared in constant time)."""
        return bool(client_id and client_secret) and secrets.compare_digest(
            f"{client_id}\n{client_secret}", f"{self.client_id}\n{self.client_secret}"
        )

    def issue(self, client_id: str) -> IssuedToken:
        """A new access/refresh token pair."""
        token = IssuedToken(
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            client_id=client_id,
            expires_at=self.clock() + self.ttl_seconds,
        )
        self._access[token.access_token] = token
        self._refresh[token.refresh_token] = token
        self.issued.append(token)
        return token

    def refresh(self, refresh_token: str) -> IssuedToken | None:
        """Swap a refresh token for a new pair; the old pair stops working. None if unknown."""
        old = self._refresh.pop(refresh_token, None)
        if old is None:
            return None
        self._access.pop(old.access_token, None)
        return self.issue(old.client_id)

    def valid(self, access_token: str) -> bool:
        """Whether an access token is known and not expired."""
        token = self._access.get(access_token)
        return token is not None and token.expires_at > self.clock()

    def expire_all(self) -> int:
        """Make every access token expire now (refresh tokens keep working). Returns how many."""
        now = self.clock()
        count = 0
        for token in self._access.values():
            if token.expires_at > now:
                count += 1
            token.expires_at = now
        return count
