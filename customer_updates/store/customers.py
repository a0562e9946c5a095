"""Customers in and out of the database: load (and lock) everything a batch can touch, write back diffs.

Loading is set-based (one query for a whole batch) and writing one statement per batch, because round
trips, not SQL, are what limit a worker (bench/HISTORY.md). A customer's fields and subscriptions are
JSON columns of their row (migration 0003): they come with the row the batch locks and go with it.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.rules.state import IDENTIFIERS, CustomerState, FieldValue, SubscriptionState
from customer_updates.store.sql import in_param, is_postgres, update_rows

_SCALARS = (
    "org_id", "mobile", "email", "external_id", "firstname", "lastname", "registered_on", "registered_till",
    "associated_with", "type", "fraud_status", "loyalty_points", "lifetime_points", "lifetime_purchases",
    "slab_number", "tier_expiry_date", "points_summaries", "active", "merged_into", "updated_on",
)


# The columns a state is made of, in the order they are selected (CustomerState has these attributes,
# but for the last three: `custom`, `extended` and `subscriptions`).
_LOADED = ("user_id", *_SCALARS, "stamps", "fired", "custom_fields", "extended_fields", "subscriptions")
# The scalars of a state as a tuple, read in C: a changed row's are read twice, the rules' copies compared.
_scalars_of = operator.attrgetter("user_id", *_SCALARS)
_ROW_SCALARS = ("user_id", *_SCALARS)


def _stamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _state(row: Any) -> CustomerState:
    # Filled as a dict and not through the dataclass's __init__ and a setattr per column: this runs for
    # every customer a batch touches, so the cost of the other way is paid per customer.
    values = dict(zip(_LOADED, row, strict=True))
    values["lifetime_purchases"] = Decimal(values["lifetime_purchases"] or 0)
    values["points_summaries"] = [dict(s) for s in (values["points_summaries"] or [])]
    values["stamps"] = {k: datetime.fromisoformat(v) for k, v in (values["stamps"] or {}).items()}
    values["fired"] = set(values["fired"] or [])
    values["custom"] = {name: FieldValue(value, _stamp(at))
                        for name, (value, at) in (values.pop("custom_fields") or {}).items()}
    values["extended"] = {name: FieldValue(value, _stamp(at))
                          for name, (value, at) in (values.pop("extended_fields") or {}).items()}
    subscriptions = {}
    for key, (status, scope, at) in (values["subscriptions"] or {}).items():
        channel, _, priority = key.partition(":")
        subscriptions[(channel, priority)] = SubscriptionState(status, scope, _stamp(at))
    values["subscriptions"] = subscriptions
    state = object.__new__(CustomerState)
    state.__dict__.update(values)
    return state


def row_values(state: CustomerState) -> dict[str, Any]:
    """The state as column values. Timestamps inside JSON columns stay datetimes: the JSON encoder
    (jsontext, for both databases) writes them as ISO text in C, with no isoformat() call per value in
    Python."""
    values = dict(zip(_SCALARS, _scalars_of(state)[1:], strict=True))
    values.update(_json_values(state, JSON_COLUMNS))
    return values


# JSON columns of the row: the state attribute each is compared on, and how its value is made. A changed
# row sends these only when they changed (null otherwise, which the UPDATE reads as "keep": store/sql.py):
# most updates change a field or two, and encoding every JSON column of the row, then PostgreSQL parsing it
# again, was a large part of writing the row.
_JSON: dict[str, tuple[str, Callable[[CustomerState], Any]]] = {
    "points_summaries": ("points_summaries", lambda s: s.points_summaries),
    "stamps": ("stamps", lambda s: dict(s.stamps)),
    "fired": ("fired", lambda s: sorted(s.fired)),
    "custom_fields": ("custom", lambda s: {name: [fv.value, fv.issued_at] for name, fv in s.custom.items()}),
    "extended_fields": ("extended",
                        lambda s: {name: [fv.value, fv.issued_at] for name, fv in s.extended.items()}),
    "subscriptions": ("subscriptions", lambda s: {f"{channel}:{priority}": [sub.status, sub.scope, sub.issued_at]
                                                  for (channel, priority), sub in s.subscriptions.items()}),
}
JSON_COLUMNS = tuple(_JSON)


def _json_values(state: CustomerState, names: Iterable[str]) -> dict[str, Any]:
    """The values of these JSON columns."""
    return {name: _JSON[name][1](state) for name in names}


def _changed_row(old: CustomerState, new: CustomerState, keep_as_null: bool) -> dict[str, Any] | None:
    """`new` as column values with `user_id`, or None when its row is the same as `old`'s. With
    `keep_as_null`, a JSON column that did not change is None (the stored value stays)."""
    changed = [column for column, (attribute, _) in _JSON.items()
               if getattr(old, attribute) != getattr(new, attribute)]
    scalars = _scalars_of(new)
    if not changed and _scalars_of(old) == scalars:
        return None
    if not keep_as_null:
        return {"user_id": new.user_id, **row_values(new)}
    row: dict[str, Any] = dict(zip(_ROW_SCALARS, scalars, strict=True))
    row.update(dict.fromkeys(JSON_COLUMNS))
    row.update(_json_values(new, changed))
    return row


LookupKey = tuple[str, Any]  # ("user_id", 42) or an identifier and its normalised value: ("email", "a@b.c")


def load_customers(session: Session, org_id: int, ids: Iterable[int], identifiers: dict[str, set[str]],
                   lock: bool) -> list[CustomerState]:
    """Every customer of the org that one of the identifiers or ids names, plus their merge chains.

    With `lock`, rows are locked FOR UPDATE in user_id order, one order for every worker, so that two
    transactions never wait for each other: a merge chain's member below a row already held is taken
    only if free, else `LockOrderConflict` is raised for the transaction to be tried again. SQLite has
    no row locks, its writers are serialised instead.
    """
    states, _ = _load(session, org_id, ids, identifiers, lock=lock, skip_locked=False)
    return states


def load_unlocked_customers(session: Session, org_id: int, ids: Iterable[int],
                            identifiers: dict[str, set[str]]) -> tuple[list[CustomerState], set[LookupKey]]:
    """As `load_customers` with `lock`, but customers another transaction holds are skipped instead of
    waited for (FOR UPDATE SKIP LOCKED), and returned as the lookup keys that lead to them.

    Two workers' batches of a few hundred random customers share a customer or two most of the time;
    waiting for the other's commit left each worker idle while the other committed. The
    caller sets aside the commands that name a returned key and applies them after its commit."""
    return _load(session, org_id, ids, identifiers, lock=True, skip_locked=is_postgres(session))


def _load(session: Session, org_id: int, ids: Iterable[int], identifiers: dict[str, set[str]], lock: bool,
          skip_locked: bool) -> tuple[list[CustomerState], set[LookupKey]]:
    wanted_by: dict[str, set[Any]] = {"user_id": set(ids), **identifiers}
    keys = tuple(name for name, values in wanted_by.items() if values)
    if not keys:
        return [], set()
    postgres = is_postgres(session)
    found: dict[int, Any] = {}
    if skip_locked or keys != ("user_id",):
        # Who the keys name, without locking: with skip_locked, what it finds and the locked read does not
        # is held by another transaction.
        found = {row.user_id: row for row in session.execute(
            _who_statement(keys, postgres),
            {"org_id": org_id, **{name: list(wanted_by[name]) for name in keys}}).all()}
        wanted = set(found)
    else:
        # Ids alone (the awards) and waiting for locks: the locked read itself takes the org's customers
        # among them, one round trip fewer.
        wanted = set(wanted_by["user_id"])
    rows: dict[int, Any] = {}
    busy: set[int] = set()
    locked_read = _customers_statement(postgres, lock and postgres, skip_locked)
    waits = lock and postgres and not skip_locked
    while wanted:
        if waits and rows:
            # A survivor found by following a chain may sort below a row this transaction holds already.
            wanted -= _take_free_below(session, org_id, max(rows), wanted, rows)
        # Plain rows, not ORM objects: they become CustomerStates at once, the identity map is no use.
        for row in (session.execute(locked_read, {"org_id": org_id, "ids": list(wanted)}).all() if wanted else ()):
            rows[row.user_id] = row
        if skip_locked:
            busy |= {uid for uid in wanted if uid not in rows}
        # Follow merge chains (a victim's identifier leads to its survivor).
        wanted = {r.merged_into for r in rows.values()
                  if r.merged_into and r.merged_into not in rows and r.merged_into not in busy}
    return [_state(row) for row in rows.values()], _keys_leading_to(busy, found, rows)


class LockOrderConflict(Exception):
    """A customer to lock sorts below one this transaction holds, and another transaction holds it.

    Waiting for it could close a cycle (that transaction may wait for a row this one holds, as PostgreSQL
    would then report a deadlock after its `deadlock_timeout`), so the transaction gives up at once and is
    tried again like any transient error."""


def _take_free_below(session: Session, org_id: int, highest: int, wanted: set[int], rows: dict[int, Any]) -> set[int]:
    """Lock the wanted customers below `highest` without waiting; returns them. Raises `LockOrderConflict`
    when one exists but another transaction holds it."""
    below = {uid for uid in wanted if uid < highest}
    if not below:
        return below
    params = {"org_id": org_id, "ids": list(below)}
    for row in session.execute(_customers_statement(postgres=True, lock=True, skip_locked=True), params).all():
        rows[row.user_id] = row
    missing = [uid for uid in below if uid not in rows]
    if missing and session.execute(_who_statement(("user_id",), True),
                                   {"org_id": org_id, "user_id": missing}).first() is not None:
        raise LockOrderConflict(f"{len(missing)} customer(s) held by another transaction")
    return below


# The statements of a load are made once per process and shape: building a statement and its cache key
# cost more CPU than running it.
@functools.cache
def _who_statement(keys: tuple[str, ...], postgres: bool) -> Select[Any]:
    """Customers of :org_id whom one of the lists named by `keys` (user_id or identifiers) names."""
    table = t.Customer.__table__.c
    return (select(table.user_id, table.mobile, table.email, table.external_id)
            .where(table.org_id == bindparam("org_id"), or_(*(in_param(table[name], name, postgres) for name in keys))))


@functools.cache
def _customers_statement(postgres: bool, lock: bool, skip_locked: bool) -> Select[Any]:
    """The rows of the customers of :org_id in :ids, locked in user_id order with `lock`."""
    table = t.Customer.__table__.c
    query: Select[Any] = (select(*(table[name] for name in _LOADED))
                          .where(in_param(table.user_id, "ids", postgres), table.org_id == bindparam("org_id"))
                          .order_by(table.user_id))
    return query.with_for_update(skip_locked=skip_locked) if lock else query


def _keys_leading_to(busy: set[int], found: dict[int, Any], rows: dict[int, Any]) -> set[LookupKey]:
    """The lookup keys of busy customers, and of merged victims whose chain leads to one."""
    if not busy:
        return set()
    busy = set(busy)
    grew = True
    while grew:
        victims = {uid for uid, r in rows.items() if r.merged_into in busy and uid not in busy}
        busy |= victims
        grew = bool(victims)
    keys: set[LookupKey] = set()
    for uid in busy:
        keys.add(("user_id", uid))
        row = found.get(uid) or rows.get(uid)
        if row is not None:
            keys.update((name, getattr(row, name)) for name in IDENTIFIERS if getattr(row, name))
    return keys


def write_changes(session: Session, before: dict[int, CustomerState], after: dict[int, CustomerState]) -> None:
    """Write the rows that differ between the loaded and the final states (`changed_rows`)."""
    write_rows(session, changed_rows(before, after, keep_as_null=is_postgres(session)))


def changed_rows(before: dict[int, CustomerState], after: dict[int, CustomerState],
                 keep_as_null: bool = False) -> list[list[dict[str, Any]]]:
    """The rows that differ between the loaded and the final states, as column values with `user_id`, in
    groups to write one after the other in an order the unique indexes accept: customers who became inactive
    first, so that their identifiers are free for the survivors; then active ones that gave an identifier up
    (an unmerge's survivor), so that it is free for its victim; then the rest.

    `keep_as_null`: unchanged JSON columns are None, for `write_rows` on PostgreSQL (not SQLite's)."""
    inactive: list[dict[str, Any]] = []
    freeing: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for uid, state in after.items():
        old = before[uid]
        if state is old:
            continue
        row = _changed_row(old, state, keep_as_null)
        if row is None:
            continue
        if not state.active:
            inactive.append(row)
        elif _gave_up_identifier(old, state):
            freeing.append(row)
        else:
            rest.append(row)
    return [group for group in (inactive, freeing, rest) if group]


def write_rows(session: Session, groups: list[list[dict[str, Any]]]) -> None:
    """Write `changed_rows`' groups, in their order."""
    table: Any = t.Customer.__table__
    postgres = is_postgres(session)
    for group in groups:
        if postgres:
            update_rows(session, table, "user_id", group)
        else:
            session.execute(update(table).where(table.c.user_id == bindparam("b_user_id")),
                            [{"b_user_id": row["user_id"], **{k: v for k, v in row.items() if k != "user_id"}}
                             for row in group])


def _gave_up_identifier(old: CustomerState, new: CustomerState) -> bool:
    return any(old.identifier(name) and new.identifier(name) != old.identifier(name) for name in IDENTIFIERS)
