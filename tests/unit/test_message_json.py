"""The worker's message decoder reads plain JSON as the json module does, with no type hooks
(customer_updates/worker/decoder.py): client data never turns into other Python types."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kombu.utils import json as kombu_json

from customer_updates.worker import decoder

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text()
           | st.sampled_from(["__type__", "__value__", "datetime", "Zoë", "\u2028", "\x00", "\\u005f"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | st.sampled_from(["__type__", "__value__"]), inner,
                                        max_size=4), max_leaves=20)


def _decoded(text: str | bytes, decode: Any) -> str:
    try:
        return repr(decode(text))  # repr: 1, 1.0 and True differ, and so do key orders
    except Exception as exc:
        return f"raises {type(exc).__name__}"


def _plain(text: str | bytes) -> Any:
    return json.loads(text)


@given(values, st.booleans(), st.booleans())
def test_any_json_text_decodes_as_the_json_module_decodes_it(value, ascii_only, as_bytes):
    dumped = json.dumps(value, ensure_ascii=ascii_only)
    text: str | bytes = dumped.encode("utf-8", "surrogatepass") if as_bytes else dumped
    assert _decoded(text, decoder.loads) == _decoded(text, _plain)


@given(st.text(max_size=40))
def test_any_text_at_all_decodes_or_fails_as_the_json_module_decides(text):
    assert _decoded(text, decoder.loads) == _decoded(text, _plain)


def test_kombu_type_tags_in_client_data_stay_plain_objects():
    tagged = kombu_json.dumps({"at": datetime(2026, 1, 2, 3, 4, 5), "amount": Decimal("1.10"),
                               "odd": {"__type__": "no such type", "__value__": 1}})
    decoded = decoder.loads(tagged)
    assert decoded["at"] == {"__type__": "datetime", "__value__": "2026-01-02T03:04:05"}
    assert decoded["amount"] == {"__type__": "decimal", "__value__": "1.10"}
    assert decoded["odd"] == {"__type__": "no such type", "__value__": 1}


def test_integers_beyond_64_bits_stay_exact():
    big = 123456789012345678901234567890
    assert decoder.loads(f'{{"org_id": {big}}}') == {"org_id": big}
    assert isinstance(decoder.loads("[18446744073709551616]")[0], int)
