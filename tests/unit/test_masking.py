"""What Flower shows of a message (`kwargsrepr`): personal data masked by key and by look, cheaply."""

from __future__ import annotations

import string
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from customer_updates.messaging.sending import mask_customer, masked_repr


def _shown(customer: Any) -> str:
    return masked_repr([{"org_id": 1, "request_id": "req-1", "customer": customer}])


def test_personal_keys_are_masked_in_any_case_and_spelling():
    customer = {"MOBILE": "919811111111", "Phone": "98111", "msisdn": "4477001", "E-Mail": "Asha",
                "FirstName": "Asha", "first_name": "Asha", "Last_Name": "Rao", "fullName": "Asha Rao",
                "EXTERNAL_ID": "ext-42", "name": "Asha", "mail": "x"}
    shown = _shown(customer)
    assert "Asha" not in shown and "Rao" not in shown and "ext-42" not in shown and "98111" not in shown
    assert mask_customer(customer)["MOBILE"] == "**********11"


def test_values_that_look_personal_are_masked_whatever_the_key_and_depth():
    customer = {"notes": "asha@example.com", "alt": "+91 (981) 111-1111", "as_number": 919822222222,
                "custom_fields": {"field": [{"name": "backup", "value": "919833333333"},
                                            {"name": "drink", "value": "flat white"}]},
                "extended_fields": [[{"deep": ["reach me at 98444 44444"]}]],
                "asha@example.org": "a key that is an address"}
    shown = _shown(customer)
    for secret in ("asha@example", "981) 111-1111", "919822222222", "919833333333", "98444 44444"):
        assert secret not in shown
    assert "flat white" in shown


def test_what_is_not_personal_stays_readable():
    masked = mask_customer({"type": "LOYALTY", "loyalty_points": 480, "fraud_status": "NONE",
                            "subscriptions": {"subscription": [{"channel": "SMS", "priority": "BULK"}]}})
    assert masked == {"type": "LOYALTY", "loyalty_points": 480, "fraud_status": "NONE",
                      "subscriptions": {"subscription": [{"channel": "SMS", "priority": "BULK"}]}}


def test_the_request_id_stays_visible_and_the_repr_is_cut_at_1024_characters():
    commands = [{"org_id": 1, "request_id": f"req-{i}", "customer": {"mobile": f"9198{i:08d}"}} for i in range(100)]
    shown = masked_repr(commands)
    assert shown.startswith("{'commands': [{'org_id': 1, 'request_id': 'req-0'")
    assert len(shown) <= 1024


def test_masking_a_huge_message_stays_cheap():
    customer = {"custom_fields": {"field": [{"name": f"f{i}", "value": "v"} for i in range(100_000)]},
                "notes": "x" * 1_000_000, "deep": [[[[[[[[["919811111111"]]]]]]]]]}
    commands = [{"org_id": 1, "request_id": str(i), "customer": customer} for i in range(100)]
    started = time.perf_counter()
    shown = masked_repr(commands)
    assert time.perf_counter() - started < 0.2  # about 1 ms here; the bound leaves room for a loaded machine
    assert "919811111111" not in shown and "xxxxxxxxxx" not in shown


_FILLER = st.one_of(st.text(alphabet=string.ascii_letters + " _", max_size=12), st.integers(-999, 999),
                    st.booleans(), st.none())
_KEYS = st.one_of(st.text(max_size=12),
                  st.sampled_from(["mobile", "email", "firstname", "external_id", "notes", "value", "x"])
                  .flatmap(lambda k: st.sampled_from([k, k.upper(), k.title(), k.capitalize()])))


@st.composite
def _phone(draw: st.DrawFn) -> Any:
    digits = draw(st.text(alphabet=string.digits, min_size=7, max_size=15))
    if draw(st.booleans()):
        return int("1" + digits)  # a mobile sent as a JSON number
    text = draw(st.sampled_from(["", "+"]))
    for digit in digits:
        text += draw(st.sampled_from(["", "", " ", "-", ".", "(", ")"])) + digit
    return text


@st.composite
def _customer_with(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    secret = draw(st.one_of(st.emails(), _phone()))
    filler = st.recursive(_FILLER, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=12)
    customer: dict[str, Any] = draw(st.dictionaries(_KEYS, filler, max_size=6))
    holder: Any = customer
    for _ in range(draw(st.integers(0, 3))):  # put the secret at some depth, in dicts and lists
        inner: dict[str, Any] = {}
        holder[draw(_KEYS)] = [inner] if draw(st.booleans()) else inner
        holder = inner
    holder[draw(_KEYS)] = secret
    return customer, secret


@settings(max_examples=150, deadline=None)
@given(_customer_with())
def test_an_email_or_phone_like_value_under_any_key_never_reaches_the_repr(case):
    customer, secret = case
    assert str(secret) not in _shown(customer)
