"""Errors of the HTTP ingress, answered with the v1.1 error body.

    ApiError            raised by routes and dependencies; carries the HTTP status and the v1.1 code

Every failure a client can cause is a 4xx with the body
`{"response": {"status": {"success": "false", "code": ..., "message": ...}}}`, as the original API
answers. Only an unreachable broker or database is a 5xx (503, worth retrying).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from customer_updates.errors import InvalidBody, RequestIdConflict

log = logging.getLogger("customer_updates.http")

# v1.1 codes the ingress answers with besides the item codes of SPEC §6.
BATCH_LIMIT_EXCEEDED = 1060
ACCESS_DENIED = 4000
AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="customer-updates"'}


def error_body(code: int, message: str, error_code: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"success": "false", "code": code, "message": message}
    if error_code is not None:
        status["errorCode"] = error_code
    return {"response": {"status": status}}


class ApiError(Exception):
    def __init__(self, http_status: int, code: int, message: str, *, error_code: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.error_code = error_code
        self.headers = headers

    @classmethod
    def invalid(cls, message: str) -> ApiError:
        return cls(400, 400, f"Input is invalid: {message}")

    @classmethod
    def unauthorized(cls, message: str = "Unauthorized: HTTP Basic with a till username and the MD5 "
                                         "of its password is required") -> ApiError:
        return cls(401, 401, message, headers=AUTHENTICATE)

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.code, self.message, self.error_code),
                            status_code=self.http_status, headers=self.headers)


def _describe(exc: RequestValidationError) -> str:
    """Name the parameter and the problem; never echo the value (it may be personal data)."""
    errors = exc.errors()
    if not errors:
        return "the request is malformed"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "header", "body"))
    return f"{where or 'request'}: {first.get('msg', 'invalid value')}"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return ApiError.invalid(_describe(exc)).response()

    # The producer's own refusals: a value no worker could store, a request id bound to another payload.
    @app.exception_handler(InvalidBody)
    async def _unusable(_request: Request, exc: InvalidBody) -> JSONResponse:
        return ApiError.invalid(str(exc)).response()

    @app.exception_handler(RequestIdConflict)
    async def _conflict(_request: Request, _exc: RequestIdConflict) -> JSONResponse:
        return ApiError(409, 409, "Conflict: a request id of this batch was already used with another payload; "
                                  "nothing was queued").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's HTTPBasic answers a malformed Authorization header with a bare 401: keep the body v1.1.
        if exc.status_code == 401:
            return ApiError.unauthorized().response()
        headers = dict(exc.headers) if exc.headers else None
        return ApiError(exc.status_code, exc.status_code, str(exc.detail), headers=headers).response()

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("dependency unavailable",
                  extra={"path": request.url.path, "error_type": type(exc).__name__})
        body = error_body(503, "Service unavailable: the broker or the database is unreachable; retry later")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    for kind in (redis.RedisError, BrokerError, OperationalError, InterfaceError, ConnectionError,
                 TimeoutError):
        app.add_exception_handler(kind, _unavailable)
