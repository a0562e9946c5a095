"""The demo's summary: per-item results, merges, points awarded (read back), where to look next."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from customer_updates.models import tables as t
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope

_IDENTIFIERS = ("id", "mobile", "email", "external_id")


def awards_pending(database_url: str, org_id: int) -> int:
    """Point awards decided by updates and not yet carried out by their follow-on task."""
    with session_scope(database_url) as session:
        query = select(func.count()).select_from(t.OutboxEntry).where(
            t.OutboxEntry.org_id == org_id, t.OutboxEntry.kind == "award", t.OutboxEntry.done_at.is_(None))
        return int(session.scalar(query) or 0)


def describe(item: Any) -> str:
    """What an input item asks for, in a few words: the identifier it finds the customer by, the keys."""
    if not isinstance(item, dict):
        return "<not an object>"
    found = next((f"{k}={item[k]}" for k in _IDENTIFIERS if item.get(k)), "no identifier")
    rest = [k for k in item if k not in _IDENTIFIERS or f"{k}={item[k]}" != found]
    return f"{found}: {', '.join(rest) or 'nothing else'}"


def _status(item: dict[str, Any]) -> tuple[str, str]:
    status = item["item_status"]
    warnings = status.get("warning_details", [])
    ok = status["success"] == "true"
    head = f"[{'green' if ok else 'red'}]{status['code']}[/] {status['message']}"
    return head, "\n".join(f"{w['code']} {w['message']}" for w in warnings)


def _effects(item: dict[str, Any]) -> str:
    shown = []
    for effect in item.get("side_effects", {}).get("effect", []):
        if effect.get("type") == "points":
            shown.append(f"+{effect.get('awarded_points')} points ({effect.get('rule')})")
        elif effect.get("type") == "slab":
            before = effect.get("previous_slab_name")
            shown.append(f"tier {before} -> {effect.get('upgraded_slab_name')}" if before
                         else f"tier {effect.get('upgraded_slab_name')}")
        else:
            shown.append(str(effect.get("type")))
    return "\n".join(shown)


def show(console: Console, settings: Settings, org_id: int, body: dict[str, Any], batch: dict[str, Any],
         stale_input: dict[str, Any], stale: dict[str, Any], pending: int) -> None:
    from customer_updates.services.reads import get_customer, list_merges
    from customer_updates.store.orgs import OrgCache

    status = batch["response"]["status"]
    console.rule("[bold]What happened")
    console.print(f"batch: [bold]{status['code']} {status['message']}[/bold] "
                  f"({status['success_count']} of {status['total']} items succeeded)")
    table = Table("#", "asked for", "result", "warnings", "side effects", show_lines=True)
    for column in table.columns:
        column.overflow = "fold"
    inputs = body["root"]["customer"]
    inputs = inputs if isinstance(inputs, list) else [inputs]
    for number, (given, item) in enumerate(zip(inputs, batch["response"]["customers"]["customer"],
                                               strict=False), start=1):
        head, warnings = _status(item)
        who = f"\n-> customer {item['user_id']}" if item.get("user_id") else ""
        table.add_row(str(number), describe(given) + who, head, warnings, _effects(item))
    head, warnings = _status(stale)
    table.add_row("late", describe(stale_input) + "\n(issued an hour before the batch)", head, warnings, "")
    console.print(table)

    with session_scope(settings.database_url) as session:
        merges = list_merges(session, org_id)
        console.print("[bold]Merges[/bold]" if merges else "[bold]Merges[/bold]: none")
        for merge in merges:
            console.print(f"  customer {merge.victim_id} merged into customer {merge.survivor_id} "
                          f"(by {merge.identifier}, request {merge.request_id}); "
                          f"lookups by its identifiers now find {merge.survivor_id}")
        ledger = list(session.scalars(select(t.PointsLedger).where(t.PointsLedger.org_id == org_id)
                                      .order_by(t.PointsLedger.id)))
        console.print("[bold]Points awarded[/bold] (by the follow-on tasks; customers read back)"
                      if ledger else "[bold]Points awarded[/bold]: none")
        orgs = OrgCache(60.0)
        for entry in ledger:
            customer = get_customer(session, orgs, org_id, "id", str(entry.user_id))
            console.print(f"  customer {entry.user_id}: +{entry.points} for {entry.reason}; now "
                          f"{customer.get('loyalty_points')} points, tier {customer.get('current_slab')}")
    if pending:
        console.print(f"[yellow]{pending} awards still pending[/yellow]: the outbox relay (beat) retries them")


def next_steps(console: Console, settings: Settings, org_id: int, batch_id: str, workdir: Path,
               embedded: bool) -> None:
    env = f"DATABASE_URL={shlex.quote(settings.database_url)}"
    console.rule("[bold]Where to look next")
    console.print(f"The demo's files are in {workdir} (database, worker.log). Against its database:")
    for command in (f"customer get --org {org_id} --mobile 919800000001",
                    f"batch {batch_id} --org {org_id}",
                    f"merges list --org {org_id}"):
        console.print(f"  {env} customer-updates {command}", soft_wrap=True)
    if embedded:
        console.print("The embedded Redis is gone with the demo; with a Redis server (REDIS_URL) run the "
                      "same flow for real:")
    else:
        console.print(f"With REDIS_URL={settings.redis_url} run the same flow for real:")
    for command in ("db upgrade", "orgs load examples/org.yaml", "customers import examples/customers.ndjson",
                    "worker --beat", "enqueue examples/updates.json --org 1 --wait 30",
                    "flower          (then open http://127.0.0.1:5555)",
                    "health          (queues, outbox, dead letters; --json for scripts)",
                    "metrics --port 9808   (Prometheus)",
                    "dead-letters list"):
        console.print(f"  customer-updates {command}", soft_wrap=True)
    console.print("Operations guide: docs/operations.md")
