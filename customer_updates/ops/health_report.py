"""The human form of a health snapshot (`customer-updates health`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from customer_updates.ops.health import DEGRADED, OK, Health

_STYLE = {OK: "green", DEGRADED: "yellow"}


def _number(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def show(console: Console, health: Health) -> None:
    style = _STYLE.get(health.status, "red")
    broker, database = ("up" if ok else "DOWN" for ok in (health.broker, health.database))
    if not health.database_checked:
        database = "not checked"
    console.print(f"[bold {style}]{health.status.upper()}[/bold {style}]  broker {broker}, database {database}")
    table = Table("queue", "waiting", "oldest waiting")
    for queue in health.queues:
        table.add_row(queue.name, str(queue.messages),
                      _number(queue.oldest_age_seconds, "s") if queue.messages else "-")
    if health.queues:
        console.print(table)
    if health.workers is not None:
        workers = Table("worker", "queues", "up for")
        for worker in health.workers:
            workers.add_row(worker.name, ", ".join(worker.queues), _number(worker.uptime_seconds, "s"))
        console.print(workers if health.workers else "workers: none answered")
    if health.database_checked:
        console.print(f"reserved by workers (unacknowledged): {_number(health.reserved)}")
        oldest = health.outbox_oldest_pending_age_seconds
        console.print(f"outbox: {_number(health.outbox_unpublished)} unpublished, "
                      f"{_number(health.outbox_awards_pending)} awards pending, oldest pending "
                      f"{_number(oldest, 's') if oldest is not None else '-'}")
        console.print(f"dead letters: {_number(health.dead_letters)}")
    for problem in health.problems:
        console.print(f"[red]down:[/red] {problem}")
    for warning in health.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
