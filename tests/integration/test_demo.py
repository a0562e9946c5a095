"""`customer-updates demo` end to end, in a subprocess: with the machine's Redis, with its own embedded
Redis when none answers, and stopped with Ctrl-C. None of them may leave a process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
from kombu import Connection

from customer_updates.demo.embedded_redis import EmbeddedRedis, answers
from customer_updates.ops.processes import free_port
from tests.conftest import ROOT

SUMMARY = [
    "201 Some requests have failed due to errors (3 of 8 items succeeded)",
    "customer 4 merged into customer 2 (by email",
    "customer 1: +100 for profile_completion; now 580 points, tier Silver",
    "customer 2: +25 for first_fill:email; now 375 points",
    "customer 2: +50 for loyalty_conversion; now 375 points",
    # A member's email given to another customer: ignored, never a merge (SPEC §3.3).
    "an update gave Eli the email of Asha, a member: 91007 email is already occupied by some other user",
    "91100",  # the late update: its fields were skipped as stale
    "1104",  # an item without any identifier
    "customer-updates flower",
    "stopped the worker",
]


def demo_env(redis_url: str) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    return env


def leftovers(marker: Path) -> list[str]:
    """Processes still running whose command line names the demo's folder (its worker and beat do)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(marker) in cmdline and process.info["pid"] != os.getpid():
            found.append(f"{process.info['pid']}: {cmdline}")
    return found


def run_demo(redis_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "customer_updates.cli", "demo", "--dir", str(workdir),
                           "--timeout", "60"], capture_output=True, text=True, env=demo_env(redis_url),
                          cwd=ROOT, timeout=180)


def test_the_demo_runs_the_whole_flow_on_the_machines_redis_and_leaves_no_process(redis_url, tmp_path):
    done = run_demo(redis_url, tmp_path / "demo")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"redis: {redis_url} (REDIS_URL)" in done.stdout
    assert f"database: SQLite file {tmp_path / 'demo' / 'demo.db'}" in done.stdout
    missing = [line for line in SUMMARY if line not in done.stdout]
    assert missing == [], done.stdout
    assert leftovers(tmp_path) == []


def test_without_a_redis_the_demo_starts_its_own_and_stops_it(tmp_path):
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"

    done = run_demo(nothing_there, tmp_path / "demo")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"no Redis answered at {nothing_there}: started an embedded Redis (fakeredis)" in done.stdout
    missing = [line for line in [*SUMMARY, "stopped the embedded Redis"] if line not in done.stdout]
    assert missing == [], done.stdout
    assert leftovers(tmp_path) == []


def test_ctrl_c_stops_the_demo_and_everything_it_started(redis_url, tmp_path):
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        # SIGINT back to its default in the child: a shell that runs this suite in the background (`&`) makes
        # its jobs ignore SIGINT, Python then installs no KeyboardInterrupt for it, and Ctrl-C is not tested.
        demo = subprocess.Popen([sys.executable, "-m", "customer_updates.cli", "demo", "--dir",
                                 str(tmp_path / "demo")], stdout=sink, stderr=subprocess.STDOUT,
                                env=demo_env(redis_url), cwd=ROOT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 60
            while "started a worker" not in out.read_text() and time.monotonic() < deadline:
                assert demo.poll() is None, out.read_text()
                time.sleep(0.2)
            assert leftovers(tmp_path) != []  # the worker runs

            demo.send_signal(signal.SIGINT)
            code = demo.wait(60)
        finally:
            if demo.poll() is None:
                demo.kill()

    assert code == 130, out.read_text()
    assert "interrupted" in out.read_text()
    assert leftovers(tmp_path) == []


def test_the_embedded_redis_gives_back_the_message_of_a_consumer_that_died(tmp_path):
    """kombu's visibility timeout at work on fakeredis: the unacknowledged message comes back."""
    with EmbeddedRedis() as server:
        options = {"visibility_timeout": 1}
        with Connection(server.url, transport_options=options) as conn:
            conn.SimpleQueue("demo.check").put({"n": 1})
        crash = textwrap.dedent(f"""
            import os
            from kombu import Connection
            conn = Connection({server.url!r}, transport_options={options!r})
            message = conn.SimpleQueue("demo.check").get(timeout=5)
            assert message.payload == {{"n": 1}}
            os._exit(0)  # dies holding the message, unacknowledged
        """)
        subprocess.run([sys.executable, "-c", crash], check=True, timeout=30)
        time.sleep(1.5)
        with Connection(server.url, transport_options=options) as conn:
            conn.default_channel.qos.restore_visible()
            again = conn.SimpleQueue("demo.check").get(timeout=5)
            assert again.payload == {"n": 1}
            again.ack()
    assert not answers(server.url)
