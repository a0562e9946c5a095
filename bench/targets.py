"""The two systems under test, behind one small interface: fill the queue, send paced, count, poll."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

import redis
from sqlalchemy import create_engine, func, select, text

from bench import reference
from bench.procs import Worker
from bench.seed import ORG_ID
from bench.workload import Update
from customer_updates.messaging.results import result_key
from customer_updates.models import tables as t
from customer_updates.ops.processes import worker_command
from customer_updates.producer import Producer
from customer_updates.settings import Settings
from customer_updates.store.db import normalise_url


class Target(Protocol):
    name: str

    def enqueue(self, updates: list[Update]) -> None: ...
    def start(self, workers: int, log_path: Path) -> Worker: ...
    def applied(self) -> int: ...
    def expected(self, updates: list[Update]) -> int: ...
    def done(self, request_ids: list[str]) -> set[str]: ...
    def close(self) -> None: ...


class CustomerUpdates:
    name = "customer-updates"

    def __init__(self, database_url: str, redis_url: str, message_size: int, env: dict[str, str],
                 broker_url: str = "") -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.env = {**env, "CUSTOMER_UPDATES_BROKER_URL": broker_url} if broker_url else env
        if broker_url:
            self.name = f"{self.name} on RabbitMQ"
        self.message_size = message_size
        self.producer = Producer(Settings(DATABASE_URL=database_url, REDIS_URL=redis_url, broker_url=broker_url,
                                          producer_message_size=message_size))
        self.engine = create_engine(normalise_url(database_url))
        self.redis = redis.Redis.from_url(redis_url)

    def enqueue(self, updates: list[Update]) -> None:
        """One enqueue_batch: the producer splits it into messages of `message_size` commands."""
        self.producer.enqueue_batch(ORG_ID, {"root": {"customer": [u.item for u in updates]}},
                                    request_ids=[u.request_id for u in updates])

    def start(self, workers: int, log_path: Path) -> Worker:
        env = {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url, **self.env}
        return Worker(worker_command(workers), env, log_path)

    def applied(self) -> int:
        """Updates done: result stored, and no follow-on award left to apply (awards are part of the cost)."""
        with self.engine.connect() as conn:
            recorded = int(conn.scalar(select(func.count()).select_from(t.CommandRecord)) or 0) + \
                int(conn.scalar(select(func.count()).select_from(t.RejectedCommand)) or 0)
            awarding = int(conn.scalar(select(func.count()).select_from(t.OutboxEntry).where(
                t.OutboxEntry.kind == "award", t.OutboxEntry.done_at.is_(None))) or 0)
        return recorded - awarding

    def expected(self, updates: list[Update]) -> int:
        return len({u.request_id for u in updates})  # a duplicate is answered, not recorded again

    def done(self, request_ids: list[str]) -> set[str]:
        """Which results a producer can read now (the worker writes them after commit).

        One EXISTS of all the keys first: the poller asks for the oldest waiting chunk every few
        milliseconds and mostly finds none or all of it done. With a pipeline of an EXISTS per key each
        time, the bench process took 25-33% of a core in the latency phase (on the cores the worker runs
        on); with this, 17-18%."""
        keys = [result_key(ORG_ID, rid) for rid in request_ids]
        found = int(self.redis.exists(*keys)) if keys else 0
        if found in (0, len(keys)):
            return set(request_ids) if found else set()
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return {rid for rid, one in zip(request_ids, pipe.execute(), strict=True) if one}

    def close(self) -> None:
        self.engine.dispose()
        self.producer.close()
        self.redis.close()


class PlainCelery:
    name = "plain Celery (reference)"

    def __init__(self, database_url: str, redis_url: str, broker_url: str = "") -> None:
        self.database_url = database_url
        self.redis_url = broker_url or redis_url  # the reference keeps nothing on Redis: only its broker
        if broker_url:
            self.name = f"{self.name} on RabbitMQ"
        reference.use_broker(self.redis_url)
        self.engine = create_engine(normalise_url(database_url))

    def enqueue(self, updates: list[Update]) -> None:
        for u in updates:  # as the tutorials do: one .delay() per update
            reference.update_customer.delay(u.request_id, u.item)

    def start(self, workers: int, log_path: Path) -> Worker:
        return Worker([sys.executable, "-m", "celery", "-A", "bench.reference", "worker", "-Q", reference.QUEUE,
                       "--concurrency", str(workers), "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
                      {"BENCH_DATABASE_URL": self.database_url, "BENCH_REDIS_URL": self.redis_url}, log_path)

    def applied(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(reference.RefUpdateLog)) or 0)

    def expected(self, updates: list[Update]) -> int:
        return len(updates)

    def done(self, request_ids: list[str]) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(reference.RefUpdateLog.request_id)
                                .where(reference.RefUpdateLog.request_id.in_(request_ids)))
            return {r[0] for r in rows}

    def close(self) -> None:
        self.engine.dispose()


def reset_counts(database_url: str) -> None:
    """Empty the result tables between runs, so that counts start at zero (customers keep their state).

    On PostgreSQL the database is then vacuumed, as autovacuum keeps a live one: a server run with
    autovacuum off (as some test machines are) otherwise leaves every later run of a `--repeat` the dead
    rows of the runs before it (a third of the customers rewritten per run, the emptied tables).

    Then a checkpoint, so that every run starts with the server's write-ahead log in the same state:
    the checkpoint renames the segments no longer needed into the ones to come. Without it the server
    could run out of such segments in the middle of a run and make new ones while commits waited
    (bench/HISTORY.md, "Write-ahead log segments")."""
    engine = create_engine(normalise_url(database_url))
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        # The outbox too: awards a stopped worker left in a queue that is then emptied are never done.
        tables = ("command_records", "rejected_commands", "ref_update_log", "outbox")
        if postgres:
            conn.execute(text(f"TRUNCATE {', '.join(tables)}"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
    engine.dispose()
