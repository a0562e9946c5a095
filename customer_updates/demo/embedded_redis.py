"""A Redis for the demo when none answers: fakeredis's TCP server, in a thread of the demo process.

It speaks the Redis protocol on 127.0.0.1, so a worker in another process uses it like a real Redis:
kombu's Redis transport needs BRPOP, pipelines and MULTI/EXEC, and Lua (EVALSHA) for the lock around
its restore of unacknowledged messages; fakeredis runs Lua with `lupa`. It keeps everything in memory
and is for trying the project, never for production.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from customer_updates.ops.processes import free_port


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING at `url`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """Start with `start()`, stop with `stop()` (also as a context manager)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> str:
        try:
            import lupa  # noqa: F401  (kombu's Redis lock runs a Lua script: without lupa the worker stops)
            from fakeredis import TcpFakeServer
        except ImportError as exc:
            raise RuntimeError(f"the embedded Redis needs fakeredis with Lua support: pip install "
                               f"'fakeredis[lua]' ({exc})") from exc
        self._server = TcpFakeServer((self.host, self.port))
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-redis", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()  # also ends the connection threads (they watch the same event)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
