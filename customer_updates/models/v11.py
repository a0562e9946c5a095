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
from typing_extensions import TypeAliasType

_Strict = ConfigDict(strict=True, extra="allow")
# Any JSON value but null: what extra keys may hold (the documents never hold null, SPEC §6).
Json = TypeAliasType("Json", "str | int | float | bool | list[Json] | dict[str, Json]")


class _Model(BaseModel):
    """Optional keys default to "" or absent, never None: a null anywhere fails validation."""

    model_config = _Strict
    __pydantic_extra__: dict[str, Json] = Field(init=False)


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
    warning_details: list[WarningDetail] = Field(
        [], description="Ours: each warning's code and what it concerns (e.g. the field's name).")


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
    effect: list[dict[str, Json]]


class CustomerItem(_Model):
    """A customer in the v1.1 item shape. A failed item has only the identifiers passed and item_status,
    so every other key is optional here (the defaults only say so: they are never handed out); none may
    be null."""

    user_id: int = 0
    id: str = ""
    mobile: str = ""
    email: str = ""
    external_id: str = ""
    firstname: str = ""
    lastname: str = ""
    lifetime_points: int = 0
    lifetime_purchases: int | float = 0
    loyalty_points: int = 0
    current_slab: str = ""
    tier_expiry_date: str = ""
    points_summaries: PointsSummaries = Field(default_factory=lambda: PointsSummaries(points_summary=[]))
    registered_on: str = ""
    updated_on: str = ""
    type: str = ""
    source: str = ""
    fraud_status: str = ""
    registered_till: str = ""
    associated_with: str = ""
    custom_fields: NameValues = Field(default_factory=lambda: NameValues(field=[]))
    extended_fields: NameValues = Field(default_factory=lambda: NameValues(field=[]))
    subscriptions: Subscriptions = Field(default_factory=lambda: Subscriptions(subscription=[]))
    side_effects: Effects = Field(default_factory=lambda: Effects(effect=[]))
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


def checked_item(item: dict[str, Any]) -> dict[str, Any]:
    """`item` itself once it has the original's types and no null (raises pydantic's ValidationError
    otherwise). Returned unchanged, so the extra keys and their order stay as made."""
    _ITEM.validate_python(item)
    return item


def checked_batch(document: dict[str, Any]) -> dict[str, Any]:
    """`document` itself once it is a v1.1 batch response of the original's types."""
    _BATCH.validate_python(document)
    return document
