"""Running the ingress with uvicorn."""

from __future__ import annotations

import uvicorn

from customer_updates import logs
from customer_updates.settings import Settings


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    logs.configure(settings.log_level, settings.log_json)
    # uvicorn's access log would print query strings (mobiles, emails): the app logs requests itself.
    # log_config=None keeps our JSON handler on the root logger for uvicorn's own messages too.
    uvicorn.run("customer_updates.http:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_config=None, proxy_headers=True, server_header=False)
