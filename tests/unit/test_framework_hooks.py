"""The private hooks of Celery, kombu, celery-batches and billiard that the worker relies on
(customer_updates/worker/hooks.py) are still there and still behave as the worker expects.

A failure here after an upgrade names the hook and the pinned range: read the new upstream code where the
hook is used before widening the pin in pyproject.toml.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import pathlib
import re
import textwrap
import time
import tomllib
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import pytest
from packaging.requirements import Requirement

from customer_updates.worker.hooks import HOOKS, Hook

ROOT = pathlib.Path(__file__).resolve().parents[2]
FRAMEWORKS = ("celery", "kombu", "celery_batches", "billiard", "amqp")


def _pins() -> dict[str, str]:
    """Each distribution's pin, from the dependencies and the extras of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(d) for d in project["dependencies"]]
    requirements += [Requirement(d) for extra in project.get("optional-dependencies", {}).values() for d in extra]
    return {r.name: str(r.specifier) for r in requirements if r.name != "customer-updates"}


def _where(hook: Hook) -> str:
    pin = _pins().get(hook.dist, "(through celery's own pin)")
    return (f"{hook.owner}.{hook.name} ({hook.dist} {version(hook.dist)} installed, pinned {pin}); "
            f"used in {', '.join(hook.used_in)}: {hook.reason}")


def _owner(hook: Hook) -> Any:
    module, _, name = hook.owner.partition(":")
    owner: Any = importlib.import_module(module)
    return getattr(owner, name) if name else owner


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(textwrap.dedent(inspect.getsource(obj)).encode()).hexdigest()[:16]


def _sets_on_instances(owner: type, name: str) -> bool:
    """Whether a method of the owner (or a base) assigns `self.<name>`."""
    pattern = re.compile(rf"self\.{re.escape(name)}\s*(:[^=\n]*)?=[^=]")
    return any(pattern.search(inspect.getsource(cls)) for cls in inspect.getmro(owner)
               if cls.__module__.split(".")[0] in FRAMEWORKS)


def test_the_installed_frameworks_are_within_the_pinned_ranges():
    pins = _pins()
    for dist in ("celery", "kombu", "celery-batches"):
        assert dist in pins and "<" in pins[dist], f"{dist} must be pinned to a tested minor range (worker/hooks.py)"
        assert Requirement(f"{dist}{pins[dist]}").specifier.contains(version(dist)), (
            f"{dist} {version(dist)} is installed but pyproject.toml pins {pins[dist]}: "
            "run tests/unit/test_framework_hooks.py on it before widening the pin")


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: f"{h.owner}.{h.name}")
def test_every_hook_still_exists(hook: Hook):
    owner = _owner(hook)
    if hook.kind == "attribute":
        assert hasattr(owner, hook.name), f"GONE: {_where(hook)}"
    else:
        assert _sets_on_instances(owner, hook.name), f"NO LONGER SET ON INSTANCES: {_where(hook)}"


@pytest.mark.parametrize("hook", [h for h in HOOKS if h.replicates], ids=lambda h: f"{h.owner}.{h.name}")
def test_the_upstream_code_the_worker_copies_or_replaces_is_unchanged(hook: Hook):
    assert _fingerprint(getattr(_owner(hook), hook.name)) == hook.replicates, (
        f"CHANGED UPSTREAM: {_where(hook)} Compare the new upstream source with the worker's code, port the "
        f"change, then set its fingerprint in worker/hooks.py to {_fingerprint(getattr(_owner(hook), hook.name))}")


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: f"{h.owner}.{h.name}")
def test_every_hook_is_used_where_the_registry_says(hook: Hook):
    for path in hook.used_in:
        assert hook.name.lower() in (ROOT / path).read_text().lower(), (
            f"{path} no longer uses {hook.name}: update worker/hooks.py")


