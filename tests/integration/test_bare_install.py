"""What the package ships and what a bare install (no extras) is: the producer library, which enqueues to a
real Redis and reads results without the worker's, the web's, Flower's or the demo's dependencies.

The source is copied out of the repository first, so that building leaves nothing in the working tree.
The bare install resolves its dependencies from the package index (about a minute): marked `slow`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from customer_updates.models.commands import payload_hash
from customer_updates.rules.parse import as_list
from tests.conftest import ROOT

SOURCE = ("pyproject.toml", "README.md", "LICENSE", "customer_updates")
OPTIONAL = {"fastapi", "uvicorn", "flower", "fakeredis", "sqlalchemy", "alembic", "psycopg", "celery_batches",
            "re2", "yaml", "tornado", "limits"}
STORED = json.loads((ROOT / "tests/fixtures/v11/all-failed-response.json").read_text())["response"]["customers"]


def source_copy(target: Path) -> Path:
    target.mkdir()
    for name in SOURCE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = source_copy(work / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(work / "dist"),
                    str(source)], check=True, timeout=240, capture_output=True)
    (built,) = (work / "dist").glob("customer_updates-*.whl")
    return built


def test_the_wheel_ships_the_license_the_migrations_and_their_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "customer_updates/migrations/script.py.mako" in names
    assert "customer_updates/migrations/env.py" in names
    shipped = {Path(n).name for n in names if n.startswith("customer_updates/migrations/versions/")}
    in_repository = {p.name for p in (ROOT / "customer_updates/migrations/versions").glob("*.py")}
    assert in_repository <= shipped
    (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert "Apache License" in zipfile.ZipFile(wheel).read(license_name).decode()
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    for extra in ("worker", "web", "flower", "demo", "postgres", "all", "test"):
        assert f"Provides-Extra: {extra}" in text


def test_a_bare_install_requires_no_framework_of_an_extra(wheel):
    text = zipfile.ZipFile(wheel).read(
        next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))).decode()
    bare = [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]
    named = {requirement.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
             for requirement in bare}
    assert named.isdisjoint({"fastapi", "uvicorn", "flower", "fakeredis", "sqlalchemy", "psycopg", "alembic"})
    assert {"celery", "kombu", "redis", "pydantic", "orjson"} <= named


@pytest.fixture(scope="module")
def bare_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtual environment with `pip install customer-updates` and nothing else."""
    where = tmp_path_factory.mktemp("bare") / "venv"
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=600, capture_output=True)
    yield python


def run_in(python: Path, code: str, redis_url: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(REDIS_URL=redis_url, DATABASE_URL="sqlite:///nowhere.db")
    done = subprocess.run([str(python), "-c", code, json.dumps(sorted(OPTIONAL))], capture_output=True, text=True,
                          env=env, timeout=60, cwd=python.parent)  # not the repository: it would shadow the install
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


CUSTOMER = {"mobile": "919800000001", "firstname": "Bare"}

ENQUEUE = f"""
import json, sys
import customer_updates
from customer_updates import Producer
optional = set(json.loads(sys.argv[1]))
producer = Producer.from_env()
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & optional)
request_id = producer.enqueue_update(1, {CUSTOMER!r}, request_id="bare-1")
after_send = sorted({{m.split(".")[0] for m in sys.modules}} & optional)
print(json.dumps({{"file": customer_updates.__file__, "loaded": loaded, "after_send": after_send,
                  "request_id": request_id}}))
"""

READ = f"""
import json
from customer_updates import Producer
print(json.dumps({{"item": Producer.from_env().get_result(1, "bare-1", payload={CUSTOMER!r})}}))
"""


@pytest.mark.slow
@pytest.mark.redis
def test_a_bare_install_enqueues_to_redis_and_reads_a_stored_result(bare_python, redis_url):
    sent = run_in(bare_python, ENQUEUE, redis_url)
    assert "site-packages" in sent["file"]
    assert sent["loaded"] == [], "importing the producer imported modules of an extra"
    assert sent["after_send"] == [], "sending imported modules of an extra"
    assert sent["request_id"] == "bare-1"

    client = redis.Redis.from_url(redis_url)
    (raw,) = client.lrange("customer_updates", 0, -1)
    assert json.loads(raw)["headers"]["task"] == "customer_updates.apply_updates"

    item = as_list(STORED["customer"])[0]
    client.set("cu:result:1:bare-1", json.dumps({"hash": payload_hash(CUSTOMER), "result": item}))
    assert run_in(bare_python, READ, redis_url)["item"] == item


@pytest.mark.slow
@pytest.mark.parametrize(("command", "extra"), [("worker", "worker"), ("flower", "flower"), ("demo", "worker")])
def test_a_bare_install_names_the_extra_a_command_needs_in_one_line(bare_python, command, extra, redis_url):
    cli = bare_python.parent / "customer-updates"
    done = subprocess.run([str(cli), command], capture_output=True, text=True, timeout=60, cwd=bare_python.parent,
                          env={**os.environ, "REDIS_URL": redis_url})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"pip install 'customer-updates[{extra}]'" in done.stderr
