"""The original API's XML form of the v1.1 documents (SPEC §6): XML bodies in, `format=xml` answers out.

Parsing goes through defusedxml first, with document type declarations forbidden: a v1.1 body never
needs one, and refusing them refuses entity expansion (billion laughs) and external entities or DTDs
before anything is expanded or fetched. xmltodict then turns the same bytes into the dict a JSON body
gives (repeated elements become lists; a single one stays an object, which the items accept anyway).
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

import defusedxml
import defusedxml.ElementTree
import xmltodict
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from customer_updates.http.errors import ApiError
from customer_updates.models.v11 import checked_batch

XML_MEDIA_TYPE = "application/xml"
# For the OpenAPI document: the answers' XML form (`format=xml`), beside the JSON the model describes.
XML_CONTENT: dict[str, Any] = {XML_MEDIA_TYPE: {"schema": {"type": "string", "description":
                                                           "The same v1.1 document in the original's XML."}}}
_XML_TYPES = ("application/xml", "text/xml")


def is_xml_body(request: Request) -> bool:
    """Whether the body is XML by its Content-Type (application/xml, text/xml, or a +xml type)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in _XML_TYPES or media.endswith("+xml")


def _text_values(node: Any) -> Any:
    """XML has text only: attributes and mixed content of no v1.1 meaning are dropped, empty elements are
    "" (what an empty JSON value is), so `<email/>` and `"email": ""` both mean not passed."""
    if isinstance(node, dict):
        if "#text" in node and all(key.startswith("@") for key in node if key != "#text"):
            return node["#text"]
        return {key: _text_values(value) for key, value in node.items() if not key.startswith(("@", "#"))}
    if isinstance(node, list):
        return [_text_values(value) for value in node]
    return "" if node is None else node


def parse_body(raw: bytes) -> dict[str, Any]:
    """The dict of an XML body; ApiError 400 for malformed or unsafe XML."""
    if not raw.strip():
        raise ApiError.invalid("the body is empty; send <root><customer>...</customer></root>")
    try:
        defusedxml.ElementTree.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parsed = _text_values(xmltodict.parse(raw, disable_entities=True))
    except defusedxml.DefusedXmlException:
        raise ApiError.invalid("XML with a document type, entities or external references is refused") from None
    except (ParseError, ExpatError, ValueError, UnicodeError, RecursionError) as exc:
        raise ApiError.invalid(f"malformed XML: {type(exc).__name__}") from None
    if not isinstance(parsed, dict):
        raise ApiError.invalid("the XML body has no root element")
    return parsed


def body_as_json(raw: bytes) -> bytes:
    """An XML body as the JSON bytes of the same document, for the JSON body reader and its limits."""
    return json.dumps(parse_body(raw), ensure_ascii=False).encode()


def to_xml(document: dict[str, Any]) -> str:
    """A v1.1 document as the original's XML: lists as repeated elements, each value as its text."""
    return str(xmltodict.unparse(document, pretty=False, short_empty_elements=True))


def respond(document: dict[str, Any], format: str, status_code: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    """A v1.1 batch document, checked against the original's types, as JSON or as XML."""
    checked_batch(document)
    if format == "xml":
        return Response(to_xml(document), status_code=status_code, media_type=XML_MEDIA_TYPE, headers=headers)
    return JSONResponse(document, status_code=status_code, headers=headers)