def _framework_modules() -> list[pathlib.Path]:
    found = []
    for path in sorted((ROOT / "customer_updates").rglob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        if any(name.split(".")[0] in FRAMEWORKS for name in imported):
            found.append(path)
    return found


def _private_names(tree: ast.AST) -> set[str]:
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names |= {node.args[1].value for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)}
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def _own_names(tree: ast.AST) -> set[str]:
    """Methods this code defines, and attributes its classes declare or its `__init__`s set."""
    own = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        for statement in cls.body:
            if isinstance(statement, ast.AnnAssign) and statement.value is not None \
                    and isinstance(statement.target, ast.Name):
                own.add(statement.target.id)
    for init in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "__init__"):
        for node in ast.walk(init):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AnnAssign) else []
            own |= {t.attr for t in targets if isinstance(t, ast.Attribute)}
    return own


def test_every_private_name_the_framework_modules_use_is_in_the_registry():
    registered = {hook.name for hook in HOOKS}
    unlisted = {}
    for path in _framework_modules():
        tree = ast.parse(path.read_text())
        for name in _private_names(tree) - _own_names(tree) - registered:
            unlisted[name] = str(path.relative_to(ROOT))
    assert unlisted == {}, f"private framework names used but not listed in worker/hooks.py: {unlisted}"


# Behaviour: what a mere attribute check would not catch.

def test_kombus_brpop_read_still_takes_keyword_options_only():
    from kombu.transport.redis import Channel

    parameters = list(inspect.signature(Channel._brpop_read).parameters.values())
    assert [(p.name, p.kind) for p in parameters] == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), ("options", inspect.Parameter.VAR_KEYWORD)], (
        f"kombu Channel._brpop_read is now {inspect.signature(Channel._brpop_read)} (pinned {_pins()['kombu']})")


def test_a_virtual_connection_delivers_a_message_to_the_callback_of_its_queue():
    from kombu.transport.virtual import Transport

    assert list(inspect.signature(Transport._deliver).parameters) == ["self", "message", "queue"], (
        f"kombu Transport._deliver is now {inspect.signature(Transport._deliver)} (pinned {_pins()['kombu']})")
    delivered: list[Any] = []
    connection = object.__new__(Transport)
    connection._callbacks = {"updates": delivered.append}
    connection._deliver({"body": "x"}, "updates")
    assert delivered == [{"body": "x"}], "kombu's connection._deliver no longer calls the queue's callback"


def test_the_redis_channel_names_its_priority_lists_as_health_counts_them():
    from kombu.transport.redis import Channel

    from customer_updates.ops import health

    channel = object.__new__(Channel)
    assert channel.sep == health._PRIORITY_SEP and tuple(channel.priority_steps) == health._PRIORITY_STEPS
    assert channel._q_for_pri("updates", 0) == "updates"
    assert channel._q_for_pri("updates", 3) == f"updates{health._PRIORITY_SEP}3", (
        f"kombu names priority lists differently now (pinned {_pins()['kombu']})")


def test_a_message_is_acknowledged_once_its_state_says_ack():
    from kombu.message import Message

    message = Message(body=b"{}", channel=None, delivery_tag="t")
    assert not message.acknowledged
    message._state = "ACK"
    assert message.acknowledged, f"kombu Message.acknowledged no longer reads _state (pinned {_pins()['kombu']})"


def _no_initializer(*args: Any) -> None:
    """Celery's pool process initializer sets up a worker's app, which this test has none of."""


def test_a_prefork_pool_counts_the_jobs_it_has_not_returned_in_its_cache(monkeypatch: pytest.MonkeyPatch):
    from celery.concurrency import prefork

    from customer_updates.worker.batching import pool_busy

    monkeypatch.setattr(prefork, "process_initializer", _no_initializer)
    pool = prefork.TaskPool(limit=1)
    pool.start()
    try:
        pool.apply_async(time.sleep, (1.0,))
        assert isinstance(pool._pool._cache, dict) and len(pool._pool._cache) == 1, (
            "prefork pool._pool._cache no longer holds the pending jobs (billiard, through celery's pin "
            f"{_pins()['celery']})")
        assert pool_busy(pool)
        deadline = time.monotonic() + 20
        while pool._pool._cache and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pool_busy(pool), "a returned job stays in prefork's pool._pool._cache"
    finally:
        pool.stop()


