"""Hosts apart on one machine: Linux network namespaces joined by veth pairs, and servers inside them.

A `Network` has a core namespace holding a bridge and the servers, one namespace per worker host, and a veth
from the root namespace (where the test runs) to the bridge, all on a private /24 (10.213.x.0/24). The
machine's own servers listen on 127.0.0.1 of the root namespace, which other namespaces cannot reach, so the
core namespace gets servers of its own: `CoreRedis`, `CorePostgres`, `CoreRabbitMQ`. They listen on the core
address only (RabbitMQ's epmd and Erlang distribution on the core namespace's loopback).

A host is cut off by setting its bridge port down, like a cable pulled at the switch: the servers see no
reset and no close, only silence, and the host sees its carrier go. (netem's `loss 100%` would be as silent
but needs sch_netem, which not every kernel has.)

Names carry the test process's pid, so parallel sessions never meet, and the namespaces of a session that was
killed before its teardown are removed by the next one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import redis

from tests.system.servers import postgres_bindir

SUBNET_PREFIX = "10.213"
NAME_PATTERN = re.compile(r"^cu(\d+)[a-z]-(core|h\d)$")
_networks = itertools.count()


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def namespace_pids(namespace: str) -> list[int]:
    return [int(p) for p in ip("netns", "pids", namespace, check=False).split()]


def kill_namespace(namespace: str) -> None:
    """SIGKILL every process inside the namespace (all of them ours: only we start processes there)."""
    for _ in range(20):
        pids = namespace_pids(namespace)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans() -> None:
    """Delete the namespaces of test sessions whose process is gone (killed before their teardown)."""
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = NAME_PATTERN.match(name)
        if match and not _alive(int(match.group(1))):
            kill_namespace(name)
            ip("netns", "del", name, check=False)


class Network:
    """A core namespace with a bridge at .1, worker-host namespaces at .11, .12, ..., the root namespace at .254."""

    def __init__(self, hosts: int = 2) -> None:
        self.id = f"{os.getpid()}{chr(ord('a') + next(_networks) % 26)}"
        self.core = f"cu{self.id}-core"
        self.hosts = [f"cu{self.id}-h{i}" for i in range(1, hosts + 1)]
        self.subnet = self._free_subnet()
        self.core_address = f"{SUBNET_PREFIX}.{self.subnet}.1"
        self.root_link = f"cu{self.id}r"
        self.made: list[str] = []

    def _free_subnet(self) -> int:
        """A third octet no route of the root namespace uses yet (another session's network, say)."""
        routes = ip("-4", "route", "show")
        start = os.getpid() % 250
        for step in range(250):
            octet = (start + step) % 250 + 1
            if f"{SUBNET_PREFIX}.{octet}." not in routes:
                return octet
        raise RuntimeError(f"no free {SUBNET_PREFIX}.x.0/24 subnet")

    def host_address(self, index: int) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.{11 + index}"

    def port_of(self, index: int) -> str:
        """The host's veth end on the bridge, in the core namespace (its 'switch port')."""
        return f"cu{self.id}p{index}"

    def create(self) -> None:
        remove_orphans()
        for namespace in (self.core, *self.hosts):
            ip("netns", "add", namespace)
            self.made.append(namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", self.core, "link", "add", "br0", "type", "bridge")
        ip("-n", self.core, "addr", "add", f"{self.core_address}/24", "dev", "br0")
        ip("-n", self.core, "link", "set", "br0", "up")
        for index, namespace in enumerate(self.hosts):
            inner, port = f"cu{self.id}h{index}", self.port_of(index)
            ip("link", "add", inner, "netns", namespace, "type", "veth", "peer", "name", port, "netns", self.core)
            ip("-n", self.core, "link", "set", port, "master", "br0", "up")
            ip("-n", namespace, "addr", "add", f"{self.host_address(index)}/24", "dev", inner)
            ip("-n", namespace, "link", "set", inner, "up")
        # The root namespace joins the bridge too, so that the test publishes and checks from where it runs.
        port = f"cu{self.id}q"
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", port, "netns", self.core)
        ip("-n", self.core, "link", "set", port, "master", "br0", "up")
        ip("addr", "add", f"{SUBNET_PREFIX}.{self.subnet}.254/24", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")

    def cut(self, index: int) -> None:
        """Unplug host `index` at the switch: its bridge port goes down, nothing reaches either side."""
        ip("-n", self.core, "link", "set", self.port_of(index), "down")

    def restore(self, index: int) -> None:
        ip("-n", self.core, "link", "set", self.port_of(index), "up")

    def command(self, namespace: str, args: Sequence[str]) -> list[str]:
        """`args` run inside `namespace` (ip execs them: the pid is the command's own)."""
        return ["ip", "netns", "exec", namespace, *args]

    def destroy(self) -> None:
        """Kill every process in our namespaces, then delete them (their veths go with them)."""
        for namespace in reversed(self.made):
            kill_namespace(namespace)
        ip("link", "del", self.root_link, check=False)
        for namespace in reversed(self.made):
            ip("netns", "del", namespace, check=False)
        self.made.clear()


def _wait(check: Callable[[], object], what: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
          log: Path | None = None) -> None:
    """Until `check` returns something true; raises with the server's log when its process ends first."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with code {process.returncode}:\n{tail}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{what} not up after {timeout}s: {last}")


class _Server:
    """A server process started inside the core namespace, its output in a file of its temporary directory."""

    def __init__(self, network: Network, prefix: str) -> None:
        self.network = network
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.log = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.network.command(self.network.core, args),
                                            env={**os.environ, **(env or {})}, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def close(self) -> None:
        """Kill it (the namespace's teardown kills whatever it left) and remove its files."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class CoreRedis(_Server):
    """redis-server on the core address, nothing persisted."""

    def __init__(self, network: Network) -> None:
        super().__init__(network, "cu-netns-redis-")
        self.url = f"redis://{network.core_address}:6379/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self._spawn([binary, "--bind", self.network.core_address, "--port", "6379", "--save", "",
                     "--appendonly", "no", "--protected-mode", "no", "--dir", str(self.dir)])
        def answers() -> bool:
            with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
                return bool(client.ping())

        _wait(answers, "redis-server", 30, self.process, self.log)


class CorePostgres(_Server):
    """A PostgreSQL cluster of its own on the core address; as root its commands run as `postgres`."""

    def __init__(self, network: Network) -> None:
        super().__init__(network, "cu-netns-pg-")
        self.bindir = postgres_bindir()
        self.data = self.dir / "data"
        self.as_postgres = os.geteuid() == 0
        self.admin_url = f"postgresql+psycopg://postgres@{network.core_address}:5432/postgres"

    def _user(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else args

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(self.network.command(self.network.core, self._user(args)), capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"])
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET_PREFIX}.{self.network.subnet}.0/24 trust\n")
        # fsync off: the machine does not crash in these tests.
        options = (f"-p 5432 -c listen_addresses={self.network.core_address} -k {self.dir} -c fsync=off "
                   "-c max_connections=100")
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                   "-w", "-t", "60", "start"])

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        super().close()


def _rabbitmq_binary(name: str) -> str:
    """The script itself: Debian's /usr/sbin wrapper would switch to the `rabbitmq` user and its cookie."""
    packaged = Path("/usr/lib/rabbitmq/bin") / name
    if packaged.exists():
        return str(packaged)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not on PATH")
    return found


class CoreRabbitMQ(_Server):
    """A RabbitMQ node of its own: AMQP on the core address, epmd and distribution on the core loopback,
    no plugins, its Erlang cookie in its own directory (HOME)."""

    def __init__(self, network: Network) -> None:
        super().__init__(network, "cu-netns-rabbit-")
        self.node = f"cu{network.id}@localhost"
        self.url = f"amqp://guest:guest@{network.core_address}:5672//"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # not the machine's (its node name and addresses)
        # The guest user may log in from the hosts' addresses, not from loopback only.
        (self.dir / "rabbitmq.conf").write_text("loopback_users = none\n")
        self.env = {
            "HOME": str(self.dir), "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": network.core_address, "RABBITMQ_NODE_PORT": "5672",
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.dir / "plugins"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        from kombu import Connection

        def connects() -> bool:
            with Connection(self.url, connect_timeout=2) as conn:
                conn.connect()
            return True

        self._spawn([_rabbitmq_binary("rabbitmq-server")], self.env)
        _wait(connects, "rabbitmq-server", 120, self.process, self.log)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(self.network.command(self.network.core,
                                                   [_rabbitmq_binary("rabbitmqctl"), "-n", self.node, *args]),
                              env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}\n{done.stderr}")
        return done.stdout

    def backlog(self, _broker_url: str = "") -> dict[str, int]:
        """Ready and unacknowledged messages of our queues (what tests.system.harness.rabbitmq_backlog
        answers for the machine's node)."""
        from tests.system.harness import SIDE_EFFECTS_QUEUE, UPDATES_QUEUE

        out = self.ctl("-q", "list_queues", "-p", "/", "name", "messages_ready", "messages_unacknowledged",
                       "--formatter", "json")
        ours = [q for q in json.loads(out) if q["name"] in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE)]
        return {"queued": sum(int(q["messages_ready"]) for q in ours),
                "unacked": sum(int(q["messages_unacknowledged"]) for q in ours)}
