"""The v1.1 endpoints: update (POST/PUT), the result of an update batch, get."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from customer_updates.http import idempotency
from customer_updates.http import xml as v11_xml
from customer_updates.http.auth import Principal
from customer_updates.http.body import read_limited, update_items
from customer_updates.http.errors import ACCESS_DENIED, BATCH_LIMIT_EXCEEDED, ApiError
from customer_updates.http.schemas import (
    UPDATE_EXAMPLE,
    AcceptedResponse,
    BatchResponse,
    ErrorResponse,
)
from customer_updates.http.state import Ingress
from customer_updates.messaging.results import batch_key, read_batch_response
from customer_updates.models.commands import UserContext
from customer_updates.models.results import batch_response, failed_item, wire_item
from customer_updates.producer import BatchReceipt
from customer_updates.rules.codes import Code
from customer_updates.rules.identifiers import INVALID_CODE
from customer_updates.services.reads import get_customer
from customer_updates.store import records
from customer_updates.store.db import session_scope

log = logging.getLogger("customer_updates.http")

UPDATE_PATH = "/v1.1/customer/update"
RESULT_PATH = "/v1.1/customer/update/result"
GET_PATH = "/v1.1/customer/get"

router = APIRouter()
basic = HTTPBasic(auto_error=False, realm="customer-updates",
                  description="A till's username and, as the password, the MD5 hex of its password.")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON, a wrong parameter, or batch limit exceeded "
                                                 "(code 1060)."},
    401: {"model": ErrorResponse, "description": "Missing or wrong credentials."},
    429: {"model": ErrorResponse, "description": "Too many failed logins from this address or for this "
                                                 "username; retry after `Retry-After` seconds."},
    "4XX": {"model": ErrorResponse, "description": "Any other client error, with the v1.1 error body."},
    503: {"model": ErrorResponse, "description": "Redis or the database cannot be reached; retry later."},
}
# Request ids are made of the key, so the key must leave room for ":<position>" within 100 characters.
_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USER_ID = re.compile(r"^[0-9]{1,18}$")


def ingress_of(request: Request) -> Ingress:
    ingress: Ingress = request.app.state.ingress
    return ingress


async def authenticated(request: Request,
                        credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> Principal:
    if credentials is None:
        raise ApiError.unauthorized()
    client = request.client.host if request.client else "unknown"
    principal = await ingress_of(request).login.login(credentials.username, credentials.password, client)
    request.state.org_id = principal.org_id
    return principal


async def writer(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    if not principal.can_write_customers:
        raise ApiError(403, 403, "Access denied: these credentials may not update customers",
                       error_code=ACCESS_DENIED)
    return principal


def user_context(
    principal: Annotated[Principal, Depends(writer)],
    entity_type: Annotated[str | None, Header(alias="USER-CONTEXT-ENTITY-TYPE", max_length=100,
                                              description="Who made the change, e.g. USER or TILL.")] = None,
    entity_id: Annotated[str | None, Header(alias="USER-CONTEXT-ENTITY-ID", max_length=100)] = None,
    source: Annotated[str | None, Header(alias="USER-CONTEXT-ENTITY-SOURCE", max_length=100,
                                         description="The calling system, e.g. POS or CRM.")] = None,
    source_id: Annotated[str | None, Header(alias="USER-CONTEXT-ENTITY-SOURCE-ID", max_length=100)] = None,
    old_source: Annotated[str | None, Header(alias="USER-CONTEXT-SOURCE", max_length=100,
                                             description="Former name of USER-CONTEXT-ENTITY-SOURCE.")] = None,
    old_source_id: Annotated[str | None, Header(alias="USER-CONTEXT-SOURCE-ID", max_length=100,
                                                description="Former name of USER-CONTEXT-ENTITY-SOURCE-ID.")] = None,
) -> UserContext:
    """The audit trail's `user_context` (the original's USER-CONTEXT-ENTITY-* headers; the former
    USER-CONTEXT-SOURCE names still count). Without entity headers the entity is the authenticated till."""
    source = source if source is not None else old_source
    source_id = source_id if source_id is not None else old_source_id
    if entity_type is None and entity_id is None:
        entity_type, entity_id = "TILL", principal.till_code or principal.username
    return UserContext(entity_type=entity_type, entity_id=entity_id, source=source, source_id=source_id)


def _accepted(batch_id: str, total: int | None) -> JSONResponse:
    url = f"{RESULT_PATH}?batch_id={quote(batch_id, safe='')}"
    body = {"response": {
        "status": {"success": "true", "code": 202, "message": "Accepted: the result is not ready yet; "
                   "GET result_url for it", "total": total},
        "batch_id": batch_id, "result_url": url}}
    return JSONResponse(body, status_code=202, headers={"Location": url, "Retry-After": "1"})


async def _wait_for_batch(ingress: Ingress, org_id: int, batch_id: str,
                          timeout: float) -> dict[str, Any] | None:
    """Poll the stored results on the event loop's terms: a waiting request holds no thread."""
    deadline = time.monotonic() + timeout
    interval = 0.02
    while True:
        found = await run_in_threadpool(read_batch_response, ingress.redis, org_id, batch_id)
        left = deadline - time.monotonic()
        if found is not None or left <= 0:
            return found
        await asyncio.sleep(min(interval, left))
        interval = min(interval * 1.5, 0.25)


