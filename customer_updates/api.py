"""The HTTP ingress under the name of the project layout; the code lives in `customer_updates.http`.

    uvicorn --factory customer_updates.api:create_app
"""

from __future__ import annotations

from customer_updates.http import create_app, serve

__all__ = ["create_app", "serve"]
