"""Prometheus metrics of the service as a whole: queue depths, waiting age, outbox backlog, dead letters,
and the counters of this host's workers (ops/worker_metrics.py) when `metrics_dir` is set.

Flower's `/metrics` covers the workers and their tasks; this exporter covers what Flower cannot see
(messages nobody took yet, follow-on work not done, dead letters). Each scrape takes one `health`
snapshot, so the numbers are always those `customer-updates health` would print.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from customer_updates.messaging.broker import is_amqp
from customer_updates.ops import health
from customer_updates.settings import Settings

PREFIX = "customer_updates"


class HealthCollector(Collector):
    """Collects on each scrape; scrapes are serialised so a slow database never piles up queries."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            snapshot = health.check(self.settings)
        up = GaugeMetricFamily(f"{PREFIX}_up", "1 when the component answers.", labels=["component"])
        up.add_metric(["broker"], float(snapshot.broker))
        up.add_metric(["database"], float(snapshot.database))
        yield up
        status = GaugeMetricFamily(f"{PREFIX}_health_status", "0 ok, 1 degraded, 2 down (as `health`).")
        status.add_metric([], float(snapshot.exit_code))
        yield status
        depth = GaugeMetricFamily(f"{PREFIX}_queue_messages", "Messages waiting in a queue (ready, on RabbitMQ).",
                                  labels=["queue"])
        age = GaugeMetricFamily(f"{PREFIX}_queue_oldest_message_age_seconds",
                                "How long the oldest waiting message has waited (0 when none).",
                                labels=["queue"])
        for queue in snapshot.queues:
            depth.add_metric([queue.name], float(queue.messages))
            age.add_metric([queue.name], float(queue.oldest_age_seconds or 0.0))
        yield depth
        # RabbitMQ does not tell how long its oldest message has waited (ops/health.py): absent, not 0.
        if not is_amqp(self.settings.celery_broker_url):
            yield age
        optional = [
            ("reserved_messages", "Messages taken by workers and not acknowledged yet (Redis broker only).",
             snapshot.reserved),
            ("outbox_unpublished", "Outbox rows not yet published.", snapshot.outbox_unpublished),
            ("outbox_awards_pending", "Point awards decided, not yet done.", snapshot.outbox_awards_pending),
            ("outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row (0 when none).",
             (snapshot.outbox_oldest_pending_age_seconds or 0.0) if snapshot.database else None),
            ("dead_letters", "Messages in the dead-letter list (and on RabbitMQ's dead-letter queue).",
             snapshot.dead_letters),
        ]
        for name, text, value in optional:
            if value is not None:  # unknown (component down): absent, rather than a misleading 0
                gauge = GaugeMetricFamily(f"{PREFIX}_{name}", text)
                gauge.add_metric([], float(value))
                yield gauge


class BuildInfo(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(f"{PREFIX}_build_info", "Always 1: the version of customer-updates serving this.",
                                 labels=["version"])
        info.add_metric([package_version()], 1.0)
        yield info


def package_version() -> str:
    try:
        return version("customer-updates")
    except PackageNotFoundError:
        return "0"


def registry(settings: Settings) -> CollectorRegistry:
    """The health gauges, the build info, and the counters the workers of this host write to `metrics_dir`."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HealthCollector(settings))
    reg.register(BuildInfo())
    if settings.metrics_dir:
        Path(settings.metrics_dir).mkdir(parents=True, exist_ok=True)
        MultiProcessCollector(reg, path=settings.metrics_dir)
    return reg


def serve(settings: Settings, port: int, address: str = "127.0.0.1") -> threading.Thread:
    """Start the exporter's HTTP server in a daemon thread; returns that thread."""
    _server, thread = start_http_server(port, addr=address, registry=registry(settings))
    return thread