_UPDATE_DOC = {
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/UpdateBody"}, "example": UPDATE_EXAMPLE}}},
}
_UPDATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": BatchResponse, "description": "The v1.1 response; its status says which items failed.",
          "content": v11_xml.XML_CONTENT},
    202: {"model": AcceptedResponse, "description": "Queued; no result in time (or wait=false)."},
    403: {"model": ErrorResponse, "description": "These credentials may not update customers (4000)."},
    408: {"model": ErrorResponse, "description": "The body did not arrive within the configured time."},
    409: {"model": ErrorResponse, "description": "The Idempotency-Key was first used with another body."},
    413: {"model": ErrorResponse, "description": "The body is larger than the configured limit."},
    **_ERRORS,
}


async def update_customers(
    request: Request,
    principal: Annotated[Principal, Depends(writer)],
    context: Annotated[UserContext, Depends(user_context)],
    format: Annotated[Literal["json", "xml"], Query(description="The answer's format, as the original's.")] = "json",
    wait: Annotated[bool, Query(description="Wait for the result (up to the configured time).")] = True,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", pattern=_KEY_PATTERN,
        description="Makes a retried request apply nothing twice; also the batch id.")] = None,
) -> Response:
    """Update customers (v1.1). The org is the one of the credentials. Each item is its own command."""
    ingress = ingress_of(request)
    settings = ingress.settings
    raw = await read_limited(request, settings.http_max_body_bytes, settings.http_body_timeout_seconds)
    items = update_items(v11_xml.body_as_json(raw) if v11_xml.is_xml_body(request) else raw,
                         settings.http_max_batch_items)
    receipt = await _enqueue(ingress, principal.org_id, items, context, idempotency_key)
    log.info("batch enqueued", extra={"org_id": principal.org_id, "batch_id": receipt.batch_id,
                                      "items": len(items), "username": principal.username})
    timeout = settings.http_wait_seconds
    found = await _wait_for_batch(ingress, principal.org_id, receipt.batch_id, timeout) \
        if wait and timeout > 0 else None
    if found is None:
        return _accepted(receipt.batch_id, len(items))
    return v11_xml.respond(found, format)


async def _enqueue(ingress: Ingress, org_id: int, items: list[Any], context: UserContext,
                   idempotency_key: str | None) -> BatchReceipt:
    # The async producer: requests enqueueing at the same time share a round trip to Redis, and none
    # holds a thread of the pool while it waits for Redis.
    producer = ingress.async_producer
    if idempotency_key is None:
        return await producer.enqueue_batch(org_id, {"root": {"customer": items}}, user_context=context)
    # A key already used with another body is refused before its manifest or any item could change.
    await run_in_threadpool(idempotency.bind, ingress.redis, ingress.settings.database_url, org_id,
                            idempotency_key, items, ingress.settings.result_ttl_seconds)
    return await producer.enqueue_batch(org_id, {"root": {"customer": items}}, user_context=context,
                                        batch_id=idempotency_key,
                                        request_ids=[f"{idempotency_key}:{i}" for i in range(len(items))])


for method, operation_id in (("POST", "updateCustomers"), ("PUT", "updateCustomersPut")):
    router.add_api_route(UPDATE_PATH, update_customers, methods=[method], operation_id=operation_id,
                         summary="Update customer details" + (" (as POST)" if method == "PUT" else ""),
                         responses=_UPDATE_RESPONSES, openapi_extra=_UPDATE_DOC, tags=["customer"],
                         response_class=JSONResponse)


