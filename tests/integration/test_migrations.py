"""Migrations carry the data across, both ways, on both databases (store/migrate, migrations/versions)."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from sqlalchemy import text

from customer_updates.rules.state import FieldValue, SubscriptionState
from customer_updates.store import customers as store
from customer_updates.store.db import dispose_engines, get_engine, session_scope
from customer_updates.store.migrate import alembic_config, upgrade

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123)
LATER = datetime(2026, 5, 6, 7, 8, 9)


def _old_rows(url: str) -> None:
    """A customer with fields and subscriptions as revision 0002 kept them: rows of their own tables."""
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO orgs (id, name, configs, side_effects, version) "
                          "VALUES (1, 'Org', '{}', '{}', 1)"))
        for user_id in (1, 2):
            conn.execute(text("INSERT INTO customers (user_id, org_id, mobile, type, fraud_status, loyalty_points, "
                              "lifetime_points, lifetime_purchases, points_summaries, stamps, fired, active) "
                              "VALUES (:id, 1, :mobile, 'LOYALTY', 'NONE', 0, 0, 0, '[]', '{}', '[]', :active)"),
                         {"id": user_id, "mobile": f"91900000000{user_id}", "active": True})
        conn.execute(text("INSERT INTO customer_fields (user_id, kind, name, value, issued_at) VALUES "
                          "(1, 'custom', 'favourite_drink', 'say \"chai\"', :when), "
                          "(1, 'custom', 'nickname', NULL, NULL), "
                          "(1, 'extended', 'city', 'Pune', :later)"), {"when": WHEN, "later": LATER})
        conn.execute(text("INSERT INTO subscriptions (user_id, channel, priority, scope, status, issued_at) VALUES "
                          "(1, 'SMS', 'TRANS', 'ALL', 1, :when), (1, 'EMAIL', 'BULK', 'ALL', 0, NULL)"),
                     {"when": WHEN})


def _states(url: str) -> dict[int, store.CustomerState]:
    with session_scope(url) as session:
        return {s.user_id: s for s in store.load_customers(session, 1, [1, 2], {}, lock=False)}


def test_fields_and_subscriptions_move_into_the_customer_row_and_back(db_url):
    config = alembic_config(db_url)
    command.downgrade(config, "0002")
    _old_rows(db_url)
    dispose_engines()  # the engines' cached table metadata is of the other revision

    upgrade(db_url)
    states = _states(db_url)
    assert states[1].custom == {"favourite_drink": FieldValue('say "chai"', WHEN), "nickname": FieldValue(None)}
    assert states[1].extended == {"city": FieldValue("Pune", LATER)}
    assert states[1].subscriptions == {("SMS", "TRANS"): SubscriptionState(1, "ALL", WHEN),
                                       ("EMAIL", "BULK"): SubscriptionState(0, "ALL", None)}
    assert (states[2].custom, states[2].extended, states[2].subscriptions) == ({}, {}, {})

    dispose_engines()
    command.downgrade(config, "0002")
    with get_engine(db_url).connect() as conn:
        fields = conn.execute(text("SELECT user_id, kind, name, value, issued_at FROM customer_fields "
                                   "ORDER BY name")).all()
        subs = conn.execute(text("SELECT user_id, channel, priority, scope, status, issued_at FROM subscriptions "
                                 "ORDER BY channel")).all()
    # SQLite gives timestamps back as the text it keeps.
    as_time = [datetime.fromisoformat(v) if isinstance(v, str) else v for v in (r[4] for r in fields)]
    assert [tuple(r[:4]) for r in fields] == [(1, "extended", "city", "Pune"),
                                              (1, "custom", "favourite_drink", 'say "chai"'),
                                              (1, "custom", "nickname", None)]
    assert as_time == [LATER, WHEN, None]
    sub_times = [datetime.fromisoformat(v) if isinstance(v, str) else v for v in (r[5] for r in subs)]
    assert [tuple(r[:5]) for r in subs] == [(1, "EMAIL", "BULK", "ALL", 0), (1, "SMS", "TRANS", "ALL", 1)]
    assert sub_times == [None, WHEN]
    dispose_engines()
    upgrade(db_url)  # and up again, as the fixture left it


def test_outbox_payloads_are_compressed_with_lz4_where_the_server_has_it(pg_url):
    with get_engine(pg_url).connect() as conn:
        method = conn.execute(text("SELECT attcompression FROM pg_attribute "
                                   "WHERE attrelid = 'outbox'::regclass AND attname = 'payload'")).scalar()
        # '' is the server's default: what a server built without lz4 keeps (the migration skips it).
        has_lz4 = conn.execute(text("SELECT count(*) FROM pg_settings WHERE name = 'default_toast_compression' "
                                    "AND 'lz4' = ANY(enumvals)")).scalar()
    assert method == ("l" if has_lz4 else "")


def test_merge_records_gain_their_undo_columns_and_a_victim_may_be_merged_twice(db_url):
    config = alembic_config(db_url)
    dispose_engines()
    command.downgrade(config, "0004")
    insert = ("INSERT INTO merges (org_id, survivor_id, victim_id, identifier, snapshot, created_at) "
              "VALUES (1, :survivor, 2, 'email', '{}', :when)")
    with get_engine(db_url).begin() as conn:
        conn.execute(text(insert), {"survivor": 1, "when": WHEN})
    dispose_engines()

    upgrade(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text(insert), {"survivor": 3, "when": LATER})  # merged again after an unmerge
        rows = conn.execute(text("SELECT survivor_id, moved, undone_at FROM merges ORDER BY id")).all()
        conn.execute(text("DELETE FROM merges WHERE survivor_id = 3"))
    assert [tuple(r) for r in rows] == [(1, None, None), (3, None, None)]

    dispose_engines()
    command.downgrade(config, "0004")
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT survivor_id FROM merges")).scalars().all() == [1]
    dispose_engines()
    upgrade(db_url)
