"""`customers import FILE.ndjson`: load customers, one JSON object a line (DESIGN §3).

Invalid lines are reported with their line number and skipped; valid lines still load. A line whose
customer already exists (same user_id, or the same identifiers on one active customer) is skipped, so
importing a file twice changes nothing. Lines are decoded one by one, so a byte that is not UTF-8 spoils its
own line only; numbers must fit the database's columns and text may not hold NUL (PostgreSQL text cannot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import Session

from customer_updates.models.commands import utcnow
from customer_updates.rules.fields import custom_field_value, extended_field_value
from customer_updates.rules.identifiers import normalise
from customer_updates.rules.parse import DATETIME_FORMAT, as_list
from customer_updates.rules.state import IDENTIFIERS, OrgConfig
from customer_updates.services.import_rows import REFUSED, Keys, insert_customers
from customer_updates.services.import_rows import taken as find_taken
from customer_updates.store.orgs import read_org_config

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class ImportedCustomer(BaseModel):
    """One line of the file. Bounds are the columns' (BIGINT points and ids, NUMERIC(14, 2) purchases)."""

    model_config = ConfigDict(extra="ignore")
    org_id: int = Field(gt=0, le=INT32_MAX)
    user_id: int | None = Field(None, gt=0, le=INT64_MAX)
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None
    firstname: str | None = Field(None, max_length=100)
    lastname: str | None = Field(None, max_length=100)
    type: str = Field("LOYALTY", pattern="^(LOYALTY|NON_LOYALTY)$")
    registered_on: datetime | None = None
    loyalty_points: int = Field(0, ge=0, le=INT64_MAX)
    lifetime_points: int = Field(0, ge=0, le=INT64_MAX)
    lifetime_purchases: Decimal = Field(Decimal(0), ge=0, le=Decimal("999999999999.99"), allow_inf_nan=False)
    slab_number: int | None = Field(None, ge=1, le=INT32_MAX)
    fraud_status: str = Field("NONE", pattern="^(CONFIRMED|NONE)$")
    custom_fields: Any = None
    extended_fields: Any = None
    subscriptions: Any = None

    @field_validator("registered_on", mode="before")
    @classmethod
    def _v11_datetime(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) == 19 and value[10] == " ":
            return datetime.strptime(value, DATETIME_FORMAT)
        return value


@dataclass
class ImportReport:
    loaded: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _entries(container: Any, inner: str) -> list[Any]:
    if isinstance(container, dict):
        return as_list(container.get(inner))
    return as_list(container)


class BadLine(Exception):
    """Why a line cannot be read; reported with its number."""


def _text_problem(value: Any) -> str | None:
    """Why a string inside the parsed line cannot be stored, if one cannot."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character (\\u0000), which the database cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate escape (\\ud800 to \\udfff), which is not text"
        return None
    if isinstance(value, dict):
        return next((p for k, v in value.items() for p in (_text_problem(k), _text_problem(v)) if p), None)
    if isinstance(value, list):
        return next((p for p in map(_text_problem, value) if p), None)
    return None


def read_lines(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or the BadLine saying why not) for each non-blank line."""
    import json

    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, BadLine(f"not UTF-8 (byte {exc.start + 1} of the line)")
                continue
        else:
            line = raw
        if not line.strip():
            continue
        if "\x00" in line:
            yield number, BadLine("contains a NUL byte, which the database cannot store")
            continue
        try:
            parsed = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, BadLine(f"not JSON: {exc or 'nested too deeply'}")
            continue
        # A NUL or a lone surrogate in the parsed text can only come from a \u escape: walk only such lines.
        problem = _text_problem(parsed) if "\\u" in line else None
        yield number, (BadLine(problem) if problem else parsed)


def import_customers(session_factory: Callable[[], Any], lines: Iterable[bytes | str], chunk_size: int = 1000,
                     progress: Callable[[int], None] | None = None) -> ImportReport:
    report = ImportReport()
    orgs: dict[int, OrgConfig | None] = {}
    chunk: list[tuple[int, Any]] = []
    for entry in read_lines(lines):
        chunk.append(entry)
        if len(chunk) >= chunk_size:
            _load_chunk(session_factory, chunk, orgs, report)
            if progress:
                progress(len(chunk))
            chunk = []
    if chunk:
        _load_chunk(session_factory, chunk, orgs, report)
        if progress:
            progress(len(chunk))
    return report


