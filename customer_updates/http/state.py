"""What one ingress process holds: settings, the org cache, verified credentials, the login guard, a producer."""

from __future__ import annotations

import threading

import redis

from customer_updates.async_producer import AsyncProducer
from customer_updates.http.auth import Authenticator
from customer_updates.http.login import LoginGuard
from customer_updates.producer import Producer
from customer_updates.settings import Settings
from customer_updates.store.orgs import OrgCache


class Ingress:
    """Made by the app factory; nothing here connects until the first request needs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.orgs = OrgCache(settings.org_cache_seconds)
        self.auth = Authenticator(settings.database_url, settings.http_auth_cache_seconds)
        self.login = LoginGuard(self.auth, settings)
        self._producer: Producer | None = None
        self._async_producer: AsyncProducer | None = None
        self._lock = threading.Lock()

    @property
    def producer(self) -> Producer:
        # Routes run in a thread pool: build the producer (and its Celery app) once.
        with self._lock:
            if self._producer is None:
                self._producer = Producer(self.settings)
                self._producer.redis  # noqa: B018 (made here, under the lock; it connects on first use)
            return self._producer

    @property
    def async_producer(self) -> AsyncProducer:
        """What the update route enqueues with: concurrent requests share round trips to Redis."""
        with self._lock:
            if self._async_producer is None:
                self._async_producer = AsyncProducer(self.settings)
            return self._async_producer

    @property
    def redis(self) -> redis.Redis:
        return self.producer.redis

    async def aclose(self) -> None:
        """Close from the event loop: the async producer's sends and connections belong to it."""
        with self._lock:
            producer, self._async_producer = self._async_producer, None
        if producer is not None:
            await producer.close()
        self.close()

    def close(self) -> None:
        self.login.close()
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None
