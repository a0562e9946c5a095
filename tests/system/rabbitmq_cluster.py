"""A RabbitMQ cluster of a test's own: three nodes on loopback, for tests that kill and restart one of them.

Each node has its own name (`cu-<pid>-<n>@localhost`), AMQP and distribution ports, data, log and config
files in a temporary folder, and no plugins (so no management port), so the machine's own node is never
touched. The nodes and the command-line tools share an Erlang cookie in a HOME of their own. Debian's
`/usr/sbin/rabbitmq*` are wrappers that switch to the `rabbitmq` user (its cookie, its data folder): the
scripts they wrap are run instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customer_updates.messaging.names import SIDE_EFFECTS_QUEUE, UPDATES_QUEUE
from customer_updates.ops.processes import free_port

DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
EPMD_PORT = 4369
DIR_PREFIX = "cu-rabbit-"
# The distribution (node-to-node and CLI-to-node) listens on loopback only, like the AMQP listener.
LOOPBACK_DIST = "-kernel inet_dist_use_interface {127,0,0,1}"
# Celery's log line when a consumer connects; it names the node's URL (password masked), with the worker's
# transport (worker/amqp_transport.py) named by its class path before "://".
CONNECTED = re.compile(r"Connected to \S+?://\S*?@127\.0\.0\.1:(\d+)")


def rabbitmq_script(name: str) -> str:
    """The path of a RabbitMQ script: the one Debian's wrapper runs, else the one on PATH."""
    if (DEBIAN_SCRIPTS / name).exists():
        return str(DEBIAN_SCRIPTS / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class Node:
    name: str
    amqp_port: int
    dist_port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}//"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        logs = [*sorted((self.dir / "log").glob("*.log")), self.dir / "console.out"]
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}" for log in logs
                         if log.exists())


