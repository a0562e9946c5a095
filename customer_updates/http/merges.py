"""The merge endpoints (SPEC §4, §8): `request/add` (merge requests), `customer/unmerge`, `customer/history`.

Merges and unmerges are commands of the same queue as updates: these routes enqueue them through the
producer, with request ids `<batch_id>:<position>` and a batch manifest, so that the update route's
`customer/update/result?batch_id=` reads their results too; then they wait for the results as the update
route does, answering 202 when they are not all done in time.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from customer_updates.http import xml as v11_xml
from customer_updates.http.auth import Principal
from customer_updates.http.body import parse_json, read_limited
from customer_updates.http.errors import BATCH_LIMIT_EXCEEDED, ApiError
from customer_updates.http.merge_schemas import (
    REQUEST_ADD_EXAMPLE,
    AcceptedUnmerge,
    HistoryDocument,
    RequestAddDocument,
)
from customer_updates.http.routes import (
    _ERRORS,
    RESULT_PATH,
    _wait_for_batch,
    authenticated,
    ingress_of,
    user_context,
    writer,
)
from customer_updates.http.schemas import BatchResponse, ErrorResponse
from customer_updates.http.state import Ingress
from customer_updates.messaging.results import batch_key
from customer_updates.models.commands import UserContext, command_hash
from customer_updates.models.results import batch_status, item_status
from customer_updates.rules.codes import Code, message
from customer_updates.rules.parse import as_list
from customer_updates.services import merge_lookup
from customer_updates.services.history import customer_history
from customer_updates.store.db import session_scope

log = logging.getLogger("customer_updates.http")

REQUEST_ADD_PATH = "/v1.1/request/add"
UNMERGE_PATH = "/v1.1/customer/unmerge"
HISTORY_PATH = "/v1.1/customer/history"
_PENDING = "Accepted: some merges are not done yet; GET result_url for their results"

router = APIRouter()
_Format = Annotated[Literal["json", "xml"], Query(description="The answer's format, as the original's.")]
_Wait = Annotated[bool, Query(description="Wait for the results (up to the configured time).")]
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "These credentials may not change customers (4000)."},
    408: {"model": ErrorResponse, "description": "The body did not arrive within the configured time."},
    413: {"model": ErrorResponse, "description": "The body is larger than the configured limit."},
    **_ERRORS,
}


def _respond(document: dict[str, Any], model: type[BaseModel], format: str, status_code: int = 200,
             headers: dict[str, str] | None = None) -> Response:
    model.model_validate(document)  # the answer is the documented one, or a bug to see in the tests
    if format == "xml":
        return Response(v11_xml.to_xml(document), status_code=status_code, media_type=v11_xml.XML_MEDIA_TYPE,
                        headers=headers)
    return JSONResponse(document, status_code=status_code, headers=headers)


async def _body(request: Request, ingress: Ingress, key: str) -> list[Any]:
    raw = await read_limited(request, ingress.settings.http_max_body_bytes,
                             ingress.settings.http_body_timeout_seconds)
    body = v11_xml.parse_body(raw) if v11_xml.is_xml_body(request) else parse_json(raw)
    root = body.get("root", body) if isinstance(body, dict) else None
    if not isinstance(root, dict) or key not in root:
        raise ApiError.invalid(f"the body has no root.{key}")
    items = as_list(root[key])
    if not items:
        raise ApiError.invalid(f"root.{key} is empty")
    limit = ingress.settings.http_max_batch_items
    if len(items) > limit:
        raise ApiError(400, BATCH_LIMIT_EXCEEDED, f"Batch limit exceeded: at most {limit} items per request")
    return items


def _write_manifest(ingress: Ingress, org_id: int, batch_id: str, entries: list[list[str]]) -> None:
    """The batch's manifest, as the producer writes one for an update batch: its results become readable
    at the result route, as a v1.1 batch."""
    ingress.redis.set(batch_key(org_id, batch_id), json.dumps(entries), ex=ingress.settings.result_ttl_seconds)


def _result_url(batch_id: str) -> str:
    return f"{RESULT_PATH}?batch_id={batch_id}"


# -- request/add ---------------------------------------------------------------------------------------------

def _echo(raw: Any) -> dict[str, str | int]:
    return dict(merge_lookup.given_identifiers(raw))


def _prepare(ingress: Ingress, org_id: int, items: list[Any]) -> list[dict[str, Any]]:
    """Each request with its parties resolved to user_ids, or the item_status that refuses it."""
    prepared = []
    with session_scope(ingress.settings.database_url) as session:
        for raw in items:
            item = raw if isinstance(raw, dict) else {}
            misc = item.get("misc_info")
            target_raw = misc.get("target_customer") if isinstance(misc, dict) else None
            entry: dict[str, Any] = {
                "id": "", "type": str(item.get("type", "")), "base_type": str(item.get("base_type", "")),
                "status": "REJECTED", "customer": _echo(item.get("customer")),
                "misc_info": {"target_customer": _echo(target_raw)}}
            if (item.get("type"), item.get("base_type")) != ("CHANGE_IDENTIFIER", "MERGE"):
                entry["item_status"] = item_status(Code.INVALID_INPUT, "Input is invalid: only type "
                                                   "CHANGE_IDENTIFIER with base_type MERGE is supported")
                prepared.append(entry)
                continue
            victim = merge_lookup.resolve(session, ingress.orgs, org_id, entry["customer"], "customer")
            survivor = merge_lookup.resolve(session, ingress.orgs, org_id,
                                            entry["misc_info"]["target_customer"], "target_customer")
            if isinstance(victim, merge_lookup.NotResolved):
                entry["item_status"] = item_status(victim.code, message(victim.code, victim.detail))
            elif isinstance(survivor, merge_lookup.NotResolved):
                entry["item_status"] = item_status(survivor.code, message(survivor.code, survivor.detail))
            else:
                entry["customer"]["user_id"] = victim.user_id
                entry["misc_info"]["target_customer"]["user_id"] = survivor.user_id
                entry["ask"] = {"survivor_id": survivor.user_id, "victim_id": victim.user_id}
            prepared.append(entry)
    return prepared


def _enqueue_merges(ingress: Ingress, org_id: int, prepared: list[dict[str, Any]], context: UserContext,
                    batch_id: str) -> None:
    manifest = []
    for position, entry in enumerate(prepared):
        ask = entry.get("ask")
        if ask is None:
            continue
        entry["id"] = f"{batch_id}:{position}"
        manifest.append([entry["id"], command_hash("merge", ask)])
    if manifest:
        _write_manifest(ingress, org_id, batch_id, manifest)
    for entry in prepared:
        if "ask" in entry:
            ingress.producer.enqueue_merge(org_id, entry["ask"]["survivor_id"], entry["ask"]["victim_id"],
                                           request_id=entry["id"], user_context=context)
            entry["status"] = "PENDING"


def _request_document(prepared: list[dict[str, Any]], results: dict[str, dict[str, Any]],
                      batch_id: str | None) -> tuple[dict[str, Any], int]:
    requests = []
    for entry in prepared:
        out = {k: v for k, v in entry.items() if k != "ask"}
        found = results.get(entry["id"]) if entry["id"] else None
        if found is not None:
            out["item_status"] = found["item_status"]
            out["status"] = "APPROVED" if found["item_status"]["success"] == "true" else "REJECTED"
        requests.append(out)
    total, ok = len(requests), sum(1 for r in requests if r["status"] == "APPROVED")
    pending = sum(1 for r in requests if r["status"] == "PENDING")
    body: dict[str, Any] = {
        "status": batch_status(total, ok, _PENDING if pending else None), "requests": {"request": requests}}
    if batch_id is not None:
        body.update({"batch_id": batch_id, "result_url": _result_url(batch_id)})
    return {"response": body}, 202 if pending else 200


@router.post(REQUEST_ADD_PATH, operation_id="addRequests", summary="Add merge requests (auto-approved)",
             tags=["request"], response_class=JSONResponse,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/RequestAddBody"}, "example": REQUEST_ADD_EXAMPLE}}}},
             responses={200: {"model": RequestAddDocument, "description": "Every request is done: merged "
                              "(APPROVED) or refused (REJECTED, item_status says why).",
                              "content": v11_xml.XML_CONTENT},
                        202: {"model": RequestAddDocument, "description": "Some merges are queued, not done."},
                        **_WRITE_ERRORS})
async def add_requests(request: Request, principal: Annotated[Principal, Depends(writer)],
                       context: Annotated[UserContext, Depends(user_context)], format: _Format = "json",
                       wait: _Wait = True) -> Response:
    """A `CHANGE_IDENTIFIER`/`MERGE` request merges `customer` (the victim) into
    `misc_info.target_customer` (the survivor), members included, as a merge request of the queue."""
    ingress = ingress_of(request)
    items = await _body(request, ingress, "request")
    prepared = await run_in_threadpool(_prepare, ingress, principal.org_id, items)
    queued = any("ask" in entry for entry in prepared)
    batch_id = uuid.uuid4().hex if queued else None
    if batch_id is not None:
        await run_in_threadpool(_enqueue_merges, ingress, principal.org_id, prepared, context, batch_id)
        log.info("merge requests enqueued", extra={"org_id": principal.org_id, "batch_id": batch_id,
                                                   "items": len(prepared)})
    results: dict[str, dict[str, Any]] = {}
    timeout = ingress.settings.http_wait_seconds
    if batch_id is not None and wait and timeout > 0:
        found = await _wait_for_batch(ingress, principal.org_id, batch_id, timeout)
        if found is not None:
            queued_ids = [entry["id"] for entry in prepared if entry["id"]]
            results = dict(zip(queued_ids, found["response"]["customers"]["customer"], strict=True))
    document, status_code = _request_document(prepared, results, batch_id)
    return _respond(document, RequestAddDocument, format, status_code)


# -- unmerge ---------------------------------------------------------------------------------------------

def _victim_ids(items: list[Any]) -> list[int]:
    """The victims' user_ids. A malformed one refuses the request: an unmerge names nothing else."""
    ids = []
    for position, item in enumerate(items):
        value = item.get("id") if isinstance(item, dict) else None
        text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not text.isdigit() or len(text) > 18 or int(text) == 0:
            raise ApiError(400, int(Code.NO_IDENTIFIER),
                           f"Invalid identifier or no identifier passed: customer[{position}].id must be a "
                           "positive integer user_id")
        ids.append(int(text))
    return ids


