"""Commands for merges (SPEC §4) and history (SPEC §8): `merge`, `unmerge`, `customer history`."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from customer_updates.cli.common import console, fail, main, out, print_json
from customer_updates.cli.data import customers
from customer_updates.errors import CustomerUpdatesError
from customer_updates.settings import get_settings


def _wait_and_show(org_id: int, request_id: str, wait: float, as_json: bool, producer: Any) -> None:
    from customer_updates.cli.results import show_items

    console.print(f"request {request_id} enqueued")
    if not wait:
        if as_json:
            print_json({"request_id": request_id})
        return
    with console.status("waiting for the worker..."):
        found = producer.get_result(org_id, request_id, timeout=wait)
    if found is None:
        fail(f"no result after {wait}s; later: customer-updates result {request_id} --org {org_id}")
    print_json(found) if as_json else show_items([found])
    if found["item_status"]["success"] != "true":
        raise SystemExit(1)


@main.command()
@click.option("--org", "org_id", type=int, required=True)
@click.option("--survivor-id", type=int, required=True, help="The customer that stays.")
@click.option("--victim-id", type=int, required=True, help="The customer merged into the survivor.")
@click.option("--wait", type=float, default=0.0, help="Seconds to wait for the result.")
@click.option("--json", "as_json", is_flag=True, help="Print the v1.1 item.")
def merge(org_id: int, survivor_id: int, victim_id: int, wait: float, as_json: bool) -> None:
    """Ask to merge two customers, members included (SPEC §4)."""
    from customer_updates.producer import Producer

    producer = Producer.from_env()
    try:
        request_id = producer.enqueue_merge(org_id, survivor_id, victim_id,
                                            user_context={"entity_type": "CLI", "source": "customer-updates"})
    except CustomerUpdatesError as exc:
        fail(str(exc))
    _wait_and_show(org_id, request_id, wait, as_json, producer)


@main.command()
@click.option("--org", "org_id", type=int, required=True)
@click.option("--victim-id", type=int, required=True, help="The merged customer to give back its own account.")
@click.option("--wait", type=float, default=0.0, help="Seconds to wait for the result.")
@click.option("--json", "as_json", is_flag=True, help="Print the v1.1 item of the restored customer.")
def unmerge(org_id: int, victim_id: int, wait: float, as_json: bool) -> None:
    """Undo the latest merge of a customer (SPEC §4)."""
    from customer_updates.producer import Producer

    producer = Producer.from_env()
    try:
        request_id = producer.enqueue_unmerge(org_id, victim_id,
                                              user_context={"entity_type": "CLI", "source": "customer-updates"})
    except CustomerUpdatesError as exc:
        fail(str(exc))
    _wait_and_show(org_id, request_id, wait, as_json, producer)


@customers.command("history")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--id", "user_id", type=int, required=True)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--before", type=int, help="Entries older than this entry id (the next page).")
@click.option("--json", "as_json", is_flag=True)
def customer_history(org_id: int, user_id: int, limit: int, before: int | None, as_json: bool) -> None:
    """A customer's changes, merges, unmerges and awards, newest first (SPEC §8)."""
    from customer_updates.services.history import customer_history as read
    from customer_updates.store.db import session_scope

    with session_scope(get_settings().database_url) as session:
        page = read(session, org_id, user_id, limit, before)
    if as_json:
        print_json(page)
        return
    table = Table(title=f"history of customer {user_id} (org {org_id}), newest first")
    for column in ("applied", "issued", "what", "field", "previous", "new", "request", "by"):
        table.add_column(column)
    for e in page["entries"]:
        context = e["user_context"] or {}
        who = " ".join(str(context.get(k)) for k in ("entity_type", "entity_id") if context.get(k))
        table.add_row(e["applied_at"], e["issued_at"] or "", e["kind"], e["field"] or "", e["previous"] or "",
                      e["new"] or "", e["request_id"] or "", who)
        for moved in e.get("moved", []):
            table.add_row("", "", "  moved", moved["field"], str(moved["previous"] or ""), str(moved["new"] or ""),
                          "", "")
    out.print(table)
    if page["next_before"]:
        console.print(f"more: --before {page['next_before']}")
