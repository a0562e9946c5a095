"""Shapes of the v1.1 requests and responses, for the OpenAPI document.

The routes do not validate bodies with these models: a wrong field is the worker's business and becomes
a per-item code (SPEC §6), as in the original API, instead of rejecting the whole batch. The models say
what a well-formed request looks like and what every answer contains.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from customer_updates.models import v11

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
    status: Literal["CONFIRMED", "NONE", ""] = Field(description='"" counts as not passed (the original\'s sample).')


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
    fraud_status: FraudStatusInput | Literal["CONFIRMED", "NONE", ""] | None = None


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

# The v1.1 documents with the original's types: one model for every way out (models/v11.py).
CustomerItem = v11.CustomerItem
BatchResponse = v11.BatchDocument


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
