"""What every part of the command line shares: the `main` group, consoles, JSON output and failures."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from rich.console import Console

console = Console(stderr=True)
out = Console()


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def fail(text: str) -> NoReturn:
    console.print(f"[red]error:[/red] {text}")
    sys.exit(2)


@click.group()
@click.version_option(package_name="customer-updates")
def main() -> None:
    """Apply v1.1 customer updates through Redis and Celery workers."""