def _batch_result(ingress: Ingress, org_id: int, batch_id: str) -> tuple[str, dict[str, Any] | None]:
    found = read_batch_response(ingress.redis, org_id, batch_id)
    if found is not None:
        return "done", found
    if ingress.redis.exists(batch_key(org_id, batch_id)):
        return "pending", None
    # Redis keeps results for result_ttl_seconds; the database keeps the durable copy longer.
    with session_scope(ingress.settings.database_url) as session:
        items = records.stored_batch_items(session, org_id, batch_id)
    return ("done", batch_response([wire_item(i) for i in items])) if items else ("unknown", None)


@router.get(RESULT_PATH, operation_id="getUpdateResult", summary="The result of an update batch",
            tags=["customer"], response_class=JSONResponse, responses={
                200: {"model": BatchResponse, "description": "Every item is done: the v1.1 response.",
                      "content": v11_xml.XML_CONTENT},
                202: {"model": AcceptedResponse, "description": "Not done yet; ask again."},
                404: {"model": ErrorResponse, "description": "No such batch for this org."},
                **_ERRORS})
async def update_result(
    request: Request,
    principal: Annotated[Principal, Depends(authenticated)],
    batch_id: Annotated[str, Query(min_length=1, max_length=100, pattern=_KEY_PATTERN.replace("64", "100"))],
    format: Annotated[Literal["json", "xml"], Query(description="The answer's format, as the original's.")] = "json",
) -> Response:
    state, found = await run_in_threadpool(_batch_result, ingress_of(request), principal.org_id, batch_id)
    if state == "pending":
        return _accepted(batch_id, None)
    if found is None:
        raise ApiError(404, 404, "No batch with this id for this org (or its results have expired)")
    return v11_xml.respond(found, format)


def _lookups(values: dict[str, str | None], limit: int) -> list[tuple[str, str]]:
    wanted = [(by, part.strip()) for by, given in values.items() if given is not None
              for part in given.split(",") if part.strip()]
    if not wanted:
        raise ApiError(400, int(Code.NO_IDENTIFIER), "Pass mobile, email, external_id or id")
    if len(wanted) > limit:
        raise ApiError(400, BATCH_LIMIT_EXCEEDED,
                       f"Batch limit exceeded: at most {limit} customers per request")
    return wanted


def _read_customers(ingress: Ingress, org_id: int, wanted: list[tuple[str, str]]) -> list[dict[str, Any]]:
    items = []
    with session_scope(ingress.settings.database_url) as session:
        for by, value in wanted:
            # Refused here, before SQL: a control character (NUL) or a user id beyond BIGINT is malformed.
            if by == "id" and not _USER_ID.match(value):
                items.append(failed_item({by: value}, Code.NO_IDENTIFIER, "id must be a positive integer"))
            elif by != "id" and _CONTROL.search(value):
                items.append(failed_item({by: value}, INVALID_CODE[by], f"{by} is malformed"))
            else:
                items.append(get_customer(session, ingress.orgs, org_id, by, value))
    return items


@router.get(GET_PATH, operation_id="getCustomers", summary="Get customers by identifier", tags=["customer"],
            response_class=JSONResponse,
            responses={200: {"model": BatchResponse, "description": "One item per value, in request order; "
                             "a merged victim's identifier gives its survivor (warning 91009).",
                             "content": v11_xml.XML_CONTENT}, **_ERRORS})
def get_customers(
    request: Request,
    principal: Annotated[Principal, Depends(authenticated)],
    format: Annotated[Literal["json", "xml"], Query(description="The answer's format, as the original's.")] = "json",
    mobile: Annotated[str | None, Query(description="Comma-separated for several customers.")] = None,
    email: Annotated[str | None, Query(description="Comma-separated for several customers.")] = None,
    external_id: Annotated[str | None, Query(description="Comma-separated for several customers.")] = None,
    user_id: Annotated[str | None, Query(alias="id", description="user_id; comma-separated.")] = None,
) -> Response:
    ingress = ingress_of(request)
    wanted = _lookups({"mobile": mobile, "email": email, "external_id": external_id, "id": user_id},
                      ingress.settings.http_max_batch_items)
    items = _read_customers(ingress, principal.org_id, wanted)
    return v11_xml.respond(batch_response(items), format)
