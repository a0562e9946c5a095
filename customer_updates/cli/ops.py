"""Commands to run and operate the service: worker, beat, flower, serve, metrics, health, dead letters, merges,
demo, settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Column, Table

from customer_updates.cli.common import console, main, out, print_json
from customer_updates.messaging.dead_letters import list_dead_letters, masked_entry
from customer_updates.settings import get_settings


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--queues", "-Q", default="customer_updates,customer_updates.side_effects", show_default=True,
              help="Queues to consume; split them across hosts to scale each concern alone.")
@click.option("--beat", "-B", "with_beat", is_flag=True, help="Also run the periodic tasks (one-host deployment).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, with_beat: bool, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker; extra options go to `celery worker` (e.g. --concurrency 4)."""
    import redis

    from customer_updates.messaging.broker import drop_stale_bindings
    from customer_updates.ops.worker_metrics import use_dir

    use_dir(get_settings().metrics_dir)  # before the worker imports prometheus_client (its pool inherits it)
    from customer_updates.worker import app

    broker = get_settings().celery_broker_url
    try:
        if broker.split("://", 1)[0].lower() in ("redis", "rediss"):  # the bindings of kombu's Redis transport
            with redis.Redis.from_url(broker, socket_connect_timeout=5) as client:
                if drop_stale_bindings(client):
                    console.print("removed the binding that copied every update into the side-effects queue")
    except redis.RedisError:
        pass  # Redis is not up yet: Celery waits for it, and the next start removes the binding

    argv = [*_process_logging(), "worker", "-Q", queues, "-E", *celery_args]
    if with_beat:
        argv.append("-B")
    app.worker_main(argv)


def _process_logging() -> list[str]:
    """Log lines of a long-running process as the settings say, from its first line (Celery warns before it
    sets its logging up); and Celery's --quiet when they are JSON, as its banners are printed text."""
    from customer_updates.ops import logs

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)
    return ["--quiet"] if settings.log_json else []


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat (outbox relay, purge of old idempotency records)."""
    from customer_updates.worker import app

    app.start([*_process_logging(), "beat", *celery_args])


@main.group("dead-letters")
def dead_letters() -> None:
    """Messages that could not be applied."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON, personal data masked.")
def dead_letters_list(as_json: bool) -> None:
    from customer_updates.services import resources

    rt = resources.current()
    entries = list_dead_letters(rt.redis, rt.settings.dead_letter_key)
    if as_json:
        print_json([masked_entry(entry) for entry in entries])
        return
    # The id is what `show` and `drop` take, the time and task are read at a glance: none is wrapped or cut;
    # on a narrow terminal the error wraps instead.
    table = Table(Column("id", no_wrap=True, min_width=32), Column("time (UTC)", no_wrap=True, min_width=19),
                  Column("task", no_wrap=True, min_width=8), "attempts", Column("error", overflow="fold"), "commands")
    for entry in entries:
        shown = masked_entry(entry)
        message = entry.get("message")
        count = len(message.get("commands", [])) if isinstance(message, dict) and isinstance(
            message.get("commands"), list) else "?"
        table.add_row(str(entry["id"]), _when(entry.get("at")), str(entry.get("task_id") or "-"),
                      str(entry.get("attempts")), str(shown.get("error"))[:80], str(count))
    out.print(table)
    console.print(f"{len(entries)} dead letters")


def _when(at: Any) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S") if isinstance(at, int | float) else "?"


def _dead_letter_or_exit(entry_id: str) -> Any:
    from customer_updates.messaging.dead_letters import find_dead_letter
    from customer_updates.services import resources

    rt = resources.current()
    letter = find_dead_letter(rt.redis, rt.settings.dead_letter_key, entry_id)
    if letter is None:
        click.echo(f"error: no dead letter with id {entry_id}", err=True)
        sys.exit(1)
    return letter


@dead_letters.command("show")
@click.argument("entry_id", metavar="ID")
@click.option("--unmasked", is_flag=True, help="Show personal data in clear (to fix the data by hand).")
def dead_letters_show(entry_id: str, unmasked: bool) -> None:
    """Print one dead letter as JSON (personal data masked unless --unmasked)."""
    entry = _dead_letter_or_exit(entry_id).entry
    print_json(entry if unmasked else masked_entry(entry))


@dead_letters.command("drop")
@click.argument("entry_id", metavar="ID")
def dead_letters_drop(entry_id: str) -> None:
    """Remove one dead letter without replaying it."""
    from customer_updates.messaging.dead_letters import drop_dead_letter
    from customer_updates.services import resources

    rt = resources.current()
    if not drop_dead_letter(rt.redis, rt.settings.dead_letter_key, entry_id):
        click.echo(f"error: no dead letter with id {entry_id}", err=True)
        sys.exit(1)
    console.print(f"dropped dead letter {entry_id}")