def test_celerys_consumer_hands_the_messages_it_cannot_use_to_its_hooks():
    from celery.exceptions import InvalidTaskError
    from celery.worker.consumer.consumer import Consumer
    from kombu.exceptions import DecodeError

    calls: list[str] = []

    def strategy(*args: Any) -> None:
        raise InvalidTaskError("bad")

    def undecodable() -> Any:
        raise DecodeError("bad")

    consumer = object.__new__(Consumer)
    consumer.strategies = {"known": strategy}
    consumer.on_task_message = set()
    consumer.restart_count = 0  # a consumer that never reconnected (no prefetch count to restore)
    consumer._maximum_prefetch_restored = True
    consumer.on_unknown_message = lambda body, message: calls.append("unknown message")
    consumer.on_unknown_task = lambda body, message, exc: calls.append("unknown task")
    consumer.on_invalid_task = lambda body, message, exc: calls.append("invalid task")
    consumer.on_decode_error = lambda message, exc: calls.append("decode error")
    handle = consumer.create_task_handler()
    handle(SimpleNamespace(headers=None))
    handle(SimpleNamespace(headers={"task": "elsewhere"}))
    handle(SimpleNamespace(headers={"task": "known"}, ack_log_error=None, reject_log_error=None))
    handle(SimpleNamespace(headers={}, decode=undecodable))

    assert calls == ["unknown message", "unknown task", "invalid task", "decode error"], (
        f"Celery's Consumer.create_task_handler no longer calls its on_* hooks (pinned {_pins()['celery']})")


def test_celery_batches_flushes_its_buffer_through_flush_and_runs_batches_with_apply_batches_task():
    import queue

    from celery_batches import Batches
    from celery_batches.trace import apply_batches_task

    assert list(inspect.signature(apply_batches_task).parameters) == ["task", "args", "loglevel", "logfile"]
    flushed: list[list[Any]] = []

    class Batch(Batches):
        def flush(self, requests: Any) -> None:
            flushed.append(list(requests))

    batch = Batch()
    assert isinstance(batch._buffer, queue.Queue), "celery-batches' Batches._buffer is no longer a Queue"
    batch._buffer.put(SimpleNamespace(eta=None))
    batch._do_flush()
    assert len(flushed) == 1 and len(flushed[0]) == 1 and batch._buffer.empty(), (
        f"celery-batches' Batches._do_flush no longer hands the buffer to flush (pinned {_pins()['celery-batches']})")


def test_celerys_event_receiver_reads_a_grouped_task_multi_message_as_its_events():
    from celery import Celery
    from celery.events.receiver import EventReceiver

    events = [{"type": "task-started", "uuid": f"t{n}", "hostname": "w", "clock": n, "timestamp": time.time(),
               "utcoffset": 0, "pid": 1} for n in range(3)]
    seen: list[str] = []
    receiver = EventReceiver(None, handlers={"*": lambda event: seen.append(event["uuid"])},
                             app=Celery("hooks", set_as_current=False))
    receiver._receive(events, SimpleNamespace())

    assert seen == ["t0", "t1", "t2"], (
        f"Celery's event receiver no longer reads a list body as grouped events (pinned {_pins()['celery']})")


def test_py_amqp_makes_every_publish_of_a_confirming_connection_wait_and_keeps_the_plain_one_as_basic_publish():
    from amqp.channel import Channel

    # messaging/sending.py undoes the first on a channel of its own and relies on the second not waiting.
    assert "self.basic_publish = self.basic_publish_confirm" in inspect.getsource(Channel.__init__)
    assert Channel.basic_publish is Channel._basic_publish
    assert "wait" not in inspect.getsource(Channel._basic_publish).split('"""')[-1]
    assert {"basic_ack", "basic_nack"} <= set(re.findall(r"self\.events\['(\w+)'\]", inspect.getsource(Channel)))
