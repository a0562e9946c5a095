"""Commands for the schema and reference data: `db upgrade`, `orgs load`, `customers import`, `customer get`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click
from rich.progress import Progress, TextColumn

from customer_updates.cli.common import console, fail, main, print_json
from customer_updates.cli.results import show_items
from customer_updates.settings import get_settings


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
    """Load an org file (YAML or JSON). Loading the same file twice changes nothing.

    The whole file is checked first: every problem is listed with its path, and nothing is loaded.
    """
    from customer_updates.models.orgfile import OrgFileError
    from customer_updates.store.db import session_scope
    from customer_updates.store.orgs import load_orgs, read_org_file

    try:
        spec = read_org_file(file)
        with session_scope(get_settings().database_url) as session:
            loaded = load_orgs(session, spec)
    except OrgFileError as exc:
        for problem in exc.problems:
            console.print(f"{file.name}: {problem}", markup=False, highlight=False, soft_wrap=True)
        count = len(exc.problems)
        fail(f"{count} problem{'s' if count != 1 else ''} in {file.name}, nothing loaded")
    for org, changed in loaded:
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
    done = {"bytes": 0, "lines": 0}

    def counted(lines: BinaryIO) -> Iterator[bytes]:
        # Bytes, decoded line by line by the import: a byte that is not UTF-8 spoils its own line only.
        for line in lines:
            done["bytes"] += len(line)
            yield line

    def loaded(lines: int) -> None:
        # A chunk is loaded as soon as its last line is read: the bytes read so far are the bytes done.
        done["lines"] += lines
        progress.update(task, completed=done["bytes"], lines=done["lines"])

    columns = (*Progress.get_default_columns(), TextColumn("{task.fields[lines]:,} lines"))
    with Progress(*columns, console=console, transient=True) as progress, file.open("rb") as lines:
        # The file's size and the bytes read: an exact fraction, without reading the file twice to count it.
        task = progress.add_task("importing", total=file.stat().st_size, lines=0)
        report = import_customers(factory, counted(lines), progress=loaded)
    report.errors.sort()
    for number, error in report.errors[:50]:
        console.print(f"line {number}: {error}", markup=False, highlight=False, soft_wrap=True)
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
    from customer_updates.models.v11 import checked_item
    from customer_updates.services import resources
    from customer_updates.services.reads import get_customer
    from customer_updates.store.db import session_scope

    given = [(k, v) for k, v in (("mobile", mobile), ("email", email), ("external_id", external_id),
                                 ("id", user_id)) if v]
    if len(given) != 1:
        fail("give exactly one of --mobile, --email, --external-id, --id")
    by, value = given[0]
    with session_scope(get_settings().database_url) as session:
        item = get_customer(session, resources.current().orgs, org_id, by, value)
    if as_json:
        print_json(checked_item(item))  # the original's types (models/v11.py)
    else:
        show_items([item])
    if item["item_status"]["success"] != "true":
        sys.exit(1)


main.add_command(customers, "customer")  # `customer get` as in the contract; `customers import` too
