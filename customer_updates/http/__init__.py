"""The HTTP ingress: v1.1 `customer/update` and `customer/get` in front of the queue.

    create_app(settings=None) -> FastAPI   the ASGI app (a uvicorn factory: customer_updates.http:create_app)
    serve(settings, host, port, workers)   run it with uvicorn (`customer-updates serve`)
"""

from __future__ import annotations

from customer_updates.http.app import create_app
from customer_updates.http.server import serve

__all__ = ["create_app", "serve"]
