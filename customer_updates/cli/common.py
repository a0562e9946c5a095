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


class _Main(click.Group):
    """The top-level group: a failed command prints one line on stderr and exits 2, its traceback only
    with `--debug`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.meta.get("debug"):  # set by `main` before any subcommand runs
                raise
            from customer_updates.cli.errors import describe

            click.echo(f"error: {describe(exc)} (--debug shows the traceback)", err=True)
            ctx.exit(2)


@click.group(cls=_Main)
@click.version_option(package_name="customer-updates")
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one line.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Apply v1.1 customer updates through Redis and Celery workers."""
    ctx.meta["debug"] = debug
