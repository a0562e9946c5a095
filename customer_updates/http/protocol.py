"""uvicorn's h11 protocol with the two guards uvicorn lacks: a deadline for a request's headers, and a cap
on open connections.

uvicorn closes a keep-alive connection that stays idle after a response (`timeout_keep_alive`), but a
connection that never completes its first request's headers (opened and silent, or a slowloris trickling
header bytes) stays open for ever, and so does one that trickles the next request's headers after a
response. Here each connection must have sent a whole request line and headers within
`http_header_timeout_seconds` of opening, and again of each response; otherwise it is closed. A connection
beyond `http_max_connections` is closed as soon as it is accepted, without reading it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from customer_updates.settings import get_settings

log = logging.getLogger("customer_updates.http")


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = 10.0
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection refused", extra={"reason": "too many open connections",
                                                     "open_connections": len(self.connections) - 1})
            transport.abort()
            return
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        # A request under way had its headers in time (its body has a deadline of its own in the app).
        if self.cycle is not None and not self.cycle.response_complete:
            return
        if not self.transport.is_closing():
            log.info("connection closed", extra={"reason": "request headers not received in time"})
            self.transport.close()


class SettingsGuardedH11Protocol(GuardedH11Protocol):
    """The guards with the limits of the process's settings (the environment): `serve` names this class by
    its import path, which, unlike a class made at run time, reaches every `--workers` process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = get_settings()
        self.header_timeout = settings.http_header_timeout_seconds
        self.max_connections = settings.http_max_connections
        super().__init__(*args, **kwargs)


def guarded_protocol(header_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
    """The protocol class with these limits, for a server run in this process (tests, embedding)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout": header_timeout, "max_connections": max_connections})
