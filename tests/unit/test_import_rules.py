"""The layout's rules, checked on the source: who may import what (docs/architecture.md).

- rules/ is the SPEC as pure functions: it imports nothing of the project outside rules/ and models/.
- Celery, kombu and celery-batches are imported only in worker/, and in the few modules named in
  FRAMEWORK_OUTSIDE_WORKER with the reason they need it.
- messaging/ and the producer import nothing of worker/, so a producer process builds no worker app.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "customer_updates"
FRAMEWORKS = ("celery", "kombu", "celery_batches")

# Modules outside worker/ that import a framework, and why. Anything else is a layering mistake.
FRAMEWORK_OUTSIDE_WORKER = {
    # The wire contract is Celery's protocol 2: a producer sends tasks by name through a Celery app of its own.
    "messaging/broker.py": "the producers' Celery app and the queues they publish to",
    "messaging/sending.py": "builds protocol 2 messages, and on Redis pushes kombu's envelope in one pipeline",
    # Health asks the workers themselves, through Celery's remote control.
    "ops/health.py": "pings workers with Celery's remote control; reads RabbitMQ queue depths with kombu",
    # The ingress answers 503 when the broker is away; kombu raises its own error type for that.
    "http/errors.py": "maps kombu's OperationalError (broker away) to 503",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_rules_import_nothing_of_the_project_but_rules_and_models() -> None:
    offenders = {
        _relative(path): sorted(
            name for name in _imports(path)
            if name.startswith("customer_updates")
            and not name.startswith(("customer_updates.rules", "customer_updates.models")))
        for path in _modules() if _relative(path).startswith("rules/")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_worker_and_the_named_modules_import_celery_or_kombu() -> None:
    importers = {
        _relative(path) for path in _modules()
        if any(name.split(".")[0] in FRAMEWORKS for name in _imports(path))
    }
    outside = {name for name in importers if not name.startswith("worker/")}
    assert outside == set(FRAMEWORK_OUTSIDE_WORKER), (
        "a module outside worker/ imports Celery or kombu: move the code into worker/, or name it in "
        "FRAMEWORK_OUTSIDE_WORKER with the reason")


@pytest.mark.parametrize("part", ["messaging/", "producer.py", "models/", "rules/", "store/", "services/"])
def test_the_shared_parts_import_nothing_of_the_worker(part: str) -> None:
    offenders = {
        _relative(path): sorted(n for n in _imports(path) if n.startswith("customer_updates.worker"))
        for path in _modules() if _relative(path).startswith(part)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_a_producer_process_loads_no_worker_module_and_connects_no_worker_signal() -> None:
    script = """
import json, sys
from celery import signals
from customer_updates import Producer
producer = Producer.from_env()
producer.celery  # the producer's own Celery app, made on first use
receivers = [r for name in ("setup_logging", "celeryd_init", "worker_init", "worker_process_init")
             for r in getattr(signals, name).receivers]
print(json.dumps({
    "worker_modules": sorted(m for m in sys.modules if m.startswith("customer_updates.worker")),
    "receivers": len(receivers),
}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"worker_modules": [], "receivers": 0}
