"""Running the ingress with uvicorn."""

from __future__ import annotations

from typing import Any

import uvicorn

from customer_updates.http.protocol import guarded_protocol
from customer_updates.ops import logs
from customer_updates.settings import Settings

SETTINGS_PROTOCOL = "customer_updates.http.protocol:SettingsGuardedH11Protocol"


def uvicorn_options(settings: Settings, *, protocol: Any = None) -> dict[str, Any]:
    """uvicorn's connection limits from the settings. `protocol` defaults to the guarded h11 protocol with the
    settings' limits; `serve` passes the class's import path instead, for worker processes to import."""
    return {
        # uvicorn's access log would print query strings (mobiles, emails): the app logs requests itself.
        "access_log": False,
        "server_header": False,
        "http": protocol or guarded_protocol(settings.http_header_timeout_seconds, settings.http_max_connections),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        # Not limit_concurrency: its answer is a 503 to a request already read; the protocol's connection cap
        # refuses the connection before anything is read, and requests in flight are at most connections.
    }


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    logs.configure(settings.log_level, settings.log_json)
    # log_config=None keeps our JSON handler on the root logger for uvicorn's own messages too.
    uvicorn.run("customer_updates.http:create_app", factory=True, host=host, port=port, workers=workers,
                log_config=None, proxy_headers=True, **uvicorn_options(settings, protocol=SETTINGS_PROTOCOL))