def _load_chunk(session_factory: Callable[[], Any], chunk: list[tuple[int, Any]],
                orgs: dict[int, OrgConfig | None], report: ImportReport) -> None:
    with session_factory() as session:
        valid: list[tuple[int, ImportedCustomer, dict[str, str]]] = []
        for number, raw in chunk:
            if isinstance(raw, BadLine):
                report.errors.append((number, str(raw)))
                continue
            try:
                customer = ImportedCustomer.model_validate(raw)
            except ValidationError as exc:
                report.errors.append((number, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}"
                                                        for e in exc.errors())))
                continue
            if customer.org_id not in orgs:
                orgs[customer.org_id] = read_org_config(session, customer.org_id)
            org = orgs[customer.org_id]
            if org is None:
                report.errors.append((number, f"org_id {customer.org_id} is not a known org"))
                continue
            idents = {}
            for name in IDENTIFIERS:
                value = getattr(customer, name)
                if value:
                    normal = normalise(name, str(value), org)
                    if normal is None:
                        report.errors.append((number, f"{name} is malformed"))
                        break
                    idents[name] = normal
            else:
                if not idents:
                    report.errors.append((number, "no identifier (mobile, email or external_id)"))
                    continue
                valid.append((number, customer, idents))
        _insert_valid(session, valid, orgs, report)


def _insert_valid(session: Session, valid: list[tuple[int, ImportedCustomer, dict[str, str]]],
                  orgs: dict[int, OrgConfig | None], report: ImportReport) -> None:
    taken = find_taken(session, (Keys(c.org_id, c.user_id, idents) for _, c, idents in valid))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, customer, idents in valid:
        owners = {taken.get((customer.org_id, name, value)) for name, value in idents.items()} - {None}
        if customer.user_id is not None and (customer.org_id, "id", str(customer.user_id)) in taken:
            report.skipped += 1
            continue
        if owners:
            if len(owners) == 1 and all(taken.get((customer.org_id, n, v)) for n, v in idents.items()):
                report.skipped += 1  # the same customer, already loaded
            else:
                report.errors.append((number, "an identifier already belongs to another customer"))
            continue
        for name, ident in idents.items():
            taken[(customer.org_id, name, ident)] = -number
        org = orgs[customer.org_id]
        assert org is not None
        row: dict[str, Any] = {"org_id": customer.org_id, **{n: idents.get(n) for n in IDENTIFIERS},
               "firstname": customer.firstname, "lastname": customer.lastname, "type": customer.type,
               "registered_on": customer.registered_on or now, "fraud_status": customer.fraud_status,
               "loyalty_points": customer.loyalty_points, "lifetime_points": customer.lifetime_points,
               "lifetime_purchases": customer.lifetime_purchases, "slab_number": customer.slab_number,
               "points_summaries": [{"programId": org.program_id, "lifetimePoints": customer.lifetime_points,
                                     "loyaltyPoints": customer.loyalty_points}] if org.program_id else [],
               "stamps": {}, "fired": [], "active": True, "merged_into": None, "updated_on": now,
               "tier_expiry_date": None, "registered_till": None, "associated_with": None,
               **_profile_fields(customer, org)}
        if customer.user_id is not None:
            row["user_id"] = customer.user_id
        rows.append(row)
        numbers.append(number)
    if not rows:
        session.commit()  # ends the lookup's transaction (and empties the staging table)
        return
    try:
        insert_customers(session, rows)
    except REFUSED:
        # A row the checks above let through and the database refuses: load the chunk's rows one by one, so
        # that only the refused lines are reported and the others still load.
        session.rollback()
        for number, row in zip(numbers, rows, strict=True):
            try:
                insert_customers(session, [row])
            except REFUSED as exc:
                session.rollback()
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]  # details quote values
                report.errors.append((number, f"refused by the database: {reason}"))
            else:
                report.loaded += 1
        return
    report.loaded += len(rows)


def _profile_fields(customer: ImportedCustomer, org: OrgConfig) -> dict[str, Any]:
    """The customer row's JSON columns of fields and subscriptions (store/customers.row_values' shapes);
    values the org does not accept are left out, and the first of a repeated name is kept."""
    custom: dict[str, list[Any]] = {}
    extended: dict[str, list[Any]] = {}
    subscriptions: dict[str, list[Any]] = {}
    for entry in _entries(customer.custom_fields, "field"):
        value: str | None = custom_field_value(org, str(entry.get("name")), entry.get("value")) \
            if isinstance(entry, dict) else None
        if value is not None:
            custom.setdefault(str(entry["name"]), [value, None])
    for entry in _entries(customer.extended_fields, "field"):
        if isinstance(entry, dict):
            value = extended_field_value(org.extended_fields.get(str(entry.get("name"))), entry.get("value"))
            if value is not None:
                extended.setdefault(str(entry["name"]), [value, None])
    for entry in _entries(customer.subscriptions, "subscription"):
        if isinstance(entry, dict) and str(entry.get("channel", "")).upper() in ("SMS", "EMAIL") \
                and str(entry.get("priority", "")).upper() in ("TRANS", "BULK"):
            status = 1 if str(entry.get("is_subscribed", entry.get("status", "1"))) == "1" else 0
            subscriptions.setdefault(f"{str(entry['channel']).upper()}:{str(entry['priority']).upper()}",
                                     [status, "ALL", None])
    return {"custom_fields": custom, "extended_fields": extended, "subscriptions": subscriptions}
