"""Property-based checks of merges through the real applier and database (SPEC §3.3, §4).

A hypothesis state machine imports customers, sends updates that fill identifiers (merging whoever
holds them), redelivers earlier commands and checks, after every step, the database against a small
reference model and against the invariants: each identifier on at most one active customer, the org's
points unchanged by merges and unmerges, no merge cycle, every victim's chain ending at an active customer,
no member merged by an update (the org leaves CONF_AUTO_MERGE_LOYALTY_CUSTOMERS off). Merge requests
and unmerges come in among the updates; a merge undone at once gives both customers back exactly.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select

from customer_updates.models import tables as t
from customer_updates.services.apply import BatchApplier
from customer_updates.store.db import dispose_engines, session_scope
from customer_updates.store.migrate import upgrade
from customer_updates.store.orgs import OrgCache, load_org, read_org_file
from tests.conftest import EXAMPLES

MOBILES = [f"9198000100{i:02d}" for i in range(8)]
EMAILS = [f"p{i}@example.com" for i in range(8)]
T0 = datetime(2026, 1, 1)


def fresh_database(folder: Path) -> str:
    url = f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
    upgrade(url)
    with session_scope(url) as session:
        for org in read_org_file(EXAMPLES / "org.yaml").orgs:
            load_org(session, org)
    return url


def import_customer(url: str, mobile: str | None, email: str | None, points: int, type_: str = "LOYALTY") -> int:
    with session_scope(url) as session:
        row = t.Customer(org_id=1, mobile=mobile, email=email, loyalty_points=points, lifetime_points=points,
                         type=type_, slab_number=1 if type_ == "LOYALTY" else None,
                         registered_on=T0, points_summaries=[], stamps={}, fired=[], active=True)
        session.add(row)
        session.flush()
        return row.user_id


def apply(url: str, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with session_scope(url) as session:
        outcome = BatchApplier(session, OrgCache(ttl=0)).run(commands)
    return [r.result for r in outcome.results]


def command(customer: dict[str, Any], issued_at: datetime, request_id: str | None = None) -> dict[str, Any]:
    return {"org_id": 1, "request_id": request_id or uuid.uuid4().hex, "issued_at": issued_at.isoformat(),
            "customer": customer}


def full_rows(url: str, *user_ids: int) -> list[dict[str, Any]]:
    """Everything a customer reads back as (identifiers, fields, points, summaries, tier, side-effect history)."""
    keep = ("mobile", "email", "external_id", "firstname", "lastname", "registered_on", "type", "fraud_status",
            "loyalty_points", "lifetime_points", "lifetime_purchases", "slab_number", "tier_expiry_date",
            "points_summaries", "stamps", "fired", "custom_fields", "extended_fields", "subscriptions", "active",
            "merged_into")
    with session_scope(url) as session:
        rows = {r.user_id: r for r in session.scalars(select(t.Customer).where(t.Customer.user_id.in_(user_ids)))}
        return [{name: getattr(rows[uid], name) for name in keep} for uid in user_ids]


def ask(kind: str, **parties: int) -> dict[str, Any]:
    return {"org_id": 1, "request_id": uuid.uuid4().hex, "kind": kind, "customer": parties}


def database_state(url: str) -> dict[int, tuple[Any, ...]]:
    with session_scope(url) as session:
        rows = session.scalars(select(t.Customer).where(t.Customer.org_id == 1))
        return {r.user_id: (r.mobile, r.email, r.active, r.merged_into, r.loyalty_points, r.firstname)
                for r in rows}


class MergeMachine(RuleBasedStateMachine):
    """Reference model: user_id -> {mobile, email, points, active, merged_into, firstname}."""

    folder: Path
    merges_seen = 0  # across examples: guards against a generator that never merges

    def __init__(self) -> None:
        super().__init__()
        self.url = fresh_database(self.folder)
        self.model: dict[int, dict[str, Any]] = {}
        self.total_points = 0
        self.clock = itertools.count(1)
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def _active_holder(self, name: str, value: str) -> int | None:
        return next((uid for uid, c in self.model.items() if c["active"] and c[name] == value), None)

    def _survivor(self, user_id: int) -> int:
        while not self.model[user_id]["active"]:
            user_id = self.model[user_id]["merged_into"]
        return user_id

    @initialize(points=st.tuples(st.integers(0, 500), st.integers(0, 500)))
    def import_a_pair_one_fill_away_from_a_merge(self, points: tuple[int, int]) -> None:
        # Every example can merge from its first fill: left to the rules alone, some runs of 25 examples
        # drew none and failed the guard below.
        self.import_a_customer(MOBILES[0], EMAILS[0], points[0])
        self.import_a_customer(MOBILES[1], None, points[1])

    @rule(mobile=st.sampled_from(MOBILES), email=st.none() | st.sampled_from(EMAILS),
          points=st.integers(0, 500), type_=st.sampled_from(["NON_LOYALTY", "LOYALTY"]))
    def import_a_customer(self, mobile: str, email: str | None, points: int, type_: str = "NON_LOYALTY") -> None:
        if self._active_holder("mobile", mobile) or (email and self._active_holder("email", email)) \
                or any(c["mobile"] == mobile for c in self.model.values()):
            return  # identifiers are unique among active customers; imports never merge
        user_id = import_customer(self.url, mobile, email, points, type_)
        self.model[user_id] = {"mobile": mobile, "email": email, "points": points, "active": True,
                               "merged_into": None, "firstname": None, "type": type_, "took": {}, "brought": 0}
        self.total_points += points

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), name=st.sampled_from(["Ana", "Bo", "Cy"]))
    def fill_an_email_by_mobile(self, data: st.DataObject, name: str) -> None:
        user_id = data.draw(st.sampled_from(sorted(self.model)))
        # An email some active customer holds as often as any of the others: drawn from all eight alone, a
        # run of 25 examples still drew no merge now and then (twice so far) and failed the guard below.
        held = sorted({c["email"] for c in self.model.values() if c["active"] and c["email"]})
        email = data.draw(st.sampled_from(held + EMAILS))
        mobile = self.model[user_id]["mobile"]
        cmd = command({"mobile": mobile, "email": email, "firstname": name}, T0 + timedelta(seconds=next(self.clock)))
        [result] = apply(self.url, [cmd])
        self.sent.append((cmd, result))

        target = self._survivor(user_id)
        current = self.model[target]["email"]
        if current not in (None, email):
            event("refused: email already set")
            assert result["item_status"]["code"] == "91006"
            return
        assert result["item_status"]["code"] == "1000", result
        holder = self._active_holder("email", email)
        self.model[target]["firstname"] = name
        self.model[target]["took"].pop("firstname", None)  # set since: an unmerge keeps it
        if holder is not None and holder != target and self.model[holder]["type"] == "LOYALTY":
            event("guarded: a member holds the email")
            assert result["item_status"]["warnings"]["warning"] == ["91007"]
            return
        if holder is not None and holder != target:
            event("merge")
            self._merge(target, holder)
            self.model[target]["took"].pop("firstname", None)
        self.model[target]["email"] = email
        assert result["user_id"] == target

    def _merge(self, target: int, holder: int) -> None:
        MergeMachine.merges_seen += 1
        victim, survivor = self.model[holder], self.model[target]
        survivor["points"] += victim["points"]
        victim["brought"], victim["points"] = victim["points"], 0
        victim["active"], victim["merged_into"] = False, target
        victim["survivor_took"] = {name: victim[name] for name in ("mobile", "email", "firstname")
                                   if not survivor[name] and victim[name]}
        survivor["took"] = {**survivor["took"], **victim["survivor_took"]}
        for name, value in victim["survivor_took"].items():
            survivor[name] = value
        victim["survivor_type"] = survivor["type"] == "NON_LOYALTY" and victim["type"] == "LOYALTY"
        survivor["type"] = "LOYALTY" if "LOYALTY" in (survivor["type"], victim["type"]) else "NON_LOYALTY"

    def _actives(self) -> list[int]:
        return sorted(uid for uid, c in self.model.items() if c["active"])

    @precondition(lambda self: sum(c["active"] for c in self.model.values()) >= 2)
    @rule(data=st.data(), undo_at_once=st.booleans())
    def request_a_merge(self, data: st.DataObject, undo_at_once: bool) -> None:
        survivor, victim = data.draw(st.lists(st.sampled_from(self._actives()), min_size=2, max_size=2,
                                              unique=True))
        before = full_rows(self.url, survivor, victim)
        cmd = ask("merge", survivor_id=survivor, victim_id=victim)
        [result] = apply(self.url, [cmd])
        assert result["item_status"]["code"] == "1000", result
        self.sent.append((cmd, result))
        if undo_at_once:
            event("merge request undone at once")
            undo = ask("unmerge", victim_id=victim)
            [undone] = apply(self.url, [undo])
            assert undone["item_status"]["code"] == "1000", undone
            assert full_rows(self.url, survivor, victim) == before
            self.sent.append((undo, undone))
            return
        event("merge request")
        self._merge(survivor, victim)

    @precondition(lambda self: any(not c["active"] for c in self.model.values()))
    @rule(data=st.data())
    def unmerge_a_victim(self, data: st.DataObject) -> None:
        victim_id = data.draw(st.sampled_from(sorted(u for u, c in self.model.items() if not c["active"])))
        victim = self.model[victim_id]
        survivor = self.model[victim["merged_into"]]
        cmd = ask("unmerge", victim_id=victim_id)
        [result] = apply(self.url, [cmd])
        self.sent.append((cmd, result))
        code = result["item_status"]["code"]
        if not survivor["active"]:
            event("unmerge refused: survivor merged further")
            assert code == "91204", result
            return
        returning = {name: victim[name] for name in ("mobile", "email") if victim[name]}
        taken = [n for n, v in returning.items() if (h := self._active_holder(n, v)) is not None
                 and (h != victim["merged_into"] or survivor["took"].get(n) != v)]
        if taken:
            event("unmerge refused: identifier taken")
            assert code == "91206", result
            return
        event("unmerge")
        assert code == "1000", result
        survivor["points"] -= victim["brought"]
        victim["points"], victim["active"], victim["merged_into"] = victim["brought"], True, None
        for name, value in victim["survivor_took"].items():
            if survivor["took"].get(name) == value:
                survivor[name] = None
                del survivor["took"][name]
        if victim.get("survivor_type"):
            survivor["type"] = "NON_LOYALTY"

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver_an_earlier_command(self, data: st.DataObject) -> None:
        cmd, first_result = data.draw(st.sampled_from(self.sent))
        before = database_state(self.url)
        assert apply(self.url, [cmd]) == [first_result]
        assert database_state(self.url) == before

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def reuse_a_request_id_with_another_payload(self, data: st.DataObject) -> None:
        cmd, _ = data.draw(st.sampled_from(self.sent))
        other = {**cmd, "customer": {**cmd["customer"], "firstname": "Someone else"}, "kind": "update"}
        before = database_state(self.url)
        [result] = apply(self.url, [other])
        assert result["item_status"]["code"] == "409"
        assert database_state(self.url) == before

    @invariant()
    def the_database_matches_the_model(self) -> None:
        state = database_state(self.url)
        expected = {uid: (c["mobile"], c["email"], c["active"], c["merged_into"], c["points"], c["firstname"])
                    for uid, c in self.model.items()}
        assert state == expected

    @invariant()
    def no_member_was_merged_by_an_update(self) -> None:
        with session_scope(self.url) as session:
            automatic = session.scalars(select(t.Merge).where(t.Merge.identifier != "request")).all()
            assert all(m.snapshot["type"] == "NON_LOYALTY" for m in automatic)

    @invariant()
    def identifiers_are_unique_among_active_customers(self) -> None:
        active = [v for v in database_state(self.url).values() if v[2]]
        for index in (0, 1):
            values = [v[index] for v in active if v[index]]
            assert len(values) == len(set(values))

    @invariant()
    def merges_conserve_the_orgs_points(self) -> None:
        assert sum(v[4] for v in database_state(self.url).values() if v[2]) == self.total_points

    @invariant()
    def every_merge_chain_ends_at_an_active_customer_without_cycles(self) -> None:
        state = database_state(self.url)
        for user_id in state:
            seen = set()
            while not state[user_id][2]:
                assert user_id not in seen, "merge cycle"
                seen.add(user_id)
                user_id = state[user_id][3]
            assert state[user_id][2]

    def teardown(self) -> None:
        dispose_engines()


def test_merges_keep_the_invariants_and_match_the_reference_model(tmp_path: Path) -> None:
    MergeMachine.folder = tmp_path
    runner = MergeMachine.TestCase()
    chosen = settings(max_examples=15, stateful_step_count=20, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])
    runner.settings = chosen  # type: ignore[misc]  # hypothesis's stubs call it a class variable
    runner.runTest()
    assert MergeMachine.merges_seen > 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_final_state_is_the_same_whatever_the_delivery_order(tmp_path: Path, data: st.DataObject) -> None:
    """Field updates with distinct issued_at commute: last writer by issued_at wins per field."""
    updates = data.draw(st.lists(st.tuples(st.sampled_from(MOBILES[:3]), st.sampled_from(["firstname", "lastname"]),
                                           st.sampled_from(["A", "B", "C"])), min_size=1, max_size=8))
    commands = [command({"mobile": mobile, field: value}, T0 + timedelta(seconds=i))
                for i, (mobile, field, value) in enumerate(updates)]
    shuffled = data.draw(st.permutations(commands))
    batches = data.draw(st.integers(1, 3))
    states = []
    for order in (commands, shuffled):
        url = fresh_database(tmp_path)
        for mobile in MOBILES[:3]:
            import_customer(url, mobile, None, 0)
        for start in range(0, len(order), batches):
            apply(url, list(order[start:start + batches]))
        with session_scope(url) as session:
            states.append(sorted((r.mobile, r.firstname, r.lastname) for r in session.scalars(select(t.Customer))))
    assert states[0] == states[1]
