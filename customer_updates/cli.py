"""The `customer-updates` command line (DESIGN §3)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from customer_updates import mailbox
from customer_updates.errors import CustomerUpdatesError
from customer_updates.settings import Settings, get_settings

console = Console(stderr=True)
out = Console()


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _fail(text: str) -> None:
    console.print(f"[red]error:[/red] {text}")
    sys.exit(2)


@click.group()
@click.version_option(package_name="customer-updates")
def main() -> None:
    """Apply v1.1 customer updates through Redis and Celery workers."""


# -- database and reference data ------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Run the migrations up to REVISION."""
    from customer_updates.store.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    console.print("database is at the latest schema")


@main.group()
def orgs() -> None:
    """Org configuration."""


@orgs.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def orgs_load(file: Path) -> None:
    """Load an org file (YAML or JSON). Loading the same file twice changes nothing."""
    from pydantic import ValidationError

    from customer_updates.store.db import session_scope
    from customer_updates.store.orgs import load_org, read_org_file

    try:
        spec = read_org_file(file)
    except (ValidationError, ValueError) as exc:
        _fail(f"{file}: {exc}")
    with session_scope(get_settings().database_url) as session:
        for org in spec.orgs:
            changed = load_org(session, org)
            console.print(f"org {org.id} ({org.name}): {'loaded' if changed else 'unchanged'}")


@main.group()
def customers() -> None:
    """Customers."""


@customers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def customers_import(file: Path) -> None:
    """Import customers from NDJSON (one customer a line). Bad lines are reported, good ones load."""
    from sqlalchemy.orm import sessionmaker

    from customer_updates.services.imports import import_customers
    from customer_updates.store.db import get_engine

    factory = sessionmaker(get_engine(get_settings().database_url))
    total = sum(1 for _ in file.open(encoding="utf-8"))
    with Progress(console=console, transient=True) as progress, file.open(encoding="utf-8") as lines:
        task = progress.add_task("importing", total=total)
        report = import_customers(factory, lines, progress=lambda n: progress.advance(task, n))
    for number, error in report.errors[:50]:
        console.print(f"line {number}: {error}")
    if len(report.errors) > 50:
        console.print(f"... and {len(report.errors) - 50} more bad lines")
    console.print(f"loaded {report.loaded}, already present {report.skipped}, bad lines {len(report.errors)}")


@customers.command("get")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--mobile")
@click.option("--email")
@click.option("--external-id")
@click.option("--id", "user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the v1.1 item.")
def customer_get(org_id: int, mobile: str | None, email: str | None, external_id: str | None,
                 user_id: str | None, as_json: bool) -> None:
    """Show one customer, found by one identifier."""
    from customer_updates import runtime
    from customer_updates.services.reads import get_customer
    from customer_updates.store.db import session_scope

    given = [(k, v) for k, v in (("mobile", mobile), ("email", email), ("external_id", external_id),
                                 ("id", user_id)) if v]
    if len(given) != 1:
        _fail("give exactly one of --mobile, --email, --external-id, --id")
    by, value = given[0]
    with session_scope(get_settings().database_url) as session:
        item = get_customer(session, runtime.current().orgs, org_id, by, value)
    if as_json:
        _print_json(item)
    else:
        _show_items([item])
    if item["item_status"]["success"] != "true":
        sys.exit(1)


main.add_command(customers, "customer")  # `customer get` as in the contract; `customers import` too


# -- producing and reading results -----------------------------------------------------------------------

def _read_body(file: Path) -> dict[str, Any]:
    text = file.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    _fail(f"{file} line {number} is not JSON: {exc}")
        return {"root": {"customer": items}}
    if isinstance(data, dict) and "root" in data:
        return data
    return {"root": {"customer": data}}


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org_id", type=int, required=True)
@click.option("--wait", type=float, default=0.0, help="Seconds to wait for the batch result.")
@click.option("--json", "as_json", is_flag=True, help="Print the v1.1 batch response.")
def enqueue(file: Path, org_id: int, wait: float, as_json: bool) -> None:
    """Enqueue FILE (a v1.1 JSON body, or NDJSON of items) as one batch."""
    from customer_updates.producer import Producer

    producer = Producer.from_env()
    try:
        receipt = producer.enqueue_batch(org_id, _read_body(file))
    except CustomerUpdatesError as exc:
        _fail(str(exc))
    console.print(f"batch {receipt.batch_id}: {len(receipt.request_ids)} commands enqueued")
    if not wait:
        if as_json:
            _print_json({"batch_id": receipt.batch_id, "request_ids": receipt.request_ids})
        return
    with console.status("waiting for the worker..."):
        result = producer.get_batch_result(org_id, receipt.batch_id, timeout=wait)
    if result is None:
        _fail(f"no result after {wait}s; later: customer-updates batch {receipt.batch_id} --org {org_id}")
    assert result is not None
    _print_json(result) if as_json else _show_batch(result)


