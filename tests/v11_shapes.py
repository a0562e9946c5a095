"""Golden shapes of the original API's v1.1 documents (tests/fixtures/v11, from its documentation) and the
comparisons a client of the original would make: same keys, same JSON types, extra keys allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import xmltodict
from pydantic import BaseModel, ConfigDict

SAMPLES = Path(__file__).parent / "fixtures" / "v11"
# Elements that repeat in the XML form: lists in the JSON form.
XML_LISTS = ("customer", "points_summary", "field", "subscription", "effect", "warning", "warning_details")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_problems(golden: Any, ours: Any, path: str = "$") -> list[str]:
    """Where `ours` lacks a key of `golden` or has another JSON type. Lists of equal length are compared
    element by element; otherwise each of our elements against the golden's first (its elements share a
    shape). Keys only `ours` has are allowed."""
    if json_type(golden) != json_type(ours):
        return [f"{path}: {json_type(ours)} where the original has {json_type(golden)}"]
    problems: list[str] = []
    if isinstance(golden, dict):
        for key, value in golden.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += shape_problems(value, ours[key], f"{path}.{key}")
    elif isinstance(golden, list) and golden:
        pairs = zip(golden, ours, strict=True) if len(golden) == len(ours) else ((golden[0], o) for o in ours)
        for index, (want, got) in enumerate(pairs):
            problems += shape_problems(want, got, f"{path}[{index}]")
    return problems


def nulls(value: Any, path: str = "$") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, child in value.items() for p in nulls(child, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, child in enumerate(value) for p in nulls(child, f"{path}[{index}]")]
    return []


def from_xml(text: str | bytes) -> Any:
    """An XML document as a client of the original reads it: repeated elements as lists."""
    return xmltodict.parse(text, force_list=XML_LISTS)


def xml_key_problems(golden: Any, ours: Any, path: str = "$") -> list[str]:
    """The keys of the golden document's XML form that our XML lacks (XML has no types but text)."""
    problems: list[str] = []
    if isinstance(golden, dict):
        if not isinstance(ours, dict):
            return [f"{path}: text where the original has elements"]
        for key, value in golden.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += xml_key_problems(value, ours[key], f"{path}.{key}")
    elif isinstance(golden, list) and golden:
        if not isinstance(ours, list):
            return [f"{path}: not repeated"]
        pairs = zip(golden, ours, strict=True) if len(golden) == len(ours) else ((golden[0], o) for o in ours)
        for index, (want, got) in enumerate(pairs):
            problems += xml_key_problems(want, got, f"{path}[{index}]")
    return problems


# -- a client written against the original: its own model of the original's types, strict ----------------

class _Original(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class OriginalStatus(_Original):
    success: Literal["true", "false"]
    code: str
    message: str
    warnings: dict[str, list[str]]


class OriginalSummary(_Original):
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


class OriginalSubscription(_Original):
    channel: str
    priority: str
    scope: str
    status: Literal["1", "0"]


class OriginalCustomer(_Original):
    """Keys every successful item has in the original; a failed item has only item_status and echoes."""

    user_id: int | None = None
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    lifetime_points: int | None = None
    loyalty_points: int | None = None
    lifetime_purchases: int | float | None = None
    current_slab: str | None = None
    tier_expiry_date: str | None = None
    points_summaries: dict[str, list[OriginalSummary]] | None = None
    registered_on: str | None = None
    updated_on: str | None = None
    type: str | None = None
    source: str | None = None
    fraud_status: str | None = None
    custom_fields: dict[str, list[dict[str, str]]] | None = None
    extended_fields: dict[str, list[dict[str, str]]] | None = None
    subscriptions: dict[str, list[OriginalSubscription]] | None = None
    item_status: OriginalStatus


class OriginalBatchStatus(_Original):
    success: Literal["true", "false"]
    code: int
    message: str
    total: str
    success_count: str


class OriginalBody(_Original):
    status: OriginalBatchStatus
    customers: dict[str, list[OriginalCustomer]]


class OriginalResponse(_Original):
    response: OriginalBody


SUCCESS_KEYS = ("user_id", "mobile", "email", "external_id", "firstname", "lastname", "lifetime_points",
                "loyalty_points", "lifetime_purchases", "current_slab", "tier_expiry_date", "points_summaries",
                "registered_on", "updated_on", "type", "source", "fraud_status", "custom_fields", "extended_fields",
                "subscriptions", "side_effects")


def as_original_client(document: Any) -> OriginalResponse:
    """Parse a batch document as a client of the original does; a successful item lacking one of the
    original's keys fails too."""
    parsed = OriginalResponse.model_validate(document)
    for item in document["response"]["customers"]["customer"]:
        if item["item_status"]["success"] == "true":
            missing = [key for key in SUCCESS_KEYS if key not in item]
            assert not missing, f"a successful item lacks {missing}"
    return parsed


def as_original_item(item: Any) -> OriginalCustomer:
    return OriginalCustomer.model_validate(item)