def _enqueue_unmerges(ingress: Ingress, org_id: int, victims: list[int], context: UserContext,
                      batch_id: str) -> list[str]:
    request_ids = [f"{batch_id}:{i}" for i in range(len(victims))]
    _write_manifest(ingress, org_id, batch_id, [[rid, command_hash("unmerge", {"victim_id": victim})]
                                                for rid, victim in zip(request_ids, victims, strict=True)])
    for rid, victim in zip(request_ids, victims, strict=True):
        ingress.producer.enqueue_unmerge(org_id, victim, request_id=rid, user_context=context)
    return request_ids


@router.post(UNMERGE_PATH, operation_id="unmergeCustomers", summary="Undo merges", tags=["customer"],
             response_class=JSONResponse,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/UnmergeBody"},
                 "example": {"root": {"customer": [{"id": 12}]}}}}}},
             responses={200: {"model": BatchResponse, "description": "Every unmerge is done: the v1.1 "
                              "response, an item per victim (its customer, or the code refusing it).",
                              "content": v11_xml.XML_CONTENT},
                        202: {"model": AcceptedUnmerge, "description": "Queued; no result in time (or "
                              "wait=false)."},
                        **_WRITE_ERRORS})
async def unmerge_customers(request: Request, principal: Annotated[Principal, Depends(writer)],
                            context: Annotated[UserContext, Depends(user_context)], format: _Format = "json",
                            wait: _Wait = True) -> Response:
    """Undo each victim's latest merge (SPEC §4), as commands of the queue."""
    ingress = ingress_of(request)
    victims = _victim_ids(await _body(request, ingress, "customer"))
    batch_id = uuid.uuid4().hex
    request_ids = await run_in_threadpool(_enqueue_unmerges, ingress, principal.org_id, victims, context,
                                          batch_id)
    log.info("unmerges enqueued", extra={"org_id": principal.org_id, "batch_id": batch_id,
                                         "items": len(victims)})
    timeout = ingress.settings.http_wait_seconds
    found = await _wait_for_batch(ingress, principal.org_id, batch_id, timeout) if wait and timeout > 0 else None
    if found is not None:
        return v11_xml.respond(found, format)
    url = _result_url(batch_id)
    body = {"response": {
        "status": {"success": "true", "code": 202, "message": "Accepted: the result is not ready yet; "
                   "GET result_url for it", "total": len(victims)},
        "batch_id": batch_id, "result_url": url, "request_ids": request_ids}}
    AcceptedUnmerge.model_validate(body)
    return JSONResponse(body, status_code=202, headers={"Location": url, "Retry-After": "1"})


