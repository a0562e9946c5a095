"""Item status codes of SPEC §6, with their messages. Codes above the SPEC table are marked as ours."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    SUCCESS = 1000
    INVALID_INPUT = 400
    CONFLICTING_REQUEST_ID = 409
    INVALID_MOBILE = 1001
    INVALID_EMAIL = 1002
    INVALID_EXTERNAL_ID = 1003
    CUSTOMER_NOT_FOUND = 1012
    REGISTRATION_DATE_OUT_OF_RANGE = 1034
    LOYALTY_TO_NON_LOYALTY = 1046
    EMAIL_REQUIRED_FOR_LOYALTY = 1048
    EXTERNAL_ID_REQUIRED_FOR_LOYALTY = 1049
    INVALID_CHANNEL = 1101
    INVALID_PRIORITY = 1102
    INVALID_SCOPE = 1103
    NO_IDENTIFIER = 1104
    INVALID_SUBSCRIPTION_STATUS = 1106
    PRIMARY_IDENTIFIER_UPDATE = 91005
    IDENTIFIER_UPDATE_NOT_ALLOWED = 91006
    # Ours: the message could not be applied after every retry; it waits in the dead-letter list.
    DEAD_LETTERED = 9001
    # Ours: an unexpected error while applying one item; the item was not applied.
    INTERNAL_ERROR = 9002
    # Warnings
    INVALID_CUSTOM_FIELD = 1017
    SURVIVOR_RETRIEVED = 91009
    EXTENDED_FIELD_FAILED = 91015
    INVALID_REGISTERED_TILL = 91020
    INVALID_ASSOCIATED_TILL = 91021
    # Ours (warnings): a field was older than the stored one; a malformed secondary identifier was ignored;
    # a customer was merged into the target.
    STALE_FIELDS_SKIPPED = 91100
    SECONDARY_IDENTIFIER_IGNORED = 91101
    CUSTOMER_MERGED = 91102
    IDENTIFIER_OCCUPIED = 91007
    # Ours (failures of merge requests and unmerges, SPEC §4).
    MERGE_CUSTOMER_NOT_FOUND = 91200
    MERGE_CUSTOMER_INACTIVE = 91201
    MERGE_SAME_CUSTOMER = 91202
    UNMERGE_NOT_MERGED = 91203
    UNMERGE_SURVIVOR_MERGED = 91204
    UNMERGE_POINTS_REDEEMED = 91205
    UNMERGE_IDENTIFIER_TAKEN = 91206


MESSAGES: dict[Code, str] = {
    Code.SUCCESS: "Customer successfully updated",
    Code.INVALID_INPUT: "Input is invalid, please check request parameters",
    Code.CONFLICTING_REQUEST_ID: "The request id was already used with a different payload",
    Code.INVALID_MOBILE: "Invalid mobile",
    Code.INVALID_EMAIL: "Invalid email",
    Code.INVALID_EXTERNAL_ID: "Invalid external id",
    Code.CUSTOMER_NOT_FOUND: "Cannot find customer with the provided mobile number/external ID/e-mail ID",
    Code.REGISTRATION_DATE_OUT_OF_RANGE: "Registration date is not within the allowed past or future limit",
    Code.LOYALTY_TO_NON_LOYALTY: "Conversion of loyalty customer to non-loyalty is not allowed",
    Code.EMAIL_REQUIRED_FOR_LOYALTY: "Email is required to convert to loyalty customer",
    Code.EXTERNAL_ID_REQUIRED_FOR_LOYALTY: "External id is required to convert to loyalty customer",
    Code.INVALID_CHANNEL: "Invalid channel",
    Code.INVALID_PRIORITY: "Invalid priority",
    Code.INVALID_SCOPE: "Invalid scope",
    Code.NO_IDENTIFIER: "Invalid identifier or no identifier passed",
    Code.INVALID_SUBSCRIPTION_STATUS: "Invalid subscription status",
    Code.PRIMARY_IDENTIFIER_UPDATE: "{identifier} is primary identifier and cannot be updated",
    Code.IDENTIFIER_UPDATE_NOT_ALLOWED: "{identifier} update is not allowed",
    Code.DEAD_LETTERED: "The update could not be applied after retries and was sent to the dead-letter list",
    Code.INTERNAL_ERROR: "Unexpected error while applying the update; nothing of it was applied",
    Code.INVALID_CUSTOM_FIELD: "Provided custom field is invalid",
    Code.SURVIVOR_RETRIEVED: "Retrieved survivor account for the requested merge victim",
    Code.EXTENDED_FIELD_FAILED: "Failed to update extended fields",
    Code.INVALID_REGISTERED_TILL: "Invalid registration till",
    Code.INVALID_ASSOCIATED_TILL: "Invalid attribution till",
    Code.STALE_FIELDS_SKIPPED: "Fields skipped because a newer change is stored",
    Code.SECONDARY_IDENTIFIER_IGNORED: "Malformed secondary identifier ignored",
    Code.CUSTOMER_MERGED: "Customer merged into the updated customer",
    Code.IDENTIFIER_OCCUPIED: "{identifier} is already occupied by some other user, ignoring it",
    Code.MERGE_CUSTOMER_NOT_FOUND: "Cannot find the customer to merge",
    Code.MERGE_CUSTOMER_INACTIVE: "The customer to merge is not active: it was merged into another",
    Code.MERGE_SAME_CUSTOMER: "The survivor and the victim are the same customer",
    Code.UNMERGE_NOT_MERGED: "The customer is not merged: there is no merge to undo",
    Code.UNMERGE_SURVIVOR_MERGED: "The survivor was merged into another customer since: undo that merge first",
    Code.UNMERGE_POINTS_REDEEMED: "The survivor has fewer points left than the victim brought (redeemed)",
    Code.UNMERGE_IDENTIFIER_TAKEN: "An identifier of the victim is now held by another active customer",
}


def message(code: Code, detail: str | None = None, **fmt: str) -> str:
    text = MESSAGES[code].format(**fmt) if fmt else MESSAGES[code]
    return f"{text}: {detail}" if detail else text
