"""Per-process resources: settings, Redis client, org cache. Made on first use, never at import, and
reset in each forked worker process (a pooled connection must not be shared across fork)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from customer_updates.settings import Settings, get_settings
from customer_updates.store.db import dispose_engines
from customer_updates.store.orgs import OrgCache


@dataclass
class Runtime:
    settings: Settings
    orgs: OrgCache
    _redis: redis.Redis | None = field(default=None, repr=False)

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.redis_url, socket_timeout=10,
                                               socket_connect_timeout=5, health_check_interval=30)
        return self._redis


_current: Runtime | None = None


def current() -> Runtime:
    global _current
    if _current is None:
        settings = get_settings()
        _current = Runtime(settings=settings, orgs=OrgCache(settings.org_cache_seconds))
    return _current


def reset() -> None:
    """Forget everything process-bound: call after fork, or after changing settings in tests."""
    global _current
    _current = None
    get_settings.cache_clear()
    dispose_engines()
