"""The original's XML form: bodies read as the JSON documents they carry, unsafe XML refused with 400,
and no input, however broken, gets anything but a document or a 400."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_updates.http.body import update_items
from customer_updates.http.errors import ApiError
from customer_updates.http.xml import body_as_json, parse_body, to_xml
from customer_updates.rules.parse import ItemRejected, parse_item
from tests.v11_shapes import sample

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<root><customer><mobile>&lol3;</mobile></customer></root>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE root [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<root><customer><mobile>&xxe;</mobile></customer></root>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE root SYSTEM "http://127.0.0.1:1/evil.dtd">
<root><customer><mobile>919800000001</mobile></customer></root>"""


def test_the_documented_request_in_xml_gives_the_same_items_as_in_json():
    request = sample("update-request.json")
    xml = to_xml(request).encode()

    from_xml = update_items(body_as_json(xml), 100)
    from_json = update_items(json.dumps(request).encode(), 100)

    assert len(from_xml) == 1
    assert parse_item(from_xml[0]) == parse_item(from_json[0])


def test_a_single_repeated_element_and_empty_elements_read_as_the_json_form_does():
    body = b"""<root><customer><mobile>919800000001</mobile><email/><fraud_status><status/></fraud_status>
    <custom_fields><field><name>age</name><value>46</value></field></custom_fields></customer></root>"""

    items = update_items(body_as_json(body), 100)

    item = parse_item(items[0])
    assert (item.identifiers, item.fraud_status, item.custom_fields) == ({"mobile": "919800000001"}, None,
                                                                         [("age", "46")])


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_entity_expansion_and_external_references_are_refused_with_400(body):
    with pytest.raises(ApiError) as refused:
        parse_body(body)

    assert refused.value.http_status == 400


@pytest.mark.parametrize("body", [b"", b"<root>", b"not xml", b"<a></b>", b"<root>\xff</root>",
                                  b"<" * 5000, b"<a>" * 3000 + b"</a>" * 3000])
def test_malformed_xml_is_refused_with_400(body):
    with pytest.raises(ApiError) as refused:
        parse_body(body)

    assert refused.value.http_status == 400


_names = st.sampled_from(["root", "customer", "mobile", "email", "id", "field", "name", "value", "fraud_status",
                          "status", "subscriptions", "subscription", "x", "a:b"])
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@st.composite
def _xml(draw: st.DrawFn) -> bytes:
    def element(depth: int) -> str:
        name = draw(_names)
        if depth > 3 or draw(st.booleans()):
            body = draw(_text).replace("&", "&amp;").replace("<", "&lt;")
        else:
            body = "".join(element(depth + 1) for _ in range(draw(st.integers(0, 3))))
        return f"<{name}>{body}</{name}>"

    document = element(0)
    noise = draw(st.sampled_from(["", "<!DOCTYPE r>", "<!DOCTYPE r [<!ENTITY e 'x'>]>", "&e;", "<?pi x?>", "]]>"]))
    cut = draw(st.integers(0, len(document)))
    return (document[:cut] + noise + document[cut:]).encode() if draw(st.booleans()) else document.encode()


@settings(max_examples=150, deadline=None)
@given(_xml())
def test_any_xml_body_gives_items_or_a_400_and_never_crashes(body):
    try:
        items = update_items(body_as_json(body), 100)
    except ApiError as exc:
        assert exc.http_status == 400
        return
    for item in items:
        with contextlib.suppress(ItemRejected):  # a per-item code is a fine answer; any other error is not
            parse_item(item)
