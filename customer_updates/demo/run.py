"""`customer-updates demo`: the whole flow once, on a machine with nothing but Python.

Database: a new SQLite file in a new temporary folder (or `--dir`), never the configured DATABASE_URL,
so the demo cannot touch real data. Redis: REDIS_URL when it is set in the environment, a Redis answers
there and no other worker listens on it; otherwise an embedded one (see `embedded_redis`), never the
default localhost:6379/0 merely because something answers there. A real worker (with beat, so the outbox
relay runs) applies a realistic batch; the summary reads results and customers back.
Every process the demo starts is stopped when it ends, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from customer_updates.demo import report as demo_report
from customer_updates.demo.embedded_redis import EmbeddedRedis, answers
from customer_updates.messaging.results import read_result
from customer_updates.models.commands import utcnow
from customer_updates.ops.processes import WorkerExited, WorkerProcess, worker_command
from customer_updates.settings import Settings, get_settings

ORG_ID = 1
# Found relative to the package: a clone installed with `pip install -e .` has them in examples/.
DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# An update decided an hour before the batch, for a field the batch set: it must be skipped as stale.
GUARDED_UPDATE = {"mobile": "919800000005", "email": "asha@example.com"}
STALE_UPDATE = {"mobile": "919800000001", "lastname": "Rao",
                "custom_fields": {"field": [{"name": "favourite_drink", "value": "espresso"}]}}


class DemoError(Exception):
    """A step did not finish; the message says which and where to look."""


class Demo:
    def __init__(self, workdir: Path | None = None, database_url: str | None = None,
                 examples: Path | None = None, timeout: float = 90.0, console: Console | None = None) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.examples = examples or DEFAULT_EXAMPLES
        self.timeout = timeout
        # Not a terminal (a log, a test): wide enough for the summary table instead of rich's 80 columns.
        self.console = console or (Console() if sys.stdout.isatty() else Console(width=130))
        self.embedded: EmbeddedRedis | None = None
        self.worker: WorkerProcess | None = None

    # -- the steps --------------------------------------------------------------------------------------

    def run(self) -> int:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._run()
            return 0
        except KeyboardInterrupt:
            self.console.print("\n[yellow]interrupted[/yellow]: stopping what the demo started")
            return 130
        except DemoError as exc:
            self.console.print(f"[red]demo failed:[/red] {exc}")
            return 1
        finally:
            # A second Ctrl-C must not leave the worker running: finish the cleanup first.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self.cleanup()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)

    def _run(self) -> None:
        for name in ("org.yaml", "customers.ndjson", "updates.json"):
            if not (self.examples / name).is_file():
                raise DemoError(f"example data {name} not found in {self.examples}: pass --examples DIR "
                                "(a clone of the project has them in examples/)")
        workdir = self._workdir()
        settings = Settings(DATABASE_URL=self._database(workdir), REDIS_URL=self._redis())
        self._prepare_database(settings)
        self._start_worker(settings, workdir)
        producer = _producer(settings)
        body = json.loads((self.examples / "updates.json").read_text(encoding="utf-8"))
        issued_at = utcnow()
        receipt = producer.enqueue_batch(ORG_ID, body, issued_at=issued_at,
                                         user_context={"entity_type": "ADMIN", "source": "demo"})
        self.console.print(f"enqueued batch {receipt.batch_id}: {len(receipt.request_ids)} updates")
        self._wait("applying the batch", len(receipt.request_ids),
                   lambda: sum(read_result(producer.redis, ORG_ID, r) is not None
                               for r in receipt.request_ids))
        batch = producer.get_batch_result(ORG_ID, receipt.batch_id, timeout=self.timeout)
        stale_id = producer.enqueue_update(ORG_ID, STALE_UPDATE, issued_at=issued_at - timedelta(hours=1),
                                           user_context={"entity_type": "ADMIN", "source": "demo"})
        self.console.print("enqueued a late update, decided an hour before the batch (out of order)")
        stale = producer.get_result(ORG_ID, stale_id, timeout=self.timeout)
        # Dana (not a member) was merged into Ben by her email above; Asha is a member: never merged so.
        guarded_id = producer.enqueue_update(ORG_ID, GUARDED_UPDATE,
                                             user_context={"entity_type": "ADMIN", "source": "demo"})
        guarded = producer.get_result(ORG_ID, guarded_id, timeout=self.timeout)
        if guarded is not None:
            details = guarded["item_status"].get("warning_details") or [{"code": "", "message": ""}]
            self.console.print(f"an update gave Eli the email of Asha, a member: {details[0]['code']} "
                               f"{details[0]['message']} (no merge)")
        if batch is None or stale is None:
            raise DemoError(f"no results after {self.timeout:.0f}s; worker log: {workdir / 'worker.log'}")
        pending = self._wait("awarding points (follow-on tasks)", None,
                             lambda: demo_report.awards_pending(settings.database_url, ORG_ID))
        demo_report.show(self.console, settings, ORG_ID, body, batch, STALE_UPDATE, stale, pending)
        demo_report.next_steps(self.console, settings, ORG_ID, receipt.batch_id, workdir,
                               embedded=self.embedded is not None)

    def _workdir(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="customer-updates-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    def _database(self, workdir: Path) -> str:
        if self.database_url:
            self.console.print(f"database: {self.database_url} (given with --database-url)")
            return self.database_url
        path = workdir / "demo.db"
        for stale_file in (path, path.with_name("demo.db-wal"), path.with_name("demo.db-shm")):
            stale_file.unlink(missing_ok=True)  # a fresh start, so that every run tells the same story
        self.console.print(f"database: SQLite file {path} (a temporary folder, kept after the demo)")
        return f"sqlite:///{path}"

    def _redis(self) -> str:
        url = get_settings().redis_url
        # Only a Redis the user named: a Redis that merely answers at the default address may hold someone's
        # data, and the demo writes results, events and queue keys.
        named = any(os.environ.get(name) for name in ("REDIS_URL", "CUSTOMER_UPDATES_REDIS_URL"))
        if not named:
            reason = "REDIS_URL is not set"
        elif answers(url):
            waiting = _messages_waiting(url)
            if not waiting and not _workers_listening(url):
                self.console.print(f"redis: {url} (REDIS_URL)")
                return url
            reason = (f"{waiting} messages already wait at {url} (e.g. of an interrupted run); the demo "
                      "does not consume them" if waiting else
                      f"other workers already consume from {url}; the demo keeps out of their way")
        else:
            reason = f"no Redis answered at {url}"
        self.embedded = EmbeddedRedis()
        try:
            embedded_url = self.embedded.start()
        except RuntimeError as exc:
            self.embedded = None
            raise DemoError(f"{reason}, and {exc}") from exc
        self.console.print(f"redis: [bold]{reason}: started an embedded Redis (fakeredis) at "
                           f"{embedded_url}[/bold]; it lives only as long as the demo")
        return embedded_url

    def _prepare_database(self, settings: Settings) -> None:
        from sqlalchemy.orm import sessionmaker

        from customer_updates.services.imports import import_customers
        from customer_updates.store.db import get_engine, session_scope
        from customer_updates.store.migrate import upgrade
        from customer_updates.store.orgs import load_org, read_org_file

        with self.console.status("migrating the database"):
            upgrade(settings.database_url)
        with session_scope(settings.database_url) as session:
            for org in read_org_file(self.examples / "org.yaml").orgs:
                load_org(session, org)
        with (self.examples / "customers.ndjson").open(encoding="utf-8") as lines:
            report = import_customers(sessionmaker(get_engine(settings.database_url)), lines)
        self.console.print(f"loaded the example org and {report.loaded} customers "
                           f"({len(report.errors)} bad lines reported and skipped, as the example intends)")

    def _start_worker(self, settings: Settings, workdir: Path) -> None:
        log_path = workdir / "worker.log"
        args = worker_command(1, beat_schedule=workdir / "beat-schedule", hostname=f"demo-{os.getpid()}@%h")
        # Its own session: Ctrl-C reaches the demo only, which then stops the worker's whole group.
        self.worker = WorkerProcess(args, {"DATABASE_URL": settings.database_url,
                                           "REDIS_URL": settings.redis_url}, log_path)
        self.console.print(f"started a worker with beat (pid {self.worker.pid}; log {log_path})")

        def ready() -> int:
            try:
                return int(self.worker is not None and self.worker.is_ready())
            except WorkerExited as exc:
                raise DemoError(f"the {exc}") from exc

        self._wait("waiting for the worker", 1, ready)

    def _wait(self, what: str, total: int | None, done: Callable[[], int]) -> int:
        """Show progress until `done()` reaches `total` (or 0 when total is None); returns the last value."""
        deadline = time.monotonic() + self.timeout
        count = "{task.completed:.0f}/{task.total:.0f}" if total else "{task.fields[left]} left"
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn(count)]
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(what, total=total or 1, left="")
            while True:
                value = done()
                progress.update(task, completed=value if total else 0, left=str(value))
                if (value >= total if total else value == 0) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        if total and value < total:
            raise DemoError(f"{what}: {value} of {total} after {self.timeout:.0f}s")
        return value

    # -- cleanup ----------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        if self.worker is not None and self.worker.process.poll() is None:
            self.worker.stop()
            self.console.print("stopped the worker")
        self.worker = None
        if self.embedded is not None:
            self.embedded.stop()
            self.console.print("stopped the embedded Redis")
            self.embedded = None


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _messages_waiting(url: str) -> int:
    """Messages in the update queues (waiting or reserved by a worker that went away): a demo worker
    would apply them too, and its summary would mix them with its own batch."""
    import redis

    from customer_updates.messaging.names import SIDE_EFFECTS_QUEUE, UPDATES_QUEUE

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        queued = sum(int(client.llen(name)) for name in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE))
        return queued + int(client.hlen("unacked"))
    except redis.RedisError:
        return 0
    finally:
        client.close()


def _workers_listening(url: str) -> bool:
    """Whether any Celery worker answers a ping on this broker (it would take the demo's messages)."""
    from customer_updates.messaging.broker import producer_app

    app = producer_app(Settings(REDIS_URL=url))
    try:
        return bool(app.control.ping(timeout=1.0))
    except Exception:
        return False
    finally:
        app.close()


def _producer(settings: Settings) -> Any:
    from customer_updates.producer import Producer

    return Producer(settings)
