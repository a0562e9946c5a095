"""Commands that produce and read results: `enqueue`, `result`, `batch`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from customer_updates.cli.common import console, fail, main, out, print_json
from customer_updates.errors import CustomerUpdatesError
from customer_updates.messaging.results import read_batch_response, read_result
from customer_updates.settings import Settings, get_settings


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
                    fail(f"{file} line {number} is not JSON: {exc}")
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
        fail(str(exc))
    console.print(f"batch {receipt.batch_id}: {len(receipt.request_ids)} commands enqueued")
    if not wait:
        if as_json:
            print_json({"batch_id": receipt.batch_id, "request_ids": receipt.request_ids})
            return
        # The ids `result` takes, one a line in the items' order (stdout, so that they can be piped).
        console.print(f"request ids, for `customer-updates result ID --org {org_id}` "
                      f"(or `customer-updates batch {receipt.batch_id} --org {org_id}`):")
        for request_id in receipt.request_ids:
            click.echo(request_id)
        return
    with console.status("waiting for the worker..."):
        result = producer.get_batch_result(org_id, receipt.batch_id, timeout=wait)
    if result is None:
        fail(f"no result after {wait}s; later: customer-updates batch {receipt.batch_id} --org {org_id}")
    assert result is not None
    print_json(result) if as_json else show_batch(result)  # checked by get_batch_result


def _redis_or_db_result(settings: Settings, org_id: int, request_id: str,
                        payload: Any = None) -> dict[str, Any] | None:
    """The result of a request id; with `payload`, the result of that payload (409 if the id's stored
    result was made for another one)."""
    import redis

    from customer_updates.models.commands import payload_hash
    from customer_updates.models.results import conflict_item, wire_item
    from customer_updates.store.db import session_scope
    from customer_updates.store.records import read_record

    wanted = payload_hash(payload) if payload is not None else None
    try:
        found = read_result(redis.Redis.from_url(settings.redis_url), org_id, request_id, wanted, payload)
    except redis.RedisError:
        found = None
    if found is not None:
        return found
    with session_scope(settings.database_url) as session:  # expired from Redis: the durable copy
        record = read_record(session, org_id, request_id)
        if record is None:
            return None
        if wanted is not None and record.payload_hash != wanted:
            return conflict_item(payload)
        return wire_item(record.result)


@main.command()
@click.argument("request_id")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--payload", "payload_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The customer item (JSON) sent under this request id: a result made for another payload "
                   "then shows as 409.")
def result(request_id: str, org_id: int, as_json: bool, payload_file: Path | None) -> None:
    """Show the stored result of one command."""
    from customer_updates.models.v11 import checked_item

    payload = None
    if payload_file is not None:
        try:
            payload = json.loads(payload_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            fail(f"{payload_file} is not JSON: {exc}")
    found = _redis_or_db_result(get_settings(), org_id, request_id, payload)
    if found is None:
        fail(f"no result for request {request_id} of org {org_id} (not applied yet, or unknown)")
    assert found is not None
    print_json(checked_item(found)) if as_json else show_items([found])


@main.command()
@click.argument("batch_id")
@click.option("--org", "org_id", type=int, required=True)
@click.option("--json", "as_json", is_flag=True)
def batch(batch_id: str, org_id: int, as_json: bool) -> None:
    """Show the v1.1 response of a batch."""
    import redis

    from customer_updates.models.results import batch_response, wire_item
    from customer_updates.models.v11 import checked_batch
    from customer_updates.store.db import session_scope
    from customer_updates.store.records import stored_batch_items

    settings = get_settings()
    try:
        found = read_batch_response(redis.Redis.from_url(settings.redis_url), org_id, batch_id)
    except redis.RedisError:
        found = None
    if found is None:
        with session_scope(settings.database_url) as session:
            items = stored_batch_items(session, org_id, batch_id)
        found = batch_response([wire_item(i) for i in items]) if items else None
    if found is None:
        fail(f"batch {batch_id} of org {org_id} is not done (or unknown)")
    assert found is not None
    print_json(checked_batch(found)) if as_json else show_batch(found)


def show_batch(response: dict[str, Any]) -> None:
    status = response["response"]["status"]
    out.print(f"[bold]{status['code']} {status['message']}[/bold]: {status['success_count']} of "
              f"{status['total']} succeeded")
    show_items(response["response"]["customers"]["customer"])


def show_items(items: list[dict[str, Any]]) -> None:
    table = Table("user_id", "code", "message", "warnings", "points", "effects")
    for item in items:
        status = item["item_status"]
        warnings = ", ".join(str(w) for w in status.get("warnings", {}).get("warning", []))
        effects = ", ".join(f"{e['type']}:{e.get('awarded_points') or e.get('upgraded_slab_name')}"
                            for e in item.get("side_effects", {}).get("effect", []))
        table.add_row(str(item.get("user_id", "")), str(status["code"]), status["message"][:70], warnings,
                      str(item.get("loyalty_points", "")), effects)
    out.print(table)
