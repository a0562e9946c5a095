"""Shapes of the v1.1 requests and responses, for the OpenAPI document.

The routes do not validate bodies with these models: a wrong field is the worker's business and becomes
a per-item code (SPEC §6), as in the original API, instead of rejecting the whole batch. The models say
what a well-formed request looks like and what every answer contains.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_Open = ConfigDict(extra="allow")
_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"


# -- request ---------------------------------------------------------------------------------------------

class CustomFieldInput(BaseModel):
    name: str = Field(max_length=100, description="A custom field configured for the org.")
    value: str = Field(max_length=250, description="A multi-select value is a JSON-array string.")


class ExtendedFieldInput(BaseModel):
    name: str = Field(max_length=100, description="An extended field enabled for the org.")
    value: str | int | float = Field(description="Checked against the field's type; dates as YYYY-MM-DD.")


class CustomFieldsInput(BaseModel):
    field: CustomFieldInput | list[CustomFieldInput]


class ExtendedFieldsInput(BaseModel):
    field: ExtendedFieldInput | list[ExtendedFieldInput]


class SubscriptionInput(BaseModel):
    priority: Literal["TRANS", "BULK"]
    channel: Literal["sms", "email"]
    is_subscribed: Literal["1", "0"]
    scope: Literal["all"] = "all"


class SubscriptionsInput(BaseModel):
    subscription: SubscriptionInput | list[SubscriptionInput]


class FraudStatusInput(BaseModel):
    status: Literal["CONFIRMED", "NONE"]


class CustomerUpdateInput(BaseModel):
    """One customer to update. Pass at least one identifier (mobile, email, external_id or id); an
    empty string counts as not passed."""

    mobile: str | None = Field(None, max_length=20, pattern=r"^\+?[0-9]{8,15}$", examples=["919800000001"])
    email: str | None = Field(None, max_length=254, examples=["asha@example.com"])
    external_id: str | None = Field(None, max_length=100)
    id: int | Annotated[str, Field(pattern=r"^[0-9]{1,18}$")] | None = Field(
        None, description="The user_id.")
    firstname: str | None = Field(None, max_length=100)
    lastname: str | None = Field(None, max_length=100)
    registered_on: str | None = Field(None, pattern=_DATETIME, examples=["2021-03-04 10:00:00"])
    registered_till: str | None = Field(None, max_length=100, description="A till code of the org.")
    associated_with: str | None = Field(None, max_length=100, description="A till code of the org.")
    type: Literal["LOYALTY", "NON_LOYALTY"] | None = None
    custom_fields: CustomFieldsInput | None = None
    extended_fields: ExtendedFieldsInput | None = None
    subscriptions: SubscriptionsInput | None = None
    fraud_status: FraudStatusInput | Literal["CONFIRMED", "NONE"] | None = None


class UpdateRoot(BaseModel):
    customer: CustomerUpdateInput | list[CustomerUpdateInput] = Field(
        description="One customer, or a list of them (at most the configured batch limit).")


class UpdateBody(BaseModel):
    """The v1.1 body `{"root": {"customer": [...]}}`."""

    root: UpdateRoot


UPDATE_EXAMPLE: dict[str, Any] = {"root": {"customer": [{
    "mobile": "919800000001", "lastname": "Rao-Iyer",
    "extended_fields": {"field": [{"name": "dob", "value": "1990-04-12"}]},
    "custom_fields": {"field": [{"name": "favourite_drink", "value": "cortado"}]},
    "subscriptions": {"subscription": [{"priority": "TRANS", "channel": "sms", "is_subscribed": "1",
                                        "scope": "all"}]},
}]}}


# -- responses -------------------------------------------------------------------------------------------

class ItemWarning(BaseModel):
    code: int
    message: str


class Warnings(BaseModel):
    warning: list[ItemWarning]


class ItemStatus(BaseModel):
    success: Literal["true", "false"]
    code: int = Field(description="1000 on success, else the SPEC code of the failure.")
    message: str
    warnings: Warnings


class NameValue(BaseModel):
    model_config = _Open
    name: str
    value: Any = None


class NameValues(BaseModel):
    field: list[NameValue]


class SubscriptionState(BaseModel):
    model_config = _Open
    channel: str
    priority: str
    scope: str | None = None
    status: str = Field(description="`1` subscribed, `0` unsubscribed.")


class Subscriptions(BaseModel):
    subscription: list[SubscriptionState]


class Effects(BaseModel):
    effect: list[dict[str, Any]]


class PointsSummaries(BaseModel):
    points_summary: list[dict[str, Any]]


class CustomerItem(BaseModel):
    """A customer in the v1.1 item shape. A failed item has only the identifiers passed and item_status."""

    model_config = _Open
    user_id: int | None = None
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None
    id: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    lifetime_points: int | None = None
    lifetime_purchases: float | None = None
    loyalty_points: int | None = None
    current_slab: str | None = None
    tier_expiry_date: str | None = None
    points_summaries: PointsSummaries | None = None
    registered_on: str | None = None
    updated_on: str | None = None
    type: str | None = None
    fraud_status: str | None = None
    custom_fields: NameValues | None = None
    extended_fields: NameValues | None = None
    subscriptions: Subscriptions | None = None
    side_effects: Effects | None = None
    item_status: ItemStatus


class BatchStatus(BaseModel):
    success: Literal["true", "false"] = Field(description='"false" only when every item failed (code 500).')
    code: int = Field(description="200 all succeeded, 201 some failed, 500 all failed.")
    message: str
    total: int
    success_count: int


class Customers(BaseModel):
    customer: list[CustomerItem]


class BatchBody(BaseModel):
    status: BatchStatus
    customers: Customers


class BatchResponse(BaseModel):
    """The v1.1 response (SPEC §6). Items are in request order."""

    response: BatchBody


class AcceptedStatus(BaseModel):
    success: Literal["true"]
    code: Literal[202]
    message: str
    total: int | None = None


class AcceptedBody(BaseModel):
    status: AcceptedStatus
    batch_id: str
    result_url: str = Field(description="GET it (with the same credentials) for the v1.1 response.")


class AcceptedResponse(BaseModel):
    """The batch is queued but its result is not ready yet."""

    response: AcceptedBody


class ErrorStatus(BaseModel):
    success: Literal["false"]
    code: int
    message: str
    errorCode: int | None = Field(None, description="4000: the credentials may not update customers.")


class ErrorBody(BaseModel):
    status: ErrorStatus


class ErrorResponse(BaseModel):
    """The v1.1 error body."""

    response: ErrorBody