class RabbitCluster:
    """`size` nodes; `start()` starts them at once and joins the others to the first; `close()` kills
    every process it started and removes the folder, whatever happened before."""

    def __init__(self, size: int = 3) -> None:
        self.server = rabbitmq_script("rabbitmq-server")
        self.ctl = rabbitmq_script("rabbitmqctl")
        _remove_orphans()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-"))
        self.home = self.dir / "home"
        self.home.mkdir()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)  # Erlang refuses a cookie others can read
        # In place of the machine's rabbitmq-env.conf, which names its own node.
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.epmd: subprocess.Popen[bytes] | None = None
        ports = _distinct_free_ports(2 * size)
        self.nodes: list[Node] = []
        for number in range(1, size + 1):
            node_dir = self.dir / f"node{number}"
            node_dir.mkdir()
            (node_dir / "enabled_plugins").write_text("[].\n")
            (node_dir / "rabbitmq.conf").write_text("log.console = false\nlog.file.level = info\n")
            self.nodes.append(Node(f"cu-{os.getpid()}-{number}@localhost", ports[2 * number - 2],
                                   ports[2 * number - 1], node_dir))

    @property
    def broker_url(self) -> str:
        """A failover list of every node, the first node first (kombu tries them in turn)."""
        return ";".join(node.url for node in self.nodes)

    def _env(self, node: Node | None = None) -> dict[str, str]:
        # Variables of the machine's node (RABBITMQ_*, ERL_*) would name its files and ports.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(HOME=str(self.home), LANG="C.UTF-8", LC_ALL="C.UTF-8", ERL_EPMD_ADDRESS="127.0.0.1",
                   RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"))
        if node is not None:
            env.update(
                RABBITMQ_NODENAME=node.name, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                RABBITMQ_NODE_PORT=str(node.amqp_port), RABBITMQ_DIST_PORT=str(node.dist_port),
                RABBITMQ_MNESIA_BASE=str(node.dir / "mnesia"), RABBITMQ_LOG_BASE=str(node.dir / "log"),
                RABBITMQ_CONFIG_FILE=str(node.dir / "rabbitmq.conf"),
                RABBITMQ_ADVANCED_CONFIG_FILE=str(node.dir / "advanced.config"),
                RABBITMQ_ENABLED_PLUGINS_FILE=str(node.dir / "enabled_plugins"),
                RABBITMQ_PID_FILE=str(node.dir / "rabbitmq.pid"),
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=LOOPBACK_DIST)
        else:
            # The CLI's own distribution port: by default one of 35672-35682, shared with every other
            # rabbitmqctl on the machine.
            port = str(free_port())
            env.update(RABBITMQ_CTL_DIST_PORT_MIN=port, RABBITMQ_CTL_DIST_PORT_MAX=port,
                       RABBITMQ_CTL_ERL_ARGS=LOOPBACK_DIST)
        return env

    def run_ctl(self, node: Node, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl -n <node> args...`; its output, or RuntimeError with what it said."""
        done = subprocess.run([self.ctl, "-n", node.name, *args], env=self._env(), cwd=self.dir,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name} failed ({done.returncode}): "
                               f"{done.stdout}\n{done.stderr}")
        return done.stdout

    # Starting and stopping.

    def start(self, timeout: float = 120) -> None:
        """Start every node at once, wait until each runs, then join the others to the first."""
        self._ensure_epmd()
        for node in self.nodes:
            self.start_node(node)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: self.wait_running(node, timeout), self.nodes))
        first, others = self.nodes[0], self.nodes[1:]
        with ThreadPoolExecutor(len(others)) as pool:
            list(pool.map(lambda node: self.run_ctl(node, "stop_app"), others))
        for node in others:  # one at a time: joins to the same node are not meant to overlap
            self.run_ctl(node, "join_cluster", first.name)
        with ThreadPoolExecutor(len(others)) as pool:
            list(pool.map(lambda node: self.run_ctl(node, "start_app"), others))

    def _ensure_epmd(self) -> None:
        # Erlang starts a daemon epmd when none answers, which would outlive the test: start one of our own
        # then, to stop it at the end. The machine's RabbitMQ usually has one running already.
        if _port_open(EPMD_PORT):
            return
        binary = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        self.epmd = subprocess.Popen([binary, "-address", "127.0.0.1", "-port", str(EPMD_PORT)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not _port_open(EPMD_PORT):
            if time.monotonic() > deadline or self.epmd.poll() is not None:
                raise RuntimeError("epmd did not start")
            time.sleep(0.1)

    def start_node(self, node: Node) -> None:
        """Start a node (again, with its data, after a kill) and return at once."""
        with (node.dir / "console.out").open("ab") as out:  # the child keeps its own descriptor
            # A session of its own: the signal to its group reaches the script, the VM and its helpers.
            node.process = subprocess.Popen([self.server], env=self._env(node), cwd=node.dir, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait_running(self, node: Node, timeout: float = 120) -> None:
        """Wait until the node's AMQP port answers (the listeners start last), then until it says it runs."""
        deadline = time.monotonic() + timeout
        while not _port_open(node.amqp_port):
            if not node.running:
                raise RuntimeError(f"{node.name} exited:\n{node.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} did not listen within {timeout:.0f}s:\n{node.log_tail()}")
            time.sleep(0.2)
        self.run_ctl(node, "await_startup", "--timeout", str(max(5, int(deadline - time.monotonic()))))

    def kill(self, node: Node) -> None:
        """SIGKILL the node's processes: a crash, no shutdown (the other nodes see its connections reset)."""
        if node.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(30)

    def close(self) -> None:
        for node in self.nodes:
            self.kill(node)
        if self.epmd is not None:
            self.epmd.kill()
            self.epmd.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    # Questions to the cluster.

    def queues(self, via: Node) -> dict[str, dict[str, Any]]:
        """The queues of the default vhost by name: type, leader, members, online members, message counts."""
        out = self.run_ctl(via, "-q", "list_queues", "name", "type", "leader", "members", "online",
                           "messages_ready", "messages_unacknowledged", "--formatter", "json")
        return {queue["name"]: queue for queue in json.loads(out)}

    def backlog(self, via: Node) -> dict[str, int]:
        """Messages waiting in our queues and taken but not acknowledged (harness.broker_backlog's answer)."""
        ours = [q for name, q in self.queues(via).items() if name in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE)]
        return {"queued": sum(int(q["messages_ready"] or 0) for q in ours),
                "unacked": sum(int(q["messages_unacknowledged"] or 0) for q in ours)}

    def wait_drained(self, via: Node, timeout: float = 30) -> dict[str, int]:
        """Wait until our queues are empty with nothing unacknowledged; the last backlog seen.

        Beat keeps sending relay tasks, so one may be in flight at any moment: empty once is enough."""
        deadline = time.monotonic() + timeout
        while (backlog := self.backlog(via)) != {"queued": 0, "unacked": 0} and time.monotonic() < deadline:
            time.sleep(0.5)
        return backlog

    def wait_online(self, queue: str, via: Node, timeout: float = 60) -> dict[str, Any]:
        """Wait until every member of a quorum queue is online again; the queue's row as last seen."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.queues(via)[queue]
            if sorted(row["online"]) == sorted(row["members"]) or time.monotonic() > deadline:
                return row
            time.sleep(1)


def connected_ports(log_path: Path) -> list[int]:
    """The AMQP ports a worker's consumer connected to, in order (from Celery's "Connected to" lines)."""
    return [int(port) for port in CONNECTED.findall(log_path.read_text(errors="replace"))]


def _remove_orphans() -> None:
    """Kill the nodes of test sessions that were killed before their teardown, and remove their folders.

    They are found by their working folder, which is named after the test session's process."""
    import psutil

    tmp = Path(tempfile.gettempdir())
    for folder in tmp.glob(f"{DIR_PREFIX}*"):
        pid = folder.name[len(DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or psutil.pid_exists(int(pid)):
            continue
        for process in psutil.process_iter(["cwd"]):
            cwd = process.info.get("cwd") or ""
            if cwd == str(folder) or cwd.startswith(f"{folder}/"):
                with contextlib.suppress(psutil.Error):
                    process.kill()
        shutil.rmtree(folder, ignore_errors=True)