@dead_letters.command("purge")
@click.option("--older-than", "older_than", required=True, metavar="DURATION",
              help="Remove the entries older than this: a number with s, m, h or d (e.g. 12h, 7d); 0s removes all.")
def dead_letters_purge(older_than: str) -> None:
    """Remove the dead letters older than a duration."""
    from customer_updates.messaging.dead_letters import purge_dead_letters
    from customer_updates.services import resources

    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    rt = resources.current()
    removed = purge_dead_letters(rt.redis, rt.settings.dead_letter_key, seconds)
    console.print(f"purged {removed} dead letters older than {older_than}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """`7d`, `12h`, `30m`, `90s`, `2w` in seconds."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS:
        raise ValueError(f"{text!r} is not a duration such as 7d, 12h, 30m or 90s")
    try:
        number = float(text[:-1])
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 7d, 12h, 30m or 90s") from None
    if number < 0 or number != number:
        raise ValueError(f"{text!r} is negative or not a number")
    return number * _UNITS[text[-1]]


@dead_letters.command("replay")
def dead_letters_replay() -> None:
    """Send dead-lettered messages again (idempotent: what was applied applies nothing twice)."""
    from customer_updates.messaging.broker import producer_app
    from customer_updates.messaging.sending import send_apply
    from customer_updates.services import resources
    from customer_updates.services.dead_letters import replay

    rt = resources.current()
    celery = producer_app(rt.settings)
    sent, kept = replay(rt.redis, rt.settings.dead_letter_key, lambda commands: send_apply(commands, celery=celery))
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
        print_json(rows)
        return
    table = Table("when", "survivor", "victim", "identifier", "request")
    for r in rows:
        table.add_row(str(r["created_at"])[:19], str(r["survivor_id"]), str(r["victim_id"]), str(r["identifier"]),
                      str(r["request_id"]))
    out.print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
@click.option("--workers-only", is_flag=True, help="Only the broker and the workers (a worker's liveness probe).")
@click.option("--node", help="Only this worker counts, e.g. celery@$HOSTNAME (a container's own worker).")
def health(as_json: bool, workers_only: bool, node: str | None) -> None:
    """Broker, workers, database, queues, outbox and dead letters. Exit code: 0 ok, 1 degraded, 2 down."""
    from customer_updates.ops.health import check
    from customer_updates.ops.health_report import show

    snapshot = check(get_settings(), workers_only=workers_only, node=node)
    if as_json:
        print_json(snapshot.as_dict())
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
    import logging
    import time

    from customer_updates.ops.metrics import serve

    _process_logging()
    serve(get_settings(), port, address)
    logging.getLogger("customer_updates.metrics").info("metrics exporter listening",
                                                       extra={"url": f"http://{address}:{port}/metrics"})
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--hold/--no-hold", default=None,
              help="Keep running after the migrations until stopped. Default: hold unless DYNO is set.")
def release(hold: bool | None) -> None:
    """The Procfile's `release`: run the migrations, then hold under honcho or foreman.

    Heroku (and Dokku) run `release` once per deploy and wait for it to exit; they set DYNO. honcho and
    foreman run it beside the other processes and stop them all when one exits, so there it stays up.
    """
    import logging
    import os
    import signal

    from customer_updates.store.migrate import upgrade

    log = logging.getLogger("customer_updates.release")
    _process_logging()
    upgrade(get_settings().database_url)
    log.info("database is at the latest schema")
    if not (hold if hold is not None else not os.environ.get("DYNO")):
        return
    log.info("release holds until stopped: a Procfile runner stops every process when one exits")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--port", type=int, default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(port: int, address: str, flower_args: tuple[str, ...]) -> None:
    """Run Flower for the workers (basic auth from CUSTOMER_UPDATES_FLOWER_BASIC_AUTH, required beyond
    loopback; it covers /metrics too)."""
    from customer_updates.ops.flower import exposure_problem, run

    settings = get_settings()
    problem = exposure_problem(settings, address, flower_args)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)  # one line whatever the terminal's width
        sys.exit(2)
    run(settings, address, port, flower_args)


@main.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the demo database, worker log and beat schedule (default: a new temp folder).")
@click.option("--database-url", help="A database to use instead of a new SQLite file (gets the examples).")
@click.option("--examples", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with org.yaml, customers.ndjson, updates.json (default: the project's).")
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait for each step.")
def demo(workdir: Path | None, database_url: str | None, examples: Path | None, timeout: float) -> None:
    """Run the whole flow once: database, Redis, a worker, a realistic batch, a summary."""
    from customer_updates.demo.run import Demo

    sys.exit(Demo(workdir=workdir, database_url=database_url, examples=examples, timeout=timeout).run())


@main.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
def show_settings(as_json: bool) -> None:
    """Every setting: its environment variable, its current value (secrets masked), its default when the
    value differs, and its description."""
    from customer_updates.cli import settings_view

    settings = get_settings()
    if as_json:
        print_json(settings_view.rows(settings))
        return
    click.echo(settings_view.render(settings))
