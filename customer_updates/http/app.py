"""The FastAPI application factory of the HTTP ingress."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from customer_updates.http.errors import install_handlers
from customer_updates.http.merge_schemas import HAND_READ_BODIES
from customer_updates.http.merges import router as merge_router
from customer_updates.http.routes import router
from customer_updates.http.schemas import UpdateBody
from customer_updates.http.state import Ingress
from customer_updates.ops.memory import return_large_blocks
from customer_updates.settings import Settings, get_settings

log = logging.getLogger("customer_updates.http")

DESCRIPTION = """\
A drop-in for the v1.1 `customer/update` and `customer/get` endpoints, and for merge requests of
`request/add`; with unmerges and a customer's history. Updates, merges and unmerges are validated,
authenticated and queued; workers apply them. Authenticate with HTTP Basic: a till's username and,
as the password, the MD5 hex of its password. The org is the one of the credentials.
"""


def _package_version() -> str:
    try:
        return version("customer-updates")
    except PackageNotFoundError:
        return "0"


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            # The update body is read by hand (so a bad item is a per-item code, not a rejected batch);
            # its schema is added here for the routes' `$ref`.
            body = UpdateBody.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(body.pop("$defs", {}))
            schemas["UpdateBody"] = body
            for name, model in HAND_READ_BODIES.items():
                extra = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(extra.pop("$defs", {}))
                schemas[name] = extra
            app.openapi_schema = document
        return app.openapi_schema

    return build


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app. Nothing connects here: Redis and the database are reached on the first request."""
    ingress = Ingress(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        return_large_blocks()  # logins' scrypt memory leaves the process after each verification
        yield
        await ingress.aclose()

    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from files installed with the
    # package rather than from a CDN, so that they show behind a firewall or offline.
    app = FastAPIOffline(title="customer-updates HTTP ingress", version=_package_version(), description=DESCRIPTION,
                         lifespan=lifespan)
    app.state.ingress = ingress
    app.include_router(router)
    app.include_router(merge_router)
    install_handlers(app)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    # Request counts and latencies by route template (never the raw path, which may hold personal data). A
    # registry per app: in prometheus_client's global one, an app made later in the same process would find
    # the metric names taken, and the instrumentator then records nothing for it.
    Instrumentator(excluded_handlers=["/metrics"], registry=CollectorRegistry()).instrument(app).expose(
        app, include_in_schema=False)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Our own access log: the path without its query string, which may hold mobiles and emails.
        started = time.perf_counter()
        response = await call_next(request)
        log.info("http request", extra={
            "method": request.method, "path": request.url.path, "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "org_id": getattr(request.state, "org_id", None)})
        return response

    return app
