"""Logging in cheaply and boundedly, whoever knocks.

    LoginGuard.login    the principal of a username and MD5 hex, or an ApiError (401, or 429 with Retry-After)

A verified pair in the cache passes at once. Otherwise failed logins are counted per client address and per
username (the `limits` library, a moving window in the process's memory); past either limit the answer is
429 before any hashing. At most `http_auth_max_hashing` scrypt verifications run at once, on threads of their
own (each holds scrypt's memory; a pool thread that ran one keeps it), and at most `http_auth_max_pending`
logins wait for one: beyond that, 429 too. Each refusal is logged with the client address and the username
as sanitised text, never the secret.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from customer_updates.http.auth import Authenticator, Principal
from customer_updates.http.errors import ApiError
from customer_updates.settings import Settings

log = logging.getLogger("customer_updates.http")

# A username in a log line: printable ASCII, at most this long.
SHOWN_USERNAME = 64


def shown(username: str) -> str:
    """The username as a log may show it: control characters and non-ASCII as `?`, truncated."""
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in username[:SHOWN_USERNAME])


class LoginGuard:
    def __init__(self, auth: Authenticator, settings: Settings) -> None:
        self.auth = auth
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_client: RateLimitItem = parse(settings.http_login_failures_per_client)
        self._per_username: RateLimitItem = parse(settings.http_login_failures_per_username)
        self._slots = max(1, settings.http_auth_max_hashing)
        self._max_pending = max(self._slots, settings.http_auth_max_pending)
        self._semaphore = asyncio.Semaphore(self._slots)
        self._pending = 0  # touched on the event loop only
        self._executor: ThreadPoolExecutor | None = None

    async def login(self, username: str, secret: str, client: str) -> Principal:
        found = self.auth.cached(username, secret)
        if found is not None:
            return found
        self._check_limits(username, client)
        if not self.auth.acceptable(username, secret):
            self._failed(username, client, "malformed")
        if self._pending >= self._max_pending:
            self._refuse(429, username, client, "busy", retry_after=1)
        self._pending += 1
        try:
            async with self._semaphore:
                # Failures may have reached a limit while this login waited for a slot.
                self._check_limits(username, client)
                principal = await asyncio.get_running_loop().run_in_executor(
                    self._hashing(), self.auth.authenticate, username, secret)
        finally:
            self._pending -= 1
        if principal is None:
            self._failed(username, client, "unknown username or wrong password")
        return principal

    def _hashing(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._slots, thread_name_prefix="login")
        return self._executor

    def _check_limits(self, username: str, client: str) -> None:
        for item, key in ((self._per_client, ("client", client)), (self._per_username, ("username", username))):
            if not self._limiter.test(item, *key):
                reset = self._limiter.get_window_stats(item, *key).reset_time
                self._refuse(429, username, client, f"too many failed logins of this {key[0]}",
                             retry_after=max(1, math.ceil(reset - time.time())))

    def _failed(self, username: str, client: str, reason: str) -> NoReturn:
        self._limiter.hit(self._per_client, "client", client)
        self._limiter.hit(self._per_username, "username", username)
        self._refuse(401, username, client, reason)

    @staticmethod
    def _refuse(status: int, username: str, client: str, reason: str, retry_after: int | None = None) -> NoReturn:
        log.warning("login refused", extra={"status": status, "username": shown(username), "client": client,
                                            "reason": reason})
        if status == 401:
            raise ApiError.unauthorized("Unauthorized: unknown username or wrong password")
        raise ApiError(429, 429, "Too many requests: too many failed logins; retry later",
                       headers={"Retry-After": str(retry_after or 1)})

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