def _redis_or_db_result(settings: Settings, org_id: int, request_id: str) -> dict[str, Any] | None:
    import redis

    from customer_updates.store.db import session_scope
    from customer_updates.store.records import read_record

    try:
        found = mailbox.read_result(redis.Redis.from_url(settings.redis_url), org_id, request_id)
    except redis.RedisError:
        found = None
    if found is not None:
        return found
    with session_scope(settings.database_url) as session:  # expired from Redis: the durable copy
        record = read_record(session, org_id, request_id)
        return record.result if record else None


@main.command()
@click.argument("request_id")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--json", "as_json", is_flag=True)
def result(request_id: str, org_id: int, as_json: bool) -> None:
    """Show the stored result of one command."""
    found = _redis_or_db_result(get_settings(), org_id, request_id)
    if found is None:
        _fail(f"no result for request {request_id} of org {org_id} (not applied yet, or unknown)")
    assert found is not None
    _print_json(found) if as_json else _show_items([found])


@main.command()
@click.argument("batch_id")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--json", "as_json", is_flag=True)
def batch(batch_id: str, org_id: int, as_json: bool) -> None:
    """Show the v1.1 response of a batch."""
    import redis

    from customer_updates.models.results import batch_response
    from customer_updates.store.db import session_scope
    from customer_updates.store.records import read_batch

    settings = get_settings()
    try:
        found = mailbox.read_batch(redis.Redis.from_url(settings.redis_url), org_id, batch_id)
    except redis.RedisError:
        found = None
    if found is None:
        with session_scope(settings.database_url) as session:
            items = read_batch(session, org_id, batch_id)
        found = batch_response(items) if items else None
    if found is None:
        _fail(f"batch {batch_id} of org {org_id} is not done (or unknown)")
    assert found is not None
    _print_json(found) if as_json else _show_batch(found)


def _show_batch(response: dict[str, Any]) -> None:
    status = response["response"]["status"]
    out.print(f"[bold]{status['code']} {status['message']}[/bold]: {status['success_count']} of "
              f"{status['total']} succeeded")
    _show_items(response["response"]["customers"]["customer"])


def _show_items(items: list[dict[str, Any]]) -> None:
    table = Table("user_id", "code", "message", "warnings", "points", "effects")
    for item in items:
        status = item["item_status"]
        warnings = ", ".join(str(w["code"]) for w in status.get("warnings", {}).get("warning", []))
        effects = ", ".join(f"{e['type']}:{e.get('awarded_points') or e.get('upgraded_slab_name')}"
                            for e in item.get("side_effects", {}).get("effect", []))
        table.add_row(str(item.get("user_id", "")), str(status["code"]), status["message"][:70], warnings,
                      str(item.get("loyalty_points", "")), effects)
    out.print(table)


# -- operations -----------------------------------------------------------------------------------------

@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--queues", "-Q", default="customer_updates,customer_updates.side_effects", show_default=True,
              help="Queues to consume; split them across hosts to scale each concern alone.")
