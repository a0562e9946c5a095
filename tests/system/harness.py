"""A workload of update commands, the state it must lead to, and the checks every scenario ends with.

The reference model is deliberately naive: for each customer, the field value of the command with the
latest `issued_at` wins, and the first email fills the email once (25 points, the example org's
`first_fill` rule). Whatever the faults, the database must end exactly there.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from customer_updates.messaging.dead_letters import list_dead_letters
from customer_updates.messaging.results import result_key
from customer_updates.models import tables as t
from customer_updates.settings import Settings
from customer_updates.store.db import get_engine, session_scope
from tests.conftest import EXAMPLES

# How many commands each scenario sends. CI runs the default; the full run uses e.g. 20000.
COMMANDS = int(os.environ.get("CU_SYSTEM_COMMANDS", "1500"))
MESSAGE_SIZE = 10
EMAIL_POINTS = 25  # examples/org.yaml: first_fill email
UPDATES_QUEUE = "customer_updates"
SIDE_EFFECTS_QUEUE = "customer_updates.side_effects"

# Settings every system-test worker gets: a short visibility timeout (so that the messages of a killed
# worker come back within the test), quick bounded retries, and a relay that republishes unconfirmed
# outbox rows after two seconds.
WORKER_SETTINGS: dict[str, Any] = {
    "visibility_timeout": 6, "retry_backoff_base": 0.2, "retry_backoff_max": 2.0,
    "outbox_relay_after_seconds": 2, "outbox_relay_interval_seconds": 2, "log_level": "INFO",
}


def mobile_of(index: int) -> str:
    return f"9197{index:08d}"


@dataclass
class Workload:
    org_id: int
    customers: int
    commands: list[dict[str, Any]] = field(default_factory=list)

    def messages(self, size: int = MESSAGE_SIZE) -> list[list[dict[str, Any]]]:
        return [self.commands[i:i + size] for i in range(0, len(self.commands), size)]

    @property
    def request_ids(self) -> list[str]:
        return [c["request_id"] for c in self.commands]

    def expected(self) -> dict[str, dict[str, Any]]:
        """Per mobile: firstname, lastname, email after applying each command once in issued_at order."""
        state = {mobile_of(i): {"firstname": f"Seed{i}", "lastname": None, "email": None}
                 for i in range(self.customers)}
        for command in sorted(self.commands, key=lambda c: c["issued_at"]):
            customer = command["customer"]
            row = state[customer["mobile"]]
            for name in ("firstname", "lastname"):
                if name in customer:
                    row[name] = customer[name]
            if "email" in customer and row["email"] is None:
                row["email"] = customer["email"]
        return state


def build_workload(count: int = COMMANDS, org_id: int = 1, seed: int = 0, tag: str | None = None) -> Workload:
    """`count` commands over count/10 customers; issued_at unique and unrelated to the sending order."""
    rng = random.Random(seed)
    customers = max(20, count // 10)
    workload = Workload(org_id, customers)
    base = datetime(2024, 1, 1)
    offsets = rng.sample(range(count * 20), count)
    tag = tag or uuid.uuid4().hex[:6]
    for i in range(count):
        index = rng.randrange(customers)
        customer: dict[str, Any] = {"mobile": mobile_of(index)}
        kind = rng.random()
        if kind < 0.4:
            customer["firstname"] = f"First{i}"
        elif kind < 0.7:
            customer["lastname"] = f"Last{i}"
        elif kind < 0.9:
            customer["firstname"], customer["lastname"] = f"First{i}", f"Last{i}"
        else:
            customer["email"] = f"customer{index}@example.com"
        issued = base + timedelta(milliseconds=offsets[i])
        workload.commands.append({"org_id": org_id, "request_id": f"sys-{tag}-{i}",
                                  "issued_at": issued.isoformat(), "customer": customer})
    return workload


def prepare_database(url: str, customers: int, org_id: int = 1) -> None:
    """Load the example orgs and `customers` customers of `org_id` (mobile and a first name each)."""
    from customer_updates.services.imports import import_customers
    from customer_updates.store.orgs import load_org, read_org_file

    with session_scope(url) as session:
        for org in read_org_file(EXAMPLES / "org.yaml").orgs:
            load_org(session, org)
    lines = (json.dumps({"org_id": org_id, "mobile": mobile_of(i), "firstname": f"Seed{i}"})
             for i in range(customers))
    report = import_customers(sessionmaker(get_engine(url)), lines)
    assert report.loaded == customers, report.errors[:3]


def publish(redis_url: str, messages: list[list[dict[str, Any]]], broker_url: str = "") -> None:
    """Send messages the way producers do (protocol 2, JSON) to the broker (`broker_url`, else `redis_url`)."""
    from customer_updates.messaging.broker import producer_app
    from customer_updates.messaging.sending import publish_many

    app = producer_app(Settings(REDIS_URL=redis_url, broker_url=broker_url))
    try:
        publish_many(messages, celery=app)
    finally:
        app.close()


def kombu_envelope(body: bytes, headers: dict[str, Any], content_type: str = "application/json") -> bytes:
    """A message as kombu's Redis transport stores it in the queue's list, around any raw body."""
    return json.dumps({
        "body": base64.b64encode(body).decode(), "content-encoding": "utf-8", "content-type": content_type,
        "headers": headers,
        "properties": {"correlation_id": headers.get("id", str(uuid.uuid4())), "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4()), "delivery_mode": 2, "priority": 0,
                       "delivery_info": {"exchange": "", "routing_key": UPDATES_QUEUE}},
    }).encode()


def task_headers(task: str = "customer_updates.apply_updates") -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    return {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None,
            "argsrepr": "()", "kwargsrepr": "{}", "retries": 0, "eta": None, "expires": None}


def push_raw(redis_url: str, *items: bytes) -> None:
    client = redis.Redis.from_url(redis_url)
    client.lpush(UPDATES_QUEUE, *items)
    client.close()


def broker_backlog(client: redis.Redis, broker_url: str = "") -> dict[str, int]:
    """Messages waiting in our queues, and taken but not acknowledged (on RabbitMQ, asked of rabbitmqctl)."""
    if broker_url:
        return rabbitmq_backlog(broker_url)
    return {"queued": int(client.llen(UPDATES_QUEUE)) + int(client.llen(SIDE_EFFECTS_QUEUE)),
            "unacked": int(client.hlen("unacked"))}


def rabbitmq_backlog(broker_url: str) -> dict[str, int]:
    vhost = broker_url.rsplit("/", 1)[1]
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages_ready",
                          "messages_unacknowledged", "--formatter", "json"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    ours = [q for q in json.loads(out) if q["name"] in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE)]
    return {"queued": sum(int(q["messages_ready"]) for q in ours),
            "unacked": sum(int(q["messages_unacknowledged"]) for q in ours)}


def wait_until_done(db_url: str, redis_url: str, workload: Workload, timeout: float = 240,
                    extra_request_ids: int = 0, broker_url: str = "") -> float:
    """Wait until every command has a result, follow-on awards are done and the broker has drained.

    Returns the seconds it took. Raises with a description of what is still missing on timeout.
    """
    started = time.monotonic()
    client = redis.Redis.from_url(redis_url)
    want = len(workload.commands) + extra_request_ids
    state: dict[str, Any] = {}
    try:
        while time.monotonic() - started < timeout:
            with session_scope(db_url) as session:
                records = session.scalar(select(func.count()).select_from(t.CommandRecord)
                                         .where(t.CommandRecord.org_id == workload.org_id))
                awards_open = session.scalar(
                    select(func.count()).select_from(t.OutboxEntry)
                    .where(t.OutboxEntry.kind == "award", t.OutboxEntry.done_at.is_(None)))
            records, awards_open = records or 0, awards_open or 0
            state = {"records": records, "awards_open": awards_open}
            if records >= want and awards_open == 0:  # asked only then: rabbitmqctl takes a second
                state.update(broker_backlog(client, broker_url))
            if state.get("queued") == 0 and state.get("unacked") == 0:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        client.close()
    raise AssertionError(f"not done after {timeout}s: {state} (want {want} records)")


def check_outcome(db_url: str, redis_url: str, workload: Workload, broker_url: str = "") -> dict[str, int]:
    """The guarantees of DESIGN §2, checked against the reference model. Returns figures for the report."""
    client = redis.Redis.from_url(redis_url)
    ids = workload.request_ids
    with session_scope(db_url) as session:
        records = {r.request_id: r for r in session.scalars(
            select(t.CommandRecord).where(t.CommandRecord.org_id == workload.org_id,
                                          t.CommandRecord.request_id.in_(ids)))}
        rows = {c.mobile: c for c in session.scalars(
            select(t.Customer).where(t.Customer.org_id == workload.org_id, t.Customer.active.is_(True)))}
        ledger_dupes = session.execute(text(
            "SELECT outbox_id FROM points_ledger GROUP BY outbox_id HAVING count(*) > 1")).all()
        ledger = list(session.execute(select(t.PointsLedger.user_id, t.PointsLedger.reason)
                                      .where(t.PointsLedger.org_id == workload.org_id)))
        audit_dupes = session.execute(text(
            "SELECT request_id, field FROM audit_entries WHERE kind = 'CustomerUpdate' "
            "GROUP BY request_id, field HAVING count(*) > 1")).all()
    # Every accepted command has exactly one stored result, in the database and on Redis.
    assert len(records) == len(ids), f"{len(ids) - len(records)} commands have no stored result"
    codes = Counter(r.code for r in records.values())
    assert set(codes) == {1000}, codes
    stored = client.mget([result_key(workload.org_id, rid) for rid in ids])
    missing = [rid for rid, raw in zip(ids, stored, strict=True) if raw is None]
    assert not missing, f"{len(missing)} results missing on Redis, e.g. {missing[:3]}"
    # The database equals the reference model.
    expected = workload.expected()
    wrong = []
    for mobile, want in expected.items():
        row = rows[mobile]
        got = {"firstname": row.firstname, "lastname": row.lastname, "email": row.email}
        points = EMAIL_POINTS if want["email"] else 0
        if got != want or (row.loyalty_points, row.lifetime_points) != (points, points):
            wrong.append((mobile[-4:], got, want, row.loyalty_points))
    assert not wrong, f"{len(wrong)} customers differ from the reference model, e.g. {wrong[:3]}"
    # Nothing applied twice: one ledger entry per award, one audit row per changed field and request.
    assert not ledger_dupes, ledger_dupes[:5]
    per_award = Counter(ledger)
    assert all(n == 1 for n in per_award.values()), per_award.most_common(3)
    assert len(ledger) == sum(1 for want in expected.values() if want["email"])
    assert not audit_dupes, audit_dupes[:5]
    # No message is left unacknowledged for ever. Beat keeps sending relay tasks, so one may be in flight
    # at any instant: the backlog must reach zero again soon, not stay at zero.
    deadline = time.monotonic() + 15
    while (backlog := broker_backlog(client, broker_url)) != {"queued": 0, "unacked": 0} \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    client.close()
    assert backlog == {"queued": 0, "unacked": 0}, backlog
    return {"commands": len(ids), "customers": workload.customers, "awards": len(ledger)}


def dead_letters(redis_url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url)
    try:
        return list_dead_letters(client, Settings().dead_letter_key, limit=100_000)
    finally:
        client.close()


def log_entries(log_path: Any, event: str) -> list[dict[str, Any]]:
    """The structured log lines of a worker log that have this `event`, parsed."""
    entries = []
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut short by a killed process
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            entries.append(entry)
    return entries


def count_log(log_path: Any, event: str) -> int:
    """How many structured log lines of the worker log have this `event`."""
    return len(log_entries(log_path, event))


class PacedPublisher:
    """Publishes messages in the background over about `seconds`, so that faults land mid-run."""

    def __init__(self, redis_url: str, messages: list[list[dict[str, Any]]], seconds: float = 10,
                 per_send: int = 5, broker_url: str = "") -> None:
        import threading

        self.redis_url, self.messages, self.per_send = redis_url, messages, per_send
        self.broker_url = broker_url
        self.pause = seconds / max(1, len(messages) / per_send)
        self.errors: list[BaseException] = []
        self.resends = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for start in range(0, len(self.messages), self.per_send):
                self._send(self.messages[start:start + self.per_send])
                time.sleep(self.pause)
        except BaseException as exc:  # surfaced by join()
            self.errors.append(exc)

    def _send(self, messages: list[list[dict[str, Any]]]) -> None:
        # Like a careful producer: a send that failed (broker restarting) is sent again. A send that
        # failed half-way may deliver some messages twice; the worker applies them once.
        deadline = time.monotonic() + 60
        while True:
            try:
                publish(self.redis_url, messages, self.broker_url)
                return
            except Exception:
                self.resends += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def start(self) -> PacedPublisher:
        self.thread.start()
        return self

    def join(self, timeout: float = 300) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "publisher did not finish"
        assert not self.errors, self.errors


def wait_for_records(db_url: str, org_id: int, at_least: int, timeout: float = 120) -> int:
    """Block until `at_least` commands of the org have stored results (the run is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as session:
            count = int(session.scalar(select(func.count()).select_from(t.CommandRecord)
                                       .where(t.CommandRecord.org_id == org_id)) or 0)
        if count >= at_least:
            return count
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} results after {timeout}s")


class Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def down_mid_run(db_url: str, workload: Workload, server: Server, seconds: float) -> None:
    """Once a fifth of the workload has results, stop `server` as a crash would, and start it `seconds` later."""
    wait_for_records(db_url, 1, len(workload.commands) // 5)
    server.stop()
    time.sleep(seconds)
    server.start()


def outcomes_in_logs(*workers: Any) -> Counter[str]:
    """Outcomes the workers logged per batch (applied, failed, duplicate, conflict): redeliveries show here."""
    seen: Counter[str] = Counter()
    for worker in workers:
        for entry in log_entries(worker.log_path, "batch"):
            for outcome in ("applied", "failed", "duplicate", "conflict"):
                seen[outcome] += int(entry.get(outcome, 0))
    return seen
