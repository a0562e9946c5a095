"""The v1.1 documents with the original API's JSON types (SPEC §6): one model for every way out.

Strict models: a number where the original sends a string (or the reverse) fails validation, so these
are what a client written against the original parses. Keys the original lacks are allowed
(`extra="allow"`), a changed type or a `null` never is.

The worker does not build results through these models: it builds plain dicts of the right types
(models/results.py), because a pydantic round trip per item would cost the hot path several times the
dict's construction. The edges (HTTP answers, the producer's reads, the CLI's `--json`) validate what
they hand out with `checked_item` / `checked_batch`, and the tests hold the builders to the models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

_Strict = ConfigDict(strict=True, extra="allow")


class _Model(BaseModel):
    model_config = _Strict


class WarningDetail(_Model):
    code: str
    message: str


class Warnings(_Model):
    warning: list[str] = Field(description="The warning codes, as strings (e.g. \"1017\").")


class ItemStatus(_Model):
    success: Literal["true", "false"]
    code: str = Field(description='"1000" on success, else the SPEC code of the failure, as a string.')
    message: str = Field(description="The code's text, then `, <text>` for each warning.")
    warnings: Warnings
    warning_details: list[WarningDetail] | None = Field(
        None, description="Ours: each warning's code and what it concerns (e.g. the field's name).")


class PointsSummary(_Model):
    programId: str
    redeemed: str
    expired: str
    returned: str
    adjusted: str
    lifetimePoints: str
    loyaltyPoints: str
    cumulativePurchases: str
    currentSlab: str
    nextSlab: str
    nextSlabSerialNumber: str
    nextSlabDescription: str
    slabSNo: str
    slabExpiryDate: str
    totalPoints: str


class PointsSummaries(_Model):
    points_summary: list[PointsSummary]


class NameValue(_Model):
    name: str
    value: str


class NameValues(_Model):
    field: list[NameValue]


class Subscription(_Model):
    channel: str
    priority: str
    scope: str
    status: Literal["1", "0"]


class Subscriptions(_Model):
    subscription: list[Subscription]


class Effects(_Model):
    effect: list[dict[str, Any]]


class CustomerItem(_Model):
    """A customer in the v1.1 item shape. A failed item has only the identifiers passed and item_status,
    so every other key is optional here; none may be null."""

    user_id: int | None = None
    id: str | None = None
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    lifetime_points: int | None = None
    lifetime_purchases: int | float | None = None
    loyalty_points: int | None = None
    current_slab: str | None = None
    tier_expiry_date: str | None = None
    points_summaries: PointsSummaries | None = None
    registered_on: str | None = None
    updated_on: str | None = None
    type: str | None = None
    source: str | None = None
    fraud_status: str | None = None
    registered_till: str | None = None
    associated_with: str | None = None
    custom_fields: NameValues | None = None
    extended_fields: NameValues | None = None
    subscriptions: Subscriptions | None = None
    side_effects: Effects | None = None
    item_status: ItemStatus


class BatchStatus(_Model):
    success: Literal["true", "false"] = Field(description='"false" only when every item failed (code 500).')
    code: int = Field(description="200 all succeeded, 201 some failed, 500 all failed.")
    message: str
    total: str
    success_count: str


class Customers(_Model):
    customer: list[CustomerItem]


class BatchBody(_Model):
    status: BatchStatus
    customers: Customers


class BatchDocument(_Model):
    """The v1.1 response (SPEC §6). Items are in request order."""

    response: BatchBody


_ITEM = TypeAdapter(CustomerItem)
_BATCH = TypeAdapter(BatchDocument)


def _no_nulls(value: Any, path: str) -> None:
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if node is None:
            raise ValueError(f"{where} is null; the v1.1 documents never hold null (empty is \"\")")
        if isinstance(node, dict):
            stack.extend((v, f"{where}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))


def checked_item(item: dict[str, Any]) -> dict[str, Any]:
    """`item` itself once it has the original's types and no null (raises pydantic's ValidationError or
    ValueError otherwise). Returned unchanged, so the extra keys and their order stay as made."""
    _ITEM.validate_python(item)
    _no_nulls(item, "item")
    return item


def checked_batch(document: dict[str, Any]) -> dict[str, Any]:
    """`document` itself once it is a v1.1 batch response of the original's types."""
    _BATCH.validate_python(document)
    _no_nulls(document, "response")
    return document
