"""Flower for our Celery app: `customer-updates flower`.

Flower watches the task events the workers send (`-E`, on by default in `customer-updates worker`).
It shows each message's `kwargsrepr`, which the producer masks, so no mobile, email or name is shown.
It binds to loopback unless told otherwise: put it behind a proxy, and set basic auth, before exposing it.
"""

from __future__ import annotations

from customer_updates.settings import Settings


def flower_argv(settings: Settings, address: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The `celery flower` arguments; options Flower knows may follow in `extra`."""
    argv = ["flower", f"--address={address}", f"--port={port}"]
    if settings.flower_basic_auth:
        argv.append(f"--basic-auth={settings.flower_basic_auth}")
    return [*argv, *extra]


def run(settings: Settings, address: str, port: int, extra: tuple[str, ...] = ()) -> None:
    from customer_updates.worker import app

    app.start(flower_argv(settings, address, port, extra))
