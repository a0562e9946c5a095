"""Shapes of the merge, unmerge and history endpoints (SPEC §4, §8), for the OpenAPI document and checks.

As for updates, the request models only describe a well-formed body: the routes read bodies by hand so
that one bad request item is a per-item code. The response models are strict like models/v11.py (the
original's types, never a null) and every answer is validated against them before it leaves.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from customer_updates.http.schemas import AcceptedBody
from customer_updates.models import v11

_Strict = ConfigDict(strict=True, extra="allow")
_UserId = int | Annotated[str, Field(pattern=r"^[0-9]{1,18}$")]


# -- requests --------------------------------------------------------------------------------------------

class CustomerRef(BaseModel):
    """A customer named by one or more identifiers; all of them must lead to the same customer."""

    mobile: str | None = Field(None, max_length=20, examples=["919800000001"])
    email: str | None = Field(None, max_length=254)
    external_id: str | None = Field(None, max_length=100)
    id: _UserId | None = Field(None, description="The user_id.")


class MiscInfo(BaseModel):
    target_customer: CustomerRef = Field(description="The survivor: the customer that stays.")


class RequestInput(BaseModel):
    type: Literal["CHANGE_IDENTIFIER"]
    base_type: Literal["MERGE"]
    customer: CustomerRef = Field(description="The victim: the customer merged into the target.")
    misc_info: MiscInfo


class RequestRoot(BaseModel):
    request: RequestInput | list[RequestInput] = Field(description="One request, or a list of them.")


class RequestAddBody(BaseModel):
    """The original's `{"root": {"request": [...]}}`; only merge requests (auto-approved) are accepted."""

    root: RequestRoot


class UnmergeCustomer(BaseModel):
    id: _UserId = Field(description="The user_id of the merged victim to bring back.")


class UnmergeRoot(BaseModel):
    customer: UnmergeCustomer | list[UnmergeCustomer]


class UnmergeBody(BaseModel):
    """`{"root": {"customer": [{"id": VICTIM_USER_ID}]}}`: undo each victim's latest merge."""

    root: UnmergeRoot


HAND_READ_BODIES: dict[str, type[BaseModel]] = {"RequestAddBody": RequestAddBody, "UnmergeBody": UnmergeBody}

REQUEST_ADD_EXAMPLE: dict[str, Any] = {"root": {"request": [{
    "type": "CHANGE_IDENTIFIER", "base_type": "MERGE", "customer": {"email": "eli@example.com"},
    "misc_info": {"target_customer": {"mobile": "919800000001"}}}]}}


# -- responses -------------------------------------------------------------------------------------------

class _Model(BaseModel):
    model_config = _Strict


class RequestItem(_Model):
    id: str = Field(description="The request id of the queued merge; \"\" when it was refused before queueing.")
    type: str
    base_type: str
    status: Literal["APPROVED", "REJECTED", "PENDING"] = Field(
        description="APPROVED: merged. REJECTED: refused (item_status says why). PENDING: queued, not done.")
    customer: dict[str, str | int] = Field(description="The victim's identifiers as passed, and its user_id.")
    misc_info: dict[str, dict[str, str | int]]
    item_status: v11.ItemStatus | None = Field(None, description="Absent while PENDING.")


class RequestStatus(_Model):
    success: Literal["true", "false"]
    code: int = Field(description="200 all merged, 201 some refused, 500 all refused, 202 some not done yet.")
    message: str
    total: str
    success_count: str


class Requests(_Model):
    request: list[RequestItem]


class RequestAddBodyOut(_Model):
    status: RequestStatus
    requests: Requests
    batch_id: str | None = Field(None, description="The queued merges' results as a v1.1 batch.")
    result_url: str | None = None


class RequestAddDocument(_Model):
    """The answer of `request/add`, in the original's shape as far as it is known (docs/http.md)."""

    response: RequestAddBodyOut


class AcceptedUnmergeBody(AcceptedBody):
    request_ids: list[str] = Field(description="One per customer item, in order (`<batch_id>:<position>`).")


class AcceptedUnmerge(BaseModel):
    """The unmerges are queued but not all done yet."""

    response: AcceptedUnmergeBody


class MovedField(_Model):
    field: str
    previous: str
    new: str


class Moved(_Model):
    change: list[MovedField]


class HistoryEntry(_Model):
    id: int = Field(description="Pass it as `before` to read older entries.")
    kind: Literal["field_change", "merge", "unmerge", "award"] | str
    field: str
    previous: str
    new: str
    request_id: str
    issued_at: str
    applied_at: str
    user_context: dict[str, str]
    survivor_id: int | None = None
    victim_id: int | None = None
    identifier: str | None = None
    moved: Moved | None = Field(None, description="A merge: each survivor field it changed.")


class HistoryEntries(_Model):
    entry: list[HistoryEntry]


class HistoryCustomer(_Model):
    user_id: int
    next_before: str = Field(description="The `before` of the next (older) page; \"\" on the last one.")


class HistoryStatus(_Model):
    success: Literal["true"]
    code: Literal[200]
    message: str


class HistoryBody(_Model):
    status: HistoryStatus
    customer: HistoryCustomer
    history: HistoryEntries


class HistoryDocument(_Model):
    """A customer's history (SPEC §8), newest first."""

    response: HistoryBody
