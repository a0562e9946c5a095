"""HTTP Basic authentication as the original API does it: a till's username and the MD5 hex of its
password. The database keeps only a scrypt hash of that MD5 (store.orgs.hash_secret).

scrypt is slow and memory-hard on purpose (docs/http.md), so a verified pair is cached in the
process for `http_auth_cache_seconds`. The cache key is a SHA-256 of the pair, so the secret itself is never
kept. How many verifications run at once, and how often a client may fail, is http/login.py's job.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from customer_updates.models import tables as t
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import hash_secret, verify_secret

# Longer names or secrets than these are refused before any hashing (an MD5 hex is 32 characters).
MAX_USERNAME = 100
MAX_SECRET = 128


@dataclass(frozen=True)
class Principal:
    """Who is calling: the org comes from here, never from the request body."""

    username: str
    org_id: int
    till_code: str | None
    can_write_customers: bool


class Authenticator:
    def __init__(self, database_url: str, ttl: float, max_entries: int = 10_000) -> None:
        self.database_url = database_url
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._dummy_hash: str | None = None

    @staticmethod
    def acceptable(username: str, secret: str) -> bool:
        """Whether the pair could name a credential at all: printable ASCII of a bounded length. Anything
        else (a NUL, an escape sequence) is refused before the database, which would choke on a NUL."""
        return (0 < len(username) <= MAX_USERNAME and len(secret) <= MAX_SECRET
                and username.isascii() and username.isprintable() and secret.isascii())

    @staticmethod
    def _key(username: str, secret: str) -> bytes:
        return hashlib.sha256(f"{username}\0{secret.lower()}".encode()).digest()

    def cached(self, username: str, secret: str) -> Principal | None:
        """A recently verified principal, without touching the database (cheap: call it on the event loop)."""
        entry = self._cache.get(self._key(username, secret))
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def authenticate(self, username: str, secret: str) -> Principal | None:
        """The principal of a username and MD5 hex, or None. Blocking: run it in a thread."""
        if not self.acceptable(username, secret):
            return None
        found = self.cached(username, secret)
        if found is not None:
            return found
        with session_scope(self.database_url) as session:
            row = session.get(t.Credential, username)
            principal = Principal(row.username, row.org_id, row.till_code, bool(row.can_write_customers)) \
                if row is not None else None
            stored = row.password_hash if row is not None else self._dummy()
        # An unknown username costs the same scrypt as a wrong password: timing tells nothing.
        if not verify_secret(secret, stored) or principal is None:
            return None
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[self._key(username, secret)] = (time.monotonic() + self.ttl, principal)
        return principal

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_secret("0" * 32)
        return self._dummy_hash

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
