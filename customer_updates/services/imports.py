"""`customers import FILE.ndjson`: load customers, one JSON object a line (DESIGN §3).

Invalid lines are reported with their line number and skipped; valid lines still load. A line whose
customer already exists (same user_id, or the same identifiers on one active customer) is skipped, so
importing a file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.rules.fields import custom_field_value, extended_field_value
from customer_updates.rules.identifiers import normalise
from customer_updates.rules.parse import DATETIME_FORMAT, as_list
from customer_updates.rules.state import IDENTIFIERS, OrgConfig
from customer_updates.store.orgs import read_org_config
from customer_updates.store.sql import dialect_insert, is_postgres


class ImportedCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    org_id: int = Field(gt=0)
    user_id: int | None = Field(None, gt=0)
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None
    firstname: str | None = Field(None, max_length=100)
    lastname: str | None = Field(None, max_length=100)
    type: str = Field("LOYALTY", pattern="^(LOYALTY|NON_LOYALTY)$")
    registered_on: datetime | None = None
    loyalty_points: int = Field(0, ge=0)
    lifetime_points: int = Field(0, ge=0)
    lifetime_purchases: Decimal = Field(Decimal(0), ge=0)
    slab_number: int | None = None
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


def read_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    import json

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, exc


def import_customers(session_factory: Callable[[], Any], lines: Iterable[str], chunk_size: int = 1000,
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
            if isinstance(raw, Exception):
                report.errors.append((number, f"not JSON: {raw}"))
                continue
            try:
                customer = ImportedCustomer.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                report.errors.append((number, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"))
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
    taken = _taken(session, valid)
    now = utcnow()
    rows: list[dict[str, Any]] = []
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
    if not rows:
        return
    with_ids = [r for r in rows if "user_id" in r]
    without = [r for r in rows if "user_id" not in r]
    insert = dialect_insert(session)
    for group in (with_ids, without):
        if group:
            session.execute(insert(t.Customer), group)
    if with_ids and is_postgres(session):
        # Explicit user_ids do not advance the sequence; move it past them.
        session.execute(text("SELECT setval(pg_get_serial_sequence('customers', 'user_id'), "
                             "(SELECT COALESCE(MAX(user_id), 1) FROM customers))"))
    session.commit()
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


Valid = list[tuple[int, ImportedCustomer, dict[str, str]]]


def _taken(session: Session, valid: Valid) -> dict[tuple[int, str, str], int]:
    """(org, identifier, value) -> user_id for active customers already holding a value of the chunk."""
    taken: dict[tuple[int, str, str], int] = {}
    by_org: dict[int, dict[str, set[str]]] = {}
    ids: set[int] = set()
    for _, customer, idents in valid:
        org_values = by_org.setdefault(customer.org_id, {n: set() for n in IDENTIFIERS})
        for name, value in idents.items():
            org_values[name].add(value)
        if customer.user_id is not None:
            ids.add(customer.user_id)
    for org_id, values in by_org.items():
        conditions = [getattr(t.Customer, n).in_(v) for n, v in values.items() if v]
        rows = session.execute(select(t.Customer.user_id, t.Customer.mobile, t.Customer.email,
                                      t.Customer.external_id).where(t.Customer.org_id == org_id,
                                                                    t.Customer.active, or_(*conditions)))
        for row in rows:
            for name in IDENTIFIERS:
                value = getattr(row, name)
                if value:
                    taken[(org_id, name, value)] = row.user_id
    if ids:
        for user_id, org_id in session.execute(select(t.Customer.user_id, t.Customer.org_id)
                                               .where(t.Customer.user_id.in_(ids))):
            taken[(org_id, "id", str(user_id))] = user_id
    return taken