# -- history ---------------------------------------------------------------------------------------------

def _text_of(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _wire_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A history entry in the v1.1 manner: text values, "" for none, lists as `{element: [...]}`."""
    out: dict[str, Any] = {"id": entry["id"], "kind": entry["kind"]}
    for key in ("field", "previous", "new", "request_id", "issued_at", "applied_at"):
        out[key] = _text_of(entry.get(key))
    context = entry.get("user_context")
    out["user_context"] = {str(k): _text_of(v) for k, v in context.items()} if isinstance(context, dict) else {}
    for key in ("survivor_id", "victim_id"):
        if key in entry:
            out[key] = int(entry[key])
    if "identifier" in entry:
        out["identifier"] = _text_of(entry["identifier"])
    if "moved" in entry:
        out["moved"] = {"change": [{k: _text_of(change.get(k)) for k in ("field", "previous", "new")}
                                   for change in entry["moved"]]}
    return out


def _history(ingress: Ingress, org_id: int, user_id: int, limit: int, before: int | None) -> dict[str, Any]:
    with session_scope(ingress.settings.database_url) as session:
        if not merge_lookup.customer_exists(session, org_id, user_id):
            raise ApiError(404, int(Code.CUSTOMER_NOT_FOUND), "No customer with this id for this org")
        page = customer_history(session, org_id, user_id, limit, before)
    next_before = page["next_before"]
    return {"response": {
        "status": {"success": "true", "code": 200, "message": "Success"},
        "customer": {"user_id": user_id, "next_before": "" if next_before is None else str(next_before)},
        "history": {"entry": [_wire_entry(e) for e in page["entries"]]}}}


@router.get(HISTORY_PATH, operation_id="getCustomerHistory", summary="A customer's history, newest first",
            tags=["customer"], response_class=JSONResponse,
            responses={200: {"model": HistoryDocument, "description": "Field changes, merges, unmerges and "
                             "awards, newest first; `next_before` pages on.", "content": v11_xml.XML_CONTENT},
                       404: {"model": ErrorResponse, "description": "No customer with this id for this org."},
                       **_ERRORS})
async def get_history(
    request: Request, principal: Annotated[Principal, Depends(authenticated)],
    user_id: Annotated[int, Query(alias="id", ge=1, le=10**18 - 1, description="The user_id.")],
    limit: Annotated[int, Query(ge=1, le=500, description="Entries per page.")] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                        description="An entry id: read the entries older than it.")] = None,
    format: _Format = "json",
) -> Response:
    document = await run_in_threadpool(_history, ingress_of(request), principal.org_id, user_id, limit, before)
    return _respond(document, HistoryDocument, format)