@click.option("--beat", "-B", "with_beat", is_flag=True, help="Also run the periodic tasks (one-host deployment).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, with_beat: bool, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker; extra options go to `celery worker` (e.g. --concurrency 4)."""
    from customer_updates.worker import app

    argv = ["worker", "-Q", queues, "-E", *celery_args]
    if with_beat:
        argv.append("-B")
    app.worker_main(argv)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat (outbox relay, purge of old idempotency records)."""
    from customer_updates.worker import app

    app.start(["beat", *celery_args])


@main.group("dead-letters")
def dead_letters() -> None:
    """Messages that could not be applied."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True)
def dead_letters_list(as_json: bool) -> None:
    from customer_updates import runtime

    rt = runtime.current()
    entries = mailbox.list_dead_letters(rt.redis, rt.settings.dead_letter_key)
    if as_json:
        _print_json(entries)
        return
    table = Table("#", "attempts", "error", "commands")
    for index, entry in enumerate(entries):
        message = entry.get("message")
        count = len(message.get("commands", [])) if isinstance(message, dict) and isinstance(
            message.get("commands"), list) else "?"
        table.add_row(str(index), str(entry.get("attempts")), str(entry.get("error"))[:80], str(count))
    out.print(table)
    console.print(f"{len(entries)} dead letters")


@dead_letters.command("replay")
def dead_letters_replay() -> None:
    """Send dead-lettered messages again (idempotent: what was applied applies nothing twice)."""
    from customer_updates import runtime
    from customer_updates.services.dead_letters import replay

    rt = runtime.current()
    sent, kept = replay(rt.redis, rt.settings.dead_letter_key)
    console.print(f"replayed {sent} messages; {kept} could not be replayed and stay in the list")


@main.group()
def merges() -> None:
    """Merge records."""


@merges.command("list")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--customer", "user_id", type=int, help="Only merges where this user_id is survivor or victim.")
@click.option("--json", "as_json", is_flag=True)
def merges_list(org_id: int, user_id: int | None, as_json: bool) -> None:
    from customer_updates.services.reads import list_merges
    from customer_updates.store.db import session_scope

    with session_scope(get_settings().database_url) as session:
        rows: list[dict[str, Any]] = [
            {"survivor_id": m.survivor_id, "victim_id": m.victim_id, "identifier": m.identifier,
             "request_id": m.request_id, "user_context": m.user_context,
             "created_at": m.created_at.isoformat(sep=" "), "snapshot": m.snapshot}
            for m in list_merges(session, org_id, user_id)]
    if as_json:
        _print_json(rows)
        return
    table = Table("when", "survivor", "victim", "identifier", "request")
    for r in rows:
        table.add_row(str(r["created_at"])[:19], str(r["survivor_id"]), str(r["victim_id"]), str(r["identifier"]),
                      str(r["request_id"]))
    out.print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
def health(as_json: bool) -> None:
    """Broker, database, queues, outbox and dead letters. Exit code: 0 ok, 1 degraded, 2 down."""
    from customer_updates.health import check
    from customer_updates.health_report import show

    snapshot = check(get_settings())
    if as_json:
        _print_json(snapshot.as_dict())
    else:
        show(out, snapshot)
    sys.exit(snapshot.exit_code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 listens on every interface.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP ingress (v1.1 /customer/update and /customer/get) with uvicorn until stopped."""
    from customer_updates.http import serve as run

    run(get_settings(), host, port, workers)


@main.command()
@click.option("--port", type=int, default=9808, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True, help="0.0.0.0 lets a remote Prometheus in.")
def metrics(port: int, address: str) -> None:
    """Serve Prometheus metrics (queue depths, waiting age, outbox backlog, dead letters) until stopped."""
    import time

    from customer_updates.metrics import serve

    serve(get_settings(), port, address)
    console.print(f"metrics on http://{address}:{port}/metrics")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--port", type=int, default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(port: int, address: str, flower_args: tuple[str, ...]) -> None:
    """Run Flower for the workers (basic auth from CUSTOMER_UPDATES_FLOWER_BASIC_AUTH)."""
    from customer_updates.flower import run

    run(get_settings(), address, port, flower_args)


@main.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the demo database, worker log and beat schedule (default: a new temp folder).")
@click.option("--database-url", help="A database to use instead of a new SQLite file (gets the examples).")
@click.option("--examples", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with org.yaml, customers.ndjson, updates.json (default: the project's).")
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait for each step.")
def demo(workdir: Path | None, database_url: str | None, examples: Path | None, timeout: float) -> None:
    """Run the whole flow once: database, Redis, a worker, a realistic batch, a summary."""
    from customer_updates.demo import Demo

    sys.exit(Demo(workdir=workdir, database_url=database_url, examples=examples, timeout=timeout).run())


@main.command("settings")
def show_settings() -> None:
    """List every setting, its environment variable and its description."""
    table = Table("variable", "default", "description")
    for name, info in Settings.model_fields.items():
        env = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}.get(name,
                                                                             f"CUSTOMER_UPDATES_{name.upper()}")
        table.add_row(env, str(info.default), info.description or "")
    out.print(table)


if __name__ == "__main__":
    main()
