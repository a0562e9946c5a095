"""The Procfile, docker-compose.yml and Dockerfile parse, and every command they run exists in the CLI
with options it accepts (docker is not needed: the files are read, not run)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from customer_updates.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
PROCESS_TYPES = {"release", "worker", "beat", "flower", "web", "metrics"}
# `${NAME:-default}` as a shell (Procfile) expands it when NAME is unset.
DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_commands() -> dict[str, list[str]]:
    commands = {}
    for name, service in compose()["services"].items():
        command = service.get("command")
        if command and (command[0] if isinstance(command, list) else command).startswith("customer-updates"):
            commands[name] = command if isinstance(command, list) else shlex.split(command)
        test = (service.get("healthcheck") or {}).get("test")
        if test and test[0] == "CMD-SHELL" and "customer-updates" in test[1]:
            shell = test[1].split(";")[0].split(">")[0]
            commands[f"{name} healthcheck"] = shlex.split(shell)
    return commands


def dockerfile_cmd() -> list[str]:
    line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    return json.loads(line[len("CMD "):])


def check_cli(argv: list[str]) -> None:
    """Resolve `customer-updates SUB [SUB...] ARGS` to a click command and let it parse ARGS."""
    assert argv[0] == "customer-updates", argv
    command: click.Command = main
    args = [DEFAULTED.sub(lambda m: m.group(2), arg) for arg in argv[1:]]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        found = command.get_command(click.Context(command), args[0])
        if found is None and args[0] == "serve":
            pytest.skip("`serve` (the HTTP ingress) is not in this CLI yet")
        assert found is not None, f"no command {args[0]!r} in {argv}"
        command, args = found, args[1:]
    assert not isinstance(command, click.Group), f"{argv} names a group, not a command"
    command.make_context(command.name or "", list(args))  # raises on an unknown option or a bad value


def test_the_procfile_has_every_process_type_of_the_contract():
    assert set(procfile()) == PROCESS_TYPES


@pytest.mark.parametrize("process", sorted(PROCESS_TYPES))
def test_each_procfile_line_runs_a_command_the_cli_has(process):
    check_cli(shlex.split(procfile()[process]))


def test_compose_runs_redis_with_aof_and_postgres_and_every_process():
    services = compose()["services"]
    assert {"redis", "postgres", "migrate", "worker", "beat", "flower", "web"} <= set(services)
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert services["migrate"]["command"] == ["customer-updates", "db", "upgrade"]


def test_compose_gives_flower_basic_auth_and_every_app_service_the_servers():
    services = compose()["services"]
    assert "CUSTOMER_UPDATES_FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    for name in ("worker", "beat", "flower", "web", "migrate"):
        environment = services[name]["environment"]
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://")


@pytest.mark.parametrize("service", sorted(compose_commands()))
def test_each_compose_command_is_one_the_cli_has(service):
    check_cli(compose_commands()[service])


def test_the_dockerfile_default_command_is_one_the_cli_has():
    check_cli(dockerfile_cmd())


def test_the_check_refuses_a_command_the_cli_does_not_have():
    with pytest.raises(AssertionError):
        check_cli(["customer-updates", "no-such-command"])
    with pytest.raises(click.UsageError):
        check_cli(["customer-updates", "flower", "--port", "not-a-number"])


def lock_pins() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            pins[canonicalize_name(name)] = version
    return pins


def image_requirements() -> list:
    """The requirements of the image's extras (worker, web, postgres, flower), the package's own removed."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in ("worker", "web", "postgres", "flower"):
        wanted += project["optional-dependencies"][extra]
    return [r for r in map(Requirement, wanted) if r.name != "customer-updates"]


def test_the_lock_pins_every_requirement_of_the_image_within_its_range():
    from packaging.utils import canonicalize_name

    pins = lock_pins()
    for requirement in image_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]}: {requirement}"
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pinned = [line for line in lines if line and not line.startswith((" ", "#"))]
    assert all(lines[lines.index(line) + 1].strip().startswith("--hash=sha256:") for line in pinned)


def test_the_dockerfile_installs_the_lock_before_it_copies_the_code_on_a_pinned_python():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    image = next(line for line in lines if line.startswith("ARG PYTHON_IMAGE="))
    assert re.fullmatch(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", image), image
    assert all(line.split()[1] == "${PYTHON_IMAGE}" for line in lines if line.startswith("FROM "))
    copy_lock = lines.index("COPY requirements.lock /src/requirements.lock")
    install = next(i for i, line in enumerate(lines) if "--require-hashes" in line and "requirements.lock" in line)
    copy_code = next(i for i, line in enumerate(lines) if line.startswith("COPY customer_updates"))
    assert copy_lock < install < copy_code
    assert "--no-deps ." in lines[next(i for i in range(copy_code, len(lines)) if "pip install" in lines[i])]


LONG_RUNNING = ("worker", "beat", "flower", "web", "metrics")


def test_compose_follows_the_compose_specification():
    from compose_pydantic import ComposeSpecification

    document = {key: value for key, value in compose().items() if not key.startswith("x-")}  # extension fields
    ComposeSpecification.model_validate(document)


def test_the_specification_check_catches_a_misspelled_key():
    from compose_pydantic import ComposeSpecification
    from pydantic import ValidationError

    document = {key: value for key, value in compose().items() if not key.startswith("x-")}
    document["services"]["worker"]["stop_grace_periods"] = "60s"
    with pytest.raises(ValidationError):
        ComposeSpecification.model_validate(document)


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_each_long_running_service_proves_it_is_alive_stops_gracefully_and_rotates_its_logs(service):
    spec = compose()["services"][service]
    test = spec["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert spec["healthcheck"]["interval"] and spec["healthcheck"]["retries"] >= 1
    assert re.fullmatch(r"\d+s", spec["stop_grace_period"])
    assert spec["logging"]["driver"] == "json-file"
    assert {"max-size", "max-file"} <= set(spec["logging"]["options"])
    probe = " ".join(test[1:])
    if service in ("web", "flower", "metrics"):  # an HTTP answer on the port the command listens on
        port = spec["command"][spec["command"].index("--port") + 1]
        assert f"http://127.0.0.1:{port}/" in probe
    if service == "worker":  # a ping of this container's own worker node
        assert "--node celery@$$HOSTNAME" in probe or "ping -d celery@$$HOSTNAME" in probe
    if service == "beat":  # beat keeps writing the schedule it was given
        schedule = spec["command"][spec["command"].index("--schedule") + 1]
        assert schedule in probe


def test_compose_requires_the_secrets_instead_of_defaulting_them():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${FLOWER_BASIC_AUTH:?" in text
    assert not re.search(r"\$\{(POSTGRES_PASSWORD|FLOWER_BASIC_AUTH)(:?-)", text)
    for service in ("postgres", "worker", "beat", "flower", "web", "metrics", "migrate"):
        environment = compose()["services"][service]["environment"]
        secret = environment.get("POSTGRES_PASSWORD") or environment["DATABASE_URL"]
        assert "${POSTGRES_PASSWORD:?" in secret, service
