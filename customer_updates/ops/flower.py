"""Flower for our Celery app: `customer-updates flower`.

Flower watches the task events the workers send (`-E`, on by default in `customer-updates worker`).
It shows each message's `kwargsrepr`, which the producer masks, so no mobile, email or name is shown.
It binds to loopback unless told otherwise, and refuses any other address without authentication: its
pages and API can revoke tasks and shut workers down.
"""

from __future__ import annotations

import ipaddress
import os

from customer_updates.settings import Settings

# Flower's own options that turn authentication on, as flags or as FLOWER_* environment variables.
_AUTH_OPTIONS = ("--basic-auth", "--basic_auth", "--auth")
_AUTH_ENVIRONMENT = ("FLOWER_BASIC_AUTH", "FLOWER_AUTH")


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name, or "" (every interface)
        return False


def has_authentication(settings: Settings, extra: tuple[str, ...]) -> bool:
    return bool(settings.flower_basic_auth
                or any(arg.split("=", 1)[0] in _AUTH_OPTIONS for arg in extra)
                or any(os.environ.get(name) for name in _AUTH_ENVIRONMENT))


def exposure_problem(settings: Settings, address: str, extra: tuple[str, ...] = ()) -> str | None:
    """The one line that refuses to serve Flower beyond this host without authentication, or None."""
    if is_loopback(address) or has_authentication(settings, extra):
        return None
    return (f"Flower would listen on {address or 'every interface'} without authentication: set "
            "CUSTOMER_UPDATES_FLOWER_BASIC_AUTH=user:password (or pass Flower's --auth with its OAuth options), "
            "or listen on 127.0.0.1")


def flower_argv(settings: Settings, address: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The `celery flower` arguments; options Flower knows may follow in `extra`."""
    argv = ["flower", f"--address={address}", f"--port={port}"]
    if settings.flower_basic_auth:
        argv.append(f"--basic-auth={settings.flower_basic_auth}")
    return [*argv, *extra]


def protect_metrics() -> None:
    """Put Flower's `/metrics` behind the same authentication as its pages.

    Flower 2 serves `/metrics` to anyone (mher/flower#1129); task names, worker names and rates are not
    for an anonymous caller. `/healthcheck` stays open: it answers only "OK", for a container's probe.
    """
    import tornado.web
    from flower.views.monitor import Metrics

    if not getattr(Metrics.get, "_customer_updates_protected", False):
        protected = tornado.web.authenticated(Metrics.get)
        protected._customer_updates_protected = True  # type: ignore[attr-defined]
        Metrics.get = protected


def run(settings: Settings, address: str, port: int, extra: tuple[str, ...] = ()) -> None:
    import flower  # noqa: F401  (the `flower` extra: a missing one is named by the CLI before Celery starts)

    from customer_updates.ops import logs
    from customer_updates.worker import app

    protect_metrics()
    # Our handler first: tornado then adds none of its own, and Flower's lines are JSON like the others'.
    logs.configure(settings.log_level, settings.log_json)
    app.start(flower_argv(settings, address, port, extra))
