"""Databases for a run: a fresh PostgreSQL database or SQLite file, the bench org, the customers.

Customers are laid out by index so that the workload can aim at each kind of update:

  [0, 80%)     full profiles (mobile, email, names, two custom and three extended fields, an SMS
               subscription): plain updates find them by mobile
  [80%, 90%)   no email yet: identifier fills
  [90%, 100%)  pairs: even index has a mobile and no email (survivor), odd index only an email (victim),
               so `{"mobile": even, "email": odd}` merges the odd customer (a contact, NON_LOYALTY) into
               the even one
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from bench import reference
from customer_updates.models import tables as t
from customer_updates.models.orgfile import OrgSpec
from customer_updates.store.db import dispose_engines, get_engine, session_scope
from customer_updates.store.migrate import upgrade
from customer_updates.store.orgs import load_org

ORG_ID = 7
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

BENCH_ORG: dict[str, Any] = {
    "id": ORG_ID, "name": "Bench Org",
    "configs": {"CONF_REGISTRATION_PRIMARY_KEY": "MOBILE", "CONF_ALLOW_MOBILE_UPDATE": True,
                "CONF_ALLOW_EMAIL_UPDATE": True, "CONF_LOYALTY_ALLOW_EXTERNAL_ID_UPDATE": True},
    "custom_fields": [{"name": "favourite_drink"}, {"name": "postcode", "regex": "^[0-9]{5,6}$"},
                      {"name": "interests", "multi_select": True}],
    "extended_fields": [{"name": "gender", "type": "enum", "values": ["Male", "Female", "Other"]},
                        {"name": "dob", "type": "date"}, {"name": "kids", "type": "integer"},
                        {"name": "city", "type": "string"}],
    "tills": [{"code": "store.1", "store": "One"}, {"code": "store.2", "store": "Two"}],
    "program": {"id": 701, "slabs": [{"number": 1, "name": "Bronze", "threshold": 0},
                                     {"number": 2, "name": "Silver", "threshold": 500, "validity_months": 12}]},
    "side_effects": {"first_fill": {"email": 25},
                     "profile_completion": {"points": 100, "fields": ["mobile", "email", "firstname",
                                                                      "lastname", "extended:dob"]}},
}


@dataclass(frozen=True)
class Layout:
    customers: int

    @property
    def full_end(self) -> int:
        return self.customers * 8 // 10

    @property
    def fill_end(self) -> int:
        return self.customers * 9 // 10

    def mobile(self, i: int) -> str:
        return f"9197{i:08d}"

    def email(self, i: int) -> str:
        return f"c{i}@bench.example"

    def identifiers(self, i: int) -> tuple[str | None, str | None]:
        if i < self.full_end:
            return self.mobile(i), self.email(i)
        if i < self.fill_end or (i - self.fill_end) % 2 == 0:
            return self.mobile(i), None
        return None, self.email(i)


def database_url(db: str, name: str) -> str:
    """A fresh, empty database for this run."""
    if db == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="cu-bench-")) / "bench.db"
        return f"sqlite:///{path}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def seed(url: str, layout: Layout, chunk: int = 5000) -> None:
    upgrade(url)
    reference.create_tables(url)
    with session_scope(url) as session:
        load_org(session, OrgSpec.model_validate(BENCH_ORG))
    registered = datetime(2020, 1, 1)
    stamp = registered.isoformat()  # when the seeded fields were set
    for start in range(0, layout.customers, chunk):
        rows: list[dict[str, Any]] = []
        ref_rows: list[dict[str, Any]] = []
        for i in range(start, min(layout.customers, start + chunk)):
            mobile, email = layout.identifiers(i)
            full = i < layout.full_end
            custom, extended, subscribed = profile_fields(i) if full else ({}, {}, [])
            rows.append({"user_id": i + 1, "org_id": ORG_ID, "mobile": mobile, "email": email,
                         "firstname": f"First{i}", "lastname": f"Last{i}", "registered_on": registered,
                         # A pair's victim (email only) is a contact: members are never merged by an
                         # update (SPEC §3.3), and the merging updates must merge.
                         "type": "LOYALTY" if mobile else "NON_LOYALTY", "fraud_status": "NONE",
                         "loyalty_points": 0, "lifetime_points": 0,
                         "lifetime_purchases": 0, "points_summaries": [], "stamps": {},
                         # Profile completion was awarded long ago to full profiles, as in a live org.
                         "fired": ["profile_completion"] if full else [],
                         "active": True, "updated_on": registered,
                         # The shapes of store/customers.row_values.
                         "custom_fields": {name: [value, stamp] for name, value in custom.items()},
                         "extended_fields": {name: [value, stamp] for name, value in extended.items()},
                         "subscriptions": {f"{channel}:{priority}": [1, "ALL", stamp]
                                           for channel, priority in subscribed}})
            ref_rows.append({"mobile": mobile, "email": email, "firstname": f"First{i}", "lastname": f"Last{i}",
                             "custom_fields": custom or None, "extended_fields": extended or None,
                             "subscriptions": {f"{c}:{p}": "1" for c, p in subscribed} or None})
        with session_scope(url) as session:
            session.execute(insert(t.Customer), rows)
            session.execute(insert(reference.RefCustomer), ref_rows)
    engine = get_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Explicit user_ids do not advance the sequence; then statistics for every table, as a live
            # database has them (autoanalyze would wait a minute, longer than a run).
            conn.execute(text("SELECT setval(pg_get_serial_sequence('customers', 'user_id'), "
                              "(SELECT MAX(user_id) FROM customers))"))
            conn.execute(text("ANALYZE"))
    dispose_engines()


def profile_fields(i: int) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """What a full profile holds from before the run, as in a live org: custom and extended fields and a
    subscription. Without them the fields table started empty, and its statistics (taken at seeding) said
    so for the whole run: PostgreSQL then read the whole table for each batch's fields."""
    custom = {"favourite_drink": ("tea", "coffee", "juice")[i % 3], "postcode": f"{400000 + i % 500000}"}
    extended = {"city": ("Mumbai", "Surat", "Agra")[i % 3], "kids": str(i % 4),
                "dob": f"19{70 + i % 25}-0{1 + i % 9}-1{i % 9}"}
    return custom, extended, [("SMS", "TRANS")]


def drop_database(db: str, url: str) -> None:
    if db == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()
